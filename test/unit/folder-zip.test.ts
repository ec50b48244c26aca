import { spawnSync } from "node:child_process";
import { mkdir, open, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import JSZip from "jszip";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ArchiveError } from "../../lib/common/errors.ts";
import { type FolderStage, StagingArea } from "../../lib/staging/staging.ts";
import { buildZip, MODE, verifyZip, verifyZipEntries, ZIP_DATE } from "../../lib/zip/folder-zip.ts";
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
