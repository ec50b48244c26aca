/**
 * The shared last step of every Python build (local, Docker, CodeBuild), on the install tree the builder
 * left (paths relative to the layer root, `python/…`), before it is merged with the folder's files:
 *
 * 1. **Data files.** A wheel's `*.data/data/lib/<shared library>` (tbb, …) belongs in the layer's `lib/`
 *    (`/opt/lib`, on Lambda's `LD_LIBRARY_PATH`). uv's `--target` puts it in `python/lib/`, which nothing
 *    searches: it is moved. pip's `--target` drops it (its RECORD row `../…` remains): the container recipe
 *    extracts it from the wheelhouse into `lib/`, and when it is still missing the target fails naming the
 *    package, instead of shipping a hollow layer.
 * 2. **Bytecode.** Only `__pycache__/*.cpython-3XY.pyc` of the target's Python are kept, and only when
 *    `build.bytecode` is on; `.pyc` of other versions or optimisation levels are never shipped.
 * 3. **Shebangs.** Console scripts in `python/bin/` get `#!/usr/bin/env python3` and their RECORD rows are
 *    brought up to date, so no script names the interpreter of the machine that installed it.
 * 4. **Slim** (`build.slim`): packages' `tests/` and `test/` folders, `*.dist-info/RECORD`, and boto3,
 *    botocore, s3transfer (in every Lambda Python runtime) are dropped and counted.
 */
import { createHash } from "node:crypto";
import { posix } from "node:path";
import { runtimeVersion } from "../common/build-plan.ts";
import { BuildError } from "../common/errors.ts";
import { quoteName } from "../common/paths.ts";
import { entryBytes, sortEntries, type TreeEntry } from "./tree.ts";

/** The shebang every console script of a layer gets (Lambda's runtime has python3 on PATH). */
export const SCRIPT_SHEBANG = "#!/usr/bin/env python3";

/** The packages every Lambda Python runtime already has (dropped by `build.slim`). */
export const RUNTIME_PACKAGES: readonly string[] = ["boto3", "botocore", "s3transfer"];

/** A shared library's file name: `libx.so`, `libtbb.so.12`, `libz.so.1.3.1`. */
const SHARED_LIBRARY = /^[^/]+\.so(?:\.\d+)*$/;
const RECORD_FILE = /^python\/([^/]+)\.dist-info\/RECORD$/;

/** A script's bytes with its interpreter line(s) replaced by `SCRIPT_SHEBANG`, or undefined when unchanged. */
export function normalizeShebang(data: Buffer): Buffer | undefined {
  const text = data.toString("latin1");
  if (!text.startsWith("#!")) return undefined;
  // the long-path form: #!/bin/sh, then '''exec' '/path/python' "$0" "$@", then ' '''
  const trampoline = /^#!\/bin\/sh\n'''exec' .*\n' '''\n/.exec(text);
  const newline = text.indexOf("\n");
  const end = trampoline ? trampoline[0].length - 1 : newline < 0 ? text.length : newline;
  if (!trampoline && !/python/.test(text.slice(0, end))) return undefined;
  const out = Buffer.concat([Buffer.from(SCRIPT_SHEBANG), data.subarray(end)]);
  return out.equals(data) ? undefined : out;
}

/** The RECORD hash of some bytes (`sha256=<base64url>`). */
export function recordHash(data: Buffer): string {
  return `sha256=${createHash("sha256").update(data).digest("base64url")}`;
}

/** One CSV row of a RECORD file (quoted as Python's csv module writes it). */
export function parseCsvRow(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i <= line.length) {
    if (line[i] === '"') {
      let value = "";
      i++;
      while (i < line.length) {
        if (line[i] === '"' && line[i + 1] === '"') {
          value += '"';
          i += 2;
        } else if (line[i] === '"') {
          i++;
          break;
        } else value += line[i++];
      }
      out.push(value);
      i++;
    } else {
      const comma = line.indexOf(",", i);
      const stop = comma < 0 ? line.length : comma;
      out.push(line.slice(i, stop));
      i = stop + 1;
    }
  }
  return out;
}

/** One RECORD field, quoted when it must be. */
export function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

/**
 * Where a RECORD row's file was installed, relative to the install root (`python/`): uv's rows are relative
 * to it; pip's `--target` rows leaving it (`../…`) are relative to `lib/python` of the scratch home pip
 * installed into, whose `bin/` and data files it then moved (or, for `lib/`, dropped).
 */
export function recordPath(row: string): { path: string; outside: boolean } {
  if (!row.startsWith("../")) return { path: posix.normalize(row), outside: false };
  return { path: posix.normalize(`lib/python/${row}`), outside: true };
}

/** `cpython-312` for `python3.12`: the tag of the target's `.pyc` files. */
export function cacheTag(runtime: string): string {
  return `cpython-${runtimeVersion(runtime).replace(".", "")}`;
}

/** Whether a built entry is kept as to bytecode: anything outside `__pycache__`, or the target's own `.pyc`. */
export function keepsBytecode(path: string, runtime: string, bytecode: boolean): boolean {
  const parts = path.split("/");
  if (!parts.slice(0, -1).includes("__pycache__")) return true;
  return bytecode && new RegExp(`^[^.]+\\.${cacheTag(runtime)}\\.pyc$`).test(parts.at(-1) ?? "");
}

/** Whether `build.slim` drops a built entry. */
export function slimDrops(path: string): boolean {
  const parts = path.split("/");
  if (parts[0] !== "python" || parts.length < 3) return false;
  const top = parts[1] ?? "";
  if (RUNTIME_PACKAGES.includes(top)) return true;
  if (RUNTIME_PACKAGES.some((p) => new RegExp(`^${p}-[^-/]+\\.dist-info$`, "i").test(top))) return true;
  if (/\.dist-info$/.test(top) && parts.length === 3 && parts[2] === "RECORD") return true;
  return parts.slice(1, -1).some((d) => d === "tests" || d === "test");
}

export interface PythonTreeOptions {
  runtime: string;
  /** `build.bytecode` (default on). */
  bytecode: boolean;
  /** `build.slim` (default off). */
  slim: boolean;
  /** The target, for messages. */
  where: string;
}

/** What `build.slim` removed: entries and their unzipped bytes. */
export interface SlimReport {
  files: number;
  bytes: number;
}

export interface PythonTree {
  entries: TreeEntry[];
  /** Present when `build.slim` is on. */
  slim?: SlimReport;
  warnings: string[];
}

/** The distribution name of a `<name>-<version>` dist-info folder. */
function distName(folder: string): string {
  return /^(.+?)-[^-]+$/.exec(folder)?.[1] ?? folder;
}

/** Move data-scheme shared libraries to `lib/`, or fail naming the package whose libraries were dropped. */
async function placeDataFiles(byPath: Map<string, TreeEntry>, where: string): Promise<string[]> {
  const warnings: string[] = [];
  const placedBy = new Map<string, string>();
  const missing: string[] = [];
  const records = [...byPath.keys()].filter((p) => RECORD_FILE.test(p)).sort();
  for (const record of records) {
    const entry = byPath.get(record);
    if (!entry || entry.kind === "symlink") continue;
    const pkg = distName(RECORD_FILE.exec(record)?.[1] ?? "");
    const dropped: string[] = [];
    for (const line of (await entryBytes(entry)).toString("utf8").split("\n")) {
      const row = parseCsvRow(line.replace(/\r$/, ""))[0] ?? "";
      if (!row) continue;
      const { path, outside } = recordPath(row);
      const m = /^lib\/([^/]+)$/.exec(path);
      if (!m?.[1] || path.startsWith("lib/python/")) {
        if (outside && path.startsWith("lib/")) dropped.push(path);
        continue;
      }
      const name = m[1];
      if (!SHARED_LIBRARY.test(name)) {
        if (outside) dropped.push(path);
        continue;
      }
      const from = `python/${path}`;
      const to = `lib/${name}`;
      const other = placedBy.get(to);
      if (other !== undefined && other !== pkg) {
        throw new BuildError(
          `${where}: packages ${quoteName(other)} and ${quoteName(pkg)} both install the shared library ${quoteName(name)} into the layer's lib/; drop one of them`,
        );
      }
      const installed = !outside ? byPath.get(from) : undefined;
      if (installed && !byPath.has("python/lib/__init__.py")) {
        byPath.delete(from);
        byPath.set(to, { ...installed, path: to });
        placedBy.set(to, pkg);
      } else if (byPath.has(to)) placedBy.set(to, pkg);
      else missing.push(`${quoteName(pkg)} (${path})`);
    }
    if (dropped.length) {
      warnings.push(
        `package ${quoteName(pkg)} installs ${dropped.length} build-time data file(s) (${dropped.slice(0, 3).join(", ")}) that the installer did not keep; they are not in the layer`,
      );
    }
  }
  if (missing.length) {
    throw new BuildError(
      `${where}: shared librar(ies) that package(s) install through the wheel data scheme were dropped by the installer: ${missing.slice(0, 5).join(", ")}; the layer would import without them, so it is not built: install that package from a wheel on the index (the build places its libraries in lib/, /opt/lib)`,
    );
  }
  return warnings;
}

/** Give `python/bin/*` the portable shebang and update the RECORD rows of the scripts that changed. */
async function normalizeScriptEntries(byPath: Map<string, TreeEntry>): Promise<void> {
  const changed = new Map<string, Buffer>();
  for (const [path, entry] of byPath) {
    if (!/^python\/bin\/[^/]+$/.test(path) || entry.kind === "symlink") continue;
    const fixed = normalizeShebang(await entryBytes(entry));
    if (!fixed) continue;
    byPath.set(path, { path, kind: entry.kind, size: fixed.length, content: fixed });
    changed.set(path.slice("python/".length), fixed);
  }
  if (!changed.size) return;
  for (const [path, entry] of byPath) {
    if (!RECORD_FILE.test(path) || entry.kind === "symlink") continue;
    const text = (await entryBytes(entry)).toString("utf8");
    let touched = false;
    const lines = text.split("\n").map((line) => {
      const clean = line.replace(/\r$/, "");
      if (clean === "") return line;
      const row = parseCsvRow(clean);
      const data = changed.get(recordPath(row[0] ?? "").path);
      if (!data) return line;
      touched = true;
      return [row[0] ?? "", recordHash(data), String(data.length)].map(csvField).join(",");
    });
    if (!touched) continue;
    const data = Buffer.from(lines.join("\n"), "utf8");
    byPath.set(path, { path, kind: entry.kind, size: data.length, content: data });
  }
}

/**
 * The shared last step of a Python build on its install tree (see the file's comment). Throws `BuildError`
 * when a package's data-scheme shared libraries were dropped. Other languages' trees pass unchanged.
 */
export async function finishPythonTree(built: readonly TreeEntry[], options: PythonTreeOptions): Promise<PythonTree> {
  const byPath = new Map(built.map((e) => [e.path, e]));
  const warnings = await placeDataFiles(byPath, options.where);
  for (const path of [...byPath.keys()]) {
    if (path.startsWith("python/") && !keepsBytecode(path, options.runtime, options.bytecode)) byPath.delete(path);
  }
  await normalizeScriptEntries(byPath);
  let slim: SlimReport | undefined;
  if (options.slim) {
    slim = { files: 0, bytes: 0 };
    for (const [path, entry] of [...byPath]) {
      if (!slimDrops(path)) continue;
      byPath.delete(path);
      slim.files++;
      slim.bytes += entry.size;
    }
  }
  return { entries: sortEntries([...byPath.values()]), ...(slim ? { slim } : {}), warnings };
}
