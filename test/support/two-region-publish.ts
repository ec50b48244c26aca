/**
 * The two-Region publish environment on moto that the smoke-test, rollback and canary tests share: an artifact
 * bucket in the home Region and one in the other Region, the organization, admin clients, the run's recorded
 * clients (destroyed after each test), fresh package names, and the settings of a publish to both Regions.
 * Call `twoRegionPublish()` once at the top of a test file: it registers the file's hooks.
 */
import { S3Client } from "@aws-sdk/client-s3";
import { SSMClient } from "@aws-sdk/client-ssm";
import { afterAll, afterEach, beforeAll } from "vitest";
import type { PublishConfig } from "../../lib/common/config.ts";
import type { PublishRequest } from "../../lib/publish/publish.ts";
import { createBucket, MOTO_ACCOUNT_ID, organizationsFixture, uniqueName } from "./aws.ts";
import {
  type ArtifactSpec,
  publishConfig,
  putArtifact,
  type RecordedClients,
  regionWorld,
  type UploadedArtifact,
} from "./publish-fixtures.ts";

export const HOME = "eu-west-1";
export const OTHER = "us-east-1";
export const REGIONS = [HOME, OTHER] as const;
export type Region = (typeof REGIONS)[number];

/** A fresh parameter prefix and package, and the names of the package's parameters under it. */
export interface PackageNames {
  prefix: string;
  pkg: string;
  /** The package name as a Python module. */
  module: string;
  arnParameter: string;
  historyParameter: string;
  holdParameter: string;
  canaryParameter: string;
}

export function packageNames(label: string): PackageNames {
  const prefix = `/${uniqueName(label)}`;
  const pkg = uniqueName("py");
  return {
    prefix,
    pkg,
    module: pkg.replace(/-/g, "_"),
    arnParameter: `${prefix}/${pkg}/layer-version-arn`,
    historyParameter: `${prefix}/${pkg}/history`,
    holdParameter: `${prefix}/${pkg}/rollback`,
    canaryParameter: `${prefix}/${pkg}/canary-arn`,
  };
}

/** A manual publish of one package. */
export const one = (pkg: string): PublishRequest => ({ kind: "packages", packages: [pkg], trigger: "manual" });

/** The ARN of a layer version in moto's account. */
export const layerArn = (region: string, pkg: string, version: number): string =>
  `arn:aws:lambda:${region}:${MOTO_ACCOUNT_ID}:layer:${pkg}:${version}`;

export interface TwoRegionPublish {
  /** Set by the file's beforeAll. */
  homeBucket: string;
  otherBucket: string;
  orgId: string;
  orgArn: string;
  readonly admin: { s3: S3Client; ssm: SSMClient };
  /** Recorded clients for both Regions, destroyed after the test. */
  world(): ReturnType<typeof regionWorld<Region>>;
  /** Settings of a publish of `prefix` to both Regions, shared with the organization, plus `extra`. */
  config(n: { prefix: string }, extra?: Record<string, string>): PublishConfig;
  /** An artifact of the package in the home bucket, with its pointer. */
  artifact(
    n: { prefix: string; pkg: string },
    spec: Omit<ArtifactSpec, "bucket" | "parameterPrefix" | "pkg">,
  ): Promise<UploadedArtifact>;
}

/** Registers the hooks of a test file publishing to two Regions (`label` names its buckets). */
export function twoRegionPublish(label: string): TwoRegionPublish {
  const open: RecordedClients[] = [];
  const env: TwoRegionPublish = {
    homeBucket: "",
    otherBucket: "",
    orgId: "",
    orgArn: "",
    admin: { s3: new S3Client({}), ssm: new SSMClient({}) },
    world: () => regionWorld<Region>(HOME, [OTHER], open),
    config: (n, extra = {}) =>
      publishConfig({
        ARTIFACT_BUCKET: env.homeBucket,
        PARAMETER_PREFIX: n.prefix,
        SHARE_ORGANIZATION_ID: env.orgId,
        PUBLISH_REGIONS: REGIONS.join(","),
        REGION_BUCKETS: `${OTHER}=${env.otherBucket}`,
        ...extra,
      }),
    artifact: (n, spec) =>
      putArtifact(env.admin, { bucket: env.homeBucket, parameterPrefix: n.prefix, pkg: n.pkg, ...spec }),
  };

  beforeAll(async () => {
    env.homeBucket = await createBucket(uniqueName(`${label}-home`));
    env.otherBucket = await createBucket(uniqueName(`${label}-other`), OTHER);
    const org = await organizationsFixture();
    env.orgId = org.organizationId;
    env.orgArn = org.organizationArn;
  });

  afterEach(() => {
    for (const c of open.splice(0)) c.destroy();
  });

  afterAll(() => {
    for (const client of Object.values(env.admin)) client.destroy();
  });

  return env;
}
