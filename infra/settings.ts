/**
 * The stack's configuration: typed props, and how `cdk -c key=value` context maps onto them.
 * Setting names follow docs/interface.md; each maps to one environment variable of the functions. The
 * settings props and their context keys come from the settings schema (infra/schema.ts); only the
 * infrastructure options are listed here.
 */
import { choicesOf, isWholeNumber, propSettings, type StackSettingProp, type StackSettingsProps } from "./schema.ts";

/**
 * Repository and publishing settings: one prop per setting of the schema marked `deploy`
 * (`StackSettingsProps`, derived in infra/schema.ts; the schema's help says what each means), plus the two
 * that are not handler settings.
 */
export type LayerSyncSettings = StackSettingsProps & {
  /**
   * ARN of the customer managed KMS key that encrypts the token parameter.
   * @default the AWS managed `aws/ssm` key (Decrypt limited to SSM and to the token parameter's encryption context)
   */
  readonly tokenKmsKeyArn?: string;
  /** More environment variables for tuning (e.g. SOURCE_CONCURRENCY); they may not override the settings props. */
  readonly extraEnvironment?: Readonly<Record<string, string>>;
};

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

/** The infrastructure options' CDK context keys. */
const OPTION_KEYS = [
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
] as const satisfies readonly (keyof LayerSyncOptions)[];

/** CDK context keys the app reads (`cdk deploy -c sourceRepository=acme/layers …`): the settings props, then the options. */
export const CONTEXT_KEYS: readonly string[] = [
  "stackName",
  ...propSettings().map((s) => s.prop),
  "tokenKmsKeyArn",
  ...OPTION_KEYS,
];

export type ContextKey = "stackName" | StackSettingProp | "tokenKmsKeyArn" | (typeof OPTION_KEYS)[number];

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

  // Each settings prop read by its kind in the schema; values are checked by the schema when the stack is built.
  const settings: Record<string, unknown> = {};
  for (const s of propSettings()) {
    const key = s.prop as StackSettingProp;
    const choices = choicesOf(s.spec);
    const value = s.spec.list
      ? list(key)
      : choices
        ? oneOf(key, choices)
        : isWholeNumber(s.spec)
          ? whole(key)
          : text(key);
    const missing = Array.isArray(value) ? value.length === 0 : text(key) === undefined;
    if (s.spec.required === "always" && missing) {
      problems.push(`context ${key} is required: ${s.deploy.description ?? s.spec.help}`);
    }
    settings[key] = value;
  }
  // An empty artifactPrefix is kept, so that the stack can refuse it (the handlers would read it as unset).
  if (get("artifactPrefix") === "") settings.artifactPrefix = "";
  settings.tokenKmsKeyArn = text("tokenKmsKeyArn");
  const schedule = text("reconcileSchedule");
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
  // Every prop was read above by the kind the schema gives it, and the required ones are present.
  return { stackName: text("stackName") ?? "LayerSync", settings: settings as LayerSyncSettings, options };
}
