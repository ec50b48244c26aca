/**
 * Deterministic benchmark repositories. Every byte comes from `pseudoRandomBytes` with fixed seeds, so a
 * fixture is identical on every machine and in every run.
 *
 * - tiny:   a handful of entries (a text file, a random file, an empty file, an executable, a symlink).
 * - medium: 2,000 entries in 200 directories (10 top-level directories with 19 subdirectories each, 10
 *           entries per directory), about 40 MB; even-numbered files are text-like (compressible), odd
 *           ones random; a few executables and symlinks.
 * - large:  about 250 MB unzipped, just under Lambda's 262,144,000-byte limit: five large files (8-40 MiB,
 *           text-like and random) and 3,000 small ones in 300 directories.
 *
 * `BenchRepo` memoises the fixture model's tree computations (commits are immutable), so the emulators
 * spend their time answering requests rather than re-hashing the same trees for every listing page.
 */
import {
  type FixtureCommit,
  type FixtureEntry,
  FixtureRepo,
  pseudoRandomBytes,
  type TreeItem,
} from "../test/fixtures/repo.ts";

export type FixtureName = "tiny" | "medium" | "large";
export const FIXTURE_NAMES: readonly FixtureName[] = ["tiny", "medium", "large"];

/** The repository every bench fixture lives in, and the folder that becomes the layer. */
export const BENCH_OWNER = "acme";
export const BENCH_REPO = "bench";
export const BENCH_FOLDER = "layers/bench";
export const BENCH_PACKAGE = "bench";
/** Lambda's limit for a function and its layers, unzipped. */
export const LAMBDA_UNZIPPED_LIMIT = 262_144_000;

export interface FixtureStats {
  name: FixtureName;
  /** Entries in the folder (files, executables, symlinks). */
  files: number;
  /** Directories below the folder (the folder itself not counted). */
  directories: number;
  /** Unzipped bytes of the folder's entries (symlinks count their target length). */
  bytes: number;
  /** Bytes in text-like (compressible) files. */
  compressibleBytes: number;
  /** Bytes in random (incompressible) files. */
  randomBytes: number;
}

export interface BenchFixture {
  repo: BenchRepo;
  commit: string;
  stats: FixtureStats;
}

/** A `FixtureRepo` whose per-commit tree computations are cached. */
export class BenchRepo extends FixtureRepo {
  private readonly childMemo = new WeakMap<Map<string, FixtureEntry>, Map<string, TreeItem[]>>();
  private readonly treeMemo = new WeakMap<Map<string, FixtureEntry>, Map<string, string>>();

  override children(commit: FixtureCommit, dir: string): TreeItem[] {
    let memo = this.childMemo.get(commit.entries);
    if (!memo) {
      memo = new Map();
      this.childMemo.set(commit.entries, memo);
    }
    let items = memo.get(dir);
    if (!items) {
      items = super.children(commit, dir);
      memo.set(dir, items);
    }
    return [...items]; // callers sort in place
  }

  override treeSha(entries: Map<string, FixtureEntry>, dir: string): string {
    let memo = this.treeMemo.get(entries);
    if (!memo) {
      memo = new Map();
      this.treeMemo.set(entries, memo);
    }
    let sha = memo.get(dir);
    if (sha === undefined) {
      sha = super.treeSha(entries, dir);
      memo.set(dir, sha);
    }
    return sha;
  }

  override isDir(commit: FixtureCommit, path: string): boolean {
    if (path === "") return true;
    const slash = path.lastIndexOf("/");
    const parent = slash < 0 ? "" : path.slice(0, slash);
    const name = path.slice(slash + 1);
    return this.children(commit, parent).some((i) => i.name === name && i.type === "tree");
  }
}

/** A small deterministic number stream over `pseudoRandomBytes`. */
class Numbers {
  private readonly bytes: Buffer;
  private at = 0;
  constructor(seed: number, count = 1 << 16) {
    this.bytes = pseudoRandomBytes(count * 4, seed);
  }
  /** A whole number in [0, 2^32). */
  next(): number {
    if (this.at + 4 > this.bytes.length) this.at = 0;
    const v = this.bytes.readUInt32LE(this.at);
    this.at += 4;
    return v;
  }
  /** A whole number in [min, max]. */
  between(min: number, max: number): number {
    return min + (this.next() % (max - min + 1));
  }
}

const WORDS = (
  "def class return import from self value values result items item key keys name names path paths data " +
  "config options request response error errors raise except try finally with open read write close " +
  "if elif else for while in not and or is None True False lambda yield async await print len range " +
  "list dict set tuple str int float bytes append extend update get pop split join strip format " +
  "logger debug info warning handler client session token cache index count total size offset limit"
).split(" ");
const INDENTS = ["", "    ", "        ", "            "];

/** Text-like bytes (source-code-ish lines over a small vocabulary): compresses roughly 3-4x with DEFLATE. */
export function textBytes(length: number, seed: number): Buffer {
  const r = pseudoRandomBytes(Math.max(16, Math.ceil(length / 3)), seed);
  const parts: string[] = [];
  let size = 0;
  let i = 0;
  while (size < length) {
    const words = 2 + ((r[i++ % r.length] ?? 0) % 9);
    let line = INDENTS[(r[i++ % r.length] ?? 0) % INDENTS.length] as string;
    for (let w = 0; w < words; w++) {
      const a = r[i++ % r.length] ?? 0;
      const b = r[i++ % r.length] ?? 0;
      line += `${WORDS[(a * 256 + b) % WORDS.length]}${w + 1 < words ? (a & 1 ? " " : "_") : ""}`;
    }
    line += (r[i++ % r.length] ?? 0) % 5 === 0 ? `(${(r[i++ % r.length] ?? 0) * 7})\n` : "\n";
    parts.push(line);
    size += line.length;
  }
  return Buffer.from(parts.join(""), "latin1").subarray(0, length);
}

interface Builder {
  changes: Record<string, Omit<FixtureEntry, "path">>;
  stats: FixtureStats;
  dirs: Set<string>;
}

function builder(name: FixtureName): Builder {
  return {
    changes: {},
    dirs: new Set(),
    stats: { name, files: 0, directories: 0, bytes: 0, compressibleBytes: 0, randomBytes: 0 },
  };
}

function add(b: Builder, rel: string, entry: Omit<FixtureEntry, "path">, compressible: boolean): void {
  b.changes[`${BENCH_FOLDER}/${rel}`] = entry;
  b.stats.files += 1;
  b.stats.bytes += entry.content.length;
  if (entry.kind === "file" || entry.kind === "executable") {
    if (compressible) b.stats.compressibleBytes += entry.content.length;
    else b.stats.randomBytes += entry.content.length;
  }
  const segs = rel.split("/");
  for (let i = 1; i < segs.length; i++) b.dirs.add(segs.slice(0, i).join("/"));
}

/** A regular file, executable every `execEvery`-th index, text-like on even and random on odd indexes. */
function addFile(b: Builder, rel: string, index: number, size: number, seed: number, execEvery = 97): void {
  const compressible = index % 2 === 0;
  const content = compressible ? textBytes(size, seed) : pseudoRandomBytes(size, seed);
  add(b, rel, { kind: index % execEvery === 5 ? "executable" : "file", content }, compressible);
}

/**
 * A tree of `top` directories with `sub` subdirectories each and `perDir` entries per directory; every
 * 200th entry is a symlink to a sibling. `sizeOf` gives each file's size.
 */
function addTree(
  b: Builder,
  prefix: string,
  layout: { top: number; sub: number; perDir: number },
  sizeOf: (index: number) => number,
  seedBase: number,
): void {
  let index = 0;
  const fill = (dir: string) => {
    for (let f = 0; f < layout.perDir; f++, index++) {
      const ext = index % 2 === 0 ? "py" : "bin";
      const rel = `${dir}/file${String(f).padStart(2, "0")}.${ext}`;
      if (index % 200 === 199) {
        add(
          b,
          `${dir}/link${String(f).padStart(2, "0")}`,
          { kind: "symlink", content: Buffer.from("file00.py") },
          true,
        );
        continue;
      }
      addFile(b, rel, index, sizeOf(index), seedBase + index);
    }
  };
  for (let t = 0; t < layout.top; t++) {
    const top = `${prefix}pkg${String(t).padStart(2, "0")}`;
    fill(top);
    for (let s = 0; s < layout.sub; s++) fill(`${top}/mod${String(s).padStart(2, "0")}`);
  }
}

function finish(b: Builder): BenchFixture {
  const repo = new BenchRepo(BENCH_OWNER, BENCH_REPO);
  b.changes["README.md"] = { kind: "file", content: Buffer.from("# acme/bench\n\nBenchmark fixture.\n") };
  const commit = repo.commit("main", b.changes, "bench fixture");
  b.stats.directories = b.dirs.size;
  return { repo, commit, stats: b.stats };
}

function tiny(): BenchFixture {
  const b = builder("tiny");
  add(b, "README.txt", { kind: "file", content: textBytes(3000, 101) }, true);
  add(b, "lib/data.bin", { kind: "file", content: pseudoRandomBytes(5000, 102) }, false);
  add(b, "lib/empty.txt", { kind: "file", content: Buffer.alloc(0) }, true);
  add(b, "bin/tool", { kind: "executable", content: Buffer.from("#!/bin/sh\necho tool\n") }, true);
  add(b, "bin/tool-latest", { kind: "symlink", content: Buffer.from("tool") }, true);
  add(b, "lib/nested/deep/module.py", { kind: "file", content: textBytes(1200, 103) }, true);
  return finish(b);
}

function medium(): BenchFixture {
  const b = builder("medium");
  const n = new Numbers(2024);
  // sizes 2-38 KiB, mean ~20 KiB: 2,000 entries ≈ 40 MB
  addTree(b, "", { top: 10, sub: 19, perDir: 10 }, () => n.between(2 * 1024, 38 * 1024), 10_000);
  return finish(b);
}

const MiB = 1024 * 1024;

function large(): BenchFixture {
  const b = builder("large");
  const big = [40 * MiB, 32 * MiB, 24 * MiB, 16 * MiB, 8 * MiB];
  for (const [i, size] of big.entries()) {
    const compressible = i % 2 === 0;
    add(
      b,
      `blobs/big${i}.${compressible ? "txt" : "bin"}`,
      { kind: "file", content: compressible ? textBytes(size, 500 + i) : pseudoRandomBytes(size, 500 + i) },
      compressible,
    );
  }
  const bigTotal = big.reduce((a, s) => a + s, 0);
  // 3,000 small entries share what is left under the limit, minus a safety margin
  const small = 3000;
  const budget = LAMBDA_UNZIPPED_LIMIT - 1_500_000 - bigTotal;
  const mean = Math.floor(budget / small);
  const n = new Numbers(4048);
  const spread = Math.floor(mean * 0.9);
  addTree(b, "", { top: 15, sub: 19, perDir: 10 }, () => n.between(mean - spread, mean + spread), 20_000);
  const fixture = finish(b);
  if (fixture.stats.bytes >= LAMBDA_UNZIPPED_LIMIT) {
    throw new Error(`the large fixture is ${fixture.stats.bytes} bytes, over the ${LAMBDA_UNZIPPED_LIMIT} limit`);
  }
  return fixture;
}

export function buildFixture(name: FixtureName): BenchFixture {
  if (name === "tiny") return tiny();
  if (name === "medium") return medium();
  return large();
}
