/**
 * Python lock files converted into exact, hashed requirement lines (`name==version --hash=sha256:…`, with
 * environment markers kept): the input the trusted resolver installs frozen (`--require-hashes
 * --no-deps`). Only the production set is converted:
 *
 *   uv.lock       the project's default dependencies, transitively; no dependency group (dev or other);
 *                 optional extras only when requested.
 *   poetry.lock   the packages of the `main` group (lock-version 2.1 records `groups` and `markers` per
 *                 package); optional (extra-only) packages only when their extra is requested.
 *   Pipfile.lock  the `default` section.
 *
 * A lock out of date with its manifest is a `BuildError` naming the file and the command that regenerates
 * it (the rules are in docs/lock-files.md). Pure functions over file contents: nothing is run or fetched.
 */
import { createHash } from "node:crypto";
import { parse as parseToml } from "smol-toml";
import { BuildError, summarise } from "../../common/errors.ts";

export type PythonLockFamily = "uv" | "poetry" | "pipenv";

/** One package to install, exactly. */
export interface LockedPackage {
  /** The name as the lock spells it. */
  name: string;
  version: string;
  /** `sha256:<hex>` (every file the lock recorded, sorted, unique). */
  hashes: string[];
  /** PEP 508 environment marker under which the package is installed, or undefined for always. */
  marker: string | undefined;
  /**
   * The package index the lock resolved it from (a simple-API URL such as `https://pypi.org/simple`), or
   * undefined when the lock does not say (Poetry's PyPI). The requirement lines carry no index: the
   * installer decides whether a package from another index may be installed.
   */
  index: string | undefined;
}

export interface PythonLockConversion {
  family: PythonLockFamily;
  /** Sorted by normalized name. */
  packages: LockedPackage[];
  /** The requirement lines, one package a line, newline-terminated (empty string for no package). */
  requirements: string;
}

export interface PythonLockInput {
  /** The manifest's text (`pyproject.toml` or `Pipfile`). */
  manifest: string;
  /** The lock's text (`uv.lock`, `poetry.lock` or `Pipfile.lock`). */
  lock: string;
  /** Where the folder is, for messages (e.g. `layers/api`). */
  where: string;
  /** Optional extras of the project to install too (uv and Poetry); none by default. */
  extras?: readonly string[];
}

/** PEP 503 normalized name: lower case, runs of `-`, `_`, `.` as one `-`. */
export function normalizeName(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, "-");
}

/** The requirement lines for `packages`: `name==version --hash=sha256:… ; marker`, sorted. */
export function requirementLines(packages: readonly LockedPackage[]): string {
  return sortPackages(packages)
    .map((p) => {
      const hashes = p.hashes.map((h) => ` --hash=${h}`).join("");
      const marker = p.marker === undefined ? "" : ` ; ${p.marker}`;
      return `${p.name}==${p.version}${marker}${hashes}\n`;
    })
    .join("");
}

/** Converts a Python lock of `family` (see the module comment). */
export function convertPythonLock(family: PythonLockFamily, input: PythonLockInput): PythonLockConversion {
  if (family === "uv") return convertUvLock(input);
  if (family === "poetry") return convertPoetryLock(input);
  return convertPipfileLock(input);
}

function sortPackages(packages: readonly LockedPackage[]): LockedPackage[] {
  return [...packages].sort((a, b) => {
    const x = normalizeName(a.name);
    const y = normalizeName(b.name);
    return x < y ? -1 : x > y ? 1 : a.version < b.version ? -1 : a.version > b.version ? 1 : 0;
  });
}

function conversion(family: PythonLockFamily, packages: LockedPackage[]): PythonLockConversion {
  const sorted = sortPackages(packages);
  return { family, packages: sorted, requirements: requirementLines(sorted) };
}

// ---------------------------------------------------------------------------------------------------
// small readers over parsed TOML/JSON (unknown in, typed out)

type Table = Record<string, unknown>;

function isTable(value: unknown): value is Table {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
function table(value: unknown): Table {
  return isTable(value) ? value : {};
}
function tables(value: unknown): Table[] {
  return Array.isArray(value) ? value.filter(isTable) : [];
}
function str(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}
function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
}

function parseTomlFile(text: string, file: string, where: string): Table {
  try {
    return parseToml(text) as Table;
  } catch (error) {
    throw new BuildError(`${where}/${file} is not valid TOML (${firstLine(error)}); fix or regenerate it`, {
      cause: error,
    });
  }
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0] ?? "";
}

function outOfDate(where: string, lock: string, manifest: string, command: string, what: string): BuildError {
  return new BuildError(
    `${where}/${lock} is out of date with ${manifest} (${what}); run \`${command}\` and commit ${lock}`,
  );
}

function sha256Hashes(values: Iterable<string | undefined>): string[] {
  const out = new Set<string>();
  for (const v of values) if (v !== undefined && /^sha256:[0-9a-f]{64}$/.test(v)) out.add(v);
  return [...out].sort();
}

// ---------------------------------------------------------------------------------------------------
// PEP 508, just enough to compare a manifest's requirements with what a lock recorded

interface Requirement {
  name: string;
  extras: string[];
  /** Version specifier without spaces, clauses sorted (empty when none or a URL). */
  specifier: string;
  marker: string | undefined;
}

const PEP508 = /^\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:\[([^\]]*)\])?\s*([^;]*?)\s*(?:;\s*(.*))?$/;

function parseRequirement(text: string): Requirement | undefined {
  const m = PEP508.exec(text);
  if (m === null) return undefined;
  const rest = (m[3] ?? "").trim();
  const specifier = rest.startsWith("@")
    ? `@${rest.slice(1).trim()}`
    : normalizeSpecifier(rest.replace(/^\(|\)$/g, ""));
  return {
    name: normalizeName(m[1] ?? ""),
    extras: (m[2] ?? "")
      .split(",")
      .map((e) => normalizeName(e.trim()))
      .filter((e) => e !== "")
      .sort(),
    specifier,
    marker: m[4]?.trim() || undefined,
  };
}

function normalizeSpecifier(spec: string): string {
  return spec
    .replace(/\s+/g, "")
    .split(",")
    .filter((c) => c !== "")
    .sort()
    .join(",");
}

function requirementKey(r: Requirement, extra: string | undefined): string {
  const extras = r.extras.length > 0 ? `[${r.extras.join(",")}]` : "";
  return `${r.name}${extras}${r.specifier}${extra === undefined ? "" : ` (extra ${extra})`}`;
}

/** The added and removed entries between two key sets, for a message. */
function difference(manifest: Set<string>, lock: Set<string>): string | undefined {
  const added = [...manifest].filter((k) => !lock.has(k)).sort();
  const removed = [...lock].filter((k) => !manifest.has(k)).sort();
  if (added.length === 0 && removed.length === 0) return undefined;
  const parts: string[] = [];
  if (added.length > 0) parts.push(`not in the lock: ${summarise(added, 3, ", ")}`);
  if (removed.length > 0) parts.push(`no longer in the manifest: ${summarise(removed, 3, ", ")}`);
  return parts.join("; ");
}

// ---------------------------------------------------------------------------------------------------
// markers along dependency paths

/**
 * The condition under which a package is reached: a disjunction of conjunctions of edge markers. `[[]]`
 * is "always"; `[]` is "not reached". Conjunctions are sorted sets, and one that contains another is
 * dropped (absorption), so cycles settle.
 */
type Condition = string[][];

function andMarker(conjunction: readonly string[], marker: string | undefined): string[] {
  if (marker === undefined || conjunction.includes(marker)) return [...conjunction];
  return [...conjunction, marker].sort();
}

/** Adds `conjunction` to `condition`; returns whether it changed anything. */
function addConjunction(condition: Condition, conjunction: string[]): boolean {
  if (condition.some((c) => c.every((atom) => conjunction.includes(atom)))) return false;
  for (let i = condition.length - 1; i >= 0; i--) {
    const c = condition[i] ?? [];
    if (conjunction.every((atom) => c.includes(atom))) condition.splice(i, 1);
  }
  condition.push(conjunction);
  return true;
}

const COMPLEMENT: Readonly<Record<string, string>> = {
  "<": ">=",
  ">=": "<",
  ">": "<=",
  "<=": ">",
  "==": "!=",
  "!=": "==",
};

/** `a < 'x'` → `a >= 'x'` (and the other comparisons), or undefined for anything else. */
function complement(marker: string): string | undefined {
  const m = /^(\w+) (<=|>=|==|!=|<|>) ('[^']*'|"[^"]*")$/.exec(marker.trim());
  return m === null ? undefined : `${m[1]} ${COMPLEMENT[m[2] ?? ""]} ${m[3]}`;
}

function conditionMarker(condition: Condition): string | undefined {
  if (condition.some((c) => c.length === 0)) return undefined;
  // uv forks on markers such as python_full_version < '3.10' / >= '3.10': a package both sides reach is always installed
  const singles = new Set(condition.filter((c) => c.length === 1).map((c) => c[0] ?? ""));
  if ([...singles].some((m) => singles.has(complement(m) ?? "\u0000"))) return undefined;
  const atom = (m: string) => (/\bor\b/.test(m) ? `(${m})` : m);
  const terms = condition.map((c) => (c.length === 1 ? (c[0] ?? "") : c.map(atom).join(" and ")));
  const sorted = [...new Set(terms)].sort();
  if (sorted.length === 1) return sorted[0];
  return sorted.map((t) => (/\b(and|or)\b/.test(t) ? `(${t})` : t)).join(" or ");
}

interface Edge {
  to: string;
  marker: string | undefined;
}

/** The condition of every node reached from `start` (node → edges out), by fixpoint. */
function reach(start: readonly Edge[], edgesOf: (node: string) => readonly Edge[]): Map<string, Condition> {
  const conditions = new Map<string, Condition>();
  const queue: string[] = [];
  const visit = (to: string, conjunction: string[]) => {
    let condition = conditions.get(to);
    if (condition === undefined) {
      condition = [];
      conditions.set(to, condition);
    }
    if (addConjunction(condition, conjunction) && !queue.includes(to)) queue.push(to);
  };
  for (const edge of start) visit(edge.to, andMarker([], edge.marker));
  while (queue.length > 0) {
    const node = queue.shift() ?? "";
    const condition = conditions.get(node) ?? [];
    for (const edge of edgesOf(node)) {
      for (const c of [...condition]) visit(edge.to, andMarker(c, edge.marker));
    }
  }
  return conditions;
}

// ---------------------------------------------------------------------------------------------------
// uv.lock

interface UvPackage {
  key: string;
  name: string;
  version: string;
  source: Table;
  raw: Table;
}

/** Converts `uv.lock` (lock `version = 1`) against its `pyproject.toml`. */
export function convertUvLock(input: PythonLockInput): PythonLockConversion {
  const { where } = input;
  const pyproject = parseTomlFile(input.manifest, "pyproject.toml", where);
  const lock = parseTomlFile(input.lock, "uv.lock", where);
  if (lock.version !== 1) {
    throw new BuildError(
      `${where}/uv.lock has lock version ${String(lock.version)}, which layer-sync does not read (it reads version 1); regenerate it with \`uv lock\` from uv 0.5 or later`,
    );
  }
  const project = table(pyproject.project);
  const projectName = str(project.name);
  if (projectName === undefined) {
    throw new BuildError(
      `${where}/pyproject.toml has no [project] name, which uv.lock needs; add [project] name and run \`uv lock\``,
    );
  }
  const packages: UvPackage[] = tables(lock.package).map((p) => {
    const name = str(p.name) ?? "";
    const version = str(p.version) ?? "";
    const source = table(p.source);
    return { key: `${normalizeName(name)} ${version} ${JSON.stringify(source)}`, name, version, source, raw: p };
  });
  const root = packages.find(
    (p) =>
      normalizeName(p.name) === normalizeName(projectName) && (p.source.virtual === "." || p.source.editable === "."),
  );
  if (root === undefined) {
    throw outOfDate(where, "uv.lock", "pyproject.toml", "uv lock", `it does not lock the project ${projectName}`);
  }
  checkUvCurrent(root.raw, project, where);

  const byName = new Map<string, UvPackage[]>();
  for (const p of packages) byName.set(normalizeName(p.name), [...(byName.get(normalizeName(p.name)) ?? []), p]);
  const resolve = (dep: Table, from: UvPackage): UvPackage => {
    const name = normalizeName(str(dep.name) ?? "");
    const version = str(dep.version);
    const source = isTable(dep.source) ? JSON.stringify(dep.source) : undefined;
    const found = (byName.get(name) ?? []).filter(
      (p) =>
        (version === undefined || p.version === version) &&
        (source === undefined || JSON.stringify(p.source) === source),
    );
    if (found.length !== 1 || found[0] === undefined) {
      throw new BuildError(
        `${where}/uv.lock: ${from.name} depends on ${name}, which the lock ${found.length === 0 ? "does not hold" : "holds more than once without saying which"}; run \`uv lock\` and commit uv.lock`,
      );
    }
    return found[0];
  };
  const byKey = new Map(packages.map((p) => [p.key, p]));
  // nodes are "<package key>" or "<package key>\u0000<extra>" (the package's optional dependencies of one extra)
  const edgesOfDeps = (from: UvPackage, deps: readonly Table[]): Edge[] =>
    deps.flatMap((d) => {
      const target = resolve(d, from);
      const marker = str(d.marker);
      return [
        { to: target.key, marker },
        ...strings(d.extra).map((e) => ({ to: `${target.key}\u0000${normalizeName(e)}`, marker })),
      ];
    });
  const edgesOf = (node: string): Edge[] => {
    const [key, extra] = node.split("\u0000");
    const p = byKey.get(key ?? "");
    if (p === undefined) return [];
    if (extra === undefined) return edgesOfDeps(p, tables(p.raw.dependencies));
    const optional = table(p.raw["optional-dependencies"]);
    const group = Object.entries(optional).find(([name]) => normalizeName(name) === extra);
    return [{ to: p.key, marker: undefined }, ...edgesOfDeps(p, tables(group?.[1]))];
  };
  const start: Edge[] = [
    ...edgesOfDeps(root, tables(root.raw.dependencies)),
    ...(input.extras ?? []).flatMap((e) => edgesOf(`${root.key}\u0000${normalizeName(e)}`).slice(1)),
  ];
  const reached = reach(start, edgesOf);
  const out: LockedPackage[] = [];
  for (const [node, condition] of reached) {
    if (node.includes("\u0000") || node === root.key) continue;
    const p = byKey.get(node);
    if (p === undefined) continue;
    out.push(uvLocked(p, conditionMarker(condition), where));
  }
  return conversion("uv", out);
}

function uvLocked(p: UvPackage, marker: string | undefined, where: string): LockedPackage {
  if (str(p.source.registry) === undefined) {
    const kind = Object.keys(p.source)[0] ?? "unknown";
    throw new BuildError(
      `${where}/uv.lock installs ${p.name} from a ${kind} source, which a frozen hashed install cannot take; depend on a released version from the package index instead`,
    );
  }
  const hashes = sha256Hashes([str(table(p.raw.sdist).hash), ...tables(p.raw.wheels).map((w) => str(w.hash))]);
  if (hashes.length === 0) {
    throw new BuildError(
      `${where}/uv.lock records no sha256 hash for ${p.name} ${p.version}; run \`uv lock\` and commit uv.lock`,
    );
  }
  return { name: p.name, version: p.version, hashes, marker, index: str(p.source.registry) };
}

/**
 * The production requirements of `pyproject.toml` (`[project] dependencies` and `optional-dependencies`)
 * against what `uv.lock` recorded for the project (`[package.metadata] requires-dist`): names, extras and
 * version specifiers must match; markers are not compared (uv rewrites them into its own normal form).
 */
function checkUvCurrent(root: Table, project: Table, where: string): void {
  const manifest = new Set<string>();
  for (const text of strings(project.dependencies)) {
    const r = parseRequirement(text);
    if (r !== undefined) manifest.add(requirementKey(r, undefined));
  }
  for (const [extra, list] of Object.entries(table(project["optional-dependencies"]))) {
    for (const text of strings(list)) {
      const r = parseRequirement(text);
      if (r !== undefined) manifest.add(requirementKey(r, normalizeName(extra)));
    }
  }
  const recorded = new Set<string>();
  for (const d of tables(table(root.metadata)["requires-dist"])) {
    const marker = str(d.marker);
    const extra = marker === undefined ? undefined : /\bextra\s*==\s*['"]([^'"]+)['"]/.exec(marker)?.[1];
    const url = str(d.url) ?? str(d.git) ?? str(d.path) ?? str(d.directory) ?? str(d.editable);
    recorded.add(
      requirementKey(
        {
          name: normalizeName(str(d.name) ?? ""),
          extras: strings(d.extras).map(normalizeName).sort(),
          specifier: url !== undefined ? "@" : normalizeSpecifier(str(d.specifier) ?? ""),
          marker,
        },
        extra === undefined ? undefined : normalizeName(extra),
      ),
    );
  }
  // a URL requirement is recorded by uv in its own form: compare only that it is a URL
  const manifestKeys = new Set([...manifest].map((k) => k.replace(/@\S*/, "@")));
  const what = difference(manifestKeys, recorded);
  if (what !== undefined) throw outOfDate(where, "uv.lock", "pyproject.toml", "uv lock", what);
}

// ---------------------------------------------------------------------------------------------------
// poetry.lock

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

/**
 * Pipenv's `_meta.hash.sha256`: sha256 of `json.dumps(data, sort_keys=True, separators=(",", ":"))` where
 * `data` is `{"_meta": {"sources": [[source]], "requires": [requires] or {}}, "default": [packages] or {},
 * "develop": [dev-packages] or {}}` plus every other top-level table of the Pipfile except `source`,
 * `requires`, `packages`, `dev-packages`, `scripts`, `pipfile`, `pipenv`. A Pipfile without `[[source]]`
 * gets pipenv's default PyPI source. Pipenv 2026 (`Pipfile.calculate_hash`) writes the package names of
 * those tables in PEP 503 form (`canonicalNames: true`); older pipenv (plette's `Pipfile.get_hash`) as
 * written.
 */
export function pipfileHash(pipfile: Table, options: { canonicalNames?: boolean } = {}): string {
  const canonical = (section: unknown): unknown =>
    options.canonicalNames === true && isTable(section)
      ? Object.fromEntries(Object.entries(section).map(([k, v]) => [normalizeName(k), v]))
      : section;
  const sources = pipfile.source ?? [{ name: "pypi", url: "https://pypi.org/simple", verify_ssl: true }];
  const data: Table = {
    _meta: { sources, requires: pipfile.requires ?? {} },
    default: canonical(pipfile.packages ?? {}),
    develop: canonical(pipfile["dev-packages"] ?? {}),
  };
  const skipped = new Set([
    "source",
    "requires",
    "packages",
    "dev-packages",
    "scripts",
    "pipfile",
    "pipenv",
    "default",
    "develop",
  ]);
  for (const [key, value] of Object.entries(pipfile)) if (!skipped.has(key)) data[key] = canonical(value);
  return createHash("sha256")
    .update(pythonJson(data, ",", ":"), "utf8")
    .digest("hex");
}

/** Converts `Pipfile.lock` (its `default` section) against its `Pipfile`. */
export function convertPipfileLock(input: PythonLockInput): PythonLockConversion {
  const { where } = input;
  const pipfile = parseTomlFile(input.manifest, "Pipfile", where);
  let lock: Table;
  try {
    lock = table(JSON.parse(input.lock));
  } catch (error) {
    throw new BuildError(`${where}/Pipfile.lock is not valid JSON (${firstLine(error)}); run \`pipenv lock\``, {
      cause: error,
    });
  }
  const recorded = str(table(table(table(lock._meta).hash)).sha256);
  if (recorded !== pipfileHash(pipfile, { canonicalNames: true }) && recorded !== pipfileHash(pipfile)) {
    throw outOfDate(where, "Pipfile.lock", "Pipfile", "pipenv lock", "its _meta.hash does not match");
  }
  const sources = tables(table(lock._meta).sources);
  const out: LockedPackage[] = [];
  for (const [name, entry] of Object.entries(table(lock.default))) {
    const e = table(entry);
    const version = /^===?(.+)$/.exec(str(e.version) ?? "")?.[1];
    if (version === undefined) {
      const kind = ["git", "path", "file", "editable"].find((k) => e[k] !== undefined) ?? "unpinned";
      throw new BuildError(
        `${where}/Pipfile.lock installs ${name} from a ${kind} source, which a frozen hashed install cannot take; depend on a released version from the package index instead`,
      );
    }
    const hashes = sha256Hashes(strings(e.hashes));
    if (hashes.length === 0) {
      throw new BuildError(
        `${where}/Pipfile.lock records no sha256 hash for ${name} ${version}; run \`pipenv lock\` and commit Pipfile.lock`,
      );
    }
    const index =
      sources.find((src) => str(src.name) === str(e.index)) ?? (e.index === undefined ? sources[0] : undefined);
    out.push({ name, version, hashes, marker: str(e.markers), index: str(index?.url) });
  }
  return conversion("pipenv", out);
}

// ---------------------------------------------------------------------------------------------------

/** Python's `json.dumps(value, sort_keys=True, ensure_ascii=True, separators=(item, key))`. */
export function pythonJson(value: unknown, item: string, key: string): string {
  if (value === null || value === undefined) return "null";
  if (value === true) return "true";
  if (value === false) return "false";
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : pythonFloat(value);
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "string") return pythonString(value);
  if (Array.isArray(value)) return `[${value.map((v) => pythonJson(v, item, key)).join(item)}]`;
  if (typeof value === "object") {
    const keys = Object.keys(value).sort();
    const record = value as Table;
    return `{${keys.map((k) => `${pythonString(k)}${key}${pythonJson(record[k], item, key)}`).join(item)}}`;
  }
  return pythonString(String(value));
}

function pythonFloat(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (!Number.isFinite(value)) return value > 0 ? "Infinity" : "-Infinity";
  const text = String(value);
  return /[.e]/.test(text) ? text.replace(/e([+-])(\d)$/, "e$10$2") : `${text}.0`;
}

function pythonString(text: string): string {
  let out = '"';
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const ch = text[i] ?? "";
    if (ch === '"') out += '\\"';
    else if (ch === "\\") out += "\\\\";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (ch === "\b") out += "\\b";
    else if (ch === "\f") out += "\\f";
    else if (c < 0x20 || c > 0x7e) out += `\\u${c.toString(16).padStart(4, "0")}`;
    else out += ch;
  }
  return `${out}"`;
}
