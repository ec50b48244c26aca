/**
 * The HTTP client every source adapter uses (undici underneath).
 * - Timeouts on headers and on body inactivity, bounded concurrency, keep-alive.
 * - Retries with full-jitter exponential backoff on network errors, 429 and 5xx, honouring `Retry-After`
 *   and provider rate-limit resets within a bounded wait. Never retries 400/401/403/404.
 * - Redirects are followed by hand; the Authorization header only ever goes to the configured origins.
 * - Counts every request sent (retries and redirects included) for the run summary.
 * - Error messages name the request (method, URL without secrets, purpose) and never contain the token.
 */
import type { Readable } from "node:stream";
import { Agent, type Dispatcher, request } from "undici";
import { Semaphore } from "../../common/concurrency.ts";
import type { RunDeadline } from "../../common/deadline.ts";
import {
  RateLimitError,
  SourceAccessError,
  SourceAuthError,
  SourceError,
  SourceNotFoundError,
  SourceProtocolError,
} from "../../common/errors.ts";
import { redact, safeUrl } from "../../common/redact.ts";
import { readAllText } from "../../common/streams.ts";
import {
  discard,
  type Headers,
  header,
  isNetworkish,
  isTransient,
  release,
  retryAfterMs,
  STATUS_TEXT,
  untilAborted,
} from "./responses.ts";

export { type Headers, isTransient, RetryableBodyError, retryAfterMs } from "./responses.ts";

export interface HttpRequest {
  url: string | URL;
  method?: "GET" | "HEAD";
  headers?: Record<string, string>;
  /** What the request is for, in a few words ("list layers/tools"): goes into error messages. */
  what: string;
  /** Statuses the caller handles itself instead of getting an error thrown. */
  accept?: readonly number[];
  /** `manual` returns 3xx responses instead of following them. */
  redirect?: "follow" | "manual";
}

export interface HttpResponse {
  status: number;
  headers: Headers;
  /** The URL that answered, after redirects. */
  url: URL;
  body: Readable;
}

/** A rate-limit answer: how long to wait, if known, and when the limit resets. */
export interface RateLimitVerdict {
  waitMs: number | undefined;
  resetAt: Date | undefined;
}

export interface HttpClientOptions {
  /** Full Authorization header value, or undefined for anonymous access. */
  authorization: string | undefined;
  /** Origins (scheme://host:port) that may receive the Authorization header. */
  authOrigins: readonly string[];
  userAgent: string;
  defaultHeaders?: Record<string, string>;
  timeoutMs: number;
  maxRetries: number;
  /** The longest total time one request may spend waiting for rate limits to reset. */
  rateLimitMaxWaitMs: number;
  concurrency: number;
  /**
   * Recognise a provider's rate-limit answer (called for 403 and 429 with the body text). Return undefined
   * when the response is not a rate limit.
   */
  rateLimit?: (status: number, headers: Headers, body: string, now: number) => RateLimitVerdict | undefined;
  /** Pull the provider's error message out of an error body. */
  errorMessage?: (body: string) => string | undefined;
  /** One-sentence advice per status, appended to errors. */
  hints?: Partial<Record<number, string>>;
  /**
   * The overall deadline of one attempt, headers to the end of the body: `deadlineFloorMs` (default 4 ×
   * `timeoutMs`) plus the declared Content-Length at `minBytesPerSecond` (default 64 KiB/s); without a declared
   * length, the larger of the floor and 15 minutes. A server that trickles is cut off there.
   */
  deadlineFloorMs?: number;
  minBytesPerSecond?: number;
  /**
   * The run's deadline: once it passes, requests under way are aborted (their bodies destroyed), retry waits
   * end, no request is sent, and `send` throws a `DeadlineError` naming the request.
   */
  runDeadline?: RunDeadline;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
  random?: () => number;
  dispatcher?: Dispatcher;
}

/** The slowest a body may arrive, on average, before its request's overall deadline cuts it off. */
export const MIN_BYTES_PER_SECOND = 64 * 1024;
/** The deadline of a body whose length is not declared. */
const UNDECLARED_DEADLINE_MS = 15 * 60_000;
/** How much of a small text body (an error body, `text()`) is kept; the rest is drained. */
const SMALL_TEXT_MAX = 64 * 1024;

export class HttpClient {
  /** Requests sent so far, retries and redirects included. */
  requestCount = 0;
  private readonly options: HttpClientOptions;
  private readonly semaphore: Semaphore;
  private readonly dispatcher: Dispatcher;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly now: () => number;
  private readonly random: () => number;

  constructor(options: HttpClientOptions) {
    this.options = options;
    this.semaphore = new Semaphore(Math.max(1, options.concurrency));
    this.dispatcher =
      options.dispatcher ??
      new Agent({
        connections: Math.max(2, options.concurrency),
        headersTimeout: options.timeoutMs,
        bodyTimeout: options.timeoutMs,
        connectTimeout: Math.min(options.timeoutMs, 10_000),
        keepAliveTimeout: 10_000,
      });
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
  }

  /** Close idle connections (the client stays usable only if a dispatcher was passed in). */
  async close(): Promise<void> {
    if (!this.options.dispatcher) await this.dispatcher.close();
  }

  /** Describe a request for messages: method, URL without secrets, purpose. */
  describe(req: HttpRequest): string {
    return `${req.method ?? "GET"} ${safeUrl(req.url)} (${req.what})`;
  }

  /**
   * Send a request and hand the response to `consume`. Transient failures before or during `consume`
   * (including a connection reset in the middle of a body) restart the whole request, so `consume` must be
   * safe to call again from scratch.
   */
  async send<T>(req: HttpRequest, consume: (res: HttpResponse) => Promise<T>): Promise<T> {
    let attempt = 0;
    let rateLimitWaited = 0;
    const runDeadline = this.options.runDeadline;
    for (;;) {
      runDeadline?.check(this.describe(req));
      await this.semaphore.acquire();
      let retryIn: number | undefined;
      let lastError: unknown;
      try {
        const res = await this.once(req);
        const verdict = await this.check(req, res);
        if (verdict === "ok") {
          const deadline = this.deadline(req, res);
          try {
            return await consume(res);
          } catch (error) {
            throw deadline.expired ?? error; // a cut-off body is never retried
          } finally {
            clearTimeout(deadline.timer);
            release(res.body); // a refused or abandoned body must not hold its connection (close() waits for it)
          }
        }
        // a retryable status: decide whether and when to try again
        if (verdict.rateLimit) {
          const wait = verdict.rateLimit.waitMs ?? this.backoff(attempt);
          if (rateLimitWaited + wait > this.options.rateLimitMaxWaitMs || attempt >= this.options.maxRetries + 2) {
            throw this.rateLimitError(req, res.status, verdict.rateLimit);
          }
          rateLimitWaited += wait;
          retryIn = wait;
        } else {
          if (attempt >= this.options.maxRetries) throw verdict.error;
          const hinted = retryAfterMs(res.headers, this.now());
          retryIn = hinted !== undefined ? Math.min(hinted, 30_000) : this.backoff(attempt);
        }
        lastError = verdict.error;
      } catch (error) {
        if (runDeadline?.passed) throw runDeadline.error(this.describe(req), error);
        if (!isTransient(error) || attempt >= this.options.maxRetries) {
          throw this.wrap(req, error, attempt);
        }
        lastError = error;
        retryIn = this.backoff(attempt);
      } finally {
        this.semaphore.release();
      }
      if (lastError === undefined && retryIn === undefined) throw new SourceError(`${this.describe(req)} failed`);
      attempt++;
      await untilAborted(this.sleep(retryIn ?? 0), runDeadline?.signal);
    }
  }

  /** GET a JSON document. */
  async json<T>(req: HttpRequest): Promise<T> {
    return this.send(req, async (res) => {
      const text = await readAllText(res.body, { limit: 64 * 1024 * 1024, truncate: true });
      try {
        return JSON.parse(text) as T;
      } catch (error) {
        throw new SourceProtocolError(
          `${this.describe(req)} answered ${res.status} with a body that is not JSON (${redact(text.slice(0, 4096)).slice(0, 80).replace(/\s+/g, " ")}…)`,
          { cause: error, status: res.status, request: this.describe(req) },
        );
      }
    });
  }

  /** GET a small text body. */
  async text(req: HttpRequest): Promise<{ status: number; text: string; headers: Headers }> {
    return this.send(req, async (res) => ({
      status: res.status,
      text: await readAllText(res.body, { limit: SMALL_TEXT_MAX, truncate: true }),
      headers: res.headers,
    }));
  }

  /** Arm the overall deadline of one attempt: on expiry the body is destroyed with a one-line reason. */
  private deadline(req: HttpRequest, res: HttpResponse): { timer: NodeJS.Timeout; expired?: SourceError } {
    const declared = Number(header(res.headers, "content-length"));
    const floor = this.options.deadlineFloorMs ?? 4 * this.options.timeoutMs;
    const rate = this.options.minBytesPerSecond ?? MIN_BYTES_PER_SECOND;
    const ms =
      Number.isFinite(declared) && declared >= 0
        ? floor + Math.ceil((declared / rate) * 1000)
        : Math.max(floor, UNDECLARED_DEADLINE_MS);
    const state: { timer: NodeJS.Timeout; expired?: SourceError } = {
      timer: setTimeout(() => {
        const length = Number.isFinite(declared) ? `${declared} declared bytes` : "a body of undeclared length";
        state.expired = new SourceError(
          `${this.describe(req)} did not finish within ${Math.round(ms / 1000)} s (${length} at the minimum of ${rate} bytes/s plus ${Math.round(floor / 1000)} s); the server is sending too slowly — retry later`,
          { request: this.describe(req) },
        );
        res.body.destroy(state.expired);
      }, ms),
    };
    state.timer.unref();
    return state;
  }

  private backoff(attempt: number): number {
    const ceiling = Math.min(10_000, 250 * 2 ** attempt);
    return Math.round(ceiling / 2 + (this.random() * ceiling) / 2);
  }

  private headersFor(url: URL, extra: Record<string, string> | undefined): Record<string, string> {
    const h: Record<string, string> = { "user-agent": this.options.userAgent, ...this.options.defaultHeaders };
    for (const [k, v] of Object.entries(extra ?? {})) h[k.toLowerCase()] = v;
    if (this.options.authorization && this.options.authOrigins.includes(url.origin)) {
      h.authorization = this.options.authorization;
    } else {
      delete h.authorization;
    }
    return h;
  }

  /** One request, following redirects by hand (at most 5), dropping Authorization off the allowed origins. */
  private async once(req: HttpRequest): Promise<HttpResponse> {
    let url = new URL(String(req.url));
    for (let hops = 0; ; hops++) {
      this.requestCount++;
      const res = await request(url, {
        method: req.method ?? "GET",
        headers: this.headersFor(url, req.headers),
        dispatcher: this.dispatcher,
        ...(this.options.runDeadline ? { signal: this.options.runDeadline.signal } : {}),
      });
      const location = header(res.headers as Headers, "location");
      if (req.redirect !== "manual" && [301, 302, 303, 307, 308].includes(res.statusCode) && location) {
        await discard(res.body);
        if (hops >= 5) {
          throw new SourceProtocolError(`${this.describe(req)} redirected more than 5 times`, {
            request: this.describe(req),
          });
        }
        url = new URL(location, url);
        if (url.protocol !== "https:" && url.protocol !== "http:") {
          throw new SourceProtocolError(`${this.describe(req)} redirected to a non-HTTP URL`);
        }
        continue;
      }
      return { status: res.statusCode, headers: res.headers as Headers, url, body: res.body };
    }
  }

  /** "ok", or the error this response stands for and whether it is a rate limit worth waiting for. */
  private async check(
    req: HttpRequest,
    res: HttpResponse,
  ): Promise<"ok" | { error: SourceError; rateLimit?: RateLimitVerdict }> {
    const { status } = res;
    if (status < 400 || req.accept?.includes(status)) return "ok";
    const body = await readAllText(res.body, { limit: SMALL_TEXT_MAX, truncate: true });
    if (status === 403 || status === 429) {
      const verdict =
        this.options.rateLimit?.(status, res.headers, body, this.now()) ??
        (status === 429 ? { waitMs: retryAfterMs(res.headers, this.now()), resetAt: undefined } : undefined);
      if (verdict) return { error: this.statusError(req, status, body), rateLimit: verdict };
    }
    const error = this.statusError(req, status, body);
    if (status >= 500 || status === 408) return { error };
    throw error;
  }

  private statusError(req: HttpRequest, status: number, body: string): SourceError {
    // one line, and without a final period, since a hint may follow
    // redact before the cut: a token cut in two is no longer recognised
    const extracted = this.options.errorMessage?.(body);
    const providerMessage =
      extracted === undefined
        ? undefined
        : redact(extracted.replace(/\s+/g, " "))
            .slice(0, 300)
            .replace(/[\s.]+$/, "");
    const hint = this.options.hints?.[status];
    const text =
      `${this.describe(req)} answered ${status} ${STATUS_TEXT[status] ?? ""}`.trimEnd() +
      (providerMessage ? `: ${providerMessage}` : "") +
      (hint ? `. ${hint}` : "");
    const opts = { status, request: this.describe(req) };
    if (status === 401) return new SourceAuthError(text, opts);
    if (status === 403) return new SourceAccessError(text, opts);
    if (status === 404 || status === 422) return new SourceNotFoundError(text, opts);
    return new SourceError(text, opts);
  }

  private rateLimitError(req: HttpRequest, status: number, verdict: RateLimitVerdict): RateLimitError {
    const reset = verdict.resetAt
      ? `; it resets at ${verdict.resetAt.toISOString()}`
      : verdict.waitMs !== undefined
        ? `; the server asked to wait ${Math.ceil(verdict.waitMs / 1000)} s`
        : "";
    return new RateLimitError(
      `${this.describe(req)} hit the provider's rate limit (HTTP ${status}) and it did not clear within ${Math.round(
        this.options.rateLimitMaxWaitMs / 1000,
      )} s${reset}. Retry later, use a token with its own allowance (an access token), or prefer the archive strategy`,
      { status, request: this.describe(req), resetAt: verdict.resetAt },
    );
  }

  private wrap(req: HttpRequest, error: unknown, attempt: number): Error {
    if (error instanceof SourceError) return error;
    if (error instanceof Error && error.name !== "RetryableBodyError" && !isTransient(error) && !isNetworkish(error)) {
      return error;
    }
    const code = (error as { code?: unknown }).code;
    const reason = error instanceof Error ? error.message : String(error);
    return new SourceError(
      redact(
        `${this.describe(req)} failed after ${attempt + 1} attempt${attempt ? "s" : ""}: ${
          typeof code === "string" ? `${code} ` : ""
        }${reason}`,
      ),
      { cause: error, request: this.describe(req) },
    );
  }
}
