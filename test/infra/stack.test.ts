/**
 * LayerSyncStack in deploy mode with the default options (S3-managed encryption, access logging, event
 * triggers, daily reconcile) and a repository token. One synthesis for the whole file.
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
  nagAnnotations,
  nagFindings,
  policiesOf,
  REGION,
  render,
  statementsOf,
} from "./support.ts";

let app: App;
let stack: LayerSyncStack;
let template: Template;
let ids: {
  bucket: string;
  logBucket: string;
  syncRole: string;
  publishRole: string;
  sync: string;
  publish: string;
  syncLogs: string;
  publishLogs: string;
  topic: string;
  dlq: string;
};

const ARN = "arn:<AWS::Partition>";
/** The parameters RAM shares: the layer ARN, and the releases' history and canary ARN. */
const SHARED = ["layer-version-arn", "history", "canary-arn"];
const HERE = "<AWS::Region>:<AWS::AccountId>";

beforeAll(() => {
  app = new App();
  stack = new LayerSyncStack(app, "LayerSync", {
    env: { account: ACCOUNT, region: REGION },
    settings: {
      sourceProvider: "bitbucket",
      sourceRepository: "acme/platform-layers",
      sourcePaths: ["layers/py-requests", "layers/node-utils"],
      sourceRef: "release/2026",
      tokenParameterName: "/layer-sync/bitbucket-token",
      compatibleRuntimes: ["python3.13", "nodejs24.x"],
      compatibleArchitectures: ["arm64"],
      shareOuIds: ["ou-abcd-12345678"],
      retainVersions: 5,
      layerLicense: "Apache-2.0",
      smokeTest: "on",
      canaryAccountIds: ["111122223333"],
      promoteAfterHours: 48,
    },
    code: inlineCode(),
  });
  template = Template.fromStack(stack);
  ids = {
    bucket: logicalId(stack.artifactBucket),
    logBucket: logicalId(stack.accessLogBucket ?? stack),
    syncRole: logicalId(stack.syncRole),
    publishRole: logicalId(stack.publishRole),
    sync: logicalId(stack.syncFunction),
    publish: logicalId(stack.publishFunction),
    syncLogs: logicalId(stack.node.findChild("SyncLogGroup")),
    publishLogs: logicalId(stack.node.findChild("PublishLogGroup")),
    topic: logicalId(stack.failureTopic),
    dlq: logicalId(stack.eventsDeadLetterQueue),
  };
});

function resource(id: string): { Type: string; Properties: Record<string, unknown>; Condition?: string } {
  const all = template.toJSON().Resources as Record<string, { Type: string; Properties: Record<string, unknown> }>;
  const found = all[id];
  if (!found) throw new Error(`no resource ${id}`);
  return found;
}

function rule(constructId: string): Record<string, unknown> {
  return resource(logicalId(stack.node.findChild(constructId))).Properties;
}

describe("the artifact bucket", () => {
  it("blocks public access, requires TLS 1.2 and encrypts with S3-managed keys", () => {
    const props = resource(ids.bucket).Properties;
    expect(props.PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
    expect(props.BucketEncryption).toEqual({
      ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: "AES256" } }],
    });
    const policies = template.findResources("AWS::S3::BucketPolicy", { Properties: { Bucket: { Ref: ids.bucket } } });
    const statements = Object.values(policies).flatMap(
      (p) =>
        (p as { Properties: { PolicyDocument: { Statement: { Effect: string; Condition: unknown }[] } } }).Properties
          .PolicyDocument.Statement,
    );
    expect(statements.map((s) => [s.Effect, render(s.Condition)])).toEqual([
      ["Deny", "{Bool: {aws:SecureTransport: false}}"],
      ["Deny", "{NumericLessThan: {s3:TlsVersion: 1.2}}"],
    ]);
  });

  it("is versioned, owner-enforced and kept when the stack is deleted", () => {
    const bucket = template.toJSON().Resources[ids.bucket];
    expect(bucket.Properties.VersioningConfiguration).toEqual({ Status: "Enabled" });
    expect(bucket.Properties.OwnershipControls).toEqual({ Rules: [{ ObjectOwnership: "BucketOwnerEnforced" }] });
    expect(bucket.DeletionPolicy).toBe("Retain");
  });

  it("expires noncurrent versions after 30 days, aborts stale multipart uploads after a day, moves old artifacts to Standard-IA and expires build files after a week", () => {
    expect(resource(ids.bucket).Properties.LifecycleConfiguration).toEqual({
      Rules: [
        {
          Id: "ExpireNoncurrentVersions",
          Status: "Enabled",
          NoncurrentVersionExpiration: { NoncurrentDays: 30 },
          AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
        },
        {
          Id: "OldArtifactsToInfrequentAccess",
          Status: "Enabled",
          Transitions: [{ StorageClass: "STANDARD_IA", TransitionInDays: 30 }],
        },
        { Id: "RemoveExpiredDeleteMarkers", Status: "Enabled", ExpiredObjectDeleteMarker: true },
        { Id: "ExpireBuildSources", Status: "Enabled", Prefix: "build-source/", ExpirationInDays: 7 },
        { Id: "ExpireBuildOutputs", Status: "Enabled", Prefix: "build-output/", ExpirationInDays: 7 },
      ],
    });
  });

  it("logs server access to a separate, private, SSE-S3 log bucket", () => {
    expect(resource(ids.bucket).Properties.LoggingConfiguration).toEqual({
      DestinationBucketName: { Ref: ids.logBucket },
      LogFilePrefix: "artifact-bucket/",
    });
    const log = resource(ids.logBucket).Properties;
    expect(log.BucketEncryption).toEqual({
      ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: "AES256" } }],
    });
    expect(log.PublicAccessBlockConfiguration).toMatchObject({ BlockPublicAcls: true, RestrictPublicBuckets: true });
    expect(log.LoggingConfiguration).toBeUndefined();
  });
});

describe("the functions", () => {
  it("runs sync on nodejs24.x/arm64 with 2048 MB, 15 minutes and /tmp sized from SOURCE_MAX_BYTES, without reserved concurrency", () => {
    expect(resource(ids.sync).Properties).toMatchObject({
      Runtime: "nodejs24.x",
      Architectures: ["arm64"],
      Handler: "index.handler",
      MemorySize: 2048,
      Timeout: 900,
      EphemeralStorage: { Size: 1162 },
      LoggingConfig: { LogGroup: { Ref: ids.syncLogs } },
    });
    expect(resource(ids.sync).Properties.ReservedConcurrentExecutions).toBeUndefined();
  });

  it("runs publish on nodejs24.x/arm64 with 512 MB and 5 minutes", () => {
    const props = resource(ids.publish).Properties;
    expect(props).toMatchObject({
      Runtime: "nodejs24.x",
      Architectures: ["arm64"],
      Handler: "index.handler",
      MemorySize: 512,
      Timeout: 300,
      LoggingConfig: { LogGroup: { Ref: ids.publishLogs } },
    });
    expect(props.EphemeralStorage).toBeUndefined();
    expect(props.ReservedConcurrentExecutions).toBeUndefined();
  });

  it("gives both functions the same settings, with the values IAM depends on spelled out, and sync the build projects", () => {
    const expected = {
      SOURCE_PROVIDER: "bitbucket",
      SOURCE_REPOSITORY: "acme/platform-layers",
      SOURCE_PATHS: "layers/py-requests,layers/node-utils",
      SOURCE_REF: "release/2026",
      TOKEN_PARAMETER_NAME: "/layer-sync/bitbucket-token",
      ARTIFACT_BUCKET: { Ref: ids.bucket },
      ARTIFACT_PREFIX: "layers/",
      PARAMETER_PREFIX: "/layer-sync",
      PIPELINE_NAME: "Custom-Control-Tower-CodePipeline",
      SUMMARY_EVENT_BUS: "default",
      COMPATIBLE_RUNTIMES: "python3.13,nodejs24.x",
      COMPATIBLE_ARCHITECTURES: "arm64",
      SHARE_OU_IDS: "ou-abcd-12345678",
      RETAIN_VERSIONS: "5",
      LAYER_LICENSE: "Apache-2.0",
      SMOKE_TEST: "on",
      CANARY_ACCOUNT_IDS: "111122223333",
      PROMOTE_AFTER_HOURS: "48",
      NODE_OPTIONS: "--enable-source-maps",
    };
    const smokeRole = { "Fn::GetAtt": [logicalId(stack.smokeRole), "Arn"] };
    expect(resource(ids.sync).Properties.Environment).toEqual({
      Variables: {
        ...expected,
        SMOKE_ROLE_ARN: smokeRole,
        BUILD_PROJECT_X86_64: { "Fn::Join": ["", [{ Ref: "AWS::StackName" }, "-build-x86_64"]] },
        BUILD_PROJECT_ARM64: { "Fn::Join": ["", [{ Ref: "AWS::StackName" }, "-build-arm64"]] },
        BUILD_SOURCE_PREFIX: "build-source/",
        BUILD_OUTPUT_PREFIX: "build-output/",
      },
    });
    // both get the smoke role: the sync function publishes in gate mode (test/infra/smoke.test.ts)
    expect(resource(ids.publish).Properties.Environment).toEqual({
      Variables: { ...expected, SMOKE_ROLE_ARN: smokeRole },
    });
  });

  it("keeps each function's logs for 90 days", () => {
    for (const id of [ids.syncLogs, ids.publishLogs]) {
      expect(resource(id).Properties.RetentionInDays).toBe(90);
    }
  });

  it("has no X-Ray tracing unless asked", () => {
    expect(resource(ids.sync).Properties.TracingConfig).toBeUndefined();
  });
});

describe("the triggers", () => {
  it("start sync on the STARTED event of the CfCT pipeline and nothing else, through the sync queue", () => {
    const queue = logicalId(stack.node.findChild("SyncQueue"));
    const props = rule("PipelineStartedRule");
    expect(props.EventPattern).toEqual({
      source: ["aws.codepipeline"],
      "detail-type": ["CodePipeline Pipeline Execution State Change"],
      detail: { pipeline: ["Custom-Control-Tower-CodePipeline"], state: ["STARTED"] },
    });
    expect(props.State).toBe("ENABLED");
    expect(props.Targets).toEqual([
      {
        Id: "Target0",
        Arn: { "Fn::GetAtt": [queue, "Arn"] },
        SqsParameters: { MessageGroupId: "layer-sync" },
        DeadLetterConfig: { Arn: { "Fn::GetAtt": [ids.dlq, "Arn"] } },
        RetryPolicy: { MaximumEventAgeInSeconds: 86400, MaximumRetryAttempts: 185 },
      },
    ]);
  });

  it("serialise sync runs through a FIFO queue with one message group, one record at a time", () => {
    const queue = logicalId(stack.node.findChild("SyncQueue"));
    expect(resource(queue).Properties).toMatchObject({
      FifoQueue: true,
      ContentBasedDeduplication: true,
    });
    // AWS's guidance for SQS event sources, as a relation: a different function timeout cannot break it.
    const timeout = resource(ids.sync).Properties.Timeout as number;
    const props = resource(queue).Properties as {
      VisibilityTimeout: number;
      RedrivePolicy: { maxReceiveCount: number };
    };
    expect(props.VisibilityTimeout).toBeGreaterThanOrEqual(6 * timeout);
    expect(props.RedrivePolicy.maxReceiveCount).toBeGreaterThanOrEqual(5);
    const mappings = Object.values(template.findResources("AWS::Lambda::EventSourceMapping")).map(
      (m) => (m as { Properties: Record<string, unknown> }).Properties,
    );
    expect(mappings).toEqual([
      {
        EventSourceArn: { "Fn::GetAtt": [queue, "Arn"] },
        FunctionName: { Ref: ids.sync },
        BatchSize: 1,
        ScalingConfig: { MaximumConcurrency: 2 },
        FunctionResponseTypes: ["ReportBatchItemFailures"],
      },
    ]);
  });

  it("publish when an artifact-key parameter under the prefix is created or updated, with or without the leading slash", () => {
    const props = rule("ArtifactKeyChangedRule");
    expect(props.EventPattern).toEqual({
      source: ["aws.ssm"],
      "detail-type": ["Parameter Store Change"],
      detail: {
        name: [{ wildcard: "/layer-sync/*/artifact-key" }, { wildcard: "layer-sync/*/artifact-key" }],
        operation: ["Create", "Update"],
      },
    });
    expect(props.Targets).toEqual([
      {
        Id: "Target0",
        Arn: { "Fn::GetAtt": [ids.publish, "Arn"] },
        DeadLetterConfig: { Arn: { "Fn::GetAtt": [ids.dlq, "Arn"] } },
        RetryPolicy: { MaximumEventAgeInSeconds: 86400, MaximumRetryAttempts: 185 },
      },
    ]);
  });

  it("reconcile every package daily with an empty payload", () => {
    const props = rule("ReconcileScheduleRule");
    expect(props.ScheduleExpression).toBe("cron(0 5 * * ? *)");
    expect(props.Targets).toEqual([
      {
        Id: "Target0",
        Arn: { "Fn::GetAtt": [ids.publish, "Arn"] },
        Input: "{}",
        DeadLetterConfig: { Arn: { "Fn::GetAtt": [ids.dlq, "Arn"] } },
        RetryPolicy: { MaximumEventAgeInSeconds: 86400, MaximumRetryAttempts: 185 },
      },
    ]);
  });

  it("let EventBridge invoke each function only from its own rules", () => {
    const permissions = Object.values(template.findResources("AWS::Lambda::Permission")).map((p) => {
      const props = (p as { Properties: Record<string, unknown> }).Properties;
      return [render(props.FunctionName), props.Principal, render(props.SourceArn)];
    });
    expect(permissions.sort()).toEqual(
      [
        [
          `<${logicalId(stack.node.findChild("BuildFunction"))}.Arn>`,
          "events.amazonaws.com",
          `<${logicalId(stack.node.findChild("BuildFinishedRule"))}.Arn>`,
        ],
        [
          `<${ids.publish}.Arn>`,
          "events.amazonaws.com",
          `<${logicalId(stack.node.findChild("ArtifactKeyChangedRule"))}.Arn>`,
        ],
        [
          `<${ids.publish}.Arn>`,
          "events.amazonaws.com",
          `<${logicalId(stack.node.findChild("ReconcileScheduleRule"))}.Arn>`,
        ],
      ].sort(),
    );
  });
});

describe("failure handling", () => {
  it("retries async invocations twice within six hours, then sends the failure record to the SNS topic", () => {
    const configs = Object.values(template.findResources("AWS::Lambda::EventInvokeConfig")).map(
      (c) => (c as { Properties: Record<string, unknown> }).Properties,
    );
    expect(configs).toHaveLength(3);
    for (const fn of [ids.sync, ids.publish]) {
      expect(configs).toContainEqual({
        FunctionName: { Ref: fn },
        Qualifier: "$LATEST",
        MaximumRetryAttempts: 2,
        MaximumEventAgeInSeconds: 21600,
        DestinationConfig: { OnFailure: { Destination: { Ref: ids.topic } } },
      });
    }
  });

  it("enforces TLS on the topic and lets only this account's alarms publish as CloudWatch", () => {
    const policies = Object.values(template.findResources("AWS::SNS::TopicPolicy"));
    expect(policies).toHaveLength(1);
    const statements = (
      policies[0] as { Properties: { PolicyDocument: { Statement: Record<string, unknown>[] } } }
    ).Properties.PolicyDocument.Statement.map((s) => [s.Effect, render(s.Principal), render(s.Condition)]);
    expect(statements).toEqual([
      ["Deny", "*", "{Bool: {aws:SecureTransport: false}}"],
      [
        "Allow",
        "{Service: cloudwatch.amazonaws.com}",
        `{StringEquals: {aws:SourceAccount: <AWS::AccountId>}, ArnLike: {aws:SourceArn: ${ARN}:cloudwatch:${HERE}:alarm:*}}`,
      ],
    ]);
  });

  it("alarms only on real failures: errors of both functions and the two dead-letter queues, never on throttles", () => {
    const alarms = Object.values(template.findResources("AWS::CloudWatch::Alarm")).map((a) => {
      const p = (a as { Properties: Record<string, unknown> }).Properties;
      return {
        metric: `${p.Namespace}/${p.MetricName} ${render(p.Dimensions)}`,
        statistic: p.Statistic,
        period: p.Period,
        threshold: p.Threshold,
        comparison: p.ComparisonOperator,
        missing: p.TreatMissingData,
        actions: p.AlarmActions,
      };
    });
    const common = {
      period: 300,
      threshold: 1,
      comparison: "GreaterThanOrEqualToThreshold",
      missing: "notBreaching",
      actions: [{ Ref: ids.topic }],
    };
    const build = logicalId(stack.node.findChild("BuildFunction"));
    expect(alarms).toEqual([
      { metric: `AWS/Lambda/Errors [{Name: FunctionName, Value: <${build}>}]`, statistic: "Sum", ...common },
      { metric: `AWS/Lambda/Errors [{Name: FunctionName, Value: <${ids.sync}>}]`, statistic: "Sum", ...common },
      { metric: `AWS/Lambda/Errors [{Name: FunctionName, Value: <${ids.publish}>}]`, statistic: "Sum", ...common },
      {
        metric: `AWS/SQS/ApproximateNumberOfMessagesVisible [{Name: QueueName, Value: <${ids.dlq}.QueueName>}]`,
        statistic: "Maximum",
        ...common,
      },
      {
        metric: `AWS/SQS/ApproximateNumberOfMessagesVisible [{Name: QueueName, Value: <${logicalId(stack.node.findChild("SyncDeadLetterQueue"))}.QueueName>}]`,
        statistic: "Maximum",
        ...common,
      },
    ]);
  });

  it("encrypts the events dead-letter queue and requires TLS on it", () => {
    expect(resource(ids.dlq).Properties).toMatchObject({ SqsManagedSseEnabled: true, MessageRetentionPeriod: 1209600 });
    const policy = Object.values(template.findResources("AWS::SQS::QueuePolicy"))[0] as {
      Properties: { PolicyDocument: { Statement: Record<string, unknown>[] } };
    };
    expect(policy.Properties.PolicyDocument.Statement[0]).toMatchObject({
      Effect: "Deny",
      Condition: { Bool: { "aws:SecureTransport": "false" } },
    });
  });

  it("subscribes no e-mail address unless one is given", () => {
    expect(template.findResources("AWS::SNS::Subscription")).toEqual({});
  });
});

describe("the sync role", () => {
  it("is assumable only by Lambda and has no managed policies", () => {
    const role = resource(ids.syncRole).Properties;
    expect(role.AssumeRolePolicyDocument).toEqual({
      Statement: [{ Action: "sts:AssumeRole", Effect: "Allow", Principal: { Service: "lambda.amazonaws.com" } }],
      Version: "2012-10-17",
    });
    expect(role.ManagedPolicyArns).toBeUndefined();
  });

  it("has exactly these statements, each on named resources", () => {
    expect(statementsOf(template, ids.syncRole)).toEqual([
      { sid: "", actions: ["sns:Publish"], resources: [`<${ids.topic}>`] },
      {
        sid: "",
        // the event source mapping's grant: consume the sync FIFO queue
        actions: [
          "sqs:ChangeMessageVisibility",
          "sqs:DeleteMessage",
          "sqs:GetQueueAttributes",
          "sqs:GetQueueUrl",
          "sqs:ReceiveMessage",
        ],
        resources: [`<${logicalId(stack.node.findChild("SyncQueue"))}.Arn>`],
      },
      {
        sid: "DecryptRepositoryToken",
        actions: ["kms:Decrypt"],
        resources: [`${ARN}:kms:${HERE}:key/*`],
        conditions: {
          StringEquals: {
            "kms:ViaService": "ssm.<AWS::Region>.amazonaws.com",
            "kms:EncryptionContext:PARAMETER_ARN": `${ARN}:ssm:${HERE}:parameter/layer-sync/bitbucket-token`,
          },
        },
      },
      {
        sid: "ListArtifactPrefix",
        actions: ["s3:ListBucket"],
        resources: [`<${ids.bucket}.Arn>`],
        conditions: { StringLike: { "s3:prefix": ["layers/*"] } },
      },
      { sid: "PutSummaryEvent", actions: ["events:PutEvents"], resources: [`${ARN}:events:${HERE}:event-bus/default`] },
      {
        sid: "ReadRepositoryToken",
        actions: ["ssm:GetParameter"],
        resources: [`${ARN}:ssm:${HERE}:parameter/layer-sync/bitbucket-token`],
      },
      {
        // only the artifact-key pointers, never the org-shared layer-version-arn
        sid: "ReadWriteArtifactPointers",
        actions: ["ssm:GetParameter", "ssm:PutParameter"],
        resources: [`${ARN}:ssm:${HERE}:parameter/layer-sync/*/artifact-key`],
      },
      {
        sid: "ReadWriteArtifacts",
        actions: ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"],
        resources: [`<${ids.bucket}.Arn>/layers/*`],
      },
      {
        sid: "StartBuilds",
        actions: ["codebuild:BatchGetBuilds", "codebuild:StartBuild"],
        resources: [
          `${ARN}:codebuild:${HERE}:project/<AWS::StackName>-build-arm64`,
          `${ARN}:codebuild:${HERE}:project/<AWS::StackName>-build-x86_64`,
        ],
      },
      { sid: "WriteBuildSources", actions: ["s3:PutObject"], resources: [`<${ids.bucket}.Arn>/build-source/*`] },
      {
        sid: "WriteOwnLogs",
        actions: ["logs:CreateLogStream", "logs:PutLogEvents"],
        resources: [`<${ids.syncLogs}.Arn>`],
      },
    ]);
  });

  it("reads the token through a policy of its own and has no publish or pipeline permissions outside gate mode", () => {
    const policies = policiesOf(template, ids.syncRole);
    expect(Object.keys(policies).sort()).toEqual(
      [logicalId(stack.syncRole.node.findChild("DefaultPolicy")), "SyncTokenPolicy", "SyncBuildsPolicy"].sort(),
    );
    expect(policies.SyncTokenPolicy?.map((s) => s.sid)).toEqual(["ReadRepositoryToken", "DecryptRepositoryToken"]);
  });
});

describe("the publish role", () => {
  it("has exactly these statements, each on named resources", () => {
    const org = `${ARN}:organizations::<AWS::AccountId>`;
    expect(statementsOf(template, ids.publishRole)).toEqual([
      { sid: "", actions: ["sns:Publish"], resources: [`<${ids.topic}>`] },
      {
        // RAM attaches the share as the parameters' resource policy with this role's credentials (FAS)
        sid: "ApplyParameterSharePolicies",
        actions: ["ssm:DeleteResourcePolicy", "ssm:GetResourcePolicies", "ssm:PutResourcePolicy"],
        resources: SHARED.map((suffix) => `${ARN}:ssm:${HERE}:parameter/layer-sync/*/${suffix}`).sort(),
        conditions: { Bool: { "aws:ViaAWSService": "true" } },
      },
      {
        // the consumer read role in member accounts, by name only (CONSUMER_SOURCE=roles)
        sid: "AssumeConsumerReadRole",
        actions: ["sts:AssumeRole"],
        resources: [`${ARN}:iam::*:role/layer-sync-consumer-read`],
      },
      {
        // a resource's request context: only the shared parameters
        sid: "CreateParameterShares",
        actions: ["ram:CreateResourceShare"],
        resources: ["*"],
        conditions: {
          Bool: { "ram:RequestedAllowsExternalPrincipals": "false" },
          StringEquals: { "ram:RequestedResourceType": "ssm:Parameter" },
          ArnLike: {
            "ram:ResourceArn": SHARED.map((suffix) => `${ARN}:ssm:*:<AWS::AccountId>:parameter/layer-sync/*/${suffix}`),
          },
        },
      },
      {
        // a principal's request context: only the configured OU
        sid: "CreateParameterSharesWithPrincipals",
        actions: ["ram:CreateResourceShare"],
        resources: ["*"],
        conditions: {
          Bool: { "ram:RequestedAllowsExternalPrincipals": "false" },
          StringLike: { "ram:Principal": [`${org}:ou/o-*/ou-abcd-12345678`] },
        },
      },
      { sid: "DescribeOrganization", actions: ["organizations:DescribeOrganization"], resources: ["*"] },
      {
        sid: "ExtendParameterShares",
        actions: ["ram:AssociateResourceShare"],
        resources: [`${ARN}:ram:${HERE}:resource-share/*`],
        conditions: {
          StringLike: { "ram:ResourceShareName": "layer-sync-*" },
          Bool: { "ram:AllowsExternalPrincipals": "false" },
          StringEquals: { "ram:RequestedResourceType": "ssm:Parameter" },
          ArnLike: {
            "ram:ResourceArn": SHARED.map((suffix) => `${ARN}:ssm:*:<AWS::AccountId>:parameter/layer-sync/*/${suffix}`),
          },
        },
      },
      {
        sid: "ExtendParameterSharesWithPrincipals",
        actions: ["ram:AssociateResourceShare"],
        resources: [`${ARN}:ram:${HERE}:resource-share/*`],
        conditions: {
          StringLike: { "ram:ResourceShareName": "layer-sync-*", "ram:Principal": [`${org}:ou/o-*/ou-abcd-12345678`] },
          Bool: { "ram:AllowsExternalPrincipals": "false" },
        },
      },
      {
        sid: "ListArtifactPrefix",
        actions: ["s3:ListBucket"],
        resources: [`<${ids.bucket}.Arn>`],
        conditions: { StringLike: { "s3:prefix": ["layers/*"] } },
      },
      { sid: "ListLayers", actions: ["lambda:ListLayerVersions", "lambda:ListLayers"], resources: ["*"] },
      { sid: "ListOrganizationAccounts", actions: ["organizations:ListAccounts"], resources: ["*"] },
      {
        sid: "ListOrganizationTree",
        actions: ["organizations:ListAccountsForParent", "organizations:ListOrganizationalUnitsForParent"],
        resources: [`${org}:ou/o-*/ou-*`, `${org}:root/o-*/r-*`],
      },
      {
        sid: "ListPackageParameters",
        actions: ["ssm:GetParametersByPath"],
        resources: [`${ARN}:ssm:${HERE}:parameter/layer-sync`, `${ARN}:ssm:${HERE}:parameter/layer-sync/*`],
      },
      {
        sid: "ManageLayerVersions",
        actions: [
          "lambda:AddLayerVersionPermission",
          "lambda:DeleteLayerVersion",
          "lambda:GetLayerVersion",
          "lambda:GetLayerVersionPolicy",
          "lambda:RemoveLayerVersionPermission",
        ],
        resources: [`${ARN}:lambda:${HERE}:layer:*:*`],
      },
      {
        sid: "ManageSmokeFunctions",
        actions: [
          "lambda:CreateFunction",
          "lambda:GetFunctionConfiguration",
          "lambda:InvokeFunction",
          "lambda:TagResource",
          "lambda:UpdateFunctionCode",
          "lambda:UpdateFunctionConfiguration",
        ],
        resources: [`${ARN}:lambda:*:<AWS::AccountId>:function:layer-sync-smoke-*`],
      },
      {
        sid: "PassSmokeRole",
        actions: ["iam:PassRole"],
        resources: [`<${logicalId(stack.smokeRole)}.Arn>`],
        conditions: { StringEquals: { "iam:PassedToService": "lambda.amazonaws.com" } },
      },
      {
        sid: "PruneParameterShares",
        actions: ["ram:DeleteResourceShare", "ram:DisassociateResourceShare"],
        resources: [`${ARN}:ram:${HERE}:resource-share/*`],
        conditions: {
          StringLike: { "ram:ResourceShareName": "layer-sync-*" },
          Bool: { "ram:AllowsExternalPrincipals": "false" },
        },
      },
      {
        sid: "PublishLayers",
        actions: ["lambda:PublishLayerVersion"],
        resources: [`${ARN}:lambda:${HERE}:layer:*`],
      },
      { sid: "PutSummaryEvent", actions: ["events:PutEvents"], resources: [`${ARN}:events:${HERE}:event-bus/default`] },
      {
        sid: "ReadArtifacts",
        actions: ["s3:GetObject"],
        resources: [`<${ids.bucket}.Arn>/layers/*`],
      },
      {
        sid: "ReadParameterShares",
        actions: ["ram:GetResourceShareAssociations", "ram:GetResourceShares"],
        resources: ["*"],
      },
      {
        sid: "ReadWriteLayerParameters",
        actions: ["ssm:DeleteParameter", "ssm:GetParameter", "ssm:GetParameters", "ssm:PutParameter"],
        resources: [`${ARN}:ssm:${HERE}:parameter/layer-sync/*`],
      },
      {
        sid: "WriteOwnLogs",
        actions: ["logs:CreateLogStream", "logs:PutLogEvents"],
        resources: [`<${ids.publishLogs}.Arn>`],
      },
    ]);
  });

  it('keeps every Resource "*" in the policy for actions without resource-level permissions', () => {
    const policies = policiesOf(template, ids.publishRole);
    for (const [id, statements] of Object.entries(policies)) {
      const unscoped = statements.filter((s) => s.resources.includes("*")).map((s) => s.sid);
      if (id === "PublishUnscopedActionsPolicy") {
        expect(unscoped).toEqual([
          "ListOrganizationAccounts",
          "ListLayers",
          "DescribeOrganization",
          "CreateParameterShares",
          "CreateParameterSharesWithPrincipals",
          "ReadParameterShares",
        ]);
      } else {
        expect(unscoped).toEqual([]);
      }
    }
  });
});

describe("cdk-nag AwsSolutions", () => {
  it("reports no unacknowledged error or warning", () => {
    expect(nagFindings(app, stack)).toEqual([]);
    expect(nagAnnotations(stack)).toEqual([]);
  });

  it("acknowledges only named findings, each with a written reason", () => {
    const acks = acknowledgments(stack);
    expect(acks.size).toBeGreaterThan(0);
    for (const [where, reason] of acks) {
      expect(where).toMatch(/ AwsSolutions-(S1|SNS2|SQS3|CB4|CB5|IAM5\[Resource::.+\])$/);
      expect(reason.length, where).toBeGreaterThan(40);
    }
    expect([...acks.keys()].filter((k) => k.endsWith("IAM5[Resource::*]")).sort()).toEqual([
      "LayerSync/PublishUnscopedActionsPolicy AwsSolutions-IAM5[Resource::*]",
    ]);
  });
});
