/**
 * A real pip tree (requests, pyyaml, numpy: empty `py.typed` and `__init__.py` files, shared libraries,
 * executables), installed with pip once into a cache in the repository's `.tmp/`, committed to the Bitbucket
 * emulator, synced by layer-sync, and read back by yauzl, Info-ZIP unzip (-t and extraction) and Python's
 * zipfile. Skipped, saying why, when pip cannot reach its registry.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rename, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../cli/main.ts";
import { type BitbucketEmulator, startBitbucketEmulator } from "../emulators/bitbucket.ts";
import { FixtureRepo } from "../fixtures/repo.ts";
import {
  captureIo,
  commitTree,
  type DiskTree,
  expectSameTree,
  expectZipMatchesTree,
  readDiskTree,
  readZip,
  UNZIP,
  unzipToTree,
} from "../support/zip.ts";

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "../..");
const PACKAGES = ["requests", "pyyaml", "numpy"];
const CACHE = join(ROOT, ".tmp", `pip-tree-${PACKAGES.join("-")}`);
const FOLDER = "layers/py-deps";
const TOKEN = "pip-tree-token-0123456789abcdef";

/** The Python whose pip installs the tree: the moto virtualenv's, else python3 from PATH. */
function python(): string {
  const venv = resolve(ROOT, process.env.LAYER_SYNC_VENV ?? ".venv");
  const inVenv = join(venv, "bin", "python");
  return existsSync(inVenv) ? inVenv : "python3";
}

/** Install the packages into the cache once (atomically); the reason it could not, otherwise. */
async function pipTree(): Promise<{ dir: string } | { skip: string }> {
  if (existsSync(join(CACHE, ".complete"))) return { dir: CACHE };
  const staging = `${CACHE}.${process.pid}.tmp`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  try {
    await run(
      python(),
      [
        ...["-m", "pip", "install", "--target", join(staging, "python"), "--no-compile", "--only-binary=:all:"],
        ...["--disable-pip-version-check", "--no-input", "--timeout", "20", "--retries", "1", ...PACKAGES],
      ],
      { timeout: 240_000, maxBuffer: 64 * 1024 * 1024 },
    );
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    const e = error as { stderr?: string; message: string };
    const last = (e.stderr ?? e.message).trim().split("\n").pop() ?? "";
    return { skip: `pip install ${PACKAGES.join(" ")} failed (registry unreachable?): ${last.slice(0, 300)}` };
  }
  await rm(join(staging, "python", "bin"), { recursive: true, force: true }); // console scripts name the venv
  await mkdir(join(staging, ".complete"));
  await rm(CACHE, { recursive: true, force: true });
  await rename(staging, CACHE);
  return { dir: CACHE };
}

let skip: string | undefined;
let tree: DiskTree;
let repo: FixtureRepo;
let bb: BitbucketEmulator | undefined;
let out: string;
let zip: Buffer;

beforeAll(async () => {
  const got = await pipTree();
  if ("skip" in got) {
    skip = got.skip;
    console.warn(`pip-tree.test.ts skipped: ${skip}`);
    return;
  }
  tree = await readDiskTree(join(got.dir, "python"), { dropEmptyDirectories: true });
  const prefixed: DiskTree = new Map([...tree].map(([p, e]) => [`python/${p}`, e]));
  tree = prefixed;
  repo = new FixtureRepo("acme", "deps");
  commitTree(repo, "main", FOLDER, tree);
  bb = await startBitbucketEmulator({ repos: [repo], accessTokens: [TOKEN] });
  out = await mkdtemp(join(tmpdir(), "ls-pip-tree-"));
}, 300_000);
afterAll(async () => {
  await bb?.close();
  if (out) await rm(out, { recursive: true, force: true });
});

describe("a real pip tree with requests, pyyaml and numpy", () => {
  it("syncs to a zip that yauzl, unzip -t and zipfile accept, holding the git tree", async (ctx) => {
    if (skip || !bb) return ctx.skip();
    expect([...tree.keys()].filter((p) => p.endsWith("py.typed")).length).toBeGreaterThan(0);
    expect([...tree.values()].filter((e) => e.content.length === 0).length).toBeGreaterThan(5);
    const cap = captureIo();
    const code = await main(
      [
        ...["sync", "--provider", "bitbucket", "--repository", "acme/deps", "--api-url", bb.apiUrl],
        ...["--web-url", bb.webUrl, "--path", FOLDER, "--strategy", "archive", "--json"],
        ...["--work-dir", join(out, "work"), "--out", join(out, "out")],
      ],
      { SOURCE_TOKEN: TOKEN },
      cap.io,
    );
    expect(cap.stderr()).toBe("");
    expect(code).toBe(0);
    const summary = JSON.parse(cap.stdout()) as { packages: { key: string; files: number }[] };
    expect(summary.packages[0]?.files).toBe(tree.size);
    zip = await readFile(join(out, "out", ...(summary.packages[0]?.key ?? "").split("/")));
    await readZip(zip);
    await expectZipMatchesTree(zip, repo.head(), FOLDER);
  }, 120_000);

  it.skipIf(!UNZIP)(
    "extracts with Info-ZIP unzip to a tree equal to the installed one",
    async (ctx) => {
      if (skip || !zip) return ctx.skip();
      expectSameTree(await unzipToTree(zip), tree);
    },
    60_000,
  );
});
