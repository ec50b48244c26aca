/** `poetry.lock` converted against its `pyproject.toml` (see `python.ts`). */
import { createHash } from "node:crypto";
import { BuildError } from "../../common/errors.ts";
import {
  conversion,
  type LockedPackage,
  normalizeName,
  outOfDate,
  type PythonLockConversion,
  type PythonLockInput,
  parseTomlFile,
  pythonJson,
  sha256Hashes,
  str,
  strings,
  type Table,
  table,
  tables,
} from "./python-common.ts";

/**
 * Poetry's `content-hash` (Poetry 2.3+, `Locker._get_content_hash`): sha256 of `json.dumps(relevant,
 * sort_keys=True)`. `relevant` is `{"project": {requires-python, dependencies, optional-dependencies of
 * [project], those set}, "dependency-groups": [dependency-groups] (when not empty), "tool": {"poetry":
 * {dependencies, source, extras, dev-dependencies, group of [tool.poetry], those set}}}` when `[project]` has
 * one of those keys or `[dependency-groups]` is not empty; otherwise the `[tool.poetry]` keys at top level,
 * the four legacy keys as `null` when unset. Poetry before 2.3 left `dependency-groups` out
 * (`withDependencyGroups: false`).
 */
export function poetryContentHash(pyproject: Table, options: { withDependencyGroups?: boolean } = {}): string {
  const project = table(pyproject.project);
  const groups = options.withDependencyGroups === false ? {} : table(pyproject["dependency-groups"]);
  const hasGroups = Object.keys(groups).length > 0;
  const poetry = table(table(pyproject.tool).poetry);
  const legacy = ["dependencies", "source", "extras", "dev-dependencies"];
  const relevantProject: Table = {};
  for (const key of ["requires-python", "dependencies", "optional-dependencies"]) {
    if (project[key] !== undefined) relevantProject[key] = project[key];
  }
  const hasProject = Object.keys(relevantProject).length > 0;
  const relevantPoetry: Table = {};
  for (const key of [...legacy, "group"]) {
    const value = poetry[key];
    if (value === undefined && (!legacy.includes(key) || hasProject || hasGroups)) continue;
    relevantPoetry[key] = value ?? null;
  }
  let relevant: Table = relevantPoetry;
  if (hasProject || hasGroups) {
    relevant = {};
    if (hasProject) relevant.project = relevantProject;
    if (hasGroups) relevant["dependency-groups"] = groups;
    relevant.tool = { poetry: relevantPoetry };
  }
  return createHash("sha256")
    .update(pythonJson(relevant, ", ", ": "), "utf8")
    .digest("hex");
}

/** Whether the first line of poetry.lock says it was written by a Poetry older than 2.3. */
function writtenBeforePoetry23(lock: string): boolean {
  const m = /Poetry (\d+)\.(\d+)/.exec(lock.split("\n", 1)[0] ?? "");
  if (m === null) return false;
  const major = Number(m[1]);
  return major < 2 || (major === 2 && Number(m[2]) < 3);
}

/** Converts `poetry.lock` (lock-version 2.1: `groups` and `markers` per package) against `pyproject.toml`. */
export function convertPoetryLock(input: PythonLockInput): PythonLockConversion {
  const { where } = input;
  const pyproject = parseTomlFile(input.manifest, "pyproject.toml", where);
  const lock = parseTomlFile(input.lock, "poetry.lock", where);
  const metadata = table(lock.metadata);
  const lockVersion = str(metadata["lock-version"]) ?? "";
  const [major, minor] = lockVersion.split(".").map(Number);
  if (major !== 2 || minor === undefined || minor < 1) {
    throw new BuildError(
      `${where}/poetry.lock has lock-version ${lockVersion || "(none)"}, which records no dependency groups; regenerate it with Poetry 2 (\`poetry lock\`) and commit poetry.lock`,
    );
  }
  const recorded = str(metadata["content-hash"]);
  const fresh =
    recorded === poetryContentHash(pyproject) ||
    (writtenBeforePoetry23(input.lock) && recorded === poetryContentHash(pyproject, { withDependencyGroups: false }));
  if (!fresh) {
    throw outOfDate(where, "poetry.lock", "pyproject.toml", "poetry lock", "its content-hash does not match");
  }
  const packages = tables(lock.package);
  const requested = new Set((input.extras ?? []).map(normalizeName));
  // optional (extra-only) packages are installed only when an extra naming them (transitively) is requested
  const optionalWanted = new Set<string>();
  const extrasTable = table(lock.extras);
  const queue: string[] = [];
  for (const [extra, names] of Object.entries(extrasTable)) {
    if (!requested.has(normalizeName(extra))) continue;
    for (const n of strings(names)) queue.push(normalizeName(n.split(/[\s([;]/)[0] ?? n));
  }
  const byName = new Map(packages.map((p) => [normalizeName(str(p.name) ?? ""), p]));
  while (queue.length > 0) {
    const name = queue.shift() ?? "";
    if (optionalWanted.has(name)) continue;
    optionalWanted.add(name);
    for (const dep of Object.keys(table(byName.get(name)?.dependencies))) queue.push(normalizeName(dep));
  }
  const out: LockedPackage[] = [];
  for (const p of packages) {
    const name = str(p.name) ?? "";
    const version = str(p.version) ?? "";
    if (!strings(p.groups).includes("main")) continue;
    if (p.optional === true && !optionalWanted.has(normalizeName(name))) continue;
    const source = table(p.source);
    const sourceType = str(source.type);
    if (sourceType !== undefined && sourceType !== "legacy") {
      throw new BuildError(
        `${where}/poetry.lock installs ${name} from a ${sourceType} source, which a frozen hashed install cannot take; depend on a released version from the package index instead`,
      );
    }
    const markers = p.markers;
    const marker = typeof markers === "string" ? markers : str(table(markers).main);
    const hashes = sha256Hashes(tables(p.files).map((f) => str(f.hash)));
    if (hashes.length === 0) {
      throw new BuildError(
        `${where}/poetry.lock records no sha256 hash for ${name} ${version}; run \`poetry lock\` and commit poetry.lock`,
      );
    }
    out.push({ name, version, hashes, marker, index: str(source.url) });
  }
  return conversion("poetry", out);
}

// ---------------------------------------------------------------------------------------------------
// Pipfile.lock
