/**
 * A sync run as the sync function starts it, in both of its modes (an event, or a pipeline-gate job): the
 * repository source made with the token, the run's deadline wired to abort the uploads under way, and build
 * folders started in CodeBuild when build projects are configured. Clients, token cache and clock come from
 * the caller.
 */
import type { S3Client } from "@aws-sdk/client-s3";
import type { SSMClient } from "@aws-sdk/client-ssm";
import type { RunInterrupts } from "../artifacts/store.ts";
import type { CodeBuildApi } from "../builds/codebuild.ts";
import { folderBuilds } from "../builds/folder-builds.ts";
import { parseFolders, type SyncConfig } from "../common/config.ts";
import { RunDeadline } from "../common/deadline.ts";
import { EventValidationError, LayerSyncError, summarise } from "../common/errors.ts";
import type { Logger } from "../common/log.ts";
import type { SyncSummary } from "../common/summary.ts";
import { checkToken, type TokenCache } from "../common/token.ts";
import { createSource } from "../sources/index.ts";
import { runSync, type SyncOptions } from "../sync/sync.ts";

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

/** The margin a run keeps before the function's timeout: a tenth of the remaining time, at most 30 s. */
export const DEADLINE_MARGIN_MAX_MS = 30_000;

/**
 * The run's deadline in Lambda: the remaining time less the margin, so that a run which cannot finish fails
 * with its reason (the summary event sent, the error thrown) instead of being killed at the timeout.
 * Undefined when the remaining time is not known (not in Lambda).
 */
export function lambdaDeadline(remainingMs: number | undefined, now: () => number): RunDeadline | undefined {
  if (typeof remainingMs !== "number" || !Number.isFinite(remainingMs)) return undefined;
  const margin = Math.min(DEADLINE_MARGIN_MAX_MS, Math.ceil(remainingMs / 10));
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  return new RunDeadline(
    now() + remainingMs - margin,
    `the Lambda function had ${s(remainingMs)} left when the run started, and the run keeps ${s(margin)} before its timeout`,
    now,
  );
}

/** The folders an event's `paths` name (checked like SOURCE_PATHS), or the configured ones without it. */
export function selectFolders(config: SyncConfig, paths: string[] | undefined) {
  if (!paths) return config.source.folders;
  const selected = parseFolders(paths, config.layer.layerNamePrefix);
  if (selected.problems.length) throw new EventValidationError(`"paths" ${summarise(selected.problems)}`);
  return selected.folders;
}

export interface SourceSyncDependencies {
  s3: S3Client;
  ssm: SSMClient;
  /** Starts the builds of build folders (with BUILD_PROJECT_* and a bucket). */
  codebuild: CodeBuildApi;
  /** Keeps the token read from TOKEN_PARAMETER_NAME between warm invocations. */
  tokens: TokenCache;
  clock: () => Date;
  workDir: string;
  exclusiveWorkDir: boolean;
  logger: Logger;
  deadline?: RunDeadline | undefined;
}

/** The source token: SOURCE_TOKEN, or the SecureString TOKEN_PARAMETER_NAME names (cached), or none. */
async function sourceToken(config: SyncConfig, deps: SourceSyncDependencies): Promise<string | undefined> {
  const { token, tokenParameterName } = config.source;
  if (token !== undefined) return checkToken(token, "SOURCE_TOKEN");
  return tokenParameterName ? deps.tokens.get(deps.ssm, tokenParameterName) : undefined;
}

/** Sync the repository's folders into the bucket (see the module comment). */
export async function syncFromSource(
  config: SyncConfig,
  options: SyncOptions,
  deps: SourceSyncDependencies,
): Promise<SyncSummary> {
  const { s3, ssm, deadline } = deps;
  const bundle = createSource(
    config.source,
    await sourceToken(config, deps),
    deadline ? { runDeadline: deadline } : {},
  );
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
      clock: deps.clock,
      workDir: deps.workDir,
      exclusiveWorkDir: deps.exclusiveWorkDir,
      logger: deps.logger,
      interrupts,
      ...(deadline ? { deadline } : {}),
      ...(config.build && config.artifacts.bucket
        ? {
            builds: folderBuilds({
              codebuild: { api: deps.codebuild, s3, bucket: config.artifacts.bucket, settings: config.build },
            }),
          }
        : {}),
    });
  } finally {
    deadline?.signal.removeEventListener("abort", abortUploads);
    await bundle.http.close();
  }
}
