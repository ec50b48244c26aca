import { mkdtemp, readdir } from "node:fs/promises";
import { join } from "node:path";
import type { Context } from "aws-lambda";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { handler } from "../../handlers/sync.ts";
import { blobSha, pseudoRandomBytes, storedBlob } from "../fixtures/repo.ts";
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

/**
 * "Promptly" is what the run fetched before it failed, never how long it took (the machine may be busy): no
 * request was sent twice (nothing retried or fetched again after the limit was hit), a walk never fell back to
 * the archive, an archive run downloaded the archive once, and nothing was downloaded outside the folder. A run
 * that never settles fails on vitest's test timeout.
 */
function expectPromptly(provider: Provider, strategy: "walk" | "archive", folder: string): void {
  const requests = sources.emulator(provider).requests.map((r) => `${r.method} ${r.host} ${r.path}?${r.query}`);
  const log = requests.join("\n");
  expect(new Set(requests).size, log).toBe(requests.length);
  const archives = requests.filter((r) => /\.tar\.gz\?|\/tarball\//.test(r));
  expect(archives, log).toHaveLength(strategy === "walk" ? 0 : 1);
  const folderBlobs = new Set(
    [...sources.repo.head().entries]
      .filter(([path]) => path.startsWith(`${folder}/`))
      .map(([, entry]) => blobSha(storedBlob(entry))),
  );
  const elsewhere = requests.filter((r) => {
    const blob = /\/git\/blobs\/([0-9a-f]{40})\?/.exec(r)?.[1];
    if (blob !== undefined) return !folderBlobs.has(blob);
    const src = /\/src\/[0-9a-f]{40}\/([^?]*)\?/.exec(decodeURIComponent(r))?.[1];
    return src !== undefined && !src.startsWith(`${folder}/`);
  });
  expect(elsewhere, log).toEqual([]);
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
      sources.emulator(provider).resetRequests();
      const run = await runCli(["sync", "--path", folder, "--strategy", strategy, "--out", out], {
        ...sourceEnv(sources, provider),
        SOURCE_TOKEN: tokenFor(provider),
        SOURCE_MAX_RETRIES: "0",
        ...limit,
      });
      expect(run.code).toBe(1);
      expectPromptly(provider, strategy, folder);
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
      sources.emulator(provider).resetRequests();
      const run = await runCli(["sync", "--path", "layers/declared", "--strategy", "walk", "--out", out], {
        ...sourceEnv(sources, provider),
        SOURCE_TOKEN: tokenFor(provider),
        SOURCE_MAX_RETRIES: "0",
      });
      expect(run.code).toBe(1);
      expectPromptly(provider, "walk", "layers/declared");
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

  // the first invocation loads modules and creates the AWS clients, as a Lambda cold start does
  beforeAll(async () => {
    setEnv("bitbucket", "walk", "layers/tools", {});
    await handler({}, context);
    for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
    Object.assign(process.env, saved);
  });

  /** Run the handler on one folder; returns its error and the package name, after checking it failed promptly. */
  async function failing(
    provider: Provider,
    strategy: "walk" | "archive",
    folder: string,
    limit: Record<string, string>,
  ) {
    const { prefix, artifactPrefix } = setEnv(provider, strategy, folder, limit);
    sources.emulator(provider).resetRequests();
    const error = await handler({}, context).then(
      () => new Error("the handler returned"),
      (e: unknown) => e as Error,
    );
    expectPromptly(provider, strategy, folder);
    scan("handler error", error);
    const pkg = folder.split("/").pop() ?? folder;
    expect(await pointerOf(ssm, prefix, pkg)).toBeUndefined();
    expect(await keysUnder(s3, sources.bucket, artifactPrefix)).toEqual([]);
    return { error, pkg };
  }

  it.each(cases)(
    "on %s by %s (%s, %j) throws promptly naming the limit and the folder, and writes nothing",
    async (provider, strategy, folder, limit, reason) => {
      const { error, pkg } = await failing(provider, strategy, folder, limit);
      expect(error.name).toBe("SyncFailedError");
      expect(error.message).not.toContain("\n");
      expect(error.message).toMatch(
        new RegExp(`^1 of 1 package\\(s\\) failed at [0-9a-f]{7}: ${pkg}: folder "${folder}"`),
      );
      expect(error.message).toMatch(reason);
    },
  );

  for (const provider of ["github", "bitbucket"] as const) {
    it(`on ${provider}, a walk listing that declares a 10 GiB file throws promptly naming the limit`, async () => {
      const { error } = await failing(provider, "walk", "layers/declared", {});
      expect(error.message.replace(/^.*?declared: /, "")).toMatch(DECLARED);
    });
  }
});
