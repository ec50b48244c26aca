import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { SourceError } from "../../lib/common/errors.ts";
import { clearSecrets, registerSecret } from "../../lib/common/redact.ts";
import { bitbucketHttpOptions } from "../../lib/sources/bitbucket.ts";
import { HttpClient } from "../../lib/sources/http/client.ts";

// echoes the Authorization header back in a provider error body, after `pad` characters of padding
let server: Server;
let origin: string;
beforeAll(async () => {
  server = createServer((req, res) => {
    const pad = Number(new URL(req.url ?? "/", "http://x").searchParams.get("pad"));
    const message = `${"p".repeat(pad)}${req.headers.authorization ?? ""} was refused`;
    res.writeHead(400, { "content-type": "application/json" }).end(JSON.stringify({ error: { message } }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
afterEach(() => clearSecrets());

/** Every run of 6 characters of `secret` (or of its base64): none may reach a message. */
function windows(secret: string): string[] {
  const out: string[] = [];
  for (const s of [secret, Buffer.from(secret).toString("base64")]) {
    for (let i = 0; i + 6 <= s.length; i++) out.push(s.slice(i, i + 6));
  }
  return out;
}

async function messageAt(authorization: string, pad: number): Promise<string> {
  const http = new HttpClient({
    ...bitbucketHttpOptions,
    authorization,
    authOrigins: [origin],
    userAgent: "t",
    timeoutMs: 2000,
    maxRetries: 0,
    rateLimitMaxWaitMs: 0,
    concurrency: 1,
  });
  try {
    await http.text({ url: `${origin}/x?pad=${pad}`, what: "echo" });
    throw new Error("expected a refusal");
  } catch (error) {
    expect(error).toBeInstanceOf(SourceError);
    return (error as Error).message;
  } finally {
    await http.close();
  }
}

describe("a provider error that echoes the token", () => {
  it.each([
    ["a Bearer token", "tok_ABCDEFGHIJKLMNOPQRSTUVW", (t: string) => `Bearer ${t}`, (t: string) => t],
    [
      "a user:secret Basic token",
      "me@acme.com:SECRETabcdefghijklmnop",
      (t: string) => `Basic ${Buffer.from(t).toString("base64")}`,
      (t: string) => t.slice(t.indexOf(":") + 1),
    ],
  ])("never shows any part of %s, wherever the 300-character cut falls", async (_what, token, header, secretOf) => {
    registerSecret(token);
    const sent = header(token);
    const secret = secretOf(token);
    const forbidden = [
      ...windows(secret),
      ...windows(sent.slice(sent.indexOf(" ") + 1)).filter((w) => !/^p+$/.test(w)),
    ];
    // the cut is at 300 characters of the provider message: put it at every offset inside the header
    for (let pad = 300 - sent.length - 1; pad <= 301; pad++) {
      const message = await messageAt(sent, pad);
      for (const w of forbidden) expect(message, `pad ${pad}`).not.toContain(w);
      expect(message.length).toBeLessThan(1000);
    }
  });
});
