/**
 * Lock families: which dependency manifest and lock file a build folder holds at its root, from the root
 * file names alone (no file is read here). One folder holds exactly one family:
 *
 *   requirements.txt                       → python / requirements (pip)
 *   pyproject.toml + uv.lock               → python / uv
 *   pyproject.toml + poetry.lock           → python / poetry
 *   Pipfile + Pipfile.lock                 → python / pipenv
 *   package.json + package-lock.json       → nodejs / npm
 *   package.json + pnpm-lock.yaml          → nodejs / pnpm
 *   package.json + yarn.lock               → nodejs / yarn (Yarn 1 or Yarn Berry)
 *
 * A manifest without its lock (or a lock without its manifest) is a `ConfigError` naming the command that
 * writes the lock; two families in one folder is a `ConfigError` naming both.
 */
import { ConfigError } from "./errors.ts";

export type LockLanguage = "python" | "nodejs";
export type LockFamilyName = "requirements" | "uv" | "poetry" | "pipenv" | "npm" | "pnpm" | "yarn";

/** One family: its manifest, its lock (none for requirements.txt) and the command that writes the lock. */
export interface LockFamilySpec {
  family: LockFamilyName;
  language: LockLanguage;
  manifest: string;
  lock: string | undefined;
  /** The command that writes (or regenerates) the lock, e.g. `uv lock`. */
  lockCommand: string | undefined;
}

export const FAMILIES: readonly LockFamilySpec[] = [
  { family: "requirements", language: "python", manifest: "requirements.txt", lock: undefined, lockCommand: undefined },
  { family: "uv", language: "python", manifest: "pyproject.toml", lock: "uv.lock", lockCommand: "uv lock" },
  { family: "poetry", language: "python", manifest: "pyproject.toml", lock: "poetry.lock", lockCommand: "poetry lock" },
  { family: "pipenv", language: "python", manifest: "Pipfile", lock: "Pipfile.lock", lockCommand: "pipenv lock" },
  {
    family: "npm",
    language: "nodejs",
    manifest: "package.json",
    lock: "package-lock.json",
    lockCommand: "npm install",
  },
  { family: "pnpm", language: "nodejs", manifest: "package.json", lock: "pnpm-lock.yaml", lockCommand: "pnpm install" },
  { family: "yarn", language: "nodejs", manifest: "package.json", lock: "yarn.lock", lockCommand: "yarn install" },
];

/** The family a build folder holds: its spec and the root files that describe it. */
export interface DetectedFamily extends LockFamilySpec {
  /** The manifest and the lock, in that order (both never packaged). */
  files: string[];
}

/** The spec of a family by name. */
export function familySpec(family: LockFamilyName): LockFamilySpec {
  const spec = FAMILIES.find((f) => f.family === family);
  if (spec === undefined) throw new TypeError(`unknown lock family ${family}`);
  return spec;
}

/** How a family is named in messages: `pyproject.toml + uv.lock`. */
export function familyLabel(spec: LockFamilySpec): string {
  return spec.lock === undefined ? spec.manifest : `${spec.manifest} + ${spec.lock}`;
}

/** The commands that write the locks a manifest can have, as `` `uv lock` (uv.lock) or `poetry lock` (poetry.lock) ``. */
function lockChoices(manifest: string): string {
  return FAMILIES.filter((f) => f.manifest === manifest && f.lock !== undefined)
    .map((f) => `\`${f.lockCommand}\` (${f.lock})`)
    .join(" or ");
}

/**
 * The family of a build folder from its file list (paths relative to the folder; only root files count),
 * or undefined when no manifest or lock is at its root. Throws `ConfigError` for a manifest without its
 * lock, a lock without its manifest, or more than one family.
 */
export function detectFamily(files: Iterable<string>, where: string): DetectedFamily | undefined {
  const root = new Set<string>();
  for (const f of files) if (!f.includes("/")) root.add(f);
  const found: LockFamilySpec[] = [];
  const problems: string[] = [];
  for (const manifest of new Set(FAMILIES.map((f) => f.manifest))) {
    const candidates = FAMILIES.filter((f) => f.manifest === manifest);
    const locked = candidates.filter((f) => f.lock === undefined || root.has(f.lock));
    if (root.has(manifest)) {
      if (locked.length === 0) {
        problems.push(
          `folder "${where}" has ${manifest} but no lock file; run ${lockChoices(manifest)} and commit the lock so the layer is built from locked versions`,
        );
      }
      found.push(...locked);
    } else {
      for (const orphan of locked.filter((f) => f.lock !== undefined)) {
        problems.push(
          `folder "${where}" has ${orphan.lock} but no ${manifest}; commit ${manifest} beside it, or remove the stale lock`,
        );
      }
    }
  }
  if (found.length > 1) {
    throw new ConfigError(
      `folder "${where}" holds ${found.length} dependency families (${found.map(familyLabel).join(", ")}); a build folder holds exactly one, so remove the others or split the folder`,
    );
  }
  if (problems.length > 0) throw new ConfigError(problems);
  const spec = found[0];
  if (spec === undefined) return undefined;
  return { ...spec, files: spec.lock === undefined ? [spec.manifest] : [spec.manifest, spec.lock] };
}

/** Root files never packaged by name: `layer.json`, every manifest and lock, and build-only settings. */
export const NEVER_PACKAGED_NAMES: readonly string[] = [
  "layer.json",
  ...new Set(FAMILIES.flatMap((f) => (f.lock === undefined ? [f.manifest] : [f.manifest, f.lock]))),
  ".python-version",
  ".npmrc",
  ".yarnrc.yml",
  // Yarn Berry's own state: its pinned release, offline cache, plugins and Plug'n'Play maps (the layer is
  // installed into node_modules by npm, so none of it is read at run time)
  ".pnp.cjs",
  ".pnp.loader.mjs",
];

/** Root folders never packaged: Yarn Berry's `.yarn/` (releases, cache, plugins, install state). */
const NEVER_PACKAGED_FOLDERS: readonly string[] = [".yarn/"];

/** Root files never packaged by pattern: pip-tools inputs and constraint files. */
const NEVER_PACKAGED_PATTERNS: readonly RegExp[] = [/^requirements.*\.in$/, /^constraints.*\.txt$/];

/**
 * Whether a folder path (relative to the build folder, `/`-separated) is a root file that only describes
 * the build and is never packaged: `layer.json`, every manifest and lock above, `requirements*.in`,
 * `constraints*.txt`, `.python-version`, `.npmrc`, `.yarnrc.yml`, Yarn Berry's `.pnp.cjs`, `.pnp.loader.mjs`
 * and everything under its root `.yarn/` folder. Files of those names below the root are packaged like any
 * other file.
 */
export function isNeverPackaged(path: string): boolean {
  if (NEVER_PACKAGED_FOLDERS.some((f) => path.startsWith(f))) return true;
  if (path.includes("/")) return false;
  return NEVER_PACKAGED_NAMES.includes(path) || NEVER_PACKAGED_PATTERNS.some((p) => p.test(path));
}
