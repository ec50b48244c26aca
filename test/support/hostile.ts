/**
 * Hostile-source fuzzing: a seeded generator of tar archives and walk deliveries with random symlink chains,
 * duplicate names, ".." segments and file/directory/link swaps, and a runner that feeds each case through the
 * real staging, archive extraction, chain check, zip build and verification inside a sandbox directory.
 *
 * For every case: nothing outside the sandbox is created or changed (a snapshot of the sandbox's parent is
 * compared), no symlink is ever created on disk, and the package either fails with an error naming one of
 * the case's entries or produces exactly the intended tree. Used by the suite (a few hundred cases) and by
 * `scripts/fuzz-hostile-archives.ts` (thousands).
 */
import { execFileSync } from "node:child_process";
import { lstat, mkdir, readdir, readlink, rm, symlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { Readable } from "node:stream";
import { gzipSync, inflateRawSync } from "node:zlib";
import * as tar from "tar-stream";
import { checkSymlinkChains } from "../../lib/common/paths.ts";
import { extractFolders } from "../../lib/sources/tarball.ts";
import { StagingArea } from "../../lib/staging/staging.ts";
import { buildZip, MODE, verifyZip } from "../../lib/zip/folder-zip.ts";

export interface HostileEntry {
  name: string;
  kind: "file" | "dir" | "symlink";
  /** File content or link target. */
  data: string;
}

export interface HostileCase {
  seed: number;
  via: "archive" | "walk";
  entries: HostileEntry[];
}

const FOLDER = "layers/pkg";
/** Names a link may aim at outside the sandbox; they must never appear. */
const VICTIM = "/tmp/ls-fuzz-victim";
const OUTSIDE = "ls-fuzz-outside";
const TOP = "owner-repo-0123456";

/** mulberry32: small, seeded, good enough to spread cases. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function generateCase(seed: number): HostileCase {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const segments = ["a", "b", "c", "d", "..", ".", "x"] as const;
  const name = (): string => {
    const depth = 1 + Math.floor(r() * 3);
    return Array.from({ length: depth }, () => (r() < 0.1 ? pick(segments) : pick(["a", "b", "c", "d"]))).join("/");
  };
  const target = (): string => {
    const parts = Array.from({ length: 1 + Math.floor(r() * 4) }, () => pick(["..", "..", ".", "a", "b", "c", "d"]));
    if (r() < 0.04) return VICTIM;
    if (r() < 0.04) return `${"../".repeat(1 + Math.floor(r() * 10))}${OUTSIDE}`;
    return parts.join("/");
  };
  const entries: HostileEntry[] = [];
  const count = 2 + Math.floor(r() * 8);
  for (let i = 0; i < count; i++) {
    const roll = r();
    const earlier = entries.length > 0 && r() < 0.3 ? (pick(entries) as HostileEntry).name : undefined;
    const n = earlier ?? name();
    if (roll < 0.45) entries.push({ name: n, kind: "symlink", data: target() });
    else if (roll < 0.55) entries.push({ name: n, kind: "dir", data: "" });
    else entries.push({ name: n, kind: "file", data: `${n}#${i}\n` });
  }
  return { seed, via: r() < 0.5 ? "archive" : "walk", entries };
}

function tarOf(entries: HostileEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const e of entries) {
    const name = `${TOP}/${FOLDER}/${e.name}`;
    if (e.kind === "symlink") pack.entry({ name, type: "symlink", linkname: e.data });
    else if (e.kind === "dir") pack.entry({ name: `${name}/`, type: "directory", mode: 0o755 });
    else pack.entry({ name, type: "file", mode: 0o644 }, e.data);
  }
  pack.finalize();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    pack.on("data", (c: unknown) => chunks.push(c as Buffer));
    pack.on("end", () => resolve(gzipSync(Buffer.concat(chunks))));
    pack.on("error", reject);
  });
}

/** Every path under `dir` with what it is: a change anywhere shows as a different string. */
export async function snapshot(dir: string, skip: string): Promise<string> {
  const out: string[] = [];
  for (const rel of (await readdir(dir, { recursive: true })).sort()) {
    const p = join(dir, rel);
    if (p === skip || p.startsWith(`${skip}/`)) continue;
    const st = await lstat(p).catch(() => undefined);
    if (!st) continue;
    const link = st.isSymbolicLink() ? await readlink(p) : "";
    out.push(`${rel} ${st.mode.toString(8)} ${st.isDirectory() ? "" : `${st.size} ${st.mtimeMs}`} ${link}`);
  }
  return out.join("\n");
}

/** Entries of a zip written by layer-sync: name, mode and content. */
function readZip(data: Buffer): { name: string; mode: number; content: string }[] {
  const eocd = data.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  const count = data.readUInt16LE(eocd + 10);
  let p = data.readUInt32LE(eocd + 16);
  const out: { name: string; mode: number; content: string }[] = [];
  for (let i = 0; i < count; i++) {
    const nameLength = data.readUInt16LE(p + 28);
    const name = data.subarray(p + 46, p + 46 + nameLength).toString("utf8");
    const compressed = data.readUInt32LE(p + 20);
    const local = data.readUInt32LE(p + 42);
    const start = local + 30 + data.readUInt16LE(local + 26) + data.readUInt16LE(local + 28);
    const raw = data.subarray(start, start + compressed);
    const method = data.readUInt16LE(p + 10);
    const content = (method === 8 ? inflateRawSync(raw) : raw).toString("utf8");
    out.push({ name, mode: data.readUInt32LE(p + 38) >>> 16, content });
    p += 46 + nameLength + data.readUInt16LE(p + 30) + data.readUInt16LE(p + 32);
  }
  return out;
}

export interface CaseResult {
  outcome: "failed" | "built";
  message?: string;
  /** Links of a built zip, materialised under `checkDir`, for an independent escape check. */
  links: string[];
}

/** Run one case inside `sandbox` (which must not exist yet); throws when a guarantee does not hold. */
export async function runCase(c: HostileCase, sandbox: string, checkDir: string): Promise<CaseResult> {
  const fail = (why: string): never => {
    throw new Error(`case ${c.seed} (${c.via}, ${JSON.stringify(c.entries)}): ${why}`);
  };
  const area = await StagingArea.create(
    sandbox,
    "run",
    { maxFiles: 100, maxBytes: 1_000_000 },
    {
      exclusive: true,
      now: Date.now(),
      packSmallFiles: c.seed % 3 === 0,
    },
  );
  const stage = await area.stage(FOLDER, "pkg");
  let error: Error | undefined;
  try {
    if (c.via === "archive") {
      const result = await extractFolders(
        Readable.from([await tarOf(c.entries)]),
        [{ folder: FOLDER, sink: stage }],
        "fuzz",
      );
      error = result.errors.get(FOLDER);
    } else {
      // a walk delivers concurrently, in any order; a listed directory is implied by its children only
      const settled = await Promise.allSettled(
        c.entries.map((e) =>
          e.kind === "symlink"
            ? stage.symlink(e.name, e.data)
            : e.kind === "file"
              ? stage.file(e.name, Buffer.from(e.data), { executable: false })
              : Promise.resolve(),
        ),
      );
      const rejected = settled.find((s) => s.status === "rejected");
      if (rejected) error = (rejected as PromiseRejectedResult).reason as Error;
    }
    if (!error) {
      try {
        checkSymlinkChains(
          stage.list().filter((e) => e.kind === "symlink"),
          FOLDER,
        );
        const zip = await buildZip(stage, area.zipPath("pkg"));
        await verifyZip(stage, zip.path);
      } catch (e) {
        error = e as Error;
      }
    }
    for (const rel of await readdir(area.runDir, { recursive: true })) {
      if ((await lstat(join(area.runDir, rel))).isSymbolicLink()) fail(`a symlink was created on disk at ${rel}`);
    }
    if (error) {
      const named = c.entries.some((e) => error?.message.includes(JSON.stringify(e.name)));
      if (!named && !/archive is corrupt/.test(error.message)) fail(`the error names no entry: ${error.message}`);
      return { outcome: "failed", message: error.message, links: [] };
    }
    // built: exactly the intended tree (every file and link, nothing else; directories are implied)
    const { readFile } = await import("node:fs/promises");
    const got = readZip(await readFile(area.zipPath("pkg")));
    const want = c.entries
      .filter((e) => e.kind !== "dir")
      .map((e) => ({ name: e.name, mode: e.kind === "symlink" ? MODE.symlink : MODE.file, content: e.data }))
      .sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
    if (JSON.stringify(got) !== JSON.stringify(want)) {
      fail(`the zip holds ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
    }
    // materialise it (as Lambda would extract it) for the independent escape check
    const root = join(checkDir, "root");
    const links: string[] = [];
    for (const e of got) {
      const p = join(root, e.name);
      await mkdir(dirname(p), { recursive: true });
      if (e.mode === MODE.symlink) {
        await symlink(e.content, p);
        links.push(p);
      } else await writeFile(p, e.content);
    }
    return { outcome: "built", links };
  } finally {
    await area.dispose();
  }
}

/**
 * Resolve links as the system would (Python's `os.path.realpath`, an implementation independent of
 * layer-sync's) and return those that land outside their `root`.
 */
export function escapingLinks(links: { path: string; root: string }[]): string[] {
  if (links.length === 0) return [];
  const script =
    "import json,os,sys\nout=[]\nfor l in json.load(sys.stdin):\n r=os.path.realpath(l['path'])\n root=os.path.realpath(l['root'])\n if r!=root and not r.startswith(root+os.sep): out.append(l['path']+' -> '+r)\nprint(json.dumps(out))";
  return JSON.parse(execFileSync("python3", ["-c", script], { input: JSON.stringify(links) }).toString()) as string[];
}

export interface FuzzReport {
  cases: number;
  built: number;
  failed: number;
}

/** Where a link aiming outside could have landed: the victim and the outside name beside every ancestor. */
function landingSpots(dir: string): string[] {
  const spots = [VICTIM];
  for (let d = dir; ; d = dirname(d)) {
    spots.push(join(d, OUTSIDE));
    if (dirname(d) === d) return spots;
  }
}

/**
 * Run `count` cases from `firstSeed` under `parent` (a fresh directory: each case's sandbox is made inside it
 * and removed after; the built trees are materialised beside it in `<parent>-checks`); throws on the first
 * guarantee that does not hold.
 */
export async function fuzz(parent: string, firstSeed: number, count: number): Promise<FuzzReport> {
  const checks = `${parent}-checks`; // beside the parent, so the snapshots stay small
  await mkdir(checks, { recursive: true });
  await mkdir(join(parent, "sandbox"), { recursive: true });
  await writeFile(join(parent, "bystander.txt"), "must not change\n");
  const before = await snapshot(parent, checks);
  const report: FuzzReport = { cases: 0, built: 0, failed: 0 };
  const links: { path: string; root: string }[] = [];
  for (let seed = firstSeed; seed < firstSeed + count; seed++) {
    const sandbox = join(parent, "sandbox", String(seed));
    const checkDir = join(checks, String(seed));
    const result = await runCase(generateCase(seed), sandbox, checkDir);
    report.cases++;
    report[result.outcome]++;
    for (const path of result.links) links.push({ path, root: join(checkDir, "root") });
    await rm(sandbox, { recursive: true });
    if ((await snapshot(parent, checks)) !== before) {
      throw new Error(`case ${seed} created or changed something in ${parent} outside its staging folder`);
    }
    for (const spot of landingSpots(sandbox)) {
      if (
        await lstat(spot).then(
          () => true,
          () => false,
        )
      )
        throw new Error(`case ${seed} wrote ${spot}`);
    }
  }
  const escaped = escapingLinks(links);
  if (escaped.length > 0)
    throw new Error(`built zips hold links that leave their folder: ${escaped.slice(0, 5).join(", ")}`);
  await rm(checks, { recursive: true, force: true });
  return report;
}
