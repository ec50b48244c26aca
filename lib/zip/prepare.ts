/**
 * Entries compressed ahead of the zip writer, while the rest of a folder is still arriving (the staging
 * area's pack file, `staging/pack-store.ts`): the same raw DEFLATE bytes the writer would make.
 */
import { promisify } from "node:util";
import { crc32, deflateRaw } from "node:zlib";
import { deflatePool } from "./deflate-pool.ts";
import { type PreparedEntry, ZIP_LEVEL } from "./writer.ts";

const deflateRawAsync = promisify(deflateRaw);

/**
 * Compress one entry's bytes the way the writer does (raw DEFLATE at `level`), so a caller can do it while
 * the content is still arriving. The writer's output is the same either way. By default on the deflate
 * worker (`deflate-pool.ts`: cheap per entry, for many small ones); with `threadPool`, on libuv's thread
 * pool (one native call: for a large entry, so that it compresses beside the worker instead of queueing in
 * front of the small entries behind it). Both give `deflateRaw()`'s bytes. On the thread pool `data` is
 * read while the promise is pending (keep it unchanged until then); on the worker it is copied before this
 * returns its promise. With `give`, the caller gives `data` up (it may be detached: see `DeflatePool.deflate`).
 */
export async function prepareEntry(
  data: Buffer,
  level = ZIP_LEVEL,
  options: { threadPool?: boolean; give?: boolean } = {},
): Promise<PreparedEntry> {
  const crc = crc32(data) >>> 0;
  const size = data.length;
  // empty content is stored (no compressed bytes), see `commonFields` in writer.ts
  if (size === 0) return { crc, size: 0, data };
  const compressed = options.threadPool
    ? // output space for all of it in one piece: one trip back to the main thread, not one per 16 KiB
      await deflateRawAsync(data, { level, chunkSize: oneChunk(size) })
    : // given up by the caller: the worker may take the buffer instead of a copy of it
      await deflatePool(level).deflate(data, { give: options.give === true });
  return { crc, size, data: compressed };
}

/** An output chunk size that holds the raw DEFLATE of `size` bytes, incompressible ones included. */
function oneChunk(size: number): number {
  // stored blocks add 5 bytes per 64 KiB at worst (RFC 1951 3.2.4)
  return Math.max(16 * 1024, size + (size >>> 10) + 1024);
}
