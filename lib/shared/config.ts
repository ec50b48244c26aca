/**
 * Settings, parsed and validated once. Each setting comes from an environment variable (the Lambda
 * handlers read only these) or a CLI flag; a flag wins. Every mistake is reported with the name of the
 * setting, and all mistakes are reported together in one `ConfigError`. This module never reads
 * `process.env` itself: callers pass the environment in.
 */

import type { Provider, Strategy } from "../sync/sources/types.ts";
import { ConfigError } from "./errors.ts";

export type Environment = Readonly<Record<string, string | undefined>>;
export type Flags = Readonly<Record<string, string | readonly string[] | undefined>>;

export interface SettingsInput {
  env: Environment;
  flags?: Flags;
}

/** One configured folder and the package it becomes. */
export interface FolderSpec {
  /** Repository path without leading or trailing slash, e.g. `layers/py-requests`. */
  path: string;
  /** Last path segment, e.g. `py-requests`. */
  package: string;
  /** `LAYER_NAME_PREFIX + package`. */
  layerName: string;
}

export interface SourceConfig {
  provider: Provider;
  repository: string;
  ref: string | undefined;
  folders: FolderSpec[];
  apiUrl: string;
  webUrl: string;
  strategy: Strategy;
  tokenParameterName: string | undefined;
  /** `SOURCE_TOKEN`, for local CLI runs only. */
  token: string | undefined;
  concurrency: number;
  timeoutMs: number;
  maxRetries: number;
  rateLimitMaxWaitMs: number;
  maxFiles: number;
  maxBytes: number;
}

export interface ArtifactConfig {
  bucket: string | undefined;
  artifactPrefix: string;
  parameterPrefix: string;
}

export interface LayerConfig {
  layerNamePrefix: string;
  runtimes: string[];
  architectures: string[];
  license: string | undefined;
  shareOrganizationId: string | undefined;
  shareOuIds: string[];
  shareAccountIds: string[];
  retainVersions: number;
}

/** Private package indexes for builds from dependency manifests. */
export interface BuildConfig {
  /** `BUILD_PIP_INDEX_URL`: pip's index (PEP 503 simple URL), without credentials. */
  pipIndexUrl: string | undefined;
  /** `BUILD_NPM_REGISTRY`: npm's registry URL, without credentials. */
  npmRegistry: string | undefined;
  /** `BUILD_INDEX_TOKEN_PARAMETER`: SSM SecureString holding the index credential. */
  indexTokenParameter: string | undefined;
  /** `BUILD_PROJECT_X86_64`, `BUILD_PROJECT_ARM64`: the stack's CodeBuild projects (Lambda builds). */
  projects: { x86_64: string | undefined; arm64: string | undefined };
  /** `BUILD_SOURCE_PREFIX` (default `build-source/`), `BUILD_OUTPUT_PREFIX` (default `build-output/`). */
  sourcePrefix: string;
  outputPrefix: string;
}

export interface SyncConfig {
  source: SourceConfig;
  artifacts: ArtifactConfig;
  layer: LayerConfig;
  build?: BuildConfig;
  pipelineName: string;
  summaryEventBus: string | undefined;
}

/** Where publishing happens: PUBLISH_REGIONS and REGION_BUCKETS, as given (see `planRegions`). */
export interface RegionConfig {
  /** PUBLISH_REGIONS in order, without duplicates; undefined means the home Region only. */
  publishRegions: string[] | undefined;
  /** REGION_BUCKETS: Region → bucket in that Region, for every Region other than the home one. */
  buckets: Record<string, string>;
}

/** One Region a publish run works in, and the bucket in that Region that the layer is published from. */
export interface RegionTarget {
  region: string;
  bucket: string;
  /** The Region of the function (or CLI): the artifact, its pointer and ARTIFACT_BUCKET live here. */
  home: boolean;
}

export interface PublishConfig {
  artifacts: ArtifactConfig;
  layer: LayerConfig;
  regions: RegionConfig;
  summaryEventBus: string | undefined;
}

export const DEFAULTS = {
  bitbucketApiUrl: "https://api.bitbucket.org/2.0",
  githubApiUrl: "https://api.github.com",
  webUrl: "https://bitbucket.org",
  artifactPrefix: "layers/",
  parameterPrefix: "/layer-sync",
  pipelineName: "Custom-Control-Tower-CodePipeline",
  retainVersions: 10,
  concurrency: 8,
  timeoutSeconds: 30,
  maxRetries: 4,
  rateLimitWaitSeconds: 60,
  maxFiles: 20_000,
  /** Lambda's limit for a function and all its layers, unzipped: 250 MiB. */
  maxBytes: 262_144_000,
} as const;

/** Environment variable ⇄ CLI flag for every setting. Flags without a variable are CLI-only. */
export const SETTINGS = {
  provider: { env: "SOURCE_PROVIDER", flag: "provider" },
  repository: { env: "SOURCE_REPOSITORY", flag: "repository" },
  ref: { env: "SOURCE_REF", flag: "ref" },
  paths: { env: "SOURCE_PATHS", flag: "path" },
  apiUrl: { env: "SOURCE_API_URL", flag: "api-url" },
  webUrl: { env: "SOURCE_WEB_URL", flag: "web-url" },
  strategy: { env: "SOURCE_STRATEGY", flag: "strategy" },
  tokenParameter: { env: "TOKEN_PARAMETER_NAME", flag: "token-parameter" },
  token: { env: "SOURCE_TOKEN", flag: undefined },
  bucket: { env: "ARTIFACT_BUCKET", flag: "bucket" },
  artifactPrefix: { env: "ARTIFACT_PREFIX", flag: "prefix" },
  parameterPrefix: { env: "PARAMETER_PREFIX", flag: "parameter-prefix" },
  pipelineName: { env: "PIPELINE_NAME", flag: undefined },
  layerPrefix: { env: "LAYER_NAME_PREFIX", flag: "layer-prefix" },
  runtimes: { env: "COMPATIBLE_RUNTIMES", flag: "runtimes" },
  architectures: { env: "COMPATIBLE_ARCHITECTURES", flag: "architectures" },
  license: { env: "LAYER_LICENSE", flag: "license" },
  shareOrg: { env: "SHARE_ORGANIZATION_ID", flag: "share-org" },
  shareOu: { env: "SHARE_OU_IDS", flag: "share-ou" },
  shareAccount: { env: "SHARE_ACCOUNT_IDS", flag: "share-account" },
  retain: { env: "RETAIN_VERSIONS", flag: "retain" },
  concurrency: { env: "SOURCE_CONCURRENCY", flag: "concurrency" },
  timeout: { env: "SOURCE_TIMEOUT_SECONDS", flag: "timeout" },
  maxRetries: { env: "SOURCE_MAX_RETRIES", flag: "max-retries" },
  rateLimitWait: { env: "SOURCE_RATE_LIMIT_WAIT_SECONDS", flag: "rate-limit-wait" },
  maxFiles: { env: "SOURCE_MAX_FILES", flag: "max-files" },
  maxBytes: { env: "SOURCE_MAX_BYTES", flag: "max-bytes" },
  summaryEventBus: { env: "SUMMARY_EVENT_BUS", flag: undefined },
  publishRegions: { env: "PUBLISH_REGIONS", flag: "regions" },
  regionBuckets: { env: "REGION_BUCKETS", flag: "region-bucket" },
  pipIndexUrl: { env: "BUILD_PIP_INDEX_URL", flag: "pip-index-url" },
  npmRegistry: { env: "BUILD_NPM_REGISTRY", flag: "npm-registry" },
  indexTokenParameter: { env: "BUILD_INDEX_TOKEN_PARAMETER", flag: "index-token-parameter" },
  projectX86: { env: "BUILD_PROJECT_X86_64", flag: undefined },
  projectArm: { env: "BUILD_PROJECT_ARM64", flag: undefined },
  buildSourcePrefix: { env: "BUILD_SOURCE_PREFIX", flag: undefined },
  buildOutputPrefix: { env: "BUILD_OUTPUT_PREFIX", flag: undefined },
} as const;

type SettingKey = keyof typeof SETTINGS;

const RUNTIME =
  /^(nodejs\d+\.x|python3\.\d+|java\d+(\.al2(023)?)?|ruby\d+\.\d+|dotnet\d+|dotnetcore\d+\.\d+|provided(\.al2(023)?)?|go1\.x)$/;
const ARCHITECTURES = new Set(["x86_64", "arm64"]);
const ORG_ID = /^o-[a-z0-9]{10,32}$/;
const OU_ID = /^ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}$/;
const ACCOUNT_ID = /^\d{12}$/;
const LAYER_NAME = /^[A-Za-z0-9_-]{1,140}$/;
const BUCKET = /^(?!xn--)(?!.*\.\.)(?!\d+\.\d+\.\d+\.\d+$)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const PARAMETER_PATH = /^(\/[A-Za-z0-9_.-]+)+$/;
const PIPELINE = /^[A-Za-z0-9.@_-]{1,100}$/;
const EVENT_BUS = /^(arn:aws[a-z-]*:events:[a-z0-9-]+:\d{12}:event-bus\/)?[/.\-_A-Za-z0-9]{1,256}$/;
/** A Region name such as eu-west-1, us-gov-west-1 or ap-southeast-2. */
export const REGION = /^[a-z]{2}(-[a-z]+)+-\d{1,2}$/;
/** A CodeBuild project name. */
export const CODEBUILD_PROJECT = /^[A-Za-z0-9][A-Za-z0-9_-]{1,254}$/;
const REPOSITORY = /^([A-Za-z0-9._-]+|\{[0-9a-fA-F-]{36}\})\/([A-Za-z0-9._-]+|\{[0-9a-fA-F-]{36}\})$/;

/** Collects problems while reading settings, so all of them are reported at once. */
class Reader {
  readonly problems: string[] = [];
  constructor(private readonly input: SettingsInput) {}

  /** The raw value(s) of a setting: the flag if given, else the variable. Empty strings count as unset. */
  raw(key: SettingKey): string[] | undefined {
    const s = SETTINGS[key];
    const flag = s.flag ? this.input.flags?.[s.flag] : undefined;
    if (flag !== undefined) {
      const values = (typeof flag === "string" ? [flag] : [...flag]).flatMap(splitList);
      return values.length ? values : undefined;
    }
    const env = this.input.env[s.env];
    if (env === undefined || env.trim() === "") return undefined;
    return splitList(env);
  }

  /** A single-valued setting, untrimmed lists rejected. */
  one(key: SettingKey): string | undefined {
    const s = SETTINGS[key];
    const flag = s.flag ? this.input.flags?.[s.flag] : undefined;
    if (flag !== undefined) {
      if (typeof flag !== "string") {
        if (flag.length > 1) this.problem(key, `is given ${flag.length} times; give it once`);
        return flag[0]?.trim() || undefined;
      }
      return flag.trim() || undefined;
    }
    const env = this.input.env[s.env];
    return env?.trim() ? env.trim() : undefined;
  }

  /** Whether a setting is given (flag or environment) but holds nothing but whitespace. */
  isSetButBlank(key: SettingKey): boolean {
    const s = SETTINGS[key];
    const flag = s.flag ? this.input.flags?.[s.flag] : undefined;
    const given = flag !== undefined ? (typeof flag === "string" ? [flag] : [...flag]) : [this.input.env[s.env]];
    return given.some((v) => v !== undefined && v.trim() === "");
  }

  name(key: SettingKey): string {
    const s = SETTINGS[key];
    return s.flag ? `${s.env} (--${s.flag})` : s.env;
  }

  problem(key: SettingKey, text: string): void {
    this.problems.push(`${this.name(key)} ${text}`);
  }

  required(key: SettingKey, hint: string): string | undefined {
    const v = this.one(key);
    if (v === undefined) this.problem(key, `is required: ${hint}`);
    return v;
  }

  integer(key: SettingKey, fallback: number, min: number, max: number): number {
    const v = this.one(key);
    if (v === undefined) return fallback;
    if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
      this.problem(key, `must be a whole number from ${min} to ${max} (got "${v}")`);
      return fallback;
    }
    return Number(v);
  }

  url(key: SettingKey, fallback: string): string {
    const v = this.one(key) ?? fallback;
    let u: URL;
    try {
      u = new URL(v);
    } catch {
      this.problem(key, `must be an http(s) URL (got "${withoutCredentials(v)}")`);
      return fallback;
    }
    if (u.protocol !== "https:" && u.protocol !== "http:") {
      this.problem(key, `must be an http(s) URL (got "${withoutCredentials(v)}")`);
      return fallback;
    }
    if (u.username || u.password || u.search || u.hash) {
      this.problem(key, "must not carry credentials, a query or a fragment; put the token in the token parameter");
      return fallback;
    }
    return v.replace(/\/+$/, "");
  }

  list(key: SettingKey, pattern: RegExp, what: string): string[] {
    const values = this.raw(key) ?? [];
    const bad = values.filter((v) => !pattern.test(v));
    if (bad.length) this.problem(key, `has invalid ${what}: ${bad.map((b) => `"${b}"`).join(", ")}`);
    const dupes = values.filter((v, i) => values.indexOf(v) !== i);
    if (dupes.length) this.problem(key, `lists ${[...new Set(dupes)].join(", ")} more than once`);
    return [...new Set(values.filter((v) => pattern.test(v)))];
  }
}

/** A URL setting's value for a message, without anything that could be credentials (`scheme://…@`). */
function withoutCredentials(value: string): string {
  return value.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)[\s\S]*@/, "$1");
}

function splitList(value: string): string[] {
  return value
    .split(",")
    .map((v) => v.trim())
    .filter((v) => v !== "");
}

/** Normalise and check one configured folder path; returns a problem text or the clean path. */
export function normaliseFolder(raw: string): { path: string } | { problem: string } {
  if (raw.includes("\0")) return { problem: `folder "${raw.replace(/\0/g, "\\0")}" contains a NUL byte` };
  if (raw.includes("\\")) return { problem: `folder "${raw}" contains a backslash; use "/"` };
  const path = raw.replace(/^\/+/, "").replace(/\/+$/, "");
  if (path === "") return { problem: `folder "${raw}" is the repository root; name a folder` };
  const segments = path.split("/");
  if (segments.some((s) => s === "" || s === "." || s === "..")) {
    return { problem: `folder "${raw}" has an empty, "." or ".." segment` };
  }
  return { path };
}

/** Turn folder paths into package specs; problems are returned, not thrown. */
export function parseFolders(
  values: readonly string[],
  layerNamePrefix: string,
): { folders: FolderSpec[]; problems: string[] } {
  const folders: FolderSpec[] = [];
  const problems: string[] = [];
  const byPackage = new Map<string, string>();
  for (const raw of values) {
    const n = normaliseFolder(raw);
    if ("problem" in n) {
      problems.push(`has a bad ${n.problem}`);
      continue;
    }
    const pkg = n.path.split("/").pop() as string;
    const other = byPackage.get(pkg);
    if (other !== undefined) {
      if (other === n.path) problems.push(`lists folder "${n.path}" more than once`);
      else problems.push(`has two folders with the same last segment "${pkg}": "${other}" and "${n.path}"`);
      continue;
    }
    byPackage.set(pkg, n.path);
    const layerName = `${layerNamePrefix}${pkg}`;
    if (!LAYER_NAME.test(layerName)) {
      problems.push(
        `folder "${n.path}" gives layer name "${layerName}", which must match [A-Za-z0-9_-]{1,140}; rename the folder or change LAYER_NAME_PREFIX`,
      );
      continue;
    }
    folders.push({ path: n.path, package: pkg, layerName });
  }
  return { folders, problems };
}

function readFolders(r: Reader, layerNamePrefix: string): FolderSpec[] {
  const values = r.raw("paths");
  if (!values) {
    r.problem("paths", "is required: list the repository folders to turn into layers, e.g. layers/py-requests");
    return [];
  }
  const { folders, problems } = parseFolders(values, layerNamePrefix);
  for (const p of problems) r.problem("paths", p);
  return folders;
}

function readSource(r: Reader, layerNamePrefix: string): SourceConfig {
  const providerRaw = r.required("provider", 'set it to "bitbucket" or "github"');
  let provider: Provider = "bitbucket";
  if (providerRaw !== undefined) {
    if (providerRaw === "bitbucket" || providerRaw === "github") provider = providerRaw;
    else r.problem("provider", `must be "bitbucket" or "github" (got "${providerRaw}")`);
  }
  const repository = r.required("repository", "give workspace/repo (Bitbucket) or owner/repo (GitHub)") ?? "";
  if (repository && !REPOSITORY.test(repository)) {
    r.problem("repository", `must look like workspace/repo or owner/repo (got "${repository}")`);
  }
  const ref = r.one("ref");
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  if (ref !== undefined && (/[\s\x00-\x1f\x7f~^:?*[\\]/.test(ref) || ref.includes("..") || ref.length > 255)) {
    r.problem("ref", `is not a valid branch, tag or commit name (got "${ref}")`);
  }
  const strategyRaw = r.one("strategy") ?? "auto";
  let strategy: Strategy = "auto";
  if (strategyRaw === "auto" || strategyRaw === "walk" || strategyRaw === "archive") strategy = strategyRaw;
  else r.problem("strategy", `must be "auto", "walk" or "archive" (got "${strategyRaw}")`);

  const tokenParameterName = r.one("tokenParameter");
  if (
    tokenParameterName !== undefined &&
    !/^(arn:aws[a-z-]*:ssm:.+:parameter\/)?\/?[A-Za-z0-9_.\-/]{1,1011}$/.test(tokenParameterName)
  ) {
    r.problem("tokenParameter", `is not a valid SSM parameter name (got "${tokenParameterName}")`);
  }
  const token = r.one("token");
  // a token that is set but blank is a mistake, never an anonymous run whose 401 would blame the repository
  if (token === undefined && r.isSetButBlank("token")) {
    r.problem("token", "is set but empty or only whitespace; give the token, or unset it for a public repository");
  }
  if (tokenParameterName === undefined && r.isSetButBlank("tokenParameter")) {
    r.problem("tokenParameter", "is set but empty or only whitespace; name the token's SSM parameter, or unset it");
  }
  return {
    provider,
    repository,
    ref,
    folders: readFolders(r, layerNamePrefix),
    apiUrl: r.url("apiUrl", provider === "github" ? DEFAULTS.githubApiUrl : DEFAULTS.bitbucketApiUrl),
    webUrl: r.url("webUrl", DEFAULTS.webUrl),
    strategy,
    tokenParameterName,
    token,
    concurrency: r.integer("concurrency", DEFAULTS.concurrency, 1, 64),
    timeoutMs: r.integer("timeout", DEFAULTS.timeoutSeconds, 1, 900) * 1000,
    maxRetries: r.integer("maxRetries", DEFAULTS.maxRetries, 0, 10),
    rateLimitMaxWaitMs: r.integer("rateLimitWait", DEFAULTS.rateLimitWaitSeconds, 0, 900) * 1000,
    maxFiles: r.integer("maxFiles", DEFAULTS.maxFiles, 1, 1_000_000),
    maxBytes: r.integer("maxBytes", DEFAULTS.maxBytes, 1, DEFAULTS.maxBytes),
  };
}

function readArtifacts(r: Reader, requireBucket: boolean): ArtifactConfig {
  const bucket = requireBucket
    ? r.required("bucket", "name the S3 bucket for the zips (or use --out DIR for a local build)")
    : r.one("bucket");
  if (bucket !== undefined && !BUCKET.test(bucket))
    r.problem("bucket", `is not a valid S3 bucket name (got "${bucket}")`);
  const artifactPrefix = r.one("artifactPrefix") ?? DEFAULTS.artifactPrefix;
  if (artifactPrefix.startsWith("/") || (artifactPrefix !== "" && !artifactPrefix.endsWith("/"))) {
    r.problem("artifactPrefix", `must be empty or end with "/" and not start with "/" (got "${artifactPrefix}")`);
  } else if (artifactPrefix.length > 512 || /[\\\0]/.test(artifactPrefix)) {
    r.problem("artifactPrefix", "must be at most 512 characters without backslashes or NUL bytes");
  }
  const rawPrefix = r.one("parameterPrefix") ?? DEFAULTS.parameterPrefix;
  const parameterPrefix = rawPrefix.replace(/\/+$/, "");
  if (!PARAMETER_PATH.test(parameterPrefix) || /^\/(aws|ssm)/i.test(parameterPrefix)) {
    r.problem(
      "parameterPrefix",
      `must be an SSM path such as /layer-sync: a leading "/", letters, digits, "_.-", not starting with /aws or /ssm (got "${rawPrefix}")`,
    );
  } else if (parameterPrefix.split("/").length > 13) {
    r.problem("parameterPrefix", "is too deep: SSM allows 15 levels and layer-sync adds two");
  }
  return { bucket, artifactPrefix, parameterPrefix };
}

function readLayer(r: Reader): LayerConfig {
  const layerNamePrefix = r.one("layerPrefix") ?? "";
  if (layerNamePrefix && !/^[A-Za-z0-9_-]{1,139}$/.test(layerNamePrefix)) {
    r.problem("layerPrefix", `may contain only letters, digits, "_" and "-" (got "${layerNamePrefix}")`);
  }
  const runtimes = r.list("runtimes", RUNTIME, "Lambda runtime identifiers (e.g. nodejs24.x, python3.13)");
  if (runtimes.length > 15) r.problem("runtimes", `lists ${runtimes.length} runtimes; Lambda allows at most 15`);
  const architectures = r.list("architectures", /^(x86_64|arm64)$/, 'architectures (use "x86_64" and/or "arm64")');
  for (const a of architectures) if (!ARCHITECTURES.has(a)) r.problem("architectures", `has unknown "${a}"`);
  const license = r.one("license");
  if (license !== undefined && license.length > 512) {
    r.problem("license", `is ${license.length} characters; Lambda allows at most 512`);
  }
  const shareOrganizationId = r.one("shareOrg");
  if (shareOrganizationId !== undefined && !ORG_ID.test(shareOrganizationId)) {
    r.problem("shareOrg", `must be an organization id like o-abcd123456 (got "${shareOrganizationId}")`);
  }
  const accountsRaw = r.raw("shareAccount") ?? [];
  if (accountsRaw.includes("*")) {
    r.problem(
      "shareAccount",
      'contains "*", which would make every layer version public; use SHARE_ORGANIZATION_ID to share with the organization',
    );
  }
  const shareAccountIds = accountsRaw.includes("*") ? [] : r.list("shareAccount", ACCOUNT_ID, "12-digit account ids");
  const shareOuIds = r.list("shareOu", OU_ID, "OU ids (ou-xxxx-xxxxxxxx)");
  return {
    layerNamePrefix,
    runtimes,
    architectures,
    license,
    shareOrganizationId,
    shareOuIds,
    shareAccountIds,
    retainVersions: r.integer("retain", DEFAULTS.retainVersions, 1, 10_000),
  };
}

/** An optional http(s) URL setting without credentials, query or fragment. */
function optionalUrl(r: Reader, key: SettingKey): string | undefined {
  const v = r.one(key);
  if (v === undefined) return undefined;
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    r.problem(key, `must be an http(s) URL (got "${withoutCredentials(v)}")`);
    return undefined;
  }
  if (u.protocol !== "https:" && u.protocol !== "http:") {
    r.problem(key, `must be an http(s) URL (got "${withoutCredentials(v)}")`);
    return undefined;
  }
  if (u.username || u.password || u.search || u.hash) {
    r.problem(
      key,
      "must not carry credentials, a query or a fragment; put the credential in BUILD_INDEX_TOKEN_PARAMETER",
    );
    return undefined;
  }
  return v;
}

function readBuild(r: Reader): BuildConfig {
  const indexTokenParameter = r.one("indexTokenParameter");
  if (
    indexTokenParameter !== undefined &&
    !/^(arn:aws[a-z-]*:ssm:.+:parameter\/)?\/?[A-Za-z0-9_.\-/]{1,1011}$/.test(indexTokenParameter)
  ) {
    r.problem("indexTokenParameter", `is not a valid SSM parameter name (got "${indexTokenParameter}")`);
  }
  const project = (key: "projectX86" | "projectArm") => {
    const v = r.one(key);
    if (v !== undefined && !CODEBUILD_PROJECT.test(v)) r.problem(key, `is not a CodeBuild project name (got "${v}")`);
    return v;
  };
  const prefix = (key: "buildSourcePrefix" | "buildOutputPrefix", fallback: string) => {
    const v = r.one(key) ?? fallback;
    if (!/^([A-Za-z0-9!_.*'()-]+\/)+$/.test(v) || v.length > 256) {
      r.problem(
        key,
        `must be an S3 key prefix such as "${fallback}": ending in "/", not starting with "/" (got "${v}")`,
      );
    }
    return v;
  };
  return {
    pipIndexUrl: optionalUrl(r, "pipIndexUrl"),
    npmRegistry: optionalUrl(r, "npmRegistry"),
    indexTokenParameter,
    projects: { x86_64: project("projectX86"), arm64: project("projectArm") },
    sourcePrefix: prefix("buildSourcePrefix", "build-source/"),
    outputPrefix: prefix("buildOutputPrefix", "build-output/"),
  };
}

/** SUMMARY_EVENT_BUS: a bus name or ARN. A bad one would make every summary event fail, and that only logs. */
function readEventBus(r: Reader): string | undefined {
  const bus = r.one("summaryEventBus");
  if (bus !== undefined && !EVENT_BUS.test(bus)) {
    r.problem("summaryEventBus", `is not a valid EventBridge event bus name or ARN (got "${bus}")`);
  }
  return bus;
}

/** PUBLISH_REGIONS and REGION_BUCKETS: syntax, duplicates and one Region per bucket. */
function readRegions(r: Reader): RegionConfig {
  const publishRegions = r.raw("publishRegions")
    ? r.list("publishRegions", REGION, "Region names (e.g. eu-west-1)")
    : undefined;
  const buckets: Record<string, string> = {};
  const regionOf = new Map<string, string>();
  for (const entry of r.raw("regionBuckets") ?? []) {
    const m = /^([^=\s]+)\s*=\s*([^=\s]+)$/.exec(entry);
    if (!m?.[1] || !m[2]) {
      r.problem("regionBuckets", `has "${entry}", which is not REGION=BUCKET (e.g. eu-west-1=my-layers-eu-west-1)`);
      continue;
    }
    const [, region, bucket] = m;
    if (!REGION.test(region)) {
      r.problem("regionBuckets", `has "${entry}", whose Region "${region}" is not a Region name like eu-west-1`);
      continue;
    }
    if (!BUCKET.test(bucket)) {
      r.problem("regionBuckets", `has "${entry}", whose bucket "${bucket}" is not a valid S3 bucket name`);
      continue;
    }
    if (buckets[region] !== undefined) {
      r.problem("regionBuckets", `maps ${region} more than once; give one bucket per Region`);
      continue;
    }
    const other = regionOf.get(bucket);
    if (other !== undefined) {
      r.problem("regionBuckets", `maps both ${other} and ${region} to bucket ${bucket}; a bucket is in one Region`);
      continue;
    }
    buckets[region] = bucket;
    regionOf.set(bucket, region);
  }
  return { publishRegions, buckets };
}

const REGIONS_NAME = `${SETTINGS.publishRegions.env} (--${SETTINGS.publishRegions.flag})`;
const BUCKETS_NAME = `${SETTINGS.regionBuckets.env} (--${SETTINGS.regionBuckets.flag})`;

/** What is wrong with publishing to `config.regions` from `homeRegion` (empty when nothing is). */
export function regionProblems(config: Pick<PublishConfig, "artifacts" | "regions">, homeRegion: string): string[] {
  const problems: string[] = [];
  const { publishRegions, buckets } = config.regions;
  const regions = publishRegions ?? [homeRegion];
  if (!regions.includes(homeRegion)) {
    problems.push(
      `${REGIONS_NAME} must include the home Region ${homeRegion}, where the artifacts and their artifact-key parameters are (got ${regions.join(",")})`,
    );
  }
  const homeBucket = buckets[homeRegion];
  if (homeBucket !== undefined && homeBucket !== config.artifacts.bucket) {
    problems.push(
      `${BUCKETS_NAME} maps the home Region ${homeRegion} to ${homeBucket}, but the home Region publishes from ARTIFACT_BUCKET (${config.artifacts.bucket ?? "unset"}); remove ${homeRegion} from it`,
    );
  }
  for (const region of regions) {
    if (region === homeRegion) continue;
    const bucket = buckets[region];
    if (bucket === undefined) {
      problems.push(
        `${BUCKETS_NAME} has no bucket for ${region}, which ${REGIONS_NAME} lists; add ${region}=BUCKET with a bucket in ${region} (Lambda publishes a layer only from a bucket in its own Region)`,
      );
    } else if (bucket === config.artifacts.bucket) {
      problems.push(
        `${BUCKETS_NAME} maps ${region} to ARTIFACT_BUCKET (${bucket}), which is in the home Region ${homeRegion}; name a bucket in ${region}`,
      );
    }
  }
  return problems;
}

/**
 * The Regions a publish run works in, in the configured order, each with the bucket the layer is published
 * from there (ARTIFACT_BUCKET at home, REGION_BUCKETS elsewhere). Throws one ConfigError
 * naming every problem.
 */
export function planRegions(config: Pick<PublishConfig, "artifacts" | "regions">, homeRegion: string): RegionTarget[] {
  const problems = regionProblems(config, homeRegion);
  if (problems.length) throw new ConfigError(problems);
  return (config.regions.publishRegions ?? [homeRegion]).map((region) => ({
    region,
    bucket: (region === homeRegion ? config.artifacts.bucket : config.regions.buckets[region]) ?? "",
    home: region === homeRegion,
  }));
}

function finish<T>(r: Reader, value: T): T {
  if (r.problems.length) throw new ConfigError(r.problems);
  return value;
}

/** Settings for a sync run (handler or CLI). `requireBucket` is false for `--out` builds. */
export function loadSyncConfig(input: SettingsInput, options: { requireBucket: boolean }): SyncConfig {
  const r = new Reader(input);
  const layer = readLayer(r);
  const source = readSource(r, layer.layerNamePrefix);
  const artifacts = readArtifacts(r, options.requireBucket);
  readRegions(r); // checked here too: pipeline-gate mode publishes after the sync
  const pipelineName = r.one("pipelineName") ?? DEFAULTS.pipelineName;
  if (!PIPELINE.test(pipelineName)) r.problem("pipelineName", `is not a valid pipeline name (got "${pipelineName}")`);
  const build = readBuild(r);
  return finish(r, { source, artifacts, layer, build, pipelineName, summaryEventBus: readEventBus(r) });
}

/** Settings of the build-finished function: where artifacts and pointers go, the build settings, the bus. */
export function loadBuildFinishedConfig(input: SettingsInput): {
  artifacts: ArtifactConfig;
  build: BuildConfig;
  summaryEventBus: string | undefined;
} {
  const r = new Reader(input);
  const artifacts = readArtifacts(r, true);
  const build = readBuild(r);
  return finish(r, { artifacts, build, summaryEventBus: readEventBus(r) });
}

/**
 * Settings for publishing and sharing. With `homeRegion` (the Region the caller runs in), PUBLISH_REGIONS
 * and REGION_BUCKETS are also checked against it; the publish core checks them again in any case.
 */
export function loadPublishConfig(input: SettingsInput, options: { homeRegion?: string } = {}): PublishConfig {
  const r = new Reader(input);
  const layer = readLayer(r);
  const artifacts = readArtifacts(r, true);
  const regions = readRegions(r);
  if (options.homeRegion !== undefined && r.problems.length === 0) {
    r.problems.push(...regionProblems({ artifacts, regions }, options.homeRegion));
  }
  return finish(r, { artifacts, layer, regions, summaryEventBus: readEventBus(r) });
}

/** `{PARAMETER_PREFIX}/{package}/artifact-key` */
export function artifactKeyParameter(parameterPrefix: string, pkg: string): string {
  return `${parameterPrefix}/${pkg}/artifact-key`;
}

/** `{PARAMETER_PREFIX}/{package}/layer-version-arn` */
export function layerArnParameter(parameterPrefix: string, pkg: string): string {
  return `${parameterPrefix}/${pkg}/layer-version-arn`;
}
