/**
 * Read a zip for assertions, through readers layer-sync's authors did not write:
 * - yauzl (npm), strict options, every entry read fully and its CRC-32 checked (yauzl itself does not);
 * - Info-ZIP `unzip -t`, where it is installed;
 * - Python's `zipfile` (`testzip()` plus a full read), where `python3` is installed (not in `test:unit`);
 * plus a check of the record fields yauzl ignores (local headers, version needed, flags, methods) against
 * APPNOTE and layer-sync's format.
 */
import { execFile, execFileSync } from "node:child_process";
import { lstat, mkdtemp, readdir, readFile, readlink, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { promisify } from "node:util";
import { crc32 } from "node:zlib";
import { expect } from "vitest";
import yauzl from "yauzl";
import { expectedZipEntries, type FixtureCommit, type FixtureRepo } from "../fixtures/repo.ts";

const run = promisify(execFile);

export interface ZipEntry {
  name: string;
  mode: number;
  content: Buffer;
}

function which(command: string, args: string[]): string | undefined {
  try {
    return execFileSync(command, args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Info-ZIP unzip, when installed. */
export const UNZIP: string | undefined = which("sh", ["-c", "command -v unzip"]);
/**
 * The real python3 (not a version manager's shim, which costs 100 ms a call), when installed; never in
 * `npm run test:unit`, which runs no Python (its setup sets LAYER_SYNC_TEST_NO_PYTHON).
 */
export const PYTHON: string | undefined =
  process.env.LAYER_SYNC_TEST_NO_PYTHON === "1"
    ? undefined
    : which("python3", ["-c", "import sys, zipfile; print(sys.executable)"]);

/** yauzl, strict: every entry read fully, sizes validated, CRC-32 compared with the central directory. */
export async function readWithYauzl(data: Buffer): Promise<ZipEntry[]> {
  const zip = await new Promise<yauzl.ZipFile>((resolve, reject) =>
    yauzl.fromBuffer(
      data,
      { lazyEntries: true, decodeStrings: true, validateEntrySizes: true, strictFileNames: true },
      (error, z) => (error ? reject(error) : resolve(z)),
    ),
  );
  const out: ZipEntry[] = [];
  await new Promise<void>((resolve, reject) => {
    zip.on("error", reject);
    zip.on("end", () => resolve());
    zip.on("entry", (entry: yauzl.Entry) => {
      zip.openReadStream(entry, (error, stream) => {
        if (error) return reject(error);
        const chunks: Buffer[] = [];
        stream.on("data", (c: Buffer) => chunks.push(c));
        stream.on("error", reject);
        stream.on("end", () => {
          const content = Buffer.concat(chunks);
          const crc = crc32(content) >>> 0;
          if (crc !== entry.crc32 >>> 0) return reject(new Error(`yauzl: "${entry.fileName}" fails its CRC-32 check`));
          out.push({ name: entry.fileName, mode: entry.externalFileAttributes >>> 16, content });
          zip.readEntry();
        });
      });
    });
    zip.readEntry();
  });
  return out;
}

/**
 * The fields yauzl ignores, against APPNOTE 4.3/4.4 and layer-sync's records: every local header equals its
 * central header; version needed 20 for DEFLATE and 10 for stored; no flag but bit 11, set exactly for
 * non-ASCII names; no data descriptor; empty entries stored, others deflated; no directory entries.
 */
export function checkRecords(data: Buffer): void {
  const eocd = data.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (eocd < 0) throw new Error("no end-of-central-directory record");
  const count = data.readUInt16LE(eocd + 10);
  let p = data.readUInt32LE(eocd + 16);
  for (let i = 0; i < count; i++) {
    if (data.readUInt32LE(p) !== 0x02014b50) throw new Error(`entry ${i}: bad central header`);
    const nameLength = data.readUInt16LE(p + 28);
    const extraLength = data.readUInt16LE(p + 30);
    const commentLength = data.readUInt16LE(p + 32);
    const name = data.subarray(p + 46, p + 46 + nameLength);
    const text = name.toString("utf8");
    const versionNeeded = data.readUInt16LE(p + 6);
    const flags = data.readUInt16LE(p + 8);
    const method = data.readUInt16LE(p + 10);
    const compressed = data.readUInt32LE(p + 20);
    const size = data.readUInt32LE(p + 24);
    const where = `entry "${text}"`;
    if (data.readUInt16LE(p + 4) !== 0x031e) throw new Error(`${where}: version made by is not UNIX 3.0`);
    if (method !== (size === 0 ? 0 : 8)) throw new Error(`${where}: method ${method} for ${size} bytes`);
    if (method === 0 && compressed !== size) throw new Error(`${where}: stored with ${compressed} != ${size} bytes`);
    if (method === 8 && compressed === 0) throw new Error(`${where}: DEFLATE with no compressed bytes`);
    if (versionNeeded !== (method === 8 ? 20 : 10)) throw new Error(`${where}: version needed ${versionNeeded}`);
    const ascii = name.every((b) => b < 0x80);
    if (flags !== (ascii ? 0 : 0x0800)) throw new Error(`${where}: flags 0x${flags.toString(16)}`);
    if (text.endsWith("/")) throw new Error(`${where}: a directory entry`);
    if ((data.readUInt32LE(p + 38) & 0xffff) !== 0) throw new Error(`${where}: MS-DOS attributes set`);
    const local = data.readUInt32LE(p + 42);
    if (data.readUInt32LE(local) !== 0x04034b50) throw new Error(`${where}: bad local header`);
    // version needed … file name length are the same bytes in both headers; the local extra field is empty
    if (!data.subarray(local + 4, local + 30).equals(data.subarray(p + 6, p + 32))) {
      throw new Error(`${where}: local header differs from the central header`);
    }
    if (!data.subarray(local + 30, local + 30 + nameLength).equals(name)) throw new Error(`${where}: local name`);
    p += 46 + nameLength + extraLength + commentLength;
  }
}

const PYTHON_CHECK = `
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    bad = z.testzip()
    if bad is not None:
        sys.exit("zipfile: bad CRC in " + bad)
    for info in z.infolist():
        z.read(info)
    print(len(z.infolist()))
`;

/** Info-ZIP `unzip -t` and Python's zipfile on a zip file, where they are installed. */
export async function testWithStandardTools(file: string, entries: number): Promise<void> {
  if (UNZIP) {
    try {
      await run(UNZIP, ["-t", "-qq", file]);
    } catch (error) {
      const e = error as { stdout?: string; stderr?: string; code?: number };
      throw new Error(`unzip -t exited ${e.code}: ${`${e.stdout ?? ""}${e.stderr ?? ""}`.trim().slice(0, 2000)}`);
    }
  }
  if (PYTHON) {
    const { stdout } = await run(PYTHON, ["-c", PYTHON_CHECK, file]);
    if (Number(stdout.trim()) !== entries) throw new Error(`zipfile lists ${stdout.trim()} entries, not ${entries}`);
  }
}

/** Every check above on `data`: yauzl with CRC-32, the record fields, then unzip -t and zipfile. */
export async function readZip(data: Buffer): Promise<ZipEntry[]> {
  const entries = await readWithYauzl(data);
  checkRecords(data);
  if (UNZIP || PYTHON) {
    const dir = await mkdtemp(join(tmpdir(), "ls-zip-check-"));
    try {
      await writeFile(join(dir, "check.zip"), data);
      await testWithStandardTools(join(dir, "check.zip"), entries.length);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  return entries;
}

/** A captured stdout/stderr pair for CLI tests. */
export function captureIo(isTTY = false) {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: { stdout: { write: (t: string) => out.push(t) }, stderr: { write: (t: string) => err.push(t), isTTY } },
    stdout: () => out.join(""),
    stderr: () => err.join(""),
  };
}

/** Assert that a zip holds exactly the git tree of `folder` at `commit`: names, order, modes and bytes. */
export async function expectZipMatchesTree(zip: Buffer, commit: FixtureCommit, folder: string): Promise<void> {
  const entries = await readZip(zip);
  const expected = expectedZipEntries(commit, folder);
  expect(entries.map((e) => [e.name, e.mode])).toEqual(expected.map((e) => [e.name, e.mode]));
  for (const [i, e] of entries.entries()) {
    expect(e.content.equals(expected[i]?.content ?? Buffer.alloc(0)), `content of ${e.name}`).toBe(true);
  }
}

/** A file tree as `unzip` leaves it on disk (or as a test expects it): relative path → entry. */
export type DiskTreeKind = "file" | "executable" | "symlink";
export type DiskTree = Map<string, { kind: DiskTreeKind; content: Buffer }>;

/**
 * Read a directory into a `DiskTree`. An empty directory anywhere in it is an error (a zip must not hold
 * one), unless `dropEmptyDirectories`, which leaves them out as `git add` does.
 */
export async function readDiskTree(root: string, options: { dropEmptyDirectories?: boolean } = {}): Promise<DiskTree> {
  const out: DiskTree = new Map();
  const visit = async (dir: string) => {
    const names = await readdir(dir);
    if (names.length === 0 && dir !== root && !options.dropEmptyDirectories) {
      throw new Error(`empty directory "${relative(root, dir)}"`);
    }
    for (const name of names) {
      const abs = join(dir, name);
      const st = await lstat(abs);
      const rel = relative(root, abs).split("\\").join("/");
      if (st.isDirectory()) await visit(abs);
      else if (st.isSymbolicLink()) out.set(rel, { kind: "symlink", content: Buffer.from(await readlink(abs)) });
      else out.set(rel, { kind: st.mode & 0o100 ? "executable" : "file", content: await readFile(abs) });
    }
  };
  await visit(root);
  return out;
}

/** Extract a zip with Info-ZIP `unzip` into a fresh directory and read the result back. */
export async function unzipToTree(data: Buffer): Promise<DiskTree> {
  if (!UNZIP) throw new Error("Info-ZIP unzip is not installed");
  const dir = await mkdtemp(join(tmpdir(), "ls-unzip-"));
  try {
    await writeFile(join(dir, "x.zip"), data);
    await run(UNZIP, ["-qq", join(dir, "x.zip"), "-d", join(dir, "out")], { maxBuffer: 16 * 1024 * 1024 });
    return await readDiskTree(join(dir, "out"));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Assert two trees hold the same paths, kinds and bytes (a short list of differences on failure). */
export function expectSameTree(actual: DiskTree, expected: DiskTree): void {
  const differences: string[] = [];
  for (const [path, want] of expected) {
    const got = actual.get(path);
    if (!got) differences.push(`missing ${path}`);
    else if (got.kind !== want.kind) differences.push(`${path} is a ${got.kind}, expected a ${want.kind}`);
    else if (!got.content.equals(want.content)) differences.push(`${path} differs`);
  }
  for (const path of actual.keys()) if (!expected.has(path)) differences.push(`unexpected ${path}`);
  expect(differences.slice(0, 20)).toEqual([]);
}

/** Commit a tree read from disk into a fixture repository under `folder` (as `git add` would: no empty directories). */
export function commitTree(repo: FixtureRepo, branch: string, folder: string, tree: DiskTree): string {
  const changes: Record<string, { kind: DiskTreeKind; content: Buffer }> = {};
  for (const [path, e] of tree) changes[`${folder}/${path}`] = e;
  return repo.commit(branch, changes, `add ${folder}`);
}
