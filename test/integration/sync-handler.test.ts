import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { CreateEventBusCommand, EventBridgeClient } from "@aws-sdk/client-eventbridge";
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { GetParameterCommand, PutParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import type { Context } from "aws-lambda";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { awsClients } from "../../handlers/runtime.ts";
import { handler } from "../../handlers/sync.ts";
import { type BitbucketEmulator, startBitbucketEmulator } from "../emulators/bitbucket.ts";
import { expectedZipEntries, type FixtureRepo, standardRepo } from "../fixtures/repo.ts";
import { createBucket, uniqueName } from "../support/aws.ts";
import { type CapturedLogs, captureHandlerLogs } from "../support/logs.ts";
import { readZip } from "../support/zip.ts";

const TOKEN = "bb-handler-token-5f0c9e1d2a7b";
const s3 = new S3Client({});
const ssm = new SSMClient({});
let bb: BitbucketEmulator;
let repo: FixtureRepo;
let bucket: string;
let prefix: string;
let logs: CapturedLogs;

const context = {
  functionName: "layer-sync-sync",
  awsRequestId: "test-request",
  invokedFunctionArn: "arn:aws:lambda:eu-west-1:123456789012:function:layer-sync-sync",
  memoryLimitInMB: "2048",
  getRemainingTimeInMillis: () => 900_000,
} as unknown as Context;

async function event(name: string): Promise<unknown> {
  return JSON.parse(await readFile(new URL(`../../events/${name}`, import.meta.url), "utf8"));
}

interface Summary {
  commit: string;
  packages: {
    name: string;
    key: string;
    skipped: boolean;
    reason: string | null;
    sha256: string;
    files: number;
    bytes: number;
    unzippedBytes: number | null;
  }[];
  requests: { total: number };
}

const invoke = (e: unknown) => handler(e, context) as Promise<Summary & { ignored?: string }>;

beforeAll(async () => {
  repo = standardRepo({ bigFileBytes: 256 * 1024 });
  bb = await startBitbucketEmulator({ repos: [repo], accessTokens: [TOKEN] });
  bucket = await createBucket(uniqueName("sync-handler"));
  prefix = `/${uniqueName("ls")}`;
  const tokenParameter = `${prefix}/bitbucket-token`;
  await ssm.send(new PutParameterCommand({ Name: tokenParameter, Value: TOKEN, Type: "SecureString" }));
  Object.assign(process.env, {
    SOURCE_PROVIDER: "bitbucket",
    SOURCE_REPOSITORY: "acme/layers",
    SOURCE_REF: "main",
    SOURCE_PATHS: "layers/py-requests,layers/tools",
    SOURCE_API_URL: bb.apiUrl,
    SOURCE_WEB_URL: bb.webUrl,
    TOKEN_PARAMETER_NAME: tokenParameter,
    ARTIFACT_BUCKET: bucket,
    PARAMETER_PREFIX: prefix,
    POWERTOOLS_DEV: "true",
  });
  // capture everything the handler logs at INFO and above, to prove the token never appears
  logs = captureHandlerLogs("INFO");
});

afterAll(async () => {
  logs.restore();
  await bb.close();
});

beforeEach(() => bb.resetRequests());

async function pointer(pkg: string): Promise<{ value: string | undefined; version: number | undefined }> {
  const res = await ssm.send(new GetParameterCommand({ Name: `${prefix}/${pkg}/artifact-key` }));
  return { value: res.Parameter?.Value, version: res.Parameter?.Version };
}

async function objectCount(): Promise<number> {
  return (await s3.send(new ListObjectsV2Command({ Bucket: bucket }))).KeyCount ?? 0;
}

describe("the sync handler on moto and the Bitbucket emulator", () => {
  let first: Summary;

  it("syncs every folder on the pipeline's STARTED event, leaving the objects and pointers the interface describes", async () => {
    first = await invoke(await event("pipeline-started.json"));
    expect(first.commit).toBe(repo.head().sha);
    expect(first.packages.map((p) => [p.name, p.skipped])).toEqual([
      ["py-requests", false],
      ["tools", false],
    ]);
    for (const p of first.packages) {
      expect(p.key).toMatch(new RegExp(`^layers/${p.name}/${p.name}-\\d{8}T\\d{6}Z-[0-9a-f]{7}\\.zip$`));
      expect((await pointer(p.name)).value).toBe(p.key);
      const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: p.key, ChecksumMode: "ENABLED" }));
      expect(head.Metadata).toMatchObject({
        commit: repo.head().sha,
        source: `bitbucket:acme/layers:layers/${p.name}`,
        "content-sha256": p.sha256,
        files: String(p.files),
      });
      expect(head.ChecksumSHA256).toBe(Buffer.from(p.sha256, "hex").toString("base64"));
      const body = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: p.key }));
      const entries = await readZip(
        Buffer.from(await (body.Body?.transformToByteArray() ?? Promise.resolve(new Uint8Array()))),
      );
      const expected = expectedZipEntries(repo.head(), `layers/${p.name}`);
      expect(entries.map((e) => e.name)).toEqual(expected.map((e) => e.name));
      // bytes is the zip; unzippedBytes is what counts against Lambda's 250 MB
      expect(p.bytes).toBe(head.ContentLength);
      expect(p.unzippedBytes).toBe(expected.reduce((n, e) => n + e.content.length, 0));
      expect(head.Metadata?.["unzipped-bytes"]).toBe(String(p.unzippedBytes));
    }
    const layerConfig = (await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: first.packages[0]?.key ?? "" })))
      .Metadata?.["layer-config"];
    expect(JSON.parse(Buffer.from(layerConfig ?? "", "base64url").toString())).toEqual({
      runtimes: ["python3.12", "python3.13"],
      license: "MIT",
    });
  });

  it("skips an unchanged commit with at most 3 source requests and writes nothing", async () => {
    const before = { count: await objectCount(), version: (await pointer("py-requests")).version };
    const again = await invoke(await event("pipeline-started.json"));
    expect(again.packages.every((p) => p.skipped && p.reason === "unchanged")).toBe(true);
    expect(again.packages.map((p) => p.key)).toEqual(first.packages.map((p) => p.key));
    expect(again.packages.map((p) => p.unzippedBytes)).toEqual(first.packages.map((p) => p.unzippedBytes));
    expect(again.requests.total).toBeLessThanOrEqual(3);
    expect(bb.requests.filter((r) => r.host === "web" || r.path.includes("/src/"))).toEqual([]);
    expect(await objectCount()).toBe(before.count);
    expect((await pointer("py-requests")).version).toBe(before.version);
  });

  it("skips a folder that a new commit did not touch without downloading it, and syncs the one it did", async () => {
    repo.commit("main", { "layers/tools/README.md": { kind: "file", content: Buffer.from("# tools v2\n") } });
    const summary = await invoke({});
    const byName = Object.fromEntries(summary.packages.map((p) => [p.name, p]));
    expect(byName["py-requests"]).toMatchObject({ skipped: true, reason: "unchanged" });
    expect(byName.tools).toMatchObject({ skipped: false });
    expect((await pointer("tools")).value).toBe(byName.tools?.key);
    expect((await pointer("py-requests")).value).toBe(first.packages[0]?.key);
  });

  it("builds and reports but writes nothing on a dry run", async () => {
    const before = { count: await objectCount(), version: (await pointer("tools")).version };
    const summary = await invoke({ paths: ["layers/tools"], dryRun: true, force: true });
    expect(summary.packages).toHaveLength(1);
    expect(summary.packages[0]).toMatchObject({ name: "tools", skipped: true, reason: "dry-run" });
    expect(await objectCount()).toBe(before.count);
    expect((await pointer("tools")).version).toBe(before.version);
  });

  it("uploads unchanged content again when forced, under a new key", async () => {
    const before = (await pointer("tools")).value;
    // keys are timestamped to the second: run two seconds later by the clock, without waiting for it
    const payload = await event("sync-manual.json").then((e) => ({
      ...(e as object),
      paths: ["layers/tools"],
      force: true,
    }));
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() + 2000 });
    let summary: Awaited<ReturnType<typeof invoke>>;
    try {
      summary = await invoke(payload);
    } finally {
      vi.useRealTimers();
    }
    expect(summary.packages[0]?.skipped).toBe(false);
    expect(summary.packages[0]?.key).not.toBe(before);
    expect((await pointer("tools")).value).toBe(summary.packages[0]?.key);
  });

  it("ignores another pipeline and a SUCCEEDED state, saying why", async () => {
    expect(await invoke(await event("pipeline-started-other.json"))).toEqual({
      ignored: 'pipeline "some-other-pipeline" is not PIPELINE_NAME "Custom-Control-Tower-CodePipeline"',
    });
    expect(await invoke(await event("pipeline-succeeded.json"))).toEqual({
      ignored: "pipeline state SUCCEEDED is not STARTED",
    });
  });

  it("throws after all packages finish when one fails, naming it, and keeps the others' results", async () => {
    await expect(invoke({ paths: ["layers/escape", "layers/tools"], force: true })).rejects.toThrow(
      /^1 of 2 package\(s\) failed at [0-9a-f]{7}: escape: symlink "evil" in folder "layers\/escape" points to "..\/..\/etc\/passwd", which leaves the folder$/,
    );
    // the same commit forced again within the same second reuses the identical object instead of overwriting it
    expect((await pointer("tools")).value).toMatch(/^layers\/tools\/tools-/);
  });

  it("replaces an artifact written by an older zip format once, then skips the commit again", async () => {
    const current = (await pointer("py-requests")).value ?? "";
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: current }));
    // what the previous writer made of the same commit: other bytes, format "1"
    const body = Buffer.from("a zip written by layer-sync's previous zip writer");
    const old = current.replace(/\.zip$/, "-format1.zip");
    await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: old,
        Body: body,
        Metadata: { ...head.Metadata, "content-sha256": createHash("sha256").update(body).digest("hex"), format: "1" },
      }),
    );
    await ssm.send(
      new PutParameterCommand({ Name: `${prefix}/py-requests/artifact-key`, Value: old, Overwrite: true }),
    );
    const replaced = await invoke({ paths: ["layers/py-requests"] });
    expect(replaced.packages[0]).toMatchObject({ skipped: false });
    expect(replaced.packages[0]?.key).not.toBe(old);
    expect((await pointer("py-requests")).value).toBe(replaced.packages[0]?.key);
    const again = await invoke({ paths: ["layers/py-requests"] });
    expect(again.packages[0]).toMatchObject({ skipped: true, reason: "unchanged", key: replaced.packages[0]?.key });
  });

  it("rejects a malformed manual payload with a message that names the field", async () => {
    await expect(invoke({ paths: "layers/tools" })).rejects.toThrow(/"paths" must be a non-empty array/);
    await expect(invoke({ refs: "main" })).rejects.toThrow(/unknown field\(s\) "refs"/);
  });

  it("puts a summary event on the configured bus for each run", async () => {
    const bus = uniqueName("bus");
    await new EventBridgeClient({}).send(new CreateEventBusCommand({ Name: bus }));
    process.env.SUMMARY_EVENT_BUS = bus;
    const sent: { Entries?: { EventBusName?: string; Source?: string; DetailType?: string; Detail?: string }[] }[] = [];
    const events = awsClients().events;
    events.middlewareStack.add(
      (next) => async (args) => {
        const result = await next(args);
        sent.push(args.input as (typeof sent)[number]);
        expect((result.output as { FailedEntryCount?: number }).FailedEntryCount ?? 0).toBe(0);
        return result;
      },
      { step: "initialize", name: "capturePutEvents" },
    );
    try {
      const summary = await invoke({ paths: ["layers/tools"] });
      expect(sent).toHaveLength(1);
      const entry = sent[0]?.Entries?.[0];
      expect(entry).toMatchObject({ EventBusName: bus, Source: "layer-sync", DetailType: "Layer Sync Summary" });
      expect(JSON.parse(entry?.Detail ?? "{}")).toEqual(JSON.parse(JSON.stringify(summary)));
    } finally {
      delete process.env.SUMMARY_EVENT_BUS;
      events.middlewareStack.remove("capturePutEvents");
    }
  });

  it("never logs the token", () => {
    const text = logs.text();
    expect(text.length).toBeGreaterThan(0);
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain(Buffer.from(TOKEN).toString("base64"));
  });
});
