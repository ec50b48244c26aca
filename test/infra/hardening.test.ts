/**
 * Issue 19 (IaC hardening), asserted on the synthesised templates of both routes: the CDK stack (deploy mode,
 * sharing with an organization, an OU and an account, builds on) and the CfCT template (template mode, the
 * stack behind infra/template/layer-sync.template.json). One synthesis per route.
 */
import { App } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { beforeAll, describe, expect, it } from "vitest";
import { LayerSyncStack } from "../../infra/stack.ts";
import { templateStack } from "../../infra/synth.ts";
import { ACCOUNT, inlineCode, logicalId, nagFindings, policiesOf, REGION, render, type Statement } from "./support.ts";

interface Route {
  name: string;
  app: App;
  stack: LayerSyncStack;
  template: Template;
  resources: Record<string, { Type: string; Condition?: string; Properties: Record<string, unknown> }>;
}

const SHARED = ["layer-version-arn", "history", "canary-arn"];

function route(name: string, make: (app: App) => LayerSyncStack): Route {
  const app = new App();
  const stack = make(app);
  const template = Template.fromStack(stack);
  return { name, app, stack, template, resources: template.toJSON().Resources };
}

let cdk: Route;
let cfct: Route;

beforeAll(() => {
  cdk = route("the CDK stack", (app) => {
    return new LayerSyncStack(app, "Hardened", {
      env: { account: ACCOUNT, region: REGION },
      settings: {
        sourceProvider: "github",
        sourceRepository: "acme/layers",
        sourcePaths: ["layers/a"],
        shareOrganizationId: "o-abcdefghij",
        shareOuIds: ["ou-abcd-12345678"],
        shareAccountIds: ["222222222222"],
      },
      options: { organizationManagementAccountId: "333333333333" },
      code: inlineCode(),
    });
  });
  cfct = route("the CfCT template", templateStack);
});

/** Every Allow statement of every policy of a role, with the policy's logical id. */
function statements(r: Route, role: string): (Statement & { policy: string })[] {
  return Object.entries(policiesOf(r.template, logicalId(r.stack.node.findChild(role)))).flatMap(([policy, list]) =>
    list.map((s) => ({ ...s, policy })),
  );
}

const sid = (list: Statement[], id: string) => {
  const found = list.find((s) => s.sid === id);
  if (!found) throw new Error(`no statement ${id}`);
  return found;
};

function props(r: Route, construct: string): Record<string, unknown> {
  const found = r.resources[logicalId(r.stack.node.findChild(construct))];
  if (!found) throw new Error(`no resource ${construct}`);
  return found.Properties;
}

describe.each(["cdk", "cfct"] as const)("on %s", (which) => {
  const r = () => (which === "cdk" ? cdk : cfct);

  describe("RAM applying a share as the parameters' resource policy (point 1)", () => {
    it("is allowed only through a service (aws:ViaAWSService), never conditioned on aws:CalledVia", () => {
      const apply = sid(statements(r(), "PublishRole"), "ApplyParameterSharePolicies");
      expect(apply.actions).toEqual(["ssm:DeleteResourcePolicy", "ssm:GetResourcePolicies", "ssm:PutResourcePolicy"]);
      expect(apply.conditions).toEqual({ Bool: { "aws:ViaAWSService": "true" } });
      expect(JSON.stringify(r().template.toJSON())).not.toContain("aws:CalledVia");
    });

    it("names only the parameters layer-sync shares: layer-version-arn, history and canary-arn", () => {
      const apply = sid(statements(r(), "PublishRole"), "ApplyParameterSharePolicies");
      expect(apply.resources.map((a) => a.replace(/^.*:parameter/, ""))).toEqual(
        SHARED.map((s) => `${which === "cdk" ? "/layer-sync" : "<ParameterPrefix>"}/*/${s}`).sort(),
      );
    });
  });

  describe("sharing scope (point 2)", () => {
    it("creates and extends shares only with the shared parameters (ram:ResourceArn) in resource contexts", () => {
      const list = statements(r(), "PublishRole");
      for (const id of ["CreateParameterShares", "ExtendParameterShares"]) {
        const s = sid(list, id);
        expect(s.conditions?.StringEquals?.["ram:RequestedResourceType"], id).toBe("ssm:Parameter");
        const arns = s.conditions?.ArnLike?.["ram:ResourceArn"] as string[];
        expect(arns.map((a) => a.replace(/^arn:<AWS::Partition>:ssm:\*:<AWS::AccountId>:parameter/, ""))).toEqual(
          SHARED.map((x) => `${which === "cdk" ? "/layer-sync" : "<ParameterPrefix>"}/*/${x}`),
        );
        expect(s.conditions?.StringLike?.["ram:Principal"], id).toBeUndefined();
      }
    });

    it("creates and extends shares only with the configured principals (ram:Principal) in principal contexts", () => {
      const list = statements(r(), "PublishRole");
      const org = "arn:<AWS::Partition>:organizations::";
      const expected =
        which === "cdk"
          ? [
              `${org}333333333333:organization/o-abcdefghij`,
              `${org}333333333333:ou/o-abcdefghij/ou-abcd-12345678`,
              "222222222222",
            ]
          : "Fn::Split(,, " +
            `Fn::If(HasShareOrganization, ${org}Fn::If(HasOrganizationManagementAccount, <OrganizationManagementAccountId>, <AWS::AccountId>):organization/<ShareOrganizationId>, no-organization),` +
            "Fn::If(HasShareOus, arn:*:organizations::*:ou/*/Fn::Join(,arn:*:organizations::*:ou/*/, Fn::Split(,, <ShareOuIds>)), no-organizational-units)," +
            "Fn::If(HasShareAccounts, <ShareAccountIds>, no-accounts))";
      for (const id of ["CreateParameterSharesWithPrincipals", "ExtendParameterSharesWithPrincipals"]) {
        const s = sid(list, id);
        expect(s.conditions?.StringLike?.["ram:Principal"], id).toEqual(expected);
        expect(s.conditions?.StringEquals, id).toBeUndefined();
        expect(s.conditions?.ArnLike, id).toBeUndefined();
      }
      for (const id of ["CreateParameterShares", "CreateParameterSharesWithPrincipals"]) {
        expect(sid(list, id).conditions?.Bool).toEqual({ "ram:RequestedAllowsExternalPrincipals": "false" });
      }
    });

    it("keeps the OU ids of the CfCT template's principals exact (no spaces, OU id pattern)", () => {
      if (which === "cdk") return;
      const parameters = r().template.toJSON().Parameters as Record<string, { AllowedPattern?: string }>;
      const ous = new RegExp(parameters.ShareOuIds?.AllowedPattern ?? "");
      expect(["", "ou-abcd-12345678", "ou-abcd-12345678,ou-efgh-87654321"].every((v) => ous.test(v))).toBe(true);
      expect(["ou-abcd-12345678, ou-efgh-87654321", "r-abcd"].some((v) => ous.test(v))).toBe(false);
      const accounts = new RegExp(parameters.ShareAccountIds?.AllowedPattern ?? "");
      expect(["", "222222222222,333333333333"].every((v) => accounts.test(v))).toBe(true);
      expect(accounts.test("222222222222, 333333333333")).toBe(false);
    });
  });

  describe("the sync queue (point 3)", () => {
    it("has a visibility timeout of at least 6 × the sync function's timeout and a maxReceiveCount of at least 5", () => {
      const queue = props(r(), "SyncQueue") as {
        VisibilityTimeout: number;
        RedrivePolicy: { maxReceiveCount: number };
      };
      const timeout = props(r(), "SyncFunction").Timeout as number;
      expect(timeout).toBeGreaterThan(0);
      expect(queue.VisibilityTimeout).toBeGreaterThanOrEqual(6 * timeout);
      expect(queue.RedrivePolicy.maxReceiveCount).toBeGreaterThanOrEqual(5);
      // SQS's own ceiling: 12 hours
      expect(queue.VisibilityTimeout).toBeLessThanOrEqual(43_200);
    });
  });

  describe("least privilege (point 4)", () => {
    it("lets the sync role (outside gate mode) write only artifact-key parameters, never layer-version-arn", () => {
      const writes = statements(r(), "SyncRole")
        .filter((s) => !s.policy.startsWith("SyncGate"))
        .filter((s) => s.actions.includes("ssm:PutParameter"));
      expect(writes.length).toBeGreaterThan(0);
      for (const s of writes) for (const a of s.resources) expect(a).toMatch(/\/\*\/artifact-key$/);
    });

    it("grants no action that nothing calls", () => {
      const text = JSON.stringify(r().template.toJSON());
      for (const action of ["s3:ListMultipartUploadParts", "ssm:GetParameterHistory", "organizations:ListChildren"]) {
        expect(text, action).not.toContain(action);
      }
      const publish = statements(r(), "PublishRole").filter((s) => !s.policy.startsWith("PublishRegions"));
      expect(publish.flatMap((s) => s.actions)).not.toContain("s3:GetObjectVersion");
    });

    it("grants logs:CreateLogGroup only on a log group's own ARN, without :*", () => {
      const all = Object.keys(r().resources).flatMap((id) => {
        const res = r().resources[id];
        return res?.Type === "AWS::IAM::Role" ? Object.values(policiesOf(r().template, id)).flat() : [];
      });
      const create = all.filter((s) => s.actions.includes("logs:CreateLogGroup"));
      // the two CodeBuild projects' roles and the smoke functions' role
      expect(create.length).toBe(3);
      for (const s of create) {
        expect(s.actions).toEqual(["logs:CreateLogGroup"]);
        for (const a of s.resources)
          expect(a).toMatch(
            /:log-group:(\/aws\/codebuild\/<AWS::StackName>-build-(x86_64|arm64)|\/aws\/lambda\/layer-sync-smoke-\*)$/,
          );
      }
    });

    it("gives each CodeBuild project a role of its own that writes only under its architecture's output prefix", () => {
      for (const [project, role, arch] of [
        ["BuildProjectX8664", "BuildProjectRoleX8664", "x86_64"],
        ["BuildProjectArm64", "BuildProjectRoleArm64", "arm64"],
      ] as const) {
        expect(render(props(r(), project).ServiceRole)).toBe(`<${logicalId(r().stack.node.findChild(role))}.Arn>`);
        const list = statements(r(), role);
        const puts = list.filter((s) => s.actions.includes("s3:PutObject"));
        expect(puts.map((s) => s.resources)).toEqual([
          [`<${logicalId(r().stack.artifactBucket)}.Arn>/build-output/${arch}/*`],
        ]);
        expect(sid(list, "ReadBuildSources").actions).toEqual(["s3:GetObject", "s3:GetObjectVersion"]);
      }
    });

    it("lets the build-finished function read the builds CodeBuild reports (codebuild:BatchGetBuilds)", () => {
      const read = sid(statements(r(), "BuildRole"), "ReadBuilds");
      expect(read.actions).toEqual(["codebuild:BatchGetBuilds"]);
      expect(read.resources.map((a) => a.replace(/^.*:project\//, ""))).toEqual([
        "<AWS::StackName>-build-arm64",
        "<AWS::StackName>-build-x86_64",
      ]);
    });

    it("sets a concurrent build limit on both projects, 4 by default", () => {
      for (const project of ["BuildProjectX8664", "BuildProjectArm64"]) {
        const limit = props(r(), project).ConcurrentBuildLimit;
        if (which === "cdk") expect(limit).toBe(4);
        else {
          expect(limit).toEqual({ Ref: "ConcurrentBuildLimit" });
          const parameter = (r().template.toJSON().Parameters as Record<string, unknown>).ConcurrentBuildLimit;
          expect(parameter).toMatchObject({ Type: "Number", Default: 4, MinValue: 1 });
        }
      }
    });
  });

  describe("outside the management account (point 5)", () => {
    it("names the configured management account in the OU-listing ARNs", () => {
      const tree = sid(statements(r(), "PublishRole"), "ListOrganizationTree");
      const account =
        which === "cdk"
          ? "333333333333"
          : "Fn::If(HasOrganizationManagementAccount, <OrganizationManagementAccountId>, <AWS::AccountId>)";
      for (const a of tree.resources)
        expect(a.startsWith(`arn:<AWS::Partition>:organizations::${account}:`)).toBe(true);
    });
  });

  it("stays clean under cdk-nag's AwsSolutions pack", () => {
    expect(nagFindings(r().app, r().stack)).toEqual([]);
  });
});

describe("the CfCT template's customer managed keys (point 6)", () => {
  const conditionOf = (construct: string) => cfct.resources[logicalId(cfct.stack.node.findChild(construct))]?.Condition;

  it("creates the artifact key and the topic key, with rotation, only when their parameters ask for them", () => {
    const parameters = cfct.template.toJSON().Parameters as Record<
      string,
      { Default?: string; AllowedValues?: string[] }
    >;
    expect(parameters.ArtifactEncryption).toMatchObject({ Default: "s3", AllowedValues: ["s3", "kms"] });
    expect(parameters.TopicEncryption).toMatchObject({ Default: "false", AllowedValues: ["false", "true"] });
    expect(conditionOf("ArtifactKey")).toBe("HasArtifactKey");
    expect(conditionOf("FailureTopicKey")).toBe("HasTopicKey");
    expect(props(cfct, "ArtifactKey").EnableKeyRotation).toBe(true);
    expect(props(cfct, "FailureTopicKey").EnableKeyRotation).toBe(true);
  });

  it("encrypts the bucket with the key (and an S3 bucket key) or SSE-S3, and the topic with its key or not at all", () => {
    const key = logicalId(cfct.stack.node.findChild("ArtifactKey"));
    expect(props(cfct, "ArtifactBucket").BucketEncryption).toEqual({
      ServerSideEncryptionConfiguration: [
        {
          "Fn::If": [
            "HasArtifactKey",
            {
              ServerSideEncryptionByDefault: {
                SSEAlgorithm: "aws:kms",
                KMSMasterKeyID: { "Fn::GetAtt": [key, "Arn"] },
              },
              BucketKeyEnabled: true,
            },
            { ServerSideEncryptionByDefault: { SSEAlgorithm: "AES256" } },
          ],
        },
      ],
    });
    const topicKey = logicalId(cfct.stack.node.findChild("FailureTopicKey"));
    expect(props(cfct, "FailureTopic").KmsMasterKeyId).toEqual({
      "Fn::If": ["HasTopicKey", { "Fn::GetAtt": [topicKey, "Arn"] }, { Ref: "AWS::NoValue" }],
    });
    expect(props(cfct, "BuildProjectX8664").EncryptionKey).toEqual({
      "Fn::If": ["HasArtifactKey", { "Fn::GetAtt": [key, "Arn"] }, { Ref: "AWS::NoValue" }],
    });
  });

  it("grants the keys only through policies that exist with them, and nothing unconditional refers to a key", () => {
    const json = cfct.template.toJSON() as { Resources: Record<string, { Condition?: string }> };
    expect(json.Resources.SyncArtifactKeyPolicy?.Condition).toBe("HasArtifactKey");
    expect(json.Resources.PublishArtifactKeyPolicy?.Condition).toBe("HasArtifactKey");
    expect(json.Resources.BuildArtifactKeyPolicy?.Condition).toBe("HasArtifactKeyWithBuilds");
    expect(json.Resources.FunctionsTopicKeyPolicy?.Condition).toBe("HasTopicKey");
    expect(json.Resources.BuildTopicKeyPolicy?.Condition).toBe("HasTopicKeyWithBuilds");
    const keys = ["ArtifactKey", "FailureTopicKey"].map((k) => logicalId(cfct.stack.node.findChild(k)));
    const guards = ["HasArtifactKey", "HasTopicKey"];
    const unguarded = (value: unknown) =>
      JSON.stringify(value, (_k, v: unknown) => {
        const test = (v as { "Fn::If"?: unknown[] } | null)?.["Fn::If"]?.[0];
        return typeof test === "string" && guards.includes(test) ? "guarded" : v;
      });
    const refers = new RegExp(`"(Ref|Fn::GetAtt)":\\[?"(${keys.join("|")})"`);
    const outside = Object.entries(json.Resources)
      .filter(([, res]) => res.Condition === undefined)
      .filter(([, res]) => refers.test(unguarded(res)))
      .map(([id]) => id);
    expect(outside).toEqual([]);
  });
});
