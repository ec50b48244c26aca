/**
 * Sync handler: EventBridge "CodePipeline Pipeline Execution State Change" (STARTED, PIPELINE_NAME), a
 * manual payload `{"ref","paths","dryRun","force"}`, or (pipeline-gate mode) a CodePipeline job event.
 * It parses settings and the event once, runs the core, records metrics, puts a summary event, and
 * throws after all packages have finished if any failed, so Lambda's retries and failure destination fire.
 */
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import { MetricUnit } from "@aws-lambda-powertools/metrics";
import { logMetrics } from "@aws-lambda-powertools/metrics/middleware";
import middy from "@middy/core";
import { loadSyncConfig, parseFolders, type SyncConfig } from "../lib/config.ts";
import { EventValidationError, LayerSyncError } from "../lib/errors.ts";
import { parseSyncEvent } from "../lib/events.ts";
import { putSummaryEvent } from "../lib/notify.ts";
import { createSource } from "../lib/sources/index.ts";
import { runSync, type SyncSummary } from "../lib/sync.ts";
import { checkToken, TokenCache } from "../lib/token.ts";
import { awsClients, coreLogger, logger, metrics, redactErrors } from "./runtime.ts";

const tokens = new TokenCache(5 * 60_000);

/** Thrown after a run in which at least one package failed; the message names each failure. */
export class SyncFailedError extends LayerSyncError {
  readonly summary: SyncSummary;
  constructor(summary: SyncSummary) {
    const failed = summary.packages.filter((p) => p.error);
    super(
      `${failed.length} of ${summary.packages.length} package(s) failed at ${summary.commit.slice(0, 7)}: ${failed
        .map((p) => `${p.name}: ${p.error}`)
        .join(" | ")}`,
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

export async function syncHandler(event: unknown): Promise<SyncSummary | { ignored: string }> {
  const started = Date.now();
  const config = loadSyncConfig({ env: process.env }, { requireBucket: true });
  const parsed = parseSyncEvent(event, config.pipelineName);
  if (parsed.kind === "ignored") {
    logger.info("event ignored", { reason: parsed.reason });
    return { ignored: parsed.reason };
  }
  if (parsed.kind === "job") {
    throw new EventValidationError(
      "CodePipeline job events need pipeline-gate mode, which this build does not support yet",
    );
  }
  let folders = config.source.folders;
  if (parsed.kind === "manual" && parsed.paths) {
    const selected = parseFolders(parsed.paths, config.layer.layerNamePrefix);
    if (selected.problems.length) throw new EventValidationError(`"paths" ${selected.problems.join("; ")}`);
    folders = selected.folders;
  }
  const { s3, ssm, events } = awsClients();
  const bundle = createSource(config.source, await token(config));
  let summary: SyncSummary;
  try {
    summary = await runSync(
      config,
      {
        ref: parsed.kind === "manual" ? parsed.ref : undefined,
        folders,
        dryRun: parsed.kind === "manual" && parsed.dryRun,
        force: parsed.kind === "manual" && parsed.force,
      },
      {
        source: bundle.source,
        requestCount: () => bundle.http.requestCount,
        s3,
        ssm,
        clock: () => new Date(),
        workDir: "/tmp/layer-sync",
        // inside Lambda one invocation owns the environment; a local `layer-sync invoke` shares /tmp
        exclusiveWorkDir: process.env.AWS_LAMBDA_RUNTIME_API !== undefined,
        logger: coreLogger,
      },
    );
  } finally {
    await bundle.http.close();
  }
  recordMetrics(summary, started);
  if (config.summaryEventBus) {
    await putSummaryEvent(events, config.summaryEventBus, "Layer Sync Summary", summary, coreLogger);
  }
  if (summary.packages.some((p) => p.error)) throw new SyncFailedError(summary);
  return summary;
}

export const handler = middy(syncHandler).use(injectLambdaContext(logger)).use(logMetrics(metrics)).use(redactErrors());
