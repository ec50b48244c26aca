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

export function sortPackages(packages: readonly LockedPackage[]): LockedPackage[] {
  return [...packages].sort((a, b) => {
    const x = normalizeName(a.name);
    const y = normalizeName(b.name);
    return x < y ? -1 : x > y ? 1 : a.version < b.version ? -1 : a.version > b.version ? 1 : 0;
  });
}

export function conversion(family: PythonLockFamily, packages: LockedPackage[]): PythonLockConversion {
  const sorted = sortPackages(packages);
  return { family, packages: sorted, requirements: requirementLines(sorted) };
}

// ---------------------------------------------------------------------------------------------------
// small readers over parsed TOML/JSON (unknown in, typed out)

export type Table = Record<string, unknown>;

export function isTable(value: unknown): value is Table {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
export function table(value: unknown): Table {
  return isTable(value) ? value : {};
}
export function tables(value: unknown): Table[] {
  return Array.isArray(value) ? value.filter(isTable) : [];
}
export function str(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}
export function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
}

export function parseTomlFile(text: string, file: string, where: string): Table {
  try {
    return parseToml(text) as Table;
  } catch (error) {
    throw new BuildError(`${where}/${file} is not valid TOML (${firstLine(error)}); fix or regenerate it`, {
      cause: error,
    });
  }
}

export function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0] ?? "";
}

export function outOfDate(where: string, lock: string, manifest: string, command: string, what: string): BuildError {
  return new BuildError(
    `${where}/${lock} is out of date with ${manifest} (${what}); run \`${command}\` and commit ${lock}`,
  );
}

export function sha256Hashes(values: Iterable<string | undefined>): string[] {
  const out = new Set<string>();
  for (const v of values) if (v !== undefined && /^sha256:[0-9a-f]{64}$/.test(v)) out.add(v);
  return [...out].sort();
}

// ---------------------------------------------------------------------------------------------------
// PEP 508, just enough to compare a manifest's requirements with what a lock recorded

export interface Requirement {
  name: string;
  extras: string[];
  /** Version specifier without spaces, clauses sorted (empty when none or a URL). */
  specifier: string;
  marker: string | undefined;
}

export const PEP508 =
  /^\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:\[([^\]]*)\])?\s*([^;]*?)\s*(?:;\s*(.*))?$/;

export function parseRequirement(text: string): Requirement | undefined {
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

export function normalizeSpecifier(spec: string): string {
  return spec
    .replace(/\s+/g, "")
    .split(",")
    .filter((c) => c !== "")
    .sort()
    .join(",");
}

export function requirementKey(r: Requirement, extra: string | undefined): string {
  const extras = r.extras.length > 0 ? `[${r.extras.join(",")}]` : "";
  return `${r.name}${extras}${r.specifier}${extra === undefined ? "" : ` (extra ${extra})`}`;
}

/** The added and removed entries between two key sets, for a message. */
export function difference(manifest: Set<string>, lock: Set<string>): string | undefined {
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
export type Condition = string[][];

export function andMarker(conjunction: readonly string[], marker: string | undefined): string[] {
  if (marker === undefined || conjunction.includes(marker)) return [...conjunction];
  return [...conjunction, marker].sort();
}

/** Adds `conjunction` to `condition`; returns whether it changed anything. */
export function addConjunction(condition: Condition, conjunction: string[]): boolean {
  if (condition.some((c) => c.every((atom) => conjunction.includes(atom)))) return false;
  for (let i = condition.length - 1; i >= 0; i--) {
    const c = condition[i] ?? [];
    if (conjunction.every((atom) => c.includes(atom))) condition.splice(i, 1);
  }
  condition.push(conjunction);
  return true;
}

export const COMPLEMENT: Readonly<Record<string, string>> = {
  "<": ">=",
  ">=": "<",
  ">": "<=",
  "<=": ">",
  "==": "!=",
  "!=": "==",
};

/** `a < 'x'` → `a >= 'x'` (and the other comparisons), or undefined for anything else. */
export function complement(marker: string): string | undefined {
  const m = /^(\w+) (<=|>=|==|!=|<|>) ('[^']*'|"[^"]*")$/.exec(marker.trim());
  return m === null ? undefined : `${m[1]} ${COMPLEMENT[m[2] ?? ""]} ${m[3]}`;
}

export function conditionMarker(condition: Condition): string | undefined {
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

export interface Edge {
  to: string;
  marker: string | undefined;
}

/** The condition of every node reached from `start` (node → edges out), by fixpoint. */
export function reach(start: readonly Edge[], edgesOf: (node: string) => readonly Edge[]): Map<string, Condition> {
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

export function pythonFloat(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (!Number.isFinite(value)) return value > 0 ? "Infinity" : "-Infinity";
  const text = String(value);
  return /[.e]/.test(text) ? text.replace(/e([+-])(\d)$/, "e$10$2") : `${text}.0`;
}

export function pythonString(text: string): string {
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
