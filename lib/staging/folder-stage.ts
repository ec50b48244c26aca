/**
 * One package's entries in the staging area (see `staging.ts`): names checked, duplicates refused, limits
 * enforced while streaming, files written create-only and never through a link, symlinks kept in memory.
 * A Buffer given to `file()` stays the source's; only buffers the stage joined itself go to the worker (`collect`).
 */
import { constants } from "node:fs";
import { type FileHandle, lstat, mkdir, open, readFile, rm, unlink } from "node:fs/promises";
import { dirname, join } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { crc32, createDeflateRaw, inflateRawSync } from "node:zlib";
import { LimitExceededError, PathSafetyError } from "../common/errors.ts";
import { checkRelativePath, checkSymlinkTarget, quoteName } from "../common/paths.ts";
import type { EntrySink } from "../sources/types.ts";
import { type DeflatedFile, type PreparedEntry, ZIP_LEVEL } from "../zip/writer.ts";
import { folderTooBig, type StageLimits } from "./limits.ts";
import type { Packed, PackStore } from "./pack-store.ts";

export type { StageLimits } from "./limits.ts";

export interface StagedEntry {
  /** Path relative to the folder. */
  path: string;
  kind: "file" | "executable" | "symlink";
  /** Bytes on disk (files) or target length (symlinks). */
  size: number;
  /** Symlink target (symlinks live only here, never on disk). */
  target?: string;
  /** CRC-32 of the bytes the source sent, taken as they streamed in (unset for packed files). */
  crc?: number;
}

/** What a stage tells its area and asks of it. */
export interface AreaHooks {
  /** Bytes this stage put on disk (negative: removed). */
  account(delta: number): void;
  /** Resolves once the area has room for `bytes` more (see `StagingArea.limitWhileFinishing`). */
  room(bytes?: number): Promise<void>;
  /** Whether the area has room for `bytes` more now (a cheap check before `room`). */
  hasRoom(bytes?: number): boolean;
  /** Bytes admitted but not yet on disk (packed files being compressed): counted against the room. */
  hold(delta: number): void;
}

const NO_AREA: AreaHooks = {
  account: () => undefined,
  room: () => Promise.resolve(),
  hasRoom: () => true,
  hold: () => undefined,
};

function ignoreUntilPiped(): void {}

const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW;

/** Create-only, never through a link: a path that exists (as anything, a link included) fails with EEXIST. */
const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/**
 * One package's entries. Structural safety: symlinks are never materialised on disk (the zip needs only
 * their target text, kept here), directories are only ever created by the stage, and every file is created
 * with O_EXCL|O_NOFOLLOW and chmodded through its descriptor, so nothing is ever written through a link or
 * over another entry. A path that arrives twice, as any mix of file, directory and symlink, is refused by
 * name; a delivery that fails (a retried download) is forgotten so that it can arrive again.
 */
export class FolderStage implements EntrySink {
  readonly folder: string;
  readonly dir: string;
  private readonly limits: StageLimits;
  private readonly entries = new Map<string, StagedEntry>();
  /** Paths being delivered right now (they count as taken). */
  private readonly arriving = new Set<string>();
  /** Every directory implied by an entry's path. */
  private readonly dirs = new Set<string>();
  /** Directories already created on disk. */
  private readonly made = new Set<string>();
  /** The packed files. */
  private readonly packed = new Map<string, Promise<Packed>>();
  /** Files compressed for the zip while they streamed in (areas that pack small files). */
  private readonly deflated = new Map<string, DeflatedFile>();
  private pack: PackStore | undefined;
  private totalBytes = 0;
  /** Bytes of this stage's files on disk (unpacked files; the pack file counts in `pack`). */
  private fileBytes = 0;
  /** Bytes of zips built from this stage (see `countZip`). */
  private zipBytes = 0;
  /** The most this stage has held on disk at once (since it was last reset). */
  private peakDisk = 0;
  private readonly area: AreaHooks;
  private readonly newPack: (() => PackStore) | undefined;

  /**
   * `pack` makes the stage's pack, given how to count its bytes on disk and those it holds in memory
   * (areas that pack small files).
   */
  constructor(
    folder: string,
    dir: string,
    limits: StageLimits,
    pack?: (account: (delta: number) => void, hold: (delta: number) => void) => PackStore,
    area: AreaHooks = NO_AREA,
  ) {
    this.folder = folder;
    this.dir = dir;
    this.limits = limits;
    this.area = area;
    this.newPack =
      pack &&
      (() =>
        pack(
          (delta) => this.account(delta),
          (delta) => this.area.hold(delta),
        ));
    this.pack = this.newPack?.();
  }

  /** Tell the area about bytes already added to (or removed from) this stage's counters. */
  private account(delta: number): void {
    this.area.account(delta);
    this.peakDisk = Math.max(this.peakDisk, this.diskBytes);
  }

  /** What this stage holds on disk now: its files, its pack file and the zips counted with `countZip`. */
  get diskBytes(): number {
    return this.fileBytes + (this.pack?.diskBytes ?? 0) + this.zipBytes;
  }

  /** The most this stage held on disk at once: its staged bytes plus its zip, for a finished package. */
  get peakDiskBytes(): number {
    return Math.max(this.peakDisk, this.diskBytes);
  }

  /**
   * What the package counts for in the `/tmp` bound: its staged bytes (what the source sent, or what it
   * holds on disk at its most, if more) plus its zip (estimated until counted).
   */
  get footprint(): number {
    const zip = this.zipBytes > 0 ? this.zipBytes : this.zipEstimate;
    return Math.max(this.totalBytes + zip, this.peakDiskBytes);
  }

  /** Whether its zip has been counted yet. */
  get zipped(): boolean {
    return this.zipBytes > 0;
  }

  /**
   * About how big its zip will be: the staged bytes are already compressed for the zip, so the entries'
   * headers (local and central, about 128 bytes plus the name twice) are what it adds.
   */
  get zipEstimate(): number {
    let headers = 22;
    for (const e of this.entries.values()) headers += 128 + 2 * Buffer.byteLength(e.path) + (e.target ? e.size : 0);
    // files still being compressed count at their full size: compressed, they are at most a little more
    return this.fileBytes + (this.pack ? this.pack.bytes + this.pack.pendingInputBytes : 0) + headers;
  }

  /** Count a zip built from this stage (it is removed with the stage). */
  countZip(bytes: number): void {
    this.zipBytes += bytes;
    this.account(bytes);
  }

  /** Close the stage's own pack file (the area removes the files). */
  async close(): Promise<void> {
    await this.pack?.close();
  }

  get bytes(): number {
    return this.totalBytes;
  }

  /** Entries sorted by UTF-8 byte order of their path: the zip's order. */
  list(): StagedEntry[] {
    return [...this.entries.values()].sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
  }

  has(path: string): boolean {
    return this.entries.has(path);
  }

  absolute(path: string): string {
    return join(this.dir, ...path.split("/"));
  }

  /**
   * CRC-32 and size of what the source sent for a file, taken while the bytes streamed in (or from the packed
   * copy in memory); undefined for a path that is not a staged file.
   */
  async checksum(path: string): Promise<{ crc: number; size: number } | undefined> {
    const packed = this.packed.get(path);
    if (packed) {
      const { crc, size } = await packed;
      return { crc, size };
    }
    const e = this.entries.get(path);
    return e && e.kind !== "symlink" && e.crc !== undefined ? { crc: e.crc, size: e.size } : undefined;
  }

  /**
   * A packed file, compressed for the zip (see `prepareEntry`), loaded when called; undefined when the file
   * is on disk.
   */
  prepared(path: string): (() => Promise<PreparedEntry>) | undefined {
    const deflated = this.deflated.get(path);
    if (deflated) {
      return async () => ({
        crc: deflated.crc,
        size: deflated.size,
        data: deflated.size === 0 ? Buffer.alloc(0) : await readFile(deflated.path, { flag: READ_FLAGS }),
      });
    }
    const packed = this.packed.get(path);
    const pack = this.pack;
    if (!packed || !pack) return undefined;
    return async () => {
      const p = await packed;
      return { crc: p.crc, size: p.size, data: await pack.read(p) };
    };
  }

  /** A large file compressed as it streamed in, which the zip copies as it is; undefined for any other. */
  deflatedFile(path: string): DeflatedFile | undefined {
    return this.deflated.get(path);
  }

  /** A staged file's content, unpacked or from disk. */
  async read(path: string): Promise<Buffer> {
    const load = this.prepared(path);
    if (!load) return readFile(this.absolute(path), { flag: READ_FLAGS });
    const { data, size } = await load();
    return size === 0 ? Buffer.alloc(0) : inflateRawSync(data);
  }

  /**
   * Forget everything delivered so far (an archive is being downloaded again from its start), also after
   * the stage was emptied (`empty`): the package's directory, pack file and zip go, and it starts again.
   */
  async reset(): Promise<void> {
    await this.empty();
    if (this.newPack) this.pack = this.newPack(); // a pack of its own starts again empty
    await mkdir(this.dir, { recursive: true });
  }

  /** Remove everything the stage holds on disk (its package directory) and forget its entries. */
  async empty(): Promise<void> {
    await this.pack?.close();
    await rm(dirname(this.dir), { recursive: true, force: true });
    this.area.account(-this.diskBytes);
    this.pack = undefined;
    this.fileBytes = 0;
    this.zipBytes = 0;
    this.peakDisk = 0;
    this.entries.clear();
    this.arriving.clear();
    this.dirs.clear();
    this.made.clear();
    this.packed.clear();
    this.deflated.clear();
    this.totalBytes = 0;
  }

  async file(path: string, body: Readable | Buffer, options: { executable: boolean; size?: number }): Promise<void> {
    // Until the pipeline below is attached (after an await), an error on the body (a reset connection) would
    // have no listener and crash the process; keep it on the stream, where the pipeline finds it.
    if (!Buffer.isBuffer(body)) body.on("error", ignoreUntilPiped);
    const declared = Buffer.isBuffer(body) ? body.length : options.size;
    const packs = this.pack !== undefined && declared !== undefined && this.pack.fits(declared);
    const kind = options.executable ? "executable" : "file";
    try {
      this.admit(path);
      if (options.size !== undefined) this.reserve(path, options.size);
    } catch (error) {
      if (!Buffer.isBuffer(body)) body.destroy();
      throw error;
    }
    this.arriving.add(path);
    let held = 0;
    let fh: FileHandle | undefined;
    let counted = 0;
    try {
      if (packs && this.pack) {
        // room first (while another package finishes), and held until its compressed bytes are on disk
        if (!this.area.hasRoom(declared)) await this.area.room(declared);
        held = declared;
        this.area.hold(held);
        const { data, owned } = await this.collect(path, body);
        this.totalBytes += data.length;
        this.entries.set(path, { path, kind, size: data.length });
        const { job } = await this.pack.pack(data, { give: owned });
        const release = held;
        held = 0;
        void job.finally(() => this.area.hold(-release)).catch(() => undefined);
        this.packed.set(path, job);
        return;
      }
      const mode = options.executable ? 0o755 : 0o644;
      await this.makeParents(path);
      fh = await open(this.absolute(path), CREATE_FLAGS, mode);
      await fh.chmod(mode); // through the descriptor: the umask must not strip bits
      let written = 0;
      let crc = 0;
      const deflating = this.pack !== undefined;
      const limit = this.limits.maxBytes;
      const counter = new Transform({
        transform: (chunk: Buffer, _enc, cb) => {
          written += chunk.length;
          if (this.totalBytes + written > limit) {
            cb(this.tooBig(path, this.totalBytes + written));
            return;
          }
          crc = crc32(chunk, crc);
          if (!deflating) {
            counted += chunk.length;
            this.fileBytes += chunk.length;
            this.account(chunk.length);
          }
          // while another package finishes, the download waits for room in the area
          if (this.area.hasRoom()) cb(null, chunk);
          else void this.area.room().then(() => cb(null, chunk));
        },
      });
      const source = Buffer.isBuffer(body) ? Readable.from([body]) : body;
      if (this.pack) {
        // compressed for the zip while it streams in (the same bytes the writer would make), so the
        // deflate of a large file overlaps its download; the disk holds the compressed bytes
        let compressed = 0;
        const onDisk = new Transform({
          transform: (chunk: Buffer, _enc, cb) => {
            compressed += chunk.length;
            counted += chunk.length;
            this.fileBytes += chunk.length;
            this.account(chunk.length);
            cb(null, chunk);
          },
        });
        await pipeline(source, counter, createDeflateRaw({ level: ZIP_LEVEL }), onDisk, fh.createWriteStream());
        this.totalBytes += written;
        this.entries.set(path, { path, kind, size: written, crc: crc >>> 0 });
        this.deflated.set(path, {
          path: this.absolute(path),
          crc: crc >>> 0,
          size: written,
          compressedSize: compressed,
        });
        return;
      }
      await pipeline(source, counter, fh.createWriteStream()); // closes the descriptor
      this.totalBytes += written;
      this.entries.set(path, { path, kind, size: written, crc: crc >>> 0 });
    } catch (error) {
      if (!Buffer.isBuffer(body)) body.destroy();
      if (fh) {
        await unlink(this.absolute(path)).catch(() => undefined); // so a retried download can arrive
        this.fileBytes -= counted;
        this.account(-counted);
      }
      throw error;
    } finally {
      if (held) this.area.hold(-held);
      this.arriving.delete(path);
      await fh?.close().catch(() => undefined);
    }
  }

  /** A symlink: checked and kept as its target text, never created on disk. */
  async symlink(path: string, target: string): Promise<void> {
    this.admit(path);
    checkSymlinkTarget(path, target, this.folder);
    const size = Buffer.byteLength(target);
    this.entries.set(path, { path, kind: "symlink", size, target, crc: crc32(Buffer.from(target)) >>> 0 });
  }

  /** A small body in memory, within the limit; `owned` (movable to the worker) only if the stage joined it. */
  private async collect(path: string, body: Readable | Buffer): Promise<{ data: Buffer; owned: boolean }> {
    if (Buffer.isBuffer(body)) {
      if (this.totalBytes + body.length > this.limits.maxBytes) throw this.tooBig(path, this.totalBytes + body.length);
      return { data: body, owned: false };
    }
    const chunks: Buffer[] = [];
    let written = 0;
    for await (const chunk of body) {
      const b = chunk as Buffer;
      written += b.length;
      if (this.totalBytes + written > this.limits.maxBytes) throw this.tooBig(path, this.totalBytes + written);
      chunks.push(b);
    }
    return chunks.length === 1
      ? { data: chunks[0] as Buffer, owned: false }
      : { data: Buffer.concat(chunks, written), owned: true };
  }

  /** Name checks, the one-arrival-per-path rule and the file-count limit; records the implied directories. */
  private admit(path: string): void {
    checkRelativePath(path, this.folder);
    const where = `entry ${quoteName(path)} in folder "${this.folder}"`;
    const earlier = this.entries.get(path);
    if (earlier || this.arriving.has(path) || this.dirs.has(path)) {
      const as = earlier?.kind === "symlink" ? "a symlink" : this.dirs.has(path) ? "a directory" : "a file";
      throw new PathSafetyError(
        `${where} arrives twice (already ${as}); a git tree cannot hold that, so the source is corrupt or hostile`,
      );
    }
    const segments = path.split("/");
    for (let i = 1; i < segments.length; i++) {
      const parent = segments.slice(0, i).join("/");
      const e = this.entries.get(parent);
      if (e || this.arriving.has(parent)) {
        throw new PathSafetyError(
          `${where} lies inside ${e?.kind === "symlink" ? "symlink" : "file"} ${quoteName(parent)}`,
        );
      }
    }
    if (this.entries.size + this.arriving.size >= this.limits.maxFiles) {
      throw new LimitExceededError(
        `folder "${this.folder}" has more than ${this.limits.maxFiles} files (limit SOURCE_MAX_FILES); split the folder or raise the limit`,
      );
    }
    for (let i = 1; i < segments.length; i++) this.dirs.add(segments.slice(0, i).join("/"));
  }

  /** Fail early when a declared size already breaks the byte limit. */
  private reserve(path: string, size: number): void {
    if (this.totalBytes + size > this.limits.maxBytes) throw this.tooBig(path, this.totalBytes + size);
  }

  private tooBig(path: string, bytes: number): LimitExceededError {
    return folderTooBig(this.folder, this.limits.maxBytes, path, bytes);
  }

  /** Create the parent directories one by one (never recursively through whatever is there). */
  private async makeParents(path: string): Promise<void> {
    const segments = path.split("/");
    for (let i = 1; i < segments.length; i++) {
      const dir = segments.slice(0, i).join("/");
      if (this.made.has(dir)) continue;
      await mkdir(this.absolute(dir), { mode: 0o755 }).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== "EEXIST") throw error;
      });
      const st = await lstat(this.absolute(dir));
      if (!st.isDirectory()) {
        throw new PathSafetyError(
          `entry ${quoteName(path)} in folder "${this.folder}": ${quoteName(dir)} is not a directory`,
        );
      }
      this.made.add(dir);
    }
  }
}
