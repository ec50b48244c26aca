import { describe, expect, it } from "vitest";
import { loadPublishConfig, planRegions } from "../../lib/common/config.ts";
import { ConfigError } from "../../lib/common/errors.ts";

const base = { ARTIFACT_BUCKET: "home-bucket" };

function problems(env: Record<string, string>, flags?: Record<string, string | string[]>, homeRegion?: string) {
  try {
    loadPublishConfig({ env: { ...base, ...env }, flags }, homeRegion ? { homeRegion } : {});
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
  return [];
}

describe("PUBLISH_REGIONS and REGION_BUCKETS", () => {
  it("default to the home Region only, publishing from ARTIFACT_BUCKET as before", () => {
    const c = loadPublishConfig({ env: base }, { homeRegion: "eu-west-1" });
    expect(c.regions).toEqual({ publishRegions: undefined, buckets: {} });
    expect(planRegions(c, "eu-west-1")).toEqual([{ region: "eu-west-1", bucket: "home-bucket", home: true }]);
  });

  it("publish each Region's layer from the bucket of that Region, in the order given", () => {
    const c = loadPublishConfig(
      {
        env: {
          ...base,
          PUBLISH_REGIONS: "us-east-1, eu-west-1,ap-southeast-2",
          REGION_BUCKETS: "ap-southeast-2=layers-apse2,us-east-1=layers-use1",
        },
      },
      { homeRegion: "eu-west-1" },
    );
    expect(planRegions(c, "eu-west-1")).toEqual([
      { region: "us-east-1", bucket: "layers-use1", home: false },
      { region: "eu-west-1", bucket: "home-bucket", home: true },
      { region: "ap-southeast-2", bucket: "layers-apse2", home: false },
    ]);
  });

  it("take --regions and repeated --region-bucket flags over the variables", () => {
    const c = loadPublishConfig({
      env: { ...base, PUBLISH_REGIONS: "eu-west-1", REGION_BUCKETS: "us-east-1=nope-bucket" },
      flags: { regions: ["eu-west-1,us-east-1"], "region-bucket": ["us-east-1=flag-bucket", "eu-central-1=b-euc1"] },
    });
    expect(c.regions).toEqual({
      publishRegions: ["eu-west-1", "us-east-1"],
      buckets: { "us-east-1": "flag-bucket", "eu-central-1": "b-euc1" },
    });
  });

  it.each([
    [{ PUBLISH_REGIONS: "eu-west-1,us-east-1" }, "REGION_BUCKETS (--region-bucket) has no bucket for us-east-1"],
    [{ PUBLISH_REGIONS: "eu-west-1,eu-west-1" }, "PUBLISH_REGIONS (--regions) lists eu-west-1 more than once"],
    [
      { PUBLISH_REGIONS: "eu-west-1,Mars" },
      'PUBLISH_REGIONS (--regions) has invalid Region names (e.g. eu-west-1): "Mars"',
    ],
    [{ PUBLISH_REGIONS: "us-east-1", REGION_BUCKETS: "us-east-1=b-use1" }, "must include the home Region eu-west-1"],
    [{ REGION_BUCKETS: "us-east-1=a-bucket,us-east-1=b-bucket" }, "maps us-east-1 more than once"],
    [
      { REGION_BUCKETS: "us-east-1=a-bucket,eu-central-1=a-bucket" },
      "maps both us-east-1 and eu-central-1 to bucket a-bucket",
    ],
    [{ REGION_BUCKETS: "us-east-1" }, 'has "us-east-1", which is not REGION=BUCKET'],
    [{ REGION_BUCKETS: "us-east-1=Bad_Bucket" }, 'whose bucket "Bad_Bucket" is not a valid S3 bucket name'],
    [{ REGION_BUCKETS: "useast=a-bucket" }, 'whose Region "useast" is not a Region name'],
    [{ REGION_BUCKETS: "eu-west-1=other-bucket" }, "maps the home Region eu-west-1 to other-bucket"],
    [
      { PUBLISH_REGIONS: "eu-west-1,us-east-1", REGION_BUCKETS: "us-east-1=home-bucket" },
      "maps us-east-1 to ARTIFACT_BUCKET",
    ],
  ])("reject %j with one line naming the setting", (env, text) => {
    const found = problems(env, undefined, "eu-west-1");
    expect(found).toHaveLength(1);
    expect(found[0]).toContain(text);
    expect(found[0]).toMatch(/^(PUBLISH_REGIONS \(--regions\)|REGION_BUCKETS \(--region-bucket\)) /);
    expect(found[0]).not.toContain("\n");
  });

  it("are checked against the home Region again when the run starts", () => {
    const c = loadPublishConfig({ env: { ...base, PUBLISH_REGIONS: "eu-west-1,us-east-1" } });
    expect(() => planRegions(c, "eu-west-1")).toThrow(ConfigError);
    expect(() => planRegions(c, "eu-west-1")).toThrow(
      /^REGION_BUCKETS \(--region-bucket\) has no bucket for us-east-1/,
    );
  });

  it("ignore buckets of Regions not listed, so --regions can name a subset", () => {
    const c = loadPublishConfig(
      { env: { ...base, REGION_BUCKETS: "us-east-1=b-use1" }, flags: { regions: ["eu-west-1"] } },
      { homeRegion: "eu-west-1" },
    );
    expect(planRegions(c, "eu-west-1").map((t) => t.region)).toEqual(["eu-west-1"]);
  });
});
