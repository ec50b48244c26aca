/**
 * Turning AWS SDK failures into one-line, actionable `PublishError`s and `ShareError`s: which call failed,
 * on which resource, and what to do about it. An access denial names the IAM action that is missing (for
 * these services the IAM action has the API's name, e.g. `lambda:PublishLayerVersion`).
 */
import type { LayerSyncError, PublishError, ShareError } from "./errors.ts";

export type FailureKind = typeof PublishError | typeof ShareError;

export interface CallContext {
  /** The API call as its IAM action, e.g. `lambda:AddLayerVersionPermission`. */
  call: string;
  /** What the call was about, e.g. `layer my-layer version 3`. */
  resource: string;
  /** The IAM action to grant when access is denied, if not `call` itself. */
  permission?: string;
  /** What to do for any failure that is neither an access denial nor throttling. */
  hint?: string;
  /** Advice for specific error names, checked before the generic advice. */
  advice?: Readonly<Record<string, string>>;
}

export function errorName(error: unknown): string {
  if (typeof error === "object" && error !== null) {
    const name = (error as { name?: unknown }).name;
    if (typeof name === "string" && name !== "") return name;
  }
  return "Error";
}

export function errorStatus(error: unknown): number | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  return (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

export function errorMessage(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.replace(/\s*\n\s*/g, " ").trim();
}

export function isAccessDenied(error: unknown): boolean {
  return (
    /AccessDenied|UnauthorizedOperation|NotAuthorized|Forbidden/i.test(errorName(error)) || errorStatus(error) === 403
  );
}

export function isThrottling(error: unknown): boolean {
  return (
    /Throttl|TooManyRequests|RequestLimitExceeded|Rate ?Exceeded/i.test(errorName(error)) || errorStatus(error) === 429
  );
}

export function isNotFound(error: unknown): boolean {
  return /NotFound|NoSuch/.test(errorName(error)) || errorStatus(error) === 404;
}

/** A one-line error saying which call failed on what, why, and what to do. */
export function callFailed(kind: FailureKind, context: CallContext, error: unknown): LayerSyncError {
  const name = errorName(error);
  let advice = context.advice?.[name];
  if (advice === undefined) {
    if (isAccessDenied(error)) {
      advice = `grant ${context.permission ?? context.call} on ${context.resource} to the role that runs layer-sync`;
    } else if (isThrottling(error)) {
      advice =
        "AWS throttled the request after the SDK's retries; run again later (a run resumes where the last one stopped)";
    } else {
      advice = context.hint ?? "run again (a run resumes where the last one stopped)";
    }
  }
  const detail = errorMessage(error);
  return new kind(`${context.call} on ${context.resource} failed (${name}${detail ? `: ${detail}` : ""}); ${advice}`, {
    cause: error,
  });
}

/** Run one AWS call; any failure becomes `callFailed(kind, context, error)`. */
export async function attempt<T>(kind: FailureKind, context: CallContext, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw callFailed(kind, context, error);
  }
}
