/**
 * Named error classes. Every error layer-sync raises on purpose is a `LayerSyncError`, carries the
 * underlying `cause`, and has a message a person on call can act on. Messages never contain the token:
 * they are built from request descriptions that exclude credentials, and `redact()` scrubs them again.
 */
import { redactAndTruncate } from "./redact.ts";

/** Every error message stays under this many characters (and so far under Lambda's 256 KB payloads). */
export const MESSAGE_MAX = 1000;

/** A long list in one line: the first `shown` items, then how many more there are. */
export function summarise(items: readonly string[], shown = 5, separator = "; "): string {
  if (items.length <= shown) return items.join(separator);
  return `${items.slice(0, shown).join(separator)}${separator}and ${items.length - shown} more`;
}

export class LayerSyncError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(redactAndTruncate(message, MESSAGE_MAX - 1), options);
    this.name = new.target.name;
  }
}

/** Bad usage or configuration: the CLI exits 2. */
export class ConfigError extends LayerSyncError {
  readonly problems: readonly string[];
  constructor(problems: string | readonly string[], options?: { cause?: unknown }) {
    const list = typeof problems === "string" ? [problems] : problems;
    super(
      list.length === 1 ? (list[0] ?? "invalid configuration") : `invalid configuration: ${summarise(list)}`,
      options,
    );
    // a hostile event can hold 100,000 problems: keep the first ones and the count
    const kept = list.slice(0, 20).map((p) => redactAndTruncate(p, MESSAGE_MAX - 1));
    this.problems = list.length > kept.length ? [...kept, `and ${list.length - kept.length} more`] : kept;
  }
}

/** An event or payload the handler cannot accept. */
export class EventValidationError extends LayerSyncError {}

/** A request to the source API failed (after any retries). */
export class SourceError extends LayerSyncError {
  readonly status: number | undefined;
  readonly request: string | undefined;
  constructor(message: string, options?: { cause?: unknown; status?: number; request?: string }) {
    super(message, options);
    this.status = options?.status;
    this.request = options?.request;
  }
}
/** 401: the token is wrong, expired or of the wrong kind. */
export class SourceAuthError extends SourceError {}
/** 403: the token is valid but lacks access or scope. */
export class SourceAccessError extends SourceError {}
/** 404 / 422: wrong repository, ref or folder. */
export class SourceNotFoundError extends SourceError {}
/** A rate limit that did not reset within the retry budget. */
export class RateLimitError extends SourceError {
  readonly resetAt: Date | undefined;
  constructor(message: string, options?: { cause?: unknown; status?: number; request?: string; resetAt?: Date }) {
    super(message, options);
    this.resetAt = options?.resetAt;
  }
}
/** The source answered with something that does not match its documented shape. */
export class SourceProtocolError extends SourceError {}

/** An entry name or symlink target that would escape the folder, or is otherwise unsafe. */
export class PathSafetyError extends LayerSyncError {}
/** A folder over the size or file-count limits. */
export class LimitExceededError extends LayerSyncError {}
/** A submodule, an unresolvable LFS pointer or another entry that cannot be packaged faithfully. */
export class UnsupportedEntryError extends LayerSyncError {}

/** Building or verifying the zip failed. */
export class ArchiveError extends LayerSyncError {}
/** The deflate worker thread stopped while it held an entry's only copy of its bytes (see `zip/deflate-pool.ts`). */
export class DeflateWorkerStoppedError extends ArchiveError {}
/** Uploading, reading or verifying an S3 artifact failed. */
export class ArtifactError extends LayerSyncError {}
/** Reading or writing an SSM parameter failed. */
export class ParameterError extends LayerSyncError {}
/** Publishing, permissioning or pruning a layer version failed. */
export class PublishError extends LayerSyncError {}
/** A new layer version failed its smoke test (it did not import on its runtime and architecture). */
export class SmokeTestError extends PublishError {}
/** Sharing the ARN parameter through AWS RAM failed. */
export class ShareError extends LayerSyncError {}

/** A one-line, token-free description of any thrown value. */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const text = error.message || error.name;
    return redactAndTruncate(text.replace(/\s*\n\s*/g, " "), MESSAGE_MAX - 1);
  }
  return redactAndTruncate(String(error), MESSAGE_MAX - 1);
}

/** The provider refused the archive download (login redirect, HTML, 403 on the web host). `auto` falls back to walk. */
export class ArchiveUnavailableError extends SourceError {}

/** Building a layer from a dependency manifest failed (pip, npm, Docker, or the build's output). */
export class BuildError extends LayerSyncError {}

/**
 * The run reached its deadline (in Lambda: the function's remaining time less a margin). Requests under way
 * are aborted with it; nothing is uploaded and no pointer is written after it.
 */
export class DeadlineError extends LayerSyncError {}
