/**
 * The staging area in the work directory (`/tmp/layer-sync/<run>/<package>/` in Lambda). Adapters deliver
 * entries into a `FolderStage`, which checks every name, refuses a path that arrives twice, enforces the
 * size and file-count limits while streaming, and writes files and executables to disk with their modes
 * (create-only, never through a link). Symlinks stay in memory: the zip needs only their target text. Warm
 * Lambdas keep `/tmp`, so stale runs are removed before a run starts and the run's own directory after it
 * ends; a local run also removes run directories whose owner process is gone.
 *
 * An area created with `packSmallFiles` handles small files (up to `PACKED_FILE_MAX`, declared size known)
 * differently: each one is compressed for the zip as it arrives (on the thread pool, while the rest of the
 * folder is still downloading) and appended to the package's pack file, so thousands of small files cost no
 * file-system round trip each and only the files still being compressed are held in memory. When
 * compression falls behind, `file()` waits (backpressure on the download). Large files stream to disk.
 *
 * The area counts what it holds on disk (`usedBytes`, `peakBytes`): staged files as they stream in, pack
 * files as they grow, zips once built (`countZip`). `release` removes a finished package at once, so a run
 * holds one package at a time wherever its source delivers one at a time.
 */
import { rmSync } from "node:fs";
import { lstat, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { FolderStage, type StageLimits } from "./folder-stage.ts";
import { PackStore } from "./pack-store.ts";

export { FolderStage, type StagedEntry, type StageLimits } from "./folder-stage.ts";
export { PACKED_FILE_MAX } from "./pack-store.ts";

/** A run's staging directory: `<workDir>/<runId>/`. */
export class StagingArea {
  readonly runDir: string;
  private readonly limits: StageLimits;
  private readonly packSmallFiles: boolean;
  private used = 0;
  private peak = 0;
  /** Bytes admitted to stages but not yet on disk. */
  private held = 0;
  /** The package being finished, and how much the area may hold meanwhile. */
  private finishing: { stage: FolderStage; cap: number; zip: number } | undefined;
  /** See `largestFootprint`. */
  private largest = 0;
  /** Deliveries waiting for room, with the bytes each one needs. */
  private waiting: { bytes: number; wake: () => void }[] = [];
  private readonly stages = new Set<FolderStage>();

  private constructor(runDir: string, limits: StageLimits, packSmallFiles: boolean) {
    this.runDir = runDir;
    this.limits = limits;
    this.packSmallFiles = packSmallFiles;
  }

  /**
   * The area's own accounting of what it holds on disk (staged files, pack files, counted zips): now, and
   * the most at any moment of the run.
   */
  get usedBytes(): number {
    return this.used;
  }

  get peakBytes(): number {
    return this.peak;
  }

  private account(delta: number): void {
    this.used += delta;
    if (this.used > this.peak) this.peak = this.used;
    if (delta < 0) this.wakeWhoFits();
  }

  /**
   * Create the run directory. Other run directories under `workDir` are removed first: all of them when
   * `exclusive` (a Lambda environment runs one invocation at a time), otherwise those older than an hour and
   * those whose owner process (`ownerPid`, recorded in `.owner`) is gone. `packSmallFiles` (default false)
   * packs small files, compressed for the zip, into one file instead of writing each one.
   */
  static async create(
    workDir: string,
    runId: string,
    limits: StageLimits,
    options: {
      exclusive: boolean;
      now: number;
      packSmallFiles?: boolean;
      /** The process that owns the new run directory, recorded so a later run can tell it is gone. */
      ownerPid?: number;
      /** Whether a process is still running (default: signal 0). */
      isAlive?: (pid: number) => boolean;
    },
  ): Promise<StagingArea> {
    await mkdir(workDir, { recursive: true });
    const alive = options.isAlive ?? processAlive;
    for (const name of await readdir(workDir)) {
      const p = join(workDir, name);
      const st = await lstat(p).catch(() => undefined);
      if (!st) continue;
      const owner = st.isDirectory() ? await readOwner(p) : undefined;
      if (options.exclusive || options.now - st.mtimeMs > 3_600_000 || (owner !== undefined && !alive(owner))) {
        // another process may still be writing there (a local run beside this one): never fail on it
        await rm(p, { recursive: true, force: true, maxRetries: 2 }).catch(() => undefined);
      }
    }
    const runDir = join(workDir, runId);
    await rm(runDir, { recursive: true, force: true });
    await mkdir(runDir, { recursive: true });
    if (options.ownerPid !== undefined) await writeFile(join(runDir, OWNER_FILE), `${options.ownerPid}\n`);
    return new StagingArea(runDir, limits, options.packSmallFiles === true);
  }

  /** A fresh, empty stage for one package. */
  async stage(folder: string, pkg: string): Promise<FolderStage> {
    const dir = join(this.runDir, pkg, "files");
    await rm(join(this.runDir, pkg), { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    // each package packs into a file of its own, so that it leaves the disk with the package
    const pack = this.packSmallFiles
      ? (account: (delta: number) => void, hold: (delta: number) => void) =>
          new PackStore(`${dir}.packed`, account, hold)
      : undefined;
    const stage = new FolderStage(folder, dir, this.limits, pack, this.hooks);
    this.stages.add(stage);
    return stage;
  }

  /**
   * From now until `release(stage)`, the other stages may add only as much as keeps the area within
   * `OVERLAP_FACTOR` × the largest footprint of the run's packages so far, this one included (a package's
   * staged bytes plus its zip, estimated until counted; see `FolderStage.footprint`): the next package
   * downloads while this one is zipped and uploaded. Every footprint so far is at most the largest
   * package's, so `/tmp` stays within 1.3 × the largest package at any moment, while a small package after
   * a large one overlaps fully. One stage at a time (the sync finishes one package at a time).
   */
  limitWhileFinishing(stage: FolderStage): void {
    this.largest = Math.max(this.largest, stage.footprint);
    this.finishing = { stage, cap: OVERLAP_FACTOR * this.largest, zip: stage.zipEstimate };
  }

  /** The largest footprint (staged bytes plus zip) of the packages finished or being finished so far. */
  get largestFootprint(): number {
    return this.largest;
  }

  private readonly hooks = {
    account: (delta: number) => this.account(delta),
    hold: (delta: number) => {
      this.held += delta;
      if (delta < 0) this.wakeWhoFits();
    },
    hasRoom: (bytes?: number) => this.hasRoom(bytes),
    room: (bytes?: number) => this.room(bytes),
  };

  /** Whether `bytes` more fit now (always, when no package is finishing). */
  private hasRoom(bytes = 0): boolean {
    const f = this.finishing;
    return !f || this.used + this.held + (f.stage.zipped ? 0 : f.zip) + bytes <= f.cap;
  }

  private room(bytes = 0): Promise<void> {
    return this.hasRoom(bytes) ? Promise.resolve() : new Promise((wake) => this.waiting.push({ bytes, wake }));
  }

  private wakeWhoFits(): void {
    if (this.waiting.length === 0) return;
    const still: { bytes: number; wake: () => void }[] = [];
    for (const w of this.waiting) {
      if (this.hasRoom(w.bytes)) w.wake();
      else still.push(w);
    }
    this.waiting = still;
  }

  /** Remove a finished package from the disk (its files, its pack file, its zip) and lift its limit. */
  async release(stage: FolderStage): Promise<void> {
    this.largest = Math.max(this.largest, stage.footprint);
    try {
      await stage.empty();
    } finally {
      if (this.finishing?.stage === stage) this.finishing = undefined;
      for (const w of this.waiting.splice(0)) w.wake();
    }
  }

  /** Where a package's zip is built. */
  zipPath(pkg: string): string {
    return join(this.runDir, pkg, `${pkg}.zip`);
  }

  async dispose(): Promise<void> {
    for (const stage of this.stages) await stage.close().catch(() => undefined);
    await rm(this.runDir, { recursive: true, force: true });
  }

  /** Remove the run directory at once (a signal handler, which cannot wait for promises). */
  disposeSync(): void {
    rmSync(this.runDir, { recursive: true, force: true });
  }
}

/** While a package finishes, the area may hold this many times its footprint (see `limitWhileFinishing`). */
export const OVERLAP_FACTOR = 1.3;

/** The file in a run directory that names the process owning it. */
const OWNER_FILE = ".owner";

async function readOwner(runDir: string): Promise<number | undefined> {
  const text = await readFile(join(runDir, OWNER_FILE), "utf8").catch(() => undefined);
  const pid = text === undefined ? Number.NaN : Number(text.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
