/**
 * LayerSyncStack: the artifact bucket, the sync and publish functions, their triggers, and the alarms
 * that make failures loud, composed from the builders in infra/constructs/. Two modes:
 *
 * - `deploy` (default): settings come from typed props (infra/app.ts reads them from CDK context) and
 *   the handlers are bundled by NodejsFunction/esbuild; deploy with `cdk deploy`.
 * - `template`: every setting is a CloudFormation Parameter and the code comes from S3 bucket/key
 *   parameters, so infra/synth.ts can write one self-contained template for CfCT (no bootstrap, no assets).
 *
 * Every builder creates its resources in the stack's own scope, so logical ids do not depend on the split.
 */
import { CfnOutput, DefaultStackSynthesizer, Stack, type StackProps } from "aws-cdk-lib";
import type * as iam from "aws-cdk-lib/aws-iam";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import type * as s3 from "aws-cdk-lib/aws-s3";
import type * as sns from "aws-cdk-lib/aws-sns";
import type * as sqs from "aws-cdk-lib/aws-sqs";
import type { Construct } from "constructs";
import { createAlarms, createNotifications } from "./constructs/alarms.ts";
import { type Builds, buildNamesOf, createBuildLogGroups, createBuilds } from "./constructs/builds.ts";
import { deploySettings } from "./constructs/deploy-settings.ts";
import { createFunctions, retentionDays } from "./constructs/functions.ts";
import { grantPermissions, namesOf } from "./constructs/grants.ts";
import { acknowledgeFindings } from "./constructs/nag.ts";
import { templateSettings } from "./constructs/parameters.ts";
import type { FunctionCode, Resolved } from "./constructs/resolved.ts";
import { createSmoke } from "./constructs/smoke.ts";
import { createStorage } from "./constructs/storage.ts";
import { createTriggers, deliveryOptions } from "./constructs/triggers.ts";
import type { LayerSyncOptions, LayerSyncSettings } from "./settings.ts";

export { publishStatements, syncStatements, tokenStatements } from "./constructs/iam.ts";
export { flattenReference } from "./constructs/nag.ts";

export type StackMode = "deploy" | "template";

export interface LayerSyncStackProps extends StackProps {
  /** `deploy` (settings from props, esbuild bundling) or `template` (settings and code location from CloudFormation Parameters). @default "deploy" */
  readonly mode?: StackMode;
  /** Handler settings; required in deploy mode, not allowed in template mode (they are template parameters there). */
  readonly settings?: LayerSyncSettings;
  /** Infrastructure options. In template mode gateMode, notificationEmail and reconcileSchedule are template parameters instead. */
  readonly options?: LayerSyncOptions;
  /**
   * Code for the functions, e.g. `lambda.Code.fromInline(...)` in tests. Deploy mode only.
   * @default esbuild bundles of the handlers in handlers/
   */
  readonly code?: FunctionCode;
}

export class LayerSyncStack extends Stack {
  readonly artifactBucket: s3.Bucket;
  readonly accessLogBucket: s3.Bucket | undefined;
  readonly syncFunction: lambda.Function;
  readonly publishFunction: lambda.Function;
  readonly failureTopic: sns.Topic;
  readonly eventsDeadLetterQueue: sqs.Queue;
  readonly syncRole: iam.Role;
  readonly publishRole: iam.Role;
  /** The build-finished function, the CodeBuild projects, their role and rule (undefined with builds: false). */
  readonly buildFunction: lambda.Function | undefined;
  readonly builds: Builds | undefined;
  /** The smoke functions' execution role (logs only); the publish function gets it as SMOKE_ROLE_ARN. */
  readonly smokeRole: iam.Role;

  constructor(scope: Construct, id: string, props: LayerSyncStackProps) {
    super(scope, id, {
      description: "layer-sync: repository folders to Lambda layers shared across the organization",
      ...props,
      // A CfCT template must deploy without a CDK bootstrap: no BootstrapVersion parameter or rule, and no
      // CDK metadata resource. (Template mode has no assets either: code comes from S3 parameters.)
      ...(props.mode === "template" && {
        synthesizer: props.synthesizer ?? new DefaultStackSynthesizer({ generateBootstrapVersionRule: false }),
        analyticsReporting: false,
      }),
    });
    // Server access logs are granted through a bucket policy (works with BucketOwnerEnforced), whatever
    // feature flags the enclosing app sets.
    this.node.setContext("@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy", true);

    const options = props.options ?? {};
    const resolved = this.resolve_(props, options);

    const storage = createStorage(this, options, resolved.artifactKey);
    this.artifactBucket = storage.artifactBucket;
    this.accessLogBucket = storage.accessLogBucket;

    const notifications = createNotifications(this, options, resolved);
    this.failureTopic = notifications.failureTopic;
    this.eventsDeadLetterQueue = notifications.eventsDeadLetterQueue;

    const functions = createFunctions(this, {
      resolved,
      options,
      environment: { ARTIFACT_BUCKET: this.artifactBucket.bucketName },
      failureTopic: this.failureTopic,
    });
    this.syncFunction = functions.syncFunction;
    this.publishFunction = functions.publishFunction;
    this.syncRole = functions.syncRole;
    this.publishRole = functions.publishRole;
    this.buildFunction = functions.build?.fn;

    const conditionalKeys = {
      artifact: storage.conditionalArtifactKey,
      topic:
        notifications.topicKey && notifications.topicKeyOn
          ? { key: notifications.topicKey, on: notifications.topicKeyOn }
          : undefined,
    };
    const grantInputs = {
      resolved,
      options,
      functions,
      artifactBucket: this.artifactBucket,
      artifactKey: storage.artifactKey,
      conditionalKeys,
    };
    const projectLogs = functions.build
      ? createBuildLogGroups(this, retentionDays(options.logRetentionDays ?? 90))
      : undefined;
    const buildNames = projectLogs ? buildNamesOf(this.artifactBucket, projectLogs) : undefined;
    const smoke = createSmoke(this, functions);
    this.smokeRole = smoke.role;
    const policies = grantPermissions(this, { ...grantInputs, builds: buildNames, smokeRoleArn: smoke.role.roleArn });
    policies.push(...smoke.policies);
    this.builds =
      functions.build && projectLogs
        ? createBuilds(
            this,
            {
              resolved,
              names: namesOf({ ...grantInputs, builds: buildNames }),
              artifactBucket: this.artifactBucket,
              artifactKey: storage.artifactKey,
              conditionalKeys,
              build: functions.build,
              failureTopic: this.failureTopic,
              deliver: deliveryOptions(this.eventsDeadLetterQueue),
            },
            projectLogs,
          )
        : undefined;
    policies.push(...(this.builds?.policies ?? []));
    const queued = createTriggers(this, { ...functions, resolved, eventsDeadLetterQueue: this.eventsDeadLetterQueue });
    createAlarms(this, { ...functions, ...notifications, syncDeadLetterQueue: queued?.deadLetterQueue });
    acknowledgeFindings(
      this,
      {
        ...storage,
        ...notifications,
        policies,
        topicKeyArn: notifications.topicKey?.keyArn,
        syncDeadLetterQueue: queued?.deadLetterQueue,
        buildProjects: this.builds ? Object.values(this.builds.projects) : [],
      },
      options,
    );

    new CfnOutput(this, "ArtifactBucketName", { value: this.artifactBucket.bucketName });
    new CfnOutput(this, "SyncFunctionName", { value: this.syncFunction.functionName });
    new CfnOutput(this, "SyncFunctionArn", { value: this.syncFunction.functionArn });
    new CfnOutput(this, "PublishFunctionName", { value: this.publishFunction.functionName });
    // The consumer read role in member accounts trusts this role (infra/cfct/consumer-read-role.template.yaml).
    new CfnOutput(this, "PublishRoleArn", { value: this.publishRole.roleArn });
    if (this.buildFunction) {
      const output = new CfnOutput(this, "BuildFunctionName", { value: this.buildFunction.functionName });
      if (resolved.builds !== true && resolved.builds !== false) output.condition = resolved.builds;
    }
    new CfnOutput(this, "FailureTopicArn", { value: this.failureTopic.topicArn });
    new CfnOutput(this, "EventsDeadLetterQueueUrl", { value: this.eventsDeadLetterQueue.queueUrl });
  }

  /** The settings of either mode. */
  private resolve_(props: LayerSyncStackProps, options: LayerSyncOptions): Resolved {
    if (props.mode !== "template") return deploySettings(props.settings, options, props.code, this.region);
    if (props.settings !== undefined || props.code !== undefined) {
      throw new Error("LayerSyncStack: in template mode settings and code are template parameters; do not pass them");
    }
    if (
      options.gateMode !== undefined ||
      options.notificationEmail !== undefined ||
      options.reconcileSchedule !== undefined
    ) {
      throw new Error(
        "LayerSyncStack: in template mode gateMode, notificationEmail and reconcileSchedule are template parameters",
      );
    }
    return templateSettings(this);
  }
}
