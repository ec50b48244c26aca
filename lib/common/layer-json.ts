/**
 * A folder's optional `layer.json`: per-package overrides of the publish settings (`runtimes`,
 * `architectures`, `description`, `license`). The sync validates it and carries it to the publish step in
 * the artifact's S3 metadata (`layer-config`, base64url JSON), so publishing never needs the repository.
 * A `build` section (dependency-manifest builds) is validated here too, so a sync reports every problem of
 * the file at once, read by `build/plan.ts` and never carried along.
 */
import { ConfigError, describeError } from "./errors.ts";

export type Architecture = "x86_64" | "arm64";

/** The validated `build` section of `layer.json`. */
export interface BuildSection {
  runtimes?: string[];
  architectures?: Architecture[];
  exclude?: string[];
  /** The layer's unzipped budget in MiB (1–250): a target above it fails, naming its largest packages. */
  maxUnzippedMiB?: number;
  /** Ship `.pyc` compiled for the target's Python (default true). */
  bytecode?: boolean;
  /** Drop packages' tests, `*.dist-info/RECORD` and the runtime's own boto3/botocore/s3transfer (default false). */
  slim?: boolean;
}

export interface LayerOverrides {
  runtimes?: string[];
  architectures?: string[];
  description?: string;
  license?: string;
  /** Modules the smoke test imports (default: the layer's top-level Python or Node.js packages). */
  smoke?: string[];
}

/**
 * The runtimes a layer can be built for: Lambda's Python and Node.js runtimes that are current, or deprecated
 * but still invocable, from the runtime tables of the AWS Lambda Developer Guide ("Lambda runtimes",
 * docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html, with the deprecated ones), as of December 2026.
 * `python3.15` and `nodejs26.x` are in the SDK's `Runtime` enum but not launched yet, so they are refused
 * until they are added here. Anything else in a `build.runtimes` list, or chosen as a build target, is a
 * configuration error naming it.
 */
export const BUILD_RUNTIMES: readonly string[] = [
  "python3.9",
  "python3.10",
  "python3.11",
  "python3.12",
  "python3.13",
  "python3.14",
  "nodejs18.x",
  "nodejs20.x",
  "nodejs22.x",
  "nodejs24.x",
];

/** The most build targets (runtimes × architectures) one folder may declare. */
export const MAX_BUILD_TARGETS = 32;

/** The problem with runtimes that are not in `BUILD_RUNTIMES`, or undefined; `what` names where they come from. */
export function unknownBuildRuntimes(runtimes: readonly string[], what: string): string | undefined {
  const bad = runtimes.filter((r) => !BUILD_RUNTIMES.includes(r));
  if (!bad.length) return undefined;
  return `${what}: ${bad.map((r) => JSON.stringify(r)).join(", ")} ${bad.length === 1 ? "is not a Lambda runtime" : "are not Lambda runtimes"} layer-sync builds for; use one of ${BUILD_RUNTIMES.join(", ")}`;
}

/** The problem with more than `MAX_BUILD_TARGETS` targets, or undefined. */
export function tooManyTargets(runtimes: number, architectures: number, where: string): string | undefined {
  if (runtimes * architectures <= MAX_BUILD_TARGETS) return undefined;
  return `${where}: ${runtimes} runtime(s) × ${architectures} architecture(s) make ${runtimes * architectures} build targets; at most ${MAX_BUILD_TARGETS} are allowed, so split the folder or build fewer runtimes`;
}

/** A Python module path (`yaml`, `google.protobuf`) or a Node.js package name (`lodash`, `@scope/pkg/sub`). */
const SMOKE_MODULE = /^(@[a-z0-9][\w.-]*\/)?[A-Za-z0-9_][\w.-]*(\/[\w.-]+)*$/;

const RUNTIME =
  /^(nodejs\d+\.x|python3\.\d+|java\d+(\.al2(023)?)?|ruby\d+\.\d+|dotnet\d+|dotnetcore\d+\.\d+|provided(\.al2(023)?)?|go1\.x)$/;
const KEYS = new Set(["runtimes", "architectures", "description", "license", "build", "smoke"]);
const BUILD_KEYS = new Set(["runtimes", "architectures", "exclude", "maxUnzippedMiB", "bytecode", "slim"]);
/** Lambda's 250 MB (262,144,000 bytes) for a function and its layers, unzipped, in MiB. */
export const MAX_UNZIPPED_MIB = 250;

function stringList(value: unknown, field: string, where: string, problems: string[]): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) {
    problems.push(`${where}: "${field}" must be an array of strings`);
    return undefined;
  }
  return value as string[];
}

function strings(value: unknown, field: string, where: string, problems: string[]): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.some((v) => typeof v !== "string" || v === "")) {
    problems.push(`${where}: "build.${field}" must be an array of non-empty strings`);
    return undefined;
  }
  if (new Set(value).size !== value.length) problems.push(`${where}: "build.${field}" repeats an entry`);
  return [...new Set(value as string[])];
}

/** Validate a `build` section (the value of `layer.json`'s `build` key); `where` names the file. */
export function parseBuildSection(raw: unknown, where: string): BuildSection {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new ConfigError(`${where}: "build" must be an object with runtimes, architectures or exclude`);
  }
  const obj = raw as Record<string, unknown>;
  const problems: string[] = [];
  const unknown = Object.keys(obj).filter((k) => !BUILD_KEYS.has(k));
  if (unknown.length)
    problems.push(`${where}: "build" has unknown field(s) ${unknown.map((k) => `"${k}"`).join(", ")}`);
  const runtimes = strings(obj.runtimes, "runtimes", where, problems);
  if (runtimes?.length === 0) problems.push(`${where}: "build.runtimes" is empty; name at least one runtime`);
  const unknownRuntimes = runtimes && unknownBuildRuntimes(runtimes, `${where}: build runtime(s)`);
  if (unknownRuntimes) problems.push(unknownRuntimes);
  const architectures = strings(obj.architectures, "architectures", where, problems);
  const badArch = architectures?.filter((a) => a !== "x86_64" && a !== "arm64") ?? [];
  if (badArch.length)
    problems.push(`${where}: unknown build architecture(s) ${badArch.join(", ")} (use x86_64, arm64)`);
  if (architectures?.length === 0) problems.push(`${where}: "build.architectures" is empty`);
  const tooMany = runtimes && tooManyTargets(runtimes.length, architectures?.length || 1, `${where}: "build"`);
  if (tooMany) problems.push(tooMany);
  const exclude = strings(obj.exclude, "exclude", where, problems);
  const badGlob = exclude?.filter((g) => g.startsWith("/") || g.includes("\\") || g.includes("\0")) ?? [];
  if (badGlob.length) problems.push(`${where}: exclude globs must be relative, "/"-separated: ${badGlob.join(", ")}`);
  const budget = obj.maxUnzippedMiB;
  const budgetOk =
    budget === undefined ||
    (typeof budget === "number" && Number.isInteger(budget) && budget >= 1 && budget <= MAX_UNZIPPED_MIB);
  if (!budgetOk) {
    problems.push(
      `${where}: "build.maxUnzippedMiB" must be a whole number of MiB from 1 to ${MAX_UNZIPPED_MIB} (Lambda's unzipped limit)`,
    );
  }
  for (const flag of ["bytecode", "slim"] as const) {
    if (obj[flag] !== undefined && typeof obj[flag] !== "boolean") {
      problems.push(`${where}: "build.${flag}" must be true or false, not ${JSON.stringify(obj[flag])}`);
    }
  }
  if (problems.length) throw new ConfigError(problems);
  const out: BuildSection = {};
  if (runtimes) out.runtimes = runtimes;
  if (architectures) out.architectures = architectures as Architecture[];
  if (exclude) out.exclude = exclude;
  if (typeof budget === "number") out.maxUnzippedMiB = budget;
  if (typeof obj.bytecode === "boolean") out.bytecode = obj.bytecode;
  if (typeof obj.slim === "boolean") out.slim = obj.slim;
  return out;
}

/** Parse and validate `layer.json` text; `where` names the file in messages. */
export function parseLayerConfig(text: string, where: string): LayerOverrides {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`${where} is not valid JSON: ${describeError(error)}`, { cause: error });
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new ConfigError(`${where} must be a JSON object with runtimes, architectures, description or license`);
  }
  const obj = raw as Record<string, unknown>;
  const problems: string[] = [];
  const unknown = Object.keys(obj).filter((k) => !KEYS.has(k));
  if (unknown.length) problems.push(`${where} has unknown field(s) ${unknown.map((k) => `"${k}"`).join(", ")}`);
  const runtimes = stringList(obj.runtimes, "runtimes", where, problems);
  if (runtimes) {
    const bad = runtimes.filter((r) => !RUNTIME.test(r));
    if (bad.length) problems.push(`${where}: unknown runtime(s) ${bad.join(", ")}`);
    if (runtimes.length > 15) problems.push(`${where}: ${runtimes.length} runtimes; Lambda allows at most 15`);
  }
  const architectures = stringList(obj.architectures, "architectures", where, problems);
  if (architectures) {
    const bad = architectures.filter((a) => a !== "x86_64" && a !== "arm64");
    if (bad.length) problems.push(`${where}: unknown architecture(s) ${bad.join(", ")} (use x86_64, arm64)`);
    if (new Set(architectures).size !== architectures.length) problems.push(`${where}: architectures repeat`);
  }
  for (const [field, max] of [
    ["description", 200],
    ["license", 512],
  ] as const) {
    const v = obj[field];
    if (v === undefined) continue;
    if (typeof v !== "string") problems.push(`${where}: "${field}" must be a string`);
    else if (v.length > max) problems.push(`${where}: "${field}" is ${v.length} characters; at most ${max} allowed`);
  }
  const smoke = stringList(obj.smoke, "smoke", where, problems);
  const badSmoke = smoke?.filter((m) => !SMOKE_MODULE.test(m) || m.length > 214) ?? [];
  if (badSmoke.length) problems.push(`${where}: "smoke" names invalid module(s) ${badSmoke.join(", ")}`);
  if (smoke && smoke.length > 100) problems.push(`${where}: "smoke" lists ${smoke.length} modules; at most 100`);
  if (obj.build !== undefined) {
    try {
      parseBuildSection(obj.build, where);
    } catch (error) {
      problems.push(...((error as ConfigError).problems ?? [describeError(error)]));
    }
  }
  if (problems.length) throw new ConfigError(problems);
  const out: LayerOverrides = {};
  if (runtimes) out.runtimes = [...new Set(runtimes)];
  if (architectures) out.architectures = architectures;
  if (typeof obj.description === "string") out.description = obj.description;
  if (typeof obj.license === "string") out.license = obj.license;
  if (smoke) out.smoke = [...new Set(smoke)];
  return out;
}

/** Encode overrides for S3 user metadata (ASCII only). */
export function encodeLayerConfig(overrides: LayerOverrides): string {
  return Buffer.from(JSON.stringify(overrides), "utf8").toString("base64url");
}

/** Decode the `layer-config` metadata value; `where` names the artifact in messages. */
export function decodeLayerConfig(value: string | undefined, where: string): LayerOverrides {
  if (!value) return {};
  return parseLayerConfig(Buffer.from(value, "base64url").toString("utf8"), `layer.json carried by ${where}`);
}
