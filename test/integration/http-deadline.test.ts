import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SourceError } from "../../lib/common/errors.ts";
import { readAll } from "../../lib/common/streams.ts";
import { HttpClient } from "../../lib/sync/http/client.ts";

// declares 100 bytes, then trickles one byte every 100 ms: never idle long enough for the inactivity timeout
let server: Server;
let origin: string;
const timers = new Set<NodeJS.Timeout>();
beforeAll(async () => {
  server = createServer((_req, res) => {
    res.writeHead(200, { "content-length": "100" });
    let sent = 0;
    const t = setInterval(() => {
      if (res.destroyed || sent >= 100) {
        clearInterval(t);
        if (!res.destroyed) res.end();
        return;
      }
      res.write("x");
      sent++;
    }, 100);
    timers.add(t);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  for (const t of timers) clearInterval(t);
  server.closeAllConnections();
  return new Promise<void>((resolve) => server.close(() => resolve()));
});

describe("a server that trickles its body", () => {
  it("is cut off at the request's overall deadline with a one-line reason, and not retried", async () => {
    const http = new HttpClient({
      authorization: undefined,
      authOrigins: [],
      userAgent: "t",
      timeoutMs: 1000,
      maxRetries: 3,
      rateLimitMaxWaitMs: 0,
      concurrency: 1,
      deadlineFloorMs: 500,
      minBytesPerSecond: 100, // 100 declared bytes: 1 s more, so 1.5 s in all
      sleep: async () => undefined,
    });
    const started = Date.now();
    const error = await http
      .send({ url: `${origin}/slow`, what: "trickle" }, (res) => readAll(res.body))
      .catch((e: unknown) => e);
    const took = Date.now() - started;
    await http.close();
    expect(error).toBeInstanceOf(SourceError);
    expect((error as Error).message).toMatch(/GET .*\/slow \(trickle\) did not finish within 2 s \(100 declared bytes/);
    expect(http.requestCount).toBe(1);
    expect(took).toBeGreaterThanOrEqual(1400);
    expect(took).toBeLessThan(5000);
  });
});
