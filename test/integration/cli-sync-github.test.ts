import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type GitHubEmulator, startGitHubEmulator } from "../emulators/github.ts";
import { type FixtureRepo, standardRepo } from "../fixtures/repo.ts";
import { createBucket, uniqueName } from "../support/aws.ts";
import { cliSync, readOutZip, twoFoldersAtMain } from "../support/cli-sync.ts";
import { expectZipMatchesTree, readZip } from "../support/zip.ts";

const TOKEN = "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB";
let gh: GitHubEmulator;
let repo: FixtureRepo;
let out: string;

interface Summary {
  commit: string;
  strategy: string;
  packages: {
    name: string;
    key: string;
    sha256: string;
    skipped: boolean;
    reason: string | null;
    warnings: string[];
    error?: string;
  }[];
  requests: { total: number };
}

beforeAll(async () => {
  repo = standardRepo({ bigFileBytes: 1024 * 1024 });
  gh = await startGitHubEmulator({ repos: [repo], tokens: [TOKEN] });
  out = await mkdtemp(join(tmpdir(), "ls-cli-gh-"));
});
afterAll(async () => {
  await gh.close();
  await rm(out, { recursive: true, force: true });
});

async function sync(emulator: GitHubEmulator, args: string[], env: Record<string, string> = { SOURCE_TOKEN: TOKEN }) {
  const r = await cliSync({ provider: "github", apiUrl: emulator.apiUrl }, out, args, env);
  return { ...r, summary: () => JSON.parse(r.stdout) as Summary };
}

async function zipOf(dir: string, key: string) {
  return readZip(await readOutZip(dir, key));
}

async function expectMatchesTree(dir: string, summary: Summary, folder: string): Promise<void> {
  const p = summary.packages.find((x) => `layers/${x.name}` === folder);
  expect(p?.error).toBeUndefined();
  await expectZipMatchesTree(await readOutZip(dir, p?.key ?? ""), repo.head(), folder);
}

describe("layer-sync sync --provider github against the GitHub emulator", () => {
  const shas = new Map<string, string>();

  for (const strategy of ["walk", "archive"] as const) {
    it(`builds zips that match the git tree byte for byte with the ${strategy} strategy`, async () => {
      const dir = join(out, strategy);
      const r = await sync(gh, twoFoldersAtMain(strategy, dir));
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      const summary = r.summary();
      expect(summary.commit).toBe(repo.head().sha);
      await expectMatchesTree(dir, summary, "layers/py-requests");
      await expectMatchesTree(dir, summary, "layers/tools");
      shas.set(strategy, summary.packages.map((p) => p.sha256).join(","));
    });
  }

  it("gives the same bytes under walk and archive", () => {
    expect(shas.get("walk")).toBeDefined();
    expect(shas.get("walk")).toBe(shas.get("archive"));
  });

  it("walks subtrees one at a time when GitHub truncates the recursive tree, losing nothing", async () => {
    const small = await startGitHubEmulator({ repos: [repo], tokens: [TOKEN], truncateTreesOver: 20 });
    try {
      const dir = join(out, "truncated");
      const r = await sync(small, ["--path", "layers/py-requests", "--strategy", "walk", "--out", dir]);
      expect(r.code, r.stderr).toBe(0);
      const summary = r.summary();
      expect(summary.packages[0]?.warnings.join(" ")).toMatch(/truncated/);
      await expectMatchesTree(dir, summary, "layers/py-requests");
      expect(summary.packages[0]?.sha256).toBe(shas.get("walk")?.split(",")[0]);
    } finally {
      await small.close();
    }
  });

  it("works against GitHub Enterprise Server paths (/api/v3)", async () => {
    const ghes = await startGitHubEmulator({ repos: [repo], tokens: [TOKEN], pathPrefix: "/api/v3" });
    try {
      expect(ghes.apiUrl).toMatch(/\/api\/v3$/);
      for (const strategy of ["walk", "archive"]) {
        const dir = join(out, `ghes-${strategy}`);
        const r = await sync(ghes, ["--path", "layers/tools", "--strategy", strategy, "--out", dir]);
        expect(r.code, r.stderr).toBe(0);
        await expectMatchesTree(dir, r.summary(), "layers/tools");
      }
      expect(ghes.requests.filter((q) => q.host === "api" && !q.path.startsWith("/api/v3/"))).toEqual([]);
    } finally {
      await ghes.close();
    }
  });

  it("sends the API version header and a User-Agent, and never sends the token to codeload or the media host", async () => {
    gh.resetRequests();
    const r = await sync(gh, [
      "--path",
      "layers/with-lfs",
      "--path",
      "layers/tools",
      "--strategy",
      "archive",
      "--out",
      join(out, "hdr"),
    ]);
    expect(r.code, r.stderr).toBe(0);
    const api = gh.requests.filter((q) => q.host === "api");
    expect(api.length).toBeGreaterThan(0);
    for (const q of api) {
      expect(q.headers["x-github-api-version"]).toBe("2022-11-28");
      expect(q.headers["user-agent"]).toMatch(/^layer-sync\//);
      expect(q.authorization).toBe(`Bearer ${TOKEN}`);
    }
    const foreign = gh.requests.filter((q) => q.host === "codeload" || q.host === "media");
    expect(foreign.length).toBeGreaterThan(0);
    expect(foreign.filter((q) => q.authorization !== undefined)).toEqual([]);
  });

  it("resolves LFS files to their content under walk and archive", async () => {
    for (const strategy of ["walk", "archive"]) {
      const dir = join(out, `lfs-${strategy}`);
      const r = await sync(gh, ["--path", "layers/with-lfs", "--strategy", strategy, "--out", dir]);
      expect(r.code, r.stderr).toBe(0);
      const entries = await zipOf(dir, r.summary().packages[0]?.key ?? "");
      const model = entries.find((e) => e.name === "model.bin");
      expect(
        model?.content.equals(repo.head().entries.get("layers/with-lfs/model.bin")?.content ?? Buffer.alloc(0)),
      ).toBe(true);
    }
  });

  it("fails submodules and escaping symlinks with errors that name them", async () => {
    for (const strategy of ["walk", "archive"]) {
      const r = await sync(gh, [
        "--path",
        "layers/with-submodule",
        "--path",
        "layers/escape",
        "--strategy",
        strategy,
        "--out",
        join(out, `bad-${strategy}`),
      ]);
      expect(r.code).toBe(1);
      const byName = Object.fromEntries(r.summary().packages.map((p) => [p.name, p.error]));
      expect(byName["with-submodule"]).toMatch(/submodule.*vendor/);
      expect(byName.escape).toMatch(/symlink "evil".*leaves the folder/);
    }
  });

  it("names an unknown ref and a bad token plainly, without printing the token", async () => {
    const ref = await sync(gh, ["--ref", "does-not-exist", "--path", "layers/tools", "--out", join(out, "ref")]);
    expect(ref.code).toBe(1);
    expect(ref.stderr).toMatch(/ref "does-not-exist" is not a branch, tag or commit/);
    const bad = await sync(gh, ["--path", "layers/tools", "--out", join(out, "bad")], {
      SOURCE_TOKEN: "ghp_wrongwrongwrongwrong",
    });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/401.*Bad credentials/);
    expect(bad.stderr + ref.stderr).not.toMatch(/ghp_/);
  });

  it("waits out a secondary rate limit that names its retry-after, then succeeds", async () => {
    gh.secondaryRateLimit(1, 1);
    const r = await sync(gh, ["--path", "layers/tools", "--strategy", "archive", "--out", join(out, "secondary")]);
    expect(r.code, r.stderr).toBe(0);
  });

  it("fails with the reset time when the primary rate limit will not reset in time", async () => {
    const reset = Math.floor(Date.now() / 1000) + 3600;
    const limited = await startGitHubEmulator({
      repos: [repo],
      tokens: [TOKEN],
      rateLimit: { limit: 5000, remaining: 0, resetEpochSeconds: reset },
    });
    try {
      const r = await sync(limited, ["--path", "layers/tools", "--out", join(out, "primary")]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`resets at ${new Date(reset * 1000).toISOString()}`);
    } finally {
      await limited.close();
    }
  });
});

describe("skip-unchanged for GitHub", () => {
  it("skips an unchanged folder at a new commit with at most 3 requests and no file download", async () => {
    const bucket = await createBucket(uniqueName("gh-skip"));
    const prefix = `/${uniqueName("ls")}`;
    const args = ["--path", "layers/py-requests", "--bucket", bucket, "--parameter-prefix", prefix];
    const first = await sync(gh, args);
    expect(first.code, first.stderr).toBe(0);
    expect(first.summary().packages[0]?.skipped).toBe(false);
    repo.commit("main", { "layers/tools/README.md": { kind: "file", content: Buffer.from("# tools, again\n") } });
    gh.resetRequests();
    const second = await sync(gh, args);
    expect(second.code, second.stderr).toBe(0);
    const summary = second.summary();
    expect(summary.commit).toBe(repo.head().sha);
    expect(summary.packages[0]).toMatchObject({
      skipped: true,
      reason: "unchanged",
      key: first.summary().packages[0]?.key,
    });
    expect(summary.requests.total).toBeLessThanOrEqual(3);
    expect(gh.requests.filter((q) => q.path.includes("/git/blobs/") || q.host === "codeload")).toEqual([]);
  });
});
