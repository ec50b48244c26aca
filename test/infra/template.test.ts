/**
 * The CfCT route: the template-mode stack that `npm run synth` writes to
 * infra/template/layer-sync.template.json. One synthesis for the whole file.
 */
import { readFileSync } from "node:fs";
import { App } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { beforeAll, describe, expect, it } from "vitest";
import type { LayerSyncStack } from "../../infra/stack.ts";
import { TEMPLATE_FILE, templateStack } from "../../infra/synth.ts";
import { logicalId, nagFindings, policiesOf, render, statementsOf } from "./support.ts";

interface Cfn {
  Parameters: Record<string, { Type: string; Default?: string; AllowedValues?: string[]; AllowedPattern?: string }>;
  Conditions: Record<string, unknown>;
  Resources: Record<string, { Type: string; Condition?: string; Properties: Record<string, unknown> }>;
  Rules?: unknown;
}

let app: App;
let stack: LayerSyncStack;
let template: Template;
let cfn: Cfn;
let text: string;

beforeAll(() => {
  app = new App();
  stack = templateStack(app);
  template = Template.fromStack(stack);
  cfn = template.toJSON() as Cfn;
  text = JSON.stringify(cfn);
});

function resource(construct: Parameters<typeof logicalId>[0]) {
  const found = cfn.Resources[logicalId(construct)];
  if (!found) throw new Error(`missing ${logicalId(construct)}`);
  return found;
}

describe("the CfCT template", () => {
  it("is the file committed in infra/template (run npm run synth after changing the stack)", () => {
    expect(JSON.parse(readFileSync(TEMPLATE_FILE, "utf8"))).toEqual(cfn);
  });

  it("needs no CDK bootstrap: no bootstrap version parameter or rule, no bootstrap bucket, no imports, no CDK metadata", () => {
    expect(cfn.Parameters.BootstrapVersion).toBeUndefined();
    expect(cfn.Rules).toBeUndefined();
    expect(text).not.toContain("cdk-hnb659fds");
    expect(text).not.toContain("BootstrapVersion");
    expect(text).not.toContain("Fn::ImportValue");
    expect(Object.values(cfn.Resources).map((r) => r.Type)).not.toContain("AWS::CDK::Metadata");
  });

  it("has no asset parameters: every parameter is a setting or a code location", () => {
    expect(Object.keys(cfn.Parameters).filter((p) => /asset/i.test(p))).toEqual([]);
    expect(Object.keys(cfn.Parameters).sort()).toEqual(
      [
        "SyncCodeS3Bucket",
        "SyncCodeS3Key",
        "PublishCodeS3Bucket",
        "PublishCodeS3Key",
        "BuildCodeS3Bucket",
        "BuildCodeS3Key",
        "SourceProvider",
        "SourceRepository",
        "SourcePaths",
        "SourceRef",
        "SourceApiUrl",
        "SourceWebUrl",
        "SourceStrategy",
        "TokenParameterName",
        "TokenKmsKeyArn",
        "ArtifactPrefix",
        "ParameterPrefix",
        "PipelineName",
        "LayerNamePrefix",
        "CompatibleRuntimes",
        "CompatibleArchitectures",
        "ShareOrganizationId",
        "ShareOuIds",
        "ShareAccountIds",
        "RetainVersions",
        "SummaryEventBus",
        "LayerLicense",
        "GateMode",
        "ReconcileSchedule",
        "NotificationEmail",
        "PublishRegions",
        "RegionBuckets",
        "RegionBucketNamePrefix",
        "Builds",
        "BuildPipIndexUrl",
        "BuildNpmRegistry",
        "BuildIndexTokenParameter",
        "ConcurrentBuildLimit",
        "SmokeTest",
        "CanaryAccountIds",
        "PromoteAfterHours",
        "OrganizationManagementAccountId",
        "ArtifactEncryption",
        "TopicEncryption",
      ].sort(),
    );
  });

  it("defaults the settings as the handlers do and forces slash-led SSM names", () => {
    const defaults = Object.fromEntries(Object.entries(cfn.Parameters).map(([k, v]) => [k, v.Default]));
    expect(defaults).toMatchObject({
      ArtifactPrefix: "layers/",
      ParameterPrefix: "/layer-sync",
      PipelineName: "Custom-Control-Tower-CodePipeline",
      SourceStrategy: "auto",
      RetainVersions: "10",
      SummaryEventBus: "default",
      GateMode: "false",
      ReconcileSchedule: "cron(0 5 * * ? *)",
      TokenParameterName: "",
      Builds: "true",
      BuildIndexTokenParameter: "",
      SmokeTest: "on",
      CanaryAccountIds: "",
      PromoteAfterHours: "",
    });
    expect(cfn.Parameters.SmokeTest?.AllowedValues).toEqual(["on", "off"]);
    const hours = new RegExp(cfn.Parameters.PromoteAfterHours?.AllowedPattern ?? "");
    expect(["", "1", "24", "999", "8760"].every((v) => hours.test(v))).toBe(true);
    expect(["0", "8761", "9000", "24h", "-1"].some((v) => hours.test(v))).toBe(false);
    const accounts = new RegExp(cfn.Parameters.CanaryAccountIds?.AllowedPattern ?? "");
    expect(["", "111122223333", "111122223333,444455556666"].every((v) => accounts.test(v))).toBe(true);
    expect(accounts.test("1111, 2222")).toBe(false);
    expect(cfn.Parameters.SourceProvider?.AllowedValues).toEqual(["bitbucket", "github"]);
    const parameterPrefix = new RegExp(cfn.Parameters.ParameterPrefix?.AllowedPattern ?? "");
    expect(["/layer-sync", "/a/b"].every((v) => parameterPrefix.test(v))).toBe(true);
    expect(["layer-sync", "/layer-sync/", ""].some((v) => parameterPrefix.test(v))).toBe(false);
    const token = new RegExp(cfn.Parameters.TokenParameterName?.AllowedPattern ?? "");
    expect(["", "/layer-sync/token"].every((v) => token.test(v))).toBe(true);
    expect(token.test("layer-sync/token")).toBe(false);
    const index = new RegExp(cfn.Parameters.BuildPipIndexUrl?.AllowedPattern ?? "");
    expect(["", "https://pypi.example.com/simple/"].every((v) => index.test(v))).toBe(true);
    expect(["https://user:secret@pypi.example.com/simple/", "ftp://x"].some((v) => index.test(v))).toBe(false);
  });

  it("loads each function's code from the bucket and key parameters", () => {
    expect(resource(stack.syncFunction).Properties.Code).toEqual({
      S3Bucket: { Ref: "SyncCodeS3Bucket" },
      S3Key: { Ref: "SyncCodeS3Key" },
    });
    expect(resource(stack.publishFunction).Properties.Code).toEqual({
      S3Bucket: { Ref: "PublishCodeS3Bucket" },
      S3Key: { Ref: "PublishCodeS3Key" },
    });
    expect(resource(stack.node.findChild("BuildFunction")).Properties.Code).toEqual({
      S3Bucket: { Ref: "BuildCodeS3Bucket" },
      S3Key: { Ref: "BuildCodeS3Key" },
    });
  });

  it("passes every setting parameter to the functions as its environment variable", () => {
    const variables = (resource(stack.syncFunction).Properties.Environment as { Variables: Record<string, unknown> })
      .Variables;
    expect(Object.fromEntries(Object.entries(variables).map(([k, v]) => [k, render(v)]))).toEqual({
      SOURCE_PROVIDER: "<SourceProvider>",
      SOURCE_REPOSITORY: "<SourceRepository>",
      SOURCE_PATHS: "<SourcePaths>",
      SOURCE_REF: "<SourceRef>",
      SOURCE_API_URL: "<SourceApiUrl>",
      SOURCE_WEB_URL: "<SourceWebUrl>",
      SOURCE_STRATEGY: "<SourceStrategy>",
      TOKEN_PARAMETER_NAME: "<TokenParameterName>",
      ARTIFACT_BUCKET: `<${logicalId(stack.artifactBucket)}>`,
      ARTIFACT_PREFIX: "<ArtifactPrefix>",
      PARAMETER_PREFIX: "<ParameterPrefix>",
      PIPELINE_NAME: "<PipelineName>",
      LAYER_NAME_PREFIX: "<LayerNamePrefix>",
      COMPATIBLE_RUNTIMES: "<CompatibleRuntimes>",
      COMPATIBLE_ARCHITECTURES: "<CompatibleArchitectures>",
      SHARE_ORGANIZATION_ID: "<ShareOrganizationId>",
      SHARE_OU_IDS: "<ShareOuIds>",
      SHARE_ACCOUNT_IDS: "<ShareAccountIds>",
      RETAIN_VERSIONS: "<RetainVersions>",
      SUMMARY_EVENT_BUS: "<SummaryEventBus>",
      LAYER_LICENSE: "<LayerLicense>",
      PUBLISH_REGIONS: "<PublishRegions>",
      REGION_BUCKETS: "<RegionBuckets>",
      BUILD_PIP_INDEX_URL: "<BuildPipIndexUrl>",
      BUILD_NPM_REGISTRY: "<BuildNpmRegistry>",
      BUILD_INDEX_TOKEN_PARAMETER: "<BuildIndexTokenParameter>",
      SMOKE_TEST: "<SmokeTest>",
      CANARY_ACCOUNT_IDS: "<CanaryAccountIds>",
      PROMOTE_AFTER_HOURS: "<PromoteAfterHours>",
      NODE_OPTIONS: "--enable-source-maps",
      // Only when the Builds parameter is true: otherwise the sync fails build folders with its clear message.
      BUILD_PROJECT_X86_64: "Fn::If(HasBuilds, <AWS::StackName>-build-x86_64, <AWS::NoValue>)",
      BUILD_PROJECT_ARM64: "Fn::If(HasBuilds, <AWS::StackName>-build-arm64, <AWS::NoValue>)",
      BUILD_SOURCE_PREFIX: "Fn::If(HasBuilds, build-source/, <AWS::NoValue>)",
      BUILD_OUTPUT_PREFIX: "Fn::If(HasBuilds, build-output/, <AWS::NoValue>)",
      // the sync function publishes in gate mode, smoke test included (test/infra/smoke.test.ts)
      SMOKE_ROLE_ARN: `<${logicalId(stack.smokeRole)}.Arn>`,
    });
    const publish = (resource(stack.publishFunction).Properties.Environment as { Variables: Record<string, unknown> })
      .Variables;
    expect(publish).toEqual(
      Object.fromEntries(Object.entries(variables).filter(([k]) => !/^BUILD_(PROJECT|SOURCE|OUTPUT)_/.test(k))),
    );
    const build = (
      resource(stack.node.findChild("BuildFunction")).Properties.Environment as { Variables: Record<string, unknown> }
    ).Variables;
    expect(Object.fromEntries(Object.entries(build).map(([k, v]) => [k, render(v)]))).toEqual({
      ARTIFACT_BUCKET: `<${logicalId(stack.artifactBucket)}>`,
      ARTIFACT_PREFIX: "<ArtifactPrefix>",
      PARAMETER_PREFIX: "<ParameterPrefix>",
      SUMMARY_EVENT_BUS: "<SummaryEventBus>",
      BUILD_PIP_INDEX_URL: "<BuildPipIndexUrl>",
      BUILD_NPM_REGISTRY: "<BuildNpmRegistry>",
      BUILD_INDEX_TOKEN_PARAMETER: "<BuildIndexTokenParameter>",
      BUILD_PROJECT_X86_64: "<AWS::StackName>-build-x86_64",
      BUILD_PROJECT_ARM64: "<AWS::StackName>-build-arm64",
      BUILD_SOURCE_PREFIX: "build-source/",
      BUILD_OUTPUT_PREFIX: "build-output/",
      NODE_OPTIONS: "--enable-source-maps",
    });
  });

  it("keeps the function sizing of deploy mode", () => {
    expect(resource(stack.syncFunction).Properties).toMatchObject({
      Runtime: "nodejs24.x",
      Architectures: ["arm64"],
      MemorySize: 2048,
      Timeout: 900,
      EphemeralStorage: { Size: 1162 },
    });
    expect(resource(stack.publishFunction).Properties).toMatchObject({ MemorySize: 512, Timeout: 300 });
  });
});

describe("the template's switches", () => {
  it("enable the STARTED and Parameter Store Change rules only outside gate mode", () => {
    for (const id of ["PipelineStartedRule", "ArtifactKeyChangedRule"]) {
      const props = resource(stack.node.findChild(id)).Properties;
      expect(props.State).toEqual({ "Fn::If": ["IsEventMode", "ENABLED", "DISABLED"] });
    }
    expect(cfn.Conditions.IsEventMode).toEqual({ "Fn::Equals": [{ Ref: "GateMode" }, "false"] });
    expect(cfn.Conditions.IsGateMode).toEqual({ "Fn::Equals": [{ Ref: "GateMode" }, "true"] });
  });

  it("match the pipeline and the artifact-key parameters from the template parameters", () => {
    expect(render(resource(stack.node.findChild("PipelineStartedRule")).Properties.EventPattern)).toBe(
      "{source: [aws.codepipeline], detail-type: [CodePipeline Pipeline Execution State Change], detail: {pipeline: [<PipelineName>], state: [STARTED]}}",
    );
    expect(render(resource(stack.node.findChild("ArtifactKeyChangedRule")).Properties.EventPattern)).toBe(
      "{source: [aws.ssm], detail-type: [Parameter Store Change], detail: {name: [{wildcard: <ParameterPrefix>/*/artifact-key}, {wildcard: Fn::Select(1, Fn::Split(#/, #<ParameterPrefix>))/*/artifact-key}], operation: [Create, Update]}}",
    );
  });

  it("turn the reconcile schedule and the e-mail subscription off when their parameters are empty", () => {
    const reconcile = resource(stack.node.findChild("ReconcileScheduleRule")).Properties;
    expect(reconcile.State).toEqual({ "Fn::If": ["HasReconcileSchedule", "ENABLED", "DISABLED"] });
    const subscriptions = Object.values(template.findResources("AWS::SNS::Subscription"));
    expect(subscriptions.map((s) => (s as { Condition: string }).Condition)).toEqual(["HasNotificationEmail"]);
  });

  it("attach the token and gate policies only when their parameters ask for them", () => {
    expect(cfn.Resources.SyncTokenPolicy?.Condition).toBe("HasTokenParameter");
    expect(cfn.Resources.SyncGatePolicy?.Condition).toBe("IsGateMode");
    expect(cfn.Resources.SyncGateUnscopedActionsPolicy?.Condition).toBe("IsGateMode");
    expect(cfn.Resources.PublishUnscopedActionsPolicy?.Condition).toBeUndefined();
    expect(cfn.Resources.PublishRegionsPolicy?.Condition).toBe("HasPublishRegions");
    expect(cfn.Resources.SyncGateRegionsPolicy?.Condition).toBe("IsGateModeWithRegions");
    expect(cfn.Resources.SyncBuildsPolicy?.Condition).toBe("HasBuilds");
    expect(cfn.Resources.SyncGateBuildsPolicy?.Condition).toBe("IsGateModeWithBuilds");
    expect(cfn.Resources.BuildProjectIndexTokenPolicy?.Condition).toBe("HasBuildIndexToken");
    expect(cfn.Conditions.HasBuilds).toEqual({ "Fn::Equals": [{ Ref: "Builds" }, "true"] });
  });

  it("create the build projects, their role and logs, the build-finished function and its rule only with Builds true", () => {
    const ids = [
      "BuildProjectX8664",
      "BuildProjectArm64",
      "BuildProjectRoleX8664",
      "BuildProjectRoleArm64",
      "BuildProjectX8664LogGroup",
      "BuildProjectArm64LogGroup",
      "BuildFunction",
      "BuildRole",
      "BuildLogGroup",
      "BuildFinishedRule",
      "BuildErrorsAlarm",
    ].map((id) => logicalId(stack.node.findChild(id)));
    for (const id of ids) expect(cfn.Resources[id]?.Condition, id).toBe("HasBuilds");
    // Nothing outside the set refers to a resource of it (a Ref to a resource whose condition is false fails).
    const guards = [
      "HasBuilds",
      "HasBuildIndexToken",
      "IsGateModeWithBuilds",
      "HasArtifactKeyWithBuilds",
      "HasTopicKeyWithBuilds",
    ];
    const refers = new RegExp(`"(Ref|Fn::GetAtt)":\\[?"(${ids.join("|")})"`);
    // References inside an Fn::If on one of those conditions are guarded.
    const unguarded = (r: unknown) =>
      JSON.stringify(r, (_k, v: unknown) => {
        const test = (v as { "Fn::If"?: unknown[] } | null)?.["Fn::If"]?.[0];
        return typeof test === "string" && guards.includes(test) ? "guarded" : v;
      });
    const outside = Object.entries(cfn.Resources)
      .filter(([, r]) => !guards.includes(r.Condition ?? ""))
      .filter(([, r]) => refers.test(unguarded(r)))
      .map(([id]) => id);
    expect(outside).toEqual([]);
    const permissions = Object.entries(template.findResources("AWS::Lambda::Permission"))
      .filter(([, r]) => refers.test(JSON.stringify(r)))
      .map(([, r]) => (r as { Condition?: string }).Condition);
    expect(permissions).toEqual(["HasBuilds"]);
    // The events dead-letter queue's policy is shared: its statement for the build rule names it only with Builds.
    const queuePolicy = JSON.stringify(template.findResources("AWS::SQS::QueuePolicy"));
    expect(queuePolicy).toContain(
      JSON.stringify({
        "Fn::If": [
          "HasBuilds",
          { "Fn::GetAtt": [logicalId(stack.node.findChild("BuildFinishedRule")), "Arn"] },
          "none",
        ],
      }),
    );
    expect(render(resource(stack.node.findChild("BuildFinishedRule")).Properties.Targets)).toContain(
      `DeadLetterConfig: {Arn: <${logicalId(stack.eventsDeadLetterQueue)}.Arn>}`,
    );
    expect((cfn as { Outputs?: Record<string, { Condition?: string }> }).Outputs?.BuildFunctionName?.Condition).toBe(
      "HasBuilds",
    );
  });

  it("scope the extra Regions' statements to the PublishRegions and the regional buckets' names", () => {
    const statements = policiesOf(template, logicalId(stack.publishRole)).PublishRegionsPolicy ?? [];
    expect(statements.length).toBe(10);
    for (const s of statements) {
      expect(s.conditions?.StringEquals?.["aws:RequestedRegion"], s.sid).toBe("Fn::Split(,, <PublishRegions>)");
    }
    const by = Object.fromEntries(statements.map((s) => [s.sid, s.resources]));
    expect(by.CheckRegionalBuckets).toEqual(["arn:<AWS::Partition>:s3:::<RegionBucketNamePrefix>-<AWS::AccountId>-*"]);
    expect(by.PublishRegionalLayers).toEqual([
      "arn:<AWS::Partition>:lambda:*:<AWS::AccountId>:layer:<LayerNamePrefix>*",
    ]);
    expect(by.WriteRegionalLayerParameters).toEqual([
      "arn:<AWS::Partition>:ssm:*:<AWS::AccountId>:parameter<ParameterPrefix>/*",
    ]);
  });

  it("never makes a resource depend on a conditional one", () => {
    const conditional = new Set(
      Object.entries(cfn.Resources)
        .filter(([, r]) => r.Condition)
        .map(([id]) => id),
    );
    for (const [id, r] of Object.entries(cfn.Resources) as [string, { DependsOn?: string[]; Condition?: string }][]) {
      if (r.Condition) continue;
      expect(
        (r.DependsOn ?? []).filter((d) => conditional.has(d)),
        id,
      ).toEqual([]);
    }
  });
});

describe("the template's IAM policies", () => {
  const UNSCOPED = [
    "ListOrganizationAccounts",
    "ListLayers",
    "DescribeOrganization",
    "CreateParameterShares",
    "CreateParameterSharesWithPrincipals",
    "ReadParameterShares",
  ];

  it('name no "*" resource except for actions without resource-level permissions, kept in their own policies', () => {
    const buildRoles = ["BuildRole", "BuildProjectRoleX8664", "BuildProjectRoleArm64"].map((r) =>
      stack.node.findChild(r),
    );
    for (const role of [stack.syncRole, stack.publishRole, ...buildRoles]) {
      for (const [policy, statements] of Object.entries(policiesOf(template, logicalId(role)))) {
        const star = statements.filter((s) => s.resources.includes("*")).map((s) => s.sid);
        if (policy === "PublishUnscopedActionsPolicy") expect(star).toEqual(UNSCOPED);
        else if (policy === "SyncGateUnscopedActionsPolicy")
          expect(star).toEqual([...UNSCOPED, "ReportPipelineJobResult"]);
        else expect(star, policy).toEqual([]);
      }
    }
  });

  it("build parameter ARNs from the slash-led prefix without a doubled slash", () => {
    const resources = statementsOf(template, logicalId(stack.syncRole)).flatMap((s) => s.resources);
    expect(resources).toContain(
      "arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter<ParameterPrefix>/*/artifact-key",
    );
    expect(resources).toContain(
      "arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter<TokenParameterName>",
    );
    expect(resources.filter((r) => r.includes("parameter//") || r.includes("parameter/${"))).toEqual([]);
  });

  it("decrypt the token with the given key, or key/* narrowed to SSM and the token parameter", () => {
    const decrypt = policiesOf(template, logicalId(stack.syncRole)).SyncTokenPolicy?.find(
      (s) => s.sid === "DecryptRepositoryToken",
    );
    expect(decrypt).toEqual({
      sid: "DecryptRepositoryToken",
      actions: ["kms:Decrypt"],
      resources: [
        "Fn::If(HasTokenKmsKey, <TokenKmsKeyArn>, arn:<AWS::Partition>:kms:<AWS::Region>:<AWS::AccountId>:key/*)",
      ],
      conditions: {
        StringEquals: {
          "kms:ViaService": "ssm.<AWS::Region>.amazonaws.com",
          "kms:EncryptionContext:PARAMETER_ARN":
            "arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter<TokenParameterName>",
        },
      },
    });
  });

  it("narrow the Organizations listing to the organization when one is given, in the management account given", () => {
    const tree = statementsOf(template, logicalId(stack.publishRole)).find((s) => s.sid === "ListOrganizationTree");
    const account = "Fn::If(HasOrganizationManagementAccount, <OrganizationManagementAccountId>, <AWS::AccountId>)";
    expect(tree?.resources).toEqual([
      `arn:<AWS::Partition>:organizations::${account}:ou/Fn::If(HasShareOrganization, <ShareOrganizationId>, o-*)/ou-*`,
      `arn:<AWS::Partition>:organizations::${account}:root/Fn::If(HasShareOrganization, <ShareOrganizationId>, o-*)/r-*`,
    ]);
  });
});

describe("cdk-nag AwsSolutions on the template stack", () => {
  it("reports no unacknowledged error or warning", () => {
    expect(nagFindings(app, stack)).toEqual([]);
  });
});
