/**
 * Builds in AWS CodeBuild (the Lambda sync path). For a target whose fingerprint differs from its current
 * artifact's, the sync:
 *
 * 1. uploads the folder's files as layer-sync's deterministic zip to `{BUILD_SOURCE_PREFIX}{package}/{fingerprint}.zip`;
 * 2. starts one build in the project of the target's architecture (`BUILD_PROJECT_X86_64` / `BUILD_PROJECT_ARM64`),
 *    every per-build input passed as a StartBuild override (S3 source, SAM image, inline buildspec,
 *    environment variables, the artifact as a ZIP at `{BUILD_OUTPUT_PREFIX}{architecture}/{package}/{fingerprint}.zip`
 *    (so CodeBuild reports its SHA-256, which the build-finished step checks), timeout);
 * 3. writes the build's record (`{BUILD_SOURCE_PREFIX}.builds/{project}/{uuid}.json`), which the build-finished
 *    handler reads: a place the build itself cannot write, so a hostile build cannot change what it is for;
 * 4. returns; the summary shows the target as `skipped: true, reason: "building"` with the build id.
 *
 * The CodeBuild client sits behind `CodeBuildApi`, so tests can drive build outcomes that moto cannot.
 */
import { readFile } from "node:fs/promises";
import {
  BatchGetBuildsCommand,
  type CodeBuildClient,
  type EnvironmentVariable,
  StartBuildCommand,
  type StartBuildCommandInput,
} from "@aws-sdk/client-codebuild";
import { PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import type { Architecture, BuildPlan, BuildTarget } from "../common/build-plan.ts";
import type { BuildConfig } from "../common/config.ts";
import { ArtifactError, BuildError, ConfigError, EventValidationError } from "../common/errors.ts";
import { samBuildImage } from "./builders.ts";
import { BUILD_VARIABLES, buildspec } from "./buildspec.ts";

/** The build timeout passed with every build (the projects' own default is the same). */
export const BUILD_TIMEOUT_MINUTES = 30;
/** Terminal build states. */
export const FINISHED_STATES = ["SUCCEEDED", "FAILED", "STOPPED", "TIMED_OUT", "FAULT"] as const;
export type FinishedState = (typeof FINISHED_STATES)[number];

export interface BuildState {
  id: string;
  status: string;
  /** The SHA-256 (hex) of the build's ZIP artifact as CodeBuild reports it (`artifacts.sha256sum`). */
  artifactSha256?: string | undefined;
}

/** What layer-sync asks of CodeBuild. */
export interface CodeBuildApi {
  startBuild(input: StartBuildCommandInput): Promise<{ id: string; arn: string }>;
  batchGetBuilds(ids: readonly string[]): Promise<BuildState[]>;
}

/** `CodeBuildApi` on the SDK client. */
export function sdkCodeBuild(client: CodeBuildClient): CodeBuildApi {
  return {
    async startBuild(input) {
      const res = await client.send(new StartBuildCommand(input));
      const id = res.build?.id;
      const arn = res.build?.arn;
      if (!id || !arn) throw new BuildError(`CodeBuild started a build in ${input.projectName} but returned no id`);
      return { id, arn };
    },
    async batchGetBuilds(ids) {
      const out: BuildState[] = [];
      for (let i = 0; i < ids.length; i += 100) {
        const res = await client.send(new BatchGetBuildsCommand({ ids: ids.slice(i, i + 100) }));
        for (const b of res.builds ?? []) {
          if (!b.id) continue;
          out.push({ id: b.id, status: b.buildStatus ?? "IN_PROGRESS", artifactSha256: b.artifacts?.sha256sum });
        }
      }
      return out;
    },
  };
}

/** What the sync needs to build in CodeBuild. */
export interface CodeBuildDependencies {
  api: CodeBuildApi;
  s3: S3Client;
  bucket: string;
  settings: Pick<
    BuildConfig,
    "projects" | "sourcePrefix" | "outputPrefix" | "pipIndexUrl" | "npmRegistry" | "indexTokenParameter"
  >;
}

/** `{BUILD_SOURCE_PREFIX}{package}/{fingerprint}.zip` */
export function buildSourceKey(prefix: string, pkg: string, fingerprint: string): string {
  return `${prefix}${pkg}/${fingerprint}.zip`;
}
/**
 * `{BUILD_OUTPUT_PREFIX}{architecture}/{package}`, the artifact path of a build. The stack scopes each
 * project's role to `{BUILD_OUTPUT_PREFIX}{architecture}/*` from this exact pattern.
 */
export function buildOutputPath(prefix: string, architecture: Architecture, pkg: string): string {
  return `${prefix}${architecture}/${pkg}`;
}
/** `{BUILD_OUTPUT_PREFIX}{architecture}/{package}/{fingerprint}.zip`: the ZIP CodeBuild writes (it holds `OUTPUT_ARCHIVE`). */
export function buildOutputKey(prefix: string, architecture: Architecture, pkg: string, fingerprint: string): string {
  return `${buildOutputPath(prefix, architecture, pkg)}/${fingerprint}.zip`;
}
/** `{BUILD_SOURCE_PREFIX}.builds/{project}/{uuid}.json`, where a build's record is kept. */
export function buildRecordKey(prefix: string, project: string, uuid: string): string {
  return `${prefix}.builds/${project}/${uuid}.json`;
}

const BUILD_ID = /^([A-Za-z0-9][A-Za-z0-9_-]{1,254}):([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;
const BUILD_ARN =
  /^arn:aws[a-z-]{0,20}:codebuild:[a-z]{2}(?:-[a-z]+)+-\d{1,2}:\d{12}:build\/([A-Za-z0-9][A-Za-z0-9_-]{1,254}:[0-9a-f-]{36})$/;

/** A build id (`project:uuid`) or ARN, split; throws `EventValidationError` for anything else. */
export function parseBuildId(value: unknown): { id: string; project: string; uuid: string; arn?: string } {
  const text = typeof value === "string" ? value : "";
  const arn = BUILD_ARN.exec(text);
  const id = arn ? (arn[1] ?? "") : text;
  const m = BUILD_ID.exec(id);
  if (!m || text.length > 400) {
    throw new EventValidationError(
      `"${text.slice(0, 80).replace(/[^\x20-\x7e]/g, "?")}" is not a CodeBuild build id (project:uuid) or build ARN`,
    );
  }
  return { id, project: m[1] ?? "", uuid: m[2] ?? "", ...(arn ? { arn: text } : {}) };
}

/** The project that builds an architecture; a configuration error naming the setting when none is set. */
export function projectFor(settings: CodeBuildDependencies["settings"], architecture: Architecture): string {
  const project = settings.projects[architecture];
  if (project) return project;
  const setting = architecture === "arm64" ? "BUILD_PROJECT_ARM64" : "BUILD_PROJECT_X86_64";
  if (!settings.projects.x86_64 && !settings.projects.arm64) {
    throw new ConfigError(
      "this folder must be built, and the Lambda sync builds only in CodeBuild: deploy the stack's build projects (BUILD_PROJECT_X86_64, BUILD_PROJECT_ARM64), or build with the CLI (layer-sync sync --builder local|docker)",
    );
  }
  throw new ConfigError(
    `no CodeBuild project builds ${architecture}: set ${setting} (the stack's ${architecture} build project)`,
  );
}

/** The StartBuild request of a target (pure: the exact request the tests assert). */
export function startBuildRequest(args: {
  plan: Pick<BuildPlan, "language">;
  target: Pick<BuildTarget, "runtime" | "architecture" | "package">;
  fingerprint: string;
  bucket: string;
  settings: CodeBuildDependencies["settings"];
}): StartBuildCommandInput {
  const { plan, target, fingerprint, bucket, settings } = args;
  const env: EnvironmentVariable[] = [
    { name: BUILD_VARIABLES.runtime, value: target.runtime, type: "PLAINTEXT" },
    { name: BUILD_VARIABLES.architecture, value: target.architecture, type: "PLAINTEXT" },
    { name: BUILD_VARIABLES.package, value: target.package, type: "PLAINTEXT" },
    { name: BUILD_VARIABLES.fingerprint, value: fingerprint, type: "PLAINTEXT" },
  ];
  const index = plan.language === "python" ? settings.pipIndexUrl : settings.npmRegistry;
  if (index) {
    const name = plan.language === "python" ? BUILD_VARIABLES.pipIndexUrl : BUILD_VARIABLES.npmRegistry;
    env.push({ name, value: index, type: "PLAINTEXT" });
    if (settings.indexTokenParameter) {
      // CodeBuild reads the SecureString itself: layer-sync never holds the credential on this path
      env.push({ name: BUILD_VARIABLES.token, value: settings.indexTokenParameter, type: "PARAMETER_STORE" });
    }
  }
  return {
    projectName: projectFor(settings, target.architecture),
    sourceTypeOverride: "S3",
    sourceLocationOverride: `${bucket}/${buildSourceKey(settings.sourcePrefix, target.package, fingerprint)}`,
    imageOverride: samBuildImage(target.runtime, target.architecture),
    imagePullCredentialsTypeOverride: "CODEBUILD",
    buildspecOverride: buildspec(plan.language),
    environmentVariablesOverride: env,
    artifactsOverride: {
      type: "S3",
      location: bucket,
      path: buildOutputPath(settings.outputPrefix, target.architecture, target.package),
      name: `${fingerprint}.zip`,
      // ZIP: CodeBuild reports the artifact's SHA-256, the proof that the output is this build's
      packaging: "ZIP",
      namespaceType: "NONE",
      encryptionDisabled: false,
    },
    timeoutInMinutesOverride: BUILD_TIMEOUT_MINUTES,
  };
}

/** Everything the build-finished handler needs to turn a build's output into the target's artifact. */
export interface BuildRecord {
  version: 1;
  buildId: string;
  buildArn: string;
  project: string;
  package: string;
  /** Repository folder. */
  path: string;
  repository: string;
  language: BuildPlan["language"];
  exclude: string[];
  /** layer.json `build.maxUnzippedMiB`, when set. */
  maxUnzippedMiB?: number | undefined;
  /** layer.json `build.bytecode` and `build.slim` (absent in older records: true, false). */
  bytecode?: boolean | undefined;
  slim?: boolean | undefined;
  runtime: string;
  architecture: Architecture;
  fingerprint: string;
  commit: string;
  ref: string;
  /** `provider:repository:path` */
  source: string;
  tree?: string | undefined;
  layerConfig: string;
  /** When the sync that started the build began (the artifact key's time, so runs keep their order). */
  started: string;
  sourceKey: string;
  outputKey: string;
}

async function put(s3: S3Client, bucket: string, key: string, body: Buffer, type: string): Promise<void> {
  try {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: type }));
  } catch (error) {
    throw new ArtifactError(
      `uploading s3://${bucket}/${key} failed (${(error as Error).name}): ${(error as Error).message}; grant s3:PutObject on the build source prefix`,
      { cause: error },
    );
  }
}

/**
 * Start the build of one target: upload the source zip (already written to `sourceZip`), start the
 * build, record it. Returns the build id (`project:uuid`).
 */
export async function startTargetBuild(
  deps: CodeBuildDependencies,
  args: {
    plan: BuildPlan;
    target: BuildTarget;
    fingerprint: string;
    sourceZip: string;
    record: Omit<BuildRecord, "version" | "buildId" | "buildArn" | "project" | "sourceKey" | "outputKey">;
  },
): Promise<string> {
  const { plan, target, fingerprint } = args;
  const request = startBuildRequest({ plan, target, fingerprint, bucket: deps.bucket, settings: deps.settings });
  const sourceKey = buildSourceKey(deps.settings.sourcePrefix, target.package, fingerprint);
  await put(deps.s3, deps.bucket, sourceKey, await readFile(args.sourceZip), "application/zip");
  let started: { id: string; arn: string };
  try {
    started = await deps.api.startBuild(request);
  } catch (error) {
    if (error instanceof BuildError) throw error;
    throw new BuildError(
      `starting the CodeBuild build of ${target.package} in ${request.projectName} failed (${(error as Error).name}): ${(error as Error).message}; check the project exists and the function may call codebuild:StartBuild on it`,
      { cause: error },
    );
  }
  const { project, uuid } = parseBuildId(started.id);
  const record: BuildRecord = {
    version: 1,
    ...args.record,
    buildId: started.id,
    buildArn: started.arn,
    project,
    sourceKey,
    outputKey: buildOutputKey(deps.settings.outputPrefix, target.architecture, target.package, fingerprint),
  };
  await put(
    deps.s3,
    deps.bucket,
    buildRecordKey(deps.settings.sourcePrefix, project, uuid),
    Buffer.from(JSON.stringify(record)),
    "application/json",
  );
  return started.id;
}
