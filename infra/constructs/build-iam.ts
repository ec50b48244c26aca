/**
 * IAM statements of builds in AWS: what the sync adds to start builds (and, in gate mode, to settle them),
 * the build-finished function's own statements, and the CodeBuild service role's. Every statement names
 * concrete ARNs; the wildcards are object keys under the build prefixes and the streams of the two build
 * log groups (acknowledged for cdk-nag in nag.ts, by statement id).
 */
import { Aws } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
import type { BuildArchitecture } from "./build-names.ts";
import type { Names } from "./iam.ts";

/** One project's own resources: what its service role may touch. */
export interface ProjectNames {
  readonly projectArn: string;
  /** `…:log-group:<name>`: what logs:CreateLogGroup matches. */
  readonly logGroupArn: string;
  /** `…:log-group:<name>:*`: the group's streams (CreateLogStream, PutLogEvents). */
  readonly logStreamsArn: string;
  /** `bucket/{BUILD_OUTPUT_PREFIX}{architecture}/*`: where this project's builds write their output. */
  readonly outputObjectsArn: string;
}

/** The build resources the statements name. */
export interface BuildNames {
  readonly projectArns: readonly string[];
  /** The two build log groups' ARNs as CDK renders them (`…:log-group:<name>:*`, their streams). */
  readonly logGroupArns: readonly string[];
  readonly projects: Readonly<Record<BuildArchitecture, ProjectNames>>;
  readonly sourcePrefix: string;
  readonly outputPrefix: string;
  /** `bucket/{BUILD_SOURCE_PREFIX}*` */
  readonly sourceObjectsArn: string;
  /** `bucket/{BUILD_OUTPUT_PREFIX}*` */
  readonly outputObjectsArn: string;
}

/** The sync function's statements for starting builds (also what the gate polls with). */
export function buildStartStatements(b: BuildNames): iam.PolicyStatement[] {
  return [
    new iam.PolicyStatement({
      sid: "StartBuilds",
      // StartBuild with per-build overrides, and BatchGetBuilds for the pipeline gate's continuation.
      actions: ["codebuild:StartBuild", "codebuild:BatchGetBuilds"],
      resources: [...b.projectArns],
    }),
    new iam.PolicyStatement({
      sid: "WriteBuildSources",
      // The source zips and the `.builds/` records the build-finished handler trusts (builds cannot write here).
      actions: ["s3:PutObject"],
      resources: [b.sourceObjectsArn],
    }),
  ];
}

/** Reading what a build left: its record and source, its output, the tail of its log. */
export function buildSettleStatements(n: Names, b: BuildNames): iam.PolicyStatement[] {
  return [
    new iam.PolicyStatement({
      sid: "ListBuildPrefixes",
      // So a missing record or output is a 404, not a 403; nothing outside the build prefixes.
      actions: ["s3:ListBucket"],
      resources: [n.bucketArn],
      conditions: { StringLike: { "s3:prefix": [`${b.sourcePrefix}*`, `${b.outputPrefix}*`] } },
    }),
    new iam.PolicyStatement({
      sid: "ReadBuildFiles",
      actions: ["s3:GetObject"],
      resources: [b.sourceObjectsArn, b.outputObjectsArn],
    }),
    new iam.PolicyStatement({
      sid: "ReadBuildLogs",
      // The last lines of a failed build's log, for the notification.
      actions: ["logs:GetLogEvents"],
      resources: [...b.logGroupArns],
    }),
  ];
}

/** The build-finished function's statements (without its log statement, which iam.ts builds). */
export function buildFinishedStatements(n: Names, b: BuildNames): iam.PolicyStatement[] {
  return [
    ...buildSettleStatements(n, b),
    new iam.PolicyStatement({
      sid: "ReadBuilds",
      // The finished build as CodeBuild reports it (status, artifact location and SHA-256), which proves the output.
      actions: ["codebuild:BatchGetBuilds"],
      resources: [...b.projectArns],
    }),
    new iam.PolicyStatement({
      sid: "ListArtifactPrefix",
      actions: ["s3:ListBucket"],
      resources: [n.bucketArn],
      conditions: { StringLike: { "s3:prefix": [`${n.artifactPrefix}*`] } },
    }),
    new iam.PolicyStatement({
      sid: "WriteArtifacts",
      // HeadObject of the current artifact (authorised by s3:GetObject), the upload, and aborting a failed one.
      actions: ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
      resources: [n.objectsArn],
    }),
    ...(n.artifactKeyArn
      ? [
          new iam.PolicyStatement({
            sid: "UseArtifactKey",
            actions: ["kms:Decrypt", "kms:GenerateDataKey"],
            resources: [n.artifactKeyArn],
          }),
        ]
      : []),
    new iam.PolicyStatement({
      sid: "MoveArtifactPointers",
      actions: ["ssm:GetParameter", "ssm:PutParameter"],
      resources: [n.artifactKeyParametersArn],
    }),
    new iam.PolicyStatement({ sid: "PutSummaryEvent", actions: ["events:PutEvents"], resources: [n.eventBusArn] }),
  ];
}

/**
 * One CodeBuild project's service role: read the build source (by version too, as CodeBuild's own service
 * role policy allows), write only under its own architecture's output prefix, write its own logs.
 */
export function codeBuildStatements(n: Names, b: BuildNames, architecture: BuildArchitecture): iam.PolicyStatement[] {
  const own = b.projects[architecture];
  return [
    new iam.PolicyStatement({
      sid: "ReadBuildSources",
      actions: ["s3:GetObject", "s3:GetObjectVersion"],
      resources: [b.sourceObjectsArn],
    }),
    new iam.PolicyStatement({
      sid: "WriteBuildOutputs",
      actions: ["s3:PutObject"],
      resources: [own.outputObjectsArn],
    }),
    new iam.PolicyStatement({
      sid: "CheckArtifactBucket",
      // CodeBuild checks the S3 artifact bucket's owner and Region before uploading (the CodeBuild user
      // guide's service role policy grants both); bucket metadata only, no object access.
      actions: ["s3:GetBucketAcl", "s3:GetBucketLocation"],
      resources: [n.bucketArn],
    }),
    ...(n.artifactKeyArn
      ? [
          new iam.PolicyStatement({
            sid: "UseArtifactKey",
            // The projects encrypt their output with the artifact key; the sources are encrypted with it too.
            actions: ["kms:Decrypt", "kms:GenerateDataKey"],
            resources: [n.artifactKeyArn],
          }),
        ]
      : []),
    new iam.PolicyStatement({
      sid: "CreateBuildLogGroup",
      // logs:CreateLogGroup matches the log group's own ARN (no ":*"); the group exists, CodeBuild asks anyway.
      actions: ["logs:CreateLogGroup"],
      resources: [own.logGroupArn],
    }),
    new iam.PolicyStatement({
      sid: "WriteBuildLogs",
      actions: ["logs:CreateLogStream", "logs:PutLogEvents"],
      resources: [own.logStreamsArn],
    }),
  ];
}

/** CodeBuild reads the package index credential itself (a PARAMETER_STORE variable): exactly that parameter. */
export function indexTokenStatements(parameterArn: string, keyArn: string): iam.PolicyStatement[] {
  return [
    new iam.PolicyStatement({ sid: "ReadIndexToken", actions: ["ssm:GetParameters"], resources: [parameterArn] }),
    new iam.PolicyStatement({
      sid: "DecryptIndexToken",
      actions: ["kms:Decrypt"],
      resources: [keyArn],
      conditions: {
        StringEquals: {
          "kms:ViaService": `ssm.${Aws.REGION}.amazonaws.com`,
          "kms:EncryptionContext:PARAMETER_ARN": parameterArn,
        },
      },
    }),
  ];
}
