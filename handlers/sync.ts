/**
 * Sync handler: EventBridge "CodePipeline Pipeline Execution State Change" (STARTED, PIPELINE_NAME), a
 * manual payload `{"ref","paths","dryRun","force"}`, or (pipeline-gate mode) a CodePipeline job event.
 * It parses settings and the event once, runs the core, records metrics, puts a summary event, and
 * throws after all packages have finished if any failed, so Lambda's retries and failure destination fire.
 */
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import { MetricUnit } from "@aws-lambda-powertools/metrics";
import { logMetrics } from "@aws-lambda-powertools/metrics/middleware";
import { CodePipelineClient } from "@aws-sdk/client-codepipeline";
import middy from "@middy/core";
import { type GateOutcome, gateError, gateOutcome, reportJob } from "../lib/pipeline/gate.ts";
import { putSummaryEvent } from "../lib/pipeline/notify.ts";
import { type PublishSummary, runPublish } from "../lib/publish/publish.ts";
import { loadPublishConfig, loadSyncConfig, parseFolders, type SyncConfig } from "../lib/shared/config.ts";
import { EventValidationError, LayerSyncError, summarise } from "../lib/shared/errors.ts";
import { parseSyncEvent, type SyncEvent, unwrapSqsRecords } from "../lib/shared/events.ts";
import { checkToken, TokenCache } from "../lib/shared/token.ts";
import { createSource } from "../lib/sync/sources/index.ts";
import { runSync, type SyncOptions, type SyncSummary } from "../lib/sync/sync.ts";
import { awsClients, coreLogger, logger, metrics, publishClients, redactErrors } from "./runtime.ts";

const tokens = new TokenCache(5 * 60_000);

/** Thrown after a run in which at least one package failed; the message names each failure. */
export class SyncFailedError extends LayerSyncError {
  readonly summary: SyncSummary;
  constructor(summary: SyncSummary) {
    const failed = summary.packages.filter((p) => p.error);
    super(
      `${failed.length} of ${summary.packages.length} package(s) failed at ${summary.commit.slice(0, 7)}: ${summarise(
        failed.map((p) => `${p.name}: ${p.error}`),
        3,
        " | ",
      )}`,
    );
    this.summary = summary;
  }
}

async function token(config: SyncConfig): Promise<string | undefined> {
  if (config.source.token !== undefined) return checkToken(config.source.token, "SOURCE_TOKEN");
  if (config.source.tokenParameterName) return tokens.get(awsClients().ssm, config.source.tokenParameterName);
  return undefined;
}

function recordMetrics(summary: SyncSummary, started: number): void {
  const ok = summary.packages.filter((p) => !p.error);
  metrics.addMetric(
    "Files",
    MetricUnit.Count,
    ok.reduce((n, p) => n + (p.skipped ? 0 : p.files), 0),
  );
  metrics.addMetric(
    "Bytes",
    MetricUnit.Bytes,
    ok.reduce((n, p) => n + (p.skipped ? 0 : p.bytes), 0),
  );
  metrics.addMetric("SourceRequests", MetricUnit.Count, summary.requests.total);
  metrics.addMetric("PackagesSkipped", MetricUnit.Count, ok.filter((p) => p.skipped).length);
  metrics.addMetric("PackagesFailed", MetricUnit.Count, summary.packages.length - ok.length);
  metrics.addMetric("DurationMs", MetricUnit.Milliseconds, Date.now() - started);
}

async function performSync(config: SyncConfig, options: SyncOptions): Promise<SyncSummary> {
  const { s3, ssm } = awsClients();
  const bundle = createSource(config.source, await token(config));
  try {
    return await runSync(config, options, {
      source: bundle.source,
      requestCount: () => bundle.http.requestCount,
      s3,
      ssm,
      clock: () => new Date(),
      workDir: "/tmp/layer-sync",
      // inside Lambda one invocation owns the environment; a local `layer-sync invoke` shares /tmp
      exclusiveWorkDir: process.env.AWS_LAMBDA_RUNTIME_API !== undefined,
      logger: coreLogger,
    });
  } finally {
    await bundle.http.close();
  }
}

function selectFolders(config: SyncConfig, paths: string[] | undefined) {
  if (!paths) return config.source.folders;
  const selected = parseFolders(paths, config.layer.layerNamePrefix);
  if (selected.problems.length) throw new EventValidationError(`"paths" ${summarise(selected.problems)}`);
  return selected.folders;
}

async function finish(config: SyncConfig, summary: SyncSummary, started: number): Promise<void> {
  recordMetrics(summary, started);
  if (config.summaryEventBus) {
    await putSummaryEvent(awsClients().events, config.summaryEventBus, "Layer Sync Summary", summary, coreLogger);
  }
}

let codepipeline: CodePipelineClient | undefined;

/** The CodePipeline client gate mode reports through, created on first use. */
export function codePipelineClient(): CodePipelineClient {
  codepipeline ??= new CodePipelineClient({});
  return codepipeline;
}

/**
 * Pipeline-gate mode: sync, publish the packages the sync produced, and report the job result. Failures are
 * reported to CodePipeline (the action fails with the message) rather than thrown, which would leave the
 * action waiting until it times out.
 */
async function gate(job: { jobId: string; userParameters: string | undefined }, config: SyncConfig, started: number) {
  let sync: SyncSummary | undefined;
  let publish: PublishSummary | undefined;
  let outcome: GateOutcome;
  try {
    let manual: SyncEvent = { kind: "manual", dryRun: false, force: false };
    if (job.userParameters?.trim()) {
      let raw: unknown;
      try {
        raw = JSON.parse(job.userParameters);
      } catch (error) {
        throw new EventValidationError('the action\'s UserParameters must be JSON such as {"ref":"main"}', {
          cause: error,
        });
      }
      manual = parseSyncEvent(raw, config.pipelineName);
      if (manual.kind !== "manual" || manual.dryRun) {
        throw new EventValidationError('UserParameters accept only {"ref","paths","force"}');
      }
    }
    sync = await performSync(config, {
      ref: manual.kind === "manual" ? manual.ref : undefined,
      folders: selectFolders(config, manual.kind === "manual" ? manual.paths : undefined),
      force: manual.kind === "manual" && manual.force,
    });
    await finish(config, sync, started);
    const ready = sync.packages.filter((p) => !p.error).map((p) => p.name);
    if (ready.length) {
      const publishConfig = loadPublishConfig({ env: process.env });
      const { s3, ssm } = awsClients();
      publish = await runPublish(
        publishConfig,
        { kind: "packages", packages: ready, trigger: "manual" },
        { ...publishClients(), s3, ssm, clock: () => new Date(), logger: coreLogger },
      );
    }
    outcome = gateOutcome(sync, publish);
  } catch (error) {
    outcome = gateError(error);
  }
  // not `message`: the Powertools logger drops that key as reserved, and the reason would never reach CloudWatch
  logger[outcome.succeeded ? "info" : "error"]("pipeline gate result", {
    jobId: job.jobId,
    succeeded: outcome.succeeded,
    detail: outcome.message,
  });
  await reportJob(codePipelineClient(), job.jobId, outcome, `layer-sync-${started}`);
  return { jobId: job.jobId, succeeded: outcome.succeeded, message: outcome.message, sync, publish };
}

export type GateResult = Awaited<ReturnType<typeof gate>>;

/** What an SQS delivery returns: the records to deliver again (this one and every later one, for FIFO order). */
export interface BatchResponse {
  batchItemFailures: { itemIdentifier: string }[];
}

/**
 * An SQS FIFO delivery (the STARTED rule's queue target): each record wraps one EventBridge event; they are
 * run one after another, in order. The first that fails is reported with every record after it, so the queue
 * delivers them again in the same order; the failure is logged.
 */
async function queued(records: { messageId: string; event: unknown }[]): Promise<BatchResponse> {
  for (const [i, record] of records.entries()) {
    try {
      await syncHandler(record.event);
    } catch (error) {
      logger.error("queued sync failed", { messageId: record.messageId, error });
      return { batchItemFailures: records.slice(i).map((r) => ({ itemIdentifier: r.messageId })) };
    }
  }
  return { batchItemFailures: [] };
}

export async function syncHandler(
  event: unknown,
): Promise<SyncSummary | GateResult | BatchResponse | { ignored: string }> {
  const records = unwrapSqsRecords(event);
  if (records) return queued(records);
  const started = Date.now();
  const config = loadSyncConfig({ env: process.env }, { requireBucket: true });
  const parsed = parseSyncEvent(event, config.pipelineName);
  if (parsed.kind === "ignored") {
    logger.info("event ignored", { reason: parsed.reason });
    return { ignored: parsed.reason };
  }
  if (parsed.kind === "job") return gate(parsed, config, started);
  const summary = await performSync(config, {
    ref: parsed.kind === "manual" ? parsed.ref : undefined,
    folders: selectFolders(config, parsed.kind === "manual" ? parsed.paths : undefined),
    dryRun: parsed.kind === "manual" && parsed.dryRun,
    force: parsed.kind === "manual" && parsed.force,
  });
  await finish(config, summary, started);
  if (summary.packages.some((p) => p.error)) throw new SyncFailedError(summary);
  return summary;
}

export const handler = middy(syncHandler).use(injectLambdaContext(logger)).use(logMetrics(metrics)).use(redactErrors());
