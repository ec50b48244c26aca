/**
 * Reads a zip's central directory (names, modes, CRC-32, sizes) so the bench can compare the entry sets
 * of zips produced by different runs without trusting any of the writers.
 */
import { open } from "node:fs/promises";

export interface ZipEntryInfo {
  name: string;
  mode: number;
  crc: number;
  size: number;
}

export async function readZipEntries(path: string): Promise<ZipEntryInfo[]> {
  const fh = await open(path, "r");
  try {
    const { size } = await fh.stat();
    const tailLength = Math.min(size, 22 + 0xffff);
    const tail = Buffer.alloc(tailLength);
    await fh.read(tail, 0, tailLength, size - tailLength);
    const eocd = tail.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
    if (eocd < 0) throw new Error(`${path}: no end-of-central-directory record`);
    const count = tail.readUInt16LE(eocd + 10);
    const cdSize = tail.readUInt32LE(eocd + 12);
    const cdOffset = tail.readUInt32LE(eocd + 16);
    const cd = Buffer.alloc(cdSize);
    await fh.read(cd, 0, cdSize, cdOffset);
    const out: ZipEntryInfo[] = [];
    let p = 0;
    for (let i = 0; i < count; i++) {
      if (cd.readUInt32LE(p) !== 0x02014b50) throw new Error(`${path}: bad central directory header ${i}`);
      const nameLength = cd.readUInt16LE(p + 28);
      const extraLength = cd.readUInt16LE(p + 30);
      const commentLength = cd.readUInt16LE(p + 32);
      out.push({
        crc: cd.readUInt32LE(p + 16),
        size: cd.readUInt32LE(p + 24),
        mode: cd.readUInt32LE(p + 38) >>> 16,
        name: cd.subarray(p + 46, p + 46 + nameLength).toString("utf8"),
      });
      p += 46 + nameLength + extraLength + commentLength;
    }
    return out;
  } finally {
    await fh.close();
  }
}

/** One line per entry, sorted: `name mode crc size`. Two zips with equal keys hold the same entries. */
export function entryKeys(entries: readonly ZipEntryInfo[]): string[] {
  return entries.map((e) => `${e.name} ${e.mode.toString(8)} ${e.crc.toString(16)} ${e.size}`).sort();
}

/** Differences between two entry sets (at most `limit` lines), empty when they are equal. */
export function compareEntries(a: readonly ZipEntryInfo[], b: readonly ZipEntryInfo[], limit = 5): string[] {
  const ka = new Set(entryKeys(a));
  const kb = new Set(entryKeys(b));
  const out: string[] = [];
  for (const k of ka) if (!kb.has(k) && out.length < limit) out.push(`only in first: ${k}`);
  for (const k of kb) if (!ka.has(k) && out.length < limit) out.push(`only in second: ${k}`);
  return out;
}
