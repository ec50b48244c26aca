/**
 * Alarms and notifications: the failure topic (optionally with its own key and an e-mail subscription), the
 * dead-letter queue of the EventBridge targets, and the alarms that publish to the topic.
 */

import type { CfnResource } from "aws-cdk-lib";
import { Aws, CfnCondition, Duration, Fn, RemovalPolicy, type Stack } from "aws-cdk-lib";
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch";
import * as cloudwatchActions from "aws-cdk-lib/aws-cloudwatch-actions";
import * as iam from "aws-cdk-lib/aws-iam";
import * as kms from "aws-cdk-lib/aws-kms";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import * as sns from "aws-cdk-lib/aws-sns";
import * as sqs from "aws-cdk-lib/aws-sqs";
import type { LayerSyncOptions } from "../settings.ts";
import { applySwitch, type Resolved } from "./resolved.ts";

export interface Notifications {
  readonly failureTopic: sns.Topic;
  /** The topic's key (in template mode it exists only when `topicKeyOn` holds). */
  readonly topicKey: kms.Key | undefined;
  /** Template mode: the condition the topic key hangs on (TopicEncryption=true). */
  readonly topicKeyOn: CfnCondition | undefined;
  readonly eventsDeadLetterQueue: sqs.Queue;
}

export function createNotifications(scope: Stack, options: LayerSyncOptions, resolved: Resolved): Notifications {
  const useKey = options.topicEncryption === true ? true : resolved.topicKey;
  const conditional = useKey instanceof CfnCondition ? useKey : undefined;
  const topicKey = useKey
    ? new kms.Key(scope, "FailureTopicKey", {
        description: "layer-sync failure topic encryption",
        enableKeyRotation: true,
        removalPolicy: RemovalPolicy.RETAIN,
      })
    : undefined;
  const failureTopic = new sns.Topic(scope, "FailureTopic", {
    displayName: "layer-sync failures",
    enforceSSL: true,
    ...(topicKey && !conditional && { masterKey: topicKey }),
  });
  if (topicKey && conditional) {
    applySwitch(topicKey.node.defaultChild as kms.CfnKey, conditional);
    // The functions' grants for the conditional key are policies of their own (grants.ts, builds.ts).
    (failureTopic.node.defaultChild as sns.CfnTopic).kmsMasterKeyId = Fn.conditionIf(
      conditional.logicalId,
      topicKey.keyArn,
      Aws.NO_VALUE,
    ).toString();
  }
  // CloudWatch alarms publish as the CloudWatch service; the topic policy (created by enforceSSL)
  // replaces SNS's default policy, so allow this account's alarms explicitly.
  failureTopic.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: "AllowThisAccountsAlarms",
      principals: [new iam.ServicePrincipal("cloudwatch.amazonaws.com")],
      actions: ["sns:Publish"],
      resources: [failureTopic.topicArn],
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
    const subscription = new sns.Subscription(scope, "FailureEmail", {
      topic: failureTopic,
      protocol: sns.SubscriptionProtocol.EMAIL,
      endpoint: resolved.notificationEmail,
    });
    applySwitch(subscription.node.defaultChild as CfnResource, resolved.notify);
  }

  // EventBridge delivers to Lambda asynchronously; events it cannot deliver (e.g. Lambda throttled for
  // the whole retry window) land here and raise an alarm.
  const eventsDeadLetterQueue = new sqs.Queue(scope, "EventsDeadLetterQueue", {
    encryption: sqs.QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
    retentionPeriod: Duration.days(14),
  });
  return { failureTopic, topicKey, topicKeyOn: conditional, eventsDeadLetterQueue };
}

export interface AlarmTargets {
  readonly failureTopic: sns.Topic;
  readonly syncFunction: lambda.IFunction;
  readonly publishFunction: lambda.IFunction;
  readonly eventsDeadLetterQueue: sqs.IQueue;
  /** The sync queue's dead-letter queue: a pipeline run that failed five times. */
  readonly syncDeadLetterQueue: sqs.IQueue | undefined;
}

/**
 * One alarm per real failure signal, each notifying the failure topic: function errors and dead-letter
 * queues. No throttle alarms: nothing reserves concurrency, and sync runs wait in their FIFO queue.
 */
export function createAlarms(scope: Stack, t: AlarmTargets): void {
  const notify = new cloudwatchActions.SnsAction(t.failureTopic);
  const alarm = (id: string, metric: cloudwatch.IMetric, description: string) =>
    new cloudwatch.Alarm(scope, id, {
      metric,
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      alarmDescription: description,
    }).addAlarmAction(notify);
  const fiveMinutes = { period: Duration.minutes(5), statistic: cloudwatch.Stats.SUM };
  alarm("SyncErrorsAlarm", t.syncFunction.metricErrors(fiveMinutes), "layer-sync sync function failed");
  alarm("PublishErrorsAlarm", t.publishFunction.metricErrors(fiveMinutes), "layer-sync publish function failed");
  alarm(
    "EventsDeadLetterAlarm",
    t.eventsDeadLetterQueue.metricApproximateNumberOfMessagesVisible({
      period: Duration.minutes(5),
      statistic: cloudwatch.Stats.MAXIMUM,
    }),
    "EventBridge could not deliver a layer-sync trigger; see the events dead-letter queue",
  );
  if (t.syncDeadLetterQueue) {
    alarm(
      "SyncDeadLetterAlarm",
      t.syncDeadLetterQueue.metricApproximateNumberOfMessagesVisible({
        period: Duration.minutes(5),
        statistic: cloudwatch.Stats.MAXIMUM,
      }),
      "A layer-sync pipeline run failed five times; see the sync dead-letter queue",
    );
  }
}
