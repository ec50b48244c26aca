import { join } from "node:path";
import { CreateEventBusCommand } from "@aws-sdk/client-eventbridge";
import { PutParameterCommand } from "@aws-sdk/client-ssm";
import type { Context } from "aws-lambda";
import { afterEach, describe, expect, it } from "vitest";
import { main } from "../../cli/main.ts";
import { awsClients } from "../../handlers/runtime.ts";
import { handler as syncHandler } from "../../handlers/sync.ts";
import { uniqueName } from "../support/aws.ts";
import { captureIo } from "../support/zip.ts";
import { type Provider, runCli, sourceEnv, useSources } from "./harness.ts";
import {
  BITBUCKET_API_SECRET,
  BITBUCKET_BASIC_TOKEN,
  BITBUCKET_TOKEN,
  forms,
  GITHUB_TOKEN,
  leaksIn,
  scan,
  scannedCount,
  watchSecrets,
} from "./secrets.ts";

watchSecrets();

const sources = useSources({ bucket: "rel-secrets" });
const { ssm } = sources;
let run = 0;

/** Everything a server could echo back: the token in each encoding, and the Basic header value. */
function echo(token: string): string {
  return `you sent ${forms(token).join(" | ")} | Authorization: Basic ${Buffer.from(token).toString("base64")}`;
}

describe("the suite's own scanner", () => {
  it("finds a token in every form it guards: raw, Basic (base64), URL-encoded and form-encoded, and the secret of email:secret", () => {
    for (const token of [BITBUCKET_TOKEN, BITBUCKET_BASIC_TOKEN, GITHUB_TOKEN]) {
      expect(encodeURIComponent(token)).not.toBe(token); // the tokens hold characters URL-encoding changes
      expect(leaksIn(`x ${token} x`)).not.toEqual([]);
      expect(leaksIn(`x ${Buffer.from(token).toString("base64")} x`)).not.toEqual([]);
      expect(leaksIn(`x ${encodeURIComponent(token)} x`)).not.toEqual([]);
      expect(leaksIn(`x ${new URLSearchParams({ t: token }).toString()} x`)).not.toEqual([]);
    }
    expect(leaksIn(`password=${BITBUCKET_API_SECRET}`)).not.toEqual([]);
    expect(leaksIn("nothing secret here")).toEqual([]);
  });
});

describe("a source that echoes the token back", () => {
  const cases: [Provider, string, string][] = [
    ["bitbucket", "Bearer access token", BITBUCKET_TOKEN],
    ["bitbucket", "email:secret API token (Basic)", BITBUCKET_BASIC_TOKEN],
    ["github", "token", GITHUB_TOKEN],
  ];
  for (const [provider, what, token] of cases) {
    for (const status of [401, 500]) {
      it(`${provider}, ${what}: a ${status} whose body quotes it in every encoding shows none of them, on stdout or stderr`, async () => {
        const body =
          provider === "github" ? { message: echo(token) } : { type: "error", error: { message: echo(token) } };
        (provider === "github" ? sources.gh : sources.bb).inject({
          match: (t) => t.host === "api",
          fault: { kind: "status", status, body },
          times: Number.POSITIVE_INFINITY,
        });
        const r = await runCli(
          [
            "sync",
            "--json",
            "--max-retries",
            "0",
            "--out",
            join(sources.dir, `echo-${++run}`),
            "--work-dir",
            join(sources.dir, "work"),
          ],
          { ...sourceEnv(sources, provider), SOURCE_PATHS: "layers/tools", SOURCE_REF: "main", SOURCE_TOKEN: token },
        );
        expect(r.code).toBe(1);
        expect(r.stderr).toMatch(new RegExp(`answered ${status} `));
        expect(r.stderr).toContain("you sent ***");
      });
    }
  }

  it("a redirect that carries the token in its query is never quoted, and the token is not sent to the other host", async () => {
    sources.bb.inject({
      match: (t) => t.host === "api" && /\/src\/[0-9a-f]{40}\/layers\/tools\/README\.md$/.test(t.path),
      fault: {
        kind: "status",
        status: 302,
        headers: { location: `${sources.bb.mediaUrl}/file/x?access_token=${encodeURIComponent(BITBUCKET_TOKEN)}` },
      },
      times: Number.POSITIVE_INFINITY,
    });
    sources.bb.resetRequests();
    const r = await runCli(
      [
        "sync",
        "--strategy",
        "walk",
        "--max-retries",
        "0",
        "--out",
        join(sources.dir, `redirect-${++run}`),
        "--work-dir",
        join(sources.dir, "work"),
      ],
      {
        ...sourceEnv(sources, "bitbucket"),
        SOURCE_PATHS: "layers/tools",
        SOURCE_REF: "main",
        SOURCE_TOKEN: BITBUCKET_TOKEN,
      },
    );
    expect(r.code).toBe(1);
    const media = sources.bb.requests.filter((q) => q.host === "media");
    expect(media.length).toBeGreaterThan(0);
    expect(media.map((q) => q.authorization)).toEqual(media.map(() => undefined));
  });

  it("progress on a terminal (every log line of a failing run) shows no token", async () => {
    sources.bb.inject({
      match: (t) => t.host === "api" && t.path.endsWith("/layers/tools/README.md"),
      fault: { kind: "status", status: 500, body: { type: "error", error: { message: echo(BITBUCKET_TOKEN) } } },
      times: Number.POSITIVE_INFINITY,
    });
    const cap = captureIo(true);
    const code = await main(
      [
        "sync",
        "--strategy",
        "walk",
        "--max-retries",
        "1",
        "--out",
        join(sources.dir, `tty-${++run}`),
        "--work-dir",
        join(sources.dir, "work"),
      ],
      {
        ...sourceEnv(sources, "bitbucket"),
        SOURCE_PATHS: "layers/tools",
        SOURCE_REF: "main",
        SOURCE_TOKEN: BITBUCKET_TOKEN,
      },
      cap.io,
    );
    expect(code).toBe(1);
    const progress = scan("TTY progress", cap.stderr());
    scan("TTY stdout", cap.stdout());
    expect(progress.split("\n").length).toBeGreaterThan(2);
  });
});

describe("the sync handler reading the token from a SecureString", () => {
  const context = { functionName: "layer-sync-sync", awsRequestId: "secrets" } as unknown as Context;
  const saved = { ...process.env };
  afterEach(() => {
    for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
    Object.assign(process.env, saved);
  });

  it("logs, throws and publishes a summary event (success and failure) without the token", async () => {
    const parameter = `/${uniqueName("relsec")}/token`;
    await ssm.send(new PutParameterCommand({ Name: parameter, Value: BITBUCKET_BASIC_TOKEN, Type: "SecureString" }));
    const bus = uniqueName("relsec-bus");
    await awsClients().events.send(new CreateEventBusCommand({ Name: bus }));
    const details: string[] = [];
    awsClients().events.middlewareStack.add(
      (next) => async (args) => {
        const input = args.input as { Entries?: { Detail?: string }[] };
        for (const e of input.Entries ?? []) details.push(scan("summary event", e.Detail ?? ""));
        return next(args);
      },
      { step: "initialize" },
    );
    Object.assign(process.env, {
      ...sourceEnv(sources, "bitbucket"),
      SOURCE_PATHS: "layers/tools,layers/escape",
      SOURCE_REF: "main",
      TOKEN_PARAMETER_NAME: parameter,
      ARTIFACT_BUCKET: sources.bucket,
      PARAMETER_PREFIX: `/${uniqueName("relsecp")}`,
      SUMMARY_EVENT_BUS: bus,
      POWERTOOLS_DEV: "true",
      POWERTOOLS_LOG_LEVEL: "DEBUG",
    });
    delete process.env.SOURCE_TOKEN;
    sources.bb.inject({
      match: (t) => t.host === "api" && /layers\/escape\/ok\.txt$/.test(t.path),
      fault: { kind: "status", status: 403, body: { type: "error", error: { message: echo(BITBUCKET_BASIC_TOKEN) } } },
      times: Number.POSITIVE_INFINITY,
    });
    const error = await syncHandler({ paths: ["layers/tools", "layers/escape"] }, context).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    scan("handler error", error);
    expect(error?.message).toMatch(/^1 of 2 package\(s\) failed at [0-9a-f]{7}: escape: /);
    expect(details).toHaveLength(1);
    expect(JSON.parse(details[0] ?? "{}")).toMatchObject({ packages: [{ name: "tools" }, { name: "escape" }] });
    // the emulator did receive the Basic credentials: the token was really in play
    expect(
      sources.bb.requests.some(
        (q) => q.authorization === `Basic ${Buffer.from(BITBUCKET_BASIC_TOKEN).toString("base64")}`,
      ),
    ).toBe(true);
  });
});

describe("this file", () => {
  it("scanned every captured output (the final assertion runs after all tests)", () => {
    expect(scannedCount()).toBeGreaterThan(10);
  });
});
