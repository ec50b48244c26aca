/**
 * The stack's configuration: typed props, and how `cdk -c key=value` context maps onto them.
 * Setting names follow docs/interface.md; each maps to one environment variable of the functions.
 */

/** Repository and publishing settings, one per environment variable of the functions. */
export interface LayerSyncSettings {
  /** SOURCE_PROVIDER. */
  readonly sourceProvider: "bitbucket" | "github";
  /** SOURCE_REPOSITORY: `workspace/repo` or `owner/repo`. */
  readonly sourceRepository: string;
  /** SOURCE_PATHS: the folders to turn into layers. */
  readonly sourcePaths: readonly string[];
  /** SOURCE_REF: branch, tag or commit; default the repository's main branch. */
  readonly sourceRef?: string;
  /** SOURCE_API_URL: API base URL (GitHub Enterprise Server, Bitbucket proxy). */
  readonly sourceApiUrl?: string;
  /** SOURCE_WEB_URL: Bitbucket host for archive downloads. */
  readonly sourceWebUrl?: string;
  /** SOURCE_STRATEGY. */
  readonly sourceStrategy?: "auto" | "walk" | "archive";
  /** TOKEN_PARAMETER_NAME: an existing SSM SecureString (name or ARN). The stack never creates it. */
  readonly tokenParameterName?: string;
  /**
   * ARN of the customer managed KMS key that encrypts the token parameter.
   * @default the AWS managed `aws/ssm` key (Decrypt limited to SSM and to the token parameter's encryption context)
   */
  readonly tokenKmsKeyArn?: string;
  /** ARTIFACT_PREFIX. @default "layers/" */
  readonly artifactPrefix?: string;
  /** PARAMETER_PREFIX. @default "/layer-sync" */
  readonly parameterPrefix?: string;
  /** PIPELINE_NAME. @default "Custom-Control-Tower-CodePipeline" */
  readonly pipelineName?: string;
  /** LAYER_NAME_PREFIX. @default "" */
  readonly layerNamePrefix?: string;
  /** COMPATIBLE_RUNTIMES. */
  readonly compatibleRuntimes?: readonly string[];
  /** COMPATIBLE_ARCHITECTURES. */
  readonly compatibleArchitectures?: readonly ("x86_64" | "arm64")[];
  /** SHARE_ORGANIZATION_ID. Also narrows the Organizations read permissions to this organization. */
  readonly shareOrganizationId?: string;
  /** SHARE_OU_IDS. */
  readonly shareOuIds?: readonly string[];
  /** SHARE_ACCOUNT_IDS. */
  readonly shareAccountIds?: readonly string[];
  /** RETAIN_VERSIONS. @default 10 */
  readonly retainVersions?: number;
  /** SUMMARY_EVENT_BUS: name (or ARN) of the bus for summary events. @default "default" */
  readonly summaryEventBus?: string;
  /** LAYER_LICENSE: default LicenseInfo for published layers (at most 512 characters). */
  readonly layerLicense?: string;
  /**
   * PUBLISH_REGIONS: every Region to publish and share in, the stack's own Region included. The stack
   * creates a bucket in each other Region (REGION_BUCKETS) and scopes IAM to exactly these Regions.
   * @default the stack's Region only
   */
  readonly publishRegions?: readonly string[];
  /** BUILD_PIP_INDEX_URL: pip index (PEP 503) of builds, without credentials. @default PyPI */
  readonly buildPipIndexUrl?: string;
  /** BUILD_NPM_REGISTRY: npm registry of builds, without credentials. @default the npm registry */
  readonly buildNpmRegistry?: string;
  /**
   * BUILD_INDEX_TOKEN_PARAMETER: an existing SSM SecureString (fully qualified name) with the package index
   * credential. Only the CodeBuild role may read it (and decrypt it through SSM); the functions never do.
   */
  readonly buildIndexTokenParameter?: string;
  /**
   * SMOKE_TEST: smoke-test a new layer version in each Region before the ARN parameter names it. The stack
   * always creates the smoke role and sets SMOKE_ROLE_ARN, so the handlers' default is on.
   * @default "on"
   */
  readonly smokeTest?: "on" | "off";
  /** CANARY_ACCOUNT_IDS: the canary channel's accounts (a new version is granted to these only until promoted). */
  readonly canaryAccountIds?: readonly string[];
  /** PROMOTE_AFTER_HOURS: the daily reconcile promotes a canary version this many hours old. @default never */
  readonly promoteAfterHours?: number;
  /** More environment variables for tuning (e.g. SOURCE_CONCURRENCY); they may not override the ones above. */
  readonly extraEnvironment?: Readonly<Record<string, string>>;
}

/** Infrastructure options that are not handler settings. */
export interface LayerSyncOptions {
  /** Artifact bucket encryption: S3-managed keys, or a customer managed KMS key created by the stack. @default "s3" */
  readonly artifactEncryption?: "s3" | "kms";
  /** Server access logging of the artifact bucket into a separate log bucket. @default true */
  readonly accessLogging?: boolean;
  /** Days to keep server access logs. @default 365 */
  readonly accessLogRetentionDays?: number;
  /** Days after which noncurrent artifact versions expire. @default 30 */
  readonly noncurrentVersionExpirationDays?: number;
  /** Days after which artifacts move to S3 Standard-IA. @default 30 */
  readonly artifactInfrequentAccessDays?: number;
  /**
   * Days after which artifacts expire. Off by default: the latest artifact of a package that has not
   * changed for a long time must stay, because the daily reconcile publishes from it.
   * @default no expiration
   */
  readonly artifactExpirationDays?: number;
  /** E-mail address subscribed to the failure topic (the recipient must confirm). */
  readonly notificationEmail?: string;
  /** Encrypt the failure topic with a customer managed KMS key created by the stack. @default false */
  readonly topicEncryption?: boolean;
  /**
   * Pipeline-gate mode: a CodePipeline Lambda Invoke action invokes sync, which also publishes and
   * reports the job result. The STARTED and Parameter Store Change rules are then left out (the gate
   * action replaces them; keeping them would publish every change twice).
   * @default false
   */
  readonly gateMode?: boolean;
  /** Schedule expression of the reconcile run of publish (payload `{}`), or false for none. @default "cron(0 5 * * ? *)" */
  readonly reconcileSchedule?: string | false;
  /** Active X-Ray tracing for both functions. @default false */
  readonly tracing?: boolean;
  /** Days to keep the functions' logs (a CloudWatch Logs retention value). @default 90 */
  readonly logRetentionDays?: number;
  /**
   * The organization's management account, for the Organizations read permissions
   * (`arn:aws:organizations::<management account>:ou/...`).
   * @default the stack's account (layer-sync is deployed into the Control Tower management account)
   */
  readonly organizationManagementAccountId?: string;
  /** First part of the extra Regions' bucket names, `{prefix}-{account}-{region}`. @default "layer-sync-layers" */
  readonly regionBucketNamePrefix?: string;
  /**
   * Builds in AWS: the two CodeBuild projects (x86_64, arm64), their role and log groups, the build-finished
   * function and its `CodeBuild Build State Change` rule. Off: none of these, and the Lambda sync fails a
   * build folder with an error saying to deploy the build projects (folders without a manifest are unaffected).
   * @default true
   */
  readonly builds?: boolean;
  /**
   * ConcurrentBuildLimit of each CodeBuild project: at most this many builds of one architecture run at once;
   * CodeBuild refuses StartBuild beyond it (that target fails its sync run; the next run starts it again).
   * @default 4
   */
  readonly concurrentBuildLimit?: number;
}

/** Default ConcurrentBuildLimit of each CodeBuild project. */
export const DEFAULT_CONCURRENT_BUILD_LIMIT = 4;

/** Default schedule of the reconcile run: daily at 05:00 UTC. */
export const DEFAULT_RECONCILE_SCHEDULE = "cron(0 5 * * ? *)";

/** CDK context keys the app reads (`cdk deploy -c sourceRepository=acme/layers …`). */
export const CONTEXT_KEYS = [
  "stackName",
  "sourceProvider",
  "sourceRepository",
  "sourcePaths",
  "sourceRef",
  "sourceApiUrl",
  "sourceWebUrl",
  "sourceStrategy",
  "tokenParameterName",
  "tokenKmsKeyArn",
  "artifactPrefix",
  "parameterPrefix",
  "pipelineName",
  "layerNamePrefix",
  "compatibleRuntimes",
  "compatibleArchitectures",
  "shareOrganizationId",
  "shareOuIds",
  "shareAccountIds",
  "retainVersions",
  "summaryEventBus",
  "layerLicense",
  "publishRegions",
  "buildPipIndexUrl",
  "buildNpmRegistry",
  "buildIndexTokenParameter",
  "smokeTest",
  "canaryAccountIds",
  "promoteAfterHours",
  "artifactEncryption",
  "accessLogging",
  "accessLogRetentionDays",
  "noncurrentVersionExpirationDays",
  "artifactInfrequentAccessDays",
  "artifactExpirationDays",
  "notificationEmail",
  "topicEncryption",
  "gateMode",
  "reconcileSchedule",
  "tracing",
  "logRetentionDays",
  "organizationManagementAccountId",
  "regionBucketNamePrefix",
  "builds",
  "concurrentBuildLimit",
] as const;

export type ContextKey = (typeof CONTEXT_KEYS)[number];

export interface AppConfig {
  stackName: string;
  settings: LayerSyncSettings;
  options: LayerSyncOptions;
}

/** Reads the app configuration from CDK context; every problem is reported at once. */
export function configFromContext(get: (key: ContextKey) => unknown): AppConfig {
  const problems: string[] = [];
  const text = (key: ContextKey): string | undefined => {
    const v = get(key);
    if (v === undefined || v === null) return undefined;
    if (typeof v === "string") return v.trim() === "" ? undefined : v.trim();
    if (typeof v === "number" || typeof v === "boolean") return String(v);
    problems.push(`context ${key} must be a string`);
    return undefined;
  };
  const list = (key: ContextKey): string[] | undefined => {
    const v = get(key);
    if (Array.isArray(v)) return v.map(String).filter((s) => s.trim() !== "");
    const s = text(key);
    return s === undefined ? undefined : s.split(",").flatMap((p) => (p.trim() ? [p.trim()] : []));
  };
  const flag = (key: ContextKey): boolean | undefined => {
    const s = text(key);
    if (s === undefined) return undefined;
    if (s === "true") return true;
    if (s === "false") return false;
    problems.push(`context ${key} must be true or false (got "${s}")`);
    return undefined;
  };
  const whole = (key: ContextKey): number | undefined => {
    const s = text(key);
    if (s === undefined) return undefined;
    if (!/^\d+$/.test(s)) {
      problems.push(`context ${key} must be a whole number (got "${s}")`);
      return undefined;
    }
    return Number(s);
  };
  const oneOf = <T extends string>(key: ContextKey, allowed: readonly T[]): T | undefined => {
    const s = text(key);
    if (s === undefined) return undefined;
    if ((allowed as readonly string[]).includes(s)) return s as T;
    problems.push(`context ${key} must be one of ${allowed.join(", ")} (got "${s}")`);
    return undefined;
  };

  const sourceProvider = oneOf("sourceProvider", ["bitbucket", "github"] as const);
  const sourceRepository = text("sourceRepository");
  const sourcePaths = list("sourcePaths");
  if (text("sourceProvider") === undefined) {
    problems.push("context sourceProvider is required: bitbucket or github");
  }
  if (sourceRepository === undefined)
    problems.push("context sourceRepository is required: workspace/repo or owner/repo");
  if (!sourcePaths?.length) problems.push("context sourcePaths is required: comma-separated repository folders");

  // Values are checked by the settings schema (lib/common/settings.ts) when the stack is built.
  const architectures = list("compatibleArchitectures") as ("x86_64" | "arm64")[] | undefined;

  const schedule = text("reconcileSchedule");
  const settings = {
    sourceProvider: sourceProvider ?? "bitbucket",
    sourceRepository: sourceRepository ?? "",
    sourcePaths: sourcePaths ?? [],
    sourceRef: text("sourceRef"),
    sourceApiUrl: text("sourceApiUrl"),
    sourceWebUrl: text("sourceWebUrl"),
    sourceStrategy: oneOf("sourceStrategy", ["auto", "walk", "archive"] as const),
    tokenParameterName: text("tokenParameterName"),
    tokenKmsKeyArn: text("tokenKmsKeyArn"),
    artifactPrefix: get("artifactPrefix") === "" ? "" : text("artifactPrefix"),
    parameterPrefix: text("parameterPrefix"),
    pipelineName: text("pipelineName"),
    layerNamePrefix: text("layerNamePrefix"),
    compatibleRuntimes: list("compatibleRuntimes"),
    compatibleArchitectures: architectures,
    shareOrganizationId: text("shareOrganizationId"),
    shareOuIds: list("shareOuIds"),
    shareAccountIds: list("shareAccountIds"),
    retainVersions: whole("retainVersions"),
    summaryEventBus: text("summaryEventBus"),
    layerLicense: text("layerLicense"),
    publishRegions: list("publishRegions"),
    buildPipIndexUrl: text("buildPipIndexUrl"),
    buildNpmRegistry: text("buildNpmRegistry"),
    buildIndexTokenParameter: text("buildIndexTokenParameter"),
    smokeTest: oneOf("smokeTest", ["on", "off"] as const),
    canaryAccountIds: list("canaryAccountIds"),
    promoteAfterHours: whole("promoteAfterHours"),
  } satisfies LayerSyncSettings;
  const options = {
    artifactEncryption: oneOf("artifactEncryption", ["s3", "kms"] as const),
    accessLogging: flag("accessLogging"),
    accessLogRetentionDays: whole("accessLogRetentionDays"),
    noncurrentVersionExpirationDays: whole("noncurrentVersionExpirationDays"),
    artifactInfrequentAccessDays: whole("artifactInfrequentAccessDays"),
    artifactExpirationDays: whole("artifactExpirationDays"),
    notificationEmail: text("notificationEmail"),
    topicEncryption: flag("topicEncryption"),
    gateMode: flag("gateMode"),
    reconcileSchedule: schedule === "false" || schedule === "off" ? false : schedule,
    tracing: flag("tracing"),
    logRetentionDays: whole("logRetentionDays"),
    organizationManagementAccountId: text("organizationManagementAccountId"),
    regionBucketNamePrefix: text("regionBucketNamePrefix"),
    builds: flag("builds"),
    concurrentBuildLimit: whole("concurrentBuildLimit"),
  } satisfies LayerSyncOptions;
  if (problems.length) throw new Error(`layer-sync: bad CDK context:\n  ${problems.join("\n  ")}`);
  return { stackName: text("stackName") ?? "LayerSync", settings, options };
}
