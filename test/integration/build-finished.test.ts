/**
 * The build-finished handler's failure paths on moto: a failed, stopped, timed-out or faulted build, an
 * output over the unzipped limit, a hostile output archive, an output that is not the build's own (its SHA-256
 * differs from the one CodeBuild reports, or none is reported) and hostile events all leave the pointer as it
 * was; the notification names the package, the target, the build id and the redacted log tail.
 */
import { createHash } from "node:crypto";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import {
  CloudWatchLogsClient,
  CreateLogGroupCommand,
  CreateLogStreamCommand,
  PutLogEventsCommand,
} from "@aws-sdk/client-cloudwatch-logs";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { GetParameterCommand, PutParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import type { Context } from "aws-lambda";
import JSZip from "jszip";
import * as tar from "tar-stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { handler as buildHandler } from "../../handlers/build.ts";
import { awsClients } from "../../handlers/runtime.ts";
import { handler as syncHandler } from "../../handlers/sync.ts";
import { cloudWatchLogTail, parseBuildEvent, takeBuildResult } from "../../lib/builds/codebuild-result.ts";
import { EventValidationError } from "../../lib/common/errors.ts";
import { type GitHubEmulator, startGitHubEmulator } from "../emulators/github.ts";
import { FixtureRepo } from "../fixtures/repo.ts";
import { createBucket, MOTO_ACCOUNT_ID, uniqueName } from "../support/aws.ts";
import { captureRequests, createBuildProjects, type Projects, putBuildArtifact } from "../support/codebuild.ts";

const SECRET = "pypi-secret-9f3b7c1e5a2d";
const s3 = new S3Client({});
const ssm = new SSMClient({});
const logs = new CloudWatchLogsClient({});
const context = { functionName: "layer-sync-build", awsRequestId: "bf" } as unknown as Context;
let gh: GitHubEmulator;
let bucket: string;
let prefix: string;
let projects: Projects;
let work: string;
let build: { id: string; fingerprint: string; uuid: string };
const PKG = "pyone";
const POINTER_BEFORE = "layers/pyone/pyone-20200101T000000Z-0000000.zip";
const putEvents = captureRequests(awsClients().events as never);

beforeAll(async () => {
  const repo = new FixtureRepo("acme", "layers");
  repo.commit(
    "main",
    {
      "layers/pyone/requirements.txt": { kind: "file", content: Buffer.from("six==1.17.0\n") },
      "layers/pyone/layer.json": {
        kind: "file",
        content: Buffer.from(JSON.stringify({ build: { runtimes: ["python3.12"], architectures: ["arm64"] } })),
      },
    },
    "one target",
  );
  gh = await startGitHubEmulator({ repos: [repo], publicRepos: true });
  bucket = await createBucket(uniqueName("bf"));
  prefix = `/${uniqueName("bf")}`;
  projects = await createBuildProjects(bucket);
  work = await mkdtemp(join(tmpdir(), "ls-bf-"));
  const bus = uniqueName("bus");
  Object.assign(process.env, {
    SOURCE_PROVIDER: "github",
    SOURCE_REPOSITORY: "acme/layers",
    SOURCE_REF: "main",
    SOURCE_PATHS: "layers/pyone",
    SOURCE_API_URL: gh.apiUrl,
    ARTIFACT_BUCKET: bucket,
    PARAMETER_PREFIX: prefix,
    BUILD_PROJECT_X86_64: projects.x86_64,
    BUILD_PROJECT_ARM64: projects.arm64,
    SUMMARY_EVENT_BUS: bus,
    POWERTOOLS_DEV: "true",
  });
  await ssm.send(
    new PutParameterCommand({ Name: `${prefix}/${PKG}/artifact-key`, Value: POINTER_BEFORE, Type: "String" }),
  );
  const summary = (await syncHandler({}, context)) as {
    packages: { reason: string; build: { id: string; fingerprint: string } }[];
  };
  const entry = summary.packages[0];
  if (entry?.reason !== "building") throw new Error(`the sync did not start a build: ${JSON.stringify(summary)}`);
  build = { ...entry.build, uuid: entry.build.id.split(":")[1] ?? "" };
  const group = `/aws/codebuild/${projects.arm64}`;
  await logs.send(new CreateLogGroupCommand({ logGroupName: group }));
  await logs.send(new CreateLogStreamCommand({ logGroupName: group, logStreamName: build.uuid }));
  const lines = [
    "[Container] Running command pip install -r requirements.txt",
    `Looking in indexes: https://aws:${SECRET}@example.d.codeartifact.eu-west-1.amazonaws.com/pypi/p/simple/`,
    "ERROR: No matching distribution found for sixx==9.9",
    "[Container] Phase complete: BUILD State: FAILED",
  ];
  await logs.send(
    new PutLogEventsCommand({
      logGroupName: group,
      logStreamName: build.uuid,
      logEvents: lines.map((message, i) => ({ message, timestamp: Date.now() + i })),
    }),
  );
});
afterAll(async () => {
  await gh.close();
  await rm(work, { recursive: true, force: true });
});

function event(status: string, overrides: Record<string, unknown> = {}, sha256?: string) {
  const arn = `arn:aws:codebuild:eu-west-1:${MOTO_ACCOUNT_ID}:build/${build.id}`;
  return {
    version: "0",
    id: "c030038d-8c4d-6141-9545-00ff7b7153bb",
    "detail-type": "CodeBuild Build State Change",
    source: "aws.codebuild",
    account: MOTO_ACCOUNT_ID,
    region: "eu-west-1",
    resources: [arn],
    detail: {
      "build-status": status,
      "project-name": projects.arm64,
      "build-id": arn,
      ...(sha256 === undefined
        ? {}
        : {
            "additional-information": {
              artifact: { location: `arn:aws:s3:::${bucket}/${OUTPUT_KEY()}`, sha256sum: sha256 },
            },
          }),
      ...overrides,
    },
  };
}

async function pointer(): Promise<string | undefined> {
  return (await ssm.send(new GetParameterCommand({ Name: `${prefix}/${PKG}/artifact-key` }))).Parameter?.Value;
}

const OUTPUT_KEY = () => `build-output/arm64/${PKG}/${build.fingerprint}.zip`;

/** Put a build output holding `entries` as CodeBuild would; returns the SHA-256 it reports for it. */
async function putOutput(
  entries: { name: string; type?: "file" | "symlink"; body?: Buffer; linkname?: string }[],
): Promise<string> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on("data", (c: unknown) => chunks.push(c as Buffer));
  const ended = new Promise<void>((resolve) => pack.on("end", () => resolve()));
  for (const e of entries) {
    if (e.type === "symlink") pack.entry({ name: e.name, type: "symlink", linkname: e.linkname ?? "" });
    else pack.entry({ name: e.name, mode: 0o644 }, e.body ?? Buffer.from("x"));
  }
  pack.finalize();
  await ended;
  return putBuildArtifact(s3, bucket, OUTPUT_KEY(), gzipSync(Buffer.concat(chunks)));
}

const config = () => ({
  bucket,
  artifactPrefix: "layers/",
  parameterPrefix: prefix,
  build: { projects, sourcePrefix: "build-source/", outputPrefix: "build-output/" },
});

async function finishCore(status: string, sha256: string | undefined, limit?: number) {
  const parsed = parseBuildEvent(event(status, {}, sha256), [projects.x86_64, projects.arm64]);
  if (parsed.kind !== "finished") throw new Error("not finished");
  return takeBuildResult(config(), parsed, {
    s3,
    ssm,
    logs: cloudWatchLogTail(logs),
    clock: () => new Date(),
    workDir: join(work, "stage"),
    exclusiveWorkDir: false,
    ...(limit === undefined ? {} : { unzippedLimit: limit }),
  });
}

describe("the build-finished handler", () => {
  for (const status of ["FAILED", "STOPPED", "TIMED_OUT", "FAULT"]) {
    it(`leaves the pointer after a ${status} build and names package, target, build id and log tail`, async () => {
      const before = putEvents.length;
      await expect(buildHandler(event(status), context)).rejects.toThrow(
        new RegExp(`CodeBuild build ${build.id} of ${PKG} \\(python3\\.12 arm64\\) ended ${status}`),
      );
      expect(await pointer()).toBe(POINTER_BEFORE);
      const sent = putEvents.slice(before).filter((r) => r.command === "PutEventsCommand");
      expect(sent).toHaveLength(1);
      const text = JSON.stringify(sent);
      expect(text).not.toContain(SECRET);
      const detail = JSON.parse(
        (sent[0]?.input as { Entries?: { Detail: string }[] } | undefined)?.Entries?.[0]?.Detail ?? "{}",
      );
      const entry = detail.packages[0];
      expect(entry).toMatchObject({ name: PKG, buildStatus: status, build: { id: build.id, architecture: "arm64" } });
      expect(entry.error).toContain("No matching distribution found for sixx==9.9");
      expect(entry.error).toContain(POINTER_BEFORE);
      expect(entry.logTail).toContain(
        "Looking in indexes: https://***@example.d.codeartifact.eu-west-1.amazonaws.com/pypi/p/simple/",
      );
    });
  }

  it("refuses an output over the unzipped limit, naming the largest top-level entries", async () => {
    const sha = await putOutput([
      { name: "layer/python/big/data.bin", body: Buffer.alloc(6000, 1) },
      { name: "layer/python/small.py", body: Buffer.alloc(100, 2) },
    ]);
    const summary = await finishCore("SUCCEEDED", sha, 5000);
    expect(summary.packages[0]?.error).toMatch(/over Lambda's 4\.9 KiB limit.*largest: python\/big 5\.9 KiB/);
    expect(await pointer()).toBe(POINTER_BEFORE);
  });

  it("refuses an output archive holding a symlink that escapes the layer, writing nothing outside", async () => {
    const sha = await putOutput([
      { name: "layer/python/ok.py", body: Buffer.from("1") },
      { name: "layer/python/evil", type: "symlink", linkname: "../../../../etc/passwd" },
    ]);
    const summary = await finishCore("SUCCEEDED", sha);
    expect(summary.packages[0]?.error).toMatch(
      /symlink "evil" in "layer\/python" points to "\.\.\/\.\.\/\.\.\/\.\.\/etc\/passwd", which leaves the folder/,
    );
    expect(await pointer()).toBe(POINTER_BEFORE);
    expect(await readdir(join(work, "stage"))).toEqual([]);
  });

  it("refuses an output whose SHA-256 is not the one CodeBuild reports for the build, naming both", async () => {
    const reported = await putOutput([{ name: "layer/python/mine.py", body: Buffer.from("MINE = 1\n") }]);
    // another build (or anyone who can write the prefix) replaces the object after CodeBuild wrote it
    const actual = await putOutput([{ name: "layer/python/theirs.py", body: Buffer.from("import os\n") }]);
    const summary = await finishCore("SUCCEEDED", reported);
    expect(summary.packages[0]?.error).toContain(
      `the output at s3://${bucket}/${OUTPUT_KEY()} is not the artifact of build ${build.id}: CodeBuild reports SHA-256 ${reported}, the object has ${actual}; nothing was changed`,
    );
    expect(summary.packages[0]?.error).not.toContain("\n");
    expect(await pointer()).toBe(POINTER_BEFORE);
    expect(await readdir(join(work, "stage"))).toEqual([]);
  });

  it("refuses an output when CodeBuild reports no SHA-256 for the build's artifact", async () => {
    const actual = await putOutput([{ name: "layer/python/mine.py", body: Buffer.from("MINE = 1\n") }]);
    const summary = await finishCore("SUCCEEDED", undefined);
    expect(summary.packages[0]?.error).toContain(
      `CodeBuild reports no SHA-256 for the artifact of build ${build.id} (s3://${bucket}/${OUTPUT_KEY()} has ${actual})`,
    );
    expect(await pointer()).toBe(POINTER_BEFORE);
  });

  it("refuses a proven artifact that does not hold the output archive", async () => {
    const zip = new JSZip();
    zip.file("something-else.tar.gz", "x");
    const body = await zip.generateAsync({ type: "nodebuffer" });
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: OUTPUT_KEY(), Body: body }));
    const summary = await finishCore("SUCCEEDED", createHash("sha256").update(body).digest("hex"));
    expect(summary.packages[0]?.error).toMatch(
      /holds no \.layer-sync-output\.tar\.gz; it was not made by layer-sync's buildspec/,
    );
    expect(await pointer()).toBe(POINTER_BEFORE);
  });

  it("refuses events for other projects and malformed build ids", () => {
    const ours = [projects.x86_64, projects.arm64];
    expect(() => parseBuildEvent(event("SUCCEEDED", { "project-name": "someone-else" }), ours)).toThrow(
      EventValidationError,
    );
    expect(() => parseBuildEvent(event("SUCCEEDED", { "build-id": "../../etc" }), ours)).toThrow(
      /is not a CodeBuild build id/,
    );
    expect(() => parseBuildEvent(event("SUCCEEDED", { "build-id": `${projects.x86_64}:${build.uuid}` }), ours)).toThrow(
      /belongs to project/,
    );
    expect(() => parseBuildEvent({ source: "layer-sync", "detail-type": "x" }, ours)).toThrow(EventValidationError);
    expect(parseBuildEvent(event("SUCCEEDED", {}, "AB".repeat(32)), ours)).toMatchObject({
      kind: "finished",
      artifactSha256: "ab".repeat(32),
    });
    expect(parseBuildEvent(event("SUCCEEDED", {}, "not a digest"), ours)).toMatchObject({ artifactSha256: undefined });
    expect(parseBuildEvent(event("IN_PROGRESS"), ours)).toEqual({
      kind: "ignored",
      reason: "the build is still in progress",
    });
  });
});
