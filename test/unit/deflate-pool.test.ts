import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setImmediate as nextTurn } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import { crc32, deflateRawSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { DeflateWorkerStoppedError } from "../../lib/common/errors.ts";
import { DeflatePool, workerModule } from "../../lib/zip/deflate-pool.ts";
import { runBatch } from "../../lib/zip/deflate-worker.ts";
import { pseudoRandomBytes } from "../fixtures/repo.ts";

const text = Buffer.from("def handler(event, context):\n    return {'ok': True}\n".repeat(2000));

describe("the deflate pool", () => {
  it("compresses a burst of entries exactly as zlib's deflateRaw does, each on its own", async () => {
    const pool = new DeflatePool(6);
    const inputs = Array.from({ length: 500 }, (_, i) =>
      i % 2 ? pseudoRandomBytes(1 + ((i * 7919) % 40_000), i) : text.subarray(i, i + 1 + ((i * 131) % 60_000)),
    );
    const out = await Promise.all(inputs.map((d) => pool.deflate(d)));
    for (const [i, d] of inputs.entries())
      expect(out[i]?.equals(deflateRawSync(d, { level: 6 })), `entry ${i}`).toBe(true);
  });

  it("compresses a batch of 12,000 one-byte entries within its worker's capped heap", async () => {
    const pool = new DeflatePool(6);
    const inputs = Array.from({ length: 12_000 }, (_, i) => Buffer.from([i % 251]));
    const out = await Promise.all(inputs.map((d) => pool.deflate(d)));
    // still on the worker: it did not run out of heap and fail over to this thread
    expect(pool.onWorker).toBe(true);
    for (const i of [0, 250, 11_999])
      expect(out[i]?.equals(deflateRawSync(inputs[i] as Buffer, { level: 6 }))).toBe(true);
  });

  it("answers entries that arrive one at a time, and large ones", async () => {
    const pool = new DeflatePool(9);
    for (const d of [text, pseudoRandomBytes(3 * 1024 * 1024, 7), Buffer.from("x")]) {
      expect((await pool.deflate(d)).equals(deflateRawSync(d, { level: 9 }))).toBe(true);
      await nextTurn();
    }
  });

  it("inflates entries for verification and answers only their CRC-32 and size, failing each bad one alone", async () => {
    const pool = new DeflatePool(6);
    const inputs = [text, pseudoRandomBytes(200_000, 3), Buffer.from("y")];
    const good = inputs.map((d) => deflateRawSync(d, { level: 6 }));
    const corrupt = Buffer.from(good[0] as Buffer);
    corrupt.fill(0xff, 10, 40);
    const mixed = pool.deflate(text);
    const [a, b, c, bad, short] = await Promise.allSettled([
      ...inputs.map((d, i) => pool.inflateCrc(good[i] as Buffer, d.length)),
      pool.inflateCrc(corrupt, text.length),
      // announced well below what it inflates to: refused, never cut to size
      pool.inflateCrc(good[0] as Buffer, text.length - 10),
    ]);
    for (const [i, r] of [a, b, c].entries()) {
      expect(r).toEqual({
        status: "fulfilled",
        value: { crc: crc32(inputs[i] as Buffer) >>> 0, size: inputs[i]?.length },
      });
    }
    // corrupt DEFLATE either fails to inflate or inflates to other bytes
    expect(bad?.status === "rejected" || bad?.value.crc !== crc32(text) >>> 0).toBe(true);
    expect(short?.status).toBe("rejected");
    // a deflate in the same batch is not affected
    expect((await mixed).equals(good[0] as Buffer)).toBe(true);
  });

  it("starts one worker on demand and spreads batches over a second only once warmed for it", async () => {
    const inputs = Array.from({ length: 40 }, (_, i) => pseudoRandomBytes(100_000, i));
    const matches = (out: Buffer[]) => out.every((o, i) => o.equals(deflateRawSync(inputs[i] as Buffer, { level: 6 })));
    const pool = new DeflatePool(6, { maxWorkers: 2 });
    expect(matches(await Promise.all(inputs.map((d) => pool.deflate(d))))).toBe(true);
    // a burst far beyond one worker, and still one: a second costs memory a walk does not need
    expect(pool.workers).toBe(1);
    pool.warm(2);
    expect(pool.workers).toBe(2);
    expect(matches(await Promise.all(inputs.map((d) => pool.deflate(d))))).toBe(true);
    const single = new DeflatePool(6, { maxWorkers: 1 });
    single.warm(2);
    expect(single.workers).toBe(1);
  });

  it("lets a process that warmed two workers and gave them nothing exit on its own", () => {
    const script = join(import.meta.dirname, "../fixtures/warm-deflate-pool.ts");
    // the timeout only ends a process that would never exit (as one did): no duration is asserted
    const r = spawnSync(process.execPath, ["--import", "tsx", script], {
      cwd: join(import.meta.dirname, "../.."),
      timeout: 120_000,
    });
    expect({ signal: r.signal, status: r.status, stderr: r.stderr.toString() }).toEqual({
      signal: null,
      status: 0,
      stderr: "",
    });
  });

  it("fails what a stopped worker held, lets the other worker answer its own, and compresses the rest on this thread", async () => {
    const module = pathToFileURL(join(import.meta.dirname, "../fixtures/stopping-deflate-worker.ts"));
    const pool = new DeflatePool(6, { maxWorkers: 2, module });
    pool.warm(2);
    // 300 KB each: every entry is a batch of its own, sent at once to an idle worker or the one holding the
    // fewest bytes: batches 0 and 2 to the first worker, 1 and 3 to the second, which stops on batch 1 (odd)
    const inputs = Array.from({ length: 4 }, (_, i) => pseudoRandomBytes(300_000, 10 + i));
    const settled = await Promise.allSettled(inputs.map((d) => pool.deflate(d)));
    expect(pool.workers).toBe(2);
    for (const i of [0, 2])
      expect(settled[i], `entry ${i}`).toEqual({
        status: "fulfilled",
        value: deflateRawSync(inputs[i] as Buffer, { level: 6 }),
      });
    for (const i of [1, 3]) {
      const r = settled[i];
      expect(r?.status === "rejected" && r.reason, `entry ${i}`).toBeInstanceOf(DeflateWorkerStoppedError);
    }
    expect(pool.onWorker).toBe(false);
    expect((await pool.deflate(text)).equals(deflateRawSync(text, { level: 6 }))).toBe(true);
  });

  it("runs its batches on a worker thread loaded from the type-checked worker module, not from evaluated text", async () => {
    const pool = new DeflatePool(6);
    expect(pool.onWorker).toBe(false);
    const out = await pool.deflate(text);
    expect(out.equals(deflateRawSync(text, { level: 6 }))).toBe(true);
    expect(pool.onWorker).toBe(true);
  });
});

describe("the deflate worker module", () => {
  it("answers a batch with each part deflated or inflated to its CRC-32 and size, and a bad part failing alone", () => {
    const parts = [text, deflateRawSync(text), Buffer.from("not deflate")];
    const input = Buffer.concat(parts);
    const { reply, transfer } = runBatch({
      id: 7,
      buffer: input.buffer.slice(input.byteOffset, input.byteOffset + input.length) as ArrayBuffer,
      lengths: parts.map((p) => p.length),
      ops: [-1, text.length, 5],
      level: 9,
    });
    expect(reply.id).toBe(7);
    expect(transfer).toHaveLength(1);
    const out = Buffer.from(reply.buffer as ArrayBuffer);
    const [deflated = 0, answer = 0, failed = 0] = reply.lengths ?? [];
    expect(out.subarray(0, deflated).equals(deflateRawSync(text, { level: 9 }))).toBe(true);
    expect(out.readUInt32LE(deflated)).toBe(crc32(text) >>> 0);
    expect(out.readUInt32LE(deflated + 4)).toBe(text.length);
    expect(answer).toBe(8);
    expect(failed).toBe(0);
    expect(reply.errors?.[2]).toMatch(/./);
  });
});

describe("finding the worker module", () => {
  it("takes the .ts module beside the sources, and in a bundle the .mjs beside the entry or one folder up from a chunk", async () => {
    expect(workerModule()?.pathname.endsWith("/lib/zip/deflate-worker.ts")).toBe(true);
    const dir = await mkdtemp(join(tmpdir(), "layer-sync-worker-"));
    try {
      await mkdir(join(dir, "chunks"));
      const chunk = pathToFileURL(join(dir, "chunks", "chunk-abc.mjs")).href;
      expect(workerModule(chunk)).toBeUndefined();
      await writeFile(join(dir, "deflate-worker.mjs"), "");
      expect(workerModule(chunk)?.href).toBe(pathToFileURL(join(dir, "deflate-worker.mjs")).href);
      expect(workerModule(pathToFileURL(join(dir, "index.mjs")).href)?.href).toBe(
        pathToFileURL(join(dir, "deflate-worker.mjs")).href,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
