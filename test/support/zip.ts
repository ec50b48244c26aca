/** Read a zip for assertions: entry names in order, Unix modes from the external attributes, contents. */
import JSZip from "jszip";

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
