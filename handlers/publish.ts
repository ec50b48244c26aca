/**
 * Publish handler: an EventBridge "Parameter Store Change" event for `{PARAMETER_PREFIX}/{package}/artifact-key`
 * (Create or Update), a manual payload `{"package"}` / `{"packages"}`, or `{}` to reconcile every package under
 * the prefix. It parses settings and the event once, runs the publish core, records metrics, puts a
 * "Layer Publish Summary" event when SUMMARY_EVENT_BUS is set, and throws after all packages have finished if
 * any failed (in any Region), so Lambda's retries and failure destination fire. The clients of the other
 * PUBLISH_REGIONS come from `regionClients` (runtime.ts), one set per Region, reused while the environment stays warm.
 */
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import { MetricUnit } from "@aws-lambda-powertools/metrics";
import { logMetrics } from "@aws-lambda-powertools/metrics/middleware";
import middy from "@middy/core";
import { putSummaryEvent } from "../lib/codepipeline/notify.ts";
import { loadPublishConfig } from "../lib/common/config.ts";
import { parsePublishEvent } from "../lib/common/events.ts";
import { PublishFailedError, type PublishSummary, runPublish } from "../lib/publish/publish.ts";
import { putReleaseEvents, type ReleaseEvent } from "../lib/publish/release-events.ts";
import {
  RollbackFailedError,
  type RollbackSummary,
  rollbackReleaseEvents,
  runRollback,
} from "../lib/publish/rollback.ts";
import { awsClients, consumerClients, coreLogger, logger, metrics, publishClients, redactErrors } from "./runtime.ts";

function recordMetrics(summary: PublishSummary, started: number): void {
  const ok = summary.packages.filter((p) => p.error === undefined);
  metrics.addMetric("PackagesPublished", MetricUnit.Count, ok.filter((p) => p.published).length);
  metrics.addMetric("PackagesUnchanged", MetricUnit.Count, ok.filter((p) => p.reason === "unchanged").length);
  metrics.addMetric("PackagesFailed", MetricUnit.Count, summary.packages.length - ok.length);
  metrics.addMetric(
    "VersionsDeleted",
    MetricUnit.Count,
    summary.packages.reduce((n, p) => n + p.regions.reduce((m, r) => m + r.deleted.length, 0), 0),
  );
  metrics.addMetric("DurationMs", MetricUnit.Milliseconds, Date.now() - started);
}

export async function publishHandler(event: unknown): Promise<PublishSummary | RollbackSummary | { ignored: string }> {
  const started = Date.now();
  const config = loadPublishConfig({ env: process.env }, { homeRegion: process.env.AWS_REGION });
  const parsed = parsePublishEvent(event, config.artifacts.parameterPrefix);
  if (parsed.kind === "ignored") {
    logger.info("event ignored", { reason: parsed.reason });
    return { ignored: parsed.reason };
  }
  const { s3, ssm, events } = awsClients();
  if (parsed.kind === "rollback") {
    const rollbackClients = publishClients();
    const rolled = await runRollback(
      config,
      { package: parsed.package, to: parsed.to },
      {
        ...rollbackClients,
        ...((config.consumers?.source ?? "none") !== "none"
          ? { consumers: consumerClients(rollbackClients.organizations) }
          : {}),
        ssm,
        clock: () => new Date(),
        logger: coreLogger,
      },
    );
    if (config.summaryEventBus) {
      await putReleaseEvents(events, config.summaryEventBus, rollbackReleaseEvents(rolled), coreLogger);
    }
    if (rolled.error !== undefined) throw new RollbackFailedError(rolled);
    return rolled;
  }
  const releases: ReleaseEvent[] = [];
  const home = publishClients();
  const summary = await runPublish(config, parsed, {
    ...home,
    ...((config.consumers?.source ?? "none") !== "none" ? { consumers: consumerClients(home.organizations) } : {}),
    s3,
    ssm,
    clock: () => new Date(),
    logger: coreLogger,
    onRelease: (event) => releases.push(event),
  });
  if (config.summaryEventBus && releases.length) {
    await putReleaseEvents(events, config.summaryEventBus, releases, coreLogger);
  }
  recordMetrics(summary, started);
  if (config.summaryEventBus) {
    await putSummaryEvent(events, config.summaryEventBus, "Layer Publish Summary", summary, coreLogger);
  }
  if (summary.packages.some((p) => p.error !== undefined)) throw new PublishFailedError(summary);
  return summary;
}

export const handler = middy(publishHandler)
  .use(injectLambdaContext(logger))
  .use(logMetrics(metrics))
  .use(redactErrors());
