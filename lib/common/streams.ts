/** Reading a whole stream into memory: the one stream-to-buffer helper of lib/. */
import { LimitExceededError } from "./errors.ts";

export interface ReadAllOptions {
  /** The most bytes to keep; no limit when absent. */
  limit?: number;
  /**
   * Past `limit`: keep the first `limit` bytes and drain the rest (`true`, for bodies only shown in messages),
   * or fail with a `LimitExceededError` (`false`, the default).
   */
  truncate?: boolean;
}

function asBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (typeof chunk === "string") return Buffer.from(chunk, "utf8");
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw new TypeError(`a byte stream yielded a ${typeof chunk}`);
}

/** Every byte of `body` (up to `limit`, see `ReadAllOptions`). */
export async function readAll(body: AsyncIterable<unknown>, options: ReadAllOptions = {}): Promise<Buffer> {
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const b = asBuffer(chunk);
    if (size + b.length > limit) {
      if (!options.truncate) throw new LimitExceededError(`body larger than ${limit} bytes`);
      if (size < limit) chunks.push(b.subarray(0, limit - size));
    } else {
      chunks.push(b);
    }
    size += b.length;
  }
  return Buffer.concat(chunks);
}

/** `readAll`, decoded as UTF-8. */
export async function readAllText(body: AsyncIterable<unknown>, options: ReadAllOptions = {}): Promise<string> {
  return (await readAll(body, options)).toString("utf8");
}
