/** Read a zip for assertions: entry names in order, Unix modes from the external attributes, contents. */
import JSZip from "jszip";
import { expect } from "vitest";
import { expectedZipEntries, type FixtureCommit } from "../fixtures/repo.ts";

export interface ZipEntry {
  name: string;
  mode: number;
  content: Buffer;
}

export async function readZip(data: Buffer): Promise<ZipEntry[]> {
  const zip = await JSZip.loadAsync(data, { createFolders: false });
  const out: ZipEntry[] = [];
  for (const file of Object.values(zip.files)) {
    out.push({ name: file.name, mode: Number(file.unixPermissions ?? 0), content: await file.async("nodebuffer") });
  }
  return out;
}

/** A captured stdout/stderr pair for CLI tests. */
export function captureIo(isTTY = false) {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: { stdout: { write: (t: string) => out.push(t) }, stderr: { write: (t: string) => err.push(t), isTTY } },
    stdout: () => out.join(""),
    stderr: () => err.join(""),
  };
}

/** Assert that a zip holds exactly the git tree of `folder` at `commit`: names, order, modes and bytes. */
export async function expectZipMatchesTree(zip: Buffer, commit: FixtureCommit, folder: string): Promise<void> {
  const entries = await readZip(zip);
  const expected = expectedZipEntries(commit, folder);
  expect(entries.map((e) => [e.name, e.mode])).toEqual(expected.map((e) => [e.name, e.mode]));
  for (const [i, e] of entries.entries()) {
    expect(e.content.equals(expected[i]?.content ?? Buffer.alloc(0)), `content of ${e.name}`).toBe(true);
  }
}
