/**
 * The zip corpus: the contents that trip strict zip readers (empty files, sizes on buffer boundaries, a
 * file large enough to be streamed, symlinks, unicode names, empty directories), written to disk, committed
 * the way git would (empty directories cannot be held, so they are gone), synced from both emulators with
 * both strategies, read back with yauzl, unzip -t and zipfile, and extracted with unzip.
 */
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../cli/main.ts";
import { type BitbucketEmulator, startBitbucketEmulator } from "../emulators/bitbucket.ts";
import { type GitHubEmulator, startGitHubEmulator } from "../emulators/github.ts";
import { FixtureRepo, pseudoRandomBytes } from "../fixtures/repo.ts";
import {
  captureIo,
  commitTree,
  type DiskTree,
  type DiskTreeKind,
  expectSameTree,
  expectZipMatchesTree,
  readDiskTree,
  readZip,
  UNZIP,
  unzipToTree,
} from "../support/zip.ts";

const TOKEN = "corpus-token-0123456789abcdef";
const FOLDER = "layers/corpus";
let repo: FixtureRepo;
let bb: BitbucketEmulator;
let gh: GitHubEmulator;
let out: string;

const file = (content: Buffer | string) => ({ kind: "file" as DiskTreeKind, content: Buffer.from(content) });
const corpus: Record<string, { kind: DiskTreeKind; content: Buffer }> = {
  "python/pkg/__init__.py": file(""),
  "python/pkg/py.typed": file(""),
  "python/pkg/core.py": file("def f():\n    return 1\n"),
  "python/pkg/sub/__init__.py": file(""),
  "data/exactly-64KiB.bin": file(pseudoRandomBytes(64 * 1024, 21)),
  "data/exactly-64KiB.txt": file("0123456789abcdef".repeat(4096)),
  "data/exactly-1MiB.bin": file(pseudoRandomBytes(1024 * 1024, 22)),
  "data/random-5MB.bin": file(pseudoRandomBytes(5_000_000, 23)),
  "bin/run.sh": { kind: "executable", content: Buffer.from("#!/bin/sh\necho run\n") },
  "bin/current": { kind: "symlink", content: Buffer.from("run.sh") },
  "python/alias": { kind: "symlink", content: Buffer.from("pkg") },
  "python/données/naïve.py": file("x = 'é'\n"),
  "python/名前/ファイル.txt": file("名前\n"),
  "python/emoji-😀.txt": file("😀\n"),
  "python/empty-ünï.txt": file(""),
};

/** Empty directories on disk: git cannot hold them, so none may appear in the zip or after unzip. */
const EMPTY_DIRECTORIES = ["empty", "python/pkg/empty/nested", "python/名前/空"];
let onDisk: DiskTree;

beforeAll(async () => {
  out = await mkdtemp(join(tmpdir(), "ls-zip-corpus-"));
  const root = join(out, "corpus");
  for (const [path, e] of Object.entries(corpus)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    if (e.kind === "symlink") await symlink(e.content.toString(), join(root, path));
    else await writeFile(join(root, path), e.content, { mode: e.kind === "executable" ? 0o755 : 0o644 });
  }
  for (const d of EMPTY_DIRECTORIES) await mkdir(join(root, d), { recursive: true });
  onDisk = await readDiskTree(root, { dropEmptyDirectories: true });
  repo = new FixtureRepo("acme", "corpus");
  commitTree(repo, "main", FOLDER, onDisk);
  bb = await startBitbucketEmulator({ repos: [repo], accessTokens: [TOKEN] });
  gh = await startGitHubEmulator({ repos: [repo], tokens: [TOKEN] });
});
afterAll(async () => {
  await bb?.close();
  await gh?.close();
  await rm(out, { recursive: true, force: true });
});

async function syncTo(provider: "bitbucket" | "github", strategy: "walk" | "archive"): Promise<Buffer> {
  const dir = join(out, `${provider}-${strategy}`);
  const urls = provider === "bitbucket" ? ["--api-url", bb.apiUrl, "--web-url", bb.webUrl] : ["--api-url", gh.apiUrl];
  const cap = captureIo();
  const code = await main(
    [
      "sync",
      "--provider",
      provider,
      "--repository",
      "acme/corpus",
      ...urls,
      "--path",
      FOLDER,
      "--strategy",
      strategy,
      "--work-dir",
      join(dir, "work"),
      "--out",
      join(dir, "out"),
      "--json",
    ],
    { SOURCE_TOKEN: TOKEN },
    cap.io,
  );
  expect(cap.stderr()).toBe("");
  expect(code).toBe(0);
  const summary = JSON.parse(cap.stdout()) as { packages: { key: string }[] };
  return readFile(join(dir, "out", ...(summary.packages[0]?.key ?? "").split("/")));
}

describe("the zip of the corpus", () => {
  const zips = new Map<string, Buffer>();

  for (const provider of ["bitbucket", "github"] as const) {
    for (const strategy of ["walk", "archive"] as const) {
      it(`from ${provider} with ${strategy} passes yauzl, unzip -t and zipfile and holds the git tree`, async () => {
        const zip = await syncTo(provider, strategy);
        zips.set(`${provider}-${strategy}`, zip);
        await readZip(zip);
        await expectZipMatchesTree(zip, repo.head(), FOLDER);
      });
    }
  }

  it("is byte-identical whichever provider and strategy fetched it", () => {
    const all = [...zips.values()];
    expect(all).toHaveLength(4);
    for (const zip of all) expect(zip.equals(all[0] as Buffer)).toBe(true);
  });

  it("stores every empty file and names no directory, empty or not", async () => {
    const entries = await readZip(zips.get("bitbucket-archive") as Buffer);
    const names = entries.map((e) => e.name);
    expect(names.filter((n) => n.endsWith("/") || n.includes("empty/"))).toEqual([]);
    expect(entries.filter((e) => e.content.length === 0).map((e) => e.name)).toEqual([
      "python/empty-ünï.txt",
      "python/pkg/__init__.py",
      "python/pkg/py.typed",
      "python/pkg/sub/__init__.py",
    ]);
  });

  it.skipIf(!UNZIP)("extracts with Info-ZIP unzip to the tree as committed: bytes, executables, symlinks", async () => {
    expect(onDisk.size).toBe(Object.keys(corpus).length);
    // unzipToTree fails on any empty directory it finds
    expectSameTree(await unzipToTree(zips.get("github-archive") as Buffer), onDisk);
  });
});
