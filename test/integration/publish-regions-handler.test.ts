import { LambdaClient } from "@aws-sdk/client-lambda";
import { S3Client } from "@aws-sdk/client-s3";
import { SSMClient } from "@aws-sdk/client-ssm";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { main } from "../../cli/main.ts";
import { publishHandler } from "../../handlers/publish.ts";
import { ConfigError } from "../../lib/common/errors.ts";
import type { PublishSummary } from "../../lib/publish/publish.ts";
import { createBucket, MOTO_ACCOUNT_ID, uniqueName } from "../support/aws.ts";
import { parameterOf, putArtifact, versionsOf } from "../support/publish-fixtures.ts";

const REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"];
const SETTINGS = ["ARTIFACT_BUCKET", "PARAMETER_PREFIX", "PUBLISH_REGIONS", "REGION_BUCKETS"];
const admin = { s3: new S3Client({}), ssm: new SSMClient({}) };
const lambdaIn = Object.fromEntries(REGIONS.map((r) => [r, new LambdaClient({ region: r })]));
const ssmIn = Object.fromEntries(REGIONS.map((r) => [r, new SSMClient({ region: r })]));
let bucket: string;
let use1: string;
let apse2: string;
let prefix: string;

beforeAll(async () => {
  bucket = await createBucket(uniqueName("rh-home"));
  use1 = await createBucket(uniqueName("rh-use1"), "us-east-1");
  apse2 = await createBucket(uniqueName("rh-apse2"), "ap-southeast-2");
});

beforeEach(() => {
  prefix = `/${uniqueName("rh")}`;
});

afterEach(() => {
  for (const name of SETTINGS) delete process.env[name];
});

afterAll(() => {
  for (const c of [...Object.values(admin), ...Object.values(lambdaIn), ...Object.values(ssmIn)]) c.destroy();
});

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    io: {
      stdout: { write: (t: string) => out.push(t) },
      stderr: { write: (t: string) => err.push(t), isTTY: false },
    },
  };
}

describe("the publish handler with PUBLISH_REGIONS", () => {
  it("publishes the package in every Region with clients it makes for each Region", async () => {
    const pkg = uniqueName("hr");
    await putArtifact(admin, { bucket, parameterPrefix: prefix, pkg, content: "handler-regions" });
    Object.assign(process.env, {
      ARTIFACT_BUCKET: bucket,
      PARAMETER_PREFIX: prefix,
      PUBLISH_REGIONS: REGIONS.join(","),
      REGION_BUCKETS: `us-east-1=${use1},ap-southeast-2=${apse2}`,
    });

    const result = (await publishHandler({ package: pkg })) as PublishSummary;

    expect(result.packages[0]?.regions.map((r) => [r.region, r.version, r.published])).toEqual(
      REGIONS.map((r) => [r, 1, true]),
    );
    for (const region of REGIONS) {
      const arn = `arn:aws:lambda:${region}:${MOTO_ACCOUNT_ID}:layer:${pkg}:1`;
      expect((await versionsOf(lambdaIn[region] as LambdaClient, pkg)).map((v) => v.arn)).toEqual([arn]);
      expect((await parameterOf(ssmIn[region] as SSMClient, `${prefix}/${pkg}/layer-version-arn`))?.value).toBe(arn);
    }
  });

  it("refuses a Region without a bucket before publishing anything, naming REGION_BUCKETS", async () => {
    const pkg = uniqueName("hr");
    await putArtifact(admin, { bucket, parameterPrefix: prefix, pkg, content: "handler-no-bucket" });
    Object.assign(process.env, {
      ARTIFACT_BUCKET: bucket,
      PARAMETER_PREFIX: prefix,
      PUBLISH_REGIONS: REGIONS.join(","),
    });

    const failure = await publishHandler({ package: pkg }).catch((error: unknown) => error);

    expect(failure).toBeInstanceOf(ConfigError);
    expect((failure as Error).message).toMatch(
      /^invalid configuration: REGION_BUCKETS \(--region-bucket\) has no bucket for us-east-1, /,
    );
    expect(await versionsOf(lambdaIn["eu-west-1"] as LambdaClient, pkg)).toEqual([]);
  });
});

describe("layer-sync publish with --regions", () => {
  it("publishes in every Region given with --regions and --region-bucket", async () => {
    const pkg = uniqueName("cr");
    await putArtifact(admin, { bucket, parameterPrefix: prefix, pkg, content: "cli-regions" });
    const t = io();

    const code = await main(
      [
        "publish",
        "--json",
        "--package",
        pkg,
        "--bucket",
        bucket,
        "--parameter-prefix",
        prefix,
        "--regions",
        REGIONS.join(","),
      ].concat(["--region-bucket", `us-east-1=${use1}`, "--region-bucket", `ap-southeast-2=${apse2}`]),
      {},
      t.io,
    );

    expect(t.err).toEqual([]);
    expect(code).toBe(0);
    const summary = JSON.parse(t.out.join("")) as PublishSummary;
    expect(summary.packages[0]?.regions.map((r) => [r.region, r.version])).toEqual(REGIONS.map((r) => [r, 1]));
  });

  it("exits 1 naming the Region that failed while the others are published", async () => {
    const pkg = uniqueName("cr");
    await putArtifact(admin, { bucket, parameterPrefix: prefix, pkg, content: "cli-wrong-bucket" });
    const t = io();

    const code = await main(
      [
        "publish",
        "--json",
        "--package",
        pkg,
        "--bucket",
        bucket,
        "--parameter-prefix",
        prefix,
        "--regions",
        REGIONS.join(","),
      ].concat(["--region-bucket", `us-east-1=${use1}`, "--region-bucket", `ap-southeast-2=${uniqueName("x")}`]),
      {},
      t.io,
    );

    expect(code).toBe(1);
    expect(t.err.join("")).toMatch(
      new RegExp(
        `^layer-sync: 1 of 1 package\\(s\\) failed to publish: ${pkg}: ap-southeast-2: s3:ListBucket on bucket \\S+ \\(HeadBucket in ap-southeast-2\\) failed .*fix REGION_BUCKETS \\(--region-bucket\\)\\n$`,
      ),
    );
    const summary = JSON.parse(t.out.join("")) as PublishSummary;
    expect(summary.packages[0]?.regions.map((r) => [r.region, r.version])).toEqual([
      ["us-east-1", 1],
      ["eu-west-1", 1],
      ["ap-southeast-2", null],
    ]);
  });

  it("exits 2 with one line naming REGION_BUCKETS when a Region has no bucket", async () => {
    const t = io();
    const code = await main(
      ["publish", "--package", "p", "--bucket", bucket, "--regions", "eu-west-1,us-east-1"],
      {},
      t.io,
    );
    expect(code).toBe(2);
    expect(t.err.join("")).toMatch(
      /^layer-sync: REGION_BUCKETS \(--region-bucket\) has no bucket for us-east-1, [^\n]*\n$/,
    );
    expect(t.out).toEqual([]);
  });
});
