/**
 * Raw DEFLATE for many small entries on a worker thread.
 *
 * zlib's asynchronous `deflateRaw()` builds a stream and a native handle on the main thread for every call;
 * for thousands of 20 KB files that costs the main thread about a third as much CPU again as the
 * compression itself, time it should spend parsing the download. Here entries are gathered into batches
 * (one transferred buffer each way) and a worker compresses each entry with `deflateRawSync`: a fresh
 * deflate stream per entry, so the bytes are exactly `deflateRaw()`'s.
 *
 * One worker per process, started on first use: with the main thread parsing the download, one worker
 * keeps two cores busy (a Lambda function at 2 GB has about that), and each worker costs memory. An idle
 * worker is unreferenced, so it never keeps a process (or a Lambda invocation) alive; if the worker cannot
 * run, entries fall back to `deflateRaw()`.
 */
import { promisify } from "node:util";
import { Worker } from "node:worker_threads";
import { deflateRaw } from "node:zlib";

const deflateRawAsync = promisify(deflateRaw);

/** A batch is sent when it holds this many bytes, or at the next turn of the event loop. */
const BATCH_BYTES = 256 * 1024;

const WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads");
const { deflateRawSync } = require("node:zlib");
parentPort.on("message", (m) => {
  try {
    const input = Buffer.from(m.buffer);
    const parts = [];
    let total = 0;
    let offset = 0;
    for (const length of m.lengths) {
      const part = deflateRawSync(input.subarray(offset, offset + length), { level: m.level });
      offset += length;
      parts.push(part);
      total += part.length;
    }
    const out = Buffer.allocUnsafeSlow(total);
    let at = 0;
    for (const part of parts) at += part.copy(out, at);
    parentPort.postMessage({ id: m.id, buffer: out.buffer, lengths: parts.map((p) => p.length) }, [out.buffer]);
  } catch (error) {
    parentPort.postMessage({ id: m.id, error: String((error && error.message) || error) });
  }
});
`;

interface Task {
  data: Buffer;
  resolve: (compressed: Buffer) => void;
  reject: (error: Error) => void;
}

interface Reply {
  id: number;
  buffer?: ArrayBuffer;
  lengths?: number[];
  error?: string;
}

export class DeflatePool {
  private worker: Worker | undefined;
  private broken = false;
  private readonly inFlight = new Map<number, Task[]>();
  private queue: Task[] = [];
  private queued = 0;
  /** Bytes sent to the worker and not back yet. */
  private sent = 0;
  private scheduled = false;
  private nextId = 0;

  constructor(private readonly level: number) {}

  /** Input bytes handed to the pool and not compressed yet: how far the worker is behind. */
  get backlogBytes(): number {
    return this.queued + this.sent;
  }

  /** Raw DEFLATE of `data` (not empty) at the pool's level. */
  deflate(data: Buffer): Promise<Buffer> {
    if (this.broken) return deflateRawAsync(data, { level: this.level });
    return new Promise<Buffer>((resolve, reject) => {
      this.queue.push({ data, resolve, reject });
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

  private start(): Worker | undefined {
    if (this.worker || this.broken) return this.worker;
    try {
      // a small young generation: the garbage of each batch is collected (and its memory returned) soon
      const worker = new Worker(WORKER_SOURCE, {
        eval: true,
        resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 64 },
      });
      worker.unref();
      worker.on("message", (reply: Reply) => this.receive(reply));
      worker.on("error", () => this.fail());
      worker.on("exit", () => this.fail());
      this.worker = worker;
    } catch {
      this.broken = true;
    }
    return this.worker;
  }

  private send(): void {
    if (this.queue.length === 0) return;
    const tasks = this.queue;
    this.queue = [];
    this.queued = 0;
    const worker = this.start();
    if (!worker) {
      for (const t of tasks) deflateRawAsync(t.data, { level: this.level }).then(t.resolve, t.reject);
      return;
    }
    const total = tasks.reduce((n, t) => n + t.data.length, 0);
    const input = Buffer.allocUnsafeSlow(total);
    let at = 0;
    for (const t of tasks) at += t.data.copy(input, at);
    const id = this.nextId++;
    this.sent += total;
    if (this.inFlight.size === 0) worker.ref();
    this.inFlight.set(id, tasks);
    worker.postMessage({ id, buffer: input.buffer, lengths: tasks.map((t) => t.data.length), level: this.level }, [
      input.buffer,
    ]);
  }

  private receive(reply: Reply): void {
    const tasks = this.inFlight.get(reply.id);
    if (!tasks) return;
    this.inFlight.delete(reply.id);
    for (const t of tasks) this.sent -= t.data.length;
    if (this.inFlight.size === 0) this.worker?.unref();
    if (reply.error !== undefined || !reply.buffer || !reply.lengths) {
      const error = new Error(`compression failed: ${reply.error ?? "no output"}`);
      for (const t of tasks) t.reject(error);
      return;
    }
    const out = Buffer.from(reply.buffer);
    let offset = 0;
    for (const [i, t] of tasks.entries()) {
      const length = reply.lengths[i] ?? 0;
      t.resolve(out.subarray(offset, offset + length));
      offset += length;
    }
  }

  /** The worker is gone: what it had goes to zlib's own API, and so does everything after. */
  private fail(): void {
    this.broken = true;
    this.worker = undefined;
    for (const [id, tasks] of this.inFlight) {
      this.inFlight.delete(id);
      for (const t of tasks) this.sent -= t.data.length;
      for (const t of tasks) deflateRawAsync(t.data, { level: this.level }).then(t.resolve, t.reject);
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
