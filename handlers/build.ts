/**
 * Build-finished handler: the EventBridge `CodeBuild Build State Change` event of one of the stack's build
 * projects (`BUILD_PROJECT_X86_64`, `BUILD_PROJECT_ARM64`). It parses settings and the event once, runs the
 * core (`lib/builds/codebuild-result.ts`), puts the summary event, and throws when the build failed or its output was
 * refused, so Lambda's failure destination fires; the pointer is then unchanged.
 */
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import { logMetrics } from "@aws-lambda-powertools/metrics/middleware";
import middy from "@middy/core";
import { type BuildResultSummary, parseBuildEvent, takeBuildResult } from "../lib/builds/codebuild-result.ts";
import { putSummaryEvent } from "../lib/codepipeline/notify.ts";
import { loadBuildFinishedConfig } from "../lib/common/config.ts";
import { ConfigError, LayerSyncError } from "../lib/common/errors.ts";
import { awsClients, buildResultDependencies, coreLogger, logger, metrics, redactErrors } from "./runtime.ts";

/** Thrown after a build that failed, or whose output was refused; the message names package, target and build. */
export class BuildFailedError extends LayerSyncError {}

export async function buildFinishedHandler(event: unknown): Promise<BuildResultSummary | { ignored: string }> {
  const config = loadBuildFinishedConfig({ env: process.env });
  const build = config.build;
  const bucket = config.artifacts.bucket;
  const projects = [build?.projects.x86_64, build?.projects.arm64].filter((p): p is string => p !== undefined);
  if (!bucket || projects.length === 0) {
    throw new ConfigError(
      "set BUILD_PROJECT_X86_64 and/or BUILD_PROJECT_ARM64: the build projects this function handles",
    );
  }
  const parsed = parseBuildEvent(event, projects);
  if (parsed.kind === "ignored") {
    logger.info("event ignored", { reason: parsed.reason });
    return { ignored: parsed.reason };
  }
  const summary = await takeBuildResult(
    {
      bucket,
      artifactPrefix: config.artifacts.artifactPrefix,
      parameterPrefix: config.artifacts.parameterPrefix,
      build,
    },
    parsed,
    buildResultDependencies(),
  );
  if (config.summaryEventBus) {
    await putSummaryEvent(awsClients().events, config.summaryEventBus, "Layer Sync Summary", summary, coreLogger);
  }
  const failed = summary.packages.find((p) => p.error);
  if (failed?.error) throw new BuildFailedError(failed.error);
  return summary;
}

export const handler = middy(buildFinishedHandler)
  .use(injectLambdaContext(logger))
  .use(logMetrics(metrics))
  .use(redactErrors());
