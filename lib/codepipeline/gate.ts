/**
 * Pipeline-gate mode: the sync Lambda runs as a CodePipeline "Lambda invoke" action placed before CfCT's
 * deploy stages. It syncs, publishes what the sync produced, and reports the job's result, so the stages
 * after it only run once the layers they reference exist and are shared.
 */
import {
  type CodePipelineClient,
  type FailureType,
  PutJobFailureResultCommand,
  PutJobSuccessResultCommand,
} from "@aws-sdk/client-codepipeline";
import {
  type BuildState,
  type CodeBuildApi,
  FINISHED_STATES,
  type FinishedState,
  parseBuildId,
} from "../builds/codebuild.ts";
import { errorName } from "../common/aws-errors.ts";
import { ConfigError, describeError, EventValidationError, LayerSyncError } from "../common/errors.ts";
import { redact } from "../common/redact.ts";
import type { SyncSummary } from "../common/summary.ts";
import type { PublishSummary } from "../publish/publish.ts";

export interface GateOutcome {
  succeeded: boolean;
  /** Success that is not final: CodePipeline invokes the action again with this token (started builds). */
  continuationToken?: string;
  failureType?: FailureType;
  message: string;
}

/** Reporting the job result failed: CodePipeline will time the action out, so the handler must fail loudly. */
export class GateReportError extends LayerSyncError {}

const SUCCESS_MAX = 2048;
const FAILURE_MAX = 5000;

function clip(text: string, max: number): string {
  const clean = redact(text);
  return clean.length <= max ? clean : `${clean.slice(0, max - 1)}…`;
}

/** The job result for a finished sync (and publish, when it ran). */
export function gateOutcome(sync: SyncSummary, publish: PublishSummary | undefined): GateOutcome {
  const short = sync.commit.slice(0, 7);
  const failures = [
    ...sync.packages.filter((p) => p.error).map((p) => `${p.name} (sync): ${p.error}`),
    ...(publish?.packages ?? []).filter((p) => p.error !== undefined).map((p) => `${p.name} (publish): ${p.error}`),
  ];
  if (failures.length) {
    return {
      succeeded: false,
      failureType: "JobFailed",
      message: clip(
        `layer-sync failed for ${failures.length} package(s) at ${short}; the previous layers stay in place: ${failures.join(" | ")}`,
        FAILURE_MAX,
      ),
    };
  }
  const parts = sync.packages.map((p) => {
    const published = publish?.packages.find((x) => x.name === p.name);
    const version = published?.layerVersionArn ? published.layerVersionArn.split(":").at(-1) : undefined;
    return `${p.name} ${p.skipped ? "unchanged" : "synced"}${version ? `, layer version ${version}` : ""}`;
  });
  return { succeeded: true, message: clip(`layer-sync at ${short}: ${parts.join("; ")}`, SUCCESS_MAX) };
}

/** CodePipeline's limit on a continuation token. */
export const CONTINUATION_MAX = 2048;

/** The continuation token that carries the ids of the builds a gate waits for. */
export function buildsToken(ids: readonly string[]): string {
  const token = JSON.stringify({ builds: ids });
  if (token.length > CONTINUATION_MAX) {
    throw new LayerSyncError(
      `the gate cannot wait for ${ids.length} CodeBuild builds at once (the continuation token holds ${CONTINUATION_MAX} characters); the builds go on and move the pointers when they finish: sync fewer build folders per pipeline action`,
    );
  }
  return token;
}

/** The build ids of a continuation token; hostile input: every id is checked, and must be in our projects. */
export function parseBuildsToken(token: string, projects: readonly string[]): ReturnType<typeof parseBuildId>[] {
  let raw: unknown;
  try {
    raw = JSON.parse(token);
  } catch (error) {
    throw new EventValidationError("the continuation token is not layer-sync's", { cause: error });
  }
  const ids = (raw as { builds?: unknown })?.builds;
  if (!Array.isArray(ids) || ids.length === 0 || ids.length > 100) {
    throw new EventValidationError("the continuation token names no builds");
  }
  return ids.map((id) => {
    const build = parseBuildId(id);
    if (!projects.includes(build.project)) {
      throw new EventValidationError(`the continuation token names a build of "${build.project}", not of ours`);
    }
    return build;
  });
}

/**
 * One look at the builds a gate waits for: undefined while any is still running; else each build settled
 * (`settle`: the build-finished core, which moves the pointer of a SUCCEEDED one and names a failed one),
 * given its state and the SHA-256 CodeBuild reports for its artifact.
 */
export async function settleBuilds<T>(
  api: CodeBuildApi,
  builds: readonly ReturnType<typeof parseBuildId>[],
  settle: (
    build: ReturnType<typeof parseBuildId>,
    status: FinishedState,
    artifactSha256: string | undefined,
  ) => Promise<T>,
): Promise<T[] | undefined> {
  const states = new Map<string, BuildState>((await api.batchGetBuilds(builds.map((b) => b.id))).map((s) => [s.id, s]));
  // a build CodeBuild does not know (any more) will never finish: it counts as faulted
  const status = (id: string) => states.get(id)?.status ?? "FAULT";
  if (builds.some((b) => !(FINISHED_STATES as readonly string[]).includes(status(b.id)))) return undefined;
  const out: T[] = [];
  for (const b of builds) out.push(await settle(b, status(b.id) as FinishedState, states.get(b.id)?.artifactSha256));
  return out;
}

/** The job result while builds run: success with a continuation token, and what is waited for. */
export function waitingOutcome(sync: SyncSummary | undefined, ids: readonly string[]): GateOutcome {
  const short = sync ? `at ${sync.commit.slice(0, 7)} ` : "";
  return {
    succeeded: true,
    continuationToken: buildsToken(ids),
    message: clip(`layer-sync ${short}is waiting for ${ids.length} CodeBuild build(s): ${ids.join(", ")}`, SUCCESS_MAX),
  };
}

/** The job result for an error that stopped the run before any summary existed. */
export function gateError(error: unknown): GateOutcome {
  const configuration = error instanceof ConfigError || error instanceof EventValidationError;
  return {
    succeeded: false,
    failureType: configuration ? "ConfigurationError" : "JobFailed",
    message: clip(`layer-sync failed: ${describeError(error)}`, FAILURE_MAX),
  };
}

/** Report the outcome for a job. */
export async function reportJob(
  client: CodePipelineClient,
  jobId: string,
  outcome: GateOutcome,
  executionId: string,
): Promise<void> {
  try {
    if (outcome.succeeded) {
      await client.send(
        new PutJobSuccessResultCommand({
          jobId,
          ...(outcome.continuationToken ? { continuationToken: outcome.continuationToken } : {}),
          executionDetails: { summary: outcome.message, externalExecutionId: executionId },
        }),
      );
    } else {
      await client.send(
        new PutJobFailureResultCommand({
          jobId,
          failureDetails: {
            type: outcome.failureType ?? "JobFailed",
            message: outcome.message,
            externalExecutionId: executionId,
          },
        }),
      );
    }
  } catch (error) {
    throw new GateReportError(
      `reporting the result of CodePipeline job ${jobId} failed (${errorName(error)}): ${describeError(error)}; grant codepipeline:PutJobSuccessResult and PutJobFailureResult`,
      { cause: error },
    );
  }
}
