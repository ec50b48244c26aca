/**
 * IAM statements of the functions. Every statement names concrete ARNs; the only `Resource: "*"` statements
 * are actions that have no resource-level permissions (each says so where it is built, and they are kept in
 * policies of their own by grants.ts), and the wildcards inside ARNs are patterns under this stack's names
 * (artifact prefix, parameter prefix, layer-name prefix).
 */
import { Aws } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
import { DEFAULT_CONSUMER_READ_ROLE } from "../../lib/common/consumer-config.ts";
import { layerArnPattern, layerVersionArnPattern } from "../names.ts";
import { consumerStatements } from "./consumers.ts";

/** lib/publish/share.ts names each package's RAM share `layer-sync-{package}`. */
const RESOURCE_SHARE_NAME_PREFIX = "layer-sync-";

export interface Names {
  readonly bucketArn: string;
  readonly objectsArn: string;
  readonly artifactPrefix: string;
  readonly parametersArn: string;
  readonly parameterPathArn: string;
  /** The parameters RAM shares (layer-version-arn, history, canary-arn) in this Region: their resource policies. */
  readonly sharedParameterArns: readonly string[];
  /** The same parameters in any Region, for `ram:ResourceArn` (RAM shares them in every publishing Region). */
  readonly sharedParameterArnPatterns: readonly string[];
  /**
   * The configured principals as RAM sees them (`ram:Principal`): the organization ARN, the OU ARNs and the
   * account ids. Empty when nothing is shared.
   */
  readonly ramPrincipals: readonly string[];
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
      // HeadObject is authorised by s3:GetObject; a failed multipart upload is aborted (nothing lists parts).
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
      sid: "ReadWriteArtifactPointers",
      // Only the artifact-key pointers: the org-shared layer-version-arn is publish's to write.
      actions: ["ssm:GetParameter", "ssm:PutParameter"],
      resources: [n.artifactKeyParametersArn],
    }),
    summaryEventStatement(n),
  ];
}

/**
 * RAM applies a share of a parameter as that parameter's resource policy, calling SSM with the caller's
 * credentials (a forward access session: aws:ViaAWSService is true). Never directly, and only on the
 * parameters layer-sync shares. aws:CalledVia is not used: RAM is not among the services that set it.
 */
export function parameterSharePoliciesStatement(
  sid: string,
  resources: readonly string[],
  conditions: Record<string, unknown> = {},
): iam.PolicyStatement {
  return new iam.PolicyStatement({
    sid,
    actions: ["ssm:PutResourcePolicy", "ssm:GetResourcePolicies", "ssm:DeleteResourcePolicy"],
    resources: [...resources],
    conditions: { ...conditions, Bool: { "aws:ViaAWSService": "true" } },
  });
}

/**
 * The two statements of a RAM call that adds resources and principals to a share. RAM authorizes each
 * resource and each principal of the request on its own: a resource's request context has
 * ram:ResourceArn and ram:RequestedResourceType but no ram:Principal, a principal's has ram:Principal and
 * neither resource key (RAM user guide, "Example IAM policies for AWS RAM"). So one statement allows the
 * shared parameters, the other the configured principals (none when nothing is shared).
 */
export function shareStatements(
  n: Pick<Names, "sharedParameterArnPatterns" | "ramPrincipals">,
  base: { sid: string; actions: string[]; resources: string[]; conditions: Record<string, Record<string, unknown>> },
): iam.PolicyStatement[] {
  const merge = (more: Record<string, Record<string, unknown>>) => {
    const out: Record<string, Record<string, unknown>> = { ...base.conditions };
    for (const [op, keys] of Object.entries(more)) out[op] = { ...(out[op] ?? {}), ...keys };
    return out;
  };
  const statements = [
    new iam.PolicyStatement({
      sid: base.sid,
      actions: base.actions,
      resources: base.resources,
      conditions: merge({
        StringEquals: { "ram:RequestedResourceType": "ssm:Parameter" },
        ArnLike: { "ram:ResourceArn": [...n.sharedParameterArnPatterns] },
      }),
    }),
  ];
  if (n.ramPrincipals.length > 0) {
    statements.push(
      new iam.PolicyStatement({
        sid: `${base.sid}WithPrincipals`,
        actions: base.actions,
        resources: base.resources,
        // StringLike: an OU ARN names the organization as o-* when SHARE_ORGANIZATION_ID is not set.
        conditions: merge({ StringLike: { "ram:Principal": [...n.ramPrincipals] } }),
      }),
    );
  }
  return statements;
}

/** The publish function's statements (also granted to sync in gate mode, without the log statement). */
export function publishStatements(
  n: Names,
  logGroupArn: string | undefined,
): { scoped: iam.PolicyStatement[]; unscoped: iam.PolicyStatement[] } {
  const consumers = consumerStatements(DEFAULT_CONSUMER_READ_ROLE);
  const scoped = [
    ...(logGroupArn ? [logStatement(logGroupArn)] : []),
    listPrefixStatement(n),
    new iam.PolicyStatement({
      sid: "ReadArtifacts",
      // Also what PublishLayerVersion needs: Lambda reads the zip with the caller's credentials (by key, no version).
      actions: ["s3:GetObject"],
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
    parameterSharePoliciesStatement("ApplyParameterSharePolicies", n.sharedParameterArns),
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
      actions: ["organizations:ListAccountsForParent", "organizations:ListOrganizationalUnitsForParent"],
      resources: [
        `arn:${Aws.PARTITION}:organizations::${n.organizationsAccount}:root/${n.organizationSegment}/r-*`,
        `arn:${Aws.PARTITION}:organizations::${n.organizationsAccount}:ou/${n.organizationSegment}/ou-*`,
      ],
    }),
    ...shareStatements(n, {
      sid: "ExtendParameterShares",
      actions: ["ram:AssociateResourceShare"],
      resources: [`arn:${Aws.PARTITION}:ram:${Aws.REGION}:${Aws.ACCOUNT_ID}:resource-share/*`],
      // Only layer-sync's own shares (lib/publish/share.ts names them layer-sync-{package}) that exclude
      // external principals.
      conditions: {
        StringLike: { "ram:ResourceShareName": `${RESOURCE_SHARE_NAME_PREFIX}*` },
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
    ...consumers.scoped,
  ];
  const unscoped = [
    ...consumers.unscoped,
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
    // ram:CreateResourceShare has no resource type: "*" is the only valid resource. The conditions allow
    // only shares that exclude principals outside the organization (allowExternalPrincipals=false).
    ...shareStatements(n, {
      sid: "CreateParameterShares",
      actions: ["ram:CreateResourceShare"],
      resources: ["*"],
      conditions: { Bool: { "ram:RequestedAllowsExternalPrincipals": "false" } },
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
