/**
 * cdk-nag AwsSolutions findings that are intended, acknowledged with their reasons (cdk-nag v3 reads
 * `Validations.of(construct).acknowledge`). IAM5 findings are acknowledged one by one, per policy, and
 * only for statements listed in WILDCARD_REASONS / UNSCOPED_REASONS, so a new wildcard anywhere else
 * stays a finding.
 */
import { type Stack, Validations } from "aws-cdk-lib";
import type * as codebuild from "aws-cdk-lib/aws-codebuild";
import type * as iam from "aws-cdk-lib/aws-iam";
import type * as s3 from "aws-cdk-lib/aws-s3";
import type * as sns from "aws-cdk-lib/aws-sns";
import type * as sqs from "aws-cdk-lib/aws-sqs";
import type { Construct } from "constructs";
import type { LayerSyncOptions } from "../settings.ts";
import { CONSUMER_UNSCOPED_REASONS, CONSUMER_WILDCARD_REASONS } from "./consumers.ts";
import { REGION_WILDCARD_REASONS } from "./regions.ts";
import { SMOKE_WILDCARD_REASONS } from "./smoke.ts";

/** A policy whose wildcard findings are acknowledged on `scope`. */
export interface CheckedPolicy {
  readonly scope: Construct;
  readonly document: iam.PolicyDocument;
}

export interface NagSubjects {
  readonly artifactBucket: s3.Bucket;
  readonly accessLogBucket: s3.Bucket | undefined;
  readonly failureTopic: sns.Topic;
  readonly eventsDeadLetterQueue: sqs.Queue;
  readonly policies: readonly CheckedPolicy[];
  readonly topicKeyArn: string | undefined;
  readonly syncDeadLetterQueue: sqs.Queue | undefined;
  readonly buildProjects: readonly codebuild.CfnProject[];
}

export function acknowledgeFindings(stack: Stack, s: NagSubjects, options: LayerSyncOptions): void {
  if (s.accessLogBucket) {
    Validations.of(s.accessLogBucket).acknowledge({
      id: "AwsSolutions-S1",
      reason:
        "This is the access-log bucket of the artifact bucket; logging it would need yet another bucket and would log its own log deliveries.",
    });
  } else {
    Validations.of(s.artifactBucket).acknowledge({
      id: "AwsSolutions-S1",
      reason:
        "Server access logging was turned off with accessLogging: false; CloudTrail data events can audit the bucket instead.",
    });
  }
  if (!options.topicEncryption) {
    Validations.of(s.failureTopic).acknowledge({
      id: "AwsSolutions-SNS2",
      reason:
        "Failure notifications carry function names and error messages, never the token; topicEncryption: true adds a customer managed key (the AWS managed aws/sns key cannot be used by CloudWatch alarms).",
    });
  }
  Validations.of(s.eventsDeadLetterQueue).acknowledge({
    id: "AwsSolutions-SQS3",
    reason: "This queue is itself the dead-letter queue of the EventBridge targets; an alarm watches it.",
  });
  if (s.syncDeadLetterQueue) {
    Validations.of(s.syncDeadLetterQueue).acknowledge({
      id: "AwsSolutions-SQS3",
      reason: "This queue is itself the dead-letter queue of the sync FIFO queue; an alarm watches it.",
    });
  }
  for (const project of s.buildProjects) {
    Validations.of(project).acknowledge({
      id: "AwsSolutions-CB5",
      reason:
        "Builds must run on the AWS SAM build image of the target's Lambda runtime and architecture (public.ecr.aws/sam/build-<runtime>), so the installed binaries match the Lambda OS and CPU; CodeBuild's curated images do not.",
    });
    if (options.artifactEncryption !== "kms") {
      Validations.of(project).acknowledge({
        id: "AwsSolutions-CB4",
        reason:
          "The build output goes to the artifact bucket, which is SSE-S3 encrypted; CodeBuild encrypts it with the AWS managed aws/s3 key. artifactEncryption: kms makes the projects use the stack's customer managed key.",
      });
    }
  }
  for (const { scope, document } of s.policies) {
    for (const [id, reason] of wildcardFindings(stack, document, s.topicKeyArn)) {
      Validations.of(scope).acknowledge({ id, reason });
    }
  }
}

/** Why a statement's ARN pattern contains `*`, by statement id. */
const WILDCARD_REASONS: Readonly<Record<string, string>> = {
  WriteOwnLogs: "log-group:<own group>:* names the streams of the function's own log group.",
  ReadWriteArtifacts:
    "Objects under the artifact prefix only; new keys carry a timestamp ({prefix}{package}/{package}-{time}.zip), so they cannot be listed in advance.",
  ReadArtifacts: "Objects under the artifact prefix only; keys carry a timestamp and packages are configuration.",
  ReadWriteArtifactPointers:
    "Parameters under PARAMETER_PREFIX only: one artifact-key per package, and packages are configuration.",
  ReadWriteLayerParameters:
    "Parameters under PARAMETER_PREFIX only: artifact-key and layer-version-arn per package, and packages are configuration.",
  ListPackageParameters: "The PARAMETER_PREFIX path and the parameters below it.",
  ApplyParameterSharePolicies:
    "The parameters RAM shares (layer-version-arn, history, canary-arn) under PARAMETER_PREFIX, and only when a service (RAM) calls with this role's credentials (aws:ViaAWSService).",
  PublishLayers: "Layers named LAYER_NAME_PREFIX + package in this account and Region; packages are configuration.",
  ManageLayerVersions:
    "Versions of the layers named LAYER_NAME_PREFIX + package; version numbers are assigned by Lambda.",
  ListOrganizationTree:
    "Roots and OUs of the organization (read-only listing to expand SHARE_OU_IDS into accounts); OU ids below a configured OU are discovered at run time.",
  ExtendParameterShares:
    "Resource shares of this account and Region, limited to layer-sync-* shares without external principals and to the shared parameters (ram:ResourceArn).",
  ExtendParameterSharesWithPrincipals:
    "Resource shares of this account and Region, limited to layer-sync-* shares without external principals and to the configured principals (ram:Principal).",
  PruneParameterShares:
    "Resource shares of this account and Region, limited to layer-sync-* shares without external principals (share ARNs end in a RAM-assigned id).",
  WriteBuildSources:
    "Objects under the build source prefix only: {BUILD_SOURCE_PREFIX}{package}/{fingerprint}.zip and the .builds/ records, keyed by build id.",
  ReadBuildFiles:
    "Objects under the build source and build output prefixes only; keys carry the package, its fingerprint and the build id.",
  ReadBuildLogs: "log-group:<build project group>:* names the streams of the two build projects' own log groups.",
  WriteArtifacts:
    "Objects under the artifact prefix only; new keys carry a timestamp ({prefix}{package}/{package}-{time}.zip), so they cannot be listed in advance.",
  MoveArtifactPointers:
    "The artifact-key parameter of each package under PARAMETER_PREFIX; packages are configuration.",
  ReadBuildSources:
    "Objects under the build source prefix only: the source zip of the build ({package}/{fingerprint}.zip).",
  WriteBuildOutputs:
    "Objects under this project's own architecture's build output prefix only ({BUILD_OUTPUT_PREFIX}{architecture}/{package}/{fingerprint}.zip), which the build-finished function treats as hostile input.",
  WriteBuildLogs: "log-group:<build project group>:* names the streams of this build project's own log group.",
  DecryptIndexToken:
    "The package index credential's key is not known at synth time: key/* of this account, limited by kms:ViaService (SSM) and kms:EncryptionContext:PARAMETER_ARN to the one parameter.",
  DecryptRepositoryToken:
    "The AWS managed aws/ssm key's id is not known at synth time: key/* of this account, limited by kms:ViaService (SSM) and kms:EncryptionContext:PARAMETER_ARN to the one token parameter.",
};

/** Statements whose actions have no resource-level permissions, so `*` is the only valid resource. */
const UNSCOPED_REASONS: Readonly<Record<string, string>> = {
  ListLayers:
    "lambda:ListLayers has no resource type; the Service Authorization Reference lists lambda:ListLayerVersions without one too (the developer guide says layer ARN): * works under either reading.",
  DescribeOrganization: "organizations:DescribeOrganization has no resource type.",
  CreateParameterShares:
    "ram:CreateResourceShare has no resource type; conditioned to the shared parameters (ram:ResourceArn, ssm:Parameter) and ram:RequestedAllowsExternalPrincipals=false.",
  CreateParameterSharesWithPrincipals:
    "ram:CreateResourceShare has no resource type; conditioned to the configured principals (ram:Principal) and ram:RequestedAllowsExternalPrincipals=false.",
  ReadParameterShares: "ram:GetResourceShares and ram:GetResourceShareAssociations have no resource type.",
  ReportPipelineJobResult: "codepipeline:PutJobSuccessResult and PutJobFailureResult have no resource type.",
};

const XRAY_ACTIONS = ["xray:PutTelemetryRecords", "xray:PutTraceSegments"];

interface ResolvedStatement {
  Effect?: string;
  Sid?: string;
  Action?: string | string[];
  Resource?: unknown;
}

/** IAM5 findings of one policy (same rendering as cdk-nag) that have a documented reason. */
function wildcardFindings(
  stack: Stack,
  policyDocument: iam.PolicyDocument,
  topicKeyArn: string | undefined,
): Map<string, string> {
  const document = stack.resolve(policyDocument) as { Statement?: ResolvedStatement[] };
  const topicKey = topicKeyArn === undefined ? undefined : JSON.stringify(stack.resolve(topicKeyArn));
  const found = new Map<string, string[]>();
  const add = (id: string, reason: string) => found.set(id, [...new Set([...(found.get(id) ?? []), reason])]);
  for (const statement of document.Statement ?? []) {
    if (statement.Effect !== "Allow") continue;
    const actions = ([] as string[]).concat(statement.Action ?? []).sort();
    // CDK's grant for publishing to the encrypted failure topic uses kms:GenerateDataKey*, on that key only.
    if (
      topicKey !== undefined &&
      JSON.stringify(actions) === JSON.stringify(["kms:Decrypt", "kms:GenerateDataKey*"]) &&
      JSON.stringify(statement.Resource) === topicKey
    ) {
      add(
        "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
        "CDK's publish grant for the encrypted failure topic (Lambda on-failure destination), on the topic's own key only.",
      );
    }
    for (const resource of ([] as unknown[]).concat(statement.Resource ?? [])) {
      const flat = flattenReference(resource);
      if (!flat.includes("*")) continue;
      const sid = statement.Sid ?? "";
      const reason =
        flat === "*"
          ? (UNSCOPED_REASONS[sid] ??
            CONSUMER_UNSCOPED_REASONS[sid] ??
            (JSON.stringify(actions) === JSON.stringify(XRAY_ACTIONS)
              ? "X-Ray PutTraceSegments/PutTelemetryRecords have no resource type (tracing: true)."
              : undefined))
          : (WILDCARD_REASONS[sid] ??
            REGION_WILDCARD_REASONS[sid] ??
            CONSUMER_WILDCARD_REASONS[sid] ??
            SMOKE_WILDCARD_REASONS[sid]);
      if (reason === undefined) continue;
      add(`AwsSolutions-IAM5[Resource::${flat}]`, reason);
    }
  }
  return new Map([...found].map(([id, reasons]) => [id, reasons.join(" ")]));
}

/** cdk-nag's rendering of a resolved CloudFormation value into one string (utils/flatten-cfn-reference). */
export function flattenReference(value: unknown): string {
  if (value === undefined) return "";
  if (typeof value === "string") return value.replace(/\$\{/g, "<").replace(/}/g, ">");
  if (typeof value === "object" && value !== null) {
    const v = value as Record<string, unknown>;
    if (Array.isArray(v["Fn::Join"])) {
      const [delimiter, items] = v["Fn::Join"] as [string, unknown[]];
      return items.map(flattenReference).join(delimiter);
    }
    if (v["Fn::Sub"] !== undefined) return flattenReference(v["Fn::Sub"]);
    if (Array.isArray(v["Fn::GetAtt"])) {
      const [resource, attribute] = v["Fn::GetAtt"] as [unknown, unknown];
      return `<${flattenReference(resource)}.${flattenReference(attribute)}>`;
    }
    if (v["Fn::ImportValue"] !== undefined) return flattenReference(v["Fn::ImportValue"]);
    if (v.Ref !== undefined) return `<${flattenReference(v.Ref)}>`;
  }
  return JSON.stringify(value);
}
