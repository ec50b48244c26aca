/**
 * Deterministic layer zips and their verification. The zips are written by `zip-writer.ts` (native zlib,
 * parallel compression, bounded memory; records as APPNOTE and Info-ZIP write them).
 *
 * Format (binding, see docs/zip-format.md): entries relative to the folder, sorted by UTF-8 byte order, no
 * directory entries, a fixed timestamp (1980-01-01T00:00:00Z), DEFLATE level 6 (empty files stored), UTF-8 names, "made by"
 * UNIX with the mode in the external attributes: 0100644 files, 0100755 executables, 0120777 symlinks
 * (the target is the entry content). `layer.json` at the folder root is left out. The same staged
 * content therefore always gives the same bytes, whichever strategy fetched it.
 *
 * Verification reopens the zip from disk without trusting the writer: it walks the central directory, checks
 * names, order and modes against the staged entries, inflates every entry and compares its CRC-32 and
 * size with what the source sent (digests taken while the bytes streamed in, not a re-read of the staged
 * copy, so a staged file changed behind the stage's back cannot pass).
 */
import { type FileHandle, open } from "node:fs/promises";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { crc32, createInflateRaw } from "node:zlib";
import { ArchiveError, DeflateWorkerStoppedError, describeError } from "../common/errors.ts";
import type { FolderStage, StagedEntry } from "../staging/staging.ts";
import { deflatePool } from "./deflate-pool.ts";
import { checkEntryNames } from "./names.ts";
import { writeZipFile, ZIP_LEVEL, type ZipInput } from "./writer.ts";

export const LAYER_CONFIG_FILE = "layer.json";
export const ZIP_DATE = new Date(Date.UTC(1980, 0, 1, 0, 0, 0));
export const MODE = { file: 0o100644, executable: 0o100755, symlink: 0o120777 } as const;

export interface ZipResult {
  path: string;
  sha256: string;
  bytes: number;
  files: number;
  /** The entries' uncompressed sizes added up. */
  unzippedBytes: number;
}

/** The entries that go into the zip: everything staged except the root `layer.json`. */
export function zipEntries(stage: FolderStage): StagedEntry[] {
  return stage.list().filter((e) => e.path !== LAYER_CONFIG_FILE);
}

/** Build the zip of a staged folder at `outFile`, from memory or streaming file contents from disk. */
export async function buildZip(stage: FolderStage, outFile: string): Promise<ZipResult> {
  const entries = zipEntries(stage);
  try {
    const inputs: ZipInput[] = [];
    for (const e of entries) {
      const deflated = e.kind === "symlink" ? undefined : stage.deflatedFile(e.path);
      const prepared = e.kind === "symlink" || deflated ? undefined : stage.prepared(e.path);
      const content =
        e.kind === "symlink"
          ? Buffer.from(e.target ?? "")
          : deflated
            ? { deflated }
            : prepared
              ? { prepared }
              : { path: stage.absolute(e.path) };
      inputs.push({ name: e.path, mode: MODE[e.kind], size: e.size, content });
    }
    const zip = await writeZipFile(inputs, outFile, ZIP_DATE, { level: ZIP_LEVEL });
    return {
      path: outFile,
      sha256: zip.sha256,
      bytes: zip.bytes,
      files: entries.length,
      unzippedBytes: zip.unzippedBytes,
    };
  } catch (error) {
    throw new ArchiveError(`building the zip of folder "${stage.folder}" failed: ${describeError(error)}`, {
      cause: error,
    });
  }
}

interface CentralEntry {
  name: string;
  /** The name's bytes as stored. */
  rawName: Buffer;
  mode: number;
  method: number;
  crc: number;
  compressedSize: number;
  size: number;
  localOffset: number;
}

async function readCentralDirectory(fh: FileHandle, size: number): Promise<CentralEntry[]> {
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
    if (p + 46 > cd.length || cd.readUInt32LE(p) !== 0x02014b50) {
      throw new Error(`bad central directory header at entry ${i}`);
    }
    const nameLength = cd.readUInt16LE(p + 28);
    const extraLength = cd.readUInt16LE(p + 30);
    const commentLength = cd.readUInt16LE(p + 32);
    const rawName = Buffer.from(cd.subarray(p + 46, p + 46 + nameLength));
    out.push({
      method: cd.readUInt16LE(p + 10),
      crc: cd.readUInt32LE(p + 16),
      compressedSize: cd.readUInt32LE(p + 20),
      size: cd.readUInt32LE(p + 24),
      mode: cd.readUInt32LE(p + 38) >>> 16,
      localOffset: cd.readUInt32LE(p + 42),
      name: rawName.toString("utf8"),
      rawName,
    });
    p += 46 + nameLength + extraLength + commentLength;
  }
  return out;
}

/**
 * Reads byte ranges of a file through one window, so thousands of small entries cost a few reads. The window
 * is one buffer, refilled in place (grown only for an entry larger than it): a returned view is valid until
 * the next `read`, so its bytes are used (or copied into the deflate worker's batch) before that. Verifying
 * a 27 MB zip thus allocates one buffer, not seven of 4 MiB that the allocator keeps long after they die.
 */
class WindowReader {
  private buffer: Buffer;
  private window: Buffer = Buffer.alloc(0);
  private start = 0;
  constructor(
    private readonly fh: FileHandle,
    private readonly size: number,
    windowBytes = 1024 * 1024,
  ) {
    this.buffer = Buffer.allocUnsafeSlow(Math.min(windowBytes, size));
  }

  async read(position: number, length: number): Promise<Buffer> {
    if (position + length > this.size) throw new Error(`bytes ${position}-${position + length} lie outside the file`);
    const end = this.start + this.window.length;
    if (position < this.start || position + length > end) {
      if (length > this.buffer.length) this.buffer = Buffer.allocUnsafeSlow(length);
      const want = Math.min(this.buffer.length, this.size - position);
      this.window = Buffer.alloc(0); // a failed read leaves no stale window behind
      const { bytesRead } = await this.fh.read(this.buffer, 0, want, position);
      if (bytesRead < length) throw new Error(`short read at byte ${position}`);
      this.window = this.buffer.subarray(0, bytesRead);
      this.start = position;
    }
    return this.window.subarray(position - this.start, position - this.start + length);
  }
}

/** Where an entry's data starts, after checking its local header (signature and name). */
async function dataStart(reader: WindowReader, e: CentralEntry): Promise<number> {
  const local = await reader.read(e.localOffset, 30);
  if (local.readUInt32LE(0) !== 0x04034b50) throw new Error(`bad local header for "${e.name}"`);
  const nameLength = local.readUInt16LE(26);
  const extraLength = local.readUInt16LE(28); // read both before the next read moves the window
  const name = await reader.read(e.localOffset + 30, nameLength);
  if (!name.equals(e.rawName)) throw new Error(`the local header of "${e.name}" names "${name.toString("utf8")}"`);
  return e.localOffset + 30 + nameLength + extraLength;
}

/**
 * Inflates raw DEFLATE expected to give `size` bytes and answers the CRC-32 and size it gave; `data` is copied
 * (or used up) before this returns. Rejects with `DeflateWorkerStoppedError` when it lost its copy.
 */
export type InflateCrc = (data: Buffer, size: number) => Promise<{ crc: number; size: number }>;

const poolInflateCrc: InflateCrc = (data, size) => deflatePool(ZIP_LEVEL).inflateCrc(data, size);

/** Entries up to this compressed size are read whole and inflated at once; larger ones stream. */
const WHOLE_ENTRY_MAX = 4 * 1024 * 1024;

/**
 * CRC-32 and size of an entry's content after inflating it: read now, inflated on the deflate worker
 * (entries up to `WHOLE_ENTRY_MAX`; the inflated bytes never reach the main thread) or streamed here. The
 * outer promise settles once the entry's bytes are read (and copied into the worker's batch: the reader's
 * window may move on), the inner one with the result. If the worker stops while it holds the entry's
 * bytes, they are read again from the file and inflated here.
 */
async function entryCrc(
  fh: FileHandle,
  reader: WindowReader,
  e: CentralEntry,
  inflateCrc: InflateCrc,
  readAgain: (start: number, e: CentralEntry) => Promise<{ crc: number; size: number }>,
): Promise<{ result: Promise<{ crc: number; size: number }> }> {
  const start = await dataStart(reader, e);
  if (e.method !== 8 && e.method !== 0) throw new Error(`unsupported compression method ${e.method} for "${e.name}"`);
  if (e.compressedSize === 0 && e.size === 0) return { result: Promise.resolve({ crc: 0, size: 0 }) };
  if (e.compressedSize <= WHOLE_ENTRY_MAX) {
    const raw = await reader.read(start, e.compressedSize);
    if (e.method === 0) return { result: Promise.resolve({ crc: crc32(raw) >>> 0, size: raw.length }) };
    // a larger output than announced fails (the worker inflates into one chunk of the announced size)
    const inflated = inflateCrc(raw, e.size);
    return {
      result: inflated.catch((error: unknown) => {
        if (error instanceof DeflateWorkerStoppedError) return readAgain(start, e);
        throw error;
      }),
    };
  }
  return { result: Promise.resolve(await streamedCrc(fh, start, e)) };
}

async function streamedCrc(fh: FileHandle, start: number, e: CentralEntry): Promise<{ crc: number; size: number }> {
  let crc = 0;
  let size = 0;
  const sum = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      crc = crc32(chunk, crc);
      size += chunk.length;
      cb();
    },
  });
  const raw = rangeOf(fh, start, e.compressedSize);
  if (e.method === 8) await pipeline(raw, createInflateRaw(), sum);
  else await pipeline(raw, sum);
  return { crc: crc >>> 0, size };
}

/** `length` bytes of `fh` from `start`, in pieces of 1 MiB (no stream on the handle, which would stay listening to it). */
async function* rangeOf(fh: FileHandle, start: number, length: number): AsyncGenerator<Buffer> {
  const end = start + length;
  for (let at = start; at < end; ) {
    const want = Math.min(1024 * 1024, end - at);
    const { bytesRead, buffer } = await fh.read(Buffer.allocUnsafe(want), 0, want, at);
    if (bytesRead === 0) throw new Error(`short read at byte ${at}`);
    at += bytesRead;
    yield buffer.subarray(0, bytesRead);
  }
}

/**
 * Compressed bytes verification may have on their way to the worker (copies in its batches) before it waits
 * for the oldest entry: enough to keep the worker busy, little enough to stay off the process's peak memory.
 */
const VERIFY_AHEAD_BYTES = 4 * 1024 * 1024;

/** Await the oldest entry still being checked; returns its compressed bytes (no longer held). */
async function settleFirst(ahead: { bytes: number; done: Promise<void> }[]): Promise<number> {
  const first = ahead.shift();
  if (!first) return 0;
  await first.done;
  return first.bytes;
}

/** What a zip entry must be: name, kind, link target, and the digest of the bytes it must hold. */
export interface ExpectedEntry {
  path: string;
  kind: StagedEntry["kind"];
  target?: string | undefined;
  /** CRC-32 and size of the bytes the entry must hold (taken when they arrived), undefined when unknown. */
  digest: () => Promise<{ crc: number; size: number } | undefined>;
}

/**
 * Reopen the zip and check it against the staged entries: names, order, modes, local headers, sizes and
 * CRC-32 of every entry after inflating it, against the size and CRC-32 of what the source sent. Throws
 * `ArchiveError` on the first mismatch.
 */
export async function verifyZip(stage: FolderStage, zipFile: string): Promise<void> {
  const expected: ExpectedEntry[] = zipEntries(stage).map((e) => ({
    path: e.path,
    kind: e.kind,
    target: e.target,
    digest: () => stage.checksum(e.path),
  }));
  await verifyZipEntries(expected, zipFile, `folder "${stage.folder}"`);
}

/**
 * `verifyZip` for any list of expected entries (a built layer's tree); `what` names it in the error.
 * `inflateCrc` is the process's deflate pool unless given.
 */
export async function verifyZipEntries(
  expected: readonly ExpectedEntry[],
  zipFile: string,
  what: string,
  inflateCrc: InflateCrc = poolInflateCrc,
): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(zipFile, "r");
    const { size: fileSize } = await fh.stat();
    const central = await readCentralDirectory(fh, fileSize);
    // whatever wrote it, a zip that unzip cannot extract is never uploaded
    checkEntryNames(central.map((e) => e.name));
    if (central.length !== expected.length) {
      throw new Error(`it holds ${central.length} entries, expected ${expected.length}`);
    }
    const reader = new WindowReader(fh, fileSize);
    // entries the worker lost are streamed from the file again, one at a time
    let rereads: Promise<unknown> = Promise.resolve();
    const file = fh;
    const readAgain = (start: number, e: CentralEntry) => {
      const next = rereads.catch(() => undefined).then(() => streamedCrc(file, start, e));
      rereads = next;
      return next;
    };
    /** Entries read and being inflated, in zip order, with their compressed bytes held meanwhile. */
    const ahead: { bytes: number; done: Promise<void> }[] = [];
    let aheadBytes = 0;
    for (let i = 0; i < expected.length; i++) {
      const want = expected[i] as ExpectedEntry;
      const got = central[i] as CentralEntry;
      if (got.name !== want.path) throw new Error(`entry ${i} is "${got.name}", expected "${want.path}"`);
      if (got.mode !== MODE[want.kind]) {
        throw new Error(
          `entry "${got.name}" has mode ${got.mode.toString(8)}, expected ${MODE[want.kind].toString(8)}`,
        );
      }
      // what the source sent: digests taken as the bytes streamed in, never a re-read of the staged copy
      const sent =
        want.kind === "symlink"
          ? { crc: crc32(Buffer.from(want.target ?? "")) >>> 0, size: Buffer.byteLength(want.target ?? "") }
          : await want.digest();
      if (!sent) throw new Error(`entry "${want.path}" has no digest of what the source sent`);
      const unreadable = (error: unknown) =>
        new Error(`entry "${got.name}" cannot be read back: ${describeError(error)}`, { cause: error });
      let read: Awaited<ReturnType<typeof entryCrc>>;
      try {
        read = await entryCrc(fh, reader, got, inflateCrc, readAgain);
      } catch (error) {
        throw unreadable(error);
      }
      const done = read.result.then(
        (result) => {
          if (result.size !== sent.size || result.size !== got.size) {
            throw new Error(`entry "${got.name}" inflates to ${result.size} bytes, expected ${sent.size}`);
          }
          if (result.crc !== got.crc) throw new Error(`entry "${got.name}" fails its CRC-32 check`);
          if (sent.crc !== result.crc) throw new Error(`entry "${got.name}" does not hold the bytes the source sent`);
        },
        (error: unknown) => {
          throw unreadable(error);
        },
      );
      done.catch(() => undefined); // awaited below, in order
      ahead.push({ bytes: got.compressedSize, done });
      aheadBytes += got.compressedSize;
      while (aheadBytes > VERIFY_AHEAD_BYTES) aheadBytes -= await settleFirst(ahead);
    }
    while (ahead.length) await settleFirst(ahead);
  } catch (error) {
    throw new ArchiveError(`the zip of ${what} failed verification: ${describeError(error)}`, {
      cause: error,
    });
  } finally {
    await fh?.close();
  }
}
