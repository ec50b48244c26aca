/**
 * Shared plumbing for the API emulators: one loopback HTTP server per emulated host (API, web, media, …),
 * a request log shared by all of them, optional latency, and a fault injector that can break any response
 * on the wire (status, reset mid-body, short body, delay, truncated or corrupted payload).
 */
import { randomBytes } from "node:crypto";
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import type { AddressInfo } from "node:net";

/** One request as it arrived, before any fault or latency was applied. */
export interface RecordedRequest {
  method: string;
  /** The path exactly as sent, still percent-encoded, without the query. */
  path: string;
  /** The raw query string without the leading `?` ("" when there is none). */
  query: string;
  url: URL;
  headers: IncomingHttpHeaders;
  authorization: string | undefined;
  /** The origin that received the request, e.g. `http://127.0.0.1:40123`. */
  origin: string;
  /** Which emulated host it hit: "api", "web", "media", "codeload", … */
  host: string;
  /** Arrival time (ms since the epoch). */
  at: number;
}

/** What a fault rule's `match` sees. */
export interface FaultTarget {
  method: string;
  /** Raw (percent-encoded) path without the query. */
  path: string;
  url: URL;
  host: string;
}

export type Fault =
  | { kind: "status"; status: number; headers?: Record<string, string>; body?: unknown }
  /** Send the headers and about half of the real body, then destroy the socket. */
  | { kind: "reset-mid-body" }
  /** Declare a Content-Length larger than the real body, send the body, end (the socket is then closed). */
  | { kind: "length-mismatch" }
  /** Wait, then answer normally. */
  | { kind: "delay"; ms: number }
  /** Send only the first half of the body, with a Content-Length that matches the half. */
  | { kind: "truncate-body" }
  /** Same length, bytes flipped in the middle. */
  | { kind: "corrupt-body" }
  /** The real headers and Content-Length, then one byte of the body every `intervalMs` (never idle for long). */
  | { kind: "trickle"; intervalMs: number };

export interface FaultRule {
  match: (req: FaultTarget) => boolean;
  fault: Fault;
  /** How many matching requests the fault applies to (default 1; `Infinity` allowed). */
  times?: number;
}

/** A request as handlers see it. */
export interface EmulatorRequest {
  method: string;
  /** Raw (percent-encoded) path without the query. */
  path: string;
  url: URL;
  headers: IncomingHttpHeaders;
  origin: string;
  host: string;
}

export interface EmulatorResponse {
  status: number;
  headers?: Record<string, string>;
  body?: Buffer | string;
}

export type Handler = (req: EmulatorRequest) => EmulatorResponse | Promise<EmulatorResponse>;

/** The controls every emulator exposes. */
export interface EmulatorControls {
  /** The live request log (reset in place by `resetRequests`). */
  readonly requests: RecordedRequest[];
  resetRequests(): void;
  inject(rule: FaultRule): void;
  clearFaults(): void;
  close(): Promise<void>;
}

export interface EmulatorHosts<K extends string> extends EmulatorControls {
  /** `http://127.0.0.1:<port>` for each named host. */
  origins: Record<K, string>;
}

export interface HostOptions {
  /** Added before every response (after the request is recorded). */
  latencyMs?: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A JSON response with a `charset=utf-8` content type. */
export function json(status: number, body: unknown, headers: Record<string, string> = {}): EmulatorResponse {
  return {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
    body: JSON.stringify(body),
  };
}

/** A redirect without a body. */
export function redirect(status: number, location: string, headers: Record<string, string> = {}): EmulatorResponse {
  return { status, headers: { location, ...headers }, body: "" };
}

/** A random opaque token (hex). */
export function randomToken(bytes = 16): string {
  return randomBytes(bytes).toString("hex");
}

/** Split a raw path into percent-decoded segments (the leading empty segment is dropped; a trailing one kept). */
export function segmentsOf(rawPath: string): string[] | undefined {
  try {
    return rawPath.split("/").slice(1).map(decodeURIComponent);
  } catch {
    return undefined;
  }
}

/** Percent-encode each segment of a `/`-separated path, keeping the slashes. */
export function encodePath(path: string): string {
  return path.split("/").map(encodeURIComponent).join("/");
}

/** Parse an `Authorization` header into its scheme (lower-cased) and credentials. */
export function parseAuthorization(header: string | undefined): { scheme: string; credentials: string } | undefined {
  if (!header) return undefined;
  const space = header.indexOf(" ");
  if (space < 0) return { scheme: header.toLowerCase(), credentials: "" };
  return { scheme: header.slice(0, space).toLowerCase(), credentials: header.slice(space + 1).trim() };
}

/** Decode Basic credentials into user and password. */
export function decodeBasic(credentials: string): { user: string; password: string } | undefined {
  const text = Buffer.from(credentials, "base64").toString("utf8");
  const colon = text.indexOf(":");
  if (colon < 0) return undefined;
  return { user: text.slice(0, colon), password: text.slice(colon + 1) };
}

class FaultBook {
  private rules: { rule: FaultRule; left: number }[] = [];

  add(rule: FaultRule): void {
    this.rules.push({ rule, left: rule.times ?? 1 });
  }

  clear(): void {
    this.rules = [];
  }

  /** The first rule that matches, consuming one of its uses. */
  take(target: FaultTarget): Fault | undefined {
    const hit = this.rules.find((r) => r.left > 0 && r.rule.match(target));
    if (!hit) return undefined;
    hit.left -= 1;
    this.rules = this.rules.filter((r) => r.left > 0);
    return hit.rule.fault;
  }
}

function statusFaultResponse(fault: Extract<Fault, { kind: "status" }>): EmulatorResponse {
  const { body } = fault;
  if (body === undefined) return { status: fault.status, headers: { ...fault.headers }, body: "" };
  if (typeof body === "string" || Buffer.isBuffer(body))
    return { status: fault.status, headers: { ...fault.headers }, body };
  return json(fault.status, body, fault.headers);
}

function bodyOf(response: EmulatorResponse): Buffer {
  const { body } = response;
  if (body === undefined) return Buffer.alloc(0);
  return Buffer.isBuffer(body) ? body : Buffer.from(body);
}

function corrupt(body: Buffer): Buffer {
  const out = Buffer.from(body);
  const start = Math.floor(out.length / 2);
  for (let i = start; i < Math.min(out.length, start + 16); i++) out[i] = (out[i] ?? 0) ^ 0xff;
  return out;
}

function writeHead(res: ServerResponse, response: EmulatorResponse, length: number): void {
  res.writeHead(response.status, { ...response.headers, "content-length": String(length) });
}

/** Write `response` to the wire, shaped by `fault` (already resolved) where it applies to the body. */
function deliver(
  req: IncomingMessage,
  res: ServerResponse,
  response: EmulatorResponse,
  fault: Fault | undefined,
): void {
  const full = req.method === "HEAD" ? Buffer.alloc(0) : bodyOf(response);
  switch (fault?.kind) {
    case "reset-mid-body": {
      writeHead(res, response, full.length);
      res.write(full.subarray(0, Math.floor(full.length / 2)), () => res.destroy());
      return;
    }
    case "length-mismatch": {
      writeHead(res, response, full.length + Math.max(16, full.length));
      res.end(full, () => res.destroy());
      return;
    }
    case "truncate-body": {
      const half = full.subarray(0, Math.floor(full.length / 2));
      writeHead(res, response, half.length);
      res.end(half);
      return;
    }
    case "corrupt-body": {
      writeHead(res, response, full.length);
      res.end(corrupt(full));
      return;
    }
    case "trickle": {
      writeHead(res, response, full.length);
      let sent = 0;
      const timer = setInterval(() => {
        if (res.destroyed || sent >= full.length) {
          clearInterval(timer);
          if (!res.destroyed) res.end();
          return;
        }
        res.write(full.subarray(sent, sent + 1));
        sent++;
      }, fault.intervalMs);
      res.on("close", () => clearInterval(timer));
      return;
    }
    default:
      writeHead(res, response, full.length);
      res.end(full);
  }
}

function record(req: IncomingMessage, url: URL, origin: string, host: string): RecordedRequest {
  const raw = req.url ?? "/";
  const q = raw.indexOf("?");
  return {
    method: req.method ?? "GET",
    path: q < 0 ? raw : raw.slice(0, q),
    query: q < 0 ? "" : raw.slice(q + 1),
    url,
    headers: req.headers,
    authorization: req.headers.authorization,
    origin,
    host,
    at: Date.now(),
  };
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return `http://127.0.0.1:${port}`;
}

/**
 * Start one loopback server per handler. All of them share the request log and the fault rules; a fault's
 * `match` sees `host` (the handler's key) so a rule can target one origin.
 */
export async function startHosts<K extends string>(
  handlers: Record<K, Handler>,
  options: HostOptions = {},
): Promise<EmulatorHosts<K>> {
  const requests: RecordedRequest[] = [];
  const faults = new FaultBook();
  const servers: Server[] = [];
  const origins = {} as Record<K, string>;

  for (const host of Object.keys(handlers) as K[]) {
    const handler = handlers[host];
    let origin = "";
    const server = createServer((req, res) => {
      const url = new URL(req.url ?? "/", origin);
      const recorded = record(req, url, origin, host);
      requests.push(recorded);
      void respond(req, res, { method: recorded.method, path: recorded.path, url, headers: req.headers, origin, host });
    });
    const respond = async (req: IncomingMessage, res: ServerResponse, request: EmulatorRequest) => {
      if (options.latencyMs) await sleep(options.latencyMs);
      const fault = faults.take({ method: request.method, path: request.path, url: request.url, host });
      if (fault?.kind === "delay") await sleep(fault.ms);
      let response: EmulatorResponse;
      try {
        response = fault?.kind === "status" ? statusFaultResponse(fault) : await handler(request);
      } catch (error) {
        response = json(500, { message: `emulator error: ${error instanceof Error ? error.message : String(error)}` });
      }
      if (!res.destroyed) deliver(req, res, response, fault);
    };
    origin = await listen(server);
    origins[host] = origin;
    servers.push(server);
  }

  return {
    origins,
    requests,
    resetRequests: () => {
      requests.splice(0, requests.length);
    },
    inject: (rule) => faults.add(rule),
    clearFaults: () => faults.clear(),
    close: async () => {
      await Promise.all(
        servers.map(
          (server) =>
            new Promise<void>((resolve) => {
              server.closeAllConnections();
              server.close(() => resolve());
            }),
        ),
      );
    },
  };
}
