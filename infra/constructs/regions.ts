/**
 * Publishing Regions (PUBLISH_REGIONS, REGION_BUCKETS): the bucket each extra Region publishes from, and the
 * IAM statements for exactly those Regions.
 *
 * Each extra Region's bucket has a name derived from the account and the Region,
 * `{regionBucketNamePrefix}-{account}-{region}`, so the home stack can name it (in REGION_BUCKETS and in IAM)
 * without a cross-Region reference: the regional stacks (`cdk deploy`) and the regional bucket template
 * (CfCT) create buckets with exactly that name.
 *
 * - Deploy mode knows the Regions: every Regional ARN is spelled out, Region by Region.
 * - Template mode gets them from the PublishRegions parameter: the ARNs have `*` as their Region and every
 *   statement is conditioned on `aws:RequestedRegion` being one of the listed Regions.
 */
import { Aws, type CfnCondition } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
import { type Names, parameterSharePoliciesStatement, shareStatements } from "./iam.ts";

/** lib/publish/share.ts names each package's RAM share `layer-sync-{package}`. */
const RESOURCE_SHARE_NAME_PREFIX = "layer-sync-";
/** The default first part of a regional bucket's name. */
export const DEFAULT_REGION_BUCKET_NAME_PREFIX = "layer-sync-layers";
/** lib/common/config.ts's Region pattern (eu-west-1, us-gov-west-1, ap-southeast-2). */
export const REGION_PATTERN = /^[a-z]{2}(-[a-z]+)+-\d{1,2}$/;
/** A bucket-name prefix that leaves room for `-{12 digits}-{Region}` within 63 characters. */
export const REGION_BUCKET_NAME_PREFIX = /^[a-z0-9][a-z0-9-]{0,29}$/;

/** The regional bucket of `region`, named from the account (a token in CDK) and the Region. */
export function regionalBucketName(prefix: string, region: string, account: string = Aws.ACCOUNT_ID): string {
  return `${prefix}-${account}-${region}`;
}

/** The Regions other than the home one, as the home stack sees them. */
export type ExtraRegions =
  | {
      readonly kind: "list";
      /** Concrete Region names, without the home Region. */
      readonly regions: readonly string[];
      readonly bucketNamePrefix: string;
    }
  | {
      readonly kind: "parameter";
      /** Every publishing Region (the home one included), a token list from the PublishRegions parameter. */
      readonly regions: string[];
      readonly bucketNamePrefix: string;
      /** True when PublishRegions is set. */
      readonly on: CfnCondition;
    };

/** What the Regional statements are built from. */
export interface RegionNames extends Pick<Names, "sharedParameterArnPatterns" | "ramPrincipals"> {
  readonly artifactPrefix: string;
  readonly parameterPrefix: string;
  readonly layerNamePrefix: string;
}

/** The parameters RAM shares, by name suffix: the layer ARN, and the release feature's history and canary ARN. */
export const SHARED_PARAMETER_SUFFIXES = ["layer-version-arn", "history", "canary-arn"] as const;

/** Checks PUBLISH_REGIONS for deploy mode; returns the Regions other than `home`, in order. */
export function extraRegionsOf(publishRegions: readonly string[], home: string): string[] {
  const bad = publishRegions.filter((r) => !REGION_PATTERN.test(r));
  if (bad.length) throw new Error(`publishRegions must be Region names such as eu-west-1 (got ${bad.join(", ")})`);
  const seen = new Set<string>();
  for (const r of publishRegions) {
    if (seen.has(r)) throw new Error(`publishRegions lists ${r} more than once`);
    seen.add(r);
  }
  if (!publishRegions.includes(home)) {
    throw new Error(
      `publishRegions must include the stack's Region ${home}, where the artifacts and their artifact-key parameters are (got ${publishRegions.join(",")})`,
    );
  }
  return publishRegions.filter((r) => r !== home);
}

/** The statements that let a role publish, point and share in the extra Regions, and stage artifacts there. */
export function regionStatements(n: RegionNames, extra: ExtraRegions): iam.PolicyStatement[] {
  const listed = extra.kind === "list";
  const regions = listed ? [...extra.regions] : ["*"];
  const condition: Record<string, Record<string, unknown>> = listed
    ? {}
    : { StringEquals: { "aws:RequestedRegion": extra.regions } };
  const arns = (service: string, resource: string) =>
    regions.map((r) => `arn:${Aws.PARTITION}:${service}:${r}:${Aws.ACCOUNT_ID}:${resource}`);
  // Template mode: parameter prefixes start with "/" (AllowedPattern); deploy mode: normalised the same way.
  const parameter = (suffix: string) => arns("ssm", `parameter${n.parameterPrefix}${suffix}`);
  const buckets = listed
    ? extra.regions.map((r) => `arn:${Aws.PARTITION}:s3:::${regionalBucketName(extra.bucketNamePrefix, r)}`)
    : [`arn:${Aws.PARTITION}:s3:::${extra.bucketNamePrefix}-${Aws.ACCOUNT_ID}-*`];
  const statement = (sid: string, actions: string[], resources: string[], more: Record<string, unknown> = {}) =>
    new iam.PolicyStatement({ sid, actions, resources, conditions: { ...condition, ...more } });
  const shares = {
    StringLike: { "ram:ResourceShareName": `${RESOURCE_SHARE_NAME_PREFIX}*` },
    Bool: { "ram:AllowsExternalPrincipals": "false" },
  };
  return [
    // HeadBucket (s3:ListBucket) and GetBucketLocation check the bucket's Region before the first copy; the
    // bucket holds only copies of artifacts, so ListBucket needs no prefix condition (HeadBucket has none).
    statement("CheckRegionalBuckets", ["s3:ListBucket", "s3:GetBucketLocation"], buckets),
    // CopyObject from the home bucket (s3:GetObject there is ReadArtifacts) writes the copy; HeadObject
    // (s3:GetObject) tells whether the copy with that checksum is already there.
    statement(
      "StageRegionalArtifacts",
      ["s3:GetObject", "s3:PutObject"],
      buckets.map((b) => `${b}/${n.artifactPrefix}*`),
    ),
    statement("PublishRegionalLayers", ["lambda:PublishLayerVersion"], arns("lambda", `layer:${n.layerNamePrefix}*`)),
    statement(
      "ManageRegionalLayerVersions",
      [
        "lambda:AddLayerVersionPermission",
        "lambda:RemoveLayerVersionPermission",
        "lambda:GetLayerVersionPolicy",
        "lambda:GetLayerVersion",
        "lambda:DeleteLayerVersion",
      ],
      arns("lambda", `layer:${n.layerNamePrefix}*:*`),
    ),
    statement(
      "WriteRegionalLayerParameters",
      ["ssm:GetParameter", "ssm:GetParameters", "ssm:PutParameter", "ssm:DeleteParameter"],
      parameter("/*"),
    ),
    statement("ListRegionalPackageParameters", ["ssm:GetParametersByPath"], [...parameter(""), ...parameter("/*")]),
    parameterSharePoliciesStatement(
      "ApplyRegionalParameterSharePolicies",
      SHARED_PARAMETER_SUFFIXES.flatMap((suffix) => parameter(`/*/${suffix}`)),
      condition,
    ),
    ...shareStatements(n, {
      sid: "ExtendRegionalParameterShares",
      actions: ["ram:AssociateResourceShare"],
      resources: arns("ram", "resource-share/*"),
      conditions: { ...condition, ...shares },
    }),
    statement(
      "PruneRegionalParameterShares",
      ["ram:DisassociateResourceShare", "ram:DeleteResourceShare"],
      arns("ram", "resource-share/*"),
      shares,
    ),
  ];
}

/** Why each Regional statement's ARN pattern contains `*`, by statement id (see nag.ts). */
export const REGION_WILDCARD_REASONS: Readonly<Record<string, string>> = {
  CheckRegionalBuckets:
    "Template mode: the regional buckets {prefix}-{account}-{Region} of this account, and only in the PublishRegions (aws:RequestedRegion).",
  StageRegionalArtifacts:
    "Objects under the artifact prefix of the regional buckets only; keys carry a timestamp, so they cannot be listed in advance.",
  PublishRegionalLayers:
    "Layers named LAYER_NAME_PREFIX + package in this account and in the PublishRegions only; packages are configuration.",
  ManageRegionalLayerVersions:
    "Versions of the layers named LAYER_NAME_PREFIX + package in the PublishRegions; version numbers are assigned by Lambda.",
  WriteRegionalLayerParameters:
    "Parameters under PARAMETER_PREFIX in the PublishRegions only: layer-version-arn per package, and packages are configuration.",
  ListRegionalPackageParameters: "The PARAMETER_PREFIX path and the parameters below it, in the PublishRegions only.",
  ApplyRegionalParameterSharePolicies:
    "The parameters RAM shares (layer-version-arn, history, canary-arn) under PARAMETER_PREFIX in the PublishRegions, and only when a service (RAM) calls with this role's credentials (aws:ViaAWSService).",
  ExtendRegionalParameterShares:
    "Resource shares of this account in the PublishRegions, limited to layer-sync-* shares without external principals and to the shared parameters (ram:ResourceArn).",
  ExtendRegionalParameterSharesWithPrincipals:
    "Resource shares of this account in the PublishRegions, limited to layer-sync-* shares without external principals and to the configured principals (ram:Principal).",
  PruneRegionalParameterShares:
    "Resource shares of this account in the PublishRegions, limited to layer-sync-* shares without external principals (share ARNs end in a RAM-assigned id).",
};
