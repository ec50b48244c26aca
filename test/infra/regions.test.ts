/**
 * Publishing to three Regions (PUBLISH_REGIONS): a regional bucket stack per extra Region, the settings the
 * functions get, and IAM scoped to exactly those Regions.
 */
import { App } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { beforeAll, describe, expect, it } from "vitest";
import { type Deployment, layerSyncDeployment } from "../../infra/deployment.ts";
import { LayerSyncStack } from "../../infra/stack.ts";
import { ACCOUNT, inlineCode, logicalId, nagFindings, policiesOf, REGION, render } from "./support.ts";

const REGIONS = ["us-east-1", REGION, "ap-southeast-2"];
const EXTRA = ["us-east-1", "ap-southeast-2"];
const SETTINGS = {
  sourceProvider: "github" as const,
  sourceRepository: "acme/layers",
  sourcePaths: ["layers/py-requests"],
  layerNamePrefix: "acme-",
  publishRegions: REGIONS,
};
const ARN = "arn:<AWS::Partition>";

let app: App;
let deployment: Deployment;
let template: Template;

beforeAll(() => {
  app = new App();
  deployment = layerSyncDeployment(
    app,
    { stackName: "LayerSync", settings: SETTINGS, options: {} },
    { account: ACCOUNT, region: REGION },
    inlineCode(),
  );
  template = Template.fromStack(deployment.stack);
});

describe("the regional buckets", () => {
  it("are one stack per extra Region, named from the account and the Region, deployed before the home stack", () => {
    expect(deployment.regional.map((s) => [s.stackName, s.region])).toEqual([
      ["LayerSync-Bucket-us-east-1", "us-east-1"],
      ["LayerSync-Bucket-ap-southeast-2", "ap-southeast-2"],
    ]);
    for (const stack of deployment.regional) {
      const bucket = Template.fromStack(stack).findResources("AWS::S3::Bucket");
      const [props] = Object.values(bucket).map((b) => (b as { Properties: Record<string, unknown> }).Properties);
      expect(render(props?.BucketName)).toBe(`layer-sync-layers-<AWS::AccountId>-${stack.region}`);
      expect(props?.PublicAccessBlockConfiguration).toMatchObject({
        BlockPublicAcls: true,
        RestrictPublicBuckets: true,
      });
      expect(deployment.stack.dependencies).toContain(stack);
    }
  });

  it("pass cdk-nag with a reason for their missing access logs", () => {
    for (const stack of [deployment.stack, ...deployment.regional]) expect(nagFindings(app, stack)).toEqual([]);
  });
});

describe("the functions", () => {
  it("get PUBLISH_REGIONS as given and REGION_BUCKETS for the Regions other than the home one", () => {
    for (const fn of [deployment.stack.syncFunction, deployment.stack.publishFunction]) {
      const env = (template.toJSON().Resources[logicalId(fn)].Properties.Environment as { Variables: object })
        .Variables as Record<string, unknown>;
      expect(env.PUBLISH_REGIONS).toBe("us-east-1,eu-west-1,ap-southeast-2");
      expect(render(env.REGION_BUCKETS)).toBe(
        "us-east-1=layer-sync-layers-<AWS::AccountId>-us-east-1,ap-southeast-2=layer-sync-layers-<AWS::AccountId>-ap-southeast-2",
      );
    }
  });
});

describe("the publish role in the extra Regions", () => {
  it("names each Region's layers, parameters, shares and bucket, and no other Region", () => {
    const statements = policiesOf(template, logicalId(deployment.stack.publishRole)).PublishRegionsPolicy ?? [];
    const by = Object.fromEntries(statements.map((s) => [s.sid, s]));
    const each = (f: (r: string) => string) => EXTRA.map(f).sort();
    expect(by.CheckRegionalBuckets?.actions).toEqual(["s3:GetBucketLocation", "s3:ListBucket"]);
    expect(by.CheckRegionalBuckets?.resources).toEqual(
      each((r) => `${ARN}:s3:::layer-sync-layers-<AWS::AccountId>-${r}`),
    );
    expect(by.StageRegionalArtifacts?.actions).toEqual(["s3:GetObject", "s3:PutObject"]);
    expect(by.StageRegionalArtifacts?.resources).toEqual(
      each((r) => `${ARN}:s3:::layer-sync-layers-<AWS::AccountId>-${r}/layers/*`),
    );
    expect(by.PublishRegionalLayers?.resources).toEqual(
      each((r) => `${ARN}:lambda:${r}:<AWS::AccountId>:layer:acme-*`),
    );
    expect(by.ManageRegionalLayerVersions?.resources).toEqual(
      each((r) => `${ARN}:lambda:${r}:<AWS::AccountId>:layer:acme-*:*`),
    );
    expect(by.WriteRegionalLayerParameters).toMatchObject({
      actions: ["ssm:DeleteParameter", "ssm:GetParameter", "ssm:GetParameters", "ssm:PutParameter"],
      resources: each((r) => `${ARN}:ssm:${r}:<AWS::AccountId>:parameter/layer-sync/*`),
    });
    expect(by.ListRegionalPackageParameters?.resources).toEqual(
      EXTRA.flatMap((r) => [
        `${ARN}:ssm:${r}:<AWS::AccountId>:parameter/layer-sync`,
        `${ARN}:ssm:${r}:<AWS::AccountId>:parameter/layer-sync/*`,
      ]).sort(),
    );
    expect(by.ApplyRegionalParameterSharePolicies?.resources).toEqual(
      EXTRA.flatMap((r) =>
        ["layer-version-arn", "history", "canary-arn"].map(
          (suffix) => `${ARN}:ssm:${r}:<AWS::AccountId>:parameter/layer-sync/*/${suffix}`,
        ),
      ).sort(),
    );
    expect(by.ApplyRegionalParameterSharePolicies?.conditions).toEqual({ Bool: { "aws:ViaAWSService": "true" } });
    for (const sid of ["ExtendRegionalParameterShares", "PruneRegionalParameterShares"]) {
      expect(by[sid]?.resources).toEqual(each((r) => `${ARN}:ram:${r}:<AWS::AccountId>:resource-share/*`));
      expect(by[sid]?.conditions?.StringLike).toEqual({ "ram:ResourceShareName": "layer-sync-*" });
    }
    const regionsNamed = new Set(
      statements.flatMap((s) =>
        s.resources.map((a) => /^arn:<AWS::Partition>:[a-z0-9]+:([a-z0-9-]*):/.exec(a)?.[1] ?? ""),
      ),
    );
    expect([...regionsNamed].sort()).toEqual(["", ...EXTRA].sort());
  });

  it("keeps the home Region's statements as they are without extra Regions", () => {
    const one = new LayerSyncStack(new App(), "One", {
      env: { account: ACCOUNT, region: REGION },
      settings: { ...SETTINGS, publishRegions: [REGION] },
      code: inlineCode(),
    });
    const t = Template.fromStack(one);
    expect(Object.keys(policiesOf(t, logicalId(one.publishRole)))).not.toContain("PublishRegionsPolicy");
    const env = t.toJSON().Resources[logicalId(one.publishFunction)].Properties.Environment.Variables;
    expect(env.PUBLISH_REGIONS).toBeUndefined();
    expect(env.REGION_BUCKETS).toBeUndefined();
  });
});

describe("publishRegions", () => {
  const make =
    (publishRegions: string[], region: string | undefined = REGION) =>
    () =>
      new LayerSyncStack(new App(), "Check", {
        ...(region && { env: { account: ACCOUNT, region } }),
        settings: { ...SETTINGS, publishRegions },
        code: inlineCode(),
      });

  it("must include the stack's Region, list each Region once and name Regions", () => {
    expect(make(["us-east-1"])).toThrow(/must include the stack's Region eu-west-1/);
    expect(make([REGION, "us-east-1", "us-east-1"])).toThrow(/us-east-1 more than once/);
    expect(make([REGION, "Frankfurt"])).toThrow(/Region names such as eu-west-1 \(got Frankfurt\)/);
  });

  it("needs a stack with a concrete Region", () => {
    expect(make(REGIONS, "")).toThrow(/concrete Region/);
  });
});
