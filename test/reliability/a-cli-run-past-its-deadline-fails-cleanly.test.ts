import { describe, expect, it } from "vitest";
import { blobSha } from "../fixtures/repo.ts";
import { uniqueName } from "../support/aws.ts";
import { keysUnder, type Provider, pointerOf, runCli, sourceEnv, tokenFor, useSources } from "./harness.ts";
import { watchSecrets } from "./secrets.ts";

watchSecrets();

const sources = useSources({ bucket: "rel-cli-deadline" });
const { s3, ssm } = sources;

describe("a CLI sync that cannot finish before --deadline", () => {
  for (const provider of ["bitbucket", "github"] as const satisfies readonly Provider[]) {
    it(`${provider}: exits 1 with one line naming the package and the deadline, and uploads and points to nothing`, async () => {
      const prefix = `/${uniqueName("cdl")}`;
      const artifactPrefix = `${uniqueName("art")}/`;
      // the folder's 96 KiB file comes one byte every 50 ms: never idle (no timeout), never finished
      const blob = blobSha(sources.repo.head().entries.get("layers/data/blob.bin")?.content ?? Buffer.alloc(0));
      sources.emulator(provider).inject({
        match: (t) =>
          t.host === "api" &&
          (decodeURIComponent(t.path).endsWith("/layers/data/blob.bin") || t.path.endsWith(`/git/blobs/${blob}`)),
        fault: { kind: "trickle", intervalMs: 50 },
        times: Number.POSITIVE_INFINITY,
      });
      const run = await runCli(
        [
          "sync",
          "--path",
          "layers/data",
          "--strategy",
          "walk",
          "--max-retries",
          "0",
          "--bucket",
          sources.bucket,
          "--prefix",
          artifactPrefix,
          "--parameter-prefix",
          prefix,
          "--deadline",
          "2",
        ],
        { ...sourceEnv(sources, provider), SOURCE_TOKEN: tokenFor(provider) },
      );
      expect(run.code).toBe(1);
      const lines = run.stderr.trim().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(
        /^layer-sync: 1 package\(s\) failed: data: .* was cut at the run's deadline \S+ \(--deadline 2 s from the start of the run\); nothing was uploaded or pointed to after it and the previous pointer stays — raise --deadline, or sync fewer or smaller folders per run$/,
      );
      expect(await keysUnder(s3, sources.bucket, artifactPrefix)).toEqual([]);
      expect(await pointerOf(ssm, prefix, "data")).toBeUndefined();
    });
  }

  it("refuses a deadline that is not a positive number of seconds, before anything runs (exit 2)", async () => {
    for (const bad of ["0", "-5", "soon", "1e3"]) {
      const run = await runCli(["sync", "--path", "layers/data", "--out", sources.dir, `--deadline=${bad}`], {
        ...sourceEnv(sources, "github"),
      });
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(
        new RegExp(`^layer-sync: --deadline must be a positive number of seconds \\(got "${bad}"\\)\\n`),
      );
    }
  });
});
