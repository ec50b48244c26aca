/**
 * Deterministic layer zips and their verification. The zips are written by `zip-writer.ts` (native zlib,
 * parallel compression, bounded memory) with the same records jszip 3 wrote before it.
 *
 * Format (binding, see the README): entries relative to the folder, sorted by UTF-8 byte order, no
 * directory entries, a fixed timestamp (1980-01-01T00:00:00Z), DEFLATE level 6, UTF-8 names, "made by"
 * UNIX with the mode in the external attributes: 0100644 files, 0100755 executables, 0120777 symlinks
 * (the target is the entry content). `layer.json` at the folder root is left out. The same staged
 * content therefore always gives the same bytes, whichever strategy fetched it.
 *
 * Verification reopens the zip from disk without trusting the writer: it walks the central directory, checks
 * names, order and modes against the staged entries, inflates every entry and compares its CRC-32 and
 * size.
 */
import { createReadStream } from "node:fs";
import { open, readlink, stat } from "node:fs/promises";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { crc32, createInflateRaw } from "node:zlib";
import { ArchiveError } from "./errors.ts";
import type { FolderStage, StagedEntry } from "./staging.ts";
import { writeZipFile, type ZipInput } from "./zip-writer.ts";

export const LAYER_CONFIG_FILE = "layer.json";
export const ZIP_DATE = new Date(Date.UTC(1980, 0, 1, 0, 0, 0));
export const MODE = { file: 0o100644, executable: 0o100755, symlink: 0o120777 } as const;

export interface ZipResult {
  path: string;
  sha256: string;
  bytes: number;
  files: number;
}

/** The entries that go into the zip: everything staged except the root `layer.json`. */
export function zipEntries(stage: FolderStage): StagedEntry[] {
  return stage.list().filter((e) => e.path !== LAYER_CONFIG_FILE);
}

/** Build the zip of a staged folder at `outFile`, streaming file contents from disk. */
export async function buildZip(stage: FolderStage, outFile: string): Promise<ZipResult> {
  const entries = zipEntries(stage);
  try {
    const inputs: ZipInput[] = [];
    for (const e of entries) {
      const abs = stage.absolute(e.path);
      const content = e.kind === "symlink" ? Buffer.from(await readlink(abs)) : { path: abs };
      inputs.push({ name: e.path, mode: MODE[e.kind], size: e.size, content });
    }
    const zip = await writeZipFile(inputs, outFile, ZIP_DATE, { level: 6 });
    return { path: outFile, sha256: zip.sha256, bytes: zip.bytes, files: entries.length };
  } catch (error) {
    throw new ArchiveError(`building the zip of folder "${stage.folder}" failed: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

interface CentralEntry {
  name: string;
  mode: number;
  method: number;
  crc: number;
  compressedSize: number;
  size: number;
  localOffset: number;
}

async function readCentralDirectory(path: string): Promise<CentralEntry[]> {
  const fh = await open(path, "r");
  try {
    const { size } = await fh.stat();
    const tailLength = Math.min(size, 22 + 0xffff);
    const tail = Buffer.alloc(tailLength);
    await fh.read(tail, 0, tailLength, size - tailLength);
    const eocd = tail.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
    if (eocd < 0) throw new Error("no end-of-central-directory record");
    const count = tail.readUInt16LE(eocd + 10);
    const cdSize = tail.readUInt32LE(eocd + 12);
    const cdOffset = tail.readUInt32LE(eocd + 16);
    if (cdOffset + cdSize > size) throw new Error("central directory lies outside the file");
    const cd = Buffer.alloc(cdSize);
    await fh.read(cd, 0, cdSize, cdOffset);
    const out: CentralEntry[] = [];
    let p = 0;
    for (let i = 0; i < count; i++) {
      if (cd.readUInt32LE(p) !== 0x02014b50) throw new Error(`bad central directory header at entry ${i}`);
      const nameLength = cd.readUInt16LE(p + 28);
      const extraLength = cd.readUInt16LE(p + 30);
      const commentLength = cd.readUInt16LE(p + 32);
      out.push({
        method: cd.readUInt16LE(p + 10),
        crc: cd.readUInt32LE(p + 16),
        compressedSize: cd.readUInt32LE(p + 20),
        size: cd.readUInt32LE(p + 24),
        mode: cd.readUInt32LE(p + 38) >>> 16,
        localOffset: cd.readUInt32LE(p + 42),
        name: cd.subarray(p + 46, p + 46 + nameLength).toString("utf8"),
      });
      p += 46 + nameLength + extraLength + commentLength;
    }
    return out;
  } finally {
    await fh.close();
  }
}

async function entryCrc(path: string, e: CentralEntry): Promise<{ crc: number; size: number }> {
  const fh = await open(path, "r");
  let dataStart: number;
  try {
    const local = Buffer.alloc(30);
    await fh.read(local, 0, 30, e.localOffset);
    if (local.readUInt32LE(0) !== 0x04034b50) throw new Error(`bad local header for "${e.name}"`);
    dataStart = e.localOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
  } finally {
    await fh.close();
  }
  let crc = 0;
  let size = 0;
  const sum = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      crc = crc32(chunk, crc);
      size += chunk.length;
      cb();
    },
  });
  if (e.compressedSize === 0 && e.size === 0) return { crc: 0, size: 0 };
  const raw = createReadStream(path, { start: dataStart, end: dataStart + e.compressedSize - 1 });
  if (e.method === 8) await pipeline(raw, createInflateRaw(), sum);
  else if (e.method === 0) await pipeline(raw, sum);
  else throw new Error(`unsupported compression method ${e.method} for "${e.name}"`);
  sum.end();
  return { crc: crc >>> 0, size };
}

/**
 * Reopen the zip and check it against the staged entries: names, order, modes, sizes and CRC-32 of
 * every entry after inflating it. Throws `ArchiveError` on the first mismatch.
 */
export async function verifyZip(stage: FolderStage, zipFile: string): Promise<void> {
  const expected = zipEntries(stage);
  try {
    const central = await readCentralDirectory(zipFile);
    if (central.length !== expected.length) {
      throw new Error(`it holds ${central.length} entries, expected ${expected.length}`);
    }
    for (let i = 0; i < expected.length; i++) {
      const want = expected[i] as StagedEntry;
      const got = central[i] as CentralEntry;
      if (got.name !== want.path) throw new Error(`entry ${i} is "${got.name}", expected "${want.path}"`);
      if (got.mode !== MODE[want.kind]) {
        throw new Error(
          `entry "${got.name}" has mode ${got.mode.toString(8)}, expected ${MODE[want.kind].toString(8)}`,
        );
      }
      const expectedSize =
        want.kind === "symlink" ? Buffer.byteLength(want.target ?? "") : (await stat(stage.absolute(want.path))).size;
      const { crc, size } = await entryCrc(zipFile, got);
      if (size !== expectedSize || size !== got.size) {
        throw new Error(`entry "${got.name}" inflates to ${size} bytes, expected ${expectedSize}`);
      }
      if (crc !== got.crc) throw new Error(`entry "${got.name}" fails its CRC-32 check`);
    }
  } catch (error) {
    throw new ArchiveError(`the zip of folder "${stage.folder}" failed verification: ${(error as Error).message}`, {
      cause: error,
    });
  }
}
