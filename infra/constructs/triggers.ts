/**
 * Triggers: the CodePipeline STARTED rule (sync), the Parameter Store Change rule (publish) and the daily
 * reconcile schedule (publish). EventBridge delivers asynchronously, with retries and the events DLQ.
 */
import { Duration, type Stack, Token } from "aws-cdk-lib";
import * as events from "aws-cdk-lib/aws-events";
import * as targets from "aws-cdk-lib/aws-events-targets";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import { SqsEventSource } from "aws-cdk-lib/aws-lambda-event-sources";
import * as sqs from "aws-cdk-lib/aws-sqs";
import { parameterNameSpellings } from "../names.ts";
import { SYNC_TIMEOUT } from "./functions.ts";
import { applyRuleSwitch, type Resolved } from "./resolved.ts";

/**
 * AWS's guidance for an SQS event source (Lambda developer guide, "Configuring a queue to use with Lambda"):
 * a visibility timeout of at least six times the function's timeout, so Lambda can retry a throttled
 * invocation before the message becomes visible again, and a maxReceiveCount of at least 5, so throttling
 * alone does not send a message to the dead-letter queue.
 */
export const VISIBILITY_TIMEOUT_FACTOR = 6;
export const SYNC_MAX_RECEIVE_COUNT = 5;

export interface TriggerInputs {
  readonly resolved: Resolved;
  readonly syncFunction: lambda.IFunction;
  readonly publishFunction: lambda.IFunction;
  readonly eventsDeadLetterQueue: sqs.IQueue;
}

/** The queue that serialises sync runs, and its dead-letter queue (undefined when event triggers are off). */
export interface SyncQueue {
  readonly queue: sqs.Queue;
  readonly deadLetterQueue: sqs.Queue;
}

/**
 * STARTED events go through an SQS FIFO queue with one message group, so sync runs one at a time, in order,
 * without reserved concurrency (no throttles, no false throttle alarms, works with a concurrency quota of 10).
 * FIFO delivers a group's next message only after the batch in flight is deleted; batch size 1, and the
 * event source's maxConcurrency is SQS's minimum (2), which a single group never reaches. Content-based
 * deduplication drops the same event delivered twice within 5 minutes (EventBridge retries carry the same id).
 */
function syncQueue(scope: Stack, syncFunction: lambda.IFunction): SyncQueue {
  const deadLetterQueue = new sqs.Queue(scope, "SyncDeadLetterQueue", {
    fifo: true,
    encryption: sqs.QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
    retentionPeriod: Duration.days(14),
  });
  const queue = new sqs.Queue(scope, "SyncQueue", {
    fifo: true,
    contentBasedDeduplication: true,
    encryption: sqs.QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
    // Six times the function's timeout (90 minutes): a run in progress is never delivered a second time, and
    // a throttled invocation has time to be retried. FIFO: the next run waits behind this message meanwhile.
    visibilityTimeout: Duration.seconds(VISIBILITY_TIMEOUT_FACTOR * SYNC_TIMEOUT.toSeconds()),
    retentionPeriod: Duration.days(4),
    // A run that fails five times goes to the dead-letter queue (an alarm watches it); the next run proceeds.
    deadLetterQueue: { queue: deadLetterQueue, maxReceiveCount: SYNC_MAX_RECEIVE_COUNT },
  });
  syncFunction.addEventSource(
    new SqsEventSource(queue, { batchSize: 1, maxConcurrency: 2, reportBatchItemFailures: true }),
  );
  return { queue, deadLetterQueue };
}

/** How every rule delivers: up to 24 hours of retries, then the events dead-letter queue. */
export function deliveryOptions(eventsDeadLetterQueue: sqs.IQueue) {
  return { deadLetterQueue: eventsDeadLetterQueue, retryAttempts: 185, maxEventAge: Duration.hours(24) };
}

export function createTriggers(scope: Stack, input: TriggerInputs): SyncQueue | undefined {
  const { resolved } = input;
  const deliver = deliveryOptions(input.eventsDeadLetterQueue);
  let queued: SyncQueue | undefined;
  if (resolved.eventTriggers !== false) {
    queued = syncQueue(scope, input.syncFunction);
    const started = new events.Rule(scope, "PipelineStartedRule", {
      description: `Starts a layer-sync run when ${Token.isUnresolved(resolved.pipelineName) ? "the pipeline" : resolved.pipelineName} starts`,
      eventPattern: {
        source: ["aws.codepipeline"],
        detailType: ["CodePipeline Pipeline Execution State Change"],
        detail: { pipeline: [resolved.pipelineName], state: ["STARTED"] },
      },
      targets: [new targets.SqsQueue(queued.queue, { ...deliver, messageGroupId: "layer-sync" })],
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
  return queued;
}
