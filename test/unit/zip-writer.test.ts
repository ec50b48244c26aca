import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { crc32, deflateRawSync } from "node:zlib";
import JSZip from "jszip";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MODE, ZIP_DATE } from "../../lib/archive.ts";
import { prepareEntry, writeZip, writeZipFile, type ZipInput, zipToBuffer } from "../../lib/zip-writer.ts";
import { pseudoRandomBytes } from "../fixtures/repo.ts";
import { readZip } from "../support/zip.ts";

// jszip compresses with pako; resolve it from jszip's own location
const requireFromJszip = createRequire(createRequire(import.meta.url).resolve("jszip"));
const pako = requireFromJszip("pako") as { deflateRaw(data: Uint8Array, options: { level: number }): Uint8Array };
const pakoDeflate = async (data: Buffer, level: number) => Buffer.from(pako.deflateRaw(data, { level }));

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

/** What jszip 3 (the previous writer) made of the same entries, with the options buildZip used. */
async function jszipBytes(entries: ZipInput[]): Promise<Buffer> {
  const zip = new JSZip();
  for (const e of entries) {
    const data = e.content as Buffer;
    // buildZip handed jszip files as streams and symlink targets as bytes
    const content = e.mode === MODE.symlink ? data : Readable.from([data]);
    zip.file(e.name, content, { binary: true, date: ZIP_DATE, unixPermissions: e.mode, createFolders: false });
  }
  const stream = zip.generateNodeStream({
    type: "nodebuffer",
    compression: "DEFLATE",
    compressionOptions: { level: 6 },
    platform: "UNIX",
    streamFiles: false,
  });
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () => resolve(Buffer.concat(chunks)));
    stream.on("error", reject);
  });
}

describe("the zip writer", () => {
  it("writes the very records jszip wrote: with jszip's compressor the bytes are identical", async () => {
    const ours = await zipToBuffer(inputs, ZIP_DATE, { deflate: pakoDeflate });
    expect(ours.equals(await jszipBytes(inputs))).toBe(true);
  });

  it("produces zips jszip reads back with names, modes and contents intact", async () => {
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
