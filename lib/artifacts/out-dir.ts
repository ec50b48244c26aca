/**
 * `--out DIR`: the zips a local run writes instead of uploading. A package whose newest zip in DIR already
 * holds the same bytes is `skipped: unchanged`, like an upload whose content equals the current artifact's,
 * so repeated runs do not pile up timestamped copies.
 */

import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";

/** The newest zip of `pkg` under `outDir` (its key and SHA-256), or undefined when there is none. */
export async function newestOutZip(
  outDir: string,
  prefix: string,
  pkg: string,
): Promise<{ key: string; sha256: string } | undefined> {
  const folder = `${prefix}${pkg}`;
  let names: string[];
  try {
    names = await readdir(join(outDir, ...folder.split("/")));
  } catch {
    return undefined;
  }
  // keys carry a UTC timestamp (YYYYMMDDTHHMMSSZ) right after the package name: by name is by time
  const escaped = pkg.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const pattern = new RegExp(`^${escaped}-\\d{8}T\\d{6}Z[-\\w]*\\.zip$`);
  const newest = names
    .filter((n) => pattern.test(n))
    .sort()
    .at(-1);
  if (!newest) return undefined;
  const hash = createHash("sha256");
  await pipeline(createReadStream(join(outDir, ...folder.split("/"), newest)), hash);
  return { key: `${folder}/${newest}`, sha256: hash.digest("hex") };
}
