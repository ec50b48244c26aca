/**
 * Builds in AWS: one CodeBuild project per architecture (x86_64 on LINUX_CONTAINER, arm64 on ARM_CONTAINER,
 * BUILD_GENERAL1_SMALL, no privileged mode, default networking so pip and npm reach their index), their
 * least-privilege service role and log groups, and the EventBridge rule that hands every finished build of
 * either project to the build-finished function.
 *
 * Every build overrides source, buildspec, image, environment variables, artifacts and timeout
 * (lib/builds/codebuild.ts `startBuildRequest`): the projects' own source is NO_SOURCE with a buildspec that
 * fails, and their artifact location is the build output prefix, so a build started without overrides
 * produces nothing anyone reads.
 *
 * In template mode the whole set hangs on the `HasBuilds` condition (template parameter `Builds`).
 */
import { Aws, CfnCondition, CfnResource, Duration, Fn, RemovalPolicy, type Stack } from "aws-cdk-lib";
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch";
import * as cloudwatchActions from "aws-cdk-lib/aws-cloudwatch-actions";
import * as codebuild from "aws-cdk-lib/aws-codebuild";
import * as events from "aws-cdk-lib/aws-events";
import * as targets from "aws-cdk-lib/aws-events-targets";
import * as iam from "aws-cdk-lib/aws-iam";
import type * as kms from "aws-cdk-lib/aws-kms";
import * as logs from "aws-cdk-lib/aws-logs";
import type * as s3 from "aws-cdk-lib/aws-s3";
import type * as sns from "aws-cdk-lib/aws-sns";
import type * as sqs from "aws-cdk-lib/aws-sqs";
import type { IConstruct } from "constructs";
import { samBuildImage } from "../../lib/builds/builders.ts";
import { type BuildNames, codeBuildStatements, indexTokenStatements } from "./build-iam.ts";
import {
  BUILD_ARCHITECTURES,
  BUILD_OUTPUT_PREFIX,
  BUILD_SOURCE_PREFIX,
  BUILD_TIMEOUT_MINUTES,
  type BuildArchitecture,
  buildLogGroupName,
  buildProjectArn,
  buildProjectName,
  FINISHED_STATES,
} from "./build-names.ts";
import type { BuildFunction } from "./functions.ts";
import { artifactKeyStatement, type ConditionalKeys, conditionalPolicy, topicKeyStatement } from "./grants.ts";
import type { Names } from "./iam.ts";
import type { CheckedPolicy } from "./nag.ts";
import { applySwitch, type Resolved, type Switch } from "./resolved.ts";

/** The image a project names; StartBuild overrides it with the SAM image of the target's runtime. */
export const DEFAULT_BUILD_IMAGES: Readonly<Record<BuildArchitecture, string>> = {
  x86_64: samBuildImage("python3.13", "x86_64"),
  arm64: samBuildImage("python3.13", "arm64"),
};

const ENVIRONMENT_TYPE: Readonly<Record<BuildArchitecture, string>> = {
  x86_64: "LINUX_CONTAINER",
  arm64: "ARM_CONTAINER",
};

/** Runs when a build is started without layer-sync's buildspec override: it fails, saying why. */
export const PLACEHOLDER_BUILDSPEC = [
  "version: 0.2",
  "phases:",
  "  build:",
  "    commands:",
  '      - echo "layer-sync starts every build with its own source and buildspec; this project does nothing by itself" && exit 1',
  "",
].join("\n");

export interface BuildInputs {
  readonly resolved: Resolved;
  readonly names: Names;
  readonly artifactBucket: s3.IBucket;
  readonly artifactKey: kms.IKey | undefined;
  /** Template mode: the keys that exist only when their conditions hold. */
  readonly conditionalKeys?: ConditionalKeys;
  readonly build: BuildFunction;
  readonly failureTopic: sns.ITopic;
  readonly deliver: { deadLetterQueue: sqs.IQueue; retryAttempts: number; maxEventAge: Duration };
}

export interface Builds {
  readonly projects: Readonly<Record<BuildArchitecture, codebuild.CfnProject>>;
  /** One service role per project, so each writes only its own architecture's output. */
  readonly projectRoles: Readonly<Record<BuildArchitecture, iam.Role>>;
  readonly projectLogs: Readonly<Record<BuildArchitecture, logs.LogGroup>>;
  readonly rule: events.Rule;
  readonly names: BuildNames;
  /** The policies with wildcard patterns, for the cdk-nag acknowledgements. */
  readonly policies: CheckedPolicy[];
}

/** The log groups of the two projects, created first: their ARNs go into every build statement. */
export function createBuildLogGroups(
  scope: Stack,
  retention: logs.RetentionDays,
): Record<BuildArchitecture, logs.LogGroup> {
  const make = (arch: BuildArchitecture, id: string) =>
    new logs.LogGroup(scope, id, {
      logGroupName: buildLogGroupName(arch),
      retention,
      // Named after the project: a group kept after the stack is deleted would block creating it again.
      removalPolicy: RemovalPolicy.DESTROY,
    });
  return { x86_64: make("x86_64", "BuildProjectX8664LogGroup"), arm64: make("arm64", "BuildProjectArm64LogGroup") };
}

export function buildNamesOf(bucket: s3.IBucket, projectLogs: Record<BuildArchitecture, logs.LogGroup>): BuildNames {
  const project = (arch: BuildArchitecture) => ({
    projectArn: buildProjectArn(arch),
    logGroupArn: `arn:${Aws.PARTITION}:logs:${Aws.REGION}:${Aws.ACCOUNT_ID}:log-group:${buildLogGroupName(arch)}`,
    logStreamsArn: projectLogs[arch].logGroupArn,
    outputObjectsArn: bucket.arnForObjects(`${BUILD_OUTPUT_PREFIX}${arch}/*`),
  });
  return {
    projectArns: BUILD_ARCHITECTURES.map(buildProjectArn),
    logGroupArns: BUILD_ARCHITECTURES.map((a) => projectLogs[a].logGroupArn),
    projects: { x86_64: project("x86_64"), arm64: project("arm64") },
    sourcePrefix: BUILD_SOURCE_PREFIX,
    outputPrefix: BUILD_OUTPUT_PREFIX,
    sourceObjectsArn: bucket.arnForObjects(`${BUILD_SOURCE_PREFIX}*`),
    outputObjectsArn: bucket.arnForObjects(`${BUILD_OUTPUT_PREFIX}*`),
  };
}

export function createBuilds(
  scope: Stack,
  input: BuildInputs,
  projectLogs: Record<BuildArchitecture, logs.LogGroup>,
): Builds {
  const { resolved, names } = input;
  const b = buildNamesOf(input.artifactBucket, projectLogs);
  const created: IConstruct[] = [...Object.values(projectLogs)];
  const policies: CheckedPolicy[] = [];

  const role = (arch: BuildArchitecture, id: string) => {
    const r = new iam.Role(scope, id, {
      // Only CodeBuild, only for this account's project of this architecture (confused-deputy guard).
      assumedBy: new iam.ServicePrincipal("codebuild.amazonaws.com").withConditions({
        StringEquals: { "aws:SourceAccount": Aws.ACCOUNT_ID },
        ArnLike: { "aws:SourceArn": b.projects[arch].projectArn },
      }),
      description: `layer-sync CodeBuild ${arch} builds: read the build source, write the ${arch} build output and the build logs`,
    });
    for (const s of codeBuildStatements(names, b, arch)) r.addToPolicy(s);
    created.push(r);
    const defaultPolicy = r.node.tryFindChild("DefaultPolicy");
    if (defaultPolicy instanceof iam.Policy) policies.push({ scope: defaultPolicy, document: defaultPolicy.document });
    return r;
  };
  const projectRoles = {
    x86_64: role("x86_64", "BuildProjectRoleX8664"),
    arm64: role("arm64", "BuildProjectRoleArm64"),
  };

  let tokenPolicy: iam.CfnPolicy | undefined;
  if (resolved.indexTokenParameterArn !== undefined && resolved.hasIndexToken !== false) {
    const document = new iam.PolicyDocument({
      // The parameter's key is not known: key/* of this account, only through SSM and for that parameter.
      statements: indexTokenStatements(
        resolved.indexTokenParameterArn,
        `arn:${Aws.PARTITION}:kms:${Aws.REGION}:${Aws.ACCOUNT_ID}:key/*`,
      ),
    });
    tokenPolicy = new iam.CfnPolicy(scope, "BuildProjectIndexTokenPolicy", {
      policyName: "BuildProjectIndexTokenPolicy",
      roles: BUILD_ARCHITECTURES.map((arch) => projectRoles[arch].roleName),
      policyDocument: document,
    });
    applySwitch(tokenPolicy, resolved.hasIndexToken);
    policies.push({ scope: tokenPolicy, document });
  }

  const conditionalArtifactKey = input.conditionalKeys?.artifact;
  // With builds a template condition too, a key policy needs both conditions.
  const both = (on: CfnCondition, id: string) =>
    resolved.builds instanceof CfnCondition
      ? new CfnCondition(scope, id, { expression: Fn.conditionAnd(on, resolved.builds) })
      : on;
  if (conditionalArtifactKey) {
    policies.push(
      conditionalPolicy(
        scope,
        "BuildArtifactKeyPolicy",
        [input.build.role, projectRoles.x86_64, projectRoles.arm64],
        [artifactKeyStatement(conditionalArtifactKey.key.keyArn, true)],
        both(conditionalArtifactKey.on, "HasArtifactKeyWithBuilds"),
      ),
    );
  }
  const conditionalTopicKey = input.conditionalKeys?.topic;
  if (conditionalTopicKey) {
    policies.push(
      conditionalPolicy(
        scope,
        "BuildTopicKeyPolicy",
        [input.build.role],
        [topicKeyStatement(conditionalTopicKey.key.keyArn)],
        both(conditionalTopicKey.on, "HasTopicKeyWithBuilds"),
      ),
    );
  }

  const project = (arch: BuildArchitecture, id: string) => {
    const p = new codebuild.CfnProject(scope, id, {
      name: buildProjectName(arch),
      description: `layer-sync builds of ${arch} layers (every build overrides source, buildspec, image and artifacts)`,
      serviceRole: projectRoles[arch].roleArn,
      source: { type: "NO_SOURCE", buildSpec: PLACEHOLDER_BUILDSPEC },
      artifacts: {
        type: "S3",
        location: input.artifactBucket.bucketName,
        // Only where this project's role may write; every build overrides the location anyway.
        path: `${BUILD_OUTPUT_PREFIX}${arch}`,
        name: "unused",
        packaging: "NONE",
        namespaceType: "NONE",
      },
      environment: {
        type: ENVIRONMENT_TYPE[arch],
        computeType: "BUILD_GENERAL1_SMALL",
        image: DEFAULT_BUILD_IMAGES[arch],
        imagePullCredentialsType: "CODEBUILD",
        privilegedMode: false,
      },
      timeoutInMinutes: BUILD_TIMEOUT_MINUTES,
      // Beyond it CodeBuild refuses StartBuild (builds-working.html); the target then fails that sync run.
      concurrentBuildLimit: resolved.concurrentBuildLimit,
      logsConfig: {
        cloudWatchLogs: { status: "ENABLED", groupName: projectLogs[arch].logGroupName },
        s3Logs: { status: "DISABLED" },
      },
      ...(input.artifactKey && { encryptionKey: input.artifactKey.keyArn }),
      ...(conditionalArtifactKey && {
        encryptionKey: Fn.conditionIf(
          conditionalArtifactKey.on.logicalId,
          conditionalArtifactKey.key.keyArn,
          Aws.NO_VALUE,
        ).toString(),
      }),
    });
    // CodeBuild checks the role when the project is created, and writes to the group from the first build.
    p.node.addDependency(projectRoles[arch]);
    p.node.addDependency(projectLogs[arch]);
    // (A DependsOn on a resource whose template condition is false would fail the deployment.)
    if (tokenPolicy && resolved.hasIndexToken === true) p.addDependency(tokenPolicy);
    created.push(p);
    return p;
  };
  const projects = { x86_64: project("x86_64", "BuildProjectX8664"), arm64: project("arm64", "BuildProjectArm64") };

  const rule = new events.Rule(scope, "BuildFinishedRule", {
    description: "Takes the output of a finished layer-sync CodeBuild build (or reports its failure)",
    eventPattern: {
      source: ["aws.codebuild"],
      detailType: ["CodeBuild Build State Change"],
      detail: {
        "project-name": BUILD_ARCHITECTURES.map(buildProjectName),
        "build-status": [...FINISHED_STATES],
      },
    },
  });
  created.push(rule);
  addTarget(rule, input, resolved.builds);
  const alarm = new cloudwatch.Alarm(scope, "BuildErrorsAlarm", {
    metric: input.build.fn.metricErrors({ period: Duration.minutes(5), statistic: cloudwatch.Stats.SUM }),
    threshold: 1,
    evaluationPeriods: 1,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    alarmDescription: "layer-sync build-finished function failed (a build failed, or its output was refused)",
  });
  alarm.addAlarmAction(new cloudwatchActions.SnsAction(input.failureTopic));
  created.push(alarm, input.build.fn, input.build.role, input.build.logs);

  switchAll(created, resolved.builds);
  return { projects, projectRoles, projectLogs, rule, names: b, policies };
}

/**
 * The rule's target: the build-finished function, with the retries and dead-letter queue of the other rules.
 * The queue's policy is shared with those rules and is not conditional, so in template mode its statement
 * for this rule names the rule only when the rule exists (CDK's own statement would Ref a missing rule).
 */
function addTarget(rule: events.Rule, input: BuildInputs, on: Switch): void {
  const { deadLetterQueue, ...retries } = input.deliver;
  if (!(on instanceof CfnCondition)) {
    rule.addTarget(new targets.LambdaFunction(input.build.fn, input.deliver));
    return;
  }
  rule.addTarget(new targets.LambdaFunction(input.build.fn, retries));
  (rule.node.defaultChild as events.CfnRule).addPropertyOverride(
    "Targets.0.DeadLetterConfig.Arn",
    deadLetterQueue.queueArn,
  );
  deadLetterQueue.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: "AllowBuildFinishedRule",
      principals: [new iam.ServicePrincipal("events.amazonaws.com")],
      actions: ["sqs:SendMessage"],
      resources: [deadLetterQueue.queueArn],
      // "none" is no ARN, so with Builds false the statement matches nothing.
      conditions: { ArnEquals: { "aws:SourceArn": Fn.conditionIf(on.logicalId, rule.ruleArn, "none") } },
    }),
  );
}

/** Applies a template condition to every CloudFormation resource under the given constructs. */
function switchAll(constructs: readonly IConstruct[], on: Switch): void {
  if (on === true || on === false) return;
  for (const c of constructs) {
    for (const node of c.node.findAll()) {
      // The index token policy keeps its own (narrower) condition.
      if (node instanceof CfnResource && node.cfnOptions.condition === undefined) applySwitch(node, on);
    }
  }
}
