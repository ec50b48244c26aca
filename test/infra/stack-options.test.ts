/**
 * LayerSyncStack in deploy mode with every option turned the other way: KMS everywhere, gate mode,
 * tracing, e-mail, no access logging, no reconcile schedule, and non-default names and prefixes.
 * One synthesis for the whole file.
 */
import { App } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { beforeAll, describe, expect, it } from "vitest";
import { LayerSyncStack } from "../../infra/stack.ts";
import {
  ACCOUNT,
  acknowledgments,
  inlineCode,
  logicalId,
  nagFindings,
  policiesOf,
  REGION,
  render,
  sortStatements,
  statementsOf,
} from "./support.ts";

let app: App;
let stack: LayerSyncStack;
let template: Template;
let ids: {
  bucket: string;
  artifactKey: string;
  topicKey: string;
  syncRole: string;
  publishRole: string;
  topic: string;
};

const ARN = "arn:<AWS::Partition>";
const HERE = "<AWS::Region>:<AWS::AccountId>";
const TOKEN_KEY = `arn:aws:kms:${REGION}:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;

beforeAll(() => {
  app = new App();
  stack = new LayerSyncStack(app, "LayerSyncGate", {
    env: { account: ACCOUNT, region: REGION },
    settings: {
      sourceProvider: "github",
      sourceRepository: "acme/layers",
      sourcePaths: ["py/requests"],
      tokenParameterName: "github-token",
      tokenKmsKeyArn: TOKEN_KEY,
      artifactPrefix: "zips/",
      parameterPrefix: "/platform/layer-sync/",
      layerNamePrefix: "acme-",
      pipelineName: "Platform-Pipeline",
      shareOrganizationId: "o-abc1234567",
      summaryEventBus: "platform-events",
      extraEnvironment: { SOURCE_CONCURRENCY: "4" },
    },
    options: {
      artifactEncryption: "kms",
      topicEncryption: true,
      gateMode: true,
      tracing: true,
      notificationEmail: "platform-team@example.com",
      reconcileSchedule: false,
      accessLogging: false,
      logRetentionDays: 30,
      artifactExpirationDays: 400,
      organizationManagementAccountId: "222222222222",
    },
    code: inlineCode(),
  });
  template = Template.fromStack(stack);
  const keys = template.findResources("AWS::KMS::Key");
  const keyId = (description: string) =>
    Object.keys(keys).find(
      (k) => (keys[k] as { Properties: { Description: string } }).Properties.Description === description,
    ) ?? "";
  ids = {
    bucket: logicalId(stack.artifactBucket),
    artifactKey: keyId("layer-sync artifact bucket encryption"),
    topicKey: keyId("layer-sync failure topic encryption"),
    syncRole: logicalId(stack.syncRole),
    publishRole: logicalId(stack.publishRole),
    topic: logicalId(stack.failureTopic),
  };
});

function resources(type: string): Record<string, { Properties: Record<string, unknown> }> {
  return template.findResources(type) as Record<string, { Properties: Record<string, unknown> }>;
}

describe("with KMS encryption", () => {
  it("encrypts the artifact bucket with its own rotating key and an S3 bucket key", () => {
    const bucket = resources("AWS::S3::Bucket")[ids.bucket]?.Properties;
    expect(bucket?.BucketEncryption).toEqual({
      ServerSideEncryptionConfiguration: [
        {
          BucketKeyEnabled: true,
          ServerSideEncryptionByDefault: {
            SSEAlgorithm: "aws:kms",
            KMSMasterKeyID: { "Fn::GetAtt": [ids.artifactKey, "Arn"] },
          },
        },
      ],
    });
    for (const key of Object.values(resources("AWS::KMS::Key"))) expect(key.Properties.EnableKeyRotation).toBe(true);
  });

  it("encrypts the failure topic with a key CloudWatch alarms may use", () => {
    const topic = resources("AWS::SNS::Topic")[ids.topic]?.Properties;
    expect(topic?.KmsMasterKeyId).toEqual({ "Fn::GetAtt": [ids.topicKey, "Arn"] });
    const keyPolicy = resources("AWS::KMS::Key")[ids.topicKey]?.Properties.KeyPolicy as {
      Statement: { Sid?: string; Principal: unknown; Action: unknown }[];
    };
    expect(keyPolicy.Statement.find((s) => s.Sid === "AllowCloudWatchAlarmsToUseTheKey")).toMatchObject({
      Principal: { Service: "cloudwatch.amazonaws.com" },
      Action: ["kms:Decrypt", "kms:GenerateDataKey"],
    });
  });
});

describe("with the other options", () => {
  it("expires artifacts when asked to and does not log access when logging is off", () => {
    const bucket = resources("AWS::S3::Bucket")[ids.bucket]?.Properties as {
      LifecycleConfiguration: { Rules: { Id: string; ExpirationInDays?: number }[] };
      LoggingConfiguration?: unknown;
    };
    expect(
      bucket.LifecycleConfiguration.Rules.find((r) => r.Id === "OldArtifactsToInfrequentAccess")?.ExpirationInDays,
    ).toBe(400);
    expect(bucket.LoggingConfiguration).toBeUndefined();
    expect(Object.keys(resources("AWS::S3::Bucket"))).toEqual([ids.bucket]);
  });

  it("traces both functions with X-Ray and keeps their logs for 30 days", () => {
    for (const fn of Object.values(resources("AWS::Lambda::Function"))) {
      expect(fn.Properties.TracingConfig).toEqual({ Mode: "Active" });
    }
    for (const group of Object.values(resources("AWS::Logs::LogGroup")))
      expect(group.Properties.RetentionInDays).toBe(30);
  });

  it("subscribes the e-mail address to the failure topic", () => {
    expect(Object.values(resources("AWS::SNS::Subscription")).map((s) => s.Properties)).toEqual([
      { Protocol: "email", Endpoint: "platform-team@example.com", TopicArn: { Ref: ids.topic } },
    ]);
  });

  it("passes the normalised prefixes and extra tuning variables to the functions", () => {
    const sync = resources("AWS::Lambda::Function")[logicalId(stack.syncFunction)]?.Properties as {
      Environment: { Variables: Record<string, unknown> };
    };
    expect(sync.Environment.Variables).toMatchObject({
      SOURCE_PROVIDER: "github",
      PARAMETER_PREFIX: "/platform/layer-sync",
      ARTIFACT_PREFIX: "zips/",
      LAYER_NAME_PREFIX: "acme-",
      PIPELINE_NAME: "Platform-Pipeline",
      SUMMARY_EVENT_BUS: "platform-events",
      SHARE_ORGANIZATION_ID: "o-abc1234567",
      TOKEN_PARAMETER_NAME: "github-token",
      SOURCE_CONCURRENCY: "4",
    });
  });
});

describe("in gate mode", () => {
  it("has no STARTED or Parameter Store Change rule (the pipeline's Invoke action replaces them) and no reconcile rule when turned off, only the build-finished rule", () => {
    const build = logicalId(stack.node.findChild("BuildFinishedRule"));
    expect(Object.keys(resources("AWS::Events::Rule"))).toEqual([build]);
    expect(
      Object.values(resources("AWS::Lambda::Permission")).map((p) =>
        render((p as { Properties: { SourceArn: unknown } }).Properties.SourceArn),
      ),
    ).toEqual([`<${build}.Arn>`]);
  });

  it("creates the sync function only after its token and gate policies exist", () => {
    const sync = template.toJSON().Resources[logicalId(stack.syncFunction)] as { DependsOn: string[] };
    expect(sync.DependsOn).toEqual(
      expect.arrayContaining(["SyncTokenPolicy", "SyncGatePolicy", "SyncGateUnscopedActionsPolicy"]),
    );
  });

  it("grants sync the publish permissions and the pipeline job-result actions in policies of their own", () => {
    const policies = policiesOf(template, ids.syncRole);
    expect(Object.keys(policies).sort()).toEqual(
      [
        logicalId(stack.syncRole.node.findChild("DefaultPolicy")),
        "SyncGatePolicy",
        "SyncGateUnscopedActionsPolicy",
        "SyncTokenPolicy",
        "SyncBuildsPolicy",
        "SyncGateBuildsPolicy",
      ].sort(),
    );
    expect(policies.SyncGateUnscopedActionsPolicy).toContainEqual({
      sid: "ReportPipelineJobResult",
      actions: ["codepipeline:PutJobFailureResult", "codepipeline:PutJobSuccessResult"],
      resources: ["*"],
    });
    const publishSids = statementsOf(template, ids.publishRole)
      .map((s) => s.sid)
      .filter((sid) => sid !== "" && sid !== "WriteOwnLogs");
    const gateSids = [...(policies.SyncGatePolicy ?? []), ...(policies.SyncGateUnscopedActionsPolicy ?? [])].map(
      (s) => s.sid,
    );
    expect(gateSids.sort()).toEqual([...publishSids, "ReportPipelineJobResult"].sort());
  });
});

describe("the sync role", () => {
  it("reads the token through its customer managed key, and only through SSM for that parameter", () => {
    expect(policiesOf(template, ids.syncRole).SyncTokenPolicy).toEqual([
      {
        sid: "ReadRepositoryToken",
        actions: ["ssm:GetParameter"],
        resources: [`${ARN}:ssm:${HERE}:parameter/github-token`],
      },
      {
        sid: "DecryptRepositoryToken",
        actions: ["kms:Decrypt"],
        resources: [TOKEN_KEY],
        conditions: {
          StringEquals: {
            "kms:ViaService": "ssm.<AWS::Region>.amazonaws.com",
            "kms:EncryptionContext:PARAMETER_ARN": `${ARN}:ssm:${HERE}:parameter/github-token`,
          },
        },
      },
    ]);
  });

  it("uses the artifact key, the custom prefixes and bus, and traces, with no other statements", () => {
    const defaults = policiesOf(template, ids.syncRole)[logicalId(stack.syncRole.node.findChild("DefaultPolicy"))];
    expect(sortStatements(defaults ?? [])).toEqual([
      {
        sid: "",
        actions: ["kms:Decrypt", "kms:GenerateDataKey*"],
        resources: [`<${ids.topicKey}.Arn>`],
      },
      { sid: "", actions: ["sns:Publish"], resources: [`<${ids.topic}>`] },
      { sid: "", actions: ["xray:PutTelemetryRecords", "xray:PutTraceSegments"], resources: ["*"] },
      {
        sid: "ListArtifactPrefix",
        actions: ["s3:ListBucket"],
        resources: [`<${ids.bucket}.Arn>`],
        conditions: { StringLike: { "s3:prefix": ["zips/*"] } },
      },
      {
        sid: "PutSummaryEvent",
        actions: ["events:PutEvents"],
        resources: [`${ARN}:events:${HERE}:event-bus/platform-events`],
      },
      {
        sid: "ReadWriteArtifactPointers",
        actions: ["ssm:GetParameter", "ssm:GetParameterHistory", "ssm:PutParameter"],
        resources: [`${ARN}:ssm:${HERE}:parameter/platform/layer-sync/*`],
      },
      {
        sid: "ReadWriteArtifacts",
        actions: ["s3:AbortMultipartUpload", "s3:GetObject", "s3:ListMultipartUploadParts", "s3:PutObject"],
        resources: [`<${ids.bucket}.Arn>/zips/*`],
      },
      {
        sid: "UseArtifactKey",
        actions: ["kms:Decrypt", "kms:GenerateDataKey"],
        resources: [`<${ids.artifactKey}.Arn>`],
      },
      {
        sid: "WriteOwnLogs",
        actions: ["logs:CreateLogStream", "logs:PutLogEvents"],
        resources: [`<${logicalId(stack.node.findChild("SyncLogGroup"))}.Arn>`],
      },
    ]);
  });
});

describe("the publish role", () => {
  it("is narrowed to the layer-name prefix, the organization, the management account and the custom prefixes", () => {
    const bySid = new Map(statementsOf(template, ids.publishRole).map((s) => [s.sid, s]));
    expect(bySid.get("PublishLayers")?.resources).toEqual([`${ARN}:lambda:${HERE}:layer:acme-*`]);
    expect(bySid.get("ManageLayerVersions")?.resources).toEqual([`${ARN}:lambda:${HERE}:layer:acme-*:*`]);
    expect(bySid.get("ListOrganizationTree")?.resources).toEqual([
      `${ARN}:organizations::222222222222:ou/o-abc1234567/ou-*`,
      `${ARN}:organizations::222222222222:root/o-abc1234567/r-*`,
    ]);
    expect(bySid.get("ReadArtifacts")?.resources).toEqual([`<${ids.bucket}.Arn>/zips/*`]);
    expect(bySid.get("DecryptArtifacts")).toEqual({
      sid: "DecryptArtifacts",
      actions: ["kms:Decrypt"],
      resources: [`<${ids.artifactKey}.Arn>`],
    });
    expect(bySid.get("ReadWriteLayerParameters")?.resources).toEqual([
      `${ARN}:ssm:${HERE}:parameter/platform/layer-sync/*`,
    ]);
    expect(bySid.get("ListPackageParameters")?.resources).toEqual([
      `${ARN}:ssm:${HERE}:parameter/platform/layer-sync`,
      `${ARN}:ssm:${HERE}:parameter/platform/layer-sync/*`,
    ]);
    expect(bySid.get("PutSummaryEvent")?.resources).toEqual([`${ARN}:events:${HERE}:event-bus/platform-events`]);
  });

  it("never names a parameter ARN with a doubled slash", () => {
    const arns = [ids.syncRole, ids.publishRole].flatMap((role) =>
      statementsOf(template, role).flatMap((s) => s.resources),
    );
    expect(arns.filter((a) => a.includes(":parameter/")).length).toBeGreaterThan(0);
    expect(arns.filter((a) => a.includes("parameter//"))).toEqual([]);
  });
});

describe("cdk-nag AwsSolutions", () => {
  it("reports no unacknowledged error or warning", () => {
    expect(nagFindings(app, stack)).toEqual([]);
  });

  it("acknowledges the missing access logs on the artifact bucket and the topic key's generated grant, with reasons", () => {
    const acks = acknowledgments(stack);
    expect(acks.get("LayerSyncGate/ArtifactBucket AwsSolutions-S1")).toMatch(/accessLogging: false/);
    expect(acks.has("LayerSyncGate/FailureTopic AwsSolutions-SNS2")).toBe(false);
    const keyGrant = [...acks.keys()].filter((k) => k.endsWith("AwsSolutions-IAM5[Action::kms:GenerateDataKey*]"));
    expect(keyGrant.sort()).toEqual([
      "LayerSyncGate/BuildRole/DefaultPolicy AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
      "LayerSyncGate/PublishRole/DefaultPolicy AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
      "LayerSyncGate/SyncRole/DefaultPolicy AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
    ]);
  });
});
