/**
 * Raw DEFLATE for many small entries on a worker thread, and the inflating half of zip verification.
 *
 * zlib's asynchronous `deflateRaw()` builds a stream and a native handle on the main thread for every call;
 * for thousands of 20 KB files that costs the main thread about a third as much CPU again as the
 * compression itself, time it should spend parsing the download. Here entries are gathered into batches
 * (one transferred buffer each way) and a worker compresses each entry with `deflateRawSync`: a fresh
 * deflate stream per entry, so the bytes are exactly `deflateRaw()`'s. An entry's bytes are copied into
 * the batch when it is handed over (so the caller may reuse its buffer as soon as the call returns); a
 * large buffer its caller owns and gives up is moved to the worker instead of copied. Verification's inflates run there too (`inflateCrc`), answering
 * only a CRC-32 and a size, so the inflated bytes (and the garbage they make) stay off the main thread.
 *
 * One worker per process, started on first use, and a second (never more, and none on a single core) once a
 * caller asks for it with `warm(2)`, as a sync does before it downloads an archive: its entries arrive faster
 * than one worker compresses them, and the main thread (parsing the download, handing the larger entries to
 * the thread pool: `staging/pack-store.ts`) is mostly waiting, so the second worker is what keeps two cores
 * compressing, and verifying (the inflates of one zip are spread over both). A walk's files arrive slower
 * than one worker compresses them: a second would only cost it memory (about 15 MiB). Workers never stop;
 * an idle one is unreferenced, so it never keeps a process (or a Lambda invocation) alive. If a worker cannot
 * run, entries fall back to zlib's own API on this thread (a deflate whose bytes were on their way to the
 * worker fails with it).
 */
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { Worker } from "node:worker_threads";
import { deflateRaw } from "node:zlib";
import { DeflateWorkerStoppedError } from "../common/errors.ts";
import { inflateAnswer, WORKER_ROLE, type WorkerReply } from "./deflate-worker.ts";

const deflateRawAsync = promisify(deflateRaw);

/** A batch is sent when it holds this many bytes, or at the next turn of the event loop. */
const BATCH_BYTES = 256 * 1024;
/**
 * A batch's buffer (which queued bytes are copied into as they arrive) holds this much, or one larger
 * entry; a batch that would outgrow it is sent first. Most batches of a walk hold one or two small files.
 */
const BATCH_BUFFER = 64 * 1024;
/** Given buffers from this size on are moved to the worker, not copied (see `deflate`). */
const MOVE_MIN = 64 * 1024;
/**
 * The worker's heap. It holds a few MiB live (one batch and its answer), but every `deflateRawSync` leaves a
 * closed zlib stream whose output buffers (16 KiB and more per entry) only a full collection frees: its
 * native handle keeps it alive through the young generation's collections. A full collection comes when the
 * old generation nears its limit, so the limit sets how much of that garbage piles up: at 64 MiB, 25–45 MiB
 * of dead buffers (bench/results/2026-12-07-memory-walk.md); at 16 MiB, under 12 MiB, at no measurable cost
 * in speed. A worker that still ran out would fail over to zlib on the main thread (`fail`).
 */
const WORKER_LIMITS = { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 16 };

/** Workers a pool may start: two, or one where the process has a single core. */
export const MAX_WORKERS = Math.min(2, availableParallelism());

/**
 * The worker's module: `deflate-worker.ts` beside this file when running from the sources, or
 * `deflate-worker.mjs` that every bundle ships as its own entry (beside the handler's `index.mjs`, or in the
 * CLI bundle's folder while this code sits in a chunk one level down). `undefined` when none is there: the
 * pool then compresses on this thread.
 */
export function workerModule(base: string = import.meta.url): URL | undefined {
  const candidates = base.endsWith(".ts") ? ["./deflate-worker.ts"] : ["./deflate-worker.mjs", "../deflate-worker.mjs"];
  for (const candidate of candidates) {
    const url = new URL(candidate, base);
    if (existsSync(fileURLToPath(url))) return url;
  }
  return undefined;
}

interface Task {
  /** The bytes to send: the batch's copy, or the given buffer itself when it is moved. */
  data: Buffer;
  /** The caller gave `data` up: it may be moved to the worker rather than copied (see `deflate`). */
  give?: boolean;
  /** `data`'s length when sent (a moved buffer reads 0 afterwards). */
  length?: number;
  /** -1: deflate; n ≥ 0: inflate, expecting n bytes (see `deflate-worker.ts`). */
  op: number;
  resolve: (result: Buffer) => void;
  reject: (error: Error) => void;
}

/** One worker and the batches it holds. */
interface Lane {
  worker: Worker;
  inFlight: Map<number, Task[]>;
  /** Bytes of `inFlight`'s tasks. */
  sent: number;
}

export class DeflatePool {
  private readonly lanes: Lane[] = [];
  private broken = false;
  private queue: Task[] = [];
  private queued = 0;
  /** The batch being filled: queued bytes are copied into it as they arrive. */
  private batch: Buffer | undefined;
  private batchFill = 0;
  private scheduled = false;
  private nextId = 0;

  private maxWorkers: number;
  private readonly module: URL | undefined;

  /**
   * `maxWorkers` (default `MAX_WORKERS`) and the worker's `module` (default `workerModule()`) are for tests:
   * a pool of one, or a worker that stops on cue.
   */
  constructor(
    private readonly level: number,
    options: { maxWorkers?: number; module?: URL } = {},
  ) {
    this.maxWorkers = options.maxWorkers ?? MAX_WORKERS;
    this.module = options.module ?? workerModule();
  }

  /** Whether the pool's work runs on worker threads (false before the first batch, and after a failure). */
  get onWorker(): boolean {
    return this.lanes.length > 0 && !this.broken;
  }

  /** Workers started so far. */
  get workers(): number {
    return this.lanes.length;
  }

  /** Input bytes handed to the pool and not compressed yet: how far the worker is behind. */
  get backlogBytes(): number {
    return this.lanes.reduce((bytes, l) => bytes + l.sent, this.queued);
  }

  /**
   * Raw DEFLATE of `data` (not empty) at the pool's level. `data` is copied before this returns, so the
   * caller may change it at once. With `give`, the caller gives `data` up: a large one that owns its whole
   * memory is moved to the worker instead of copied, which detaches it (its length becomes 0), so the
   * caller must not read it again, its length included. Only code that allocated the buffer itself may
   * give it (staging: `pack-store.ts`).
   */
  deflate(data: Buffer, options: { give?: boolean } = {}): Promise<Buffer> {
    if (this.broken) return deflateRawAsync(data, { level: this.level });
    return this.enqueue(data, -1, options.give === true);
  }

  /**
   * Inflate raw DEFLATE `data` (expected to give `size` bytes) and answer with the CRC-32 and size of what it
   * gave; a stream that is corrupt or gives more than `size` bytes rejects. The inflated bytes stay on the
   * worker. `data` is copied into the batch before this returns (the caller may reuse its buffer at once),
   * so if the worker stops while it holds the copy, the promise rejects with `DeflateWorkerStoppedError`
   * and the caller, which knows where the bytes came from, reads them again (see `verifyZipEntries`).
   */
  async inflateCrc(data: Buffer, size: number): Promise<{ crc: number; size: number }> {
    const result = this.broken
      ? await new Promise<Buffer>((resolve, reject) => this.runHere({ data, op: size, resolve, reject }))
      : await this.enqueue(data, size);
    return { crc: result.readUInt32LE(0), size: result.readUInt32LE(4) };
  }

  private enqueue(data: Buffer, op: number, give = false): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      const moves =
        give && data.length >= MOVE_MIN && data.byteOffset === 0 && data.byteLength === data.buffer.byteLength;
      if (moves) {
        // travels alone, moved: nothing to copy
        this.queue.push({ data, op, give: true, resolve, reject });
      } else {
        const copy = this.copyIn(data); // may send the batch before it (and begin a new queue)
        this.queue.push({ data: copy, op, resolve, reject });
      }
      this.queued += data.length;
      if (this.queued >= BATCH_BYTES) this.send();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          this.send();
        });
      }
    });
  }

  /** A copy of `data` in the batch being filled (a full batch is sent first, and a new one begun). */
  private copyIn(data: Buffer): Buffer {
    if (this.batch && this.batchFill + data.length > this.batch.length) this.send();
    this.batch ??= Buffer.allocUnsafeSlow(Math.max(BATCH_BUFFER, data.length));
    const start = this.batchFill;
    data.copy(this.batch, start);
    this.batchFill = start + data.length;
    return this.batch.subarray(start, this.batchFill);
  }

  /**
   * Have `count` workers (at most the pool's maximum) running from now on, started now so that their start
   * overlaps whatever the caller waits for next: a sync warms one while it resolves the ref, and a second
   * before it downloads an archive. Batches are spread over the workers there are; workers never stop.
   */
  warm(count: number): void {
    while (!this.broken && this.lanes.length < Math.min(count, this.maxWorkers)) {
      if (!this.start()) return;
    }
  }

  /**
   * The lane for the next batch: an idle one, else the one holding the fewest bytes (the first worker is
   * started here); `undefined` when no worker can run.
   */
  private lane(): Lane | undefined {
    if (this.broken) return undefined;
    if (this.lanes.length === 0) return this.start();
    const idle = this.lanes.find((l) => l.inFlight.size === 0);
    if (idle) return idle;
    return this.lanes.reduce<Lane | undefined>((best, l) => (best && best.sent <= l.sent ? best : l), undefined);
  }

  private start(): Lane | undefined {
    try {
      const module = this.module;
      if (!module) {
        this.broken = true;
        return undefined;
      }
      const worker = new Worker(module, {
        workerData: WORKER_ROLE,
        resourceLimits: WORKER_LIMITS,
      });
      const lane: Lane = { worker, inFlight: new Map(), sent: 0 };
      worker.on("message", (reply: WorkerReply) => this.receive(lane, reply));
      worker.on("error", () => this.fail(lane));
      worker.on("exit", () => this.fail(lane));
      // after the listeners: a "message" listener added after `unref()` refs the worker's port again
      // (nodejs/node#53036), and a warmed worker that never got a batch would keep the process from exiting
      worker.unref();
      this.lanes.push(lane);
      return lane;
    } catch {
      // without a first worker the work stays on this thread; without a second, on the first
      if (this.lanes.length === 0) this.broken = true;
      this.maxWorkers = this.lanes.length;
      return undefined;
    }
  }

  private send(): void {
    if (this.queue.length === 0) return;
    const tasks = this.queue;
    const batch = this.batch;
    this.queue = [];
    this.queued = 0;
    this.batch = undefined;
    this.batchFill = 0;
    // given buffers travel alone and are moved; the rest were copied into the batch as they arrived
    const copied: Task[] = [];
    for (const t of tasks) {
      if (!t.give) copied.push(t);
      else if (!this.post([t], t.data.buffer as ArrayBuffer)) this.runHere(t);
    }
    if (copied.length === 0 || !batch) return;
    if (!this.post(copied, batch.buffer as ArrayBuffer)) for (const t of copied) this.runHere(t);
  }

  /** Send one batch to a worker; false when no worker can take it. */
  private post(tasks: Task[], buffer: ArrayBuffer): boolean {
    const lane = this.lane();
    if (!lane) return false;
    const id = this.nextId++;
    const lengths = tasks.map((t) => t.data.length);
    for (const length of lengths) lane.sent += length;
    for (const [i, t] of tasks.entries()) t.length = lengths[i] as number;
    if (lane.inFlight.size === 0) lane.worker.ref();
    lane.inFlight.set(id, tasks);
    lane.worker.postMessage({ id, buffer, lengths, ops: tasks.map((t) => t.op), level: this.level }, [buffer]);
    return true;
  }

  private receive(lane: Lane, reply: WorkerReply): void {
    const tasks = lane.inFlight.get(reply.id);
    if (!tasks) return;
    lane.inFlight.delete(reply.id);
    for (const t of tasks) lane.sent -= t.length ?? 0;
    if (lane.inFlight.size === 0) lane.worker.unref();
    if (reply.error !== undefined || !reply.buffer || !reply.lengths) {
      const error = new Error(`compression failed: ${reply.error ?? "no output"}`);
      for (const t of tasks) t.reject(error);
      return;
    }
    const out = Buffer.from(reply.buffer);
    let offset = 0;
    for (const [i, t] of tasks.entries()) {
      const length = reply.lengths[i] ?? 0;
      const failed = reply.errors?.[i];
      if (failed) t.reject(new Error(failed));
      else t.resolve(out.subarray(offset, offset + length));
      offset += length;
    }
  }

  /** A task without the worker: zlib's own API, with the worker's answer for an inflate. */
  private runHere(t: Task): void {
    if (t.op < 0) {
      deflateRawAsync(t.data, { level: this.level }).then(t.resolve, t.reject);
      return;
    }
    try {
      t.resolve(inflateAnswer(t.data, t.op));
    } catch (error) {
      t.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }

  /**
   * A worker is gone: what it had goes to zlib's own API, and so does everything after (the other workers
   * still answer what they hold).
   */
  private fail(lane: Lane): void {
    this.broken = true;
    for (const [id, tasks] of lane.inFlight) {
      lane.inFlight.delete(id);
      for (const t of tasks) {
        lane.sent -= t.length ?? 0;
        // the bytes went with the worker (moved, or the batch's copy): the task fails (a deflate is never
        // compressed empty) and its caller reads them again if it can
        if (t.data.length !== t.length)
          t.reject(new DeflateWorkerStoppedError("the deflate worker stopped while it held this entry's bytes"));
        else this.runHere(t);
      }
    }
  }
}

const pools = new Map<number, DeflatePool>();

/** The process's pool for `level`. */
export function deflatePool(level: number): DeflatePool {
  let pool = pools.get(level);
  if (!pool) {
    pool = new DeflatePool(level);
    pools.set(level, pool);
  }
  return pool;
}
