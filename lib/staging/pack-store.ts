/**
 * The pack of one package's files up to `PACKED_FILE_MAX`: each file is compressed for the zip as it
 * arrives (on the deflate worker or the thread pool, while the rest of the folder is still downloading)
 * and appended to the pack, so thousands of small files cost no file-system round trip each. A pack stays
 * in memory up to `PACK_MEMORY_MAX` compressed bytes and is written to its one file beyond that. When
 * compression falls behind, `pack()` waits (backpressure on the download).
 */
import { type FileHandle, open } from "node:fs/promises";
import { deflatePool } from "../zip/deflate-pool.ts";
import { prepareEntry } from "../zip/prepare.ts";
import { ZIP_LEVEL } from "../zip/writer.ts";

/**
 * Files up to this size (declared) are packed when the area packs small files: read whole and compressed
 * beside the download (a larger one streams through a deflate in the download's path, which waits for it).
 */
export const PACKED_FILE_MAX = 48 * 1024 * 1024;
/**
 * Where a packed file is compressed. Up to `WORKER_FILE_MAX`, on the deflate workers (cheap per file), unless
 * they are more than `WORKER_BACKLOG` behind and the file is over `THREAD_POOL_MIN`: then, and for
 * every larger file, on libuv's thread pool (one native call each, too costly on the main thread for tiny
 * files). A file of several MiB thus compresses beside the workers' small files instead of in front of
 * them, and a folder of many mid-sized files keeps the workers and the thread pool busy: every core
 * compresses, as the floor's all-thread-pool deflate does.
 */
const WORKER_FILE_MAX = 1024 * 1024;
const WORKER_BACKLOG = 1024 * 1024;
const THREAD_POOL_MIN = 64 * 1024;
/**
 * Compression may run this far behind the arrivals before `file()` waits: jobs (a small multiple of libuv's
 * thread pool, so the download's own decompression never queues behind a long line of them) and bytes
 * (one of the largest packed files and more: with its compressed copy, about 130 MiB of memory at most).
 */
const PENDING_JOBS = 16;
const PENDING_BYTES = 64 * 1024 * 1024;
/** The pack file is written in pieces of about this size. */
const PACK_WRITE_BYTES = 1024 * 1024;
/**
 * A pack stays in memory until it holds more than this many compressed bytes, and only then goes to its
 * file (all of it, and everything after): most packages of a many-package run are small, and theirs then
 * never cost a write and a read back. Small enough for the medium fixture's memory target.
 */
const PACK_MEMORY_MAX = 4 * 1024 * 1024;

/** Where a packed file's compressed bytes are, with what the zip and its verification need to know. */
export interface Packed {
  crc: number;
  size: number;
  offset: number;
  length: number;
}

/**
 * Small files of one area, compressed as they arrive and appended to one pack file: no file-system round
 * trip per file, and only the files still being compressed are held in memory.
 */
export class PackStore {
  private fh: FileHandle | undefined;
  private appended = 0;
  private flushed = 0;
  private piece: Buffer[] = [];
  private writing: Promise<void> = Promise.resolve();
  private window: Buffer = Buffer.alloc(0);
  private windowAt = 0;
  private refilling: Promise<void> | undefined;
  private pendingJobs = 0;
  private pendingBytes = 0;
  private readonly waiting: (() => void)[] = [];
  /** Compressed files by offset, while the pack is still in memory (`PACK_MEMORY_MAX`). */
  private readonly resident = new Map<number, Buffer>();
  private inMemory = true;
  /** Jobs under way (settled or not, each removed once it settles). */
  private readonly jobs = new Set<Promise<unknown>>();

  constructor(
    private readonly path: string,
    private readonly account: (delta: number) => void = () => undefined,
    /**
     * Told about the compressed bytes held in memory (negative: gone to the file, or dropped): they count
     * against the area's room as if on disk, since they will be once the pack outgrows memory.
     */
    private readonly hold: (delta: number) => void = () => undefined,
  ) {}

  /** Compressed bytes appended so far, in memory or on disk. */
  get bytes(): number {
    return this.appended;
  }

  /** The part of `bytes` that is in the pack file (or about to be): none while the pack is in memory. */
  get diskBytes(): number {
    return this.inMemory ? 0 : this.appended;
  }

  fits(size: number): boolean {
    return size <= PACKED_FILE_MAX;
  }

  /**
   * Start compressing `data` once the queue has room; resolves (with the job) when the job is under way.
   * Without `give`, `data` stays its caller's: it is copied (into the deflate worker's batch, or here for
   * the thread pool) before this resolves, and may be changed at once. With `give`, `data` is a buffer the
   * stage allocated itself and gives up: it may be moved to the worker (detached), never copied.
   */
  async pack(data: Buffer, options: { give?: boolean } = {}): Promise<{ job: Promise<Packed> }> {
    const length = data.length; // a given buffer may be detached once it is handed on
    while (this.pendingJobs >= PENDING_JOBS || (this.pendingJobs > 0 && this.pendingBytes + length > PENDING_BYTES)) {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    this.pendingJobs++;
    this.pendingBytes += length;
    const threadPool =
      length > WORKER_FILE_MAX || (length > THREAD_POOL_MIN && deflatePool(ZIP_LEVEL).backlogBytes > WORKER_BACKLOG);
    let give = options.give === true;
    // the thread pool reads the bytes while this goes on: a borrowed buffer is copied first (the worker's
    // batch would have copied it anyway)
    if (threadPool && !give) {
      data = Buffer.from(data);
      give = true;
    }
    const job = prepareEntry(data, ZIP_LEVEL, { threadPool, give }).then((p) => ({
      crc: p.crc,
      size: p.size,
      ...this.append(p.data),
    }));
    job.catch(() => undefined); // the zip build awaits the job and reports the failure
    this.jobs.add(job);
    void job.finally(() => this.jobs.delete(job)).catch(() => undefined);
    void job
      .finally(() => {
        this.pendingJobs--;
        this.pendingBytes -= length;
        for (const wake of this.waiting.splice(0)) wake();
      })
      .catch(() => undefined);
    return { job };
  }

  private append(data: Buffer): { offset: number; length: number } {
    const offset = this.appended;
    this.appended += data.length;
    if (this.inMemory) {
      this.resident.set(offset, data);
      this.hold(data.length);
      if (this.appended <= PACK_MEMORY_MAX) return { offset, length: data.length };
      // too big for memory: everything so far goes to the file, in offset order, and so does what follows
      this.inMemory = false;
      this.piece = [...this.resident.entries()].sort((a, b) => a[0] - b[0]).map((e) => e[1]);
      this.resident.clear();
      this.account(this.appended);
      this.hold(-this.appended);
    } else {
      this.piece.push(data);
      this.account(data.length);
    }
    if (this.appended - this.flushed >= PACK_WRITE_BYTES) void this.flush().catch(() => undefined);
    return { offset, length: data.length };
  }

  /** Write what is buffered (writes are chained, so they land in order). */
  private flush(): Promise<void> {
    const piece = this.piece;
    const at = this.flushed;
    const length = this.appended - at;
    this.piece = [];
    this.flushed = this.appended;
    this.writing = this.writing.then(async () => {
      if (length === 0) return;
      this.fh ??= await open(this.path, "w+");
      let written = 0;
      while (written < length) {
        const rest = written === 0 ? piece : [Buffer.concat(piece).subarray(written)];
        written += (await this.fh.writev(rest, at + written)).bytesWritten;
      }
    });
    return this.writing;
  }

  /**
   * The compressed bytes of a packed file. Files are mostly asked for in about the order they were packed,
   * so reads forward go through a read-ahead window (each refill a new buffer, so earlier views stay valid);
   * a file behind the window is read on its own.
   */
  async read(p: Packed): Promise<Buffer> {
    if (p.length === 0) return Buffer.alloc(0);
    const resident = this.resident.get(p.offset);
    if (resident) return resident;
    if (p.offset + p.length > this.flushed) await this.flush();
    else await this.writing;
    const fh = this.fh as FileHandle;
    for (;;) {
      const end = this.windowAt + this.window.length;
      if (p.offset >= this.windowAt && p.offset + p.length <= end) {
        return this.window.subarray(p.offset - this.windowAt, p.offset - this.windowAt + p.length);
      }
      if (this.refilling) {
        // the refill under way may well cover this file too
        await this.refilling;
        continue;
      }
      if (p.offset < end) break; // behind the window: read it on its own
      const want = Math.min(Math.max(p.length, PACK_WRITE_BYTES), this.flushed - p.offset);
      this.refilling = this.readAt(fh, p.offset, want, p.length).then(
        (buffer) => {
          this.window = buffer;
          this.windowAt = p.offset;
          this.refilling = undefined;
        },
        (error: unknown) => {
          this.refilling = undefined;
          throw error;
        },
      );
    }
    return this.readAt(fh, p.offset, p.length, p.length);
  }

  private async readAt(fh: FileHandle, offset: number, want: number, atLeast: number): Promise<Buffer> {
    const buffer = Buffer.allocUnsafe(want);
    const { bytesRead } = await fh.read(buffer, 0, want, offset);
    if (bytesRead < atLeast) throw new Error(`the pack file ended early at byte ${offset + bytesRead}`);
    return buffer.subarray(0, bytesRead);
  }

  /** Bytes handed to `pack` whose compression has not finished yet. */
  get pendingInputBytes(): number {
    return this.pendingBytes;
  }

  /**
   * Wait for the jobs under way (so that nothing is appended, and counted, after the pack is gone), then
   * for the writes, and close the file.
   */
  async close(): Promise<void> {
    await Promise.allSettled([...this.jobs]);
    if (this.inMemory && this.resident.size > 0) this.hold(-this.appended);
    this.resident.clear();
    await this.writing.catch(() => undefined);
    await this.fh?.close();
    this.fh = undefined;
  }
}
