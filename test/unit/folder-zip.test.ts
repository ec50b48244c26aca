import { spawnSync } from "node:child_process";
import { mkdir, open, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32, inflateRawSync } from "node:zlib";
import JSZip from "jszip";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ArchiveError, DeflateWorkerStoppedError } from "../../lib/common/errors.ts";
import { type FolderStage, StagingArea } from "../../lib/staging/staging.ts";
import { buildZip, type InflateCrc, MODE, verifyZip, verifyZipEntries, ZIP_DATE } from "../../lib/zip/folder-zip.ts";
import { pseudoRandomBytes } from "../fixtures/repo.ts";
import { readZip, UNZIP } from "../support/zip.ts";

let area: StagingArea;
let stage: FolderStage;

beforeAll(async () => {
  area = await StagingArea.create(
    join(tmpdir(), "ls-archive-test"),
    `run-${process.pid}`,
    { maxFiles: 100, maxBytes: 1 << 20 },
    {
      exclusive: false,
      now: Date.now(),
    },
  );
  stage = await area.stage("layers/x", "x");
  await stage.file("b/z.txt", Buffer.from("zzz"), { executable: false });
  await stage.file("a.sh", Buffer.from("#!/bin/sh\n"), { executable: true });
  await stage.file("layer.json", Buffer.from("{}"), { executable: false });
  await stage.file("b/ünï.txt", Buffer.alloc(0), { executable: false });
  await stage.symlink("b/link", "../a.sh");
});

afterAll(() => area.dispose());

describe("buildZip", () => {
  it("writes sorted entries with Unix modes, symlink targets as content, and no layer.json", async () => {
    const z = await buildZip(stage, join(area.runDir, "x1.zip"));
    const entries = await readZip(await readFile(z.path));
    expect(entries.map((e) => [e.name, e.mode])).toEqual([
      ["a.sh", MODE.executable],
      ["b/link", MODE.symlink],
      ["b/z.txt", MODE.file],
      ["b/ünï.txt", MODE.file],
    ]);
    expect(entries[1]?.content.toString()).toBe("../a.sh");
    expect(z.files).toBe(4);
  });

  it("gives the same bytes every time", async () => {
    const one = await buildZip(stage, join(area.runDir, "x2.zip"));
    const two = await buildZip(stage, join(area.runDir, "x3.zip"));
    expect(one.sha256).toBe(two.sha256);
    expect((await readFile(one.path)).equals(await readFile(two.path))).toBe(true);
  });
});

describe("verifyZip", () => {
  it("accepts a good zip and rejects one whose bytes were damaged", async () => {
    const z = await buildZip(stage, join(area.runDir, "x4.zip"));
    await expect(verifyZip(stage, z.path)).resolves.toBeUndefined();
    const data = await readFile(z.path);
    const damaged = join(area.runDir, "x5.zip");
    const copy = Buffer.from(data);
    const at = copy.indexOf(Buffer.from("b/z.txt")) + 7 + 2; // inside the first file's data
    copy[at] = (copy[at] ?? 0) ^ 0xff;
    await writeFile(damaged, copy);
    await expect(verifyZip(stage, damaged)).rejects.toThrow(ArchiveError);
  });

  it("rejects a zip cut short", async () => {
    const z = await buildZip(stage, join(area.runDir, "x6.zip"));
    const fh = await open(z.path, "r+");
    await fh.truncate(40);
    await fh.close();
    await expect(verifyZip(stage, z.path)).rejects.toThrow(/failed verification/);
  });
});

describe("verifyZipEntries on a zip another writer made", () => {
  /** A zip written by jszip, which checks nothing about its names; each entry holds its own name. */
  async function foreignZip(names: string[], file: string): Promise<string> {
    const zip = new JSZip();
    for (const name of names)
      zip.file(name, name, { date: ZIP_DATE, unixPermissions: MODE.file, createFolders: false });
    await writeFile(join(area.runDir, file), await zip.generateAsync({ type: "nodebuffer", platform: "UNIX" }));
    return join(area.runDir, file);
  }
  const expected = (names: string[]) =>
    names.map((path) => ({
      path,
      kind: "file" as const,
      digest: async () => ({ crc: crc32(Buffer.from(path)) >>> 0, size: Buffer.byteLength(path) }),
    }));

  it("refuses a name that is also another entry's directory, naming both, though every byte checks out", async () => {
    const names = ["python/foo", "python/foo/__init__.py"];
    const file = await foreignZip(names, "clash.zip");
    if (UNZIP) {
      // what the check prevents: unzip cannot extract it
      const into = join(area.runDir, "clash-out");
      await mkdir(into, { recursive: true });
      expect(spawnSync(UNZIP, ["-q", "-o", file, "-d", into]).status).not.toBe(0);
    }
    await expect(verifyZipEntries(expected(names), file, "the test layer")).rejects.toThrow(
      /^the zip of the test layer failed verification: entries "python\/foo" and "python\/foo\/__init__\.py" conflict: /,
    );
  });

  it("accepts names that differ only in case (Lambda's file system tells them apart)", async () => {
    const names = ["README", "readme"];
    const file = await foreignZip(names, "case.zip");
    await expect(verifyZipEntries(expected(names), file, "the test layer")).resolves.toBeUndefined();
  });
});

describe("verifyZipEntries on a zip larger than its read window", () => {
  /** 400 entries (text and random bytes, 3–30 KB), one of 1.5 MiB and one of 5 MiB: about 12 MB of zip. */
  const contents = new Map<string, Buffer>();
  for (let i = 0; i < 400; i++) {
    const name = `pkg/m${String(i).padStart(3, "0")}.${i % 2 ? "bin" : "py"}`;
    const size = 3000 + ((i * 7919) % 27_000);
    contents.set(name, i % 2 ? pseudoRandomBytes(size, i) : Buffer.from(`x = ${i}\n`.repeat(size / 8)));
  }
  contents.set("pkg/wide.bin", pseudoRandomBytes(1536 * 1024, 1001)); // larger than the window, read whole
  contents.set("pkg/zz-huge.bin", pseudoRandomBytes(5 * 1024 * 1024, 1002)); // streamed
  const names = [...contents.keys()].sort();
  const expected = names.map((path) => {
    const data = contents.get(path) as Buffer;
    return { path, kind: "file" as const, digest: async () => ({ crc: crc32(data) >>> 0, size: data.length }) };
  });
  let file = "";

  beforeAll(async () => {
    const zip = new JSZip();
    for (const name of names)
      zip.file(name, contents.get(name) as Buffer, {
        date: ZIP_DATE,
        unixPermissions: MODE.file,
        createFolders: false,
        compression: "DEFLATE",
      });
    file = join(area.runDir, "wide.zip");
    await writeFile(file, await zip.generateAsync({ type: "nodebuffer", platform: "UNIX" }));
  });

  it("checks every entry across many refills of its one window", async () => {
    await expect(verifyZipEntries(expected, file, "the wide layer")).resolves.toBeUndefined();
  });

  it("names the damaged entry when the damage lies windows past the start", async () => {
    const copy = await readFile(file);
    const victim = "pkg/m350.py";
    const at = copy.indexOf(Buffer.from(victim)) + victim.length + 5; // inside its data
    copy[at] = (copy[at] ?? 0) ^ 0xff;
    const damaged = join(area.runDir, "wide-damaged.zip");
    await writeFile(damaged, copy);
    await expect(verifyZipEntries(expected, damaged, "the wide layer")).rejects.toThrow(/"pkg\/m350\.py"/);
  });

  it("reads an entry again from the file when the deflate worker stopped while holding its bytes", async () => {
    let lost = 0;
    // every third inflate is lost with its worker, as when the thread dies mid-batch
    const flaky: InflateCrc = async (data, size) => {
      if (lost++ % 3 === 0) throw new DeflateWorkerStoppedError("the deflate worker stopped");
      return { crc: crc32(inflateRawSync(data)) >>> 0, size };
    };
    await expect(verifyZipEntries(expected, file, "the wide layer", flaky)).resolves.toBeUndefined();
    expect(lost).toBeGreaterThan(300);
    // the bytes read again are checked as strictly: a damaged entry still fails
    const copy = await readFile(file);
    const at = copy.indexOf(Buffer.from("pkg/m000.py")) + "pkg/m000.py".length + 5;
    copy[at] = (copy[at] ?? 0) ^ 0xff;
    const damaged = join(area.runDir, "wide-damaged-2.zip");
    await writeFile(damaged, copy);
    lost = 0; // the damaged entry is the first inflate: lost, then read again and refused
    await expect(verifyZipEntries(expected, damaged, "the wide layer", flaky)).rejects.toThrow(/"pkg\/m000\.py"/);
  });
});
