/**
 * LayerSyncStack: the artifact bucket, the sync and publish functions, their triggers, and the alarms
 * that make failures loud. Two modes:
 *
 * - `deploy` (default): settings come from typed props (infra/app.ts reads them from CDK context) and
 *   the handlers are bundled by NodejsFunction/esbuild; deploy with `cdk deploy`.
 * - `template`: every setting is a CloudFormation Parameter and the code comes from S3 bucket/key
 *   parameters, so infra/synth.ts can write one self-contained template for CfCT (no bootstrap, no assets).
 *
 * IAM: every statement names concrete ARNs. The only `Resource: "*"` statements are actions that have no
 * resource-level permissions (each says so where it is built), and the wildcards inside ARNs are
 * patterns under this stack's names (artifact prefix, parameter prefix, layer-name prefix).
 */
import {
  Aws,
  CfnCondition,
  CfnOutput,
  CfnParameter,
  type CfnResource,
  DefaultStackSynthesizer,
  Duration,
  Fn,
  RemovalPolicy,
  Size,
  Stack,
  type StackProps,
  Token,
  Validations,
} from "aws-cdk-lib";
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch";
import * as cloudwatchActions from "aws-cdk-lib/aws-cloudwatch-actions";
import * as events from "aws-cdk-lib/aws-events";
import * as targets from "aws-cdk-lib/aws-events-targets";
import * as iam from "aws-cdk-lib/aws-iam";
import * as kms from "aws-cdk-lib/aws-kms";
import * as lambda from "aws-cdk-lib/aws-lambda";
import * as destinations from "aws-cdk-lib/aws-lambda-destinations";
import { NodejsFunction } from "aws-cdk-lib/aws-lambda-nodejs";
import * as logs from "aws-cdk-lib/aws-logs";
import * as s3 from "aws-cdk-lib/aws-s3";
import * as sns from "aws-cdk-lib/aws-sns";
import * as sqs from "aws-cdk-lib/aws-sqs";
import type { Construct } from "constructs";
import { HANDLER_ENTRIES, nodejsBundling, REPO_ROOT } from "./bundling.ts";
import {
  checkArtifactPrefix,
  DEFAULT_ARTIFACT_PREFIX,
  DEFAULT_PARAMETER_PREFIX,
  DEFAULT_PIPELINE_NAME,
  DEFAULT_SUMMARY_EVENT_BUS,
  eventBusArn,
  layerArnPattern,
  layerVersionArnPattern,
  normaliseParameterPrefix,
  parameterArn,
  parameterNameSpellings,
} from "./names.ts";
import { DEFAULT_RECONCILE_SCHEDULE, type LayerSyncOptions, type LayerSyncSettings } from "./settings.ts";

export type StackMode = "deploy" | "template";

export interface LayerSyncStackProps extends StackProps {
  /** `deploy` (settings from props, esbuild bundling) or `template` (settings and code location from CloudFormation Parameters). @default "deploy" */
  readonly mode?: StackMode;
  /** Handler settings; required in deploy mode, not allowed in template mode (they are template parameters there). */
  readonly settings?: LayerSyncSettings;
  /** Infrastructure options. In template mode gateMode, notificationEmail and reconcileSchedule are template parameters instead. */
  readonly options?: LayerSyncOptions;
  /**
   * Code for the two functions, e.g. `lambda.Code.fromInline(...)` in tests. Deploy mode only.
   * @default esbuild bundles of handlers/sync.ts and handlers/publish.ts
   */
  readonly code?: { readonly sync: lambda.Code; readonly publish: lambda.Code };
}

/** On, off, or decided at deploy time by a template condition. */
type Switch = boolean | CfnCondition;

/** Everything the resources are built from, with deploy-time values as tokens in template mode. */
interface Resolved {
  readonly env: Record<string, string>;
  readonly artifactPrefix: string;
  readonly parameterPrefix: string;
  readonly pipelineName: string;
  readonly layerNamePrefix: string;
  readonly summaryEventBus: string;
  /** Resource of the token read (an SSM parameter ARN), when there is a token. */
  readonly tokenParameterArn: string | undefined;
  /** Resource of the token decrypt: the configured key, or `key/*` narrowed by conditions. */
  readonly tokenKeyArn: string;
  readonly hasToken: Switch;
  /** `o-xxxxxxxxxx` when SHARE_ORGANIZATION_ID is set, else `o-*`. */
  readonly organizationSegment: string;
  readonly gateMode: Switch;
  readonly eventTriggers: Switch;
  readonly reconcile: Switch;
  readonly reconcileSchedule: string;
  readonly notificationEmail: string | undefined;
  readonly notify: Switch;
  readonly code: { readonly sync: lambda.Code; readonly publish: lambda.Code } | undefined;
}

const LAYER_NAME_PREFIX = /^[A-Za-z0-9_-]{0,139}$/;
/** lib/publish/share.ts names each package's RAM share `layer-sync-{package}`. */
const RESOURCE_SHARE_NAME_PREFIX = "layer-sync-";
const PIPELINE_NAME = /^[A-Za-z0-9.@_-]{1,100}$/;
const EVENT_BUS_NAME = /^[A-Za-z0-9._\-/]{1,256}$/;
/** Variables the stack sets itself; `extraEnvironment` may not override them. */
const MANAGED_VARIABLES = [
  "SOURCE_PROVIDER",
  "SOURCE_REPOSITORY",
  "SOURCE_REF",
  "SOURCE_PATHS",
  "SOURCE_API_URL",
  "SOURCE_WEB_URL",
  "SOURCE_STRATEGY",
  "TOKEN_PARAMETER_NAME",
  "ARTIFACT_BUCKET",
  "ARTIFACT_PREFIX",
  "PARAMETER_PREFIX",
  "PIPELINE_NAME",
  "LAYER_NAME_PREFIX",
  "COMPATIBLE_RUNTIMES",
  "COMPATIBLE_ARCHITECTURES",
  "SHARE_ORGANIZATION_ID",
  "SHARE_OU_IDS",
  "SHARE_ACCOUNT_IDS",
  "RETAIN_VERSIONS",
  "SUMMARY_EVENT_BUS",
  "LAYER_LICENSE",
  "SOURCE_TOKEN",
  "NODE_OPTIONS",
];

export class LayerSyncStack extends Stack {
  readonly artifactBucket: s3.Bucket;
  readonly accessLogBucket: s3.Bucket | undefined;
  readonly syncFunction: lambda.Function;
  readonly publishFunction: lambda.Function;
  readonly failureTopic: sns.Topic;
  readonly eventsDeadLetterQueue: sqs.Queue;
  readonly syncRole: iam.Role;
  readonly publishRole: iam.Role;

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

    const mode = props.mode ?? "deploy";
    const options = props.options ?? {};
    const resolved =
      mode === "template" ? this.templateSettings(props) : this.deploySettings(props.settings, options, props.code);

    // ---- Storage -------------------------------------------------------------------------------------
    const artifactKey =
      options.artifactEncryption === "kms"
        ? new kms.Key(this, "ArtifactKey", {
            description: "layer-sync artifact bucket encryption",
            enableKeyRotation: true,
            removalPolicy: RemovalPolicy.RETAIN,
          })
        : undefined;

    this.accessLogBucket =
      options.accessLogging === false
        ? undefined
        : new s3.Bucket(this, "AccessLogBucket", {
            blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
            enforceSSL: true,
            minimumTLSVersion: 1.2,
            // Server access logging delivers only to SSE-S3 buckets.
            encryption: s3.BucketEncryption.S3_MANAGED,
            objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycleRules: [
              {
                id: "ExpireAccessLogs",
                expiration: Duration.days(options.accessLogRetentionDays ?? 365),
                abortIncompleteMultipartUploadAfter: Duration.days(1),
              },
            ],
            removalPolicy: RemovalPolicy.RETAIN,
          });

    const artifactLifecycle: s3.LifecycleRule[] = [
      {
        id: "ExpireNoncurrentVersions",
        noncurrentVersionExpiration: Duration.days(options.noncurrentVersionExpirationDays ?? 30),
        abortIncompleteMultipartUploadAfter: Duration.days(1),
      },
      {
        id: "OldArtifactsToInfrequentAccess",
        transitions: [
          {
            storageClass: s3.StorageClass.INFREQUENT_ACCESS,
            transitionAfter: Duration.days(options.artifactInfrequentAccessDays ?? 30),
          },
        ],
        ...(options.artifactExpirationDays !== undefined && {
          expiration: Duration.days(options.artifactExpirationDays),
        }),
      },
      { id: "RemoveExpiredDeleteMarkers", expiredObjectDeleteMarker: true },
    ];
    this.artifactBucket = new s3.Bucket(this, "ArtifactBucket", {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      versioned: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      ...(artifactKey
        ? { encryption: s3.BucketEncryption.KMS, encryptionKey: artifactKey, bucketKeyEnabled: true }
        : { encryption: s3.BucketEncryption.S3_MANAGED }),
      ...(this.accessLogBucket && {
        serverAccessLogsBucket: this.accessLogBucket,
        serverAccessLogsPrefix: "artifact-bucket/",
      }),
      lifecycleRules: artifactLifecycle,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // ---- Failure notifications ------------------------------------------------------------------------
    const topicKey = options.topicEncryption
      ? new kms.Key(this, "FailureTopicKey", {
          description: "layer-sync failure topic encryption",
          enableKeyRotation: true,
          removalPolicy: RemovalPolicy.RETAIN,
        })
      : undefined;
    this.failureTopic = new sns.Topic(this, "FailureTopic", {
      displayName: "layer-sync failures",
      enforceSSL: true,
      ...(topicKey && { masterKey: topicKey }),
    });
    // CloudWatch alarms publish as the CloudWatch service; the topic policy (created by enforceSSL)
    // replaces SNS's default policy, so allow this account's alarms explicitly.
    this.failureTopic.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: "AllowThisAccountsAlarms",
        principals: [new iam.ServicePrincipal("cloudwatch.amazonaws.com")],
        actions: ["sns:Publish"],
        resources: [this.failureTopic.topicArn],
        conditions: {
          StringEquals: { "aws:SourceAccount": Aws.ACCOUNT_ID },
          ArnLike: { "aws:SourceArn": `arn:${Aws.PARTITION}:cloudwatch:${Aws.REGION}:${Aws.ACCOUNT_ID}:alarm:*` },
        },
      }),
    );
    topicKey?.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: "AllowCloudWatchAlarmsToUseTheKey",
        principals: [new iam.ServicePrincipal("cloudwatch.amazonaws.com")],
        actions: ["kms:Decrypt", "kms:GenerateDataKey"],
        resources: ["*"], // in a key policy "*" means this key
        conditions: { StringEquals: { "aws:SourceAccount": Aws.ACCOUNT_ID } },
      }),
    );
    if (resolved.notificationEmail !== undefined) {
      const subscription = new sns.Subscription(this, "FailureEmail", {
        topic: this.failureTopic,
        protocol: sns.SubscriptionProtocol.EMAIL,
        endpoint: resolved.notificationEmail,
      });
      applySwitch(subscription.node.defaultChild as CfnResource, resolved.notify);
    }

    // EventBridge delivers to Lambda asynchronously; events it cannot deliver (e.g. Lambda throttled for
    // the whole retry window) land here and raise an alarm.
    this.eventsDeadLetterQueue = new sqs.Queue(this, "EventsDeadLetterQueue", {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });

    // ---- Functions ------------------------------------------------------------------------------------
    const retention = retentionDays(options.logRetentionDays ?? 90);
    const syncLogs = new logs.LogGroup(this, "SyncLogGroup", {
      retention,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const publishLogs = new logs.LogGroup(this, "PublishLogGroup", {
      retention,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.syncRole = new iam.Role(this, "SyncRole", {
      assumedBy: new iam.ServicePrincipal("lambda.amazonaws.com"),
      description: "layer-sync sync function: repository to S3 artifacts and SSM pointers",
    });
    this.publishRole = new iam.Role(this, "PublishRole", {
      assumedBy: new iam.ServicePrincipal("lambda.amazonaws.com"),
      description: "layer-sync publish function: S3 artifacts to shared Lambda layer versions",
    });

    const environment = { ...resolved.env, ARTIFACT_BUCKET: this.artifactBucket.bucketName };
    const common = {
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      handler: "index.handler",
      environment,
      ...(options.tracing && { tracing: lambda.Tracing.ACTIVE }),
      // Async invocations (EventBridge, the pipeline's Invoke action): two retries, then the failure
      // record goes straight to the failure topic, so a human hears about it.
      retryAttempts: 2,
      maxEventAge: Duration.hours(6),
      onFailure: new destinations.SnsDestination(this.failureTopic),
    } satisfies Partial<lambda.FunctionProps>;
    const codeFor = (name: "sync" | "publish") =>
      resolved.code
        ? { code: resolved.code[name] }
        : {
            entry: HANDLER_ENTRIES[name],
            projectRoot: REPO_ROOT,
            depsLockFilePath: `${REPO_ROOT}package-lock.json`,
            bundling: nodejsBundling(),
          };

    this.syncFunction = new NodejsFunction(this, "SyncFunction", {
      ...common,
      ...codeFor("sync"),
      description: "layer-sync: repository folders to S3 zips and SSM pointers",
      role: this.syncRole,
      logGroup: syncLogs,
      memorySize: 2048,
      timeout: Duration.minutes(15),
      // A 250 MB unzipped folder, its zip and the repository archive must fit in /tmp together.
      ephemeralStorageSize: Size.mebibytes(2048),
      // One run at a time: overlapping runs are safe, but serial runs are kinder to the Bitbucket rate limit.
      reservedConcurrentExecutions: 1,
    });
    this.publishFunction = new NodejsFunction(this, "PublishFunction", {
      ...common,
      ...codeFor("publish"),
      description: "layer-sync: S3 zips to Lambda layer versions shared across the organization",
      role: this.publishRole,
      logGroup: publishLogs,
      memorySize: 512,
      timeout: Duration.minutes(5),
    });

    // ---- Permissions ----------------------------------------------------------------------------------
    const names = {
      bucketArn: this.artifactBucket.bucketArn,
      objectsArn: this.artifactBucket.arnForObjects(`${resolved.artifactPrefix}*`),
      artifactPrefix: resolved.artifactPrefix,
      parametersArn: parameterArn(`${resolved.parameterPrefix}/*`),
      parameterPathArn: parameterArn(resolved.parameterPrefix),
      layerArnParametersArn: parameterArn(`${resolved.parameterPrefix}/*/layer-version-arn`),
      layerNamePrefix: resolved.layerNamePrefix,
      eventBusArn: eventBusArn(resolved.summaryEventBus),
      artifactKeyArn: artifactKey?.keyArn,
      organizationsAccount: options.organizationManagementAccountId ?? Aws.ACCOUNT_ID,
      organizationSegment: resolved.organizationSegment,
    };
    // Scoped statements (concrete ARNs and patterns under this stack's names) go to each role's default
    // policy; statements whose actions have no resource-level permissions ("*") live in their own policy,
    // so a "*" anywhere else is still a cdk-nag finding.
    for (const s of syncStatements(names, syncLogs.logGroupArn)) this.syncRole.addToPolicy(s);
    const publish = publishStatements(names, publishLogs.logGroupArn);
    for (const s of publish.scoped) this.publishRole.addToPolicy(s);
    const policies: { scope: Construct; document: iam.PolicyDocument }[] = [];
    // Extra policies are L1 resources: role.attachInlinePolicy would make the functions DependsOn them,
    // and a DependsOn on a resource whose template condition is false fails the deployment.
    // Unconditional ones are dependencies of their function, so it never runs without them.
    const attach = (fn: lambda.Function, id: string, statements: iam.PolicyStatement[], on: Switch) => {
      const role = fn === this.syncFunction ? this.syncRole : this.publishRole;
      const document = new iam.PolicyDocument({ statements });
      // Created beside the role, not inside it: the functions depend on their role's whole subtree.
      const policy = new iam.CfnPolicy(this, id, { policyName: id, roles: [role.roleName], policyDocument: document });
      applySwitch(policy, on);
      if (on === true) fn.node.addDependency(policy);
      policies.push({ scope: policy, document });
    };
    attach(this.publishFunction, "PublishUnscopedActionsPolicy", publish.unscoped, true);
    if (resolved.tokenParameterArn !== undefined && resolved.hasToken !== false) {
      attach(
        this.syncFunction,
        "SyncTokenPolicy",
        tokenStatements(resolved.tokenParameterArn, resolved.tokenKeyArn),
        resolved.hasToken,
      );
    }
    if (resolved.gateMode !== false) {
      // Gate mode: sync publishes too, and reports the CodePipeline job result.
      const gate = publishStatements(names, undefined);
      attach(this.syncFunction, "SyncGatePolicy", gate.scoped, resolved.gateMode);
      attach(
        this.syncFunction,
        "SyncGateUnscopedActionsPolicy",
        [
          ...gate.unscoped,
          new iam.PolicyStatement({
            sid: "ReportPipelineJobResult",
            actions: ["codepipeline:PutJobSuccessResult", "codepipeline:PutJobFailureResult"],
            // CodePipeline job-result actions have no resource-level permissions: "*" is the only valid resource.
            resources: ["*"],
          }),
        ],
        resolved.gateMode,
      );
    }
    for (const role of [this.syncRole, this.publishRole]) {
      const defaultPolicy = role.node.tryFindChild("DefaultPolicy");
      if (defaultPolicy instanceof iam.Policy)
        policies.push({ scope: defaultPolicy, document: defaultPolicy.document });
    }

    // ---- Triggers -------------------------------------------------------------------------------------
    const deliver = {
      deadLetterQueue: this.eventsDeadLetterQueue,
      retryAttempts: 185,
      maxEventAge: Duration.hours(24),
    };
    if (resolved.eventTriggers !== false) {
      const started = new events.Rule(this, "PipelineStartedRule", {
        description: `Starts a layer-sync run when ${Token.isUnresolved(resolved.pipelineName) ? "the pipeline" : resolved.pipelineName} starts`,
        eventPattern: {
          source: ["aws.codepipeline"],
          detailType: ["CodePipeline Pipeline Execution State Change"],
          detail: { pipeline: [resolved.pipelineName], state: ["STARTED"] },
        },
        targets: [new targets.LambdaFunction(this.syncFunction, deliver)],
      });
      applyRuleSwitch(started, resolved.eventTriggers);
      const [withSlash, withoutSlash] = parameterNameSpellings(resolved.parameterPrefix, "/*/artifact-key");
      const changed = new events.Rule(this, "ArtifactKeyChangedRule", {
        description: "Publishes a layer version when a package's artifact-key parameter is written",
        eventPattern: {
          source: ["aws.ssm"],
          detailType: ["Parameter Store Change"],
          detail: {
            // Both spellings: whether detail.name carries the leading "/" is not documented.
            name: [{ wildcard: withSlash }, { wildcard: withoutSlash }],
            operation: ["Create", "Update"],
          },
        },
        targets: [new targets.LambdaFunction(this.publishFunction, deliver)],
      });
      applyRuleSwitch(changed, resolved.eventTriggers);
    }
    if (resolved.reconcile !== false) {
      const reconcile = new events.Rule(this, "ReconcileScheduleRule", {
        description: "Daily reconcile: publishes any package whose latest artifact has no layer version yet",
        schedule: events.Schedule.expression(resolved.reconcileSchedule),
        targets: [
          new targets.LambdaFunction(this.publishFunction, {
            ...deliver,
            event: events.RuleTargetInput.fromObject({}),
          }),
        ],
      });
      applyRuleSwitch(reconcile, resolved.reconcile);
    }

    // ---- Alarms ---------------------------------------------------------------------------------------
    const notify = new cloudwatchActions.SnsAction(this.failureTopic);
    const alarm = (id: string, metric: cloudwatch.IMetric, description: string) =>
      new cloudwatch.Alarm(this, id, {
        metric,
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: description,
      }).addAlarmAction(notify);
    const fiveMinutes = { period: Duration.minutes(5), statistic: cloudwatch.Stats.SUM };
    alarm("SyncErrorsAlarm", this.syncFunction.metricErrors(fiveMinutes), "layer-sync sync function failed");
    alarm(
      "SyncThrottlesAlarm",
      this.syncFunction.metricThrottles(fiveMinutes),
      "layer-sync sync was throttled (reserved concurrency 1: a run overlapped another and was queued for retry)",
    );
    alarm("PublishErrorsAlarm", this.publishFunction.metricErrors(fiveMinutes), "layer-sync publish function failed");
    alarm(
      "PublishThrottlesAlarm",
      this.publishFunction.metricThrottles(fiveMinutes),
      "layer-sync publish was throttled",
    );
    alarm(
      "EventsDeadLetterAlarm",
      this.eventsDeadLetterQueue.metricApproximateNumberOfMessagesVisible({
        period: Duration.minutes(5),
        statistic: cloudwatch.Stats.MAXIMUM,
      }),
      "EventBridge could not deliver a layer-sync trigger; see the events dead-letter queue",
    );

    this.acknowledgeFindings(policies, options, topicKey?.keyArn);

    new CfnOutput(this, "ArtifactBucketName", { value: this.artifactBucket.bucketName });
    new CfnOutput(this, "SyncFunctionName", { value: this.syncFunction.functionName });
    new CfnOutput(this, "SyncFunctionArn", { value: this.syncFunction.functionArn });
    new CfnOutput(this, "PublishFunctionName", { value: this.publishFunction.functionName });
    new CfnOutput(this, "FailureTopicArn", { value: this.failureTopic.topicArn });
    new CfnOutput(this, "EventsDeadLetterQueueUrl", { value: this.eventsDeadLetterQueue.queueUrl });
  }

  /** Settings from props, validated the way lib/shared/config.ts validates them, defaults made explicit. */
  private deploySettings(
    settings: LayerSyncSettings | undefined,
    options: LayerSyncOptions,
    code: LayerSyncStackProps["code"],
  ): Resolved {
    if (settings === undefined) throw new Error("LayerSyncStack: settings are required in deploy mode");
    const artifactPrefix = checkArtifactPrefix(settings.artifactPrefix ?? DEFAULT_ARTIFACT_PREFIX);
    if (artifactPrefix === "") {
      throw new Error(
        'artifactPrefix must not be empty: the handlers read an empty ARTIFACT_PREFIX as unset and use "layers/"',
      );
    }
    const parameterPrefix = normaliseParameterPrefix(settings.parameterPrefix ?? DEFAULT_PARAMETER_PREFIX);
    const layerNamePrefix = settings.layerNamePrefix ?? "";
    if (!LAYER_NAME_PREFIX.test(layerNamePrefix)) {
      throw new Error(`layerNamePrefix may contain only letters, digits, "_" and "-" (got "${layerNamePrefix}")`);
    }
    const pipelineName = settings.pipelineName ?? DEFAULT_PIPELINE_NAME;
    if (!PIPELINE_NAME.test(pipelineName))
      throw new Error(`pipelineName is not a valid pipeline name: "${pipelineName}"`);
    const summaryEventBus = settings.summaryEventBus ?? DEFAULT_SUMMARY_EVENT_BUS;
    if (!summaryEventBus.startsWith("arn:") && !EVENT_BUS_NAME.test(summaryEventBus)) {
      throw new Error(`summaryEventBus must be an event bus name or ARN (got "${summaryEventBus}")`);
    }
    if (settings.shareOrganizationId !== undefined && !/^o-[a-z0-9]{10,32}$/.test(settings.shareOrganizationId)) {
      throw new Error(`shareOrganizationId must look like o-abcd123456 (got "${settings.shareOrganizationId}")`);
    }
    if (settings.sourcePaths.length === 0) throw new Error("sourcePaths must name at least one folder");
    const overridden = Object.keys(settings.extraEnvironment ?? {}).filter((k) => MANAGED_VARIABLES.includes(k));
    if (overridden.length) {
      throw new Error(`extraEnvironment may not set ${overridden.join(", ")}; use the typed settings instead`);
    }
    const list = (values: readonly string[] | undefined) => (values?.length ? values.join(",") : undefined);
    const env: Record<string, string | undefined> = {
      ...settings.extraEnvironment,
      SOURCE_PROVIDER: settings.sourceProvider,
      SOURCE_REPOSITORY: settings.sourceRepository,
      SOURCE_PATHS: settings.sourcePaths.join(","),
      SOURCE_REF: settings.sourceRef,
      SOURCE_API_URL: settings.sourceApiUrl,
      SOURCE_WEB_URL: settings.sourceWebUrl,
      SOURCE_STRATEGY: settings.sourceStrategy,
      TOKEN_PARAMETER_NAME: settings.tokenParameterName,
      // The values the IAM statements are built from are always set, so the handlers' defaults cannot drift from them.
      ARTIFACT_PREFIX: artifactPrefix,
      PARAMETER_PREFIX: parameterPrefix,
      PIPELINE_NAME: pipelineName,
      SUMMARY_EVENT_BUS: summaryEventBus,
      LAYER_NAME_PREFIX: layerNamePrefix || undefined,
      COMPATIBLE_RUNTIMES: list(settings.compatibleRuntimes),
      COMPATIBLE_ARCHITECTURES: list(settings.compatibleArchitectures),
      SHARE_ORGANIZATION_ID: settings.shareOrganizationId,
      SHARE_OU_IDS: list(settings.shareOuIds),
      SHARE_ACCOUNT_IDS: list(settings.shareAccountIds),
      RETAIN_VERSIONS: settings.retainVersions === undefined ? undefined : String(settings.retainVersions),
      LAYER_LICENSE: settings.layerLicense,
      NODE_OPTIONS: "--enable-source-maps",
    };
    const gateMode = options.gateMode ?? false;
    const reconcileSchedule = options.reconcileSchedule ?? DEFAULT_RECONCILE_SCHEDULE;
    return {
      env: definedOnly(env),
      artifactPrefix,
      parameterPrefix,
      pipelineName,
      layerNamePrefix,
      summaryEventBus,
      tokenParameterArn:
        settings.tokenParameterName === undefined ? undefined : parameterArn(settings.tokenParameterName),
      tokenKeyArn: settings.tokenKmsKeyArn ?? `arn:${Aws.PARTITION}:kms:${Aws.REGION}:${Aws.ACCOUNT_ID}:key/*`,
      hasToken: settings.tokenParameterName !== undefined,
      organizationSegment: settings.shareOrganizationId ?? "o-*",
      gateMode,
      eventTriggers: !gateMode,
      reconcile: reconcileSchedule !== false,
      reconcileSchedule: reconcileSchedule === false ? DEFAULT_RECONCILE_SCHEDULE : reconcileSchedule,
      notificationEmail: options.notificationEmail,
      notify: options.notificationEmail !== undefined,
      code,
    };
  }

  /** Template mode: one CloudFormation Parameter per setting, plus the code location. */
  private templateSettings(props: LayerSyncStackProps): Resolved {
    if (props.settings !== undefined || props.code !== undefined) {
      throw new Error("LayerSyncStack: in template mode settings and code are template parameters; do not pass them");
    }
    const o = props.options ?? {};
    if (o.gateMode !== undefined || o.notificationEmail !== undefined || o.reconcileSchedule !== undefined) {
      throw new Error(
        "LayerSyncStack: in template mode gateMode, notificationEmail and reconcileSchedule are template parameters",
      );
    }
    const text = (id: string, description: string, extra: Partial<CfnParameterPropsLite> = {}) =>
      new CfnParameter(this, id, { type: "String", description, ...extra });

    const syncCodeBucket = text("SyncCodeS3Bucket", "S3 bucket (same Region) holding the sync function zip", {
      allowedPattern: "^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
    });
    const syncCodeKey = text(
      "SyncCodeS3Key",
      "S3 key of the sync function zip, as printed by npm run synth (layer-sync/layer-sync-sync-<hash>.zip)",
      {
        minLength: 1,
      },
    );
    const publishCodeBucket = text("PublishCodeS3Bucket", "S3 bucket (same Region) holding the publish function zip", {
      allowedPattern: "^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
    });
    const publishCodeKey = text(
      "PublishCodeS3Key",
      "S3 key of the publish function zip, as printed by npm run synth (layer-sync/layer-sync-publish-<hash>.zip)",
      {
        minLength: 1,
      },
    );
    const p = {
      SOURCE_PROVIDER: text("SourceProvider", "SOURCE_PROVIDER: bitbucket or github", {
        allowedValues: ["bitbucket", "github"],
      }),
      SOURCE_REPOSITORY: text(
        "SourceRepository",
        "SOURCE_REPOSITORY: workspace/repo (Bitbucket) or owner/repo (GitHub)",
        {
          minLength: 3,
        },
      ),
      SOURCE_PATHS: text("SourcePaths", "SOURCE_PATHS: comma-separated repository folders, e.g. layers/py-requests", {
        minLength: 1,
      }),
      SOURCE_REF: text("SourceRef", "SOURCE_REF: branch, tag or commit; empty for the main branch", { default: "" }),
      SOURCE_API_URL: text("SourceApiUrl", "SOURCE_API_URL: API base URL; empty for the provider's default", {
        default: "",
      }),
      SOURCE_WEB_URL: text(
        "SourceWebUrl",
        "SOURCE_WEB_URL: Bitbucket host for archive downloads; empty for bitbucket.org",
        {
          default: "",
        },
      ),
      SOURCE_STRATEGY: text("SourceStrategy", "SOURCE_STRATEGY: auto, walk or archive", {
        default: "auto",
        allowedValues: ["auto", "walk", "archive"],
      }),
      TOKEN_PARAMETER_NAME: text(
        "TokenParameterName",
        "TOKEN_PARAMETER_NAME: fully qualified name (starting with /) of an existing SecureString holding the repository token; empty for a public repository",
        { default: "", allowedPattern: "^$|^(/[A-Za-z0-9_.-]+)+$" },
      ),
      ARTIFACT_PREFIX: text("ArtifactPrefix", 'ARTIFACT_PREFIX: S3 key prefix ending in "/"', {
        default: DEFAULT_ARTIFACT_PREFIX,
        allowedPattern: "^[A-Za-z0-9!_.'()-][A-Za-z0-9!_.'()/-]{0,510}/$",
      }),
      PARAMETER_PREFIX: text("ParameterPrefix", "PARAMETER_PREFIX: SSM path starting with /, no trailing /", {
        default: DEFAULT_PARAMETER_PREFIX,
        allowedPattern: "^(/[A-Za-z0-9_.-]+)+$",
      }),
      PIPELINE_NAME: text("PipelineName", "PIPELINE_NAME: the pipeline whose STARTED events trigger a sync", {
        default: DEFAULT_PIPELINE_NAME,
        allowedPattern: "^[A-Za-z0-9.@_-]{1,100}$",
      }),
      LAYER_NAME_PREFIX: text("LayerNamePrefix", "LAYER_NAME_PREFIX: prefix for layer names; may be empty", {
        default: "",
        allowedPattern: "^[A-Za-z0-9_-]{0,139}$",
      }),
      COMPATIBLE_RUNTIMES: text("CompatibleRuntimes", "COMPATIBLE_RUNTIMES: comma-separated Lambda runtimes", {
        default: "",
      }),
      COMPATIBLE_ARCHITECTURES: text("CompatibleArchitectures", "COMPATIBLE_ARCHITECTURES: x86_64 and/or arm64", {
        default: "",
        allowedPattern: "^$|^(x86_64|arm64)(,(x86_64|arm64))?$",
      }),
      SHARE_ORGANIZATION_ID: text(
        "ShareOrganizationId",
        "SHARE_ORGANIZATION_ID: o-… to share with the whole organization",
        {
          default: "",
          allowedPattern: "^$|^o-[a-z0-9]{10,32}$",
        },
      ),
      SHARE_OU_IDS: text("ShareOuIds", "SHARE_OU_IDS: comma-separated OU ids", { default: "" }),
      SHARE_ACCOUNT_IDS: text("ShareAccountIds", "SHARE_ACCOUNT_IDS: comma-separated 12-digit account ids", {
        default: "",
      }),
      RETAIN_VERSIONS: text("RetainVersions", "RETAIN_VERSIONS: layer versions kept per layer", {
        default: "10",
        allowedPattern: "^[1-9][0-9]{0,3}$",
      }),
      SUMMARY_EVENT_BUS: text("SummaryEventBus", "SUMMARY_EVENT_BUS: name of the event bus for summary events", {
        default: DEFAULT_SUMMARY_EVENT_BUS,
        allowedPattern: "^[A-Za-z0-9._-]{1,256}$",
      }),
      LAYER_LICENSE: text("LayerLicense", "LAYER_LICENSE: default LicenseInfo of published layers", {
        default: "",
        maxLength: 512,
      }),
    };
    const tokenKmsKeyArn = text(
      "TokenKmsKeyArn",
      "ARN of the customer managed KMS key of the token parameter; empty for the AWS managed aws/ssm key",
      { default: "", allowedPattern: "^$|^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$" },
    );
    const gate = text(
      "GateMode",
      "true: a CodePipeline Invoke action runs sync, which also publishes (event rules disabled)",
      {
        default: "false",
        allowedValues: ["false", "true"],
      },
    );
    const schedule = text("ReconcileSchedule", "Schedule expression of the daily reconcile; empty for none", {
      default: DEFAULT_RECONCILE_SCHEDULE,
    });
    const email = text("NotificationEmail", "E-mail address for failure notifications; empty for none", {
      default: "",
      allowedPattern: "^$|^[^@\\s]+@[^@\\s]+$",
    });

    const notEmpty = (id: string, parameter: CfnParameter) =>
      new CfnCondition(this, id, { expression: Fn.conditionNot(Fn.conditionEquals(parameter.valueAsString, "")) });
    const hasToken = notEmpty("HasTokenParameter", p.TOKEN_PARAMETER_NAME);
    const hasTokenKey = notEmpty("HasTokenKmsKey", tokenKmsKeyArn);
    const hasOrganization = notEmpty("HasShareOrganization", p.SHARE_ORGANIZATION_ID);
    const reconcile = notEmpty("HasReconcileSchedule", schedule);
    const notify = notEmpty("HasNotificationEmail", email);
    const gateMode = new CfnCondition(this, "IsGateMode", {
      expression: Fn.conditionEquals(gate.valueAsString, "true"),
    });
    const eventTriggers = new CfnCondition(this, "IsEventMode", {
      expression: Fn.conditionEquals(gate.valueAsString, "false"),
    });

    this.templateOptions.metadata = {
      "AWS::CloudFormation::Interface": {
        ParameterGroups: [
          {
            Label: { default: "Function code (zips built by npm run synth)" },
            Parameters: ["SyncCodeS3Bucket", "SyncCodeS3Key", "PublishCodeS3Bucket", "PublishCodeS3Key"],
          },
          {
            Label: { default: "Repository" },
            Parameters: [
              "SourceProvider",
              "SourceRepository",
              "SourcePaths",
              "SourceRef",
              "SourceApiUrl",
              "SourceWebUrl",
              "SourceStrategy",
              "TokenParameterName",
              "TokenKmsKeyArn",
            ],
          },
          {
            Label: { default: "Artifacts and layers" },
            Parameters: [
              "ArtifactPrefix",
              "ParameterPrefix",
              "LayerNamePrefix",
              "CompatibleRuntimes",
              "CompatibleArchitectures",
              "LayerLicense",
              "RetainVersions",
            ],
          },
          {
            Label: { default: "Sharing" },
            Parameters: ["ShareOrganizationId", "ShareOuIds", "ShareAccountIds"],
          },
          {
            Label: { default: "Triggers and notifications" },
            Parameters: ["PipelineName", "GateMode", "ReconcileSchedule", "SummaryEventBus", "NotificationEmail"],
          },
        ],
      },
    };

    const env: Record<string, string> = { NODE_OPTIONS: "--enable-source-maps" };
    for (const [name, parameter] of Object.entries(p)) env[name] = parameter.valueAsString;
    const tokenName = p.TOKEN_PARAMETER_NAME.valueAsString;
    return {
      env,
      artifactPrefix: p.ARTIFACT_PREFIX.valueAsString,
      parameterPrefix: p.PARAMETER_PREFIX.valueAsString,
      pipelineName: p.PIPELINE_NAME.valueAsString,
      layerNamePrefix: p.LAYER_NAME_PREFIX.valueAsString,
      summaryEventBus: p.SUMMARY_EVENT_BUS.valueAsString,
      // The AllowedPattern guarantees the leading "/", so parameterArn() yields ":parameter/name".
      tokenParameterArn: parameterArn(tokenName),
      tokenKeyArn: Fn.conditionIf(
        hasTokenKey.logicalId,
        tokenKmsKeyArn.valueAsString,
        `arn:${Aws.PARTITION}:kms:${Aws.REGION}:${Aws.ACCOUNT_ID}:key/*`,
      ).toString(),
      hasToken,
      organizationSegment: Fn.conditionIf(
        hasOrganization.logicalId,
        p.SHARE_ORGANIZATION_ID.valueAsString,
        "o-*",
      ).toString(),
      gateMode,
      eventTriggers,
      reconcile,
      reconcileSchedule: Fn.conditionIf(
        reconcile.logicalId,
        schedule.valueAsString,
        DEFAULT_RECONCILE_SCHEDULE,
      ).toString(),
      notificationEmail: email.valueAsString,
      notify,
      code: {
        sync: lambda.Code.fromBucket(
          s3.Bucket.fromBucketName(this, "SyncCodeBucket", syncCodeBucket.valueAsString),
          syncCodeKey.valueAsString,
        ),
        publish: lambda.Code.fromBucket(
          s3.Bucket.fromBucketName(this, "PublishCodeBucket", publishCodeBucket.valueAsString),
          publishCodeKey.valueAsString,
        ),
      },
    };
  }

  /**
   * cdk-nag AwsSolutions findings that are intended, acknowledged with their reasons (cdk-nag v3 reads
   * `Validations.of(construct).acknowledge`). IAM5 findings are acknowledged one by one, per policy, and
   * only for statements listed in WILDCARD_REASONS / UNSCOPED_REASONS, so a new wildcard anywhere else
   * stays a finding.
   */
  private acknowledgeFindings(
    policies: readonly { scope: Construct; document: iam.PolicyDocument }[],
    options: LayerSyncOptions,
    topicKeyArn: string | undefined,
  ): void {
    if (this.accessLogBucket) {
      Validations.of(this.accessLogBucket).acknowledge({
        id: "AwsSolutions-S1",
        reason:
          "This is the access-log bucket of the artifact bucket; logging it would need yet another bucket and would log its own log deliveries.",
      });
    } else {
      Validations.of(this.artifactBucket).acknowledge({
        id: "AwsSolutions-S1",
        reason:
          "Server access logging was turned off with accessLogging: false; CloudTrail data events can audit the bucket instead.",
      });
    }
    if (!options.topicEncryption) {
      Validations.of(this.failureTopic).acknowledge({
        id: "AwsSolutions-SNS2",
        reason:
          "Failure notifications carry function names and error messages, never the token; topicEncryption: true adds a customer managed key (the AWS managed aws/sns key cannot be used by CloudWatch alarms).",
      });
    }
    Validations.of(this.eventsDeadLetterQueue).acknowledge({
      id: "AwsSolutions-SQS3",
      reason: "This queue is itself the dead-letter queue of the EventBridge targets; an alarm watches it.",
    });
    for (const { scope, document } of policies) {
      for (const [id, reason] of wildcardFindings(this, document, topicKeyArn)) {
        Validations.of(scope).acknowledge({ id, reason });
      }
    }
  }
}

/** Why a statement's ARN pattern contains `*`, by statement id. */
const WILDCARD_REASONS: Readonly<Record<string, string>> = {
  WriteOwnLogs: "log-group:<own group>:* names the streams of the function's own log group.",
  ReadWriteArtifacts:
    "Objects under the artifact prefix only; new keys carry a timestamp ({prefix}{package}/{package}-{time}.zip), so they cannot be listed in advance.",
  ReadArtifacts: "Objects under the artifact prefix only; keys carry a timestamp and packages are configuration.",
  ReadWriteArtifactPointers:
    "Parameters under PARAMETER_PREFIX only: one artifact-key per package, and packages are configuration.",
  ReadWriteLayerParameters:
    "Parameters under PARAMETER_PREFIX only: artifact-key and layer-version-arn per package, and packages are configuration.",
  ListPackageParameters: "The PARAMETER_PREFIX path and the parameters below it.",
  ApplyParameterSharePolicies:
    "The layer-version-arn parameters under PARAMETER_PREFIX, and only when RAM calls on this role's behalf (aws:CalledVia).",
  PublishLayers: "Layers named LAYER_NAME_PREFIX + package in this account and Region; packages are configuration.",
  ManageLayerVersions:
    "Versions of the layers named LAYER_NAME_PREFIX + package; version numbers are assigned by Lambda.",
  ListOrganizationTree:
    "Roots and OUs of the organization (read-only listing to expand SHARE_OU_IDS into accounts); OU ids below a configured OU are discovered at run time.",
  ExtendParameterShares:
    "Resource shares of this account and Region, limited to layer-sync-* shares without external principals and to ssm:Parameter resources.",
  PruneParameterShares:
    "Resource shares of this account and Region, limited to layer-sync-* shares without external principals (share ARNs end in a RAM-assigned id).",
  DecryptRepositoryToken:
    "The AWS managed aws/ssm key's id is not known at synth time: key/* of this account, limited by kms:ViaService (SSM) and kms:EncryptionContext:PARAMETER_ARN to the one token parameter.",
};

/** Statements whose actions have no resource-level permissions, so `*` is the only valid resource. */
const UNSCOPED_REASONS: Readonly<Record<string, string>> = {
  ListLayers:
    "lambda:ListLayers has no resource type; the Service Authorization Reference lists lambda:ListLayerVersions without one too (the developer guide says layer ARN): * works under either reading.",
  DescribeOrganization: "organizations:DescribeOrganization has no resource type.",
  CreateParameterShares:
    "ram:CreateResourceShare has no resource type; conditioned to ram:RequestedResourceType=ssm:Parameter and ram:RequestedAllowsExternalPrincipals=false.",
  ReadParameterShares: "ram:GetResourceShares and ram:GetResourceShareAssociations have no resource type.",
  ReportPipelineJobResult: "codepipeline:PutJobSuccessResult and PutJobFailureResult have no resource type.",
};

const XRAY_ACTIONS = ["xray:PutTelemetryRecords", "xray:PutTraceSegments"];

interface ResolvedStatement {
  Effect?: string;
  Sid?: string;
  Action?: string | string[];
  Resource?: unknown;
}

/** IAM5 findings of one policy (same rendering as cdk-nag) that have a documented reason. */
function wildcardFindings(
  stack: Stack,
  policyDocument: iam.PolicyDocument,
  topicKeyArn: string | undefined,
): Map<string, string> {
  const document = stack.resolve(policyDocument) as { Statement?: ResolvedStatement[] };
  const topicKey = topicKeyArn === undefined ? undefined : JSON.stringify(stack.resolve(topicKeyArn));
  const found = new Map<string, string[]>();
  const add = (id: string, reason: string) => found.set(id, [...new Set([...(found.get(id) ?? []), reason])]);
  for (const statement of document.Statement ?? []) {
    if (statement.Effect !== "Allow") continue;
    const actions = ([] as string[]).concat(statement.Action ?? []).sort();
    // CDK's grant for publishing to the encrypted failure topic uses kms:GenerateDataKey*, on that key only.
    if (
      topicKey !== undefined &&
      JSON.stringify(actions) === JSON.stringify(["kms:Decrypt", "kms:GenerateDataKey*"]) &&
      JSON.stringify(statement.Resource) === topicKey
    ) {
      add(
        "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
        "CDK's publish grant for the encrypted failure topic (Lambda on-failure destination), on the topic's own key only.",
      );
    }
    for (const resource of ([] as unknown[]).concat(statement.Resource ?? [])) {
      const flat = flattenReference(resource);
      if (!flat.includes("*")) continue;
      const sid = statement.Sid ?? "";
      const reason =
        flat === "*"
          ? (UNSCOPED_REASONS[sid] ??
            (JSON.stringify(actions) === JSON.stringify(XRAY_ACTIONS)
              ? "X-Ray PutTraceSegments/PutTelemetryRecords have no resource type (tracing: true)."
              : undefined))
          : WILDCARD_REASONS[sid];
      if (reason === undefined) continue;
      add(`AwsSolutions-IAM5[Resource::${flat}]`, reason);
    }
  }
  return new Map([...found].map(([id, reasons]) => [id, reasons.join(" ")]));
}

/** cdk-nag's rendering of a resolved CloudFormation value into one string (utils/flatten-cfn-reference). */
export function flattenReference(value: unknown): string {
  if (value === undefined) return "";
  if (typeof value === "string") return value.replace(/\$\{/g, "<").replace(/}/g, ">");
  if (typeof value === "object" && value !== null) {
    const v = value as Record<string, unknown>;
    if (Array.isArray(v["Fn::Join"])) {
      const [delimiter, items] = v["Fn::Join"] as [string, unknown[]];
      return items.map(flattenReference).join(delimiter);
    }
    if (v["Fn::Sub"] !== undefined) return flattenReference(v["Fn::Sub"]);
    if (Array.isArray(v["Fn::GetAtt"])) {
      const [resource, attribute] = v["Fn::GetAtt"] as [unknown, unknown];
      return `<${flattenReference(resource)}.${flattenReference(attribute)}>`;
    }
    if (v["Fn::ImportValue"] !== undefined) return flattenReference(v["Fn::ImportValue"]);
    if (v.Ref !== undefined) return `<${flattenReference(v.Ref)}>`;
  }
  return JSON.stringify(value);
}

/** The subset of CfnParameterProps the template parameters use. */
interface CfnParameterPropsLite {
  default: string;
  allowedValues: string[];
  allowedPattern: string;
  minLength: number;
  maxLength: number;
}

interface Names {
  readonly bucketArn: string;
  readonly objectsArn: string;
  readonly artifactPrefix: string;
  readonly parametersArn: string;
  readonly parameterPathArn: string;
  readonly layerArnParametersArn: string;
  readonly layerNamePrefix: string;
  readonly eventBusArn: string;
  readonly artifactKeyArn: string | undefined;
  readonly organizationsAccount: string;
  readonly organizationSegment: string;
}

function logStatement(logGroupArn: string): iam.PolicyStatement {
  return new iam.PolicyStatement({
    sid: "WriteOwnLogs",
    actions: ["logs:CreateLogStream", "logs:PutLogEvents"],
    resources: [logGroupArn],
  });
}

function listPrefixStatement(n: Names): iam.PolicyStatement {
  return new iam.PolicyStatement({
    sid: "ListArtifactPrefix",
    // Lets HeadObject tell "missing" (404) from "forbidden" (403), and nothing outside the prefix.
    actions: ["s3:ListBucket"],
    resources: [n.bucketArn],
    conditions: { StringLike: { "s3:prefix": [`${n.artifactPrefix}*`] } },
  });
}

function summaryEventStatement(n: Names): iam.PolicyStatement {
  return new iam.PolicyStatement({ sid: "PutSummaryEvent", actions: ["events:PutEvents"], resources: [n.eventBusArn] });
}

/** The sync function's own statements. */
export function syncStatements(n: Names, logGroupArn: string): iam.PolicyStatement[] {
  return [
    logStatement(logGroupArn),
    listPrefixStatement(n),
    new iam.PolicyStatement({
      sid: "ReadWriteArtifacts",
      // HeadObject is authorised by s3:GetObject; multipart uploads need the abort/list-parts actions.
      actions: ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
      resources: [n.objectsArn],
    }),
    ...(n.artifactKeyArn
      ? [
          new iam.PolicyStatement({
            sid: "UseArtifactKey",
            actions: ["kms:Decrypt", "kms:GenerateDataKey"],
            resources: [n.artifactKeyArn],
          }),
        ]
      : []),
    new iam.PolicyStatement({
      sid: "ReadWriteArtifactPointers",
      actions: ["ssm:GetParameter", "ssm:PutParameter", "ssm:GetParameterHistory"],
      resources: [n.parametersArn],
    }),
    summaryEventStatement(n),
  ];
}

/** The publish function's statements (also granted to sync in gate mode, without the log statement). */
export function publishStatements(
  n: Names,
  logGroupArn: string | undefined,
): { scoped: iam.PolicyStatement[]; unscoped: iam.PolicyStatement[] } {
  const scoped = [
    ...(logGroupArn ? [logStatement(logGroupArn)] : []),
    listPrefixStatement(n),
    new iam.PolicyStatement({
      sid: "ReadArtifacts",
      // Also what PublishLayerVersion needs: Lambda reads the zip with the caller's credentials.
      actions: ["s3:GetObject", "s3:GetObjectVersion"],
      resources: [n.objectsArn],
    }),
    ...(n.artifactKeyArn
      ? [new iam.PolicyStatement({ sid: "DecryptArtifacts", actions: ["kms:Decrypt"], resources: [n.artifactKeyArn] })]
      : []),
    new iam.PolicyStatement({
      sid: "ReadWriteLayerParameters",
      actions: ["ssm:GetParameter", "ssm:PutParameter"],
      resources: [n.parametersArn],
    }),
    new iam.PolicyStatement({
      sid: "ListPackageParameters",
      // GetParametersByPath is authorised against the path itself; the /* form covers deeper paths.
      actions: ["ssm:GetParametersByPath"],
      resources: [n.parameterPathArn, n.parametersArn],
    }),
    new iam.PolicyStatement({
      sid: "ApplyParameterSharePolicies",
      // RAM applies a share of a parameter as that parameter's resource policy; only through RAM.
      actions: ["ssm:PutResourcePolicy", "ssm:GetResourcePolicies"],
      resources: [n.layerArnParametersArn],
      conditions: { "ForAnyValue:StringEquals": { "aws:CalledVia": ["ram.amazonaws.com"] } },
    }),
    new iam.PolicyStatement({
      sid: "PublishLayers",
      actions: ["lambda:PublishLayerVersion"],
      resources: [layerArnPattern(n.layerNamePrefix)],
    }),
    new iam.PolicyStatement({
      sid: "ManageLayerVersions",
      actions: [
        "lambda:AddLayerVersionPermission",
        "lambda:RemoveLayerVersionPermission",
        "lambda:GetLayerVersionPolicy",
        "lambda:GetLayerVersion",
        "lambda:DeleteLayerVersion",
      ],
      resources: [layerVersionArnPattern(n.layerNamePrefix)],
    }),
    new iam.PolicyStatement({
      sid: "ListOrganizationTree",
      // Read-only, to expand SHARE_OU_IDS into accounts (nested OUs included). These actions take the
      // parent root or OU; its ARN names the management account and the organization.
      actions: [
        "organizations:ListChildren",
        "organizations:ListAccountsForParent",
        "organizations:ListOrganizationalUnitsForParent",
      ],
      resources: [
        `arn:${Aws.PARTITION}:organizations::${n.organizationsAccount}:root/${n.organizationSegment}/r-*`,
        `arn:${Aws.PARTITION}:organizations::${n.organizationsAccount}:ou/${n.organizationSegment}/ou-*`,
      ],
    }),
    new iam.PolicyStatement({
      sid: "ExtendParameterShares",
      // Only layer-sync's own shares (lib/publish/share.ts names them layer-sync-{package}), only ones
      // that exclude external principals, and only SSM parameters when resources are added.
      actions: ["ram:AssociateResourceShare"],
      resources: [`arn:${Aws.PARTITION}:ram:${Aws.REGION}:${Aws.ACCOUNT_ID}:resource-share/*`],
      conditions: {
        StringLike: { "ram:ResourceShareName": `${RESOURCE_SHARE_NAME_PREFIX}*` },
        StringEqualsIfExists: { "ram:RequestedResourceType": "ssm:Parameter" },
        Bool: { "ram:AllowsExternalPrincipals": "false" },
      },
    }),
    new iam.PolicyStatement({
      sid: "PruneParameterShares",
      // Removing principals that are no longer configured, and deleting a duplicate share left by racing runs.
      actions: ["ram:DisassociateResourceShare", "ram:DeleteResourceShare"],
      resources: [`arn:${Aws.PARTITION}:ram:${Aws.REGION}:${Aws.ACCOUNT_ID}:resource-share/*`],
      conditions: {
        StringLike: { "ram:ResourceShareName": `${RESOURCE_SHARE_NAME_PREFIX}*` },
        Bool: { "ram:AllowsExternalPrincipals": "false" },
      },
    }),
    summaryEventStatement(n),
  ];
  const unscoped = [
    new iam.PolicyStatement({
      sid: "ListLayers",
      actions: ["lambda:ListLayers", "lambda:ListLayerVersions"],
      // lambda:ListLayers has no resource type: "*" is the only valid resource. lambda:ListLayerVersions
      // has none in the Service Authorization Reference either (the developer guide says the layer ARN);
      // granted on a layer ARN it would fail every publish if the reference is right, so "*" (read-only).
      resources: ["*"],
    }),
    new iam.PolicyStatement({
      sid: "DescribeOrganization",
      actions: ["organizations:DescribeOrganization"],
      // organizations:DescribeOrganization has no resource type: "*" is the only valid resource.
      resources: ["*"],
    }),
    new iam.PolicyStatement({
      sid: "CreateParameterShares",
      actions: ["ram:CreateResourceShare"],
      // ram:CreateResourceShare has no resource type: "*" is the only valid resource. The conditions
      // allow only shares of SSM parameters that exclude principals outside the organization (the
      // request must name the parameters and set allowExternalPrincipals=false).
      resources: ["*"],
      conditions: {
        StringEquals: { "ram:RequestedResourceType": "ssm:Parameter" },
        Bool: { "ram:RequestedAllowsExternalPrincipals": "false" },
      },
    }),
    new iam.PolicyStatement({
      sid: "ReadParameterShares",
      actions: ["ram:GetResourceShares", "ram:GetResourceShareAssociations"],
      // ram:GetResourceShares and ram:GetResourceShareAssociations have no resource type: "*" is the only valid resource.
      resources: ["*"],
    }),
  ];
  return { scoped, unscoped };
}

/** Reading the repository token: exactly one parameter, decrypted only through SSM for that parameter. */
export function tokenStatements(tokenParameterArn: string, keyArn: string): iam.PolicyStatement[] {
  return [
    new iam.PolicyStatement({
      sid: "ReadRepositoryToken",
      actions: ["ssm:GetParameter"],
      resources: [tokenParameterArn],
    }),
    new iam.PolicyStatement({
      sid: "DecryptRepositoryToken",
      actions: ["kms:Decrypt"],
      resources: [keyArn],
      conditions: {
        StringEquals: {
          "kms:ViaService": `ssm.${Aws.REGION}.amazonaws.com`,
          "kms:EncryptionContext:PARAMETER_ARN": tokenParameterArn,
        },
      },
    }),
  ];
}

/** Applies a deploy-time condition to a resource; `true` leaves it unconditional. */
function applySwitch(resource: CfnResource, value: Switch): void {
  if (value instanceof CfnCondition) resource.cfnOptions.condition = value;
}

/** A rule that a template condition turns off is kept but DISABLED (its target permission refers to it). */
function applyRuleSwitch(rule: events.Rule, value: Switch): void {
  if (value instanceof CfnCondition) {
    (rule.node.defaultChild as events.CfnRule).state = Fn.conditionIf(
      value.logicalId,
      "ENABLED",
      "DISABLED",
    ).toString();
  }
}

function definedOnly(env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v !== "") out[k] = v;
  return out;
}

const RETENTION_DAYS = new Map<number, logs.RetentionDays>(
  Object.values(logs.RetentionDays)
    .filter((v): v is logs.RetentionDays => typeof v === "number")
    .map((v) => [v as number, v]),
);

function retentionDays(days: number): logs.RetentionDays {
  const value = RETENTION_DAYS.get(days);
  if (value === undefined) {
    throw new Error(`logRetentionDays must be a CloudWatch Logs retention value such as 30, 90, 365 (got ${days})`);
  }
  return value;
}
