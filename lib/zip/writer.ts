/**
 * A small deterministic zip writer over `node:zlib` (raw DEFLATE), replacing jszip for layer zips.
 *
 * The records follow PKWARE's APPNOTE 6.3.10 (section 4.3/4.4), field by field, as Info-ZIP's `zip` writes
 * them on UNIX:
 * - version made by 0x031E (UNIX, spec 3.0); version needed 20 for a DEFLATE entry, 10 for a stored one;
 * - general purpose flags: only bit 11 (UTF-8 name) and only for a name that is not pure ASCII; never
 *   bit 3, so there is no data descriptor: CRC-32 and sizes are in the local header (a streamed entry's
 *   header is patched once they are known); bits 1-2 stay 0 (normal DEFLATE);
 * - method 8 (DEFLATE) for an entry with content, method 0 (stored, sizes 0) for an empty one: zero bytes
 *   are not a valid DEFLATE stream and strict readers (Info-ZIP unzip, Java, Go) reject them;
 * - the given date in DOS format (UTC); no extra fields (the UTF-8 flag already says how the name is
 *   encoded); no comments; internal attributes 0;
 * - external attributes: the UNIX mode in the high 16 bits; the low (MS-DOS) byte 0, as no directories are
 *   written and every file is writable by its owner.
 * The compressed bytes depend only on the input and Node's bundled zlib.
 *
 * Speed and memory: small entries are read and compressed ahead of the writer on a worker thread
 * (`deflate-pool.ts`; bounded by count and by buffered bytes), so compression runs in parallel while the
 * output stays in order; entries above `streamAbove` are streamed through one deflate stream (libuv's
 * thread pool), and their local header is patched once the sizes are known, so no large entry is ever
 * held in memory.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { type FileHandle, open, readFile } from "node:fs/promises";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { crc32, createDeflateRaw } from "node:zlib";
import { deflatePool } from "./deflate-pool.ts";
import { checkEntryNames } from "./names.ts";

/** The DEFLATE level of layer zips. */
export const ZIP_LEVEL = 6;

export interface ZipInput {
  /** Entry name, `/`-separated. */
  name: string;
  /** Full UNIX mode, e.g. 0o100644. */
  mode: number;
  /** Expected size in bytes (used for scheduling; the real size is measured). */
  size: number;
  /** The content: bytes, a file to read, or a loader of an entry compressed beforehand (`prepareEntry`, prepare.ts). */
  content: Buffer | { path: string } | { prepared: () => Promise<PreparedEntry> } | { deflated: DeflatedFile };
}

/** A file holding an entry's content already compressed as raw DEFLATE at the zip's level, streamed as is. */
export interface DeflatedFile {
  path: string;
  /** CRC-32 and size of the uncompressed content. */
  crc: number;
  size: number;
  /** The file's size (the compressed bytes). */
  compressedSize: number;
}

/** An entry's content already compressed for the zip (see `prepareEntry`). */
export interface PreparedEntry {
  /** CRC-32 of the uncompressed bytes. */
  crc: number;
  /** Uncompressed size. */
  size: number;
  /** Raw DEFLATE bytes (empty for empty content, which is stored). */
  data: Buffer;
}

export interface ZipWriteOptions {
  /** DEFLATE level (default `ZIP_LEVEL`, 6). Entries given as `prepared` must have been compressed at it. */
  level?: number;
  /** Entries compressed ahead of the writer at most (default 64). */
  ahead?: number;
  /** Input bytes held by entries compressed ahead at most (default 32 MiB). */
  aheadBytes?: number;
  /** Entries larger than this are streamed (default 4 MiB; only for outputs that can patch). */
  streamAbove?: number;
  /** Replace the compressor (tests use this to compare with a reference compressor). */
  deflate?: (data: Buffer, level: number) => Promise<Buffer>;
}

export interface ZipWriteResult {
  bytes: number;
  sha256: string;
  entries: number;
  /** The entries' uncompressed sizes added up (what counts against Lambda's 250 MB). */
  unzippedBytes: number;
}

/** Where the writer puts bytes: appended in order, plus an optional way to rewrite earlier bytes. */
export interface ZipOutput {
  append(chunks: Buffer[]): Promise<void>;
  /** Overwrite bytes at `position` (already appended). Outputs without it get no streamed entries. */
  patch?: (position: number, data: Buffer) => Promise<void>;
}

const LOCAL_HEADER = 0x04034b50;
const CENTRAL_HEADER = 0x02014b50;
const END_OF_CENTRAL_DIRECTORY = 0x06054b50;
/** 1.0: stored; 2.0: DEFLATE (APPNOTE 4.4.3.2). */
const VERSION_NEEDED_STORED = 10;
const VERSION_NEEDED_DEFLATE = 20;
const VERSION_MADE_BY = 0x031e;
const METHOD_STORED = 0;
const METHOD_DEFLATE = 8;
const FLAG_UTF8 = 0x0800;
const MAX_ENTRIES = 0xffff;
const MAX_OFFSET = 0xffffffff;

/** DOS time and date of a UTC instant (2-second resolution, years from 1980). */
export function dosDateTime(date: Date): { time: number; date: number } {
  const time = (date.getUTCHours() << 11) | (date.getUTCMinutes() << 5) | Math.floor(date.getUTCSeconds() / 2);
  const day = ((date.getUTCFullYear() - 1980) << 9) | ((date.getUTCMonth() + 1) << 5) | date.getUTCDate();
  return { time, date: day };
}

interface EntryHead {
  name: Buffer;
  extra: Buffer;
  flags: number;
}

function entryHead(name: string): EntryHead {
  const bytes = Buffer.from(name, "utf8");
  // a name whose UTF-8 form is longer than the string (anything non-ASCII) gets the UTF-8 flag (APPNOTE 4.4.4)
  return { name: bytes, extra: Buffer.alloc(0), flags: bytes.length === name.length ? 0 : FLAG_UTF8 };
}

/**
 * The 26 bytes shared by the local and the central header (version needed … extra field length). An entry
 * with no compressed bytes is stored (its content is empty); any other is DEFLATE.
 */
function commonFields(
  head: EntryHead,
  when: { time: number; date: number },
  crc: number,
  compressed: number,
  size: number,
): Buffer {
  const stored = compressed === 0;
  const b = Buffer.alloc(26);
  b.writeUInt16LE(stored ? VERSION_NEEDED_STORED : VERSION_NEEDED_DEFLATE, 0);
  b.writeUInt16LE(head.flags, 2);
  b.writeUInt16LE(stored ? METHOD_STORED : METHOD_DEFLATE, 4);
  b.writeUInt16LE(when.time, 6);
  b.writeUInt16LE(when.date, 8);
  b.writeUInt32LE(crc >>> 0, 10);
  b.writeUInt32LE(compressed, 14);
  b.writeUInt32LE(size, 18);
  b.writeUInt16LE(head.name.length, 22);
  b.writeUInt16LE(head.extra.length, 24);
  return b;
}

function localHeader(common: Buffer, head: EntryHead): Buffer {
  const b = Buffer.alloc(4 + common.length + head.name.length + head.extra.length);
  b.writeUInt32LE(LOCAL_HEADER, 0);
  common.copy(b, 4);
  head.name.copy(b, 30);
  head.extra.copy(b, 30 + head.name.length);
  return b;
}

function centralHeader(common: Buffer, head: EntryHead, mode: number, offset: number): Buffer {
  const b = Buffer.alloc(46 + head.name.length + head.extra.length);
  b.writeUInt32LE(CENTRAL_HEADER, 0);
  b.writeUInt16LE(VERSION_MADE_BY, 4);
  common.copy(b, 6);
  b.writeUInt16LE(0, 32); // comment length
  b.writeUInt16LE(0, 34); // disk number start
  b.writeUInt16LE(0, 36); // internal attributes
  b.writeUInt32LE(((mode & 0xffff) << 16) >>> 0, 38);
  b.writeUInt32LE(offset, 42);
  head.name.copy(b, 46);
  head.extra.copy(b, 46 + head.name.length);
  return b;
}

function endOfCentralDirectory(count: number, size: number, offset: number): Buffer {
  const b = Buffer.alloc(22);
  b.writeUInt32LE(END_OF_CENTRAL_DIRECTORY, 0);
  b.writeUInt16LE(0, 4);
  b.writeUInt16LE(0, 6);
  b.writeUInt16LE(count, 8);
  b.writeUInt16LE(count, 10);
  b.writeUInt32LE(size, 12);
  b.writeUInt32LE(offset, 16);
  b.writeUInt16LE(0, 20);
  return b;
}

function streamOf(input: ZipInput): Readable {
  const { content } = input;
  if (Buffer.isBuffer(content)) return Readable.from([content]);
  if ("path" in content) return createReadStream(content.path, { highWaterMark: 1024 * 1024 });
  throw new Error(`entry "${input.name}" has no readable content`);
}

async function contentOf(input: ZipInput): Promise<Buffer> {
  const { content } = input;
  if (Buffer.isBuffer(content)) return content;
  if ("path" in content) return readFile(content.path);
  throw new Error(`entry "${input.name}" has no readable content`);
}

/**
 * Write `inputs`, in the given order, as one zip to `output`. Returns the zip's size and entry count; the
 * SHA-256 is left to the caller's output (see `writeZipFile` and `zipToBuffer`).
 */
export async function writeZip(
  inputs: readonly ZipInput[],
  output: ZipOutput,
  date: Date,
  options: ZipWriteOptions = {},
): Promise<{ bytes: number; entries: number; patched: boolean; unzippedBytes: number }> {
  if (inputs.length > MAX_ENTRIES) {
    throw new Error(`${inputs.length} entries do not fit a zip without ZIP64 (at most ${MAX_ENTRIES})`);
  }
  checkEntryNames(inputs.map((i) => i.name));
  const level = options.level ?? ZIP_LEVEL;
  const ahead = Math.max(1, options.ahead ?? 64);
  const aheadBytes = options.aheadBytes ?? 32 * 1024 * 1024;
  const streamAbove = output.patch ? (options.streamAbove ?? 4 * 1024 * 1024) : Number.POSITIVE_INFINITY;
  const compress = options.deflate ?? ((data: Buffer, l: number) => deflatePool(l).deflate(data));
  const when = dosDateTime(date);

  const prepared = (input: ZipInput) => !Buffer.isBuffer(input.content) && "prepared" in input.content;
  const deflatedOf = (input: ZipInput) =>
    !Buffer.isBuffer(input.content) && "deflated" in input.content ? input.content.deflated : undefined;
  const streamed = (i: number) => {
    const input = inputs[i] as ZipInput;
    return !prepared(input) && (deflatedOf(input) !== undefined || input.size > streamAbove);
  };
  const jobs = new Map<number, Promise<PreparedEntry>>();
  let started = 0; // inputs[0..started) have a job or are streamed
  let buffered = 0; // input bytes of jobs started and not yet written
  const startMore = (writing: number) => {
    while (started < inputs.length && started - writing < ahead) {
      const i = started;
      const input = inputs[i] as ZipInput;
      if (!Buffer.isBuffer(input.content) && "prepared" in input.content) {
        const job = input.content.prepared();
        job.catch(() => undefined); // awaited in order below
        jobs.set(i, job);
      } else if (!streamed(i)) {
        if (jobs.size > 0 && buffered + input.size > aheadBytes) break;
        buffered += input.size;
        const job = contentOf(input).then(async (data) => ({
          crc: crc32(data) >>> 0,
          size: data.length,
          data: data.length === 0 ? data : await compress(data, level),
        }));
        job.catch(() => undefined); // awaited in order below; a later failure must not go unhandled meanwhile
        jobs.set(i, job);
      }
      started++;
    }
  };

  let offset = 0;
  let patched = false;
  let unzippedBytes = 0;
  const central: Buffer[] = [];
  for (let i = 0; i < inputs.length; i++) {
    startMore(i);
    const input = inputs[i] as ZipInput;
    const head = entryHead(input.name);
    const at = offset;
    let common: Buffer;
    const job = jobs.get(i);
    const deflated = deflatedOf(input);
    if (deflated) {
      // compressed while it arrived: sizes known, the bytes copied as they are (empty content is stored)
      const length = deflated.size === 0 ? 0 : deflated.compressedSize;
      common = commonFields(head, when, deflated.crc, length, deflated.size);
      unzippedBytes += deflated.size;
      const local = localHeader(common, head);
      await output.append([local]);
      offset += local.length;
      if (length > 0) {
        const pieces = createReadStream(deflated.path, { highWaterMark: 1024 * 1024 });
        let copied = 0;
        for await (const chunk of pieces) {
          copied += (chunk as Buffer).length;
          await output.append([chunk as Buffer]);
        }
        if (copied !== length) throw new Error(`entry "${input.name}": its compressed file changed size`);
      }
      offset += length;
    } else if (job) {
      const c = await job;
      jobs.delete(i);
      if (!prepared(input)) buffered -= input.size;
      common = commonFields(head, when, c.crc, c.data.length, c.size);
      unzippedBytes += c.size;
      const local = localHeader(common, head);
      await output.append([local, c.data]);
      offset += local.length + c.data.length;
    } else {
      // a large entry: placeholder header, streamed data, then the real header in its place
      const placeholder = localHeader(commonFields(head, when, 0, 0, 0), head);
      await output.append([placeholder]);
      offset += placeholder.length;
      let crc = 0;
      let size = 0;
      let compressed = 0;
      const source = streamOf(input);
      await pipeline(
        source,
        async function* (chunks: AsyncIterable<Buffer>) {
          for await (const chunk of chunks) {
            crc = crc32(chunk, crc);
            size += chunk.length;
            yield chunk;
          }
        },
        createDeflateRaw({ level }),
        async (chunks: AsyncIterable<Buffer>) => {
          let pending: Buffer[] = [];
          let pendingBytes = 0;
          for await (const chunk of chunks) {
            pending.push(chunk);
            pendingBytes += chunk.length;
            if (pendingBytes >= 1024 * 1024) {
              await output.append(pending);
              compressed += pendingBytes;
              pending = [];
              pendingBytes = 0;
            }
          }
          if (pending.length) await output.append(pending);
          compressed += pendingBytes;
        },
      );
      offset += compressed;
      unzippedBytes += size;
      common = commonFields(head, when, crc >>> 0, compressed, size);
      await (output.patch as (position: number, data: Buffer) => Promise<void>)(at, localHeader(common, head));
      patched = true;
    }
    if (offset > MAX_OFFSET) throw new Error("the zip would exceed 4 GiB, which needs ZIP64");
    central.push(centralHeader(common, head, input.mode, at));
  }
  const centralSize = central.reduce((n, b) => n + b.length, 0);
  if (offset + centralSize > MAX_OFFSET) throw new Error("the zip would exceed 4 GiB, which needs ZIP64");
  await output.append([...central, endOfCentralDirectory(inputs.length, centralSize, offset)]);
  return { bytes: offset + centralSize + 22, entries: inputs.length, patched, unzippedBytes };
}

/** Output is gathered into writes of about this size. */
const WRITE_BATCH = 1024 * 1024;

/** Write the zip to `outFile` (created or truncated) and return its size and SHA-256. */
export async function writeZipFile(
  inputs: readonly ZipInput[],
  outFile: string,
  date: Date,
  options: ZipWriteOptions = {},
): Promise<ZipWriteResult> {
  checkEntryNames(inputs.map((i) => i.name)); // before the file exists
  const fh: FileHandle = await open(outFile, "w");
  const hash = createHash("sha256");
  let position = 0; // where the batch starts
  let batch: Buffer[] = [];
  let batchBytes = 0;
  const flush = async () => {
    let written = 0;
    while (written < batchBytes) {
      const rest = written === 0 ? batch : [Buffer.concat(batch).subarray(written)];
      const { bytesWritten } = await fh.writev(rest, position + written);
      written += bytesWritten;
    }
    position += batchBytes;
    batch = [];
    batchBytes = 0;
  };
  let result: { bytes: number; entries: number; patched: boolean; unzippedBytes: number };
  try {
    result = await writeZip(
      inputs,
      {
        async append(chunks) {
          for (const c of chunks) {
            hash.update(c);
            batch.push(c);
            batchBytes += c.length;
          }
          if (batchBytes >= WRITE_BATCH) await flush();
        },
        async patch(at, data) {
          await flush();
          await fh.write(data, 0, data.length, at);
        },
      },
      date,
      options,
    );
    await flush();
  } finally {
    await fh.close();
  }
  const { bytes, entries, unzippedBytes } = result;
  if (!result.patched) return { bytes, entries, unzippedBytes, sha256: hash.digest("hex") };
  // headers were rewritten after their bytes went through the hash: hash the finished file instead
  const again = createHash("sha256");
  for await (const chunk of createReadStream(outFile, { highWaterMark: 1024 * 1024 })) again.update(chunk as Buffer);
  return { bytes, entries, unzippedBytes, sha256: again.digest("hex") };
}

/** Build the zip in memory (no entry is streamed). */
export async function zipToBuffer(
  inputs: readonly ZipInput[],
  date: Date,
  options: ZipWriteOptions = {},
): Promise<Buffer> {
  const parts: Buffer[] = [];
  await writeZip(
    inputs,
    {
      async append(chunks) {
        parts.push(...chunks);
      },
    },
    date,
    options,
  );
  return Buffer.concat(parts);
}
