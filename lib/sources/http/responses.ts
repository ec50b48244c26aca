/**
 * What the HTTP client needs around a response: which failures are worth another attempt, `Retry-After`,
 * status texts, reading a short error body, and releasing a body the client will not read to its end.
 */
import type { Readable } from "node:stream";
import { SourceError } from "../../common/errors.ts";

export type Headers = Record<string, string | string[] | undefined>;

/** Thrown by a body consumer to ask for the whole request to be retried (for example a truncated archive). */
export class RetryableBodyError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "RetryableBodyError";
  }
}

const TRANSIENT_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
  "EAI_AGAIN",
  "ENETUNREACH",
  "EHOSTUNREACH",
  "ERR_STREAM_PREMATURE_CLOSE",
  "UND_ERR_SOCKET",
  "UND_ERR_CLOSED",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "UND_ERR_RES_CONTENT_LENGTH_MISMATCH",
  "UND_ERR_REQ_CONTENT_LENGTH_MISMATCH",
  "UND_ERR_ABORTED",
  "Z_BUF_ERROR",
]);

/** Whether an error thrown while sending or reading a response is worth another attempt. */
export function isTransient(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e && depth < 5; depth++) {
    if (e instanceof RetryableBodyError) return true;
    if (e instanceof SourceError) return false;
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && TRANSIENT_CODES.has(code)) return true;
    const message = (e as { message?: unknown }).message;
    if (typeof message === "string" && /other side closed|premature close|socket hang up|aborted/i.test(message)) {
      return true;
    }
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

export function header(headers: Headers, name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/** `Retry-After` in seconds or as an HTTP date, in milliseconds from `now`. */
export function retryAfterMs(headers: Headers, now: number): number | undefined {
  const v = header(headers, "retry-after");
  if (v === undefined) return undefined;
  if (/^\d+(\.\d+)?$/.test(v.trim())) return Math.ceil(Number(v) * 1000);
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

export const STATUS_TEXT: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  409: "Conflict",
  410: "Gone",
  422: "Unprocessable Entity",
  429: "Too Many Requests",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  555: "Timeout",
};

export async function discard(body: Readable): Promise<void> {
  try {
    for await (const _ of body) {
      // drain so the connection can be reused
    }
  } catch {
    // the body is being thrown away anyway
  }
}

/** `wait`, or less: it ends when `signal` aborts (the caller then checks the deadline). */
export function untilAborted(wait: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return wait;
  if (signal.aborted) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const done = () => {
      signal.removeEventListener("abort", done);
      resolve();
    };
    signal.addEventListener("abort", done, { once: true });
    wait.then(done, (error: unknown) => {
      signal.removeEventListener("abort", done);
      reject(error);
    });
  });
}

/** Drop what is left of a response body, so its connection is freed and closing the client never waits. */
export function release(body: Readable): void {
  if (!body.readableEnded && !body.destroyed) body.destroy();
}

export function isNetworkish(error: Error): boolean {
  const code = (error as { code?: unknown }).code;
  return typeof code === "string" && (code.startsWith("UND_ERR") || code.startsWith("E"));
}
