/**
 * `tsx bench/zippers.ts [--fixture medium] [--runs 3] [--candidates DIR]`: compare zip writers on the same
 * folder content (a bench fixture, sorted, with its modes), each run in its own process for peak RSS.
 *
 * Always measured: jszip 3 (the previous writer, as buildZip used it) and layer-sync's writer
 * (`lib/zip/writer.ts`). yazl, fflate and archiver are measured when they can be loaded from
 * `DIR/node_modules` (a scratch `npm install yazl fflate archiver` outside the project: they are not
 * project dependencies). Every output is checked: entries (names, modes, CRC-32, sizes) against the
 * fixture, the DOS date, data descriptors, "made by" UNIX, extra fields, and that two runs give the same bytes.
 * Peak RSS is taken while zipping only, with the whole input (the fixture's files) already in memory.
 */
import { fork } from "node:child_process";
import { createHash } from "node:crypto";
import { createWriteStream, existsSync, readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs, promisify } from "node:util";
import { crc32, deflateRaw } from "node:zlib";
import JSZip from "jszip";
import { deflatePool } from "../lib/zip/deflate-pool.ts";
import { MODE, ZIP_DATE } from "../lib/zip/folder-zip.ts";
import { writeZipFile, ZIP_LEVEL } from "../lib/zip/writer.ts";
import { expectedZipEntries } from "../test/fixtures/repo.ts";
import { BENCH_FOLDER, buildFixture, type FixtureName } from "./fixtures.ts";
import { compareEntries, readZipEntries } from "./zipinfo.ts";

const deflateRawAsync = promisify(deflateRaw);

interface Entry {
  name: string;
  mode: number;
  content: Buffer;
}

type Zipper = (entries: Entry[], out: string) => Promise<void>;

interface YazlModule {
  ZipFile: new () => {
    outputStream: Readable;
    addBuffer(
      data: Buffer,
      name: string,
      options: { mtime: Date; mode: number; compressionLevel: number; forceDosTimestamp: boolean },
    ): void;
    end(): void;
  };
}

interface FflateModule {
  zipSync(
    files: Record<string, [Uint8Array, { level: number; mtime: Date; os: number; attrs: number }]>,
    options: { level: number },
  ): Uint8Array;
}

interface ArchiverModule {
  ZipArchive: new (options: {
    zlib: { level: number };
  }) => Readable & {
    append(data: Buffer, options: { name: string; date: Date; mode: number }): void;
    symlink(name: string, target: string, mode: number): void;
    finalize(): Promise<void>;
  };
}

async function candidates(dir: string | undefined): Promise<Record<string, Zipper>> {
  const out: Record<string, Zipper> = {
    "jszip 3 (previous)": async (entries, file) => {
      const zip = new JSZip();
      for (const e of entries) {
        zip.file(e.name, e.mode === MODE.symlink ? e.content : Readable.from([e.content]), {
          binary: true,
          date: ZIP_DATE,
          unixPermissions: e.mode,
          createFolders: false,
        });
      }
      const stream = zip.generateNodeStream({
        type: "nodebuffer",
        compression: "DEFLATE",
        compressionOptions: { level: 6 },
        platform: "UNIX",
        streamFiles: false,
      });
      await pipeline(stream as unknown as Readable, createWriteStream(file));
    },
    "layer-sync writer (zlib, one worker thread)": async (entries, file) => {
      await writeZipFile(
        entries.map((e) => ({ name: e.name, mode: e.mode, size: e.content.length, content: e.content })),
        file,
        ZIP_DATE,
      );
    },
    "layer-sync writer (zlib, two worker threads)": async (entries, file) => {
      deflatePool(ZIP_LEVEL).warm(2);
      await writeZipFile(
        entries.map((e) => ({ name: e.name, mode: e.mode, size: e.content.length, content: e.content })),
        file,
        ZIP_DATE,
      );
    },
    "layer-sync writer (zlib, libuv thread pool)": async (entries, file) => {
      await writeZipFile(
        entries.map((e) => ({ name: e.name, mode: e.mode, size: e.content.length, content: e.content })),
        file,
        ZIP_DATE,
        { deflate: (d, level) => deflateRawAsync(d, { level }) },
      );
    },
  };
  if (!dir) return out;
  const base = resolve(dir);
  const req = createRequire(join(base, "package.json"));
  const has = (name: string) => existsSync(join(base, "node_modules", name, "package.json"));
  if (has("yazl")) {
    const yazl = req("yazl") as YazlModule;
    out["yazl 3"] = async (entries, file) => {
      const zip = new yazl.ZipFile();
      for (const e of entries) {
        zip.addBuffer(e.content, e.name, {
          mtime: ZIP_DATE,
          mode: e.mode,
          compressionLevel: 6,
          forceDosTimestamp: true,
        });
      }
      zip.end();
      await pipeline(zip.outputStream, createWriteStream(file));
    };
  }
  if (has("fflate")) {
    const fflate = req("fflate") as FflateModule;
    out["fflate zipSync"] = async (entries, file) => {
      const files: Parameters<FflateModule["zipSync"]>[0] = {};
      for (const e of entries) {
        files[e.name] = [e.content, { level: 6, mtime: ZIP_DATE, os: 3, attrs: (e.mode << 16) >>> 0 }];
      }
      await writeFile(file, fflate.zipSync(files, { level: 6 }));
    };
  }
  if (has("archiver")) {
    const archiver = (await import(
      pathToFileURL(join(base, "node_modules", "archiver", "index.js")).href
    )) as ArchiverModule;
    out["archiver 8"] = async (entries, file) => {
      const zip = new archiver.ZipArchive({ zlib: { level: 6 } });
      const done = pipeline(zip, createWriteStream(file));
      for (const e of entries) {
        if (e.mode === MODE.symlink) zip.symlink(e.name, e.content.toString(), 0o777);
        else zip.append(e.content, { name: e.name, date: ZIP_DATE, mode: e.mode });
      }
      await zip.finalize();
      await done;
    };
  }
  return out;
}

interface Measured {
  wallMs: number;
  cpuMs: number;
  peakRssBytes: number;
  bytes: number;
  sha256: string;
  entriesMatch: boolean;
  dataDescriptors: boolean;
  madeByUnix: boolean;
  dosDate1980: boolean;
  extraFields: boolean;
  error?: string;
}

function peakRss(): number {
  const hwm = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync("/proc/self/status", "utf8"))?.[1];
  return hwm ? Number(hwm) * 1024 : process.resourceUsage().maxRSS * 1024;
}

/** Header facts from the central directory: data descriptors, made-by OS, DOS date, extra fields. */
function headerFacts(zip: Buffer): Pick<Measured, "dataDescriptors" | "madeByUnix" | "dosDate1980" | "extraFields"> {
  const eocd = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  const count = zip.readUInt16LE(eocd + 10);
  let p = zip.readUInt32LE(eocd + 16);
  const facts = { dataDescriptors: false, madeByUnix: true, dosDate1980: true, extraFields: false };
  for (let i = 0; i < count; i++) {
    facts.madeByUnix &&= zip.readUInt8(p + 5) === 3;
    facts.dataDescriptors ||= (zip.readUInt16LE(p + 8) & 0x08) !== 0;
    facts.dosDate1980 &&= zip.readUInt16LE(p + 12) === 0 && zip.readUInt16LE(p + 14) === 0x21;
    const extra = zip.readUInt16LE(p + 30);
    facts.extraFields ||= extra > 0;
    p += 46 + zip.readUInt16LE(p + 28) + extra + zip.readUInt16LE(p + 32);
  }
  return facts;
}

async function worker(name: string, fixture: FixtureName, dir: string | undefined, out: string): Promise<Measured> {
  const f = buildFixture(fixture);
  const entries: Entry[] = expectedZipEntries(f.repo.head(), BENCH_FOLDER).map((e) => ({
    name: e.name,
    mode: e.mode,
    content: e.content,
  }));
  const zipper = (await candidates(dir))[name];
  if (!zipper) throw new Error(`no zipper ${name}`);
  // peak RSS from here on: Linux resets VmHWM to the current RSS on "5" (the input stays in memory)
  try {
    writeFileSync("/proc/self/clear_refs", "5");
  } catch {
    // not Linux: the peak includes building the input
  }
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await zipper(entries, out);
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const peakRssBytes = peakRss();
  const data = await readFile(out);
  const got = await readZipEntries(out);
  const want = entries.map((e) => ({
    name: e.name,
    mode: e.mode,
    crc: crc32(e.content) >>> 0,
    size: e.content.length,
  }));
  return {
    wallMs,
    cpuMs: (cpu.user + cpu.system) / 1000,
    peakRssBytes,
    bytes: data.length,
    sha256: createHash("sha256").update(data).digest("hex"),
    entriesMatch: compareEntries(got, want).length === 0 && got.every((e, i) => e.name === want[i]?.name),
    // "extra fields" counts any extra field (jszip and this writer add one only for non-ASCII names)
    ...headerFacts(data),
  };
}

async function measure(name: string, fixture: FixtureName, dir: string | undefined, out: string): Promise<Measured> {
  return new Promise((resolveRun) => {
    const args = ["--worker", name, "--fixture", fixture, "--out", out, ...(dir ? ["--candidates", dir] : [])];
    const child = fork(fileURLToPath(import.meta.url), args, { execArgv: ["--import", "tsx"], stdio: "inherit" });
    let result: Measured | undefined;
    child.on("message", (m: Measured) => {
      result = m;
    });
    child.on("exit", (code) => resolveRun(result ?? ({ error: `worker exited ${code}` } as Measured)));
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      fixture: { type: "string" },
      runs: { type: "string" },
      candidates: { type: "string" },
      worker: { type: "string" },
      out: { type: "string" },
      markdown: { type: "string" },
    },
  });
  const fixture = (values.fixture ?? "medium") as FixtureName;
  if (values.worker) {
    const r = await worker(values.worker, fixture, values.candidates, values.out ?? "out.zip").catch(
      (error: unknown) => ({ error: String(error) }) as Measured,
    );
    process.send?.(r);
    return;
  }
  const runs = Number(values.runs ?? 3);
  const names = Object.keys(await candidates(values.candidates));
  const tmp = await mkdtemp(join(tmpdir(), "layer-sync-zippers-"));
  const rows: string[] = [];
  try {
    const results = new Map<string, Measured[]>();
    for (let r = 0; r < runs; r++) {
      for (const name of names) {
        const m = await measure(name, fixture, values.candidates, join(tmp, `${r}.zip`));
        results.set(name, [...(results.get(name) ?? []), m]);
        process.stderr.write(`${name} run ${r + 1}: ${Math.round(m.wallMs)} ms ${m.error ?? ""}\n`);
      }
    }
    rows.push(
      "| writer | wall (median) | CPU | peak RSS | output | same bytes every run | entries right | jszip's records (no data descriptors, made by UNIX, 1980 date, no extra fields) |",
      "|---|---:|---:|---:|---:|---|---|---|",
    );
    for (const name of names) {
      const ms = results.get(name) ?? [];
      const ok = ms.filter((m) => !m.error);
      const med = (f: (m: Measured) => number) => {
        const v = ok.map(f).sort((a, b) => a - b);
        return v[Math.floor(v.length / 2)] ?? Number.NaN;
      };
      const first = ok[0];
      if (!first) {
        rows.push(`| ${name} | failed: ${ms[0]?.error ?? "?"} | | | | | | |`);
        continue;
      }
      const records = [
        first.dataDescriptors ? "data descriptors" : "",
        first.madeByUnix ? "" : "not made by UNIX",
        first.dosDate1980 ? "" : "other date",
        first.extraFields ? "extra fields" : "",
      ].filter(Boolean);
      rows.push(
        `| ${name} | ${(med((m) => m.wallMs) / 1000).toFixed(2)} s | ${(med((m) => m.cpuMs) / 1000).toFixed(2)} s | ${Math.round(med((m) => m.peakRssBytes) / 1048576)} MiB | ${(first.bytes / 1e6).toFixed(2)} MB | ${ok.every((m) => m.sha256 === first.sha256) ? "yes" : "NO"} | ${ok.every((m) => m.entriesMatch) ? "yes" : "NO"} | ${records.length ? records.join(", ") : "yes"} |`,
      );
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  const table = rows.join("\n");
  process.stdout.write(`${table}\n`);
  if (values.markdown) await writeFile(values.markdown, `${table}\n`);
}

await main();
