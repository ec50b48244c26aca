/**
 * Settings, parsed and validated once from the schema in `settings.ts`. Each setting comes from an
 * environment variable (the Lambda handlers read only these) or a CLI flag; a flag wins. Every mistake is
 * reported with the name of the setting, and all mistakes are reported together in one `ConfigError`.
 * Rules across settings (defaults that depend on another setting, layer names, Regions against the home
 * Region) are here. This module never reads `process.env` itself: callers pass the environment in.
 * It is longer than 450 lines because it is the one reader of every setting, with the rules across them;
 * splitting the reader from the configurations it builds would only spread one concern over two files.
 */

import { type ConsumerConfig, DEFAULT_CONSUMER_READ_ROLE } from "./consumer-config.ts";
import { ConfigError } from "./errors.ts";
import { regionProblems } from "./region-plan.ts";

import {
  DEFAULTS,
  type Provider,
  SETTINGS,
  type SettingKey,
  type SettingSpec,
  type SettingValue,
  type Strategy,
  settingName,
  splitList,
} from "./settings.ts";

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

export interface LayerDefaults {
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
  layer: LayerDefaults;
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

/** Releases: the smoke test before a new version is pointed to (SMOKE_TEST, SMOKE_ROLE_ARN). */
export interface ReleaseConfig {
  /** SMOKE_TEST: default on when SMOKE_ROLE_ARN is set. */
  smokeTest: boolean;
  /** SMOKE_ROLE_ARN: the smoke functions' execution role. */
  smokeRoleArn: string | undefined;
  /** CANARY_ACCOUNT_IDS: empty means no canary channel. */
  canaryAccountIds: string[];
  /** PROMOTE_AFTER_HOURS: undefined means only `layer-sync promote` promotes. */
  promoteAfterHours: number | undefined;
}

export interface PublishConfig {
  artifacts: ArtifactConfig;
  layer: LayerDefaults;
  regions: RegionConfig;
  summaryEventBus: string | undefined;
  consumers?: ConsumerConfig; // absent: `none`
  release: ReleaseConfig;
}

export { planRegions, regionProblems } from "./region-plan.ts";
export { DEFAULTS, type Provider, REGION, SETTINGS, type SettingKey, type Strategy } from "./settings.ts";

const LAYER_NAME = /^[A-Za-z0-9_-]{1,140}$/;

/** Collects problems while reading settings, so all of them are reported at once. */
class Reader {
  readonly problems: string[] = [];
  constructor(private readonly input: SettingsInput) {}

  private flag(key: SettingKey): string | readonly string[] | undefined {
    const flag = (SETTINGS[key] as SettingSpec).flag;
    return flag ? this.input.flags?.[flag] : undefined;
  }

  /** The raw value(s) of a setting: the flag if given, else the variable. Empty strings count as unset. */
  raw(key: SettingKey): string[] | undefined {
    const flag = this.flag(key);
    if (flag !== undefined) {
      const values = (typeof flag === "string" ? [flag] : [...flag]).flatMap(splitList);
      return values.length ? values : undefined;
    }
    const env = this.input.env[SETTINGS[key].env];
    if (env === undefined || env.trim() === "") return undefined;
    return splitList(env);
  }

  /** A single-valued setting, trimmed; a flag given twice is a problem. */
  one(key: SettingKey): string | undefined {
    const flag = this.flag(key);
    if (flag !== undefined) {
      if (typeof flag !== "string") {
        if (flag.length > 1) this.problem(key, `is given ${flag.length} times; give it once`);
        return flag[0]?.trim() || undefined;
      }
      return flag.trim() || undefined;
    }
    const env = this.input.env[SETTINGS[key].env];
    return env?.trim() ? env.trim() : undefined;
  }

  /** Whether a setting is given (flag or environment) but holds nothing but whitespace. */
  isSetButBlank(key: SettingKey): boolean {
    const flag = this.flag(key);
    const given =
      flag !== undefined ? (typeof flag === "string" ? [flag] : [...flag]) : [this.input.env[SETTINGS[key].env]];
    return given.some((v) => v !== undefined && v.trim() === "");
  }

  problem(key: SettingKey, text: string): void {
    this.problems.push(`${settingName(key)} ${text}`);
  }

  /** The setting's value, validated by its schema; undefined when unset or invalid (the problem is kept). */
  get<K extends SettingKey>(key: K): SettingValue<K> | undefined {
    const spec: SettingSpec = SETTINGS[key];
    const raw = spec.list ? this.raw(key) : this.one(key);
    if (raw === undefined) return undefined;
    const result = spec.schema.safeParse(raw);
    if (result.success) return result.data as SettingValue<K>;
    for (const issue of result.error.issues) this.problem(key, issue.message);
    return undefined;
  }

  required<K extends SettingKey>(key: K, hint: string): SettingValue<K> | undefined {
    if (this.one(key) === undefined) {
      this.problem(key, `is required: ${hint}`);
      return undefined;
    }
    return this.get(key);
  }
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
  const provider = r.required("provider", 'set it to "bitbucket" or "github"') ?? "bitbucket";
  const repository = r.required("repository", "give workspace/repo (Bitbucket) or owner/repo (GitHub)") ?? "";
  const ref = r.get("ref");
  const tokenParameterName = r.get("tokenParameter");
  const token = r.one("token");
  // a token that is set but blank is a mistake, never an anonymous run whose 401 would blame the repository
  if (token === undefined && r.isSetButBlank("token")) {
    r.problem("token", "is set but empty or only whitespace; give the token, or unset it for a public repository");
  }
  if (r.one("tokenParameter") === undefined && r.isSetButBlank("tokenParameter")) {
    r.problem("tokenParameter", "is set but empty or only whitespace; name the token's SSM parameter, or unset it");
  }
  return {
    provider,
    repository,
    ref,
    folders: readFolders(r, layerNamePrefix),
    apiUrl: r.get("apiUrl") ?? (provider === "github" ? DEFAULTS.githubApiUrl : DEFAULTS.bitbucketApiUrl),
    webUrl: r.get("webUrl") ?? DEFAULTS.webUrl,
    strategy: r.get("strategy") ?? "auto",
    tokenParameterName,
    token,
    concurrency: r.get("concurrency") ?? DEFAULTS.concurrency,
    timeoutMs: (r.get("timeout") ?? DEFAULTS.timeoutSeconds) * 1000,
    maxRetries: r.get("maxRetries") ?? DEFAULTS.maxRetries,
    rateLimitMaxWaitMs: (r.get("rateLimitWait") ?? DEFAULTS.rateLimitWaitSeconds) * 1000,
    maxFiles: r.get("maxFiles") ?? DEFAULTS.maxFiles,
    maxBytes: r.get("maxBytes") ?? DEFAULTS.maxBytes,
  };
}

/** `offerOut`: only `sync` has `--out DIR`, so only its message offers it. */
function readArtifacts(r: Reader, requireBucket: boolean, offerOut = false): ArtifactConfig {
  const bucket = requireBucket
    ? r.required(
        "bucket",
        offerOut
          ? "name the S3 bucket for the zips (or use --out DIR for a local build)"
          : "name the S3 bucket that holds the zips",
      )
    : r.get("bucket");
  return {
    bucket,
    artifactPrefix: r.get("artifactPrefix") ?? DEFAULTS.artifactPrefix,
    parameterPrefix: r.get("parameterPrefix") ?? DEFAULTS.parameterPrefix,
  };
}

function readLayer(r: Reader): LayerDefaults {
  return {
    layerNamePrefix: r.get("layerPrefix") ?? "",
    runtimes: r.get("runtimes") ?? [],
    architectures: r.get("architectures") ?? [],
    license: r.get("license"),
    shareOrganizationId: r.get("shareOrg"),
    shareOuIds: r.get("shareOu") ?? [],
    shareAccountIds: r.get("shareAccount") ?? [],
    retainVersions: r.get("retain") ?? DEFAULTS.retainVersions,
  };
}

function readBuild(r: Reader): BuildConfig {
  return {
    pipIndexUrl: r.get("pipIndexUrl"),
    npmRegistry: r.get("npmRegistry"),
    indexTokenParameter: r.get("indexTokenParameter"),
    projects: { x86_64: r.get("projectX86"), arm64: r.get("projectArm") },
    sourcePrefix: r.get("buildSourcePrefix") ?? "build-source/",
    outputPrefix: r.get("buildOutputPrefix") ?? "build-output/",
  };
}

function readRelease(r: Reader): ReleaseConfig {
  const smokeRoleArn = r.get("smokeRole");
  const smoke = r.get("smokeTest");
  if (smoke === "on" && smokeRoleArn === undefined && r.one("smokeRole") === undefined) {
    r.problem("smokeTest", `is on, but ${settingName("smokeRole")} is not set; name the smoke functions' role`);
  }
  return {
    smokeTest: smoke === undefined ? smokeRoleArn !== undefined : smoke === "on",
    smokeRoleArn,
    canaryAccountIds: r.get("canaryAccounts") ?? [],
    promoteAfterHours: r.get("promoteAfterHours"),
  };
}

/** PUBLISH_REGIONS and REGION_BUCKETS as given; `regionProblems` checks them against the home Region. */
function readRegions(r: Reader): RegionConfig {
  return { publishRegions: r.get("publishRegions"), buckets: r.get("regionBuckets") ?? {} };
}

function readConsumers(r: Reader): ConsumerConfig {
  const source = r.get("consumerSource") ?? "none";
  const aggregator = r.get("aggregator");
  if (source === "config" && !aggregator) r.problem("aggregator", "is required with CONSUMER_SOURCE=config");
  const readRole = r.get("readRole") ?? DEFAULT_CONSUMER_READ_ROLE;
  return { source, aggregator, aggregatorRoleArn: r.get("aggregatorRole"), readRole };
}

/** `value`, unless the reader collected problems: then one ConfigError that lists them all. */
function unlessProblems<T>(r: Reader, value: T): T {
  if (r.problems.length) throw new ConfigError(r.problems);
  return value;
}

/** Settings for a sync run (handler or CLI). `requireBucket` is false for `--out` builds. */
export function loadSyncConfig(input: SettingsInput, options: { requireBucket: boolean }): SyncConfig {
  const r = new Reader(input);
  const layer = readLayer(r);
  const source = readSource(r, layer.layerNamePrefix);
  const artifacts = readArtifacts(r, options.requireBucket, true);
  readRegions(r); // checked here too: pipeline-gate mode publishes after the sync
  readConsumers(r);
  const pipelineName = r.get("pipelineName") ?? DEFAULTS.pipelineName;
  const build = readBuild(r);
  return unlessProblems(r, {
    source,
    artifacts,
    layer,
    build,
    pipelineName,
    summaryEventBus: r.get("summaryEventBus"),
  });
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
  return unlessProblems(r, { artifacts, build, summaryEventBus: r.get("summaryEventBus") });
}

/**
 * Settings for publishing and sharing. With `homeRegion` (the Region the caller runs in), PUBLISH_REGIONS
 * and REGION_BUCKETS are also checked against it; the publish core checks them again in any case.
 */
export function loadPublishConfig(input: SettingsInput, options: { homeRegion?: string } = {}): PublishConfig {
  return loadReading(input, true, options.homeRegion);
}

/** Settings of `layer-sync consumers`: as for publishing, without ARTIFACT_BUCKET (it reads no artifact). */
export function loadConsumersConfig(input: SettingsInput): PublishConfig {
  return loadReading(input, false, undefined);
}

function loadReading(input: SettingsInput, requireBucket: boolean, homeRegion: string | undefined): PublishConfig {
  const r = new Reader(input);
  const layer = readLayer(r);
  const artifacts = readArtifacts(r, requireBucket);
  const regions = readRegions(r);
  if (homeRegion !== undefined && r.problems.length === 0) {
    r.problems.push(...regionProblems({ artifacts, regions }, homeRegion));
  }
  const consumers = readConsumers(r);
  const release = readRelease(r);
  return unlessProblems(r, {
    artifacts,
    layer,
    regions,
    summaryEventBus: r.get("summaryEventBus"),
    consumers,
    release,
  });
}

/** `{PARAMETER_PREFIX}/{package}/artifact-key` */
export function artifactKeyParameter(parameterPrefix: string, pkg: string): string {
  return `${parameterPrefix}/${pkg}/artifact-key`;
}

/** `{PARAMETER_PREFIX}/{package}/layer-version-arn` */
export function layerArnParameter(parameterPrefix: string, pkg: string): string {
  return `${parameterPrefix}/${pkg}/layer-version-arn`;
}
