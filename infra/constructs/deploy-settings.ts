/**
 * Deploy mode: settings from typed props, validated the way lib/shared/config.ts validates them, with the
 * defaults made explicit (the values the IAM statements are built from are always set, so the handlers'
 * defaults cannot drift from them).
 */
import { Aws, Token } from "aws-cdk-lib";
import {
  checkArtifactPrefix,
  DEFAULT_ARTIFACT_PREFIX,
  DEFAULT_PARAMETER_PREFIX,
  DEFAULT_PIPELINE_NAME,
  DEFAULT_SUMMARY_EVENT_BUS,
  normaliseParameterPrefix,
  parameterArn,
} from "../names.ts";
import { DEFAULT_RECONCILE_SCHEDULE, type LayerSyncOptions, type LayerSyncSettings } from "../settings.ts";
import {
  DEFAULT_REGION_BUCKET_NAME_PREFIX,
  type ExtraRegions,
  extraRegionsOf,
  REGION_BUCKET_NAME_PREFIX,
  regionalBucketName,
} from "./regions.ts";
import { definedOnly, type FunctionCode, type Resolved } from "./resolved.ts";

const LAYER_NAME_PREFIX = /^[A-Za-z0-9_-]{0,139}$/;
const PIPELINE_NAME = /^[A-Za-z0-9.@_-]{1,100}$/;
const EVENT_BUS_NAME = /^[A-Za-z0-9._\-/]{1,256}$/;
/** Variables the stack sets itself; `extraEnvironment` may not override them. */
const MANAGED_VARIABLES = [
  "SOURCE_PROVIDER",
  "SOURCE_REPOSITORY",
  "SOURCE_REF",
  "SOURCE_PATHS",
  "SOURCE_API_URL",
  "SOURCE_WEB_URL",
  "SOURCE_STRATEGY",
  "TOKEN_PARAMETER_NAME",
  "ARTIFACT_BUCKET",
  "ARTIFACT_PREFIX",
  "PARAMETER_PREFIX",
  "PIPELINE_NAME",
  "LAYER_NAME_PREFIX",
  "COMPATIBLE_RUNTIMES",
  "COMPATIBLE_ARCHITECTURES",
  "SHARE_ORGANIZATION_ID",
  "SHARE_OU_IDS",
  "SHARE_ACCOUNT_IDS",
  "RETAIN_VERSIONS",
  "SUMMARY_EVENT_BUS",
  "LAYER_LICENSE",
  "SOURCE_TOKEN",
  "NODE_OPTIONS",
  "PUBLISH_REGIONS",
  "REGION_BUCKETS",
];

/** Settings from props, validated the way lib/shared/config.ts validates them, defaults made explicit. */
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
  if (!LAYER_NAME_PREFIX.test(layerNamePrefix)) {
    throw new Error(`layerNamePrefix may contain only letters, digits, "_" and "-" (got "${layerNamePrefix}")`);
  }
  const pipelineName = settings.pipelineName ?? DEFAULT_PIPELINE_NAME;
  if (!PIPELINE_NAME.test(pipelineName))
    throw new Error(`pipelineName is not a valid pipeline name: "${pipelineName}"`);
  const summaryEventBus = settings.summaryEventBus ?? DEFAULT_SUMMARY_EVENT_BUS;
  if (!summaryEventBus.startsWith("arn:") && !EVENT_BUS_NAME.test(summaryEventBus)) {
    throw new Error(`summaryEventBus must be an event bus name or ARN (got "${summaryEventBus}")`);
  }
  if (settings.shareOrganizationId !== undefined && !/^o-[a-z0-9]{10,32}$/.test(settings.shareOrganizationId)) {
    throw new Error(`shareOrganizationId must look like o-abcd123456 (got "${settings.shareOrganizationId}")`);
  }
  if (settings.sourcePaths.length === 0) throw new Error("sourcePaths must name at least one folder");
  const overridden = Object.keys(settings.extraEnvironment ?? {}).filter((k) => MANAGED_VARIABLES.includes(k));
  if (overridden.length) {
    throw new Error(`extraEnvironment may not set ${overridden.join(", ")}; use the typed settings instead`);
  }
  const list = (values: readonly string[] | undefined) => (values?.length ? values.join(",") : undefined);
  const env: Record<string, string | undefined> = {
    ...settings.extraEnvironment,
    SOURCE_PROVIDER: settings.sourceProvider,
    SOURCE_REPOSITORY: settings.sourceRepository,
    SOURCE_PATHS: settings.sourcePaths.join(","),
    SOURCE_REF: settings.sourceRef,
    SOURCE_API_URL: settings.sourceApiUrl,
    SOURCE_WEB_URL: settings.sourceWebUrl,
    SOURCE_STRATEGY: settings.sourceStrategy,
    TOKEN_PARAMETER_NAME: settings.tokenParameterName,
    // The values the IAM statements are built from are always set, so the handlers' defaults cannot drift from them.
    ARTIFACT_PREFIX: artifactPrefix,
    PARAMETER_PREFIX: parameterPrefix,
    PIPELINE_NAME: pipelineName,
    SUMMARY_EVENT_BUS: summaryEventBus,
    LAYER_NAME_PREFIX: layerNamePrefix || undefined,
    COMPATIBLE_RUNTIMES: list(settings.compatibleRuntimes),
    COMPATIBLE_ARCHITECTURES: list(settings.compatibleArchitectures),
    SHARE_ORGANIZATION_ID: settings.shareOrganizationId,
    SHARE_OU_IDS: list(settings.shareOuIds),
    SHARE_ACCOUNT_IDS: list(settings.shareAccountIds),
    RETAIN_VERSIONS: settings.retainVersions === undefined ? undefined : String(settings.retainVersions),
    LAYER_LICENSE: settings.layerLicense,
    NODE_OPTIONS: "--enable-source-maps",
    PUBLISH_REGIONS: extraRegions ? settings.publishRegions?.join(",") : undefined,
    REGION_BUCKETS: extraRegions?.regions
      .map((r) => `${r}=${regionalBucketName(extraRegions.bucketNamePrefix, r)}`)
      .join(","),
  };
  const gateMode = options.gateMode ?? false;
  const reconcileSchedule = options.reconcileSchedule ?? DEFAULT_RECONCILE_SCHEDULE;
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
    gateMode,
    eventTriggers: !gateMode,
    reconcile: reconcileSchedule !== false,
    reconcileSchedule: reconcileSchedule === false ? DEFAULT_RECONCILE_SCHEDULE : reconcileSchedule,
    notificationEmail: options.notificationEmail,
    notify: options.notificationEmail !== undefined,
    code,
    extraRegions,
  };
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
