import { S3Client } from "@aws-sdk/client-s3";
import { SSMClient } from "@aws-sdk/client-ssm";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type PublishRequest, runPublish } from "../../lib/publish/publish.ts";
import { readStatus } from "../../lib/publish/status.ts";
import {
  createBucket,
  MOTO_ACCOUNT_ID,
  type OrganizationsFixture,
  organizationsFixture,
  uniqueName,
} from "../support/aws.ts";
import {
  awsFault,
  publishConfig,
  putArtifact,
  type RecordedClients,
  recordedClients,
} from "../support/publish-fixtures.ts";

const HOME = "eu-west-1";
const REGIONS = ["us-east-1", HOME, "ap-southeast-2"] as const;
type Region = (typeof REGIONS)[number];

let homeBucket: string;
const buckets: Partial<Record<Region, string>> = {};
let org: OrganizationsFixture;
const open: RecordedClients[] = [];
const admin = { s3: new S3Client({}), ssm: new SSMClient({}) };

beforeAll(async () => {
  homeBucket = await createBucket(uniqueName("status-home"));
  for (const region of ["us-east-1", "ap-southeast-2"] as const)
    buckets[region] = await createBucket(uniqueName(`status-${region}`), region);
  org = await organizationsFixture();
});

afterEach(() => {
  for (const c of open.splice(0)) c.destroy();
});

afterAll(() => {
  for (const client of Object.values(admin)) client.destroy();
});

function world() {
  const byRegion = {} as Record<Region, RecordedClients>;
  for (const region of REGIONS) {
    byRegion[region] = region === HOME ? recordedClients() : recordedClients(region);
    open.push(byRegion[region]);
  }
  const home = byRegion[HOME];
  return {
    of: (region: Region) => byRegion[region],
    all: Object.values(byRegion),
    deps: () => home.deps({ regionClients: (region) => byRegion[region as Region] }),
  };
}

const one = (pkg: string): PublishRequest => ({ kind: "packages", packages: [pkg], trigger: "manual" });

describe("reading the status of every package in every Region", () => {
  it("marks the Region a failed run left behind with what to run, reports all in step after a reconcile, and writes nothing", async () => {
    const prefix = `/${uniqueName("st")}`;
    const pkg = uniqueName("py");
    const config = publishConfig({
      ARTIFACT_BUCKET: homeBucket,
      PARAMETER_PREFIX: prefix,
      SHARE_ORGANIZATION_ID: org.organizationId,
      PUBLISH_REGIONS: REGIONS.join(","),
      REGION_BUCKETS: `us-east-1=${buckets["us-east-1"]},ap-southeast-2=${buckets["ap-southeast-2"]}`,
    });
    const artifact = await putArtifact(admin, { bucket: homeBucket, parameterPrefix: prefix, pkg, content: "s1" });
    const failing = world();
    failing.of("ap-southeast-2").ram.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === "CreateResourceShareCommand") throw awsFault("AccessDeniedException", "no", 403);
        return next(args);
      },
      { step: "initialize" },
    );
    await runPublish(config, one(pkg), failing.deps());

    const reader = world();
    const before = await readStatus(config, {}, reader.deps());

    const arn = (region: string) => `arn:aws:lambda:${region}:${MOTO_ACCOUNT_ID}:layer:${pkg}:1`;
    const inStep = (region: string) => ({
      region,
      version: 1,
      layerVersionArn: arn(region),
      parameterMatches: true,
      principals: [org.organizationArn],
      shared: true,
      outOfStep: false,
      problems: [],
    });
    expect(before).toEqual({
      packages: [
        {
          name: pkg,
          artifactKey: artifact.key,
          commit: artifact.commit,
          outOfStep: true,
          regions: [
            inStep("us-east-1"),
            inStep(HOME),
            {
              region: "ap-southeast-2",
              version: 1,
              layerVersionArn: arn("ap-southeast-2"),
              parameterMatches: true,
              principals: [],
              shared: false,
              outOfStep: true,
              problems: [`the RAM share does not hold ${prefix}/${pkg}/layer-version-arn`],
              // the settings came from the environment, not flags: in force for the copied command anyway
              fix: `layer-sync publish --package ${pkg}`,
              fixCommands: [["layer-sync", "publish", "--package", pkg]],
            },
          ],
        },
      ],
    });
    expect(reader.all.flatMap((c) => c.writes())).toEqual([]);

    await runPublish(config, { kind: "reconcile" }, world().deps());
    const after = await readStatus(config, { packages: [pkg] }, world().deps());
    expect(after.packages[0]?.outOfStep).toBe(false);
    expect(after.packages[0]?.regions).toEqual(REGIONS.map(inStep));
  });

  it("marks a package whose artifact-key is missing as needing a sync", async () => {
    const config = publishConfig({ ARTIFACT_BUCKET: homeBucket, PARAMETER_PREFIX: `/${uniqueName("st")}` });
    const report = await readStatus(config, { packages: ["nothing-here"] }, world().deps());
    expect(report.packages[0]).toMatchObject({
      name: "nothing-here",
      artifactKey: null,
      outOfStep: true,
      regions: [
        {
          region: HOME,
          version: null,
          outOfStep: true,
          fix: "layer-sync sync (the artifact of nothing-here is missing), then layer-sync publish --package nothing-here",
        },
      ],
    });
  });
});
