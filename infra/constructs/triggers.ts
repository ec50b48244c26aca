/**
 * Triggers: the CodePipeline STARTED rule (sync), the Parameter Store Change rule (publish) and the daily
 * reconcile schedule (publish). EventBridge delivers asynchronously, with retries and the events DLQ.
 */
import { Duration, type Stack, Token } from "aws-cdk-lib";
import * as events from "aws-cdk-lib/aws-events";
import * as targets from "aws-cdk-lib/aws-events-targets";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import type * as sqs from "aws-cdk-lib/aws-sqs";
import { parameterNameSpellings } from "../names.ts";
import { applyRuleSwitch, type Resolved } from "./resolved.ts";

export interface TriggerInputs {
  readonly resolved: Resolved;
  readonly syncFunction: lambda.IFunction;
  readonly publishFunction: lambda.IFunction;
  readonly eventsDeadLetterQueue: sqs.IQueue;
}

export function createTriggers(scope: Stack, input: TriggerInputs): void {
  const { resolved } = input;
  const deliver = {
    deadLetterQueue: input.eventsDeadLetterQueue,
    retryAttempts: 185,
    maxEventAge: Duration.hours(24),
  };
  if (resolved.eventTriggers !== false) {
    const started = new events.Rule(scope, "PipelineStartedRule", {
      description: `Starts a layer-sync run when ${Token.isUnresolved(resolved.pipelineName) ? "the pipeline" : resolved.pipelineName} starts`,
      eventPattern: {
        source: ["aws.codepipeline"],
        detailType: ["CodePipeline Pipeline Execution State Change"],
        detail: { pipeline: [resolved.pipelineName], state: ["STARTED"] },
      },
      targets: [new targets.LambdaFunction(input.syncFunction, deliver)],
    });
    applyRuleSwitch(started, resolved.eventTriggers);
    const [withSlash, withoutSlash] = parameterNameSpellings(resolved.parameterPrefix, "/*/artifact-key");
    const changed = new events.Rule(scope, "ArtifactKeyChangedRule", {
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
      targets: [new targets.LambdaFunction(input.publishFunction, deliver)],
    });
    applyRuleSwitch(changed, resolved.eventTriggers);
  }
  if (resolved.reconcile !== false) {
    const reconcile = new events.Rule(scope, "ReconcileScheduleRule", {
      description: "Daily reconcile: publishes any package whose latest artifact has no layer version yet",
      schedule: events.Schedule.expression(resolved.reconcileSchedule),
      targets: [
        new targets.LambdaFunction(input.publishFunction, {
          ...deliver,
          event: events.RuleTargetInput.fromObject({}),
        }),
      ],
    });
    applyRuleSwitch(reconcile, resolved.reconcile);
  }
}
