/** The CfCT example files in infra/cfct, checked against the committed template (text-level: no YAML parser here). */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { CODE_KEY_PREFIX, codeKey } from "../../infra/synth.ts";

const manifest = readFileSync(new URL("../../infra/cfct/manifest.yaml", import.meta.url), "utf8");
const deployment = readFileSync(new URL("../../docs/deployment.md", import.meta.url), "utf8");
const consumer = readFileSync(new URL("../../infra/cfct/consumer.template.yaml", import.meta.url), "utf8");
const template = JSON.parse(
  readFileSync(new URL("../../infra/template/layer-sync.template.json", import.meta.url), "utf8"),
) as { Parameters: Record<string, { Default?: string }> };

const regional = JSON.parse(
  readFileSync(new URL("../../infra/template/regional-bucket.template.json", import.meta.url), "utf8"),
) as { Resources: Record<string, { Type: string; Properties: Record<string, unknown> }> };

/** The text of one manifest resource, by resource name. */
function block(resourceName: string): string {
  const start = manifest.indexOf(`- name: ${resourceName}\n`);
  if (start === -1) throw new Error(`no manifest resource ${resourceName}`);
  const next = manifest.indexOf("\n  - name: ", start + 1);
  return manifest.slice(start, next === -1 ? undefined : next);
}

/** The `parameter_key`s of one manifest resource, by resource name. */
function parameterKeys(resourceName: string): string[] {
  return [...block(resourceName).matchAll(/parameter_key: (\S+)/g)].map((m) => m[1] ?? "");
}

/** The `parameter_value` of one parameter of one manifest resource. */
function parameterValue(resourceName: string, key: string): string | undefined {
  return block(resourceName).match(new RegExp(`parameter_key: ${key}\\n\\s+parameter_value: (\\S+)`))?.[1];
}

/** The `regions:` list of one manifest resource. */
function regionsOf(resourceName: string): string[] {
  const list = block(resourceName).match(/\n {4}regions:[^\n]*\n((?: {6}- \S+[^\n]*\n?)+)/)?.[1] ?? "";
  return [...list.matchAll(/- (\S+)/g)].map((m) => m[1] ?? "");
}

/** PublishRegions of the layer-sync resource. */
function publishRegions(): string[] {
  return (parameterValue("layer-sync", "PublishRegions") ?? "").split(",");
}

describe("the CfCT manifest example", () => {
  it("uses manifest version 2021-03-15 with a home Region", () => {
    expect(manifest).toMatch(/^version: 2021-03-15$/m);
    expect(manifest).toMatch(/^region: [a-z]{2}-[a-z]+-\d/m);
  });

  it("deploys the synthesised template as a stack set to one account in the home Region", () => {
    expect(manifest).toContain("resource_file: templates/layer-sync.template.json");
    expect(manifest).toMatch(
      /- name: layer-sync\n[\s\S]*?deploy_method: stack_set\n\s+deployment_targets:\n\s+accounts:/,
    );
  });

  it("passes only parameters the template has, including every one without a default", () => {
    const keys = parameterKeys("layer-sync");
    expect(keys.filter((k) => !(k in template.Parameters))).toEqual([]);
    const required = Object.entries(template.Parameters)
      .filter(([, p]) => p.Default === undefined)
      .map(([k]) => k);
    expect(required.filter((k) => !keys.includes(k))).toEqual([]);
  });
});

describe("the publishing Regions of the manifest example", () => {
  it("deploy the regional bucket template to every publishing Region but the home one, with CfCT's regions key", () => {
    const home = manifest.match(/^region: (\S+)/m)?.[1];
    expect(block("layer-sync-regional-buckets")).toContain("resource_file: templates/regional-bucket.template.json");
    expect(regionsOf("layer-sync-regional-buckets")).toEqual(publishRegions().filter((r) => r !== home));
    expect(publishRegions()).toContain(home);
    expect(regionsOf("layer-sync")).toEqual([home]);
  });

  it("give layer-sync each regional bucket by the name the regional template makes", () => {
    const prefix = parameterValue("layer-sync-regional-buckets", "BucketNamePrefix");
    expect(parameterValue("layer-sync", "RegionBucketNamePrefix")).toBe(prefix);
    const account = block("layer-sync").match(/accounts:\n\s+- "(\d{12})"/)?.[1];
    expect(parameterValue("layer-sync", "RegionBuckets")).toBe(
      regionsOf("layer-sync-regional-buckets")
        .map((r) => `${r}=${prefix}-${account}-${r}`)
        .join(","),
    );
    const bucket = Object.values(regional.Resources).find((r) => r.Type === "AWS::S3::Bucket");
    expect(JSON.stringify(bucket?.Properties.BucketName)).toBe(
      JSON.stringify({
        "Fn::Join": ["", [{ Ref: "BucketNamePrefix" }, "-", { Ref: "AWS::AccountId" }, "-", { Ref: "AWS::Region" }]],
      }),
    );
  });
});

describe("the function code keys", () => {
  it("are printed by npm run synth with the prefix the deployment guide's upload command and the manifest use", () => {
    expect(CODE_KEY_PREFIX).toBe("layer-sync/");
    const printed = codeKey("layer-sync-sync-0123456789ab.zip");
    expect(printed).toBe("layer-sync/layer-sync-sync-0123456789ab.zip");
    // docs/deployment.md, CfCT route step 2, uploads dist/ under s3://<bucket>/<prefix>
    const upload = deployment.match(/aws s3 cp infra\/template\/dist\/ s3:\/\/[^/\s]+\/(\S*) /);
    expect(upload?.[1]).toBe(CODE_KEY_PREFIX);
    for (const [parameter, name] of [
      ["SyncCodeS3Key", "sync"],
      ["PublishCodeS3Key", "publish"],
      ["BuildCodeS3Key", "build"],
    ] as const) {
      const value = manifest.match(new RegExp(`parameter_key: ${parameter}\\n\\s+parameter_value: (\\S+)`))?.[1];
      expect(value, parameter).toBe(codeKey(`layer-sync-${name}-0123456789ab.zip`));
    }
  });
});

describe("the consumer template", () => {
  it("reads the shared layer-version-arn parameter by its full ARN through an SSM parameter type", () => {
    expect(consumer).toMatch(/LayerVersionArn:\n\s+Type: AWS::SSM::Parameter::Value<String>/);
    expect(consumer).toMatch(
      /Default: arn:aws:ssm:[a-z0-9-]+:\d{12}:parameter\/layer-sync\/[A-Za-z0-9_-]+\/layer-version-arn\n/,
    );
    expect(consumer).not.toContain("parameter//");
    const withoutComments = consumer.replace(/^\s*#.*$/gm, "");
    expect(withoutComments).not.toMatch(/\{\{resolve:ssm:/);
  });

  it("attaches that layer version to the sample function", () => {
    expect(consumer).toMatch(/Layers:\n\s+- Ref: LayerVersionArn/);
  });

  it("is deployed once per publishing Region, each entry reading the parameter of its own Region", () => {
    const regions = publishRegions();
    expect(regions.length).toBeGreaterThan(1);
    for (const region of regions) {
      const name = `layer-sync-consumer-example-${region}`;
      expect(parameterKeys(name)).toEqual(["LayerVersionArn"]);
      expect(regionsOf(name)).toEqual([region]);
      expect(parameterValue(name, "LayerVersionArn")).toMatch(
        new RegExp(`^arn:aws:ssm:${region}:\\d{12}:parameter/layer-sync/[A-Za-z0-9_-]+/layer-version-arn$`),
      );
    }
  });
});
