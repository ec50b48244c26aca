/**
 * Storage: the artifact bucket (versioned, private, TLS 1.2, lifecycle rules), its optional customer managed
 * key and its server access log bucket. Created in the stack's own scope so logical ids stay stable.
 */
import { CfnCondition, Duration, Fn, RemovalPolicy, type Stack } from "aws-cdk-lib";
import * as kms from "aws-cdk-lib/aws-kms";
import * as s3 from "aws-cdk-lib/aws-s3";
import type { LayerSyncOptions } from "../settings.ts";
import { BUILD_OUTPUT_PREFIX, BUILD_SOURCE_PREFIX } from "./build-names.ts";
import { applySwitch, type Switch } from "./resolved.ts";

/** Days build sources, records and outputs are kept (noncurrent versions then expire with the others). */
export const BUILD_FILES_DAYS = 7;

export interface Storage {
  readonly artifactBucket: s3.Bucket;
  readonly accessLogBucket: s3.Bucket | undefined;
  /** The artifact key when it always exists (deploy mode with artifactEncryption: kms). */
  readonly artifactKey: kms.Key | undefined;
  /** Template mode: the artifact key that exists only when its condition holds (ArtifactEncryption=kms). */
  readonly conditionalArtifactKey: { readonly key: kms.Key; readonly on: CfnCondition } | undefined;
}

export function createStorage(scope: Stack, options: LayerSyncOptions, useKey: Switch = false): Storage {
  const key =
    useKey !== false
      ? new kms.Key(scope, "ArtifactKey", {
          description: "layer-sync artifact bucket encryption",
          enableKeyRotation: true,
          removalPolicy: RemovalPolicy.RETAIN,
        })
      : undefined;
  if (key) applySwitch(key.node.defaultChild as kms.CfnKey, useKey);
  const artifactKey = useKey === true ? key : undefined;

  const accessLogBucket =
    options.accessLogging === false
      ? undefined
      : new s3.Bucket(scope, "AccessLogBucket", {
          blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
          enforceSSL: true,
          minimumTLSVersion: 1.2,
          // Server access logging delivers only to SSE-S3 buckets.
          encryption: s3.BucketEncryption.S3_MANAGED,
          objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
          lifecycleRules: [
            {
              id: "ExpireAccessLogs",
              expiration: Duration.days(options.accessLogRetentionDays ?? 365),
              abortIncompleteMultipartUploadAfter: Duration.days(1),
            },
          ],
          removalPolicy: RemovalPolicy.RETAIN,
        });

  const artifactBucket = new s3.Bucket(scope, "ArtifactBucket", {
    blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
    enforceSSL: true,
    minimumTLSVersion: 1.2,
    versioned: true,
    objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
    ...(artifactKey
      ? { encryption: s3.BucketEncryption.KMS, encryptionKey: artifactKey, bucketKeyEnabled: true }
      : { encryption: s3.BucketEncryption.S3_MANAGED }),
    ...(accessLogBucket && {
      serverAccessLogsBucket: accessLogBucket,
      serverAccessLogsPrefix: "artifact-bucket/",
    }),
    lifecycleRules: artifactLifecycle(options),
    removalPolicy: RemovalPolicy.RETAIN,
  });
  let conditionalArtifactKey: Storage["conditionalArtifactKey"];
  if (key && useKey instanceof CfnCondition) {
    // The bucket's default encryption follows the condition: the key (with an S3 bucket key) or SSE-S3.
    (artifactBucket.node.defaultChild as s3.CfnBucket).addPropertyOverride(
      "BucketEncryption.ServerSideEncryptionConfiguration",
      [
        Fn.conditionIf(
          useKey.logicalId,
          {
            ServerSideEncryptionByDefault: { SSEAlgorithm: "aws:kms", KMSMasterKeyID: key.keyArn },
            BucketKeyEnabled: true,
          },
          { ServerSideEncryptionByDefault: { SSEAlgorithm: "AES256" } },
        ),
      ],
    );
    conditionalArtifactKey = { key, on: useKey };
  }
  return { artifactBucket, accessLogBucket, artifactKey, conditionalArtifactKey };
}

/** Noncurrent versions expire, old artifacts move to Standard-IA, expiry only when asked for. */
export function artifactLifecycle(options: LayerSyncOptions): s3.LifecycleRule[] {
  return [
    {
      id: "ExpireNoncurrentVersions",
      noncurrentVersionExpiration: Duration.days(options.noncurrentVersionExpirationDays ?? 30),
      abortIncompleteMultipartUploadAfter: Duration.days(1),
    },
    {
      id: "OldArtifactsToInfrequentAccess",
      transitions: [
        {
          storageClass: s3.StorageClass.INFREQUENT_ACCESS,
          transitionAfter: Duration.days(options.artifactInfrequentAccessDays ?? 30),
        },
      ],
      ...(options.artifactExpirationDays !== undefined && {
        expiration: Duration.days(options.artifactExpirationDays),
      }),
    },
    { id: "RemoveExpiredDeleteMarkers", expiredObjectDeleteMarker: true },
    // Build sources, records and outputs are read only while a build runs and right after it finishes
    // (a build times out after 30 minutes); the artifact made from them lives under the artifact prefix.
    { id: "ExpireBuildSources", prefix: BUILD_SOURCE_PREFIX, expiration: Duration.days(BUILD_FILES_DAYS) },
    { id: "ExpireBuildOutputs", prefix: BUILD_OUTPUT_PREFIX, expiration: Duration.days(BUILD_FILES_DAYS) },
  ];
}
