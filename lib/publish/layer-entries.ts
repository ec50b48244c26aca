/**
 * What a published layer holds, read at publish time from the artifact in S3 without downloading it: the
 * zip's end-of-central-directory record and central directory come from two ranged GETs (Zip64 records are
 * followed), and give every entry name. From the names, the smoke test's default modules: the layer's
 * top-level Python packages and modules (under `python/` or `python/lib/python3.X/site-packages/`) or its
 * `nodejs/node_modules` packages (also `nodejs/nodeNN/node_modules`).
 */
import { GetObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { attempt } from "../common/aws-errors.ts";
import { PublishError } from "../common/errors.ts";
import type { SmokeFamily } from "./smoke-handlers.ts";

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
/** The EOCD record (22 bytes) plus the longest comment, plus room for the Zip64 locator. */
const TAIL = 22 + 0xffff + 20;
/** A central directory larger than this is not read (a layer's 250 MB allow ~ millions of names anyway). */
const MAX_DIRECTORY = 64 * 1024 * 1024;

async function range(s3: S3Client, bucket: string, key: string, from: number, to: number): Promise<Buffer> {
  const res = await attempt(
    PublishError,
    { call: "s3:GetObject", resource: `s3://${bucket}/${key} (bytes ${from}-${to})` },
    () => s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=${from}-${to}` })),
  );
  const bytes = await res.Body?.transformToByteArray();
  return Buffer.from(bytes ?? []);
}

/** Every entry name of the zip at s3://bucket/key (`size` bytes long). */
export async function zipEntryNames(s3: S3Client, bucket: string, key: string, size: number): Promise<string[]> {
  const where = `s3://${bucket}/${key}`;
  const start = Math.max(0, size - TAIL);
  const tail = await range(s3, bucket, key, start, size - 1);
  let at = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === EOCD) {
      at = i;
      break;
    }
  }
  if (at < 0) throw new PublishError(`${where} is not a zip (no end of central directory); run the sync again`);
  let count = tail.readUInt16LE(at + 10);
  let dirSize = tail.readUInt32LE(at + 12);
  let dirOffset = tail.readUInt32LE(at + 16);
  const locator = at - 20;
  if (locator >= 0 && tail.readUInt32LE(locator) === ZIP64_LOCATOR) {
    const recordOffset = Number(tail.readBigUInt64LE(locator + 8));
    const record =
      recordOffset >= start
        ? tail.subarray(recordOffset - start)
        : await range(s3, bucket, key, recordOffset, recordOffset + 55);
    if (record.readUInt32LE(0) === ZIP64_EOCD) {
      count = Number(record.readBigUInt64LE(32));
      dirSize = Number(record.readBigUInt64LE(40));
      dirOffset = Number(record.readBigUInt64LE(48));
    }
  }
  if (dirSize > MAX_DIRECTORY)
    throw new PublishError(`${where} has a central directory of ${dirSize} bytes; too large to list`);
  const dir =
    dirOffset >= start && dirOffset + dirSize <= size
      ? tail.subarray(dirOffset - start, dirOffset - start + dirSize)
      : dirSize === 0
        ? Buffer.alloc(0)
        : await range(s3, bucket, key, dirOffset, dirOffset + dirSize - 1);
  const names: string[] = [];
  let p = 0;
  while (p + 46 <= dir.length && names.length < count) {
    if (dir.readUInt32LE(p) !== CENTRAL) break;
    const nameLength = dir.readUInt16LE(p + 28);
    const extraLength = dir.readUInt16LE(p + 30);
    const commentLength = dir.readUInt16LE(p + 32);
    names.push(dir.subarray(p + 46, p + 46 + nameLength).toString("utf8"));
    p += 46 + nameLength + extraLength + commentLength;
  }
  return names;
}

const PYTHON_ROOT = /^python\/(?:lib\/python3\.\d+\/site-packages\/)?([^/]+)(\/)?/;
const NODE_ROOT = /^nodejs\/(?:node\d+\/)?node_modules\/((?:@[^/]+\/)?[^/]+)(\/)?/;
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The top-level Python packages and modules, or Node.js packages, of a layer, sorted. */
export function defaultSmokeModules(names: readonly string[], family: SmokeFamily): string[] {
  const out = new Set<string>();
  for (const name of names) {
    if (family === "python") {
      const m = PYTHON_ROOT.exec(name);
      const first = m?.[1];
      if (!first || first === "lib") continue;
      const isDir = m[2] === "/";
      // a package (directory) or a module file: x.py, x.cpython-312-x86_64-linux-gnu.so, x.abi3.so
      const module = isDir ? first : /^([^.]+)\.(py|.*\.so|so|pyd)$/.exec(first)?.[1];
      if (module && IDENTIFIER.test(module) && module !== "__pycache__" && module !== "bin") out.add(module);
    } else {
      const m = NODE_ROOT.exec(name);
      const pkg = m?.[1];
      if (!pkg || m[2] !== "/" || pkg.startsWith(".") || pkg.startsWith("@types/")) continue;
      out.add(pkg);
    }
  }
  return [...out].sort();
}
