/** `uv.lock` converted against its `pyproject.toml` (see `python.ts`). */
import { BuildError } from "../../common/errors.ts";
import {
  conditionMarker,
  conversion,
  difference,
  type Edge,
  isTable,
  type LockedPackage,
  normalizeName,
  normalizeSpecifier,
  outOfDate,
  type PythonLockConversion,
  type PythonLockInput,
  parseRequirement,
  parseTomlFile,
  reach,
  requirementKey,
  sha256Hashes,
  str,
  strings,
  type Table,
  table,
  tables,
} from "./python-common.ts";

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
