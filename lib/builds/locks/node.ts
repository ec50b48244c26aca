/**
 * Node.js lock files read into their production sets (name, version, resolved URL, integrity), for the
 * SBOM and for checking that the lock agrees with `package.json`:
 *
 *   package-lock.json  (lockfileVersion 2 or 3) the `packages` entries not marked `dev` or `devOptional`.
 *   pnpm-lock.yaml     (lockfileVersion 9) the root importer's `dependencies` and `optionalDependencies`,
 *                      transitively through `snapshots`; resolutions from `packages`.
 *   yarn.lock          Yarn 1 (its own indented format, read by `parseYarnV1`) and Yarn Berry (YAML with
 *                      `__metadata`): package.json's `dependencies` and `optionalDependencies`, transitively.
 *
 * A lock that does not hold what `package.json` asks for is a `BuildError` naming the file and the command
 * that regenerates it. pnpm and Yarn sets also carry their dependency graph (`dependencies`, `root`), which
 * `npm-lock.ts` lays out as an exact package-lock.json. Pure functions over file contents: nothing is run or
 * fetched. The module is longer than 450 lines because the three readers share their helpers and checks.
 */
import { parse as parseYaml } from "yaml";
import { BuildError, summarise } from "../../common/errors.ts";

export type NodeLockFamily = "npm" | "pnpm" | "yarn";

export interface NodeLockedPackage {
  name: string;
  version: string;
  /** The tarball URL the lock recorded, when it did. */
  resolved: string | undefined;
  /** Subresource-integrity string (`sha512-<base64>`, or `sha1-…` in old locks), when the lock recorded one. */
  integrity: string | undefined;
  /** pnpm and Yarn: its production dependencies as installed, folder name → `name@version` it resolves to. */
  dependencies?: Record<string, string>;
  /** The names in `dependencies` that are optional dependencies. */
  optional?: string[];
  /** The platforms the lock says the package runs on (pnpm's `os`/`cpu`/`libc`, Berry's `conditions`). */
  os?: string[];
  cpu?: string[];
  libc?: string[];
}

export interface NodeLockSet {
  family: NodeLockFamily;
  /** The lock's format, e.g. `pnpm 9.0`, `yarn 1`, `yarn berry 8`, `npm 3`. */
  format: string;
  /** Sorted by name, then version; unique by name and version. */
  packages: NodeLockedPackage[];
  /** pnpm and Yarn: package.json's production dependencies, folder name → `name@version` (as `dependencies`). */
  root?: Record<string, string>;
  /** The names in `root` that are optional dependencies. */
  rootOptional?: string[];
}

export interface NodeLockInput {
  /** `package.json`'s text. */
  manifest: string;
  /** The lock's text. */
  lock: string;
  /** Where the folder is, for messages (e.g. `layers/api`). */
  where: string;
}

type Table = Record<string, unknown>;

function isTable(value: unknown): value is Table {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
function table(value: unknown): Table {
  return isTable(value) ? value : {};
}
function str(value: unknown): string | undefined {
  return typeof value === "string" ? value : typeof value === "number" ? String(value) : undefined;
}
function stringMap(value: unknown): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries(table(value))) {
    const s = str(v);
    if (s !== undefined) out.set(k, s);
  }
  return out;
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0] ?? "";
}

function readManifest(input: NodeLockInput): Table {
  try {
    return table(JSON.parse(input.manifest));
  } catch (error) {
    throw new BuildError(`${input.where}/package.json is not valid JSON (${firstLine(error)}); fix it`, {
      cause: error,
    });
  }
}

const SECTIONS = ["dependencies", "optionalDependencies", "devDependencies"] as const;
const PRODUCTION = ["dependencies", "optionalDependencies"] as const;

function outOfDate(where: string, lock: string, command: string, what: readonly string[]): BuildError {
  return new BuildError(
    `${where}/${lock} is out of date with package.json (${summarise([...what], 3, ", ")}); run \`${command}\` and commit ${lock}`,
  );
}

function finish(
  family: NodeLockFamily,
  format: string,
  packages: Iterable<NodeLockedPackage>,
  graph: { root?: Record<string, string>; rootOptional?: string[] } = {},
): NodeLockSet {
  const unique = new Map<string, NodeLockedPackage>();
  for (const p of packages) if (!unique.has(`${p.name}@${p.version}`)) unique.set(`${p.name}@${p.version}`, p);
  const sorted = [...unique.values()].sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : a.version < b.version ? -1 : a.version > b.version ? 1 : 0,
  );
  return { family, format, packages: sorted, ...graph };
}

/** The graph fields of a package: its dependencies (folder name → id) and which of them are optional. */
function edges(
  deps: Map<string, { id: string; optional: boolean }>,
): Pick<NodeLockedPackage, "dependencies" | "optional"> {
  const names = [...deps.keys()].sort();
  const optional = names.filter((n) => deps.get(n)?.optional);
  return {
    dependencies: Object.fromEntries(names.map((n) => [n, deps.get(n)?.id ?? ""])),
    ...(optional.length > 0 ? { optional } : {}),
  };
}

function strings(value: unknown): string[] | undefined {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : undefined;
}

/** Reads a lock of `family`. */
export function readNodeLock(family: NodeLockFamily, input: NodeLockInput): NodeLockSet {
  if (family === "npm") return readNpmLock(input);
  if (family === "pnpm") return readPnpmLock(input);
  return readYarnLock(input);
}

// ---------------------------------------------------------------------------------------------------
// package-lock.json

/** Reads `package-lock.json` (lockfileVersion 2 or 3): the entries npm installs with `--omit=dev`. */
export function readNpmLock(input: NodeLockInput): NodeLockSet {
  const { where } = input;
  const manifest = readManifest(input);
  let lock: Table;
  try {
    lock = table(JSON.parse(input.lock));
  } catch (error) {
    throw new BuildError(`${where}/package-lock.json is not valid JSON (${firstLine(error)}); run \`npm install\``, {
      cause: error,
    });
  }
  const version = Number(lock.lockfileVersion);
  const packages = table(lock.packages);
  if (version < 2 || !isTable(packages[""])) {
    throw new BuildError(
      `${where}/package-lock.json has lockfileVersion ${String(lock.lockfileVersion)}, which records no packages map; run \`npm install\` with npm 7 or later and commit package-lock.json`,
    );
  }
  const root = table(packages[""]);
  const problems: string[] = [];
  for (const section of SECTIONS) {
    const wanted = stringMap(manifest[section]);
    const locked = stringMap(root[section]);
    for (const [name, range] of wanted) if (locked.get(name) !== range) problems.push(`${name}@${range}`);
    for (const name of locked.keys()) if (!wanted.has(name)) problems.push(`${name} removed`);
  }
  if (problems.length > 0) throw outOfDate(where, "package-lock.json", "npm install", problems);
  const out: NodeLockedPackage[] = [];
  for (const [path, value] of Object.entries(packages)) {
    const entry = table(value);
    if (path === "" || entry.dev === true || entry.devOptional === true || entry.link === true) continue;
    if (!path.includes("node_modules/")) continue; // workspace folders
    const name = str(entry.name) ?? path.slice(path.lastIndexOf("node_modules/") + "node_modules/".length);
    out.push({
      name,
      version: str(entry.version) ?? "",
      resolved: str(entry.resolved),
      integrity: str(entry.integrity),
    });
  }
  return finish("npm", `npm ${version}`, out);
}

// ---------------------------------------------------------------------------------------------------
// pnpm-lock.yaml

function parseYamlFile(text: string, file: string, where: string): Table {
  try {
    return table(parseYaml(text));
  } catch (error) {
    throw new BuildError(`${where}/${file} is not valid YAML (${firstLine(error)}); fix or regenerate it`, {
      cause: error,
    });
  }
}

/** `name@version(peer@1)(…)` → `name@version`. */
function withoutPeers(key: string): string {
  const at = key.indexOf("(");
  return at === -1 ? key : key.slice(0, at);
}

/** `@scope/name@1.2.3` → [`@scope/name`, `1.2.3`]. */
function splitNameVersion(key: string): [string, string] {
  const at = key.indexOf("@", 1);
  return at === -1 ? [key, ""] : [key.slice(0, at), key.slice(at + 1)];
}

/** Reads `pnpm-lock.yaml` (lockfileVersion 9): what `pnpm install --prod --frozen-lockfile` installs. */
export function readPnpmLock(input: NodeLockInput): NodeLockSet {
  const { where } = input;
  const manifest = readManifest(input);
  const lock = parseYamlFile(input.lock, "pnpm-lock.yaml", where);
  const format = str(lock.lockfileVersion) ?? "";
  if (!/^9(\.|$)/.test(format)) {
    throw new BuildError(
      `${where}/pnpm-lock.yaml has lockfileVersion ${format || "(none)"}, which layer-sync does not read (it reads 9.x); run \`pnpm install\` with pnpm 9 or later and commit pnpm-lock.yaml`,
    );
  }
  const importer = table(table(lock.importers)["."]);
  const problems: string[] = [];
  for (const section of SECTIONS) {
    const wanted = stringMap(manifest[section]);
    const locked = table(importer[section]);
    for (const [name, range] of wanted)
      if (str(table(locked[name]).specifier) !== range) problems.push(`${name}@${range}`);
    for (const name of Object.keys(locked)) if (!wanted.has(name)) problems.push(`${name} removed`);
  }
  if (problems.length > 0) throw outOfDate(where, "pnpm-lock.yaml", "pnpm install", problems);

  const snapshots = table(lock.snapshots);
  const packages = table(lock.packages);
  /** The snapshot key a dependency `name: version` points at, or undefined for a link. */
  const snapshotKey = (name: string, version: string): string | undefined => {
    if (/^(link|file|workspace):/.test(version)) return undefined;
    return /^\d/.test(version) ? `${name}@${version}` : version; // else an alias: `real-name@1.2.3`
  };
  const seen = new Set<string>();
  const queue: string[] = [];
  const rootDeps = new Map<string, { id: string; optional: boolean }>();
  for (const section of PRODUCTION) {
    for (const [name, value] of Object.entries(table(importer[section]))) {
      const key = snapshotKey(name, str(table(value).version) ?? "");
      if (key === undefined) continue;
      queue.push(key);
      rootDeps.set(name, { id: withoutPeers(key), optional: section === "optionalDependencies" });
    }
  }
  const out: NodeLockedPackage[] = [];
  while (queue.length > 0) {
    const key = queue.shift() ?? "";
    if (seen.has(key)) continue;
    seen.add(key);
    const snapshot = snapshots[key];
    const base = withoutPeers(key);
    const meta = table(packages[base]);
    if (snapshot === undefined && packages[base] === undefined) {
      throw new BuildError(
        `${where}/pnpm-lock.yaml names ${key} but does not hold it; run \`pnpm install\` and commit pnpm-lock.yaml`,
      );
    }
    const [name, version] = splitNameVersion(base);
    const resolution = table(meta.resolution);
    const deps = new Map<string, { id: string; optional: boolean }>();
    for (const section of PRODUCTION) {
      for (const [dep, v] of Object.entries(table(table(snapshot)[section]))) {
        const next = snapshotKey(dep, str(v) ?? "");
        if (next === undefined) continue;
        queue.push(next);
        deps.set(dep, { id: withoutPeers(next), optional: section === "optionalDependencies" });
      }
    }
    const os = strings(meta.os);
    const cpu = strings(meta.cpu);
    const libc = strings(meta.libc);
    out.push({
      name,
      version: str(meta.version) ?? version,
      resolved: str(resolution.tarball),
      integrity: str(resolution.integrity),
      ...edges(deps),
      ...(os ? { os } : {}),
      ...(cpu ? { cpu } : {}),
      ...(libc ? { libc } : {}),
    });
  }
  const installed = new Set(out.map((p) => p.name));
  const patched = Object.keys(table(lock.patchedDependencies)).filter((k) => installed.has(splitNameVersion(k)[0]));
  if (patched.length > 0) {
    throw new BuildError(
      `${where}/pnpm-lock.yaml patches ${patched.join(", ")}; layer-sync installs registry packages as published and does not apply pnpm patches: publish the patched package or commit a package-lock.json`,
    );
  }
  const root = edges(rootDeps);
  return finish("pnpm", `pnpm ${format}`, out, { root: root.dependencies ?? {}, rootOptional: root.optional ?? [] });
}

// ---------------------------------------------------------------------------------------------------
// yarn.lock

/**
 * Parses Yarn 1's lockfile format: `# comments`, entries `"a@^1", a@^1.2:` (one or more comma-separated,
 * optionally quoted keys) followed by indented `key value` lines and nested `key:` blocks. Returns each
 * key pattern mapped to its entry (patterns of one entry share the object).
 */
export function parseYarnV1(text: string): Map<string, Table> {
  const out = new Map<string, Table>();
  const stack: { indent: number; target: Table }[] = [];
  const lines = text.split(/\r?\n/);
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n] ?? "";
    if (line.trim() === "" || line.trimStart().startsWith("#")) continue;
    const indent = line.length - line.trimStart().length;
    const body = line.trim();
    while (stack.length > 0 && (stack[stack.length - 1]?.indent ?? 0) >= indent) stack.pop();
    const parent = stack[stack.length - 1]?.target;
    if (body.endsWith(":")) {
      const child: Table = {};
      if (parent === undefined) {
        for (const key of splitKeys(body.slice(0, -1))) out.set(key, child);
      } else {
        parent[unquote(body.slice(0, -1))] = child;
      }
      stack.push({ indent, target: child });
      continue;
    }
    const m = /^("(?:[^"\\]|\\.)*"|\S+)\s+(.*)$/.exec(body);
    if (m === null || parent === undefined) {
      throw new SyntaxError(`line ${n + 1}: cannot read ${JSON.stringify(body.slice(0, 80))}`);
    }
    const value = m[2] ?? "";
    parent[unquote(m[1] ?? "")] = value === "true" ? true : value === "false" ? false : unquote(value);
  }
  return out;
}

function unquote(text: string): string {
  const t = text.trim();
  if (t.startsWith('"') && t.endsWith('"') && t.length >= 2) return JSON.parse(t) as string;
  return t;
}

function splitKeys(text: string): string[] {
  const keys: string[] = [];
  const pattern = /\s*("(?:[^"\\]|\\.)*"|[^,]+)\s*(?:,|$)/g;
  for (const m of text.matchAll(pattern)) if ((m[1] ?? "").trim() !== "") keys.push(unquote(m[1] ?? ""));
  return keys;
}

/** Reads `yarn.lock`, Yarn 1 or Yarn Berry: what a production install of package.json's dependencies holds. */
export function readYarnLock(input: NodeLockInput): NodeLockSet {
  const { where } = input;
  const manifest = readManifest(input);
  const berry = /^__metadata:/m.test(input.lock);
  let entries: Map<string, Table>;
  let format: string;
  if (berry) {
    const lock = parseYamlFile(input.lock, "yarn.lock", where);
    format = `yarn berry ${str(table(lock.__metadata).version) ?? "?"}`;
    entries = new Map();
    for (const [keys, value] of Object.entries(lock)) {
      if (keys === "__metadata") continue;
      for (const key of splitKeys(keys)) entries.set(key, table(value));
    }
  } else {
    try {
      entries = parseYarnV1(input.lock);
    } catch (error) {
      throw new BuildError(`${where}/yarn.lock cannot be read (${firstLine(error)}); run \`yarn install\``, {
        cause: error,
      });
    }
    format = "yarn 1";
  }
  /** The lock key of `name` at `range` as package.json or a lock entry spells it. */
  const descriptor = (name: string, range: string, fromManifest: boolean): string =>
    berry && fromManifest && !/^[a-z]+:/.test(range) ? `${name}@npm:${range}` : `${name}@${range}`;

  const problems: string[] = [];
  for (const section of SECTIONS) {
    for (const [name, range] of stringMap(manifest[section])) {
      if (/^(workspace|link|portal|file):/.test(range)) continue;
      if (!entries.has(descriptor(name, range, true))) problems.push(`${name}@${range}`);
    }
  }
  if (problems.length > 0) throw outOfDate(where, "yarn.lock", "yarn install", problems);

  const linked = (key: string) => /@(workspace|link|portal|file):/.test(key);
  /** The real package name of a lock entry (Berry's `resolution`, or Yarn 1's alias target). */
  const realName = (key: string, entry: Table): string => {
    if (berry) return splitNameVersion(str(entry.resolution) ?? key)[0];
    const [alias, range] = splitNameVersion(key);
    return range.startsWith("npm:") ? splitNameVersion(range.slice(4))[0] : alias;
  };
  /** `name@version` of the entry a descriptor resolves to, or undefined for a link or a missing entry. */
  const idOf = (key: string): string | undefined => {
    const entry = entries.get(key);
    if (entry === undefined || linked(key) || linked(str(entry.resolution) ?? "")) return undefined;
    return `${realName(key, entry)}@${str(entry.version) ?? ""}`;
  };
  const queue: string[] = [];
  const rootDeps = new Map<string, { id: string; optional: boolean }>();
  for (const section of PRODUCTION) {
    for (const [name, range] of stringMap(manifest[section])) {
      if (/^(workspace|link|portal|file):/.test(range)) continue;
      const key = descriptor(name, range, true);
      queue.push(key);
      const id = idOf(key);
      if (id !== undefined) rootDeps.set(name, { id, optional: section === "optionalDependencies" });
    }
  }
  const seen = new Set<string>();
  const out: NodeLockedPackage[] = [];
  while (queue.length > 0) {
    const key = queue.shift() ?? "";
    if (seen.has(key)) continue;
    seen.add(key);
    const entry = entries.get(key);
    if (entry === undefined) {
      if (linked(key)) continue;
      throw new BuildError(
        `${where}/yarn.lock names ${key} but does not hold it; run \`yarn install\` and commit yarn.lock`,
      );
    }
    const version = str(entry.version) ?? "";
    const name = realName(key, entry);
    const deps = new Map<string, { id: string; optional: boolean }>();
    const optionalNames = new Set(Object.keys(table(entry.optionalDependencies)));
    for (const [dep, meta] of Object.entries(table(entry.dependenciesMeta))) {
      if (table(meta).optional === true) optionalNames.add(dep);
    }
    for (const section of PRODUCTION) {
      for (const [dep, range] of stringMap(entry[section])) {
        const next = descriptor(dep, range, false);
        queue.push(next);
        const id = idOf(next);
        if (id !== undefined) deps.set(dep, { id, optional: optionalNames.has(dep) });
      }
    }
    if (berry) {
      // resolution: "name@npm:1.2.3" — the real name, also for an alias
      const resolution = str(entry.resolution) ?? key;
      if (!/@(npm|patch):/.test(resolution)) {
        if (!linked(resolution)) {
          throw new BuildError(
            `${where}/yarn.lock resolves ${key} to ${resolution}, which is not a registry package; depend on a released version instead`,
          );
        }
        continue;
      }
      if (resolution.includes("@patch:") && !resolution.includes("~builtin<")) {
        throw new BuildError(
          `${where}/yarn.lock patches ${name} (${key}); layer-sync installs registry packages as published and does not apply Yarn patches: publish the patched package or commit a package-lock.json`,
        );
      }
      // Berry's checksum hashes Yarn's cache zip, not the registry tarball: it is not an integrity.
      const conditions = str(entry.conditions) ?? "";
      const values = (what: string) =>
        [...conditions.matchAll(new RegExp(`\\b${what}=([\\w-]+)`, "g"))].map((m) => m[1] ?? "");
      const [os, cpu, libc] = [values("os"), values("cpu"), values("libc")];
      out.push({
        name,
        version,
        resolved: undefined,
        integrity: undefined,
        ...edges(deps),
        ...(os.length ? { os } : {}),
        ...(cpu.length ? { cpu } : {}),
        ...(libc.length ? { libc } : {}),
      });
    } else {
      out.push({ name, version, resolved: str(entry.resolved), integrity: str(entry.integrity), ...edges(deps) });
    }
  }
  const root = edges(rootDeps);
  return finish("yarn", format, out, { root: root.dependencies ?? {}, rootOptional: root.optional ?? [] });
}
