import { access, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { crc32, deflateRawSync } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import { ArchiveError, LimitExceededError } from "../../lib/common/errors.ts";
import { type FolderStage, PACKED_FILE_MAX, StagingArea } from "../../lib/staging/staging.ts";
import { buildZip, verifyZip } from "../../lib/zip/folder-zip.ts";
import type { PreparedEntry } from "../../lib/zip/writer.ts";
import { pseudoRandomBytes } from "../fixtures/repo.ts";
import { readZip } from "../support/zip.ts";

const work = join(tmpdir(), `ls-pack-${process.pid}`);
afterAll(() => rm(work, { recursive: true, force: true }));

const limits = { maxFiles: 100, maxBytes: 80 * 1024 * 1024 };
/** Just over the packing size, so it streams through a deflate; mostly text, so the suite stays fast. */
const big = Buffer.concat([
  pseudoRandomBytes(256 * 1024, 3),
  Buffer.alloc(PACKED_FILE_MAX + 1 - 256 * 1024, "import os, sys  # a line of a large module\n"),
]);
/** Packed, but compressed on the thread pool rather than the deflate worker (over 1 MiB). */
const middle = Buffer.concat([
  Buffer.from("def f():\n    return 1\n".repeat(60_000)),
  pseudoRandomBytes(512 * 1024, 4),
]);
const text = Buffer.from("import os\n".repeat(500));

async function fill(stage: FolderStage): Promise<void> {
  await stage.file("a/text.py", text, { executable: false });
  await stage.file("a/stream.bin", Readable.from([pseudoRandomBytes(3000, 1), pseudoRandomBytes(5000, 2)]), {
    executable: false,
    size: 8000,
  });
  await stage.file("bin/run", Buffer.from("#!/bin/sh\necho run\n"), { executable: true });
  await stage.file("empty", Buffer.alloc(0), { executable: false });
  await stage.file("big.bin", big, { executable: false });
  await stage.file("a/middle.py", middle, { executable: false });
  await stage.file("layer.json", Buffer.from('{"license":"MIT"}'), { executable: false });
  await stage.symlink("bin/current", "run");
}

async function area(runId: string, packSmallFiles: boolean, maxFiles = limits.maxFiles): Promise<StagingArea> {
  return StagingArea.create(
    work,
    runId,
    { ...limits, maxFiles },
    { exclusive: false, now: Date.now(), packSmallFiles },
  );
}

describe("a staging area that packs small files", () => {
  it("keeps small files out of the folder on disk but reads them back, with their checksums", async () => {
    const packing = await area("read", true);
    const stage = await packing.stage("layers/x", "x");
    await fill(stage);
    await expect(access(stage.absolute("a/text.py"))).rejects.toThrow();
    expect((await stage.read("a/text.py")).equals(text)).toBe(true);
    // a file of a few MiB is packed too (compressed on the thread pool): the same bytes as the worker's
    await expect(access(stage.absolute("a/middle.py"))).rejects.toThrow();
    expect((await stage.read("a/middle.py")).equals(middle)).toBe(true);
    const loaded = await (stage.prepared("a/middle.py") as () => Promise<PreparedEntry>)();
    expect(loaded.data.equals(deflateRawSync(middle, { level: 6 }))).toBe(true);
    expect(await stage.checksum("a/middle.py")).toEqual({ crc: crc32(middle) >>> 0, size: middle.length });
    expect((await stage.read("empty")).length).toBe(0);
    expect((await stage.read("layer.json")).toString()).toBe('{"license":"MIT"}');
    expect(await stage.checksum("a/text.py")).toEqual({ crc: expect.any(Number), size: text.length });
    // a file over the packing size is compressed for the zip as it streams in: the disk holds its DEFLATE bytes
    expect((await readFile(stage.absolute("big.bin"))).equals(deflateRawSync(big, { level: 6 }))).toBe(true);
    expect((await stage.read("big.bin")).equals(big)).toBe(true);
    // its checksum is the one taken as its bytes streamed in
    expect(await stage.checksum("big.bin")).toEqual({ crc: crc32(big) >>> 0, size: big.length });
    expect(stage.list().map((e) => [e.path, e.kind, e.size])).toEqual([
      ["a/middle.py", "file", middle.length],
      ["a/stream.bin", "file", 8000],
      ["a/text.py", "file", text.length],
      ["big.bin", "file", big.length],
      ["bin/current", "symlink", 3],
      ["bin/run", "executable", 19],
      ["empty", "file", 0],
      ["layer.json", "file", 17],
    ]);
    await packing.dispose();
  });

  it("builds the very zip an unpacked stage builds, and it verifies", async () => {
    const packing = await area("zip-packed", true);
    const plain = await area("zip-plain", false);
    const packed = await packing.stage("layers/x", "x");
    const unpacked = await plain.stage("layers/x", "x");
    await fill(packed);
    await fill(unpacked);
    const a = await buildZip(packed, packing.zipPath("x"));
    const b = await buildZip(unpacked, plain.zipPath("x"));
    expect(a.sha256).toBe(b.sha256);
    expect((await readFile(a.path)).equals(await readFile(b.path))).toBe(true);
    // yauzl, unzip -t and zipfile read back exactly what was staged
    const entries = await readZip(await readFile(a.path));
    const files = new Map(entries.filter((e) => !e.name.endsWith("/")).map((e) => [e.name, e]));
    expect([...files.keys()].sort()).toEqual(
      ["a/middle.py", "a/stream.bin", "a/text.py", "big.bin", "bin/current", "bin/run", "empty"].sort(), // layer.json is metadata, not layer content
    );
    expect(files.get("a/text.py")?.content.equals(text)).toBe(true);
    expect(files.get("big.bin")?.content.equals(big)).toBe(true);
    expect(files.get("a/middle.py")?.content.equals(middle)).toBe(true);
    expect(
      files
        .get("a/stream.bin")
        ?.content.equals(Buffer.concat([pseudoRandomBytes(3000, 1), pseudoRandomBytes(5000, 2)])),
    ).toBe(true);
    expect(files.get("bin/current")?.content.toString()).toBe("run");
    expect((files.get("bin/current")?.mode ?? 0) & 0o170000).toBe(0o120000);
    expect((files.get("bin/run")?.mode ?? 0) & 0o111).not.toBe(0);
    await expect(verifyZip(packed, a.path)).resolves.toBeUndefined();
    await expect(verifyZip(unpacked, b.path)).resolves.toBeUndefined();
    await packing.dispose();
    await plain.dispose();
  });

  it("builds a correct zip for a source that reuses one buffer for every file it passes to file()", async () => {
    const packing = await area("reuse", true);
    const stage = await packing.stage("layers/x", "x");
    // small files (copied into the deflate worker's batches) and large ones (which a worker could take over)
    const sizes = [8 * 1024, 8 * 1024, 128 * 1024, 128 * 1024, 300 * 1024];
    const scratch = Buffer.alloc(Math.max(...sizes));
    const expected = new Map<string, Buffer>();
    for (const [i, size] of sizes.entries()) {
      const content = pseudoRandomBytes(size, 100 + i);
      content.copy(scratch);
      await stage.file(`f${i}.bin`, scratch.subarray(0, size), { executable: false });
      expected.set(`f${i}.bin`, content);
      // what a source that owns its buffer may do the moment file() returns: fill it with the next file
      scratch.fill(0xee);
    }
    const wholeScratch = Buffer.alloc(128 * 1024, 7);
    await stage.file("whole.bin", wholeScratch, { executable: false });
    expect(wholeScratch.length).toBe(128 * 1024); // still the source's, not moved away
    wholeScratch.fill(9);
    expected.set("whole.bin", Buffer.alloc(128 * 1024, 7));
    const zip = await buildZip(stage, packing.zipPath("x"));
    const entries = await readZip(await readFile(zip.path));
    for (const [name, content] of expected) {
      expect(entries.find((e) => e.name === name)?.content.equals(content), name).toBe(true);
    }
    await expect(verifyZip(stage, zip.path)).resolves.toBeUndefined();
    await packing.dispose();
  });

  it("hands back every packed file intact, whatever the order and concurrency of the reads", async () => {
    // deliveries under way count against the file limit too, so the limit must hold all 300
    const packing = await area("many", true, 300);
    const stage = await packing.stage("layers/x", "x");
    const contents = Array.from({ length: 300 }, (_, i) => pseudoRandomBytes(500 + ((i * 7919) % 20_000), i + 1));
    await Promise.all(contents.map((c, i) => stage.file(`f${i}`, c, { executable: false })));
    const order = contents.map((_, i) => i).sort((a, b) => ((a * 37) % 101) - ((b * 37) % 101));
    const loaded = await Promise.all(order.map((i) => (stage.prepared(`f${i}`) as () => Promise<PreparedEntry>)()));
    for (const [k, i] of order.entries()) {
      const p = loaded[k] as PreparedEntry;
      expect(p.data.equals(deflateRawSync(contents[i] as Buffer, { level: 6 })), `f${i}`).toBe(true);
      expect((await stage.read(`f${i}`)).equals(contents[i] as Buffer), `f${i}`).toBe(true);
    }
    await packing.dispose();
  });

  it("rejects a zip whose entry no longer holds the packed bytes", async () => {
    const packing = await area("damaged", true);
    const stage = await packing.stage("layers/x", "x");
    await fill(stage);
    const zip = await buildZip(stage, packing.zipPath("x"));
    const data = await readFile(zip.path);
    const at = data.indexOf(Buffer.from("a/text.py")) + "a/text.py".length + 4; // inside its compressed data
    data[at] = (data[at] ?? 0) ^ 0xff;
    await writeFile(zip.path, data);
    await expect(verifyZip(stage, zip.path)).rejects.toThrow(ArchiveError);
    await packing.dispose();
  });

  it("keeps a small pack in memory and writes it to its file once it outgrows 4 MiB, every file intact", async () => {
    const packing = await area("spill", true);
    const stage = await packing.stage("layers/x", "x");
    const files = Array.from({ length: 6 }, (_, i) => pseudoRandomBytes(900 * 1024, 50 + i));
    const settled = async () => {
      for (const [i] of files.entries()) if (stage.has(`f${i}`)) await stage.checksum(`f${i}`);
    };
    // a Buffer body is handed over (the stage may move it to the worker): give it copies
    for (const [i, f] of files.slice(0, 4).entries()) await stage.file(`f${i}`, Buffer.from(f), { executable: false });
    await settled();
    // 3.5 MiB of incompressible bytes: nothing on disk yet
    await expect(access(`${stage.dir}.packed`)).rejects.toThrow();
    expect(stage.diskBytes).toBe(0);
    for (const [i, f] of files.slice(4).entries()) await stage.file(`f${i + 4}`, Buffer.from(f), { executable: false });
    await settled();
    await stage.read("f0"); // reads wait for the writes
    await expect(access(`${stage.dir}.packed`)).resolves.toBeUndefined();
    expect(stage.diskBytes).toBeGreaterThan(files.length * 900 * 1024);
    expect(packing.usedBytes).toBe(stage.diskBytes);
    for (const [i, f] of files.entries()) expect((await stage.read(`f${i}`)).equals(f), `f${i}`).toBe(true);
    await packing.release(stage);
    expect(packing.usedBytes).toBe(0);
    await packing.dispose();
  });

  it("still enforces the byte limit on packed files", async () => {
    const packing = await StagingArea.create(
      work,
      "limit",
      { maxFiles: 10, maxBytes: 100 },
      {
        exclusive: false,
        now: Date.now(),
        packSmallFiles: true,
      },
    );
    const stage = await packing.stage("layers/x", "x");
    await stage.file("a", Buffer.alloc(60), { executable: false });
    await expect(stage.file("b", Buffer.alloc(60), { executable: false })).rejects.toThrow(LimitExceededError);
    await expect(
      stage.file("c", Readable.from([Buffer.alloc(30), Buffer.alloc(30)]), { executable: false, size: 30 }),
    ).rejects.toThrow(/over 100 bytes/);
    await packing.dispose();
  });
});
