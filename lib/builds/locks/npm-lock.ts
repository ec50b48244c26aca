/**
 * A pnpm or Yarn lock's production set (`node.ts`) converted into an exact npm `package-lock.json`
 * (lockfileVersion 3) and the `package.json` it belongs to, so every builder installs it with the one Node.js
 * path it already trusts: `npm ci --omit=dev --ignore-scripts`.
 *
 * - `package.json` keeps only `name`, `version`, `dependencies` and `optionalDependencies`: development and
 *   peer dependencies, `overrides` and workspaces are the lock's business, and the lock already resolved them.
 * - `package-lock.json` holds exactly the lock's production packages, laid out as a `node_modules` tree
 *   (each package as high as it can go without shadowing another version: `placeTree`), each with its exact
 *   version, the registry tarball URL and the lock's integrity. Its dependencies are written as exact
 *   versions, so npm finds nothing to resolve and `npm ci` installs that tree or fails.
 * - Yarn Berry records no npm integrity (its `checksum` hashes Yarn's own zip): such an entry has neither
 *   `resolved` nor `integrity`, so npm fetches that exact version's metadata from the registry and checks the
 *   tarball against the registry's `dist.integrity` (docs/lock-files.md says what that trusts).
 *
 * Pure functions: nothing is run or fetched.
 */
import { BuildError } from "../../common/errors.ts";
import type { NodeLockedPackage, NodeLockSet } from "./node.ts";

/** The public registry; npm sends these URLs to the configured registry instead (`replace-registry-host`). */
export const NPM_REGISTRY = "https://registry.npmjs.org";

/** One placed package: its folder path (`node_modules/a/node_modules/b`) and the package. */
interface Placed {
  path: string;
  pkg: NodeLockedPackage;
  /** Folder name → path it resolves to, filled in as its dependencies are placed. */
  resolved: Map<string, string>;
}

const idOf = (p: NodeLockedPackage) => `${p.name}@${p.version}`;

/** `name@1.2.3` → `name`, `@scope/name@1.2.3` → `@scope/name`. */
function nameOf(id: string): string {
  const at = id.indexOf("@", 1);
  return at === -1 ? id : id.slice(0, at);
}

/** The registry tarball URL of a package, as npm records it. */
export function registryTarball(name: string, version: string): string {
  const base = name.startsWith("@") ? name.slice(name.indexOf("/") + 1) : name;
  return `${NPM_REGISTRY}/${name}/-/${base}-${version}.tgz`;
}

/** A tarball URL as npm should fetch it: Yarn's mirror host as the npm registry, no `#sha1` fragment. */
function tarballUrl(p: NodeLockedPackage): string | undefined {
  if (p.integrity === undefined) return undefined; // Berry: npm resolves the exact version itself
  const url = (p.resolved ?? registryTarball(p.name, p.version)).replace(/#.*$/, "");
  return url.replace(/^https?:\/\/registry\.yarnpkg\.com\//, `${NPM_REGISTRY}/`);
}

/**
 * Lays the dependency graph out as a `node_modules` tree, breadth first: each dependency goes to the highest
 * folder on its requirer's path where that name is free (or already that version), unless a package placed
 * below that folder already resolved the name to a folder above it (placing it would shadow that one).
 * Returns path → package; every edge resolves, by Node's lookup, to the version the lock chose.
 */
export function placeTree(set: NodeLockSet, where: string, lockFile: string): Map<string, NodeLockedPackage> {
  const byId = new Map(set.packages.map((p) => [idOf(p), p]));
  const tree = new Map<string, Placed>();
  const parentOf = (path: string) => {
    const i = path.lastIndexOf("/node_modules/");
    return i === -1 ? "" : path.slice(0, i);
  };
  const folder = (level: string, name: string) =>
    level === "" ? `node_modules/${name}` : `${level}/node_modules/${name}`;
  const rootResolved = new Map<string, string>();
  const resolvedOf = (level: string) => (level === "" ? rootResolved : (tree.get(level)?.resolved ?? new Map()));
  const queue: { level: string; deps: Record<string, string> }[] = [{ level: "", deps: set.root ?? {} }];
  while (queue.length > 0) {
    const { level, deps } = queue.shift() ?? { level: "", deps: {} };
    for (const [name, id] of Object.entries(deps).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const pkg = byId.get(id);
      if (pkg === undefined) {
        throw new BuildError(
          `${where}/${lockFile} names ${id} but does not hold it; regenerate and commit ${lockFile}`,
        );
      }
      // the levels from the requirer up to the root; stop at the first that already holds the name
      const levels: string[] = [];
      let found: string | undefined;
      for (let at: string | undefined = level; at !== undefined; at = at === "" ? undefined : parentOf(at)) {
        const existing = tree.get(folder(at, name));
        if (existing !== undefined) {
          if (idOf(existing.pkg) === id) found = folder(at, name);
          break;
        }
        levels.push(at);
      }
      if (found === undefined) {
        // highest level where no package below it resolved `name` to a folder above it
        const target =
          [...levels].reverse().find((candidate) => {
            const prefix = candidate === "" ? "" : `${candidate}/`;
            for (const [path, placed] of tree) {
              if (candidate !== "" && path !== candidate && !path.startsWith(prefix)) continue;
              const to = placed.resolved.get(name);
              if (to !== undefined && !to.startsWith(prefix === "" ? "node_modules/" : `${prefix}node_modules/`)) {
                return false;
              }
            }
            return true;
          }) ?? level;
        found = folder(target, name);
        const placed: Placed = { path: found, pkg, resolved: new Map() };
        tree.set(found, placed);
        queue.push({ level: found, deps: pkg.dependencies ?? {} });
      }
      resolvedOf(level).set(name, found);
    }
  }
  const sorted = [...tree.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return new Map(sorted.map((placed) => [placed.path, placed.pkg]));
}

export interface NpmLockConversion {
  /** The `package.json` npm installs against (production dependencies only). */
  packageJson: string;
  /** The exact `package-lock.json` (lockfileVersion 3). */
  packageLock: string;
}

type Json = Record<string, unknown>;

/** The dependency spec npm checks an edge against: the exact version, or `npm:name@version` for an alias. */
function exactSpec(folderName: string, id: string): string {
  const name = nameOf(id);
  const version = id.slice(name.length + 1);
  return name === folderName ? version : `npm:${name}@${version}`;
}

/** Converts a pnpm or Yarn production set and its `package.json` text (see the module comment). */
export function toNpmLock(set: NodeLockSet, manifestText: string, where: string, lockFile: string): NpmLockConversion {
  const manifest = JSON.parse(manifestText) as Json;
  const rootOptional = new Set(set.rootOptional ?? []);
  const section = (optional: boolean) => {
    const out: Record<string, string> = {};
    const from = (optional ? manifest.optionalDependencies : manifest.dependencies) as Record<string, string>;
    for (const [name, spec] of Object.entries(from ?? {})) {
      if (set.root?.[name] !== undefined && rootOptional.has(name) === optional) out[name] = spec;
    }
    return out;
  };
  const pkg: Json = {};
  for (const key of ["name", "version"]) if (typeof manifest[key] === "string") pkg[key] = manifest[key];
  const dependencies = section(false);
  const optionalDependencies = section(true);
  if (Object.keys(dependencies).length > 0) pkg.dependencies = dependencies;
  if (Object.keys(optionalDependencies).length > 0) pkg.optionalDependencies = optionalDependencies;

  const packages: Record<string, Json> = { "": { ...pkg } };
  // packages reached only through optional edges are optional: npm may skip them on another platform
  const required = new Set<string>();
  const visit = (deps: Record<string, string>, optional: ReadonlySet<string>) => {
    for (const [name, id] of Object.entries(deps)) {
      if (optional.has(name) || required.has(id)) continue;
      required.add(id);
      const p = set.packages.find((q) => idOf(q) === id);
      if (p) visit(p.dependencies ?? {}, new Set(p.optional ?? []));
    }
  };
  visit(set.root ?? {}, rootOptional);
  for (const [path, p] of placeTree(set, where, lockFile)) {
    const entry: Json = {};
    const folderName = path.slice(path.lastIndexOf("node_modules/") + "node_modules/".length);
    if (folderName !== p.name) entry.name = p.name;
    entry.version = p.version;
    const url = tarballUrl(p);
    if (url !== undefined) entry.resolved = url;
    if (p.integrity !== undefined) entry.integrity = p.integrity;
    if (!required.has(idOf(p))) entry.optional = true;
    const optional = new Set(p.optional ?? []);
    const deps = Object.entries(p.dependencies ?? {});
    const spec = (want: boolean) =>
      Object.fromEntries(deps.filter(([n]) => optional.has(n) === want).map(([n, id]) => [n, exactSpec(n, id)]));
    if (deps.some(([n]) => !optional.has(n))) entry.dependencies = spec(false);
    if (deps.some(([n]) => optional.has(n))) entry.optionalDependencies = spec(true);
    for (const key of ["os", "cpu", "libc"] as const) if (p[key]?.length) entry[key] = p[key];
    packages[path] = entry;
  }
  const lock = { name: pkg.name, version: pkg.version, lockfileVersion: 3, requires: true, packages };
  return { packageJson: `${JSON.stringify(pkg, null, 2)}\n`, packageLock: `${JSON.stringify(lock, null, 2)}\n` };
}
