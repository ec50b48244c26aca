/**
 * The deflate pool's worker thread (`deflate-pool.ts` starts it; bundles ship it as `deflate-worker.mjs`).
 *
 * A batch is one buffer of parts, each with its operation: `-1` deflates the part at the batch's level; a
 * size `n ≥ 0` inflates it (expecting `n` bytes; a larger output is an error) and answers with its CRC-32 and
 * size in 8 bytes, so a verification's inflated bytes never reach the main thread. The answer is one buffer,
 * transferred back.
 *
 * This file imports only Node built-ins and uses only erasable TypeScript, so Node runs it as it is from the
 * sources (type stripping) and esbuild bundles it as its own entry.
 */
import { parentPort, workerData } from "node:worker_threads";
import { crc32, deflateRawSync, inflateRawSync } from "node:zlib";

/** One batch from the pool. */
export interface WorkerRequest {
  id: number;
  buffer: ArrayBuffer;
  lengths: number[];
  /** Per part: -1 to deflate, or the inflated size to expect. */
  ops: number[];
  level: number;
}

/** The answer to one batch: the parts' outputs back to back, or why the whole batch failed. */
export interface WorkerReply {
  id: number;
  buffer?: ArrayBuffer;
  lengths?: number[];
  /** Per part: why it failed (inflating only). */
  errors?: (string | null | undefined)[];
  error?: string;
}

const message = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** CRC-32 and size of `data` inflated, in 8 bytes (little-endian), failing past `expected` bytes. */
export function inflateAnswer(data: Buffer, expected: number): Buffer {
  const out = inflateRawSync(data, { chunkSize: Math.max(64, expected + 1), maxOutputLength: expected + 1 });
  const answer = Buffer.alloc(8);
  answer.writeUInt32LE(crc32(out) >>> 0, 0);
  answer.writeUInt32LE(out.length, 4);
  return answer;
}

/** Runs one batch (pure: the worker's loop and the tests call it). */
export function runBatch(request: WorkerRequest): { reply: WorkerReply; transfer: ArrayBuffer[] } {
  try {
    const input = Buffer.from(request.buffer);
    const parts: Buffer[] = [];
    const errors: (string | undefined)[] = [];
    let total = 0;
    let offset = 0;
    for (const [i, length] of request.lengths.entries()) {
      const data = input.subarray(offset, offset + length);
      offset += length;
      const op = request.ops[i] ?? -1;
      let part: Buffer;
      if (op < 0) part = deflateRawSync(data, { level: request.level });
      else {
        try {
          part = inflateAnswer(data, op);
        } catch (error) {
          errors[i] = message(error);
          part = Buffer.alloc(0);
        }
      }
      parts.push(part);
      total += part.length;
    }
    const out = Buffer.allocUnsafeSlow(total);
    let at = 0;
    for (const part of parts) at += part.copy(out, at);
    const buffer = out.buffer as ArrayBuffer;
    return { reply: { id: request.id, buffer, lengths: parts.map((p) => p.length), errors }, transfer: [buffer] };
  } catch (error) {
    return { reply: { id: request.id, error: message(error) }, transfer: [] };
  }
}

/** The `workerData` the pool starts this module with; anywhere else (imported for `inflateAnswer`) it stays idle. */
export const WORKER_ROLE = "layer-sync-deflate";

if (parentPort && workerData === WORKER_ROLE) {
  const port = parentPort;
  port.on("message", (request: WorkerRequest) => {
    const { reply, transfer } = runBatch(request);
    port.postMessage(reply, transfer);
  });
}
