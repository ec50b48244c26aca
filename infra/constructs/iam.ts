/**
 * IAM statements of the functions. Every statement names concrete ARNs; the only `Resource: "*"` statements
 * are actions that have no resource-level permissions (each says so where it is built, and they are kept in
 * policies of their own by grants.ts), and the wildcards inside ARNs are patterns under this stack's names
 * (artifact prefix, parameter prefix, layer-name prefix).
 */
import { Aws } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
import { layerArnPattern, layerVersionArnPattern } from "../names.ts";

/** lib/publish/share.ts names each package's RAM share `layer-sync-{package}`. */
const RESOURCE_SHARE_NAME_PREFIX = "layer-sync-";

export interface Names {
  readonly bucketArn: string;
  readonly objectsArn: string;
  readonly artifactPrefix: string;
  readonly parametersArn: string;
  readonly parameterPathArn: string;
  readonly layerArnParametersArn: string;
  /** The history parameters (in the packages' RAM shares with layer-version-arn). */
  readonly historyParametersArn: string;
  /** The artifact-key parameters (the pointers) under the parameter prefix. */
  readonly artifactKeyParametersArn: string;
  readonly layerNamePrefix: string;
  readonly eventBusArn: string;
  readonly artifactKeyArn: string | undefined;
  readonly organizationsAccount: string;
  readonly organizationSegment: string;
}

export function logStatement(logGroupArn: string): iam.PolicyStatement {
  return new iam.PolicyStatement({
    sid: "WriteOwnLogs",
    actions: ["logs:CreateLogStream", "logs:PutLogEvents"],
    resources: [logGroupArn],
  });
}

function listPrefixStatement(n: Names): iam.PolicyStatement {
  return new iam.PolicyStatement({
    sid: "ListArtifactPrefix",
    // Lets HeadObject tell "missing" (404) from "forbidden" (403), and nothing outside the prefix.
    actions: ["s3:ListBucket"],
    resources: [n.bucketArn],
    conditions: { StringLike: { "s3:prefix": [`${n.artifactPrefix}*`] } },
  });
}

function summaryEventStatement(n: Names): iam.PolicyStatement {
  return new iam.PolicyStatement({ sid: "PutSummaryEvent", actions: ["events:PutEvents"], resources: [n.eventBusArn] });
}

/** The sync function's own statements. */
export function syncStatements(n: Names, logGroupArn: string): iam.PolicyStatement[] {
  return [
    logStatement(logGroupArn),
    listPrefixStatement(n),
    new iam.PolicyStatement({
      sid: "ReadWriteArtifacts",
      // HeadObject is authorised by s3:GetObject; multipart uploads need the abort/list-parts actions.
      actions: ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
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
      sid: "ReadWriteArtifactPointers",
      actions: ["ssm:GetParameter", "ssm:PutParameter", "ssm:GetParameterHistory"],
      resources: [n.parametersArn],
    }),
    summaryEventStatement(n),
  ];
}

/** The publish function's statements (also granted to sync in gate mode, without the log statement). */
export function publishStatements(
  n: Names,
  logGroupArn: string | undefined,
): { scoped: iam.PolicyStatement[]; unscoped: iam.PolicyStatement[] } {
  const scoped = [
    ...(logGroupArn ? [logStatement(logGroupArn)] : []),
    listPrefixStatement(n),
    new iam.PolicyStatement({
      sid: "ReadArtifacts",
      // Also what PublishLayerVersion needs: Lambda reads the zip with the caller's credentials.
      actions: ["s3:GetObject", "s3:GetObjectVersion"],
      resources: [n.objectsArn],
    }),
    ...(n.artifactKeyArn
      ? [new iam.PolicyStatement({ sid: "DecryptArtifacts", actions: ["kms:Decrypt"], resources: [n.artifactKeyArn] })]
      : []),
    new iam.PolicyStatement({
      sid: "ReadWriteLayerParameters",
      // GetParameters: a rollback reads a Region's parameters in one call; DeleteParameter: the rollback
      // hold and canary-arn end.
      actions: ["ssm:GetParameter", "ssm:GetParameters", "ssm:PutParameter", "ssm:DeleteParameter"],
      resources: [n.parametersArn],
    }),
    new iam.PolicyStatement({
      sid: "ListPackageParameters",
      // GetParametersByPath is authorised against the path itself; the /* form covers deeper paths.
      actions: ["ssm:GetParametersByPath"],
      resources: [n.parameterPathArn, n.parametersArn],
    }),
    new iam.PolicyStatement({
      sid: "ApplyParameterSharePolicies",
      // RAM applies a share of a parameter as that parameter's resource policy; only through RAM.
      actions: ["ssm:PutResourcePolicy", "ssm:GetResourcePolicies"],
      resources: [n.layerArnParametersArn, n.historyParametersArn],
      conditions: { "ForAnyValue:StringEquals": { "aws:CalledVia": ["ram.amazonaws.com"] } },
    }),
    new iam.PolicyStatement({
      sid: "PublishLayers",
      actions: ["lambda:PublishLayerVersion"],
      resources: [layerArnPattern(n.layerNamePrefix)],
    }),
    new iam.PolicyStatement({
      sid: "ManageLayerVersions",
      actions: [
        "lambda:AddLayerVersionPermission",
        "lambda:RemoveLayerVersionPermission",
        "lambda:GetLayerVersionPolicy",
        "lambda:GetLayerVersion",
        "lambda:DeleteLayerVersion",
      ],
      resources: [layerVersionArnPattern(n.layerNamePrefix)],
    }),
    new iam.PolicyStatement({
      sid: "ListOrganizationTree",
      // Read-only, to expand SHARE_OU_IDS into accounts (nested OUs included). These actions take the
      // parent root or OU; its ARN names the management account and the organization.
      actions: [
        "organizations:ListChildren",
        "organizations:ListAccountsForParent",
        "organizations:ListOrganizationalUnitsForParent",
      ],
      resources: [
        `arn:${Aws.PARTITION}:organizations::${n.organizationsAccount}:root/${n.organizationSegment}/r-*`,
        `arn:${Aws.PARTITION}:organizations::${n.organizationsAccount}:ou/${n.organizationSegment}/ou-*`,
      ],
    }),
    new iam.PolicyStatement({
      sid: "ExtendParameterShares",
      // Only layer-sync's own shares (lib/publish/share.ts names them layer-sync-{package}), only ones
      // that exclude external principals, and only SSM parameters when resources are added.
      actions: ["ram:AssociateResourceShare"],
      resources: [`arn:${Aws.PARTITION}:ram:${Aws.REGION}:${Aws.ACCOUNT_ID}:resource-share/*`],
      conditions: {
        StringLike: { "ram:ResourceShareName": `${RESOURCE_SHARE_NAME_PREFIX}*` },
        StringEqualsIfExists: { "ram:RequestedResourceType": "ssm:Parameter" },
        Bool: { "ram:AllowsExternalPrincipals": "false" },
      },
    }),
    new iam.PolicyStatement({
      sid: "PruneParameterShares",
      // Removing principals that are no longer configured, and deleting a duplicate share left by racing runs.
      actions: ["ram:DisassociateResourceShare", "ram:DeleteResourceShare"],
      resources: [`arn:${Aws.PARTITION}:ram:${Aws.REGION}:${Aws.ACCOUNT_ID}:resource-share/*`],
      conditions: {
        StringLike: { "ram:ResourceShareName": `${RESOURCE_SHARE_NAME_PREFIX}*` },
        Bool: { "ram:AllowsExternalPrincipals": "false" },
      },
    }),
    summaryEventStatement(n),
  ];
  const unscoped = [
    new iam.PolicyStatement({
      sid: "ListLayers",
      actions: ["lambda:ListLayers", "lambda:ListLayerVersions"],
      // lambda:ListLayers has no resource type: "*" is the only valid resource. lambda:ListLayerVersions
      // has none in the Service Authorization Reference either (the developer guide says the layer ARN);
      // granted on a layer ARN it would fail every publish if the reference is right, so "*" (read-only).
      resources: ["*"],
    }),
    new iam.PolicyStatement({
      sid: "DescribeOrganization",
      actions: ["organizations:DescribeOrganization"],
      // organizations:DescribeOrganization has no resource type: "*" is the only valid resource.
      resources: ["*"],
    }),
    new iam.PolicyStatement({
      sid: "CreateParameterShares",
      actions: ["ram:CreateResourceShare"],
      // ram:CreateResourceShare has no resource type: "*" is the only valid resource. The conditions
      // allow only shares of SSM parameters that exclude principals outside the organization (the
      // request must name the parameters and set allowExternalPrincipals=false).
      resources: ["*"],
      conditions: {
        StringEquals: { "ram:RequestedResourceType": "ssm:Parameter" },
        Bool: { "ram:RequestedAllowsExternalPrincipals": "false" },
      },
    }),
    new iam.PolicyStatement({
      sid: "ReadParameterShares",
      actions: ["ram:GetResourceShares", "ram:GetResourceShareAssociations"],
      // ram:GetResourceShares and ram:GetResourceShareAssociations have no resource type: "*" is the only valid resource.
      resources: ["*"],
    }),
  ];
  return { scoped, unscoped };
}

/** Reading the repository token: exactly one parameter, decrypted only through SSM for that parameter. */
export function tokenStatements(tokenParameterArn: string, keyArn: string): iam.PolicyStatement[] {
  return [
    new iam.PolicyStatement({
      sid: "ReadRepositoryToken",
      actions: ["ssm:GetParameter"],
      resources: [tokenParameterArn],
    }),
    new iam.PolicyStatement({
      sid: "DecryptRepositoryToken",
      actions: ["kms:Decrypt"],
      resources: [keyArn],
      conditions: {
        StringEquals: {
          "kms:ViaService": `ssm.${Aws.REGION}.amazonaws.com`,
          "kms:EncryptionContext:PARAMETER_ARN": tokenParameterArn,
        },
      },
    }),
  ];
}
