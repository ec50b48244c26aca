/** The consumer read role (infra/cfct/consumer-read-role.template.yaml) and its CfCT manifest entry; text-level, no YAML parser here. */
import { readFileSync } from "node:fs";
import { Template } from "aws-cdk-lib/assertions";
import { describe, expect, it } from "vitest";
import { statementsOf } from "./support.ts";

const role = readFileSync(new URL("../../infra/cfct/consumer-read-role.template.yaml", import.meta.url), "utf8");
const manifest = readFileSync(new URL("../../infra/cfct/manifest.yaml", import.meta.url), "utf8");
const template = JSON.parse(
  readFileSync(new URL("../../infra/template/layer-sync.template.json", import.meta.url), "utf8"),
) as { Resources: Record<string, { Type: string; Properties: Record<string, unknown> }> };

const code = role.replace(/#.*$/gm, "");

function entry(name: string): string {
  const start = manifest.indexOf(`- name: ${name}\n`);
  if (start === -1) throw new Error(`no manifest resource ${name}`);
  const next = manifest.indexOf("\n  - name: ", start + 1);
  return manifest.slice(start, next === -1 ? undefined : next);
}

describe("the consumer read role template", () => {
  it("allows only lambda:ListFunctions and lambda:GetFunctionConfiguration", () => {
    const actions = [...code.matchAll(/Action: (\S+)/g)].map((m) => m[1]);
    expect(actions.sort()).toEqual(["lambda:GetFunctionConfiguration", "lambda:ListFunctions", "sts:AssumeRole"]);
    expect(code).not.toMatch(/ManagedPolicyArns/);
    expect(code).toMatch(
      /Action: lambda:GetFunctionConfiguration\n\s+Resource: !Sub arn:\$\{AWS::Partition\}:lambda:\*:\$\{AWS::AccountId\}:function:\*/,
    );
  });

  it("is trusted only by the publish role and the optional CLI role given as parameters", () => {
    expect(code).toMatch(
      /AWS: !If\n\s+- HasCliRole\n\s+- \[!Ref PublishRoleArn, !Ref CliRoleArn\]\n\s+- \[!Ref PublishRoleArn\]/,
    );
    expect([...code.matchAll(/Principal:/g)]).toHaveLength(1);
    expect(code).toMatch(
      /PublishRoleArn:\n\s+Type: String\n[^\n]*\n\s+AllowedPattern: \^arn:aws\[a-z-\]\*:iam::\\d\{12\}:role\/\.\+\$/,
    );
  });

  it("is named layer-sync-consumer-read by default, the name the publish role may assume", () => {
    expect(code).toMatch(/RoleName:\n\s+Type: String\n[^\n]*\n\s+Default: layer-sync-consumer-read/);
  });
});

describe("its CfCT manifest entry", () => {
  const block = entry("layer-sync-consumer-read-role");

  it("deploys it as a stack set over the organization's OUs and the management account, in one Region", () => {
    expect(block).toContain("resource_file: templates/consumer-read-role.template.yaml");
    expect(block).toContain("deploy_method: stack_set");
    expect(block).toMatch(/organizational_units:\n(\s+- \S+[^\n]*\n)+/);
    expect(block).toMatch(/accounts:\n\s+- "111111111111"/);
    expect(block).toMatch(/regions:\n\s+- eu-west-1[^\n]*\n/);
  });

  it("passes only parameters the template has", () => {
    const keys = [...block.matchAll(/parameter_key: (\S+)/g)].map((m) => m[1]);
    for (const key of keys) expect(code).toMatch(new RegExp(`\\n  ${key}:\\n`));
    expect(keys).toContain("PublishRoleArn");
  });
});

describe("the committed layer-sync template", () => {
  it("lets the publish role assume only the consumer read role, by name in any account", () => {
    const publishRole = Object.entries(template.Resources).find(
      ([id, r]) => r.Type === "AWS::IAM::Role" && id.startsWith("PublishRole"),
    )?.[0];
    if (!publishRole) throw new Error("no publish role in the template");
    const assume = statementsOf(Template.fromJSON(template), publishRole).filter((s) =>
      s.actions.some((a) => a.startsWith("sts:")),
    );
    expect(assume).toEqual([
      {
        sid: "AssumeConsumerReadRole",
        actions: ["sts:AssumeRole"],
        resources: ["arn:<AWS::Partition>:iam::*:role/layer-sync-consumer-read"],
      },
    ]);
  });
});
