/**
 * A pipeline-gate job, start to end: sync (or, with a continuation token, settle the CodeBuild builds an
 * earlier invocation started), publish the packages that are ready, and report the job's result. Failures
 * are reported to CodePipeline (the action fails with the message) rather than thrown, which would leave the
 * action waiting until it times out; only a result that cannot be reported throws (`GateReportError`).
 * The settings are validated by the caller before the job starts; clients and clock are the caller's.
 */
import type { CodePipelineClient } from "@aws-sdk/client-codepipeline";
import type { EventBridgeClient } from "@aws-sdk/client-eventbridge";
import { type LogTailApi, takeBuildResult } from "../builds/codebuild-result.ts";
import type { PublishConfig, SyncConfig } from "../common/config.ts";
import { ConfigError, EventValidationError } from "../common/errors.ts";
import { parseCodePipelineJob, parseSyncEvent, type SyncEvent } from "../common/events.ts";
import type { SyncSummary } from "../common/summary.ts";
import type { ConsumerClients } from "../publish/consumers.ts";
import { type PublishDependencies, type PublishSummary, runPublish } from "../publish/publish.ts";
import { putReleaseEvents, type ReleaseEvent } from "../publish/release-events.ts";
import {
  type GateOutcome,
  gateError,
  gateOutcome,
  parseBuildsToken,
  reportJob,
  settleBuilds,
  waitingOutcome,
} from "./gate.ts";
import { type SourceSyncDependencies, selectFolders, syncFromSource } from "./source-sync.ts";

/** The job of a CodePipeline "Lambda invoke" action (`parseSyncEvent`'s `job`). */
export interface GateJob {
  jobId: string;
  userParameters: string | undefined;
  continuationToken?: string | undefined;
}

/** Both settings a gate works with, each validated once when the invocation starts. */
export interface GateSettings {
  sync: SyncConfig;
  publish: PublishConfig;
}

export interface GateDependencies extends SourceSyncDependencies {
  codepipeline: CodePipelineClient;
  /** The last lines of a failed build's log. */
  logs: LogTailApi;
  /** Puts the release events when SUMMARY_EVENT_BUS is set. */
  events: EventBridgeClient;
  /** The home Region's publishing clients and the factory of the other Regions' ones. */
  publishing: Pick<PublishDependencies, "lambda" | "ram" | "organizations" | "regionClients">;
  /** The consumer source's clients, asked for only when CONSUMER_SOURCE is not `none`. */
  consumers: () => ConsumerClients;
  /** Told of the sync's summary as soon as there is one, before publishing (metrics, the summary event). */
  onSynced: (summary: SyncSummary) => Promise<void>;
}

export interface GateResult {
  jobId: string;
  succeeded: boolean;
  message: string;
  sync: SyncSummary | undefined;
  publish: PublishSummary | undefined;
}

/** Run a gate job (see the module comment) and report its result. */
export async function runGateJob(job: GateJob, settings: GateSettings, deps: GateDependencies): Promise<GateResult> {
  const executionId = `layer-sync-${deps.clock().getTime()}`;
  let ran: { sync?: SyncSummary | undefined; publish?: PublishSummary | undefined; outcome: GateOutcome };
  try {
    ran = job.continuationToken
      ? await continueWithBuilds(job.continuationToken, settings, deps)
      : await syncAndPublish(job, settings, deps);
  } catch (error) {
    ran = { outcome: gateError(error) };
  }
  return reportGateResult(job, executionId, ran, deps);
}

/** Fail a job whose settings were refused before it started: a ConfigurationError naming the problem. */
export async function refuseGateJob(
  job: GateJob,
  error: unknown,
  deps: Pick<GateDependencies, "codepipeline" | "clock" | "logger">,
): Promise<GateResult> {
  return reportGateResult(job, `layer-sync-${deps.clock().getTime()}`, { outcome: gateError(error) }, deps);
}

/**
 * The sync settings could not be loaded (`error`): when `event` is a CodePipeline job event, refuse its job
 * with the reason, as `refuseGateJob` (throwing would leave the action waiting until it times out). Any other
 * event, and a job event without a job id (no result could be reported), gets `error` thrown back.
 */
export async function refuseJobEvent(
  event: unknown,
  error: unknown,
  deps: Pick<GateDependencies, "codepipeline" | "clock" | "logger">,
): Promise<GateResult> {
  let job: GateJob | undefined;
  try {
    job = parseCodePipelineJob(event);
  } catch {
    throw error;
  }
  if (!job) throw error;
  return refuseGateJob(job, error, deps);
}

async function reportGateResult(
  job: GateJob,
  executionId: string,
  ran: { sync?: SyncSummary | undefined; publish?: PublishSummary | undefined; outcome: GateOutcome },
  deps: Pick<GateDependencies, "codepipeline" | "logger">,
): Promise<GateResult> {
  const { outcome } = ran;
  // not `message`: the Powertools logger drops that key as reserved, and the reason would never reach CloudWatch
  deps.logger[outcome.succeeded ? "info" : "error"]("pipeline gate result", {
    jobId: job.jobId,
    succeeded: outcome.succeeded,
    detail: outcome.message,
  });
  await reportJob(deps.codepipeline, job.jobId, outcome, executionId);
  return {
    jobId: job.jobId,
    succeeded: outcome.succeeded,
    message: outcome.message,
    sync: ran.sync,
    publish: ran.publish,
  };
}

/** The sync options of a job's UserParameters: `{"ref","paths","force"}`, as JSON, or nothing. */
function jobSyncEvent(job: GateJob, config: SyncConfig): SyncEvent {
  if (!job.userParameters?.trim()) return { kind: "manual", dryRun: false, force: false };
  let raw: unknown;
  try {
    raw = JSON.parse(job.userParameters);
  } catch (error) {
    throw new EventValidationError('the action\'s UserParameters must be JSON such as {"ref":"main"}', {
      cause: error,
    });
  }
  const manual = parseSyncEvent(raw, config.pipelineName);
  if (manual.kind !== "manual" || manual.dryRun) {
    throw new EventValidationError('UserParameters accept only {"ref","paths","force"}');
  }
  return manual;
}

/** A job's first invocation: sync, publish what is ready, and wait for the CodeBuild builds it started. */
async function syncAndPublish(job: GateJob, settings: GateSettings, deps: GateDependencies) {
  const manual = jobSyncEvent(job, settings.sync);
  const sync = await syncFromSource(
    settings.sync,
    {
      ref: manual.kind === "manual" ? manual.ref : undefined,
      folders: selectFolders(settings.sync, manual.kind === "manual" ? manual.paths : undefined),
      force: manual.kind === "manual" && manual.force,
    },
    deps,
  );
  await deps.onSynced(sync);
  const publish = await publishReady(sync, settings.publish, deps);
  let outcome = gateOutcome(sync, publish);
  // started CodeBuild builds: the job finishes only once every one of them has
  const building = sync.packages.flatMap((p) => (p.reason === "building" && p.build?.id ? [p.build.id] : []));
  if (outcome.succeeded && building.length) outcome = waitingOutcome(sync, building);
  return { sync, publish, outcome };
}

/**
 * A job's later invocation: look at the builds its token names. While any runs, continue with the same token;
 * once all have finished, settle each as the build-finished handler does (idempotent: a build it already took
 * is "unchanged"), publish what was built, and finish the job, failing it if any build failed.
 */
async function continueWithBuilds(token: string, settings: GateSettings, deps: GateDependencies) {
  const { build, artifacts } = settings.sync;
  const projects = [build?.projects.x86_64, build?.projects.arm64].filter((p): p is string => p !== undefined);
  if (!build || projects.length === 0) {
    throw new ConfigError(
      "a continuation token names CodeBuild builds, but no build project is set: set BUILD_PROJECT_X86_64 and/or BUILD_PROJECT_ARM64 as when the builds started",
    );
  }
  if (!artifacts.bucket) throw new ConfigError("set ARTIFACT_BUCKET: the bucket the builds write their output to");
  const builds = parseBuildsToken(token, projects);
  const resultConfig = { ...artifacts, bucket: artifacts.bucket, build };
  const settled = await settleBuilds(deps.codebuild, builds, (b, status, artifactSha256) =>
    takeBuildResult(
      resultConfig,
      { kind: "finished", project: b.project, id: b.id, uuid: b.uuid, arn: undefined, status, artifactSha256 },
      deps,
    ),
  );
  if (!settled) {
    return {
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
  await deps.onSynced(sync);
  const publish = await publishReady(sync, settings.publish, deps);
  return { sync, publish, outcome: gateOutcome(sync, publish) };
}

/** Publish the packages a run produced (not those still building, nor failed ones). */
async function publishReady(
  sync: SyncSummary,
  config: PublishConfig,
  deps: GateDependencies,
): Promise<PublishSummary | undefined> {
  const ready = sync.packages.filter((p) => !p.error && p.reason !== "building").map((p) => p.name);
  if (!ready.length) return undefined;
  const withConsumers = (config.consumers?.source ?? "none") !== "none";
  const releases: ReleaseEvent[] = [];
  const summary = await runPublish(
    config,
    { kind: "packages", packages: ready, trigger: "manual" },
    {
      ...deps.publishing,
      ...(withConsumers ? { consumers: deps.consumers() } : {}),
      s3: deps.s3,
      ssm: deps.ssm,
      clock: deps.clock,
      logger: deps.logger,
      onRelease: (e) => releases.push(e),
    },
  );
  if (config.summaryEventBus && releases.length) {
    await putReleaseEvents(deps.events, config.summaryEventBus, releases, deps.logger);
  }
  return summary;
}
