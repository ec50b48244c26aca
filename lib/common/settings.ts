/**
 * The one settings schema. Every setting is defined here once: its environment variable (the Lambda
 * handlers read only these), its CLI flag, its type, default, validation, help text, and which commands
 * and Lambda functions read it. `config.ts` parses configuration from this table, the CLI builds its flags
 * and help from it (`cli/args.ts`), and `infra/` validates and passes the functions' settings from it.
 *
 * Validation of one value is a zod schema whose messages follow the project's style: they come after the
 * setting's name (`RETAIN_VERSIONS (--retain) must be …`) and quote the value. Rules that join several
 * settings (a default that depends on the provider, a layer name made of prefix and folder, Regions against
 * the home Region) live in `config.ts` and `regions.ts`.
 *
 * A setting the stack passes to the functions also has `deploy` (its stack prop, and what its CloudFormation
 * Parameter needs beyond the schema): infra/schema.ts derives the typed stack props, the props-to-variable map
 * and the template's Parameters from it, so a new setting is added here and nowhere else.
 *
 * This module reads no environment and imports nothing but zod. It is longer than 450 lines because
 * it is the one table of every setting (some fifty), each defined here once with what infra/ needs, which is the
 * point of it.
 */
import { z } from "zod";
import {
  accountIds,
  BUCKET,
  BUILD_PREFIX,
  CODEBUILD_PROJECT,
  CONFIG_AGGREGATOR,
  choice,
  EVENT_BUS,
  gitRef,
  httpUrl,
  integer,
  keyPrefix,
  LAYER_PREFIX,
  licenseInfo,
  listOf,
  matching,
  ORG_ID,
  OU_ID,
  PARAMETER_PATH,
  PIPELINE,
  parameterPath,
  REGION,
  REPOSITORY,
  ROLE_ARN,
  ROLE_NAME,
  RUNTIME,
  regionBuckets,
  ssmName,
} from "./setting-values.ts";

export { BUCKET, REGION, withoutCredentials } from "./setting-values.ts";

export type Provider = "bitbucket" | "github";
export type Strategy = "auto" | "walk" | "archive";
/** The commands of `layer-sync` that take settings. */
export type Command = "sync" | "publish" | "status" | "consumers";
/** The Lambda functions, by their handler (`handlers/sync.ts`, `handlers/publish.ts`, `handlers/build.ts`). */
export type LambdaFunction = "sync" | "publish" | "build";

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

// ---------------------------------------------------------------------------------------------- the table

export interface SettingSpec<S extends z.ZodType = z.ZodType> {
  /** The environment variable. */
  readonly env: string;
  /** The CLI flag without `--`; undefined for a setting that has only its variable. */
  readonly flag: string | undefined;
  /** Comma-separated in the variable; the flag may be repeated (and each value may hold commas). */
  readonly list: boolean;
  /** A word for the value in help (`--retain N`). */
  readonly value: string;
  /** The default as a person reads it, or undefined when there is none (`required` says when it must be given). */
  readonly default: string | undefined;
  readonly required?: string;
  readonly help: string;
  /** The commands that read it (and so accept its flag). */
  readonly commands: readonly Command[];
  /** The Lambda functions that read it from their environment. */
  readonly functions: readonly LambdaFunction[];
  /** Validates one (trimmed) value, or the list of values of a list setting, and gives its typed form. */
  readonly schema: S;
  /** Set on the settings the stack passes to the functions (infra/ derives its props and parameters from it). */
  readonly deploy?: DeploySpec;
}

/**
 * What infra/ needs to pass a setting to the functions: the stack prop (and CDK context key) of deploy mode
 * and the CloudFormation Parameter of template mode (`SourceProvider` for `sourceProvider`), whose Type is
 * String, Description `VARIABLE: …`, AllowedValues the schema's choices, Default empty unless given here
 * (none for a required setting). Adding a setting here with `deploy` is the only edit infra/ needs.
 */
export interface DeploySpec {
  /** The stack prop, camelCase; the template parameter is the same name capitalised. */
  readonly prop: string;
  /** The stack computes the value in deploy mode (no prop); template mode still has the parameter. */
  readonly byStack?: true;
  /** The parameter's Description after `VARIABLE: `; default the help text. */
  readonly description?: string;
  /** The parameter's Default (empty when not given; none for a required setting). */
  readonly default?: string;
  /** AllowedPattern over the variable's whole text (`^$|…` when it may be empty); choices need none. */
  readonly pattern?: string;
  readonly minLength?: number;
  readonly maxLength?: number;
  /** A secret: the parameter gets NoEcho. */
  readonly secret?: true;
}

const SYNC = ["sync"] as const;
const ALL = ["sync", "publish", "status", "consumers"] as const;
/** The consumer settings: read where consumers are listed or retention runs (sync publishes in gate mode). */
const CONSUMERS = { commands: ["sync", "publish", "status", "consumers"], functions: ["sync", "publish"] } as const;
const BOTH = ["sync", "publish"] as const;
type Extra = Partial<Pick<SettingSpec, "list" | "required" | "commands" | "functions" | "deploy">>;
/** Read by the build-finished function too (where artifacts go, the build settings, the summary bus). */
const WITH_BUILD = { functions: ["sync", "publish", "build"] } as const;
const SYNC_AND_BUILD = { functions: ["sync", "build"] } as const;

/** Which commands and Lambda functions read a setting (the table's scope columns). */
type Scope = Pick<SettingSpec, "commands" | "functions">;

/**
 * The entry maker of one scope: a setting read by `scope`'s commands and functions unless `extra` says
 * otherwise (its `commands` or `functions` replace the scope's).
 */
function scoped(scope: Scope) {
  return function setting<S extends z.ZodType, const E extends Extra = Record<never, never>>(
    [env, flag, value]: [string, string | undefined, string],
    help: string,
    schema: S,
    d?: string,
    extra?: E,
  ): SettingSpec<S> & E {
    const base: SettingSpec<S> = {
      env,
      flag,
      list: false,
      value,
      default: d,
      help,
      commands: scope.commands,
      functions: scope.functions,
      schema,
    };
    return Object.assign(base, extra);
  };
}

/** A setting of the sync function and command alone (the source, its limits, builds). */
const source = scoped({ commands: SYNC, functions: SYNC });
/** A setting of artifacts, layers and Regions: read by every command and both functions. */
const shared = scoped({ commands: ALL, functions: BOTH });

const list = { list: true } as const;
/** Release settings (smoke test, canary): read by `publish` and the functions that publish (sync: gate mode). */
const RELEASE = { commands: ["publish"], functions: ["sync", "publish"] } as const;
const url = (hint: string, strip: boolean) => httpUrl(`put the ${hint}`, strip);

/** CloudFormation AllowedPattern of an empty text or a comma-separated list (no spaces) of `pattern`'s values. */
function listPattern(pattern: RegExp): string {
  const one = pattern.source.replace(/^\^/, "").replace(/\$$/, "");
  return `^$|^${one}(,${one})*$`;
}
/** PARAMETER_PATH as CloudFormation takes it (RegExp.source writes "/" as "\\/"). */
const SSM_PATH = PARAMETER_PATH.source.replaceAll("\\/", "/");
const ACCOUNT_LIST = "^$|^[0-9]{12}(,[0-9]{12})*$";
const HTTP_URL = "^$|^https?://[^@\\s]+$";
const REGION_BUCKET = `${REGION.source.slice(1, -1)}=[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]`;

export const SETTINGS = {
  provider: source(
    ["SOURCE_PROVIDER", "provider", "PROVIDER"],
    "bitbucket or github",
    choice(["bitbucket", "github"] as const),
    undefined,
    { required: "always", deploy: { prop: "sourceProvider" } },
  ),
  repository: source(
    ["SOURCE_REPOSITORY", "repository", "REPO"],
    "workspace/repo (Bitbucket) or owner/repo (GitHub)",
    matching(REPOSITORY, "must look like workspace/repo or owner/repo"),
    undefined,
    { required: "always", deploy: { prop: "sourceRepository", minLength: 3 } },
  ),
  ref: source(["SOURCE_REF", "ref", "REF"], "branch (may contain /), tag or commit", gitRef, "the main branch", {
    deploy: { prop: "sourceRef", description: "branch, tag or commit; empty for the main branch" },
  }),
  paths: source(
    ["SOURCE_PATHS", "path", "DIR"],
    "a repository folder to turn into a layer",
    z.array(z.string()),
    undefined,
    {
      list: true,
      required: "always",
      deploy: {
        prop: "sourcePaths",
        description: "comma-separated repository folders, e.g. layers/py-requests",
        minLength: 1,
      },
    },
  ),
  apiUrl: source(
    ["SOURCE_API_URL", "api-url", "URL"],
    "API base URL (also GitHub Enterprise Server)",
    url("token in the token parameter", true),
    "the provider's public API",
    { deploy: { prop: "sourceApiUrl", description: "API base URL; empty for the provider's default" } },
  ),
  webUrl: source(
    ["SOURCE_WEB_URL", "web-url", "URL"],
    "Bitbucket host for archive downloads",
    url("token in the token parameter", true),
    DEFAULTS.webUrl,
    { deploy: { prop: "sourceWebUrl", description: "Bitbucket host for archive downloads; empty for bitbucket.org" } },
  ),
  strategy: source(
    ["SOURCE_STRATEGY", "strategy", "auto|walk|archive"],
    "how to fetch; auto picks the cheapest that works",
    choice(["auto", "walk", "archive"] as const),
    "auto",
    { deploy: { prop: "sourceStrategy", description: "auto, walk or archive", default: "auto" } },
  ),
  tokenParameter: source(
    ["TOKEN_PARAMETER_NAME", "token-parameter", "NAME"],
    "SSM SecureString holding the token",
    ssmName,
    "none (public repository)",
    {
      deploy: {
        prop: "tokenParameterName",
        description:
          "fully qualified name (starting with /) of an existing SecureString holding the repository token; empty for a public repository",
        pattern: `^$|${SSM_PATH}`,
      },
    },
  ),
  token: source(["SOURCE_TOKEN", undefined, "TOKEN"], "the token itself, for local CLI runs", z.string()),
  bucket: shared(
    ["ARTIFACT_BUCKET", "bucket", "BUCKET"],
    "S3 bucket of the zips (in the home Region)",
    matching(BUCKET, "is not a valid S3 bucket name"),
    undefined,
    { required: "unless --out", ...WITH_BUILD },
  ),
  artifactPrefix: shared(
    ["ARTIFACT_PREFIX", "prefix", "PREFIX"],
    "S3 key prefix of the zips",
    keyPrefix,
    DEFAULTS.artifactPrefix,
    {
      ...WITH_BUILD,
      deploy: {
        prop: "artifactPrefix",
        description: 'S3 key prefix ending in "/"',
        default: DEFAULTS.artifactPrefix,
        pattern: "^[A-Za-z0-9!_.'()-][A-Za-z0-9!_.'()/-]{0,510}/$",
      },
    },
  ),
  parameterPrefix: shared(
    ["PARAMETER_PREFIX", "parameter-prefix", "PATH"],
    "SSM path of the packages' parameters",
    parameterPath,
    DEFAULTS.parameterPrefix,
    {
      ...WITH_BUILD,
      deploy: {
        prop: "parameterPrefix",
        description: "SSM path starting with /, no trailing /",
        default: DEFAULTS.parameterPrefix,
        pattern: SSM_PATH,
      },
    },
  ),
  pipelineName: source(
    ["PIPELINE_NAME", undefined, "NAME"],
    "pipeline whose STARTED events trigger a sync",
    matching(PIPELINE, "is not a valid pipeline name"),
    DEFAULTS.pipelineName,
    {
      commands: [],
      deploy: {
        prop: "pipelineName",
        description: "the pipeline whose STARTED events trigger a sync",
        default: DEFAULTS.pipelineName,
        pattern: PIPELINE.source,
      },
    },
  ),
  layerPrefix: shared(
    ["LAYER_NAME_PREFIX", "layer-prefix", "PREFIX"],
    "prefix of every layer name",
    matching(LAYER_PREFIX, 'may contain only letters, digits, "_" and "-"'),
    "empty",
    {
      deploy: {
        prop: "layerNamePrefix",
        description: "prefix for layer names; may be empty",
        pattern: `^$|${LAYER_PREFIX.source}`,
      },
    },
  ),
  runtimes: shared(
    ["COMPATIBLE_RUNTIMES", "runtimes", "RUNTIME"],
    "compatible Lambda runtimes",
    listOf(RUNTIME, "Lambda runtime identifiers (e.g. nodejs24.x, python3.13)", {
      count: 15,
      message: (n) => `lists ${n} runtimes; Lambda allows at most 15`,
    }),
    undefined,
    { ...list, deploy: { prop: "compatibleRuntimes", description: "comma-separated Lambda runtimes" } },
  ),
  architectures: shared(
    ["COMPATIBLE_ARCHITECTURES", "architectures", "ARCH"],
    "x86_64 and/or arm64",
    listOf(/^(x86_64|arm64)$/, 'architectures (use "x86_64" and/or "arm64")'),
    undefined,
    { ...list, deploy: { prop: "compatibleArchitectures", pattern: "^$|^(x86_64|arm64)(,(x86_64|arm64))?$" } },
  ),
  license: shared(
    ["LAYER_LICENSE", "license", "TEXT"],
    "LicenseInfo of published layer versions",
    licenseInfo,
    undefined,
    { deploy: { prop: "layerLicense", description: "default LicenseInfo of published layers", maxLength: 512 } },
  ),
  shareOrg: shared(
    ["SHARE_ORGANIZATION_ID", "share-org", "ORG"],
    "o-…: grant the whole organization",
    matching(ORG_ID, "must be an organization id like o-abcd123456"),
    undefined,
    {
      deploy: {
        prop: "shareOrganizationId",
        description: "o-… to share with the whole organization",
        pattern: `^$|${ORG_ID.source}`,
      },
    },
  ),
  shareOu: shared(
    ["SHARE_OU_IDS", "share-ou", "OU"],
    "grant the accounts of these OUs, nested OUs included",
    listOf(OU_ID, "OU ids (ou-xxxx-xxxxxxxx)"),
    undefined,
    {
      ...list,
      deploy: { prop: "shareOuIds", description: "comma-separated OU ids (no spaces)", pattern: listPattern(OU_ID) },
    },
  ),
  shareAccount: shared(
    ["SHARE_ACCOUNT_IDS", "share-account", "ID"],
    "grant these 12-digit account ids",
    accountIds,
    undefined,
    {
      ...list,
      deploy: {
        prop: "shareAccountIds",
        description: "comma-separated 12-digit account ids (no spaces)",
        pattern: ACCOUNT_LIST,
      },
    },
  ),
  retain: shared(
    ["RETAIN_VERSIONS", "retain", "N"],
    "layer versions kept per layer (one a parameter names is always kept)",
    integer(1, 10_000),
    String(DEFAULTS.retainVersions),
    {
      deploy: {
        prop: "retainVersions",
        description: "layer versions kept per layer",
        default: String(DEFAULTS.retainVersions),
        pattern: "^[1-9][0-9]{0,3}$",
      },
    },
  ),
  concurrency: source(
    ["SOURCE_CONCURRENCY", "concurrency", "N"],
    "source requests in flight",
    integer(1, 64),
    String(DEFAULTS.concurrency),
  ),
  timeout: source(
    ["SOURCE_TIMEOUT_SECONDS", "timeout", "SECONDS"],
    "timeout of one source request",
    integer(1, 900),
    String(DEFAULTS.timeoutSeconds),
  ),
  maxRetries: source(
    ["SOURCE_MAX_RETRIES", "max-retries", "N"],
    "retries of a failed source request",
    integer(0, 10),
    String(DEFAULTS.maxRetries),
  ),
  rateLimitWait: source(
    ["SOURCE_RATE_LIMIT_WAIT_SECONDS", "rate-limit-wait", "SECONDS"],
    "longest wait for a rate limit to reset",
    integer(0, 900),
    String(DEFAULTS.rateLimitWaitSeconds),
  ),
  maxFiles: source(
    ["SOURCE_MAX_FILES", "max-files", "N"],
    "most files in one folder",
    integer(1, 1_000_000),
    String(DEFAULTS.maxFiles),
  ),
  maxBytes: source(
    ["SOURCE_MAX_BYTES", "max-bytes", "BYTES"],
    "most unzipped bytes in one folder",
    integer(1, DEFAULTS.maxBytes),
    String(DEFAULTS.maxBytes),
  ),
  summaryEventBus: shared(
    ["SUMMARY_EVENT_BUS", undefined, "BUS"],
    "EventBridge bus (name or ARN) for summary and release events (the CLI's publish, rollback and promote read it too)",
    matching(EVENT_BUS, "is not a valid EventBridge event bus name or ARN"),
    "none (no events)",
    {
      commands: [],
      ...WITH_BUILD,
      deploy: {
        prop: "summaryEventBus",
        description: "name of the event bus for summary events",
        default: "default",
        pattern: "^[A-Za-z0-9._-]{1,256}$",
      },
    },
  ),
  publishRegions: shared(
    ["PUBLISH_REGIONS", "regions", "REGION"],
    "Regions to publish and share in",
    listOf(REGION, "Region names (e.g. eu-west-1)"),
    "the home Region",
    {
      ...list,
      deploy: {
        prop: "publishRegions",
        description:
          "comma-separated Regions to publish and share in, this Region included; empty for this Region only",
        pattern: listPattern(REGION),
      },
    },
  ),
  regionBuckets: shared(
    ["REGION_BUCKETS", "region-bucket", "REGION=BUCKET"],
    "the bucket of each Region other than the home one",
    regionBuckets,
    undefined,
    {
      ...list,
      deploy: {
        prop: "regionBuckets",
        byStack: true,
        description:
          "REGION=BUCKET for every other Region of PublishRegions, each bucket made by the regional bucket template ({RegionBucketNamePrefix}-{account}-{Region})",
        pattern: `^$|^${REGION_BUCKET}(,${REGION_BUCKET})*$`,
      },
    },
  ),
  consumerSource: shared(
    ["CONSUMER_SOURCE", "consumer-source", "none|roles|config"],
    "where consumers (functions using the layers) are read from; retention keeps what they use",
    choice(["none", "roles", "config"] as const),
    "none",
    CONSUMERS,
  ),
  aggregator: shared(
    ["CONSUMER_AGGREGATOR", "aggregator", "NAME"],
    "AWS Config aggregator of the config consumer source",
    matching(CONFIG_AGGREGATOR, "is not an AWS Config aggregator name"),
    undefined,
    CONSUMERS,
  ),
  aggregatorRole: shared(
    ["CONSUMER_AGGREGATOR_ROLE_ARN", "aggregator-role", "ARN"],
    "role to assume to query the aggregator in another account",
    matching(ROLE_ARN, "must be an IAM role ARN like arn:aws:iam::111122223333:role/name"),
    "none (the caller's account)",
    CONSUMERS,
  ),
  readRole: shared(
    ["CONSUMER_READ_ROLE", "read-role", "NAME"],
    "role name the roles consumer source assumes in every account",
    matching(ROLE_NAME, "must be an IAM role name (1-64 of letters, digits and +=,.@_-)"),
    "layer-sync-consumer-read",
    CONSUMERS,
  ),
  smokeTest: shared(
    ["SMOKE_TEST", "smoke-test", "on|off"],
    "smoke-test a new layer version in each Region before the ARN parameter names it",
    choice(["on", "off"] as const),
    "on when SMOKE_ROLE_ARN is set, else off",
    {
      ...RELEASE,
      deploy: {
        prop: "smokeTest",
        description:
          "on smoke-tests a new layer version in each Region (with the stack's smoke role) before the ARN parameter names it; off skips it",
        default: "on",
      },
    },
  ),
  smokeRole: shared(
    ["SMOKE_ROLE_ARN", "smoke-role", "ARN"],
    "execution role of the smoke functions (logs only; the stack creates it)",
    matching(ROLE_ARN, "is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)"),
    undefined,
    RELEASE,
  ),
  canaryAccounts: shared(
    ["CANARY_ACCOUNT_IDS", "canary-account", "ID"],
    "canary channel: grant a new version to these accounts only and name it in canary-arn until promoted",
    accountIds,
    undefined,
    {
      ...list,
      ...RELEASE,
      deploy: {
        prop: "canaryAccountIds",
        description: "comma-separated 12-digit account ids of the canary channel (no spaces); empty for none",
        pattern: ACCOUNT_LIST,
      },
    },
  ),
  promoteAfterHours: shared(
    ["PROMOTE_AFTER_HOURS", "promote-after-hours", "HOURS"],
    "promote a canary version after this many hours (checked by the reconcile)",
    integer(1, 8760),
    "never (run layer-sync promote)",
    {
      ...RELEASE,
      deploy: {
        prop: "promoteAfterHours",
        description:
          "the daily reconcile promotes a canary version this many hours old (1-8760); empty: only layer-sync promote does",
        pattern: "^$|^([1-9][0-9]{0,2}|[1-7][0-9]{3}|8[0-6][0-9]{2}|87[0-5][0-9]|8760)$",
      },
    },
  ),
  pipIndexUrl: source(
    ["BUILD_PIP_INDEX_URL", "pip-index-url", "URL"],
    "Python package index (PEP 503) of builds (uv locally, pip in containers), without credentials",
    url("credential in BUILD_INDEX_TOKEN_PARAMETER", false),
    "PyPI",
    {
      ...SYNC_AND_BUILD,
      deploy: {
        prop: "buildPipIndexUrl",
        description: "pip index (PEP 503) of builds, without credentials; empty for PyPI",
        pattern: HTTP_URL,
      },
    },
  ),
  npmRegistry: source(
    ["BUILD_NPM_REGISTRY", "npm-registry", "URL"],
    "npm registry of builds, without credentials",
    url("credential in BUILD_INDEX_TOKEN_PARAMETER", false),
    "the npm registry",
    {
      ...SYNC_AND_BUILD,
      deploy: {
        prop: "buildNpmRegistry",
        description: "npm registry of builds, without credentials; empty for the npm registry",
        pattern: HTTP_URL,
      },
    },
  ),
  indexTokenParameter: source(
    ["BUILD_INDEX_TOKEN_PARAMETER", "index-token-parameter", "NAME"],
    "SSM SecureString with the package index credential",
    ssmName,
    undefined,
    {
      ...SYNC_AND_BUILD,
      deploy: {
        prop: "buildIndexTokenParameter",
        description:
          "fully qualified name (starting with /) of an existing SecureString with the package index credential (only the CodeBuild projects read it); empty for none",
        pattern: `^$|${SSM_PATH}`,
      },
    },
  ),
  projectX86: source(
    ["BUILD_PROJECT_X86_64", undefined, "NAME"],
    "CodeBuild project of x86_64 builds in Lambda (set by the stack)",
    matching(CODEBUILD_PROJECT, "is not a CodeBuild project name"),
    "none (Lambda cannot build)",
    { commands: [], ...SYNC_AND_BUILD },
  ),
  projectArm: source(
    ["BUILD_PROJECT_ARM64", undefined, "NAME"],
    "CodeBuild project of arm64 builds in Lambda (set by the stack)",
    matching(CODEBUILD_PROJECT, "is not a CodeBuild project name"),
    "none (Lambda cannot build)",
    { commands: [], ...SYNC_AND_BUILD },
  ),
  buildSourcePrefix: source(
    ["BUILD_SOURCE_PREFIX", undefined, "PREFIX"],
    "S3 key prefix of build sources in ARTIFACT_BUCKET",
    matching(BUILD_PREFIX, 'must be an S3 key prefix such as "build-source/": ending in "/", not starting with "/"'),
    "build-source/",
    { commands: [], ...SYNC_AND_BUILD },
  ),
  buildOutputPrefix: source(
    ["BUILD_OUTPUT_PREFIX", undefined, "PREFIX"],
    "S3 key prefix of build outputs in ARTIFACT_BUCKET",
    matching(BUILD_PREFIX, 'must be an S3 key prefix such as "build-output/": ending in "/", not starting with "/"'),
    "build-output/",
    { commands: [], ...SYNC_AND_BUILD },
  ),
} as const satisfies Record<string, SettingSpec>;

export type SettingKey = keyof typeof SETTINGS;
export type SettingValue<K extends SettingKey> = z.output<(typeof SETTINGS)[K]["schema"]>;

/** `VARIABLE (--flag)`, or the variable alone: how every message names a setting. */
export function settingName(key: SettingKey): string {
  const s: SettingSpec = SETTINGS[key];
  return s.flag ? `${s.env} (--${s.flag})` : s.env;
}

/** Splits a list setting's text on commas, dropping blanks. */
export function splitList(value: string): string[] {
  return value
    .split(",")
    .map((v) => v.trim())
    .filter((v) => v !== "");
}

/** What is wrong with one value of a setting (its text as in the environment), without the setting's name. */
export function validateSetting(key: SettingKey, text: string): string[] {
  const spec: SettingSpec = SETTINGS[key];
  const result = spec.schema.safeParse(spec.list ? splitList(text) : text.trim());
  return result.success ? [] : result.error.issues.map((issue) => issue.message);
}

/** The settings a Lambda function reads from its environment, in table order (for `infra/`). */
export function functionSettings(fn: LambdaFunction): (SettingSpec & { key: SettingKey })[] {
  return (Object.keys(SETTINGS) as SettingKey[])
    .map((key) => ({ ...(SETTINGS[key] as SettingSpec), key }))
    .filter((s) => s.functions.includes(fn));
}

/** Every environment variable a Lambda function reads (either function when omitted). */
export function functionVariables(fn?: LambdaFunction): string[] {
  return (fn ? functionSettings(fn) : (["sync", "publish", "build"] as const).flatMap((f) => functionSettings(f)))
    .map((s) => s.env)
    .filter((env, i, all) => all.indexOf(env) === i);
}

/**
 * What is wrong with a function's environment, value by value (each problem starts with the setting's
 * name). Rules across settings are checked when the function loads its configuration (`config.ts`).
 */
export function validateEnvironment(fn: LambdaFunction, env: Readonly<Record<string, string | undefined>>): string[] {
  return functionSettings(fn).flatMap((s) => {
    const text = env[s.env];
    if (text === undefined || text.trim() === "") return [];
    return validateSetting(s.key, text).map((p) => `${s.env} ${p}`);
  });
}
