/**
 * A GitHub directory whose own tree is truncated even without recursion: `walk` lists it with the contents
 * API when that provably rebuilds the tree, takes the folder from the archive when it cannot, and fails
 * (naming the routes tried) only when neither works.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../cli/main.ts";
import { gitTreeSha } from "../../lib/sources/github-tree.ts";
import { type GitHubEmulator, type GitHubEmulatorOptions, startGitHubEmulator } from "../emulators/github.ts";
import { type FixtureRepo, standardRepo } from "../fixtures/repo.ts";
import { captureIo, expectZipMatchesTree } from "../support/zip.ts";

const TOKEN = "ghp_truncated0123456789abcdefghijklmnopqr";
let repo: FixtureRepo;
let out: string;
const emulators: GitHubEmulator[] = [];

interface Summary {
  packages: { key: string; sha256: string; warnings: string[]; error?: string }[];
}

beforeAll(async () => {
  repo = standardRepo({ bigFileBytes: 64 * 1024 });
  const wide: Record<string, { kind: "file"; content: Buffer }> = {};
  for (let i = 0; i < 1005; i++) {
    wide[`layers/wide/python/f${String(i).padStart(4, "0")}.py`] = { kind: "file", content: Buffer.from(`${i}\n`) };
  }
  repo.commit("main", wide, "a directory of 1,005 files");
  out = await mkdtemp(join(tmpdir(), "ls-gh-truncated-"));
});
afterAll(async () => {
  for (const e of emulators) await e.close();
  await rm(out, { recursive: true, force: true });
});

async function emulator(truncateDirectoryTrees: GitHubEmulatorOptions["truncateDirectoryTrees"]) {
  const gh = await startGitHubEmulator({ repos: [repo], tokens: [TOKEN], truncateDirectoryTrees });
  emulators.push(gh);
  return gh;
}

async function walk(gh: GitHubEmulator, folder: string) {
  const dir = join(out, `${emulators.length}`);
  const cap = captureIo();
  const code = await main(
    [
      ...["sync", "--provider", "github", "--repository", "acme/layers", "--api-url", gh.apiUrl, "--json"],
      ...["--path", folder, "--strategy", "walk", "--work-dir", join(dir, "work"), "--out", join(dir, "out")],
    ],
    { SOURCE_TOKEN: TOKEN },
    cap.io,
  );
  const summary = JSON.parse(cap.stdout()) as Summary;
  const zip = async () => readFile(join(dir, "out", ...(summary.packages[0]?.key ?? "").split("/")));
  return { code, stderr: cap.stderr(), summary, zip, warnings: summary.packages[0]?.warnings.join("\n") ?? "" };
}

describe("gitTreeSha", () => {
  it("gives git's own tree ids, in git's order (a tree sorts as its name plus a slash)", () => {
    expect(gitTreeSha([])).toBe("4b825dc642cb6eb9a060e54bf8d69288fbee4904");
    // ids from `git hash-object -w` of "hi\n" and `git mktree` of the entries
    const blob = "45b983be36b73c0788dc9cbcb76cbb80fc7bb057";
    expect(gitTreeSha([{ name: "a.txt", mode: "100644", sha: blob }])).toBe("0d8a474fc67971fb3dd7616e26323d3066442555");
    const entries = [
      { name: "a", mode: "40000", sha: "4b825dc642cb6eb9a060e54bf8d69288fbee4904" },
      { name: "a.txt", mode: "100644", sha: blob },
      { name: "a-b", mode: "100755", sha: blob },
    ];
    // git order: a-b, a.txt, a/ (the tree "a" sorts after "a.txt")
    expect(gitTreeSha(entries)).toBe("44d7d2123afe9610277c2d6100b64c7f840420b0");
  });
});

describe("walking a GitHub directory whose own tree is truncated", () => {
  it("lists it with the contents API, proven by its tree SHA, and the zip holds the git tree", async () => {
    const gh = await emulator({ "layers/py-requests/python/many": 50 });
    const r = await walk(gh, "layers/py-requests");
    expect(r.code, r.stderr).toBe(0);
    expect(r.warnings).toMatch(/truncated the tree of "layers\/py-requests\/python\/many" even without recursion/);
    expect(r.warnings).not.toMatch(/archive/);
    expect(gh.requests.some((q) => q.path.endsWith("/contents/layers/py-requests/python/many"))).toBe(true);
    expect(gh.requests.filter((q) => q.host === "codeload")).toEqual([]);
    await expectZipMatchesTree(await r.zip(), repo.head(), "layers/py-requests");
  });

  it("takes the folder from the archive when the listing cannot show an executable's mode", async () => {
    // git order: "current" (a symlink) is returned, "run.sh" (an executable) is cut off
    const gh = await emulator({ "layers/py-requests/bin": 1 });
    const r = await walk(gh, "layers/py-requests");
    expect(r.code, r.stderr).toBe(0);
    expect(r.warnings).toMatch(
      /cannot list it: .*executable.*; fetched "layers\/py-requests" from the archive instead/,
    );
    await expectZipMatchesTree(await r.zip(), repo.head(), "layers/py-requests");
  });

  it("takes the folder from the archive when the directory has more than 1,000 entries", async () => {
    const gh = await emulator({ "layers/wide/python": 100 });
    const r = await walk(gh, "layers/wide");
    expect(r.code, r.stderr).toBe(0);
    expect(r.warnings).toMatch(/lists at most 1000 entries; fetched "layers\/wide" from the archive instead/);
    await expectZipMatchesTree(await r.zip(), repo.head(), "layers/wide");
  });

  it("fails only when no route can list it, naming every route tried", async () => {
    const gh = await emulator({ "layers/wide/python": 100 });
    gh.inject({
      match: (q) => q.path.includes("/tarball/"),
      fault: { kind: "status", status: 403, body: { message: "archives are disabled" } },
      times: Number.POSITIVE_INFINITY,
    });
    const r = await walk(gh, "layers/wide");
    expect(r.code).toBe(1);
    expect(r.summary.packages[0]?.error).toMatch(
      /^the tree of "layers\/wide\/python" is too large even without recursion; the contents API \(GET .*\/contents\/layers\/wide\/python\?ref=[0-9a-f]{40} \(list "layers\/wide\/python"\)\) cannot list it: it lists at most 1000 entries; and the archive route failed too: .*tarball.* was refused \(HTTP 403\)$/,
    );
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
  });
});
