/**
 * The names the build resources, their IAM statements and the functions' environment share: the two
 * CodeBuild projects (named after the stack, so two stacks in one account and Region never collide, and
 * so their log groups `/aws/codebuild/<project>` — where the build-finished handler reads a failed build's
 * log — are known before the projects exist) and the build source and output prefixes.
 */
import { Aws } from "aws-cdk-lib";
import { BUILD_TIMEOUT_MINUTES, FINISHED_STATES } from "../../lib/builds/codebuild.ts";
import { SETTINGS } from "../../lib/common/settings.ts";

export { BUILD_TIMEOUT_MINUTES, FINISHED_STATES };

/** The handlers' defaults (lib/common/settings.ts); the stack sets them explicitly, IAM is built from them. */
export const BUILD_SOURCE_PREFIX = defaultOf("buildSourcePrefix");
export const BUILD_OUTPUT_PREFIX = defaultOf("buildOutputPrefix");

function defaultOf(key: "buildSourcePrefix" | "buildOutputPrefix"): string {
  const value = SETTINGS[key].default;
  if (value === undefined) throw new Error(`the settings schema has no default for ${SETTINGS[key].env}`);
  return value;
}

export type BuildArchitecture = "x86_64" | "arm64";
export const BUILD_ARCHITECTURES: readonly BuildArchitecture[] = ["x86_64", "arm64"];

/** `{stack name}-build-{architecture}`: letters, digits, "-" and "_", as CodeBuild project names allow. */
export function buildProjectName(architecture: BuildArchitecture): string {
  return `${Aws.STACK_NAME}-build-${architecture}`;
}

/** The log group CodeBuild writes a project's builds to (and the build-finished handler reads). */
export function buildLogGroupName(architecture: BuildArchitecture): string {
  return `/aws/codebuild/${buildProjectName(architecture)}`;
}

export function buildProjectArn(architecture: BuildArchitecture): string {
  return `arn:${Aws.PARTITION}:codebuild:${Aws.REGION}:${Aws.ACCOUNT_ID}:project/${buildProjectName(architecture)}`;
}

/** The variables the stack adds for builds (sync and build-finished functions). */
export function buildVariables(): Record<string, string> {
  return {
    BUILD_PROJECT_X86_64: buildProjectName("x86_64"),
    BUILD_PROJECT_ARM64: buildProjectName("arm64"),
    BUILD_SOURCE_PREFIX,
    BUILD_OUTPUT_PREFIX,
  };
}
