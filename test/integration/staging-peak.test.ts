/**
 * `/tmp` holds about one package at a time: several packages, walked or fetched from one archive, are each
 * zipped, written out and removed from the staging area while the next one arrives (within the area's
 * limit while a package finishes). Measured with the staging area's own accounting (files, pack files and
 * zips on disk), not with timing.
 */
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Logger } from "../../lib/common/log.ts";
import { type BitbucketEmulator, startBitbucketEmulator } from "../emulators/bitbucket.ts";
import { type GitHubEmulator, startGitHubEmulator } from "../emulators/github.ts";
import { type FixtureEntry, FixtureRepo, pseudoRandomBytes } from "../fixtures/repo.ts";
import { syncToDir } from "../support/sync-to-dir.ts";

const TOKEN = "staging-peak-token-0123456789abcdef";
const SIZES = [3, 1, 4, 2, 5, 1]; // MiB of incompressible content per package
const folder = (i: number) => `layers/pkg-${i}`;

let repo: FixtureRepo;
let bb: BitbucketEmulator;
let gh: GitHubEmulator;
let dir: string;

beforeAll(async () => {
  repo = new FixtureRepo("acme", "layers");
  const files: Record<string, Omit<FixtureEntry, "path">> = {
    "README.md": { kind: "file", content: Buffer.from("x\n") },
  };
  for (const [i, mib] of SIZES.entries()) {
    files[`${folder(i)}/big.bin`] = { kind: "file", content: pseudoRandomBytes(mib * 1024 * 1024, i + 1) };
    for (let j = 0; j < 20; j++) {
      files[`${folder(i)}/small/${j}.bin`] = { kind: "file", content: pseudoRandomBytes(16 * 1024, 100 * i + j) };
    }
  }
  repo.commit("main", files, "packages of several sizes");
  bb = await startBitbucketEmulator({ repos: [repo], accessTokens: [TOKEN] });
  gh = await startGitHubEmulator({ repos: [repo], tokens: [TOKEN] });
  dir = await mkdtemp(join(tmpdir(), "ls-staging-peak-"));
});
afterAll(async () => {
  await bb.close();
  await gh.close();
  await rm(dir, { recursive: true, force: true });
});

async function run(provider: "bitbucket" | "github", strategy: "archive" | "walk") {
  const urls =
    provider === "bitbucket" ? { SOURCE_API_URL: bb.apiUrl, SOURCE_WEB_URL: bb.webUrl } : { SOURCE_API_URL: gh.apiUrl };
  const env = {
    SOURCE_PROVIDER: provider,
    SOURCE_REPOSITORY: "acme/layers",
    SOURCE_PATHS: SIZES.map((_, i) => folder(i)).join(","),
    SOURCE_STRATEGY: strategy,
    ...urls,
  };
  const staged: number[] = [];
  const footprints: number[] = [];
  let peak = -1;
  const logger: Logger = {
    info(message, extra) {
      if (message === "package left staging") {
        staged.push(extra?.stagedBytes as number);
        footprints.push(extra?.footprintBytes as number);
      }
      if (message === "staging peak") peak = extra?.bytes as number;
    },
    warn() {},
    error() {},
  };
  const out = join(dir, `${provider}-${strategy}-out`);
  const summary = await syncToDir(env, TOKEN, { out, work: join(dir, `${provider}-${strategy}-work`) }, { logger });
  return { summary, staged, footprints, peak, out };
}

describe.each([
  ["bitbucket", "walk"],
  ["github", "walk"],
  ["bitbucket", "archive"],
  ["github", "archive"],
] as const)("%s packages fetched by %s", (provider, strategy) => {
  it("hold at most 1.3 × the largest package (staged bytes plus zip) in staging at any moment", async () => {
    const { summary, staged, footprints, peak, out } = await run(provider, strategy);
    expect(summary.packages.map((p) => p.error ?? "ok")).toEqual(SIZES.map(() => "ok"));
    expect(summary.strategy).toBe(strategy);
    expect(staged).toHaveLength(SIZES.length);
    expect(footprints).toHaveLength(SIZES.length);
    const largest = Math.max(...staged);
    const bound = 1.3 * Math.max(...footprints);
    const total = staged.reduce((a, b) => a + b, 0);
    // the biggest package holds 5 MiB staged and 5 MiB zipped; all of them together three times that
    expect(largest).toBeGreaterThan(10 * 1024 * 1024);
    expect(total).toBeGreaterThan(2.5 * largest);
    expect(peak).toBeGreaterThanOrEqual(largest);
    // incompressible content: a package's footprint (staged bytes plus zip) is what it holds on disk
    expect(Math.max(...footprints)).toBeLessThan(1.01 * largest);
    expect(peak).toBeLessThanOrEqual(bound);
    // every zip was written out
    expect((await readdir(out, { recursive: true })).filter((f) => f.endsWith(".zip"))).toHaveLength(SIZES.length);
  });
});
