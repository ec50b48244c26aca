/**
 * RegionalBucketStack: the bucket an extra publishing Region publishes its layers from
 * (`{prefix}-{account}-{region}`, see infra/constructs/regions.ts). One small stack per extra Region in the
 * `cdk deploy` app; in template mode it is the regional bucket template CfCT deploys to the listed Regions.
 *
 * The bucket holds only server-side copies of the home artifacts (CopyObject by the publish function), which
 * Lambda reads once when it publishes: copies expire after 30 days (a later run copies again if it needs to),
 * so no versioning.
 */
import {
  CfnOutput,
  CfnParameter,
  DefaultStackSynthesizer,
  Duration,
  RemovalPolicy,
  Stack,
  type StackProps,
  Validations,
} from "aws-cdk-lib";
import * as s3 from "aws-cdk-lib/aws-s3";
import type { Construct } from "constructs";
import {
  DEFAULT_REGION_BUCKET_NAME_PREFIX,
  REGION_BUCKET_NAME_PREFIX,
  regionalBucketName,
} from "./constructs/regions.ts";

export interface RegionalBucketStackProps extends StackProps {
  /** `deploy` (the prefix is a prop) or `template` (the prefix is the BucketNamePrefix parameter). @default "deploy" */
  readonly mode?: "deploy" | "template";
  /** First part of the bucket name; must equal the home stack's regionBucketNamePrefix. @default "layer-sync-layers" */
  readonly bucketNamePrefix?: string;
}

export class RegionalBucketStack extends Stack {
  readonly bucket: s3.Bucket;

  constructor(scope: Construct, id: string, props: RegionalBucketStackProps = {}) {
    super(scope, id, {
      description: "layer-sync: the bucket this Region publishes layers from (copies of the home artifacts)",
      ...props,
      ...(props.mode === "template" && {
        synthesizer: props.synthesizer ?? new DefaultStackSynthesizer({ generateBootstrapVersionRule: false }),
        analyticsReporting: false,
      }),
    });
    let prefix = props.bucketNamePrefix ?? DEFAULT_REGION_BUCKET_NAME_PREFIX;
    if (props.mode === "template") {
      prefix = new CfnParameter(this, "BucketNamePrefix", {
        type: "String",
        description:
          "First part of the bucket name {prefix}-{account}-{Region}; the same as RegionBucketNamePrefix of layer-sync",
        default: DEFAULT_REGION_BUCKET_NAME_PREFIX,
        allowedPattern: REGION_BUCKET_NAME_PREFIX.source,
      }).valueAsString;
    } else if (!REGION_BUCKET_NAME_PREFIX.test(prefix)) {
      throw new Error(`regionBucketNamePrefix must be 1-30 lowercase letters, digits or "-" (got "${prefix}")`);
    }
    this.bucket = new s3.Bucket(this, "RegionalArtifactBucket", {
      bucketName: regionalBucketName(prefix, this.region),
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      encryption: s3.BucketEncryption.S3_MANAGED,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [
        {
          id: "ExpireCopies",
          expiration: Duration.days(30),
          abortIncompleteMultipartUploadAfter: Duration.days(1),
        },
      ],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    Validations.of(this.bucket).acknowledge({
      id: "AwsSolutions-S1",
      reason:
        "Holds only server-side copies of the home artifacts, written by the publish function; the home artifact bucket's access is logged, and CloudTrail data events can audit this one.",
    });
    new CfnOutput(this, "RegionalBucketName", { value: this.bucket.bucketName });
  }
}
