import { createReadStream } from "node:fs";
import { lstat, mkdir, symlink, writeFile } from "node:fs/promises";
import { dirname, join, posix } from "node:path";
import { crc32 } from "node:zlib";
import { type BuildPlan, type BuildTarget, PACKAGE_JSON, PACKAGE_LOCK, REQUIREMENTS } from "../common/build-plan.ts";
import { DEFAULTS } from "../common/config.ts";
import { BuildError, LimitExceededError } from "../common/errors.ts";
import { isNeverPackaged } from "../common/lock-families.ts";
import { checkRelativePath, checkSymlinkChains, quoteName } from "../common/paths.ts";
import { formatBytes } from "../common/sizes.ts";
import { deflatePool } from "../zip/deflate-pool.ts";
import { type ExpectedEntry, LAYER_CONFIG_FILE, MODE, verifyZipEntries, ZIP_DATE } from "../zip/folder-zip.ts";
import { writeZipFile, ZIP_LEVEL } from "../zip/writer.ts";
import type { Builder, BuildRequest, IndexSettings } from "./builders.ts";
import { publicIndexUrl } from "./builders.ts";
import { buildFingerprint } from "./fingerprint.ts";
import { type LayerSbom, layerSbom } from "./layer-sbom.ts";
import { type NodeLockSet, readNodeLock } from "./locks/node.ts";
import { toNpmLock } from "./locks/npm-lock.ts";
import { convertPythonLock, type PythonLockConversion } from "./locks/python.ts";
import { finishPythonTree, type SlimReport } from "./python-tree.ts";
import { type SanitizedRequirements, sanitizeRequirements } from "./requirements.ts";
import { entryBytes, sortEntries, type TreeEntry, walkDirectory } from "./tree.ts";

/** Lambda's limit for a function and all its layers, unzipped. */
export const UNZIPPED_LIMIT = DEFAULTS.maxBytes;

/** Whether a path lies in a `__pycache__` folder. */
const inPycache = (path: string) => path.split("/").slice(0, -1).includes("__pycache__");

/**
 * The folder's entries that go into the layer as they are: all but the root files that only describe the
 * build (`isNeverPackaged`: layer.json, every manifest and lock, requirements*.in, constraints*.txt …) and
 * the folder's own `__pycache__` (compiled on some developer's machine, for some Python; the build's
 * bytecode is the build's, see `python-tree.ts`).
 */
export function folderContent(files: readonly TreeEntry[]): TreeEntry[] {
  return files.filter((f) => f.path !== LAYER_CONFIG_FILE && !isNeverPackaged(f.path) && !inPycache(f.path));
}

/** Whether `path` matches one of the exclude globs. */
export function excluded(path: string, globs: readonly string[]): boolean {
  return globs.some((g) => posix.matchesGlob(path, g));
}

/** Where an entry counts for the size report: the installed package, or the top-level entry. */
function sizeGroup(path: string): string {
  const parts = path.split("/");
  if (parts[0] === "python" && parts.length > 2) return `python/${parts[1]}`;
  if (parts[0] === "nodejs" && parts[1] === "node_modules" && parts.length > 3) {
    const scoped = (parts[2] ?? "").startsWith("@") && parts.length > 4;
    return parts.slice(0, scoped ? 4 : 3).join("/");
  }
  return parts.length > 1 ? `${parts[0]}/` : (parts[0] ?? path);
}

/** Bytes of a MiB (`build.maxUnzippedMiB`). */
export const MIB = 1024 * 1024;

/**
 * Throws `LimitExceededError` naming the largest entries when the content is over `limit` bytes unzipped,
 * or over `budgetMiB` (layer.json `build.maxUnzippedMiB`) when that is lower.
 */
export function checkUnzippedSize(
  entries: readonly TreeEntry[],
  where: string,
  limit: number = UNZIPPED_LIMIT,
  budgetMiB?: number,
): number {
  const total = entries.reduce((n, e) => n + e.size, 0);
  const budget = budgetMiB === undefined ? undefined : budgetMiB * MIB;
  const overBudget = budget !== undefined && budget < limit && total > budget;
  if (total <= limit && !overBudget) return total;
  const groups = new Map<string, number>();
  for (const e of entries) groups.set(sizeGroup(e.path), (groups.get(sizeGroup(e.path)) ?? 0) + e.size);
  const largest = [...groups]
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, 5)
    .map(([name, size]) => `${name} ${formatBytes(size)}`);
  if (overBudget) {
    throw new LimitExceededError(
      `${where} is ${formatBytes(total)} unzipped, over its budget of ${budgetMiB} MiB (layer.json "build.maxUnzippedMiB"); largest: ${largest.join(", ")}; drop dependencies, exclude files in "build.exclude", or raise the budget`,
    );
  }
  throw new LimitExceededError(
    `${where} is ${formatBytes(total)} unzipped, over Lambda's ${formatBytes(limit)} limit for a function and its layers; largest: ${largest.join(", ")}; drop dependencies or exclude files in layer.json "build.exclude"`,
  );
}

/**
 * Where Lambda looks for a layer's packages (`/opt/python`, `/opt/nodejs/node_modules`) and the builders
 * install: these must be directories, so a folder file or link with one of these names is refused.
 */
export const INSTALL_ROOTS: readonly string[] = ["python", "nodejs", "nodejs/node_modules"];

/**
 * Refuse a layer whose entries clash: a folder file or link at an install root, or any entry (the folder's or
 * the build's) that sits where another one needs a directory (`python/foo` as a file, a package installed in
 * `python/foo/`). Names both paths and which side each came from.
 */
function checkClashes(entries: readonly TreeEntry[], fromFolder: ReadonlySet<string>, where: string): void {
  const origin = (path: string) => (fromFolder.has(path) ? "the folder's" : "the build's");
  const describe = (e: TreeEntry | undefined, path: string) =>
    `${origin(path)} ${e?.kind === "symlink" ? "symlink" : "file"} ${quoteName(path)}`;
  const byPath = new Map(entries.map((e) => [e.path, e]));
  for (const root of INSTALL_ROOTS) {
    const e = byPath.get(root);
    if (e && fromFolder.has(root)) {
      throw new BuildError(
        `${where}: ${describe(e, root)} is where the layer's packages are installed, which must be a directory; rename or remove it`,
      );
    }
  }
  for (const e of entries) {
    for (let i = e.path.indexOf("/"); i > 0; i = e.path.indexOf("/", i + 1)) {
      const parent = e.path.slice(0, i);
      const blocker = byPath.get(parent);
      if (!blocker) continue;
      const fix =
        fromFolder.has(parent) || fromFolder.has(e.path)
          ? "rename or move the folder's entry"
          : "the build's output is inconsistent; report it with the requirements";
      throw new BuildError(
        `${where}: ${describe(blocker, parent)} is where ${origin(e.path)} ${quoteName(e.path)} needs a directory; ${fix}`,
      );
    }
  }
}

/** Merge the built tree and the folder's files, drop excluded paths, and check names, clashes, links and size. */
export function assembleLayer(
  built: readonly TreeEntry[],
  folder: readonly TreeEntry[],
  exclude: readonly string[],
  where: string,
  limit: number = UNZIPPED_LIMIT,
  budgetMiB?: number,
): TreeEntry[] {
  const byPath = new Map<string, TreeEntry>();
  for (const e of built) byPath.set(e.path, e);
  const fromFolder = new Set<string>();
  for (const e of folderContent(folder)) {
    fromFolder.add(e.path);
    if (byPath.has(e.path)) {
      throw new BuildError(
        `${where}: the folder's file ${quoteName(e.path)} would replace one the build installed; rename or move it`,
      );
    }
    byPath.set(e.path, e);
  }
  const entries = sortEntries([...byPath.values()].filter((e) => !excluded(e.path, exclude)));
  for (const e of entries) checkRelativePath(e.path, where);
  checkClashes(entries, fromFolder, where);
  checkSymlinkChains(
    entries.filter((e) => e.kind === "symlink"),
    where,
  );
  checkUnzippedSize(entries, where, limit, budgetMiB);
  return entries;
}

export interface LayerZip {
  path: string;
  sha256: string;
  bytes: number;
  files: number;
  /** Unzipped bytes. */
  size: number;
}

/** Write the layer zip (sorted entries, fixed date, the layer modes) to `outFile`. */
export async function writeLayerZip(entries: readonly TreeEntry[], outFile: string): Promise<LayerZip> {
  const sorted = sortEntries([...entries]);
  // a built tree is all there: its files are read faster than one deflate worker compresses them
  deflatePool(ZIP_LEVEL).warm(2);
  const zip = await writeZipFile(
    sorted.map((e) => ({ name: e.path, mode: MODE[e.kind], size: e.size, content: e.content })),
    outFile,
    ZIP_DATE,
    { level: ZIP_LEVEL },
  );
  return {
    path: outFile,
    sha256: zip.sha256,
    bytes: zip.bytes,
    files: sorted.length,
    size: sorted.reduce((n, e) => n + e.size, 0),
  };
}

/** CRC-32 and size of a file on disk, read as a stream. */
async function fileDigest(path: string): Promise<{ crc: number; size: number }> {
  let crc = 0;
  let size = 0;
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    crc = crc32(chunk, crc);
    size += chunk.length;
  }
  return { crc: crc >>> 0, size };
}

/**
 * Reopen a built layer's zip and check every entry against the tree it was written from (names, order,
 * modes, sizes, CRC-32 after inflating): the staged digests where the tree came from a stage, else a
 * digest of the file the builder left.
 */
export async function verifyLayerZip(entries: readonly TreeEntry[], zipFile: string, where: string): Promise<void> {
  const expected: ExpectedEntry[] = sortEntries([...entries]).map((e) => ({
    path: e.path,
    kind: e.kind,
    target: e.target,
    digest: async () => {
      if (e.digest) return e.digest();
      if (Buffer.isBuffer(e.content)) return { crc: crc32(e.content) >>> 0, size: e.content.length };
      if ("path" in e.content) return fileDigest(e.content.path);
      return undefined;
    },
  }));
  await verifyZipEntries(expected, zipFile, `the layer of ${where}`);
}

/** A Python folder's sanitized requirement files and, for a lock family, the lock's conversion. */
export interface CheckedRequirements extends SanitizedRequirements {
  /** The lock the requirements were converted from (uv, Poetry, Pipenv), with its hashes. */
  lock?: PythonLockConversion | undefined;
  /** pnpm and Yarn: the lock's production set, which `files` holds as `package.json` + `package-lock.json`. */
  nodeLock?: NodeLockSet | undefined;
}

/**
 * A pnpm or Yarn folder's lock converted into an exact npm `package-lock.json` and its production-only
 * `package.json` (`locks/npm-lock.ts`), which builders install with `npm ci` like any npm folder; undefined
 * for other families. Throws `BuildError` for a lock out of date with package.json (naming the file and
 * `pnpm install` / `yarn install`).
 */
export function nodeLockSource(plan: BuildPlan, read: (path: string) => string): CheckedRequirements | undefined {
  if (plan.family !== "pnpm" && plan.family !== "yarn") return undefined;
  const [manifest, lock] = plan.manifests;
  if (manifest === undefined || lock === undefined) {
    throw new BuildError(`${plan.folder}: the ${plan.family} lock family has no manifest and lock in the plan`);
  }
  const set = readNodeLock(plan.family, { manifest: read(manifest), lock: read(lock), where: plan.folder });
  const converted = toNpmLock(set, read(manifest), plan.folder, lock);
  const files = new Map([
    [PACKAGE_JSON, converted.packageJson],
    [PACKAGE_LOCK, converted.packageLock],
  ]);
  return { files, buildSteps: [], requirements: set.packages.length, nodeLock: set };
}

/**
 * The requirement text of a Python lock family: the lock's exact, hashed lines under `--require-hashes`,
 * so pip and uv install exactly that set (a dependency missing from the lock fails the install).
 * Throws `BuildError` for a lock out of date with its manifest (naming the file and the command).
 */
export function lockRequirements(plan: BuildPlan, read: (path: string) => string): PythonLockConversion | undefined {
  if (plan.family !== "uv" && plan.family !== "poetry" && plan.family !== "pipenv") return undefined;
  const [manifest, lock] = plan.manifests;
  if (manifest === undefined || lock === undefined) {
    throw new BuildError(`${plan.folder}: the ${plan.family} lock family has no manifest and lock in the plan`);
  }
  return convertPythonLock(plan.family, { manifest: read(manifest), lock: read(lock), where: plan.folder });
}

/**
 * A Python folder's requirement files, checked and sanitized (`requirements.ts`); for Node.js, a pnpm or
 * Yarn lock converted to `package.json` + `package-lock.json` (`nodeLockSource`), else undefined. A lock family (uv.lock, poetry.lock, Pipfile.lock) is first converted to a `requirements.txt`
 * of exact hashed lines under `--require-hashes`, which then goes through the same sanitizer, so every
 * builder installs it with its trusted resolver like any requirements.txt. Throws `ConfigError` naming a
 * refused line, `BuildError` for a lock out of date with its manifest.
 */
export async function checkRequirements(
  plan: BuildPlan,
  files: readonly TreeEntry[],
): Promise<CheckedRequirements | undefined> {
  const byPath = new Map(files.map((f) => [f.path, f]));
  const read = async (path: string) => {
    const entry = byPath.get(path);
    if (!entry) throw new BuildError(`entry ${quoteName(path)} is not in ${plan.folder}`);
    return entryBytes(entry);
  };
  const texts = new Map<string, string>();
  for (const path of plan.manifests) if (byPath.has(path)) texts.set(path, (await read(path)).toString("utf8"));
  if (plan.language !== "python") return nodeLockSource(plan, (path) => texts.get(path) ?? "");
  const lock = lockRequirements(plan, (path) => texts.get(path) ?? "");
  if (lock === undefined) return sanitizeRequirements({ folder: plan.folder, entries: files, read });
  // the converted lock stands in for requirements.txt (a lock family never has one: detectFamily refuses two families)
  const converted = Buffer.from(`--require-hashes\n${lock.requirements}`, "utf8");
  const sanitized = await sanitizeRequirements({
    folder: plan.folder,
    entries: [...files.filter((f) => f.path !== REQUIREMENTS), { path: REQUIREMENTS, kind: "file" }],
    read: async (path) => (path === REQUIREMENTS ? converted : read(path)),
  });
  return { ...sanitized, lock };
}

/**
 * The folder's entries with each requirement file replaced by its sanitized text: what builders receive
 * (and what the CodeBuild source holds), never the original. A lock family's converted `requirements.txt`
 * is added.
 */
export function withSanitized(files: readonly TreeEntry[], sanitized: SanitizedRequirements | undefined): TreeEntry[] {
  if (!sanitized) return [...files];
  const entry = (path: string, text: string): TreeEntry => {
    const data = Buffer.from(text, "utf8");
    return { path, kind: "file", size: data.length, content: data };
  };
  const out = files.map((f) => {
    const text = sanitized.files.get(f.path);
    return text === undefined ? f : entry(f.path, text);
  });
  const present = new Set(files.map((f) => f.path));
  for (const [path, text] of sanitized.files) if (!present.has(path)) out.push(entry(path, text));
  return out;
}

/** Write the folder's files under `dir` (the build's read-only source), links as links. */
export async function materialize(files: readonly TreeEntry[], dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const f of files) {
    const abs = join(dir, ...checkRelativePath(f.path, dir).split("/"));
    await mkdir(dirname(abs), { recursive: true });
    try {
      await lstat(abs);
      throw new BuildError(`entry ${quoteName(f.path)} appears twice in the build source`);
    } catch (error) {
      if (error instanceof BuildError) throw error;
    }
    if (f.kind === "symlink") await symlink(f.target ?? "", abs);
    else await writeFile(abs, await entryBytes(f), { mode: f.kind === "executable" ? 0o755 : 0o644, flag: "wx" });
  }
}

/** The fingerprint of one target: the folder's files, the target, the builder's identity and the index. */
export async function targetFingerprint(
  plan: BuildPlan,
  target: BuildTarget,
  files: readonly TreeEntry[],
  builder: Pick<Builder, "identity">,
  index?: IndexSettings,
): Promise<string> {
  const request: BuildRequest = {
    language: plan.language,
    runtime: target.runtime,
    architecture: target.architecture,
    sourceDir: "",
    outDir: "",
    bytecode: plan.bytecode,
  };
  const data = await Promise.all(files.map(async (f) => ({ path: f.path, kind: f.kind, data: await entryBytes(f) })));
  return buildFingerprint({
    files: data,
    runtime: target.runtime,
    architecture: target.architecture,
    tool: await builder.identity(request),
    index: publicIndexUrl(plan.language === "python" ? index?.pipIndexUrl : index?.npmRegistry),
    bytecode: plan.bytecode,
    slim: plan.slim,
  });
}

export interface BuiltLayer {
  zip: LayerZip;
  sbom: LayerSbom;
  fingerprint: string;
  builder: "local" | "docker";
  warnings: string[];
  /** What `build.slim` removed (Python, when on). */
  slim?: SlimReport | undefined;
}

/**
 * Build one target of a plan into a verified-shape layer zip at `zipFile`: check the requirement files,
 * materialize the folder (sanitized requirement files in place of the originals) in `workDir/src`, run the
 * builder into `workDir/out`, assemble, zip. `files` are the folder's entries.
 */
export async function buildTarget(args: {
  plan: BuildPlan;
  target: BuildTarget;
  files: readonly TreeEntry[];
  builder: Builder;
  workDir: string;
  zipFile: string;
  index?: IndexSettings | undefined;
  /** Computed beforehand (e.g. for the unchanged check). */
  fingerprint?: string | undefined;
  /** Checked beforehand (`checkRequirements`). */
  requirements?: CheckedRequirements | undefined;
}): Promise<BuiltLayer> {
  const { plan, target, builder } = args;
  const where = `${plan.folder} (${target.runtime} ${target.architecture})`;
  const sourceDir = join(args.workDir, "src");
  const outDir = join(args.workDir, "out");
  const requirements = args.requirements ?? (await checkRequirements(plan, args.files));
  const source = withSanitized(args.files, requirements);
  await materialize(source, sourceDir);
  await mkdir(outDir, { recursive: true });
  const fingerprint = args.fingerprint ?? (await targetFingerprint(plan, target, args.files, builder, args.index));
  const outcome = await builder.build({
    language: plan.language,
    runtime: target.runtime,
    architecture: target.architecture,
    sourceDir,
    outDir,
    folder: plan.folder,
    requirements,
    bytecode: plan.bytecode,
  });
  const walked = await walkDirectory(outDir, where);
  const finished =
    plan.language === "python"
      ? await finishPythonTree(walked, { runtime: target.runtime, bytecode: plan.bytecode, slim: plan.slim, where })
      : { entries: walked, warnings: [] };
  const entries = assembleLayer(finished.entries, source, plan.exclude, where, UNZIPPED_LIMIT, plan.maxUnzippedMiB);
  const zip = await writeLayerZip(entries, args.zipFile);
  await verifyLayerZip(entries, zip.path, where);
  const sbom = await layerSbom({ subject: target.package, language: plan.language, entries, source, where });
  return {
    zip,
    sbom,
    fingerprint,
    builder: builder.kind,
    warnings: [...outcome.warnings, ...finished.warnings],
    ...("slim" in finished ? { slim: finished.slim } : {}),
  };
}
