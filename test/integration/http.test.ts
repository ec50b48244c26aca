import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  RateLimitError,
  SourceAccessError,
  SourceAuthError,
  SourceError,
  SourceNotFoundError,
} from "../../lib/common/errors.ts";
import { readAll } from "../../lib/common/streams.ts";
import { HttpClient, type HttpClientOptions } from "../../lib/sources/http/client.ts";

type Route = (req: IncomingMessage, res: ServerResponse, hit: number) => void;
const routes = new Map<string, Route>();
const hits = new Map<string, number>();
const seen: { path: string; authorization: string | undefined; host: string }[] = [];
let inFlight = 0;
let maxInFlight = 0;

function start(name: string): Promise<{ server: Server; origin: string }> {
  const server = createServer((req, res) => {
    const path = req.url ?? "/";
    seen.push({ path, authorization: req.headers.authorization, host: name });
    const n = (hits.get(path) ?? 0) + 1;
    hits.set(path, n);
    const route = routes.get(path);
    if (!route) {
      res.writeHead(404).end("{}");
      return;
    }
    route(req, res, n);
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve({ server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }),
    ),
  );
}

let api: { server: Server; origin: string };
let other: { server: Server; origin: string };
const waits: number[] = [];

function client(overrides: Partial<HttpClientOptions> = {}): HttpClient {
  return new HttpClient({
    authorization: "Bearer secret-token",
    authOrigins: [api.origin],
    userAgent: "layer-sync-test",
    timeoutMs: 2000,
    maxRetries: 3,
    rateLimitMaxWaitMs: 5000,
    concurrency: 4,
    sleep: async (ms) => {
      waits.push(ms);
    },
    random: () => 0.5,
    errorMessage: (body) => (JSON.parse(body) as { message?: string }).message,
    ...overrides,
  });
}

beforeAll(async () => {
  api = await start("api");
  other = await start("other");
});
afterAll(() => {
  api.server.close();
  other.server.close();
});
beforeEach(() => {
  routes.clear();
  hits.clear();
  seen.length = 0;
  waits.length = 0;
});

describe("HttpClient", () => {
  it("retries 503 with backoff and counts every request", async () => {
    routes.set("/flaky", (_q, res, n) =>
      n < 3 ? res.writeHead(503).end("{}") : res.writeHead(200).end('{"ok":true}'),
    );
    const http = client();
    expect(await http.json({ url: `${api.origin}/flaky`, what: "flaky" })).toEqual({ ok: true });
    expect(http.requestCount).toBe(3);
    expect(waits).toHaveLength(2);
    expect(waits[1]).toBeGreaterThan(waits[0] ?? 0);
  });

  it("honours Retry-After on 429", async () => {
    routes.set("/limited", (_q, res, n) =>
      n === 1 ? res.writeHead(429, { "retry-after": "2" }).end("{}") : res.writeHead(200).end("[]"),
    );
    await client().json({ url: `${api.origin}/limited`, what: "limited" });
    expect(waits).toEqual([2000]);
  });

  it("gives up on a rate limit that will not clear within the budget, saying when it resets", async () => {
    routes.set("/gh", (_q, res) => res.writeHead(429, { "retry-after": "600" }).end("{}"));
    const error = await client()
      .json({ url: `${api.origin}/gh`, what: "read the tree" })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RateLimitError);
    expect((error as Error).message).toMatch(/GET .*\/gh \(read the tree\) hit the provider's rate limit .*wait 600 s/);
    expect(waits).toEqual([]);
  });

  it.each([
    [401, SourceAuthError],
    [403, SourceAccessError],
    [404, SourceNotFoundError],
    [400, SourceError],
  ])("does not retry a %i and throws its own error class naming the request", async (status, kind) => {
    routes.set("/no", (_q, res) => res.writeHead(status).end('{"message":"nope"}'));
    const http = client({ hints: { [status]: "Do the right thing" } });
    const error = await http.json({ url: `${api.origin}/no`, what: "probe" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(kind);
    expect((error as Error).message).toMatch(
      new RegExp(`GET ${api.origin}/no \\(probe\\) answered ${status}.*: nope\\. Do the right thing`),
    );
    expect(http.requestCount).toBe(1);
  });

  it("follows a redirect to another host without sending the Authorization header there", async () => {
    routes.set("/download", (_q, res) => res.writeHead(302, { location: `${other.origin}/blob?token=xyz` }).end());
    routes.set("/blob?token=xyz", (_q, res) => res.writeHead(200).end("bytes"));
    const http = client();
    const body = await http.send({ url: `${api.origin}/download`, what: "dl" }, async (res) =>
      (await readAll(res.body)).toString(),
    );
    expect(body).toBe("bytes");
    expect(seen.map((s) => [s.host, s.authorization])).toEqual([
      ["api", "Bearer secret-token"],
      ["other", undefined],
    ]);
    expect(http.requestCount).toBe(2);
  });

  it("restarts the whole request when the connection resets in the middle of a body", async () => {
    routes.set("/reset", (_q, res, n) => {
      if (n === 1) {
        res.writeHead(200, { "content-length": "100" });
        res.write("partial");
        res.socket?.destroy();
      } else res.writeHead(200).end("complete");
    });
    const body = await client().send({ url: `${api.origin}/reset`, what: "reset" }, async (res) =>
      (await readAll(res.body)).toString(),
    );
    expect(body).toBe("complete");
    expect(hits.get("/reset")).toBe(2);
  });

  it("times out a silent server and says which request timed out", async () => {
    routes.set("/slow", () => {
      // never answers
    });
    const error = await client({ timeoutMs: 200, maxRetries: 1 })
      .json({ url: `${api.origin}/slow`, what: "slow listing" })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SourceError);
    expect((error as Error).message).toMatch(
      /GET .*\/slow \(slow listing\) failed after 2 attempts: .*(Timeout|timeout)/,
    );
  });

  it("never has more requests in flight than its concurrency", async () => {
    routes.set("/wait", (_q, res) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      setTimeout(() => {
        inFlight--;
        res.writeHead(200).end("{}");
      }, 20);
    });
    const http = client({ concurrency: 3 });
    await Promise.all(Array.from({ length: 12 }, () => http.json({ url: `${api.origin}/wait`, what: "w" })));
    expect(maxInFlight).toBe(3);
  });
});
