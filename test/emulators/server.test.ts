import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pseudoRandomBytes } from "../fixtures/repo.ts";
import { type EmulatorHosts, startHosts } from "./server.ts";

const payload = pseudoRandomBytes(64 * 1024, 5);

let hosts: EmulatorHosts<"one" | "two">;
let slow: EmulatorHosts<"only">;

beforeAll(async () => {
  const handler = () => ({ status: 200, headers: { "content-type": "application/octet-stream" }, body: payload });
  hosts = await startHosts({ one: handler, two: handler });
  slow = await startHosts({ only: handler }, { latencyMs: 150 });
});

afterAll(async () => {
  await Promise.all([hosts.close(), slow.close()]);
});

const bytes = async (res: Response) => Buffer.from(await res.arrayBuffer());

describe("The emulator server", () => {
  it("serves each host on its own loopback origin", () => {
    expect(hosts.origins.one).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(hosts.origins.two).not.toBe(hosts.origins.one);
  });

  it("records method, raw path, raw query, headers, Authorization and the origin hit", async () => {
    hosts.resetRequests();
    await fetch(`${hosts.origins.two}/a%2Fb/c?x=1&y=%22z%22`, { headers: { authorization: "Bearer t" } });
    expect(hosts.requests).toHaveLength(1);
    expect(hosts.requests[0]).toMatchObject({
      method: "GET",
      path: "/a%2Fb/c",
      query: "x=1&y=%22z%22",
      authorization: "Bearer t",
      origin: hosts.origins.two,
      host: "two",
    });
    expect(hosts.requests[0]?.headers["user-agent"]).toBeDefined();
  });

  it("answers an injected status fault with its headers and JSON body, once by default", async () => {
    hosts.inject({
      match: (r) => r.path === "/status",
      fault: { kind: "status", status: 429, headers: { "retry-after": "3" }, body: { message: "slow down" } },
    });
    const res = await fetch(`${hosts.origins.one}/status`);
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBe("3");
    expect(await res.json()).toEqual({ message: "slow down" });
    expect((await fetch(`${hosts.origins.one}/status`)).status).toBe(200);
  });

  it("targets one host through the rule's match", async () => {
    hosts.inject({ match: (r) => r.host === "two", fault: { kind: "status", status: 503 } });
    expect((await fetch(`${hosts.origins.one}/x`)).status).toBe(200);
    expect((await fetch(`${hosts.origins.two}/x`)).status).toBe(503);
  });

  it("keeps applying a fault given times: Infinity until clearFaults", async () => {
    hosts.inject({ match: () => true, fault: { kind: "status", status: 500 }, times: Number.POSITIVE_INFINITY });
    for (let i = 0; i < 3; i++) expect((await fetch(`${hosts.origins.one}/x`)).status).toBe(500);
    hosts.clearFaults();
    expect((await fetch(`${hosts.origins.one}/x`)).status).toBe(200);
  });

  it("resets the connection half way through the body", async () => {
    hosts.inject({ match: () => true, fault: { kind: "reset-mid-body" } });
    const res = await fetch(`${hosts.origins.one}/x`);
    expect(res.status).toBe(200);
    await expect(res.arrayBuffer()).rejects.toThrow();
  });

  it("declares a longer Content-Length than it sends", async () => {
    hosts.inject({ match: () => true, fault: { kind: "length-mismatch" } });
    const res = await fetch(`${hosts.origins.one}/x`);
    expect(Number(res.headers.get("content-length"))).toBeGreaterThan(payload.length);
    await expect(res.arrayBuffer()).rejects.toThrow();
  });

  it("sends a truncated body with a matching Content-Length", async () => {
    hosts.inject({ match: () => true, fault: { kind: "truncate-body" } });
    const res = await fetch(`${hosts.origins.one}/x`);
    const body = await bytes(res);
    expect(body.length).toBe(payload.length / 2);
    expect(res.headers.get("content-length")).toBe(String(payload.length / 2));
    expect(body.equals(payload.subarray(0, payload.length / 2))).toBe(true);
  });

  it("sends a corrupted body of the same length", async () => {
    hosts.inject({ match: () => true, fault: { kind: "corrupt-body" } });
    const body = await bytes(await fetch(`${hosts.origins.one}/x`));
    expect(body.length).toBe(payload.length);
    expect(body.equals(payload)).toBe(false);
  });

  it("delays a response and then answers normally", async () => {
    hosts.inject({ match: () => true, fault: { kind: "delay", ms: 120 } });
    const started = Date.now();
    const body = await bytes(await fetch(`${hosts.origins.one}/x`));
    expect(Date.now() - started).toBeGreaterThanOrEqual(100);
    expect(body.equals(payload)).toBe(true);
  });

  it("adds the configured latency to every response", async () => {
    const started = Date.now();
    await fetch(`${slow.origins.only}/x`);
    expect(Date.now() - started).toBeGreaterThanOrEqual(130);
  });
});
