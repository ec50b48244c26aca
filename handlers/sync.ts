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
import type { Context } from "aws-lambda";
import type { RunInterrupts } from "../lib/artifacts/store.ts";
import { sdkCodeBuild } from "../lib/builds/codebuild.ts";
import { cloudWatchLogTail, takeBuildResult } from "../lib/builds/codebuild-result.ts";
import { folderBuilds } from "../lib/builds/folder-builds.ts";
import {
  type GateOutcome,
  gateError,
  gateOutcome,
  parseBuildsToken,
  reportJob,
  settleBuilds,
  waitingOutcome,
} from "../lib/codepipeline/gate.ts";
import { boundSummary, putSummaryEvent } from "../lib/codepipeline/notify.ts";
import { loadPublishConfig, loadSyncConfig, parseFolders, type SyncConfig } from "../lib/common/config.ts";
import { RunDeadline } from "../lib/common/deadline.ts";
import { EventValidationError, LayerSyncError, summarise } from "../lib/common/errors.ts";
import { parseSyncEvent, type SyncEvent, unwrapSqsRecords } from "../lib/common/events.ts";
import { checkToken, TokenCache } from "../lib/common/token.ts";
import { type PublishSummary, runPublish } from "../lib/publish/publish.ts";
import { putReleaseEvents, type ReleaseEvent } from "../lib/publish/release-events.ts";
import { createSource } from "../lib/sources/index.ts";
import { runSync, type SyncOptions, type SyncSummary } from "../lib/sync/sync.ts";
import {
  awsClients,
  codeBuildClient,
  consumerClients,
  coreLogger,
  logger,
  logsClient,
  metrics,
  publishClients,
  redactErrors,
} from "./runtime.ts";

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

/** The margin a run keeps before the function's timeout: a tenth of the remaining time, at most 30 s. */
export const DEADLINE_MARGIN_MAX_MS = 30_000;

/**
 * The run's deadline in Lambda: the remaining time less the margin, so that a run which cannot finish fails
 * with its reason (the summary event sent, the error thrown) instead of being killed at the timeout.
 */
export function lambdaDeadline(
  context: Pick<Context, "getRemainingTimeInMillis"> | undefined,
): RunDeadline | undefined {
  const remaining = context?.getRemainingTimeInMillis?.();
  if (typeof remaining !== "number" || !Number.isFinite(remaining)) return undefined;
  const margin = Math.min(DEADLINE_MARGIN_MAX_MS, Math.ceil(remaining / 10));
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  return new RunDeadline(
    Date.now() + remaining - margin,
    `the Lambda function had ${s(remaining)} left when the run started, and the run keeps ${s(margin)} before its timeout`,
  );
}

async function performSync(config: SyncConfig, options: SyncOptions, deadline?: RunDeadline): Promise<SyncSummary> {
  const { s3, ssm } = awsClients();
  const bundle = createSource(config.source, await token(config), deadline ? { runDeadline: deadline } : {});
  // at the deadline, abort the multipart uploads under way (a signal cannot reach a Lambda function)
  const interrupts: RunInterrupts = { aborts: new Set() };
  const abortUploads = () => {
    for (const abort of interrupts.aborts) void abort().catch(() => undefined);
  };
  deadline?.signal.addEventListener("abort", abortUploads, { once: true });
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
      interrupts,
      ...(deadline ? { deadline } : {}),
      ...(config.build && config.artifacts.bucket
        ? {
            builds: folderBuilds({
              codebuild: {
                api: sdkCodeBuild(codeBuildClient()),
                s3,
                bucket: config.artifacts.bucket,
                settings: config.build,
              },
            }),
          }
        : {}),
    });
  } finally {
    deadline?.signal.removeEventListener("abort", abortUploads);
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
async function gate(
  job: { jobId: string; userParameters: string | undefined; continuationToken?: string | undefined },
  config: SyncConfig,
  started: number,
  deadline: RunDeadline | undefined,
) {
  let sync: SyncSummary | undefined;
  let publish: PublishSummary | undefined;
  let outcome: GateOutcome;
  try {
    if (job.continuationToken) {
      ({ sync, publish, outcome } = await continueGate(job.continuationToken, config, started));
    } else {
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
      sync = await performSync(
        config,
        {
          ref: manual.kind === "manual" ? manual.ref : undefined,
          folders: selectFolders(config, manual.kind === "manual" ? manual.paths : undefined),
          force: manual.kind === "manual" && manual.force,
        },
        deadline,
      );
      await finish(config, sync, started);
      publish = await publishReady(sync);
      outcome = gateOutcome(sync, publish);
      // started CodeBuild builds: the job finishes only once every one of them has
      const building = sync.packages.flatMap((p) => (p.reason === "building" && p.build?.id ? [p.build.id] : []));
      if (outcome.succeeded && building.length) outcome = waitingOutcome(sync, building);
    }
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

/** Publish the packages a run produced (not those still building, nor failed ones). */
async function publishReady(sync: SyncSummary): Promise<PublishSummary | undefined> {
  const ready = sync.packages.filter((p) => !p.error && p.reason !== "building").map((p) => p.name);
  if (!ready.length) return undefined;
  const publishConfig = loadPublishConfig({ env: process.env });
  const { s3, ssm, events } = awsClients();
  const home = publishClients();
  const withConsumers = (publishConfig.consumers?.source ?? "none") !== "none";
  const releases: ReleaseEvent[] = [];
  const summary = await runPublish(
    publishConfig,
    { kind: "packages", packages: ready, trigger: "manual" },
    {
      ...home,
      ...(withConsumers ? { consumers: consumerClients(home.organizations) } : {}),
      s3,
      ssm,
      clock: () => new Date(),
      logger: coreLogger,
      onRelease: (e) => releases.push(e),
    },
  );
  if (publishConfig.summaryEventBus && releases.length) {
    await putReleaseEvents(events, publishConfig.summaryEventBus, releases, coreLogger);
  }
  return summary;
}

/**
 * A gate's later invocation: look at the builds its token names. While any runs, continue with the same token;
 * once all have finished, settle each as the build-finished handler does (idempotent: a build it already took
 * is "unchanged"), publish what was built, and finish the job, failing it if any build failed.
 */
async function continueGate(token: string, config: SyncConfig, started: number) {
  const build = config.build;
  const bucket = config.artifacts.bucket as string;
  const projects = [build?.projects.x86_64, build?.projects.arm64].filter((p): p is string => p !== undefined);
  if (!build) throw new EventValidationError("a continuation token without build settings");
  const builds = parseBuildsToken(token, projects);
  const { s3, ssm } = awsClients();
  const finishedConfig = {
    bucket,
    artifactPrefix: config.artifacts.artifactPrefix,
    parameterPrefix: config.artifacts.parameterPrefix,
    build,
  };
  const settled = await settleBuilds(sdkCodeBuild(codeBuildClient()), builds, (b, status, artifactSha256) =>
    takeBuildResult(
      finishedConfig,
      { kind: "finished", project: b.project, id: b.id, uuid: b.uuid, arn: undefined, status, artifactSha256 },
      {
        s3,
        ssm,
        logs: cloudWatchLogTail(logsClient()),
        clock: () => new Date(),
        workDir: "/tmp/layer-sync",
        exclusiveWorkDir: process.env.AWS_LAMBDA_RUNTIME_API !== undefined,
        logger: coreLogger,
      },
    ),
  );
  if (!settled) {
    return {
      sync: undefined,
      publish: undefined,
      outcome: waitingOutcome(
        undefined,
        builds.map((b) => b.id),
      ),
    };
  }
  const first = settled[0];
  const sync: SyncSummary = {
    commit: first?.commit ?? "",
    ref: first?.ref ?? "",
    strategy: "none",
    packages: settled.flatMap((s) => s.packages),
    requests: { total: 0 },
  };
  await finish(config, sync, started);
  const publish = await publishReady(sync);
  return { sync, publish, outcome: gateOutcome(sync, publish) };
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
  const config = loadSyncConfig({ env: process.env }, { requireBucket: true });
  const parsed = parseSyncEvent(event, config.pipelineName);
  if (parsed.kind === "ignored") {
    logger.info("event ignored", { reason: parsed.reason });
    return { ignored: parsed.reason };
  }
  const deadline = lambdaDeadline(context);
  let summary: SyncSummary;
  try {
    if (parsed.kind === "job") return await gate(parsed, config, started, deadline);
    summary = await performSync(
      config,
      {
        ref: parsed.kind === "manual" ? parsed.ref : undefined,
        folders: selectFolders(config, parsed.kind === "manual" ? parsed.paths : undefined),
        dryRun: parsed.kind === "manual" && parsed.dryRun,
        force: parsed.kind === "manual" && parsed.force,
      },
      deadline,
    );
  } finally {
    deadline?.dispose();
  }
  await finish(config, summary, started);
  if (summary.packages.some((p) => p.error)) throw new SyncFailedError(summary);
  // an async invocation's result goes to its destination, which takes 256 KB
  return boundSummary(summary);
}

export const handler = middy(syncHandler).use(injectLambdaContext(logger)).use(logMetrics(metrics)).use(redactErrors());
