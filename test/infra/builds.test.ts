/**
 * Builds in AWS (issue 13): the two CodeBuild projects, their role and log groups, the build-finished function
 * and its `CodeBuild Build State Change` rule, and what the sync may do with them. One synthesis per variant:
 * the default options with a package index credential, gate mode with the artifact key, and builds off.
 */
import { App } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { beforeAll, describe, expect, it } from "vitest";
import { configFromContext, type LayerSyncSettings } from "../../infra/settings.ts";
import { LayerSyncStack, type LayerSyncStackProps } from "../../infra/stack.ts";
import {
  ACCOUNT,
  acknowledgments,
  inlineCode,
  logicalId,
  nagFindings,
  policiesOf,
  REGION,
  render,
  statementsOf,
} from "./support.ts";

const ARN = "arn:<AWS::Partition>";
const HERE = "<AWS::Region>:<AWS::AccountId>";
const SETTINGS: LayerSyncSettings = {
  sourceProvider: "github",
  sourceRepository: "acme/layers",
  sourcePaths: ["py/deps", "node/deps"],
  buildPipIndexUrl: "https://acme-111111111111.d.codeartifact.eu-west-1.amazonaws.com/pypi/internal/simple/",
  buildIndexTokenParameter: "/layer-sync/index-token",
};

interface Synth {
  app: App;
  stack: LayerSyncStack;
  template: Template;
  resources: Record<string, { Type: string; Properties: Record<string, unknown>; DependsOn?: string[] }>;
}

function synth(id: string, props: Partial<LayerSyncStackProps> = {}): Synth {
  const app = new App();
  const stack = new LayerSyncStack(app, id, {
    env: { account: ACCOUNT, region: REGION },
    settings: SETTINGS,
    code: inlineCode(),
    ...props,
  });
  const template = Template.fromStack(stack);
  return { app, stack, template, resources: template.toJSON().Resources };
}

function props(s: Synth, constructId: string): Record<string, unknown> {
  const found = s.resources[logicalId(s.stack.node.findChild(constructId))];
  if (!found) throw new Error(`no resource for ${constructId}`);
  return found.Properties;
}

const id = (s: Synth, constructId: string) => logicalId(s.stack.node.findChild(constructId));
const ROLE = { x86_64: "BuildProjectRoleX8664", arm64: "BuildProjectRoleArm64" } as const;
const CONTEXT: Record<string, string> = {
  sourceProvider: "github",
  sourceRepository: "acme/layers",
  sourcePaths: "py/deps",
  concurrentBuildLimit: "8",
};

let plain: Synth;
let gate: Synth;
let off: Synth;

beforeAll(() => {
  plain = synth("Builds");
  gate = synth("BuildsGate", {
    settings: { ...SETTINGS, buildIndexTokenParameter: undefined },
    options: { gateMode: true, artifactEncryption: "kms" },
  });
  off = synth("NoBuilds", {
    settings: { ...SETTINGS, buildIndexTokenParameter: undefined },
    options: { builds: false },
  });
});

describe("the CodeBuild projects", () => {
  it("build x86_64 on LINUX_CONTAINER and arm64 on ARM_CONTAINER, small compute, the SAM image, unprivileged, 30 minutes", () => {
    for (const [construct, type, arch] of [
      ["BuildProjectX8664", "LINUX_CONTAINER", "x86_64"],
      ["BuildProjectArm64", "ARM_CONTAINER", "arm64"],
    ] as const) {
      const p = props(plain, construct);
      expect(render(p.Name)).toBe(`<AWS::StackName>-build-${arch}`);
      expect(p.Environment).toEqual({
        Type: type,
        ComputeType: "BUILD_GENERAL1_SMALL",
        Image: `public.ecr.aws/sam/build-python3.13:latest-${arch}`,
        ImagePullCredentialsType: "CODEBUILD",
        PrivilegedMode: false,
      });
      expect(p.TimeoutInMinutes).toBe(30);
      expect(p.ServiceRole).toEqual({ "Fn::GetAtt": [id(plain, ROLE[arch]), "Arn"] });
      expect(p.ConcurrentBuildLimit).toBe(4);
      // No VPC: default networking reaches the package index.
      expect(p.VpcConfig).toBeUndefined();
      expect(p.EncryptionKey).toBeUndefined();
    }
  });

  it("have no source of their own and a buildspec that fails, since every build overrides both", () => {
    const source = props(plain, "BuildProjectX8664").Source as { Type: string; BuildSpec: string };
    expect(source.Type).toBe("NO_SOURCE");
    expect(source.BuildSpec).toMatch(/^version: 0\.2\n/);
    expect(source.BuildSpec).toMatch(/exit 1$/m);
  });

  it("take the concurrent build limit from the concurrentBuildLimit option", () => {
    const limited = synth("BuildsLimited", { options: { concurrentBuildLimit: 2 } });
    for (const project of ["BuildProjectX8664", "BuildProjectArm64"]) {
      expect(props(limited, project).ConcurrentBuildLimit).toBe(2);
    }
    expect(() => synth("BuildsUnlimited", { options: { concurrentBuildLimit: 0 } })).toThrow(/concurrentBuildLimit/);
    expect(configFromContext((k) => CONTEXT[k]).options.concurrentBuildLimit).toBe(8);
  });

  it("put artifacts in the artifact bucket under their own architecture's build output prefix, unpackaged", () => {
    expect(props(plain, "BuildProjectArm64").Artifacts).toEqual({
      Type: "S3",
      Location: { Ref: logicalId(plain.stack.artifactBucket) },
      Path: "build-output/arm64",
      Name: "unused",
      Packaging: "NONE",
      NamespaceType: "NONE",
    });
  });

  it("log to /aws/codebuild/<project> with the functions' retention, created before the projects", () => {
    for (const [project, group, arch] of [
      ["BuildProjectX8664", "BuildProjectX8664LogGroup", "x86_64"],
      ["BuildProjectArm64", "BuildProjectArm64LogGroup", "arm64"],
    ] as const) {
      expect(render(props(plain, group).LogGroupName)).toBe(`/aws/codebuild/<AWS::StackName>-build-${arch}`);
      expect(props(plain, group).RetentionInDays).toBe(90);
      expect(props(plain, project).LogsConfig).toEqual({
        CloudWatchLogs: { Status: "ENABLED", GroupName: { Ref: id(plain, group) } },
        S3Logs: { Status: "DISABLED" },
      });
      expect(plain.resources[id(plain, project)]?.DependsOn).toEqual(
        expect.arrayContaining([id(plain, group), id(plain, ROLE[arch]), "BuildProjectIndexTokenPolicy"]),
      );
    }
  });

  it("encrypt their output with the artifact key when the bucket has one", () => {
    const key = logicalId(gate.stack.node.findChild("ArtifactKey"));
    expect(props(gate, "BuildProjectX8664").EncryptionKey).toEqual({ "Fn::GetAtt": [key, "Arn"] });
  });
});

describe("the CodeBuild roles", () => {
  it("are one per project, each assumable only by CodeBuild for this account's project of its architecture", () => {
    for (const arch of ["x86_64", "arm64"] as const) {
      expect(props(plain, ROLE[arch]).AssumeRolePolicyDocument).toEqual({
        Statement: [
          {
            Action: "sts:AssumeRole",
            Effect: "Allow",
            Principal: { Service: "codebuild.amazonaws.com" },
            Condition: {
              StringEquals: { "aws:SourceAccount": { Ref: "AWS::AccountId" } },
              ArnLike: {
                "aws:SourceArn": { "Fn::Join": ["", expect.arrayContaining([":project/", `-build-${arch}`])] },
              },
            },
          },
        ],
        Version: "2012-10-17",
      });
      expect(props(plain, ROLE[arch]).ManagedPolicyArns).toBeUndefined();
    }
  });

  it("read the build source by key and version, write only their own architecture's output and their own logs, and read exactly the index credential", () => {
    const bucket = logicalId(plain.stack.artifactBucket);
    for (const [arch, group] of [
      ["x86_64", "BuildProjectX8664LogGroup"],
      ["arm64", "BuildProjectArm64LogGroup"],
    ] as const) {
      expect(statementsOf(plain.template, id(plain, ROLE[arch]))).toEqual([
        {
          sid: "CheckArtifactBucket",
          actions: ["s3:GetBucketAcl", "s3:GetBucketLocation"],
          resources: [`<${bucket}.Arn>`],
        },
        {
          // logs:CreateLogGroup matches the group's own ARN, without ":*"
          sid: "CreateBuildLogGroup",
          actions: ["logs:CreateLogGroup"],
          resources: [`${ARN}:logs:${HERE}:log-group:/aws/codebuild/<AWS::StackName>-build-${arch}`],
        },
        {
          sid: "DecryptIndexToken",
          actions: ["kms:Decrypt"],
          resources: [`${ARN}:kms:${HERE}:key/*`],
          conditions: {
            StringEquals: {
              "kms:ViaService": "ssm.<AWS::Region>.amazonaws.com",
              "kms:EncryptionContext:PARAMETER_ARN": `${ARN}:ssm:${HERE}:parameter/layer-sync/index-token`,
            },
          },
        },
        {
          sid: "ReadBuildSources",
          actions: ["s3:GetObject", "s3:GetObjectVersion"],
          resources: [`<${bucket}.Arn>/build-source/*`],
        },
        {
          sid: "ReadIndexToken",
          actions: ["ssm:GetParameters"],
          resources: [`${ARN}:ssm:${HERE}:parameter/layer-sync/index-token`],
        },
        {
          sid: "WriteBuildLogs",
          actions: ["logs:CreateLogStream", "logs:PutLogEvents"],
          resources: [`<${id(plain, group)}.Arn>`],
        },
        // the contract with the builds: {BUILD_OUTPUT_PREFIX}{architecture}/{package}/{fingerprint}.zip
        { sid: "WriteBuildOutputs", actions: ["s3:PutObject"], resources: [`<${bucket}.Arn>/build-output/${arch}/*`] },
      ]);
      expect(Object.keys(policiesOf(plain.template, id(plain, ROLE[arch])))).toContain("BuildProjectIndexTokenPolicy");
    }
  });

  it("use the artifact key, and read no credential when none is configured", () => {
    for (const arch of ["x86_64", "arm64"] as const) {
      const sids = statementsOf(gate.template, id(gate, ROLE[arch])).map((s) => s.sid);
      expect(sids).toEqual([
        "CheckArtifactBucket",
        "CreateBuildLogGroup",
        "ReadBuildSources",
        "UseArtifactKey",
        "WriteBuildLogs",
        "WriteBuildOutputs",
      ]);
    }
  });
});

describe("the build-finished rule", () => {
  it("matches the finished states of the two projects and delivers to the build-finished function with retries and the events DLQ", () => {
    const rule = props(plain, "BuildFinishedRule");
    expect(render(rule.EventPattern)).toBe(
      "{source: [aws.codebuild], detail-type: [CodeBuild Build State Change], detail: {project-name: [<AWS::StackName>-build-x86_64, <AWS::StackName>-build-arm64], build-status: [SUCCEEDED, FAILED, STOPPED, TIMED_OUT, FAULT]}}",
    );
    expect(rule.State).toBe("ENABLED");
    expect(rule.Targets).toEqual([
      {
        Id: "Target0",
        Arn: { "Fn::GetAtt": [id(plain, "BuildFunction"), "Arn"] },
        DeadLetterConfig: { Arn: { "Fn::GetAtt": [logicalId(plain.stack.eventsDeadLetterQueue), "Arn"] } },
        RetryPolicy: { MaximumEventAgeInSeconds: 86400, MaximumRetryAttempts: 185 },
      },
    ]);
  });
});

describe("the build-finished function", () => {
  it("runs handlers/build.ts on nodejs24.x/arm64 with 2048 MB, 15 minutes and /tmp for a 250 MB layer", () => {
    expect(props(plain, "BuildFunction")).toMatchObject({
      Runtime: "nodejs24.x",
      Architectures: ["arm64"],
      Handler: "index.handler",
      MemorySize: 2048,
      Timeout: 900,
      EphemeralStorage: { Size: 1162 },
      LoggingConfig: { LogGroup: { Ref: id(plain, "BuildLogGroup") } },
    });
  });

  it("gets only the settings it reads", () => {
    expect(props(plain, "BuildFunction").Environment).toEqual({
      Variables: {
        ARTIFACT_BUCKET: { Ref: logicalId(plain.stack.artifactBucket) },
        ARTIFACT_PREFIX: "layers/",
        PARAMETER_PREFIX: "/layer-sync",
        SUMMARY_EVENT_BUS: "default",
        BUILD_PIP_INDEX_URL: SETTINGS.buildPipIndexUrl,
        BUILD_INDEX_TOKEN_PARAMETER: "/layer-sync/index-token",
        BUILD_PROJECT_X86_64: { "Fn::Join": ["", [{ Ref: "AWS::StackName" }, "-build-x86_64"]] },
        BUILD_PROJECT_ARM64: { "Fn::Join": ["", [{ Ref: "AWS::StackName" }, "-build-arm64"]] },
        BUILD_SOURCE_PREFIX: "build-source/",
        BUILD_OUTPUT_PREFIX: "build-output/",
        NODE_OPTIONS: "--enable-source-maps",
      },
    });
  });

  it("is not retried on error, so a failed build sends one failure record to the topic", () => {
    const configs = Object.values(plain.template.findResources("AWS::Lambda::EventInvokeConfig")).map(
      (c) => (c as { Properties: Record<string, unknown> }).Properties,
    );
    expect(configs).toContainEqual({
      FunctionName: { Ref: id(plain, "BuildFunction") },
      Qualifier: "$LATEST",
      MaximumRetryAttempts: 0,
      MaximumEventAgeInSeconds: 21600,
      DestinationConfig: { OnFailure: { Destination: { Ref: logicalId(plain.stack.failureTopic) } } },
    });
  });

  it("reads build records, sources, outputs and logs, writes artifacts and moves only artifact-key pointers", () => {
    const bucket = logicalId(plain.stack.artifactBucket);
    expect(statementsOf(plain.template, id(plain, "BuildRole"))).toEqual([
      { sid: "", actions: ["sns:Publish"], resources: [`<${logicalId(plain.stack.failureTopic)}>`] },
      {
        sid: "ListArtifactPrefix",
        actions: ["s3:ListBucket"],
        resources: [`<${bucket}.Arn>`],
        conditions: { StringLike: { "s3:prefix": ["layers/*"] } },
      },
      {
        sid: "ListBuildPrefixes",
        actions: ["s3:ListBucket"],
        resources: [`<${bucket}.Arn>`],
        conditions: { StringLike: { "s3:prefix": ["build-source/*", "build-output/*"] } },
      },
      {
        sid: "MoveArtifactPointers",
        actions: ["ssm:GetParameter", "ssm:PutParameter"],
        resources: [`${ARN}:ssm:${HERE}:parameter/layer-sync/*/artifact-key`],
      },
      { sid: "PutSummaryEvent", actions: ["events:PutEvents"], resources: [`${ARN}:events:${HERE}:event-bus/default`] },
      {
        sid: "ReadBuildFiles",
        actions: ["s3:GetObject"],
        resources: [`<${bucket}.Arn>/build-output/*`, `<${bucket}.Arn>/build-source/*`],
      },
      {
        sid: "ReadBuildLogs",
        actions: ["logs:GetLogEvents"],
        resources: [
          `<${id(plain, "BuildProjectArm64LogGroup")}.Arn>`,
          `<${id(plain, "BuildProjectX8664LogGroup")}.Arn>`,
        ],
      },
      {
        // the SHA-256 CodeBuild reports for the build's artifact proves the output
        sid: "ReadBuilds",
        actions: ["codebuild:BatchGetBuilds"],
        resources: [
          `${ARN}:codebuild:${HERE}:project/<AWS::StackName>-build-arm64`,
          `${ARN}:codebuild:${HERE}:project/<AWS::StackName>-build-x86_64`,
        ],
      },
      {
        sid: "WriteArtifacts",
        actions: ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"],
        resources: [`<${bucket}.Arn>/layers/*`],
      },
      {
        sid: "WriteOwnLogs",
        actions: ["logs:CreateLogStream", "logs:PutLogEvents"],
        resources: [`<${id(plain, "BuildLogGroup")}.Arn>`],
      },
    ]);
  });

  it("uses the artifact key when the bucket has one", () => {
    const key = logicalId(gate.stack.node.findChild("ArtifactKey"));
    expect(statementsOf(gate.template, id(gate, "BuildRole"))).toContainEqual({
      sid: "UseArtifactKey",
      actions: ["kms:Decrypt", "kms:GenerateDataKey"],
      resources: [`<${key}.Arn>`],
    });
  });
});

describe("the sync function with builds", () => {
  it("starts builds in the two projects and writes build sources, in a policy it is created after", () => {
    const policy = policiesOf(plain.template, logicalId(plain.stack.syncRole)).SyncBuildsPolicy;
    expect(policy).toEqual([
      {
        sid: "StartBuilds",
        actions: ["codebuild:BatchGetBuilds", "codebuild:StartBuild"],
        resources: [
          `${ARN}:codebuild:${HERE}:project/<AWS::StackName>-build-arm64`,
          `${ARN}:codebuild:${HERE}:project/<AWS::StackName>-build-x86_64`,
        ],
      },
      {
        sid: "WriteBuildSources",
        actions: ["s3:PutObject"],
        resources: [`<${logicalId(plain.stack.artifactBucket)}.Arn>/build-source/*`],
      },
    ]);
    expect(plain.resources[logicalId(plain.stack.syncFunction)]?.DependsOn).toContain("SyncBuildsPolicy");
  });

  it("never reads the index credential itself (CodeBuild does)", () => {
    const resources = statementsOf(plain.template, logicalId(plain.stack.syncRole)).flatMap((s) => s.resources);
    expect(resources.filter((r) => r.includes("index-token"))).toEqual([]);
  });

  it("in gate mode also settles finished builds: reads records, outputs and build logs", () => {
    const policy = policiesOf(gate.template, logicalId(gate.stack.syncRole)).SyncGateBuildsPolicy ?? [];
    expect(policy.map((s) => s.sid)).toEqual(["ListBuildPrefixes", "ReadBuildFiles", "ReadBuildLogs"]);
  });
});

describe("with builds: false", () => {
  it("has no projects, no build-finished function or rule, and gives sync no build projects or permissions", () => {
    for (const type of ["AWS::CodeBuild::Project", "AWS::Events::Rule"]) {
      const found = Object.values(off.template.findResources(type)).filter((r) =>
        JSON.stringify(r).includes("codebuild"),
      );
      expect(found, type).toEqual([]);
    }
    expect(off.stack.buildFunction).toBeUndefined();
    expect(off.stack.node.tryFindChild("BuildProjectRoleX8664")).toBeUndefined();
    expect(off.stack.node.tryFindChild("BuildProjectRoleArm64")).toBeUndefined();
    const env = (props(off, "SyncFunction").Environment as { Variables: Record<string, unknown> }).Variables;
    expect(Object.keys(env).filter((k) => /^BUILD_(PROJECT|SOURCE|OUTPUT)_/.test(k))).toEqual([]);
    expect(Object.keys(policiesOf(off.template, logicalId(off.stack.syncRole)))).not.toContain("SyncBuildsPolicy");
  });

  it("is the builds context key set to false", () => {
    const context = { sourceProvider: "github", sourceRepository: "acme/layers", sourcePaths: "py/deps" };
    expect(configFromContext((k) => ({ ...context, builds: "false" })[k as "builds"]).options.builds).toBe(false);
    expect(configFromContext((k) => context[k as keyof typeof context]).options.builds).toBeUndefined();
  });
});

describe("build settings in deploy mode", () => {
  const make =
    (settings: Partial<LayerSyncSettings>, options: LayerSyncStackProps["options"] = {}) =>
    () =>
      new LayerSyncStack(new App(), "Check", { settings: { ...SETTINGS, ...settings }, options, code: inlineCode() });

  it("refuse an artifact prefix overlapping a build prefix, which a build could then write", () => {
    expect(make({ artifactPrefix: "build-output/layers/" })).toThrow(/overlaps the build prefix "build-output\/"/);
    expect(make({ artifactPrefix: "build-source/" })).toThrow(/overlaps the build prefix "build-source\/"/);
  });

  it("refuse an index URL with credentials and an index credential without builds", () => {
    expect(make({ buildNpmRegistry: "https://user:secret@npm.example.com/" })).toThrow(/buildNpmRegistry/);
    expect(make({}, { builds: false })).toThrow(/buildIndexTokenParameter .*needs builds/);
  });
});

describe("cdk-nag AwsSolutions with builds", () => {
  it("reports no unacknowledged finding in any variant", () => {
    for (const s of [plain, gate, off]) expect(nagFindings(s.app, s.stack)).toEqual([]);
  });

  it("acknowledges the SAM image (CB5) on both projects, and the AWS managed artifact key (CB4) only without the stack's key", () => {
    const acks = acknowledgments(plain.stack);
    for (const project of ["BuildProjectX8664", "BuildProjectArm64"]) {
      expect(acks.get(`Builds/${project} AwsSolutions-CB5`)).toMatch(/SAM build image/);
      expect(acks.get(`Builds/${project} AwsSolutions-CB4`)).toMatch(/artifactEncryption: kms/);
      expect(acknowledgments(gate.stack).has(`BuildsGate/${project} AwsSolutions-CB4`)).toBe(false);
    }
    expect([...acks.keys()].filter((k) => k.endsWith("IAM5[Resource::*]"))).toEqual([
      "Builds/PublishUnscopedActionsPolicy AwsSolutions-IAM5[Resource::*]",
    ]);
  });
});
