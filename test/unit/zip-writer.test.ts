import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32, deflateRawSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MODE, ZIP_DATE } from "../../lib/zip/folder-zip.ts";
import { conflictingNames } from "../../lib/zip/names.ts";
import { prepareEntry } from "../../lib/zip/prepare.ts";
import { writeZip, writeZipFile, type ZipInput, zipToBuffer } from "../../lib/zip/writer.ts";
import { pseudoRandomBytes } from "../fixtures/repo.ts";
import { readZip } from "../support/zip.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "ls-zip-writer-"));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const text = Buffer.from("def handler(event):\n    return event\n".repeat(4000));
const inputs: ZipInput[] = [
  { name: "a.sh", mode: MODE.executable, size: 10, content: Buffer.from("#!/bin/sh\n") },
  { name: "b/empty.txt", mode: MODE.file, size: 0, content: Buffer.alloc(0) },
  { name: "b/link", mode: MODE.symlink, size: 7, content: Buffer.from("../a.sh") },
  { name: "b/text.py", mode: MODE.file, size: text.length, content: text },
  { name: "b/ünï/名前.bin", mode: MODE.file, size: 70_000, content: pseudoRandomBytes(70_000, 5) },
];

describe("the zip writer", () => {
  it("writes an empty file as a stored entry (method 0, sizes 0, version needed 10), never as empty DEFLATE", async () => {
    const zip = await zipToBuffer([inputs[1] as ZipInput], ZIP_DATE);
    expect(zip.readUInt16LE(4)).toBe(10); // version needed
    expect(zip.readUInt16LE(6)).toBe(0); // flags
    expect(zip.readUInt16LE(8)).toBe(0); // method: stored
    expect([zip.readUInt32LE(14), zip.readUInt32LE(18), zip.readUInt32LE(22)]).toEqual([0, 0, 0]); // CRC, sizes
  });

  it("lays out every record field by field as APPNOTE 4.3 says, with no data descriptor or extra field", async () => {
    const zip = await zipToBuffer([inputs[3] as ZipInput, inputs[4] as ZipInput], ZIP_DATE);
    const name = Buffer.from("b/text.py");
    // local header of b/text.py
    expect(zip.readUInt32LE(0)).toBe(0x04034b50);
    expect(zip.readUInt16LE(4)).toBe(20); // version needed: DEFLATE
    expect(zip.readUInt16LE(6)).toBe(0); // flags: no bit 3 (data descriptor), ASCII name
    expect(zip.readUInt16LE(8)).toBe(8); // method: DEFLATE
    expect([zip.readUInt16LE(10), zip.readUInt16LE(12)]).toEqual([0, 0x21]); // 1980-01-01 00:00:00 in DOS form
    expect(zip.readUInt32LE(14)).toBe(crc32(text) >>> 0);
    const compressed = zip.readUInt32LE(18);
    expect(zip.readUInt32LE(22)).toBe(text.length);
    expect([zip.readUInt16LE(26), zip.readUInt16LE(28)]).toEqual([name.length, 0]);
    expect(zip.subarray(30, 30 + name.length).equals(name)).toBe(true);
    // the next local header follows the compressed bytes directly: no data descriptor
    const second = 30 + name.length + compressed;
    expect(zip.readUInt32LE(second)).toBe(0x04034b50);
    expect(zip.readUInt16LE(second + 6)).toBe(0x0800); // UTF-8 name
    expect(zip.readUInt16LE(second + 28)).toBe(0); // no Unicode Path extra field
    // central header of b/text.py
    const eocd = zip.length - 22;
    const cd = zip.readUInt32LE(eocd + 16);
    expect(zip.readUInt32LE(cd)).toBe(0x02014b50);
    expect(zip.readUInt16LE(cd + 4)).toBe(0x031e); // made by UNIX, spec 3.0
    expect(zip.subarray(cd + 6, cd + 32).equals(zip.subarray(4, 30))).toBe(true); // same fields as the local header
    expect([zip.readUInt16LE(cd + 32), zip.readUInt16LE(cd + 34), zip.readUInt16LE(cd + 36)]).toEqual([0, 0, 0]);
    expect(zip.readUInt32LE(cd + 38)).toBe(0o100644 * 0x10000); // mode in the high 16 bits, no MS-DOS bits
    expect(zip.readUInt32LE(cd + 42)).toBe(0);
    // end of central directory: one disk, two entries, no comment
    expect([zip.readUInt16LE(eocd + 8), zip.readUInt16LE(eocd + 10), zip.readUInt16LE(eocd + 20)]).toEqual([2, 2, 0]);
  });

  it("produces zips yauzl, unzip -t and Python's zipfile read back with names, modes and contents intact", async () => {
    const entries = await readZip(await zipToBuffer(inputs, ZIP_DATE));
    expect(entries.map((e) => [e.name, e.mode])).toEqual(inputs.map((i) => [i.name, i.mode]));
    for (const [i, e] of entries.entries()) expect(e.content.equals(inputs[i]?.content as Buffer), e.name).toBe(true);
  });

  it("gives the same bytes whether a large entry is streamed from disk or compressed in one piece", async () => {
    const big = join(dir, "big.bin");
    const content = Buffer.concat([pseudoRandomBytes(3_000_000, 9), text, pseudoRandomBytes(1_000_001, 10)]);
    await writeFile(big, content);
    const onDisk: ZipInput[] = [
      ...inputs,
      { name: "c/big.bin", mode: MODE.file, size: content.length, content: { path: big } },
    ];
    const inMemory: ZipInput[] = [...inputs, { name: "c/big.bin", mode: MODE.file, size: content.length, content }];
    const streamed = await writeZipFile(onDisk, join(dir, "streamed.zip"), ZIP_DATE, { streamAbove: 64 * 1024 });
    const whole = await zipToBuffer(inMemory, ZIP_DATE);
    const file = await readFile(join(dir, "streamed.zip"));
    expect(file.equals(whole)).toBe(true);
    expect(streamed.bytes).toBe(file.length);
    expect(streamed.sha256).toBe(createHash("sha256").update(file).digest("hex"));
  });

  it("reports the SHA-256 of what it wrote when nothing was streamed", async () => {
    const result = await writeZipFile(inputs, join(dir, "small.zip"), ZIP_DATE);
    const file = await readFile(join(dir, "small.zip"));
    expect(result.sha256).toBe(createHash("sha256").update(file).digest("hex"));
    expect(result.entries).toBe(inputs.length);
  });

  it("compresses entries prepared side by side exactly as zlib's one-shot deflateRaw does", async () => {
    const contents = Array.from({ length: 300 }, (_, i) =>
      i % 3 === 0 ? text.subarray(0, (i * 997) % text.length) : pseudoRandomBytes((i * 7919) % 70_000, i),
    );
    const prepared = await Promise.all(contents.map((c) => prepareEntry(c)));
    for (const [i, p] of prepared.entries()) {
      const c = contents[i] as Buffer;
      expect(p.size).toBe(c.length);
      expect(p.crc).toBe(crc32(c) >>> 0);
      expect(p.data.equals(c.length === 0 ? Buffer.alloc(0) : deflateRawSync(c, { level: 6 })), `entry ${i}`).toBe(
        true,
      );
    }
  });

  it("gives byte-identical zips run after run, equal to compressing each entry on its own", async () => {
    // source-like text (a small vocabulary in pseudo-random order) and random bytes, as in real layers
    const words = "def return import self value class for in range print if else None True False".split(" ");
    const sourceLike = (length: number, seed: number) => {
      const r = pseudoRandomBytes(length, seed);
      let out = "";
      for (let i = 0; out.length < length; i++)
        out += `${words[(r[i] ?? 0) % words.length]}${(r[i] ?? 0) % 7 ? " " : "\n"}`;
      return Buffer.from(out.slice(0, length));
    };
    const many: ZipInput[] = Array.from({ length: 400 }, (_, i) => {
      const size = 1000 + ((i * 7919) % 30_000);
      const content = i % 2 === 0 ? sourceLike(size, i + 1) : pseudoRandomBytes(size, i + 1);
      return { name: `d${i % 7}/f${String(i).padStart(3, "0")}`, mode: MODE.file, size, content };
    });
    const reference = await zipToBuffer(many, ZIP_DATE, { deflate: async (d, level) => deflateRawSync(d, { level }) });
    for (let run = 0; run < 3; run++) {
      expect((await zipToBuffer(many, ZIP_DATE)).equals(reference), `run ${run}`).toBe(true);
    }
  });

  it("refuses names unzip cannot extract side by side, naming both, and writes no file", async () => {
    const entry = (name: string): ZipInput => ({ name, mode: MODE.file, size: 1, content: Buffer.from("x") });
    const cases: [string[], RegExp][] = [
      [["nodejs", "nodejs/node_modules/a.js"], /^entries "nodejs" and "nodejs\/node_modules\/a\.js" conflict: /],
      [["a/b", "a/b/c/d"], /^entries "a\/b" and "a\/b\/c\/d" conflict: /],
      [["same.txt", "same.txt"], /^entry "same\.txt" appears twice; /],
    ];
    for (const [names, message] of cases) {
      const out = join(dir, `conflict-${names.length}-${names[0]?.replace(/\//g, "_")}.zip`);
      await expect(writeZipFile(names.map(entry), out, ZIP_DATE)).rejects.toThrow(message);
      await expect(readFile(out)).rejects.toThrow(/ENOENT/);
      await expect(zipToBuffer(names.map(entry), ZIP_DATE)).rejects.toThrow(message);
    }
    expect(conflictingNames(["A", "a", "a.b", "a-b/c", "ab"])).toBeUndefined();
  });

  it("refuses more entries than a zip without ZIP64 can hold", async () => {
    const many: ZipInput[] = Array.from({ length: 65_536 }, (_, i) => ({
      name: `f${i}`,
      mode: MODE.file,
      size: 0,
      content: Buffer.alloc(0),
    }));
    await expect(writeZip(many, { append: async () => undefined }, ZIP_DATE)).rejects.toThrow(/ZIP64/);
  });
});
