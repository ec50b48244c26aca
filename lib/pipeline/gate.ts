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
import type { PublishSummary } from "../publish/publish.ts";
import { errorName } from "../shared/aws-errors.ts";
import { ConfigError, describeError, EventValidationError, LayerSyncError } from "../shared/errors.ts";
import { redact } from "../shared/redact.ts";
import type { SyncSummary } from "../sync/sync.ts";

export interface GateOutcome {
  succeeded: boolean;
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
