/**
 * Deploy mode: settings from typed props, validated the way lib/common/config.ts validates them, with the
 * defaults made explicit (the values the IAM statements are built from are always set, so the handlers'
 * defaults cannot drift from them).
 */
import { Aws, Token } from "aws-cdk-lib";
import { functionVariables, validateEnvironment } from "../../lib/common/settings.ts";
import {
  checkArtifactPrefix,
  DEFAULT_ARTIFACT_PREFIX,
  DEFAULT_PARAMETER_PREFIX,
  DEFAULT_PIPELINE_NAME,
  DEFAULT_SUMMARY_EVENT_BUS,
  normaliseParameterPrefix,
  parameterArn,
} from "../names.ts";
import { propSettings, stackSettings, variableOfProp, variableText } from "../schema.ts";
import {
  DEFAULT_CONCURRENT_BUILD_LIMIT,
  DEFAULT_RECONCILE_SCHEDULE,
  type LayerSyncOptions,
  type LayerSyncSettings,
} from "../settings.ts";
import { BUILD_OUTPUT_PREFIX, BUILD_SOURCE_PREFIX } from "./build-names.ts";
import {
  DEFAULT_REGION_BUCKET_NAME_PREFIX,
  type ExtraRegions,
  extraRegionsOf,
  REGION_BUCKET_NAME_PREFIX,
  regionalBucketName,
} from "./regions.ts";
import { definedOnly, type FunctionCode, type Resolved } from "./resolved.ts";

/** The environment variable of each settings prop (derived from the schema; it validates the value too). */
const VARIABLE_OF = variableOfProp();
/** Variables the stack sets itself (beside the typed settings); `extraEnvironment` may not set them. */
const STACK_VARIABLES = [
  "ARTIFACT_BUCKET",
  // The settings the stack computes (the schema marks them byStack), such as REGION_BUCKETS.
  ...stackSettings()
    .filter((s) => s.deploy.byStack)
    .map((s) => s.env),
  "NODE_OPTIONS",
  "SOURCE_TOKEN",
  // The build projects and prefixes the IAM statements are built from (infra/constructs/builds.ts).
  "BUILD_PROJECT_X86_64",
  "BUILD_PROJECT_ARM64",
  "BUILD_SOURCE_PREFIX",
  "BUILD_OUTPUT_PREFIX",
  // The smoke functions' role the stack creates (infra/constructs/smoke.ts).
  "SMOKE_ROLE_ARN",
];

/**
 * Every problem of the functions' environment, by the schema of lib/common/settings.ts, each naming the
 * typed setting (or the extraEnvironment key) it came from.
 */
function schemaProblems(env: Record<string, string | undefined>, extra: readonly string[]): string[] {
  const prop = new Map(Object.entries(VARIABLE_OF).map(([k, v]) => [v, k]));
  const known = new Set(functionVariables());
  const problems = extra
    .filter((k) => !known.has(k))
    .map((k) => `extraEnvironment sets ${k}, which no layer-sync function reads`);
  // Values known only at deploy time (REGION_BUCKETS names the account) are built by the stack, not given.
  const concrete = Object.fromEntries(Object.entries(env).filter(([, v]) => v === undefined || !Token.isUnresolved(v)));
  const found = [
    ...validateEnvironment("sync", concrete),
    ...validateEnvironment("publish", concrete),
    ...validateEnvironment("build", concrete),
  ];
  for (const problem of new Set(found)) {
    const variable = problem.split(" ", 1)[0] ?? "";
    const name = prop.get(variable);
    problems.push(name ? `${name} (${problem})` : `extraEnvironment ${problem}`);
  }
  return problems;
}

/** Settings from props, validated the way lib/common/config.ts validates them, defaults made explicit. */
export function deploySettings(
  settings: LayerSyncSettings | undefined,
  options: LayerSyncOptions,
  code: FunctionCode | undefined,
  homeRegion: string,
): Resolved {
  if (settings === undefined) throw new Error("LayerSyncStack: settings are required in deploy mode");
  const extraRegions = deployRegions(settings, options, homeRegion);
  const artifactPrefix = checkArtifactPrefix(settings.artifactPrefix ?? DEFAULT_ARTIFACT_PREFIX);
  if (artifactPrefix === "") {
    throw new Error(
      'artifactPrefix must not be empty: the handlers read an empty ARTIFACT_PREFIX as unset and use "layers/"',
    );
  }
  const parameterPrefix = normaliseParameterPrefix(settings.parameterPrefix ?? DEFAULT_PARAMETER_PREFIX);
  const layerNamePrefix = settings.layerNamePrefix ?? "";
  const pipelineName = settings.pipelineName ?? DEFAULT_PIPELINE_NAME;
  const summaryEventBus = settings.summaryEventBus ?? DEFAULT_SUMMARY_EVENT_BUS;
  if (settings.sourcePaths.length === 0) throw new Error("sourcePaths must name at least one folder");
  const managed = [...Object.values(VARIABLE_OF), ...STACK_VARIABLES];
  const extraKeys = Object.keys(settings.extraEnvironment ?? {});
  const overridden = extraKeys.filter((k) => managed.includes(k));
  if (overridden.length) {
    throw new Error(`extraEnvironment may not set ${overridden.join(", ")}; use the typed settings instead`);
  }
  const props: Readonly<Record<string, unknown>> = settings;
  const env: Record<string, string | undefined> = {
    ...settings.extraEnvironment,
    ...Object.fromEntries(propSettings().map((s) => [s.env, variableText(props[s.prop])])),
    // The values the IAM statements are built from are always set, so the handlers' defaults cannot drift from them.
    ARTIFACT_PREFIX: artifactPrefix,
    PARAMETER_PREFIX: parameterPrefix,
    PIPELINE_NAME: pipelineName,
    SUMMARY_EVENT_BUS: summaryEventBus,
    LAYER_NAME_PREFIX: layerNamePrefix || undefined,
    NODE_OPTIONS: "--enable-source-maps",
    PUBLISH_REGIONS: extraRegions ? variableText(settings.publishRegions) : undefined,
    REGION_BUCKETS: extraRegions?.regions
      .map((r) => `${r}=${regionalBucketName(extraRegions.bucketNamePrefix, r)}`)
      .join(","),
  };
  const gateMode = options.gateMode ?? false;
  const reconcileSchedule = options.reconcileSchedule ?? DEFAULT_RECONCILE_SCHEDULE;
  const builds = options.builds ?? true;
  if (!builds && settings.buildIndexTokenParameter !== undefined) {
    throw new Error("buildIndexTokenParameter is read by the CodeBuild projects; it needs builds (not builds: false)");
  }
  checkPrefixesApart(artifactPrefix);
  const concurrentBuildLimit = options.concurrentBuildLimit ?? DEFAULT_CONCURRENT_BUILD_LIMIT;
  if (!Number.isInteger(concurrentBuildLimit) || concurrentBuildLimit < 1) {
    throw new Error(`concurrentBuildLimit must be a whole number of at least 1 (got ${concurrentBuildLimit})`);
  }
  const managementAccount = options.organizationManagementAccountId ?? Aws.ACCOUNT_ID;
  const problems = schemaProblems(env, extraKeys);
  if (problems.length) throw new Error(`LayerSyncStack: bad settings:\n  ${problems.join("\n  ")}`);
  return {
    env: definedOnly(env),
    artifactPrefix,
    parameterPrefix,
    pipelineName,
    layerNamePrefix,
    summaryEventBus,
    tokenParameterArn:
      settings.tokenParameterName === undefined ? undefined : parameterArn(settings.tokenParameterName),
    tokenKeyArn: settings.tokenKmsKeyArn ?? `arn:${Aws.PARTITION}:kms:${Aws.REGION}:${Aws.ACCOUNT_ID}:key/*`,
    hasToken: settings.tokenParameterName !== undefined,
    organizationSegment: settings.shareOrganizationId ?? "o-*",
    managementAccount,
    ramPrincipals: ramPrincipalsOf(settings, managementAccount),
    concurrentBuildLimit,
    artifactKey: options.artifactEncryption === "kms",
    topicKey: options.topicEncryption === true,
    gateMode,
    eventTriggers: !gateMode,
    reconcile: reconcileSchedule !== false,
    reconcileSchedule: reconcileSchedule === false ? DEFAULT_RECONCILE_SCHEDULE : reconcileSchedule,
    notificationEmail: options.notificationEmail,
    notify: options.notificationEmail !== undefined,
    code,
    extraRegions,
    builds,
    indexTokenParameterArn:
      settings.buildIndexTokenParameter === undefined ? undefined : parameterArn(settings.buildIndexTokenParameter),
    hasIndexToken: settings.buildIndexTokenParameter !== undefined,
  };
}

/**
 * What lib/publish/organizations.ts passes to RAM as principals: the organization's ARN, each OU's ARN
 * (`…:ou/{organization}/{ou}`; o-* when the organization id is not configured) and the account ids.
 */
function ramPrincipalsOf(settings: LayerSyncSettings, managementAccount: string): string[] {
  const organizations = `arn:${Aws.PARTITION}:organizations::${managementAccount}`;
  const org = settings.shareOrganizationId;
  return [
    ...(org === undefined ? [] : [`${organizations}:organization/${org}`]),
    ...(settings.shareOuIds ?? []).map((ou) => `${organizations}:ou/${org ?? "o-*"}/${ou}`),
    ...(settings.shareAccountIds ?? []),
  ];
}

/**
 * The artifact prefix must not overlap the build prefixes: the CodeBuild role writes `{BUILD_OUTPUT_PREFIX}*`,
 * and a build (hostile dependencies run in it) must never be able to write an artifact a pointer names.
 */
function checkPrefixesApart(artifactPrefix: string): void {
  for (const prefix of [BUILD_SOURCE_PREFIX, BUILD_OUTPUT_PREFIX]) {
    if (artifactPrefix.startsWith(prefix) || prefix.startsWith(artifactPrefix)) {
      throw new Error(
        `artifactPrefix "${artifactPrefix}" overlaps the build prefix "${prefix}": choose another artifact prefix`,
      );
    }
  }
}

/** PUBLISH_REGIONS of deploy mode: undefined when the stack's Region is the only one. */
function deployRegions(settings: LayerSyncSettings, options: LayerSyncOptions, home: string): ExtraRegions | undefined {
  const bucketNamePrefix = options.regionBucketNamePrefix ?? DEFAULT_REGION_BUCKET_NAME_PREFIX;
  if (!REGION_BUCKET_NAME_PREFIX.test(bucketNamePrefix)) {
    throw new Error(`regionBucketNamePrefix must be 1-30 lowercase letters, digits or "-" (got "${bucketNamePrefix}")`);
  }
  const listed = settings.publishRegions;
  if (listed === undefined || listed.length === 0) return undefined;
  if (Token.isUnresolved(home)) {
    throw new Error("publishRegions needs a stack with a concrete Region (env.region, e.g. from CDK_DEFAULT_REGION)");
  }
  const regions = extraRegionsOf(listed, home);
  return regions.length ? { kind: "list", regions, bucketNamePrefix } : undefined;
}
