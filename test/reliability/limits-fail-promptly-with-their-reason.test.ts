import { mkdtemp, readdir } from "node:fs/promises";
import { join } from "node:path";
import type { Context } from "aws-lambda";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { handler } from "../../handlers/sync.ts";
import { pseudoRandomBytes } from "../fixtures/repo.ts";
import { uniqueName } from "../support/aws.ts";
import { keysUnder, type Provider, pointerOf, runCli, sourceEnv, tokenFor, useSources } from "./harness.ts";
import { scan, watchSecrets } from "./secrets.ts";

watchSecrets();

const GIB10 = 10 * 1024 ** 3;
const sources = useSources({
  bucket: "rel-limits",
  setup: ({ repo }) => {
    // a listing that declares 10 GiB for a file of a few bytes
    repo.commit("main", {
      "layers/declared/huge.bin": { kind: "file", content: Buffer.from("tiny\n"), declaredSize: GIB10 },
    });
    // large enough that an unread body holds its connection (a small one fits in the socket buffers)
    repo.commit("main", {
      "layers/huge/big.bin": { kind: "file", content: pseudoRandomBytes(8 * 1024 * 1024, 7) },
      "layers/huge/small.txt": { kind: "file", content: Buffer.from("small\n") },
    });
  },
});
const { s3, ssm } = sources;

/** Fails the test instead of waiting for vitest's timeout when the run never settles. */
function within<T>(ms: number, run: Promise<T>): Promise<T> {
  return Promise.race([
    run,
    new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)),
  ]);
}

const cases: [Provider, "walk" | "archive", string, Record<string, string>, RegExp][] = [];
for (const provider of ["github", "bitbucket"] as const) {
  for (const strategy of ["walk", "archive"] as const) {
    for (const folder of ["layers/data", "layers/huge"]) {
      cases.push([
        provider,
        strategy,
        folder,
        { SOURCE_MAX_BYTES: "1000" },
        /over 1000 bytes unzipped.*SOURCE_MAX_BYTES/,
      ]);
      cases.push([
        provider,
        strategy,
        folder,
        { SOURCE_MAX_FILES: "1" },
        /more than 1 files \(limit SOURCE_MAX_FILES\)/,
      ]);
    }
  }
}

describe("a folder over a limit", () => {
  it.each(cases)(
    "on %s by %s (%s, %j) exits 1 promptly with a one-line reason and writes nothing",
    async (provider, strategy, folder, limit, reason) => {
      const out = await mkdtemp(join(sources.dir, "out-"));
      const run = await within(
        10_000,
        runCli(["sync", "--path", folder, "--strategy", strategy, "--out", out], {
          ...sourceEnv(sources, provider),
          SOURCE_TOKEN: tokenFor(provider),
          SOURCE_MAX_RETRIES: "0",
          ...limit,
        }),
      );
      expect(run.code).toBe(1);
      const lines = run.stderr.trim().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(`folder "${folder}"`);
      expect(lines[0]).toMatch(reason);
      expect(await readdir(out)).toEqual([]);
    },
  );
});

/** The reason the default size limit gives for the 10 GiB declared file. */
const DECLARED = new RegExp(
  `^folder "layers/declared" is over ${250 * 1024 * 1024} bytes unzipped \\(reached ${GIB10} at "huge\\.bin"\\);.*split the folder`,
);

describe("a walk listing that declares a 10 GiB file", () => {
  for (const provider of ["github", "bitbucket"] as const) {
    it(`on ${provider} exits 1 promptly naming the limit, with one line, writing nothing`, async () => {
      const out = await mkdtemp(join(sources.dir, "out-"));
      const run = await within(
        10_000,
        runCli(["sync", "--path", "layers/declared", "--strategy", "walk", "--out", out], {
          ...sourceEnv(sources, provider),
          SOURCE_TOKEN: tokenFor(provider),
          SOURCE_MAX_RETRIES: "0",
        }),
      );
      expect(run.code).toBe(1);
      const lines = run.stderr.trim().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^layer-sync: 1 package\(s\) failed: declared: folder "layers\/declared"/);
      expect(lines[0]?.replace(/^.*?declared: /, "")).toMatch(DECLARED);
      expect(await readdir(out)).toEqual([]);
    });
  }
});

// ------------------------------------------------------------------------------------------------ handler

const context = {
  functionName: "layer-sync-sync",
  awsRequestId: "limits",
  invokedFunctionArn: "arn:aws:lambda:eu-west-1:123456789012:function:layer-sync-sync",
  memoryLimitInMB: "2048",
  getRemainingTimeInMillis: () => 900_000,
} as unknown as Context;

describe("the sync handler with a folder over a limit", () => {
  const saved = { ...process.env };
  afterEach(() => {
    for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
    Object.assign(process.env, saved);
  });

  function setEnv(provider: Provider, strategy: string, folder: string, limit: Record<string, string>) {
    const prefix = `/${uniqueName("rellim")}`;
    const artifactPrefix = `${uniqueName("art")}/`;
    Object.assign(process.env, {
      ...sourceEnv(sources, provider),
      SOURCE_TOKEN: tokenFor(provider),
      SOURCE_PATHS: folder,
      SOURCE_STRATEGY: strategy,
      SOURCE_MAX_RETRIES: "0",
      ARTIFACT_BUCKET: sources.bucket,
      ARTIFACT_PREFIX: artifactPrefix,
      PARAMETER_PREFIX: prefix,
      POWERTOOLS_DEV: "true",
      ...limit,
    });
    return { prefix, artifactPrefix };
  }

  // the first invocation loads modules and creates the AWS clients, as a Lambda cold start does: time warm ones
  beforeAll(async () => {
    setEnv("bitbucket", "walk", "layers/tools", {});
    await handler({}, context);
    for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
    Object.assign(process.env, saved);
  });

  /** Run the handler on one folder; returns its error, how long it took, and the package name. */
  async function failing(provider: Provider, strategy: string, folder: string, limit: Record<string, string>) {
    const { prefix, artifactPrefix } = setEnv(provider, strategy, folder, limit);
    const started = Date.now();
    const error = await within(
      10_000,
      handler({}, context).then(
        () => new Error("the handler returned"),
        (e: unknown) => e as Error,
      ),
    );
    const took = Date.now() - started;
    scan("handler error", error);
    const pkg = folder.split("/").pop() ?? folder;
    expect(await pointerOf(ssm, prefix, pkg)).toBeUndefined();
    expect(await keysUnder(s3, sources.bucket, artifactPrefix)).toEqual([]);
    return { error, took, pkg };
  }

  it.each(cases)(
    "on %s by %s (%s, %j) throws within a second naming the limit and the folder, and writes nothing",
    async (provider, strategy, folder, limit, reason) => {
      const { error, took, pkg } = await failing(provider, strategy, folder, limit);
      expect(took).toBeLessThan(1000);
      expect(error.name).toBe("SyncFailedError");
      expect(error.message).not.toContain("\n");
      expect(error.message).toMatch(
        new RegExp(`^1 of 1 package\\(s\\) failed at [0-9a-f]{7}: ${pkg}: folder "${folder}"`),
      );
      expect(error.message).toMatch(reason);
    },
  );

  for (const provider of ["github", "bitbucket"] as const) {
    it(`on ${provider}, a walk listing that declares a 10 GiB file throws within a second naming the limit`, async () => {
      const { error, took } = await failing(provider, "walk", "layers/declared", {});
      expect(took).toBeLessThan(1000);
      expect(error.message.replace(/^.*?declared: /, "")).toMatch(DECLARED);
    });
  }
});
