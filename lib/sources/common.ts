/** Pieces shared by the provider adapters: auth headers, URL paths, LFS pointers, options. */
import { createHash } from "node:crypto";
import { type Readable, Transform } from "node:stream";
import { readAll } from "../common/streams.ts";
import { type HttpClient, RetryableBodyError } from "./http/client.ts";

export interface SourceOptions {
  /** `workspace/repo` or `owner/repo`. */
  repository: string;
  apiUrl: string;
  /** Bitbucket's web host (archives). */
  webUrl: string;
  token: string | undefined;
  concurrency: number;
  http: HttpClient;
}

export const USER_AGENT = "layer-sync/0.1 (+https://github.com/acme/layer-sync)";

/** `user:secret` goes as HTTP Basic, anything else as a Bearer token. */
export function authorizationFor(token: string | undefined): string | undefined {
  if (!token) return undefined;
  if (/^[^:\s]+:[^\s]+$/.test(token) && !token.startsWith("Bearer ")) {
    return `Basic ${Buffer.from(token, "utf8").toString("base64")}`;
  }
  return `Bearer ${token}`;
}

/** Percent-encode each segment of a repository path, keeping the slashes. */
export function encodePath(path: string): string {
  return path
    .split("/")
    .map((s) => encodeURIComponent(s))
    .join("/");
}

const LFS_PREFIX = Buffer.from("version https://git-lfs.github.com/spec/v1\n");
/** Git LFS pointers are small text files; anything larger is real content. */
export const LFS_POINTER_MAX_BYTES = 1024;

/** Whether some bytes are a Git LFS pointer file. */
export function isLfsPointer(content: Buffer): boolean {
  return (
    content.length <= LFS_POINTER_MAX_BYTES &&
    content.subarray(0, LFS_PREFIX.length).equals(LFS_PREFIX) &&
    /\noid sha256:[0-9a-f]{64}\n/.test(content.toString("utf8"))
  );
}

/** Parse the oid and size out of an LFS pointer. */
export function parseLfsPointer(content: Buffer): { oid: string; size: number } | undefined {
  const text = content.toString("utf8");
  const oid = /\noid sha256:([0-9a-f]{64})\n/.exec(text)?.[1];
  const size = /\nsize (\d+)\n?/.exec(text)?.[1];
  return oid && size ? { oid, size: Number(size) } : undefined;
}

/** The most bytes of a listing, error or other small body read into memory. */
export const BODY_MAX = 64 * 1024 * 1024;

/** `readAll` with the `BODY_MAX` limit; kept only for tarball.ts (switch it to `readAll` and delete this). */
export function collect(body: Readable, limit = BODY_MAX): Promise<Buffer> {
  return readAll(body, { limit });
}

/**
 * A pass-through that fails at the end of the stream when the whole body was a Git LFS pointer, so a
 * pointer is never packaged as if it were the file.
 */
export function lfsGuard(onPointer: () => Error): Transform {
  const head: Buffer[] = [];
  let size = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      if (size <= LFS_POINTER_MAX_BYTES) head.push(chunk);
      size += chunk.length;
      cb(null, chunk);
    },
    flush(cb) {
      cb(size <= LFS_POINTER_MAX_BYTES && isLfsPointer(Buffer.concat(head)) ? onPointer() : null);
    },
  });
}

/**
 * A pass-through that checks a downloaded body against what the listing promised: its length and, for a git
 * blob, its object id. A body cut short behind a matching Content-Length, or corrupted on the way, fails with
 * `RetryableBodyError` at its end, so the HTTP client downloads it again instead of packaging it.
 */
export function bodyCheck(expected: { size?: number | undefined; gitBlobSha?: string | undefined }, what: string) {
  let size = 0;
  const hash =
    expected.gitBlobSha !== undefined && expected.size !== undefined
      ? createHash("sha1").update(`blob ${expected.size}\0`)
      : undefined;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      size += chunk.length;
      hash?.update(chunk);
      cb(null, chunk);
    },
    flush(cb) {
      if (expected.size !== undefined && size !== expected.size) {
        cb(new RetryableBodyError(`${what}: the body was ${size} bytes, the listing says ${expected.size}`));
      } else if (hash && hash.digest("hex") !== expected.gitBlobSha) {
        cb(new RetryableBodyError(`${what}: the body does not hash to git blob ${expected.gitBlobSha}`));
      } else {
        cb();
      }
    },
  });
}

/** `source.pipe(transform)`, forwarding the source's errors (a reset connection) to the transform. */
export function through(source: Readable, transform: Transform): Transform {
  source.once("error", (error) => transform.destroy(error));
  return source.pipe(transform);
}

/**
 * Hand a fetched folder to its consumer (`FolderTarget.complete`), once: the folder's final error, which is
 * `error` or what the consumer threw.
 */
export async function completeFolder(
  target: { complete?: (error?: Error) => Promise<void> },
  error?: Error,
): Promise<Error | undefined> {
  if (!target.complete) return error;
  try {
    await target.complete(error);
    return error;
  } catch (thrown) {
    return error ?? (thrown instanceof Error ? thrown : new Error(String(thrown)));
  }
}
