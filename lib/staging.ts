/**
 * The staging area in the work directory (`/tmp/layer-sync/<run>/<package>/` in Lambda). Adapters deliver
 * entries into a `FolderStage`, which checks every name, enforces the size and file-count limits while
 * streaming, and writes files, executables and symlinks to disk with their modes. Warm Lambdas keep
 * `/tmp`, so stale runs are removed before a run starts and the run's own directory after it ends.
 */
import { createWriteStream } from "node:fs";
import { chmod, lstat, mkdir, readdir, rm, symlink } from "node:fs/promises";
import { join } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { LimitExceededError, PathSafetyError } from "./errors.ts";
import { checkRelativePath, checkSymlinkTarget, quoteName } from "./paths.ts";
import type { EntrySink } from "./sources/types.ts";

export interface StagedEntry {
  /** Path relative to the folder. */
  path: string;
  kind: "file" | "executable" | "symlink";
  /** Bytes on disk (files) or target length (symlinks). */
  size: number;
  /** Symlink target. */
  target?: string;
}

export interface StageLimits {
  maxFiles: number;
  maxBytes: number;
}

function ignoreUntilPiped(): void {}

export class FolderStage implements EntrySink {
  readonly folder: string;
  readonly dir: string;
  private readonly limits: StageLimits;
  private readonly entries = new Map<string, StagedEntry>();
  private readonly symlinks = new Set<string>();
  private totalBytes = 0;

  constructor(folder: string, dir: string, limits: StageLimits) {
    this.folder = folder;
    this.dir = dir;
    this.limits = limits;
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

  async file(path: string, body: Readable | Buffer, options: { executable: boolean; size?: number }): Promise<void> {
    // Until the pipeline below is attached (after an await), an error on the body (a reset connection) would
    // have no listener and crash the process; keep it on the stream, where the pipeline finds it.
    if (!Buffer.isBuffer(body)) body.on("error", ignoreUntilPiped);
    let abs: string;
    try {
      this.admit(path);
      if (options.size !== undefined) this.reserve(path, options.size);
      abs = await this.prepare(path);
    } catch (error) {
      if (!Buffer.isBuffer(body)) body.destroy();
      throw error;
    }
    const previous = this.entries.get(path)?.size ?? 0;
    this.totalBytes -= previous;
    let written = 0;
    const limit = this.limits.maxBytes;
    const counter = new Transform({
      transform: (chunk: Buffer, _enc, cb) => {
        written += chunk.length;
        if (this.totalBytes + written > limit) {
          cb(this.tooBig(path, this.totalBytes + written));
          return;
        }
        cb(null, chunk);
      },
    });
    const source = Buffer.isBuffer(body) ? Readable.from([body]) : body;
    const mode = options.executable ? 0o755 : 0o644;
    await pipeline(source, counter, createWriteStream(abs, { mode }));
    await chmod(abs, mode); // the umask must not strip bits
    this.totalBytes += written;
    this.entries.set(path, { path, kind: options.executable ? "executable" : "file", size: written });
  }

  async symlink(path: string, target: string): Promise<void> {
    this.admit(path);
    checkSymlinkTarget(path, target, this.folder);
    const abs = await this.prepare(path);
    await rm(abs, { force: true });
    await symlink(target, abs);
    this.symlinks.add(path);
    this.entries.set(path, { path, kind: "symlink", size: Buffer.byteLength(target), target });
  }

  /** Name checks and the file-count limit. */
  private admit(path: string): void {
    checkRelativePath(path, this.folder);
    const segments = path.split("/");
    for (let i = 1; i < segments.length; i++) {
      const parent = segments.slice(0, i).join("/");
      if (this.symlinks.has(parent)) {
        throw new PathSafetyError(
          `entry ${quoteName(path)} in folder "${this.folder}" lies inside symlink ${quoteName(parent)}`,
        );
      }
      if (this.entries.has(parent)) {
        throw new PathSafetyError(
          `entry ${quoteName(path)} in folder "${this.folder}" lies inside file ${quoteName(parent)}`,
        );
      }
    }
    if (!this.entries.has(path) && this.entries.size >= this.limits.maxFiles) {
      throw new LimitExceededError(
        `folder "${this.folder}" has more than ${this.limits.maxFiles} files (limit SOURCE_MAX_FILES); split the folder or raise the limit`,
      );
    }
  }

  /** Fail early when a declared size already breaks the byte limit. */
  private reserve(path: string, size: number): void {
    const previous = this.entries.get(path)?.size ?? 0;
    if (this.totalBytes - previous + size > this.limits.maxBytes) {
      throw this.tooBig(path, this.totalBytes - previous + size);
    }
  }

  private tooBig(path: string, bytes: number): LimitExceededError {
    return new LimitExceededError(
      `folder "${this.folder}" is over ${this.limits.maxBytes} bytes unzipped (reached ${bytes} at ${quoteName(path)}); Lambda allows 250 MB for a function and its layers — split the folder or lower SOURCE_MAX_BYTES only if you mean to`,
    );
  }

  private async prepare(path: string): Promise<string> {
    const abs = this.absolute(path);
    const parent = abs.slice(0, abs.lastIndexOf("/"));
    await mkdir(parent, { recursive: true });
    return abs;
  }
}

/** A run's staging directory: `<workDir>/<runId>/`. */
export class StagingArea {
  readonly runDir: string;
  private readonly limits: StageLimits;

  private constructor(runDir: string, limits: StageLimits) {
    this.runDir = runDir;
    this.limits = limits;
  }

  /**
   * Create the run directory. Other run directories under `workDir` are removed first: all of them when
   * `exclusive` (a Lambda environment runs one invocation at a time), otherwise those older than an hour.
   */
  static async create(
    workDir: string,
    runId: string,
    limits: StageLimits,
    options: { exclusive: boolean; now: number },
  ): Promise<StagingArea> {
    await mkdir(workDir, { recursive: true });
    for (const name of await readdir(workDir)) {
      const p = join(workDir, name);
      const st = await lstat(p).catch(() => undefined);
      if (!st) continue;
      if (options.exclusive || options.now - st.mtimeMs > 3_600_000) {
        // another process may still be writing there (a local run beside this one): never fail on it
        await rm(p, { recursive: true, force: true, maxRetries: 2 }).catch(() => undefined);
      }
    }
    const runDir = join(workDir, runId);
    await rm(runDir, { recursive: true, force: true });
    await mkdir(runDir, { recursive: true });
    return new StagingArea(runDir, limits);
  }

  /** A fresh, empty stage for one package. */
  async stage(folder: string, pkg: string): Promise<FolderStage> {
    const dir = join(this.runDir, pkg, "files");
    await rm(join(this.runDir, pkg), { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    return new FolderStage(folder, dir, this.limits);
  }

  /** Where a package's zip is built. */
  zipPath(pkg: string): string {
    return join(this.runDir, pkg, `${pkg}.zip`);
  }

  async dispose(): Promise<void> {
    await rm(this.runDir, { recursive: true, force: true });
  }
}
