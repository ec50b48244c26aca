/**
 * Getting an artifact into another Region's bucket, because Lambda publishes a layer only from a bucket in
 * its own Region (a bucket elsewhere fails with PermanentRedirect).
 *
 * - `checkBucketRegion`: the REGION_BUCKETS bucket must be in its Region (HeadBucket's `x-amz-bucket-region`,
 *   GetBucketLocation when HeadBucket does not say), checked once per run before the first copy.
 * - `copyArtifactToRegion`: a server-side CopyObject sent to the destination Region, same key, metadata copied
 *   (`MetadataDirective: COPY`), S3 computing a SHA-256 of the copy (`ChecksumAlgorithm: SHA256`) that must
 *   equal the artifact's `content-sha256`. Nothing is downloaded or uploaded by layer-sync. An object already
 *   there with the same `content-sha256` and checksum is not copied again.
 */
import {
  CopyObjectCommand,
  GetBucketLocationCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { attempt, callFailed, errorStatus, isNotFound } from "../common/aws-errors.ts";
import { PublishError } from "../common/errors.ts";

/** The base64 form S3 uses for a SHA-256 given in hex. */
export function sha256Base64(hex: string): string {
  return Buffer.from(hex, "hex").toString("base64");
}

/** CopyObject's `CopySource`: `bucket/key`, the key URL-encoded segment by segment. */
export function copySource(bucket: string, key: string): string {
  return `${bucket}/${key.split("/").map(encodeURIComponent).join("/")}`;
}

function redirectRegion(error: unknown): string | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const headers = (error as { $response?: { headers?: Record<string, string | undefined> } }).$response?.headers;
  return headers?.["x-amz-bucket-region"] ?? undefined;
}

/** GetBucketLocation's answer as a Region: empty means us-east-1, and the legacy "EU" means eu-west-1. */
export function locationRegion(constraint: string | undefined): string {
  if (!constraint) return "us-east-1";
  return constraint === "EU" ? "eu-west-1" : constraint;
}

/** Fail unless `bucket` exists, is reachable and is in `region`; the message names REGION_BUCKETS. */
export async function checkBucketRegion(s3: S3Client, bucket: string, region: string): Promise<void> {
  const context = {
    call: "s3:ListBucket",
    resource: `bucket ${bucket} (HeadBucket in ${region})`,
    advice: {
      NotFound: `the bucket does not exist; create it in ${region} or fix REGION_BUCKETS (--region-bucket)`,
      NoSuchBucket: `the bucket does not exist; create it in ${region} or fix REGION_BUCKETS (--region-bucket)`,
    },
  };
  let actual: string | undefined;
  try {
    actual = (await s3.send(new HeadBucketCommand({ Bucket: bucket }))).BucketRegion;
  } catch (error) {
    actual = redirectRegion(error);
    if (actual === undefined || errorStatus(error) === 403) throw callFailed(PublishError, context, error);
  }
  actual ??= locationRegion(
    (
      await attempt(PublishError, { ...context, call: "s3:GetBucketLocation" }, () =>
        s3.send(new GetBucketLocationCommand({ Bucket: bucket })),
      )
    ).LocationConstraint,
  );
  if (actual !== region) {
    throw new PublishError(
      `REGION_BUCKETS (--region-bucket) maps ${region} to bucket ${bucket}, which is in ${actual}; name a bucket in ${region} (Lambda publishes a layer only from a bucket in its own Region)`,
    );
  }
}

export interface StageRequest {
  /** The home bucket the artifact is in. */
  sourceBucket: string;
  /** The bucket in the destination Region. */
  bucket: string;
  key: string;
  /** The artifact's content-sha256 (hex): the SHA-256 of the zip. */
  contentSha256: string;
  region: string;
}

/** Copy the artifact into `bucket` unless it is already there; returns whether a copy was made. */
export async function copyArtifactToRegion(s3: S3Client, request: StageRequest): Promise<boolean> {
  const { sourceBucket, bucket, key, contentSha256, region } = request;
  const expected = sha256Base64(contentSha256);
  const target = `s3://${bucket}/${key}`;
  let present = false;
  try {
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key, ChecksumMode: "ENABLED" }));
    present = head.Metadata?.["content-sha256"] === contentSha256 && head.ChecksumSHA256 === expected;
  } catch (error) {
    if (!isNotFound(error)) {
      throw callFailed(PublishError, { call: "s3:GetObject", resource: `${target} (HeadObject in ${region})` }, error);
    }
  }
  if (present) return false;
  const copied = await attempt(
    PublishError,
    {
      call: "s3:CopyObject",
      resource: `s3://${sourceBucket}/${key} to ${target}`,
      permission: "s3:GetObject (source) and s3:PutObject (destination)",
      hint: `check that both Regions are enabled for the account and that REGION_BUCKETS names a bucket in ${region}`,
    },
    () =>
      s3.send(
        new CopyObjectCommand({
          Bucket: bucket,
          Key: key,
          CopySource: copySource(sourceBucket, key),
          MetadataDirective: "COPY",
          ChecksumAlgorithm: "SHA256",
        }),
      ),
  );
  const got = copied.CopyObjectResult?.ChecksumSHA256;
  if (got !== expected) {
    throw new PublishError(
      `the copy of s3://${sourceBucket}/${key} in ${target} has SHA-256 ${got ?? "(none reported)"}, not the artifact's ${expected}; nothing was published in ${region}; run again`,
    );
  }
  return true;
}
