import { readdir } from "node:fs/promises";
import { join } from "node:path";
import type { Context } from "aws-lambda";
import { afterEach, describe, expect, it } from "vitest";
import { handler as publishHandler } from "../../handlers/publish.ts";
import { publishClients } from "../../handlers/runtime.ts";
import { handler as syncHandler } from "../../handlers/sync.ts";
import { uniqueName } from "../support/aws.ts";
import { putArtifact } from "../support/publish-fixtures.ts";
import { injectFault, serviceError } from "./aws-faults.ts";
import { branch, type CliRun, on, pointerOf, runCli, sourceEnv, useSources } from "./harness.ts";
import { BITBUCKET_TOKEN, scan, watchSecrets } from "./secrets.ts";

watchSecrets();

const sources = useSources({ bucket: "rel-exit" });
const { s3, ssm } = sources;
let run = 0;

const head = () => sources.repo.head().sha;
const BLOB = /\/src\/[0-9a-f]{40}\/layers\/data\/blob\.bin$/;

function syncArgs(...extra: string[]): string[] {
  return [
    "sync",
    "--strategy",
    "walk",
    "--max-retries",
    "0",
    "--out",
    join(sources.dir, `out-${++run}`),
    "--work-dir",
    join(sources.dir, "work"),
    ...extra,
  ];
}

const env = () => ({ ...sourceEnv(sources, "bitbucket"), SOURCE_REF: "main", SOURCE_TOKEN: BITBUCKET_TOKEN });

function oneLine(r: CliRun): string {
  const lines = r.stderr.split("\n").filter((l) => l !== "");
  expect(lines, r.stderr).toHaveLength(1);
  return lines[0] ?? "";
}

describe("the CLI's exit codes", () => {
  it("0 when every package succeeded, with nothing on stderr off a terminal", async () => {
    const r = await runCli(syncArgs("--path", "layers/tools"), env());
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
  });

  it("1 when a package failed: one line naming the package, the request and the cause; the others are still built", async () => {
    sources.bb.inject({
      match: on("api", BLOB),
      fault: { kind: "status", status: 503, body: { type: "error", error: { message: "Try again later." } } },
      times: Number.POSITIVE_INFINITY,
    });
    const r = await runCli(syncArgs("--json", "--path", "layers/data", "--path", "layers/tools"), env());
    expect(r.code).toBe(1);
    expect(oneLine(r)).toMatch(
      /^layer-sync: 1 package\(s\) failed: data: GET http:\/\/127\.0\.0\.1:\d+\/2\.0\/repositories\/acme\/layers\/src\/[0-9a-f]{40}\/layers\/data\/blob\.bin \(download "layers\/data\/blob\.bin"\) answered 503 Service Unavailable: Try again later$/,
    );
    const summary = JSON.parse(r.stdout) as { packages: { name: string; error?: string; key: string | null }[] };
    expect(summary.packages.map((p) => [p.name, p.error === undefined])).toEqual([
      ["data", false],
      ["tools", true],
    ]);
  });

  it("1 when the whole run failed (an unknown ref): one line, and nothing on stdout", async () => {
    const r = await runCli(syncArgs("--path", "layers/tools", "--ref", "no-such-ref"), env());
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(oneLine(r)).toBe(
      'layer-sync: ref "no-such-ref" is not a branch, tag or commit of acme/layers; check SOURCE_REF (branch names are case-sensitive)',
    );
  });

  it("2 for a configuration error, 2 for a usage error, and never 1 for either", async () => {
    const config = await runCli(syncArgs("--path", "layers/tools", "--strategy", "clone"), env());
    expect(config.code).toBe(2);
    expect(oneLine(config)).toBe(
      'layer-sync: SOURCE_STRATEGY (--strategy) must be "auto", "walk" or "archive" (got "clone")',
    );
    const usage = await runCli(["sync", "--path"], env());
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/^layer-sync: .*\nrun layer-sync --help for usage\n$/);
  });

  it("2 when a folder's layer.json names a runtime Lambda does not run, naming it, with nothing written", async () => {
    const ref = branch(sources.repo, "layer-json");
    sources.repo.commit(ref, {
      "layers/pybad/requirements.txt": { kind: "file", content: Buffer.from("six==1.17.0\n") },
      "layers/pybad/layer.json": {
        kind: "file",
        content: Buffer.from(JSON.stringify({ build: { runtimes: ["python3.12", "python3.15"] } })),
      },
    });
    const out = join(sources.dir, `out-${++run}`);
    const r = await runCli(
      ["sync", "--strategy", "walk", "--max-retries", "0", "--out", out, "--path", "layers/pybad"],
      { ...env(), SOURCE_REF: ref },
    );
    expect(r.code).toBe(2);
    expect(oneLine(r)).toMatch(
      /^layer-sync: 1 package\(s\) failed: pybad: layers\/pybad\/layer\.json: build runtime\(s\): "python3\.15" is not a Lambda runtime layer-sync builds for; use one of python3\.9, /,
    );
    expect(await readdir(out).catch(() => [])).toEqual([]);
  });

  it("1 when publishing a package failed: one line saying what to run", async () => {
    const prefix = `/${uniqueName("relexit")}`;
    const r = await runCli(
      ["publish", "--package", "absent", "--bucket", sources.bucket, "--parameter-prefix", prefix],
      {},
    );
    expect(r.code).toBe(1);
    expect(oneLine(r)).toBe(
      `layer-sync: 1 of 1 package(s) failed to publish: absent: nothing to publish: parameter ${prefix}/absent/artifact-key does not exist; run \`layer-sync sync\` for this package first, or check PARAMETER_PREFIX`,
    );
  });
});

// ------------------------------------------------------------------------------------------------ handlers

const context = {
  functionName: "layer-sync",
  awsRequestId: "exit-codes",
  invokedFunctionArn: "arn:aws:lambda:eu-west-1:123456789012:function:layer-sync",
  memoryLimitInMB: "2048",
  getRemainingTimeInMillis: () => 900_000,
} as unknown as Context;

async function thrown(promise: Promise<unknown>): Promise<Error> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  if (!error) throw new Error("the handler did not throw");
  scan("handler error", error);
  expect(error.message).not.toContain("\n");
  return error;
}

describe("the handlers' errors", () => {
  const saved = { ...process.env };
  let prefix: string;
  afterEach(() => {
    for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
    Object.assign(process.env, saved);
  });
  function setEnv(extra: Record<string, string> = {}) {
    prefix = `/${uniqueName("relexith")}`;
    Object.assign(process.env, {
      ...env(),
      SOURCE_PATHS: "layers/data,layers/tools",
      SOURCE_STRATEGY: "walk",
      SOURCE_MAX_RETRIES: "0",
      ARTIFACT_BUCKET: sources.bucket,
      ARTIFACT_PREFIX: `${uniqueName("art")}/`,
      PARAMETER_PREFIX: prefix,
      POWERTOOLS_DEV: "true",
      ...extra,
    });
  }

  it("sync: after the other packages finished, names each failed package with the commit, the request and the cause", async () => {
    setEnv();
    sources.bb.inject({
      match: on("api", BLOB),
      fault: { kind: "status", status: 503, body: { type: "error", error: { message: "Try again later." } } },
      times: Number.POSITIVE_INFINITY,
    });
    const error = await thrown(syncHandler({}, context));
    expect(error.name).toBe("SyncFailedError");
    expect(error.message).toMatch(
      new RegExp(
        `^1 of 2 package\\(s\\) failed at ${head().slice(0, 7)}: data: GET \\S+/layers/data/blob\\.bin \\(download "layers/data/blob\\.bin"\\) answered 503 Service Unavailable: Try again later$`,
      ),
    );
    expect(await pointerOf(ssm, prefix, "data")).toBeUndefined();
    expect(await pointerOf(ssm, prefix, "tools")).toMatch(/tools\/tools-\d{8}T\d{6}Z-[0-9a-f]{7}\.zip$/);
  });

  it("sync: a run-level failure (an unknown ref) throws the source's own message", async () => {
    setEnv({ SOURCE_REF: "no-such-ref" });
    const error = await thrown(syncHandler({}, context));
    expect(error.name).toBe("SourceNotFoundError");
    expect(error.message).toBe(
      'ref "no-such-ref" is not a branch, tag or commit of acme/layers; check SOURCE_REF (branch names are case-sensitive)',
    );
  });

  it("publish: a missing pointer says to run the sync first", async () => {
    setEnv();
    const error = await thrown(publishHandler({ package: "absent" }, context));
    expect(error.name).toBe("PublishFailedError");
    expect(error.message).toBe(
      `1 of 1 package(s) failed to publish: absent: nothing to publish: parameter ${prefix}/absent/artifact-key does not exist; run \`layer-sync sync\` for this package first, or check PARAMETER_PREFIX`,
    );
  });

  it("publish: an access denial names the IAM action and resource to grant", async () => {
    setEnv();
    const pkg = uniqueName("relexitpkg");
    const artifact = await putArtifact(
      { s3, ssm },
      { bucket: sources.bucket, parameterPrefix: prefix, pkg, content: "denied" },
    );
    injectFault(publishClients().lambda, {
      command: "PublishLayerVersionCommand",
      error: () =>
        serviceError(
          "AccessDeniedException",
          "User: arn:aws:sts::123456789012:assumed-role/layer-sync/x is not authorized to perform: lambda:PublishLayerVersion",
          403,
        ),
      times: 1,
    });
    const error = await thrown(publishHandler({ package: pkg }, context));
    const where = `layer ${pkg} from s3://${sources.bucket}/${artifact.key}`;
    expect(error.message).toBe(
      `1 of 1 package(s) failed to publish: ${pkg}: lambda:PublishLayerVersion on ${where} failed (AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/layer-sync/x is not authorized to perform: lambda:PublishLayerVersion); grant lambda:PublishLayerVersion on ${where} to the role that runs layer-sync`,
    );
  });
});
