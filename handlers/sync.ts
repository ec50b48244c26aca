/**
 * Sync handler: EventBridge "CodePipeline Pipeline Execution State Change" (STARTED, PIPELINE_NAME), a
 * manual payload `{"ref","paths","dryRun","force"}`, an SQS delivery of those, or (pipeline-gate mode) a
 * CodePipeline job event. It parses settings and the event once, runs the core (`syncFromSource`, or
 * `runGateJob` for a job: lib/codepipeline), records metrics, puts a summary event, and throws after all
 * packages have finished if any failed, so Lambda's retries and failure destination fire.
 */
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import { MetricUnit } from "@aws-lambda-powertools/metrics";
import { logMetrics } from "@aws-lambda-powertools/metrics/middleware";
import { CodePipelineClient } from "@aws-sdk/client-codepipeline";
import middy from "@middy/core";
import type { Context } from "aws-lambda";
import { sdkCodeBuild } from "../lib/builds/codebuild.ts";
import { type GateResult, refuseGateJob, refuseJobEvent, runGateJob } from "../lib/codepipeline/gate-job.ts";
import { boundSummary, putSummaryEvent } from "../lib/codepipeline/notify.ts";
import { lambdaDeadline, SyncFailedError, selectFolders, syncFromSource } from "../lib/codepipeline/source-sync.ts";
import { loadPublishConfig, loadSyncConfig, type PublishConfig, type SyncConfig } from "../lib/common/config.ts";
import type { RunDeadline } from "../lib/common/deadline.ts";
import { type JobEvent, parseSyncEvent, unwrapSqsRecords } from "../lib/common/events.ts";
import { TokenCache } from "../lib/common/token.ts";
import type { SyncSummary } from "../lib/sync/sync.ts";
import * as runtime from "./runtime.ts";

const { awsClients, logger, metrics } = runtime;
const tokens = new TokenCache(5 * 60_000);
let codepipeline: CodePipelineClient | undefined;

/** The CodePipeline client gate mode reports through, created on first use. */
export function codePipelineClient(): CodePipelineClient {
  codepipeline ??= new CodePipelineClient({});
  return codepipeline;
}

/** Metrics and the summary event of a sync (of a gate job too, before it publishes). */
async function reportSummary(config: SyncConfig, summary: SyncSummary, started: number): Promise<void> {
  const ok = summary.packages.filter((p) => !p.error);
  const changed = ok.filter((p) => !p.skipped);
  const sum = (key: "files" | "bytes") => changed.reduce((n, p) => n + p[key], 0);
  metrics.addMetric("Files", MetricUnit.Count, sum("files"));
  metrics.addMetric("Bytes", MetricUnit.Bytes, sum("bytes"));
  metrics.addMetric("SourceRequests", MetricUnit.Count, summary.requests.total);
  metrics.addMetric("PackagesSkipped", MetricUnit.Count, ok.length - changed.length);
  metrics.addMetric("PackagesFailed", MetricUnit.Count, summary.packages.length - ok.length);
  metrics.addMetric("DurationMs", MetricUnit.Milliseconds, Date.now() - started);
  const bus = config.summaryEventBus;
  if (bus) await putSummaryEvent(awsClients().events, bus, "Layer Sync Summary", summary, runtime.coreLogger);
}

/** What the sync core and the gate work with: this environment's clients, the token, the clock, the deadline. */
function coreDependencies(deadline: RunDeadline | undefined) {
  const codebuild = sdkCodeBuild(runtime.codeBuildClient());
  return { ...runtime.buildResultDependencies(), codebuild, tokens, deadline };
}

/** Pipeline-gate mode: the publish settings are validated before the job starts, and refused to the job. */
async function gateJob(job: JobEvent, config: SyncConfig, started: number, deadline: RunDeadline | undefined) {
  const gate = {
    ...coreDependencies(deadline),
    codepipeline: codePipelineClient(),
    publishing: runtime.publishClients(),
    events: awsClients().events,
    consumers: () => runtime.consumerClients(runtime.publishClients().organizations),
    onSynced: (summary: SyncSummary) => reportSummary(config, summary, started),
  };
  let publish: PublishConfig;
  try {
    publish = loadPublishConfig({ env: process.env }, { homeRegion: process.env.AWS_REGION });
  } catch (error) {
    return refuseGateJob(job, error, gate);
  }
  return runGateJob(job, { sync: config, publish }, gate);
}

/** What an SQS delivery returns: the records to deliver again (this one and every later one, for FIFO order). */
export interface BatchResponse {
  batchItemFailures: { itemIdentifier: string }[];
}

/**
 * An SQS FIFO delivery (the STARTED rule's queue target): each record wraps one EventBridge event; they are
 * run one after another, in order. The first that fails is reported with every record after it, so the queue
 * delivers them again in the same order; the failure is logged.
 */
async function queued(
  records: { messageId: string; event: unknown }[],
  context: Pick<Context, "getRemainingTimeInMillis"> | undefined,
): Promise<BatchResponse> {
  for (const [i, record] of records.entries()) {
    try {
      await syncHandler(record.event, context);
    } catch (error) {
      logger.error("queued sync failed", { messageId: record.messageId, error });
      return { batchItemFailures: records.slice(i).map((r) => ({ itemIdentifier: r.messageId })) };
    }
  }
  return { batchItemFailures: [] };
}

export async function syncHandler(
  event: unknown,
  context?: Pick<Context, "getRemainingTimeInMillis">,
): Promise<SyncSummary | GateResult | BatchResponse | { ignored: string }> {
  const records = unwrapSqsRecords(event);
  if (records) return queued(records, context);
  const started = Date.now();
  let config: SyncConfig;
  try {
    config = loadSyncConfig({ env: process.env }, { requireBucket: true });
  } catch (error) {
    // a job event's job is failed with the reason (as for publish settings); any other event throws it
    return refuseJobEvent(event, error, { ...runtime.buildResultDependencies(), codepipeline: codePipelineClient() });
  }
  const parsed = parseSyncEvent(event, config.pipelineName);
  if (parsed.kind === "ignored") {
    logger.info("event ignored", { reason: parsed.reason });
    return { ignored: parsed.reason };
  }
  const deadline = lambdaDeadline(context?.getRemainingTimeInMillis?.(), Date.now);
  let summary: SyncSummary;
  try {
    if (parsed.kind === "job") return await gateJob(parsed, config, started, deadline);
    const manual = parsed.kind === "manual" ? parsed : undefined;
    summary = await syncFromSource(
      config,
      {
        ref: manual?.ref,
        folders: selectFolders(config, manual?.paths),
        dryRun: manual?.dryRun ?? false,
        force: manual?.force ?? false,
      },
      coreDependencies(deadline),
    );
  } finally {
    deadline?.dispose();
  }
  await reportSummary(config, summary, started);
  if (summary.packages.some((p) => p.error)) throw new SyncFailedError(summary);
  // an async invocation's result goes to its destination, which takes 256 KB
  return boundSummary(summary);
}

export const handler = middy(syncHandler)
  .use(injectLambdaContext(logger))
  .use(logMetrics(metrics))
  .use(runtime.redactErrors());
