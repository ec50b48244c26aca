import { mkdtemp, readdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pseudoRandomBytes } from "../fixtures/repo.ts";
import { type Provider, runCli, type Sources, sourceEnv, startSources, tokenFor } from "./harness.ts";
import { watchSecrets } from "./secrets.ts";

watchSecrets();

let sources: Sources;
beforeAll(async () => {
  sources = await startSources();
  // large enough that an unread body holds its connection (a small one fits in the socket buffers)
  sources.repo.commit("main", {
    "layers/huge/big.bin": { kind: "file", content: pseudoRandomBytes(8 * 1024 * 1024, 7) },
    "layers/huge/small.txt": { kind: "file", content: Buffer.from("small\n") },
  });
});
afterAll(() => sources.close());

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
