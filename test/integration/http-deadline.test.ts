import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SourceError } from "../../lib/common/errors.ts";
import { readAll } from "../../lib/common/streams.ts";
import { HttpClient } from "../../lib/sources/http/client.ts";

// declares 100 bytes, then trickles one byte every 100 ms: never idle long enough for the inactivity timeout,
// and 10 s for the whole body. `sent` counts the bytes written before the client went away.
let server: Server;
let origin: string;
const timers = new Set<NodeJS.Timeout>();
let sent = 0;
let closed: Promise<void> = Promise.resolve();
beforeAll(async () => {
  server = createServer((_req, res) => {
    res.writeHead(200, { "content-length": "100" });
    sent = 0;
    closed = new Promise((resolve) => res.on("close", resolve));
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
  // "Promptly" is the bytes the server sent before the cut, not the time it took: the deadline (1.5 s) cuts
  // the body long before its 100 bytes (10 s) arrive, however busy the machine is (both run on one event loop).
  it("is cut off at the request's overall deadline with a one-line reason, before the body ends, and not retried", async () => {
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
    const error = await http
      .send({ url: `${origin}/slow`, what: "trickle" }, (res) => readAll(res.body))
      .catch((e: unknown) => e);
    await http.close();
    await closed;
    expect(error).toBeInstanceOf(SourceError);
    expect((error as Error).message).toMatch(/GET .*\/slow \(trickle\) did not finish within 2 s \(100 declared bytes/);
    expect(http.requestCount).toBe(1);
    expect(sent).toBeGreaterThan(0);
    expect(sent).toBeLessThan(100);
  });
});
