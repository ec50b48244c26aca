/**
 * Template mode: one CloudFormation Parameter per setting (generated from the settings schema, see
 * infra/schema.ts), the infrastructure options and the code location, and the conditions the optional
 * resources hang on. This is what makes infra/template/layer-sync.template.json self-contained.
 */
import { Aws, CfnCondition, CfnParameter, Fn, type Stack } from "aws-cdk-lib";
import * as lambda from "aws-cdk-lib/aws-lambda";
import * as s3 from "aws-cdk-lib/aws-s3";
import { parameterArn } from "../names.ts";
import { parameterProps, stackSettings } from "../schema.ts";
import { DEFAULT_CONCURRENT_BUILD_LIMIT, DEFAULT_RECONCILE_SCHEDULE } from "../settings.ts";
import { DEFAULT_REGION_BUCKET_NAME_PREFIX, REGION_BUCKET_NAME_PREFIX } from "./regions.ts";
import type { Resolved } from "./resolved.ts";

/** The subset of CfnParameterProps the template parameters use. */
interface CfnParameterPropsLite {
  default: string;
  allowedValues: string[];
  allowedPattern: string;
  minLength: number;
  maxLength: number;
}

/** Template mode: one CloudFormation Parameter per setting, plus the code location. */
export function templateSettings(scope: Stack): Resolved {
  const text = (id: string, description: string, extra: Partial<CfnParameterPropsLite> = {}) =>
    new CfnParameter(scope, id, { type: "String", description, ...extra });

  const syncCodeBucket = text("SyncCodeS3Bucket", "S3 bucket (same Region) holding the sync function zip", {
    allowedPattern: "^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
  });
  const syncCodeKey = text(
    "SyncCodeS3Key",
    "S3 key of the sync function zip, as printed by npm run synth (layer-sync/layer-sync-sync-<hash>.zip)",
    {
      minLength: 1,
    },
  );
  const publishCodeBucket = text("PublishCodeS3Bucket", "S3 bucket (same Region) holding the publish function zip", {
    allowedPattern: "^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
  });
  const publishCodeKey = text(
    "PublishCodeS3Key",
    "S3 key of the publish function zip, as printed by npm run synth (layer-sync/layer-sync-publish-<hash>.zip)",
    {
      minLength: 1,
    },
  );
  const buildCodeBucket = text("BuildCodeS3Bucket", "S3 bucket (same Region) holding the build-finished function zip", {
    allowedPattern: "^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
  });
  const buildCodeKey = text(
    "BuildCodeS3Key",
    "S3 key of the build-finished function zip, as printed by npm run synth (layer-sync/layer-sync-build-<hash>.zip)",
    { minLength: 1 },
  );
  // One parameter per setting the schema marks `deploy` (infra/schema.ts), in the schema's order.
  const settingParameters = new Map(
    stackSettings().map((s) => [s.env, new CfnParameter(scope, s.parameter, parameterProps(s))] as const),
  );
  const setting = (env: string): CfnParameter => {
    const parameter = settingParameters.get(env);
    if (parameter === undefined) throw new Error(`the settings schema has no deploy entry for ${env}`);
    return parameter;
  };
  const regionBucketNamePrefix = text(
    "RegionBucketNamePrefix",
    "First part of the regional bucket names {prefix}-{account}-{Region}, as given to the regional bucket template; IAM allows only these buckets",
    { default: DEFAULT_REGION_BUCKET_NAME_PREFIX, allowedPattern: REGION_BUCKET_NAME_PREFIX.source },
  );
  const tokenKmsKeyArn = text(
    "TokenKmsKeyArn",
    "ARN of the customer managed KMS key of the token parameter; empty for the AWS managed aws/ssm key",
    { default: "", allowedPattern: "^$|^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$" },
  );
  const gate = text(
    "GateMode",
    "true: a CodePipeline Invoke action runs sync, which also publishes (event rules disabled)",
    {
      default: "false",
      allowedValues: ["false", "true"],
    },
  );
  const schedule = text("ReconcileSchedule", "Schedule expression of the daily reconcile; empty for none", {
    default: DEFAULT_RECONCILE_SCHEDULE,
  });
  const email = text("NotificationEmail", "E-mail address for failure notifications; empty for none", {
    default: "",
    allowedPattern: "^$|^[^@\\s]+@[^@\\s]+$",
  });

  const buildsParameter = text(
    "Builds",
    "true: CodeBuild projects (x86_64, arm64) and the build-finished function build layers from requirements.txt / package-lock.json",
    { default: "true", allowedValues: ["false", "true"] },
  );

  const concurrentBuildLimit = new CfnParameter(scope, "ConcurrentBuildLimit", {
    type: "Number",
    description:
      "ConcurrentBuildLimit of each CodeBuild project: builds of one architecture running at once (CodeBuild refuses more)",
    default: DEFAULT_CONCURRENT_BUILD_LIMIT,
    minValue: 1,
  });
  const managementAccount = text(
    "OrganizationManagementAccountId",
    "The organization's management account id, named by the Organizations ARNs (OU listing, RAM principals); empty when this stack is deployed in the management account",
    { default: "", allowedPattern: "^$|^[0-9]{12}$" },
  );
  const artifactEncryption = text(
    "ArtifactEncryption",
    "s3: the artifact bucket uses S3-managed keys; kms: a customer managed KMS key created by the stack (the build projects use it too)",
    { default: "s3", allowedValues: ["s3", "kms"] },
  );
  const topicEncryption = text(
    "TopicEncryption",
    "true: the failure topic is encrypted with a customer managed KMS key created by the stack",
    { default: "false", allowedValues: ["false", "true"] },
  );

  const notEmpty = (id: string, parameter: CfnParameter) =>
    new CfnCondition(scope, id, { expression: Fn.conditionNot(Fn.conditionEquals(parameter.valueAsString, "")) });
  const hasToken = notEmpty("HasTokenParameter", setting("TOKEN_PARAMETER_NAME"));
  const hasTokenKey = notEmpty("HasTokenKmsKey", tokenKmsKeyArn);
  const hasOrganization = notEmpty("HasShareOrganization", setting("SHARE_ORGANIZATION_ID"));
  const hasOus = notEmpty("HasShareOus", setting("SHARE_OU_IDS"));
  const hasAccounts = notEmpty("HasShareAccounts", setting("SHARE_ACCOUNT_IDS"));
  const hasManagementAccount = notEmpty("HasOrganizationManagementAccount", managementAccount);
  const artifactKey = new CfnCondition(scope, "HasArtifactKey", {
    expression: Fn.conditionEquals(artifactEncryption.valueAsString, "kms"),
  });
  const topicKey = new CfnCondition(scope, "HasTopicKey", {
    expression: Fn.conditionEquals(topicEncryption.valueAsString, "true"),
  });
  const reconcile = notEmpty("HasReconcileSchedule", schedule);
  const notify = notEmpty("HasNotificationEmail", email);
  const hasRegions = notEmpty("HasPublishRegions", setting("PUBLISH_REGIONS"));
  const builds = new CfnCondition(scope, "HasBuilds", {
    expression: Fn.conditionEquals(buildsParameter.valueAsString, "true"),
  });
  const hasIndexToken = new CfnCondition(scope, "HasBuildIndexToken", {
    expression: Fn.conditionAnd(
      builds,
      Fn.conditionNot(Fn.conditionEquals(setting("BUILD_INDEX_TOKEN_PARAMETER").valueAsString, "")),
    ),
  });
  const gateMode = new CfnCondition(scope, "IsGateMode", {
    expression: Fn.conditionEquals(gate.valueAsString, "true"),
  });
  const eventTriggers = new CfnCondition(scope, "IsEventMode", {
    expression: Fn.conditionEquals(gate.valueAsString, "false"),
  });

  scope.templateOptions.metadata = {
    "AWS::CloudFormation::Interface": {
      ParameterGroups: [
        {
          Label: { default: "Function code (zips built by npm run synth)" },
          Parameters: [
            "SyncCodeS3Bucket",
            "SyncCodeS3Key",
            "PublishCodeS3Bucket",
            "PublishCodeS3Key",
            "BuildCodeS3Bucket",
            "BuildCodeS3Key",
          ],
        },
        {
          Label: { default: "Repository" },
          Parameters: [
            "SourceProvider",
            "SourceRepository",
            "SourcePaths",
            "SourceRef",
            "SourceApiUrl",
            "SourceWebUrl",
            "SourceStrategy",
            "TokenParameterName",
            "TokenKmsKeyArn",
          ],
        },
        {
          Label: { default: "Artifacts and layers" },
          Parameters: [
            "ArtifactPrefix",
            "ParameterPrefix",
            "LayerNamePrefix",
            "CompatibleRuntimes",
            "CompatibleArchitectures",
            "LayerLicense",
            "RetainVersions",
          ],
        },
        {
          Label: { default: "Sharing" },
          Parameters: ["ShareOrganizationId", "ShareOuIds", "ShareAccountIds", "OrganizationManagementAccountId"],
        },
        {
          Label: { default: "Releases (smoke test, canary channel)" },
          Parameters: ["SmokeTest", "CanaryAccountIds", "PromoteAfterHours"],
        },
        {
          Label: { default: "Regions (buckets from the regional bucket template)" },
          Parameters: ["PublishRegions", "RegionBuckets", "RegionBucketNamePrefix"],
        },
        {
          Label: { default: "Builds in AWS (CodeBuild)" },
          Parameters: [
            "Builds",
            "BuildPipIndexUrl",
            "BuildNpmRegistry",
            "BuildIndexTokenParameter",
            "ConcurrentBuildLimit",
          ],
        },
        {
          Label: { default: "Encryption" },
          Parameters: ["ArtifactEncryption", "TopicEncryption"],
        },
        {
          Label: { default: "Triggers and notifications" },
          Parameters: ["PipelineName", "GateMode", "ReconcileSchedule", "SummaryEventBus", "NotificationEmail"],
        },
      ],
    },
  };

  const env: Record<string, string> = { NODE_OPTIONS: "--enable-source-maps" };
  for (const [name, parameter] of settingParameters) env[name] = parameter.valueAsString;
  const tokenName = setting("TOKEN_PARAMETER_NAME").valueAsString;
  const organizationSegment = Fn.conditionIf(
    hasOrganization.logicalId,
    setting("SHARE_ORGANIZATION_ID").valueAsString,
    "o-*",
  ).toString();
  const mgmt = Fn.conditionIf(
    hasManagementAccount.logicalId,
    managementAccount.valueAsString,
    Aws.ACCOUNT_ID,
  ).toString();
  // CloudFormation cannot prefix each entry of a list with a computed string (a Join delimiter must be
  // literal), so each OU is matched as arn:*:organizations::*:ou/*/{ou id}: OU ids are unique, and RAM
  // accepts only OUs of the caller's own organization. A missing kind is a value no principal has.
  const anyOu = "arn:*:organizations::*:ou/*/";
  const ramPrincipals = Fn.split(
    ",",
    Fn.join(",", [
      Fn.conditionIf(
        hasOrganization.logicalId,
        `arn:${Aws.PARTITION}:organizations::${mgmt}:organization/${setting("SHARE_ORGANIZATION_ID").valueAsString}`,
        "no-organization",
      ).toString(),
      Fn.conditionIf(
        hasOus.logicalId,
        Fn.join("", [anyOu, Fn.join(`,${anyOu}`, Fn.split(",", setting("SHARE_OU_IDS").valueAsString))]),
        "no-organizational-units",
      ).toString(),
      Fn.conditionIf(hasAccounts.logicalId, setting("SHARE_ACCOUNT_IDS").valueAsString, "no-accounts").toString(),
    ]),
  );
  return {
    env,
    artifactPrefix: setting("ARTIFACT_PREFIX").valueAsString,
    parameterPrefix: setting("PARAMETER_PREFIX").valueAsString,
    pipelineName: setting("PIPELINE_NAME").valueAsString,
    layerNamePrefix: setting("LAYER_NAME_PREFIX").valueAsString,
    summaryEventBus: setting("SUMMARY_EVENT_BUS").valueAsString,
    // The AllowedPattern guarantees the leading "/", so parameterArn() yields ":parameter/name".
    tokenParameterArn: parameterArn(tokenName),
    tokenKeyArn: Fn.conditionIf(
      hasTokenKey.logicalId,
      tokenKmsKeyArn.valueAsString,
      `arn:${Aws.PARTITION}:kms:${Aws.REGION}:${Aws.ACCOUNT_ID}:key/*`,
    ).toString(),
    hasToken,
    organizationSegment,
    managementAccount: mgmt,
    ramPrincipals,
    concurrentBuildLimit: concurrentBuildLimit.valueAsNumber,
    artifactKey,
    topicKey,
    gateMode,
    eventTriggers,
    reconcile,
    reconcileSchedule: Fn.conditionIf(
      reconcile.logicalId,
      schedule.valueAsString,
      DEFAULT_RECONCILE_SCHEDULE,
    ).toString(),
    notificationEmail: email.valueAsString,
    notify,
    extraRegions: {
      kind: "parameter",
      regions: Fn.split(",", setting("PUBLISH_REGIONS").valueAsString),
      bucketNamePrefix: regionBucketNamePrefix.valueAsString,
      on: hasRegions,
    },
    code: {
      sync: lambda.Code.fromBucket(
        s3.Bucket.fromBucketName(scope, "SyncCodeBucket", syncCodeBucket.valueAsString),
        syncCodeKey.valueAsString,
      ),
      publish: lambda.Code.fromBucket(
        s3.Bucket.fromBucketName(scope, "PublishCodeBucket", publishCodeBucket.valueAsString),
        publishCodeKey.valueAsString,
      ),
      build: lambda.Code.fromBucket(
        s3.Bucket.fromBucketName(scope, "BuildCodeBucket", buildCodeBucket.valueAsString),
        buildCodeKey.valueAsString,
      ),
    },
    builds,
    // The AllowedPattern guarantees the leading "/".
    indexTokenParameterArn: parameterArn(setting("BUILD_INDEX_TOKEN_PARAMETER").valueAsString),
    hasIndexToken,
  };
}
