/**
 * The build plan of a folder: whether it is a build folder (a dependency manifest at its root, or a
 * `build` section in its `layer.json`), its language, and its targets (runtime × architecture), each
 * with the package and layer it becomes. Every later step (fingerprint, builder, content, publish
 * settings) reads this one object, so the rules live in one place.
 *
 * The language and lock family come from the root files (`locks/families.ts`, `detectFamily`):
 *
 *   requirements.txt                                   → python (requirements)
 *   pyproject.toml + uv.lock | poetry.lock             → python (uv | poetry): the lock is converted to
 *   Pipfile + Pipfile.lock                             → python (pipenv)        hashed requirement lines
 *   package.json + package-lock.json                   → nodejs (npm)
 *   package.json + pnpm-lock.yaml | yarn.lock          → nodejs (pnpm | yarn): the lock is converted to an
 *                                                        exact package-lock.json (npm ci)
 *   a manifest without its lock, or two families       → configuration error naming the command / both
 *
 * Runtimes: `build.runtimes`, else the matching entries of layer.json's `runtimes`, else of
 * `COMPATIBLE_RUNTIMES`, else the newest Lambda runtime of the language (`NEWEST_RUNTIME`).
 * Architectures: `build.architectures`, else layer.json's `architectures`, else `COMPATIBLE_ARCHITECTURES`,
 * else `x86_64`. Every runtime must be one Lambda runs (`BUILD_RUNTIMES`), and a folder has at most
 * `MAX_BUILD_TARGETS` (32) targets; otherwise the plan is a configuration error naming the value.
 */
import { ConfigError, describeError } from "./errors.ts";
import {
  type Architecture,
  type BuildSection,
  parseBuildSection,
  tooManyTargets,
  unknownBuildRuntimes,
} from "./layer-json.ts";
import { type DetectedFamily, detectFamily, familyLabel, type LockFamilyName } from "./lock-families.ts";

export type { Architecture, BuildSection };
export type Language = "python" | "nodejs";

export const REQUIREMENTS = "requirements.txt";
export const PACKAGE_JSON = "package.json";
export const PACKAGE_LOCK = "package-lock.json";
/** The families a build folder may hold (every family `detectFamily` knows). */
export const BUILT_FAMILIES: readonly LockFamilyName[] = [
  "requirements",
  "uv",
  "poetry",
  "pipenv",
  "npm",
  "pnpm",
  "yarn",
];

/** The newest runtime of each language that Lambda supports (the default when nothing else names one). */
export const NEWEST_RUNTIME: Readonly<Record<Language, string>> = { python: "python3.14", nodejs: "nodejs24.x" };
/**
 * Dropped from every built layer unless `build.exclude` says otherwise. `__pycache__` is not in it: the
 * folder's own caches are always dropped, and the build's are kept or dropped by `build.bytecode`.
 */
export const DEFAULT_EXCLUDE: readonly string[] = [];

const RUNTIME_OF: Readonly<Record<Language, RegExp>> = { python: /^python3\.\d+$/, nodejs: /^nodejs\d+\.x$/ };
const LAYER_NAME = /^[A-Za-z0-9_-]{1,140}$/;
/** One runtime × architecture: its own package, layer, artifact and pointer. */
export interface BuildTarget {
  runtime: string;
  architecture: Architecture;
  /** `{name}` with one target, else `{name}-{runtime without dots}-{architecture}`. */
  package: string;
  /** `LAYER_NAME_PREFIX + package`. */
  layerName: string;
  /** What publishing sets for this target's layer versions: just this runtime and architecture. */
  compatibleRuntimes: [string];
  compatibleArchitectures: [Architecture];
}

export interface BuildPlan {
  /** Repository folder, e.g. `layers/pydeps`. */
  folder: string;
  /** The folder's package name (its last segment). */
  name: string;
  language: Language;
  /** The folder's lock family (`requirements` for a plain requirements.txt). */
  family: LockFamilyName;
  /** The family's manifest and lock at the folder root, in that order (never packaged). */
  manifests: string[];
  /** Globs removed from the layer before zipping. */
  exclude: string[];
  /** `build.maxUnzippedMiB`: each target's unzipped budget, when set. */
  maxUnzippedMiB?: number | undefined;
  /** `build.bytecode` (default true): Python layers ship `.pyc` compiled for the target. */
  bytecode: boolean;
  /** `build.slim` (default false): drop packages' tests, RECORD files and the runtime's boto3. */
  slim: boolean;
  targets: BuildTarget[];
}

export interface PlanInput {
  /** Repository folder path. */
  folder: string;
  /** The folder's package name. */
  name: string;
  layerNamePrefix: string;
  /** Paths of the folder's entries, relative to the folder. */
  files: readonly string[];
  /** Text of the folder's root `layer.json`, when it has one. */
  layerJson?: string | undefined;
  /** `COMPATIBLE_RUNTIMES` and `COMPATIBLE_ARCHITECTURES`. */
  defaults: { runtimes: readonly string[]; architectures: readonly string[] };
}

/** The `build` section and the top-level runtimes/architectures of a layer.json text (already checked by layer-config). */
function readLayerJson(
  text: string | undefined,
  where: string,
): { build?: BuildSection; runtimes?: string[]; architectures?: string[] } {
  if (text === undefined) return {};
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`${where} is not valid JSON: ${describeError(error)}`, { cause: error });
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return {};
  const obj = raw as Record<string, unknown>;
  const out: { build?: BuildSection; runtimes?: string[]; architectures?: string[] } = {};
  if (obj.build !== undefined) out.build = parseBuildSection(obj.build, where);
  if (Array.isArray(obj.runtimes)) out.runtimes = obj.runtimes.filter((r): r is string => typeof r === "string");
  if (Array.isArray(obj.architectures)) {
    out.architectures = obj.architectures.filter((a): a is string => typeof a === "string");
  }
  return out;
}

/**
 * The lock family of a folder from its root files, or undefined when it has no manifest. Throws
 * `ConfigError` for a manifest without its lock, two families, two languages, or a family not built yet.
 */
export function detectBuildFamily(files: readonly string[], where: string): DetectedFamily | undefined {
  const root = new Set(files.filter((f) => !f.includes("/")));
  if (root.has(REQUIREMENTS) && root.has(PACKAGE_JSON)) {
    throw new ConfigError(
      `folder "${where}" holds both ${REQUIREMENTS} and ${PACKAGE_JSON}; a build folder builds one language, so split it into two folders`,
    );
  }
  const family = detectFamily(files, where);
  if (family && !BUILT_FAMILIES.includes(family.family)) {
    throw new ConfigError(
      `folder "${where}" holds ${familyLabel(family)}, which this version of layer-sync does not build; remove ${family.lock} and commit one it builds`,
    );
  }
  return family;
}

/** The language of a folder from its root files, or undefined when it has no manifest (see `detectBuildFamily`). */
export function detectLanguage(files: readonly string[], where: string): Language | undefined {
  return detectBuildFamily(files, where)?.language;
}

/** Package name of a target: the folder's name alone when it is the only target. */
export function targetPackage(name: string, runtime: string, architecture: Architecture, single: boolean): string {
  return single ? name : `${name}-${runtime.replace(/\./g, "")}-${architecture}`;
}

/**
 * The build plan of a folder, or undefined when it is not a build folder. Throws `ConfigError` for a
 * folder that is meant to be built but cannot be (no lock file, wrong runtimes, bad layer names …).
 */
export function planBuild(input: PlanInput): BuildPlan | undefined {
  const where = `${input.folder}/layer.json`;
  const layer = readLayerJson(input.layerJson, where);
  const family = detectBuildFamily(input.files, input.folder);
  if (family === undefined) {
    if (layer.build) {
      throw new ConfigError(
        `${where} has a "build" section but the folder has no dependency manifest at its root (${REQUIREMENTS}, pyproject.toml with uv.lock or poetry.lock, Pipfile with Pipfile.lock, or ${PACKAGE_JSON} with ${PACKAGE_LOCK}, pnpm-lock.yaml or yarn.lock)`,
      );
    }
    return undefined;
  }
  const language: Language = family.language;
  const problems: string[] = [];
  const matching = (list: readonly string[] | undefined) => (list ?? []).filter((r) => RUNTIME_OF[language].test(r));
  let runtimes: string[];
  if (layer.build?.runtimes) {
    runtimes = layer.build.runtimes;
    const wrong = runtimes.filter((r) => !RUNTIME_OF[language].test(r));
    if (wrong.length) {
      problems.push(
        `${where}: build runtime(s) ${wrong.join(", ")} do not match the folder's ${family.manifest}; use ${language} runtimes such as ${NEWEST_RUNTIME[language]}`,
      );
    }
  } else {
    const fromLayer = matching(layer.runtimes);
    const fromSettings = matching(input.defaults.runtimes);
    runtimes = fromLayer.length ? fromLayer : fromSettings.length ? fromSettings : [NEWEST_RUNTIME[language]];
    // a runtime of the language's shape that Lambda does not run (python3.15 before its launch) is refused too
    const unknown = unknownBuildRuntimes(
      runtimes,
      fromLayer.length ? `${where}: runtime(s)` : `COMPATIBLE_RUNTIMES (--runtimes), building folder "${input.folder}"`,
    );
    if (unknown) problems.push(unknown);
  }
  const archList = (list: readonly string[] | undefined) =>
    (list ?? []).filter((a): a is Architecture => a === "x86_64" || a === "arm64");
  const architectures: Architecture[] = layer.build?.architectures?.length
    ? layer.build.architectures
    : archList(layer.architectures).length
      ? archList(layer.architectures)
      : archList(input.defaults.architectures).length
        ? archList(input.defaults.architectures)
        : ["x86_64"];
  const tooMany = tooManyTargets(runtimes.length, architectures.length, `folder "${input.folder}"`);
  if (tooMany) throw new ConfigError([...problems, tooMany]);
  const single = runtimes.length * architectures.length === 1;
  const targets: BuildTarget[] = [];
  for (const runtime of runtimes) {
    for (const architecture of architectures) {
      const pkg = targetPackage(input.name, runtime, architecture, single);
      const layerName = `${input.layerNamePrefix}${pkg}`;
      if (!LAYER_NAME.test(layerName)) {
        problems.push(
          `folder "${input.folder}" gives layer name "${layerName}" for ${runtime} ${architecture}, which must match [A-Za-z0-9_-]{1,140}; shorten the folder name or LAYER_NAME_PREFIX`,
        );
      }
      targets.push({
        runtime,
        architecture,
        package: pkg,
        layerName,
        compatibleRuntimes: [runtime],
        compatibleArchitectures: [architecture],
      });
    }
  }
  if (problems.length) throw new ConfigError(problems);
  return {
    folder: input.folder,
    name: input.name,
    language,
    family: family.family,
    manifests: family.files,
    exclude: layer.build?.exclude ?? [...DEFAULT_EXCLUDE],
    ...(layer.build?.maxUnzippedMiB === undefined ? {} : { maxUnzippedMiB: layer.build.maxUnzippedMiB }),
    bytecode: layer.build?.bytecode ?? true,
    slim: layer.build?.slim ?? false,
    targets,
  };
}

/** `3.12` for `python3.12`; `22` for `nodejs22.x`. */
export function runtimeVersion(runtime: string): string {
  return runtime.replace(/^python/, "").replace(/^nodejs(\d+)\.x$/, "$1");
}
