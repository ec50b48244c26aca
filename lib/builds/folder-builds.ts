/**
 * The sync of a build folder (local CLI path: `--builder auto|docker|local`). One package per target:
 *
 * 1. The target's fingerprint. When the artifact its pointer names carries the same `build-fingerprint`
 *    (and the same source), the target is `skipped: unchanged` and nothing is built.
 * 2. Otherwise it is built and zipped. `--out DIR` writes the zip to `DIR/<key>`. With a bucket, a zip
 *    whose SHA-256 equals the current artifact's is `skipped: unchanged` (nothing uploaded); else it is
 *    uploaded with `build-fingerprint`, `runtime` and `architecture` metadata and the pointer moves.
 *
 * Publishing reads the target's runtime and architecture from the artifact's `layer-config` metadata, so
 * each layer version carries exactly that one runtime and architecture.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { commitArtifact, currentArtifact } from "../artifacts/commit.ts";
import { ARTIFACT_FORMAT, type ArtifactHead, type ArtifactMetadata, artifactKey } from "../artifacts/store.ts";
import type { BuildPlan, BuildTarget } from "../common/build-plan.ts";
import { BuildError, ConfigError, describeError } from "../common/errors.ts";
import { encodeLayerConfig, parseLayerConfig } from "../common/layer-json.ts";
import { nearLimitWarning } from "../common/sizes.ts";
import { type BuildSummary, emptyTargetSummary, type TargetSummary } from "../common/summary.ts";
import { type FolderBuildRequest, type FolderBuilds, planStagedFolder } from "../staging/staged-plan.ts";
import { LAYER_CONFIG_FILE } from "../zip/folder-zip.ts";
import { type Builder, type BuilderKind, createBuilder, type IndexSettings, samBuildImage } from "./builders.ts";
import { type CodeBuildDependencies, startTargetBuild } from "./codebuild.ts";
import {
  buildTarget,
  type CheckedRequirements,
  checkRequirements,
  targetFingerprint,
  withSanitized,
  writeLayerZip,
} from "./content.ts";
import { sbomKey } from "./layer-sbom.ts";
import { stageTree, type TreeEntry } from "./tree.ts";

/** What the caller (CLI) gives the sync for building: lib/ reads no environment itself. */
export type { BuildSummary, TargetSummary } from "../common/summary.ts";
export { emptyTargetSummary } from "../common/summary.ts";

export interface BuildDependencies {
  kind: BuilderKind;
  /** The caller's environment (children see only the network and Docker settings of it). */
  env: Readonly<Record<string, string | undefined>>;
  cacheDir?: string | undefined;
  timeoutMs: number;
  index?: IndexSettings | undefined;
  user?: string | undefined;
  /** layer-sync's tool cache (the pinned uv, uv-managed interpreters); see `BuilderOptions.toolCache`. */
  toolCache?: string | undefined;
}

/**
 * The builds the sync runs for build folders: locally (`build`, the CLI) or in CodeBuild (`codebuild`, the
 * Lambda sync). The caller passes it to the sync, which never imports lib/builds.
 */
export function folderBuilds(using: {
  build?: BuildDependencies | undefined;
  codebuild?: CodeBuildDependencies | undefined;
}): FolderBuilds {
  const kind = using.build?.kind;
  const builder: BuildSummary["builder"] | undefined = using.codebuild
    ? "codebuild"
    : kind === "auto"
      ? undefined
      : kind;
  return {
    /** The builder a target skipped as unchanged reports (undefined: `auto`, not known before building). */
    builder,
    syncFolder: (request: FolderBuildRequest) =>
      syncBuiltFolder({ ...request, build: using.build, codebuild: using.codebuild }),
  };
}

/** A build folder as the builds work on it: the sync's request, the builders, and the CodeBuild source zip. */
export interface BuiltFolderContext extends FolderBuildRequest {
  /** Local builds (CLI); unset when `codebuild` is set. */
  build?: BuildDependencies | undefined;
  /** Builds in CodeBuild (the Lambda sync): start them and return. */
  codebuild?: CodeBuildDependencies | undefined;
  /** The folder's zip for CodeBuild, written once for all its targets. */
  sourceZip?: Promise<string>;
}

/** A local or Docker builder, or CodeBuild (which only needs the identity here: the build runs elsewhere). */
type TargetBuilder = Builder | { kind: "codebuild"; identity: Builder["identity"]; deps: CodeBuildDependencies };

/** CodeBuild as a builder: the tool part of a target's fingerprint is the image, as for Docker. */
function codeBuildBuilder(deps: CodeBuildDependencies): TargetBuilder {
  return {
    kind: "codebuild",
    identity: async (request) => `codebuild ${samBuildImage(request.runtime, request.architecture)}`,
    deps,
  };
}

function indexOf(ctx: BuiltFolderContext): IndexSettings | undefined {
  if (!ctx.codebuild) return ctx.build?.index;
  const { pipIndexUrl, npmRegistry } = ctx.codebuild.settings;
  return { pipIndexUrl, npmRegistry };
}

/** Upload the folder's zip, start the target's CodeBuild build and report it as building. */
async function startInCodeBuild(
  ctx: BuiltFolderContext,
  deps: CodeBuildDependencies,
  plan: BuildPlan,
  target: BuildTarget,
  fingerprint: string,
  overrides: ReturnType<typeof parseLayerConfig>,
  summary: TargetSummary,
  files: readonly TreeEntry[],
  requirements: CheckedRequirements | undefined,
): Promise<void> {
  if (ctx.dryRun) {
    Object.assign(summary, { skipped: true, reason: "dry-run" });
    return;
  }
  const sourceZip = join(ctx.workDir, "source.zip");
  // the build's source: the folder with its requirement files sanitized, never the originals
  ctx.sourceZip ??= writeLayerZip(
    withSanitized(files, requirements).filter((e) => e.path !== LAYER_CONFIG_FILE),
    sourceZip,
  ).then((zip) => zip.path);
  const id = await startTargetBuild(deps, {
    plan,
    target,
    fingerprint,
    sourceZip: await ctx.sourceZip,
    record: {
      package: target.package,
      path: ctx.spec.path,
      repository: ctx.config.source.repository,
      language: plan.language,
      exclude: plan.exclude,
      ...(plan.maxUnzippedMiB === undefined ? {} : { maxUnzippedMiB: plan.maxUnzippedMiB }),
      bytecode: plan.bytecode,
      slim: plan.slim,
      runtime: target.runtime,
      architecture: target.architecture,
      fingerprint,
      commit: ctx.resolved.commit,
      ref: ctx.resolved.ref,
      source: ctx.source,
      tree: ctx.tree,
      layerConfig: encodeLayerConfig({
        ...overrides,
        runtimes: target.compatibleRuntimes,
        architectures: target.compatibleArchitectures,
      }),
      started: ctx.started.toISOString(),
    },
  });
  Object.assign(summary, { skipped: true, reason: "building" });
  if (summary.build) summary.build.id = id;
}

/**
 * Sync every target of a build folder; undefined when the folder is not a build folder (the caller
 * mirrors it as usual). A target that fails carries its error; the others go on.
 */
export async function syncBuiltFolder(ctx: BuiltFolderContext): Promise<TargetSummary[] | undefined> {
  const plan = ctx.plan ?? (await planStagedFolder(ctx.config, ctx.spec.path, ctx.stage, ctx.spec.package));
  if (!plan) return undefined;
  const layerJson = ctx.stage.has(LAYER_CONFIG_FILE)
    ? parseLayerConfig(
        (await ctx.stage.read(LAYER_CONFIG_FILE)).toString("utf8"),
        `${ctx.spec.path}/${LAYER_CONFIG_FILE}`,
      )
    : {};
  const files = stageTree(ctx.stage);
  // every builder gets the sanitized requirement files; a refused line fails the folder (ConfigError); a
  // lock out of date with its manifest (BuildError) fails each target, naming the file and the command
  let requirements: CheckedRequirements | undefined;
  try {
    requirements = await checkRequirements(plan, files);
  } catch (error) {
    if (!(error instanceof BuildError)) throw error;
    return plan.targets.map((target) => ({
      ...emptyTargetSummary(target.package, ctx.spec.path, null),
      error: describeError(error),
    }));
  }
  const home = join(ctx.workDir, "home");
  await mkdir(home, { recursive: true });
  const builder: TargetBuilder = ctx.codebuild
    ? codeBuildBuilder(ctx.codebuild)
    : await createBuilder(ctx.build?.kind ?? "auto", {
        env: ctx.build?.env ?? {},
        home,
        cacheDir: ctx.build?.cacheDir,
        timeoutMs: ctx.build?.timeoutMs ?? 900_000,
        index: ctx.build?.index,
        user: ctx.build?.user,
        toolCache: ctx.build?.toolCache,
      });
  const out: TargetSummary[] = [];
  for (const target of plan.targets) {
    const summary = emptyTargetSummary(target.package, ctx.spec.path, null);
    out.push(summary);
    try {
      await syncTarget(ctx, plan, target, files, builder, { ...layerJson }, summary, requirements);
    } catch (error) {
      summary.error = describeError(error);
      if (error instanceof ConfigError) summary.errorKind = "configuration";
    }
  }
  return out;
}

async function syncTarget(
  ctx: BuiltFolderContext,
  plan: BuildPlan,
  target: BuildTarget,
  files: readonly TreeEntry[],
  builder: TargetBuilder,
  overrides: ReturnType<typeof parseLayerConfig>,
  summary: TargetSummary,
  requirements: CheckedRequirements | undefined,
): Promise<void> {
  const index = indexOf(ctx);
  const fingerprint = await targetFingerprint(plan, target, files, builder, index);
  summary.build = {
    runtime: target.runtime,
    architecture: target.architecture,
    fingerprint,
    builder: builder.kind,
    id: null,
  };
  const destination = ctx.destination;
  let previous: ArtifactHead | undefined;
  if (destination.kind === "s3") {
    const current = await currentArtifact(destination, target.package);
    previous = current.head;
    const prev = previous?.metadata;
    if (!ctx.force && prev?.build?.fingerprint === fingerprint && prev.source === ctx.source) {
      Object.assign(summary, {
        key: previous?.key ?? current.key,
        files: prev.files,
        bytes: previous?.size ?? 0,
        unzippedBytes: prev.unzippedBytes ?? null,
        sha256: prev.contentSha256,
        skipped: true,
        reason: "unchanged",
      });
      return;
    }
  }
  if (builder.kind === "codebuild") {
    await startInCodeBuild(ctx, builder.deps, plan, target, fingerprint, overrides, summary, files, requirements);
    return;
  }
  const dir = join(ctx.workDir, target.package);
  const built = await buildTarget({
    plan,
    target,
    files,
    builder,
    workDir: dir,
    zipFile: `${dir}.zip`,
    index,
    fingerprint,
    requirements,
  });
  summary.warnings.push(...built.warnings);
  if (built.slim) summary.build.slim = built.slim;
  const key = artifactKey(ctx.config.artifacts.artifactPrefix, target.package, ctx.started, ctx.resolved.commit);
  summary.build.sbom = { key: sbomKey(key), components: built.sbom.components };
  Object.assign(summary, {
    key,
    files: built.zip.files,
    bytes: built.zip.bytes,
    unzippedBytes: built.zip.size,
    sha256: built.zip.sha256,
  });
  const near = nearLimitWarning(built.zip.size);
  if (near) summary.warnings.push(near);
  const metadata: ArtifactMetadata = {
    commit: ctx.resolved.commit,
    source: ctx.source,
    contentSha256: built.zip.sha256,
    files: built.zip.files,
    unzippedBytes: built.zip.size,
    format: ARTIFACT_FORMAT,
    ref: ctx.resolved.ref,
    layerConfig: encodeLayerConfig({
      ...overrides,
      runtimes: target.compatibleRuntimes,
      architectures: target.compatibleArchitectures,
    }),
    build: { fingerprint, runtime: target.runtime, architecture: target.architecture },
  };
  if (ctx.tree) metadata.tree = ctx.tree;
  const result = await commitArtifact(destination, {
    package: target.package,
    key,
    zip: built.zip,
    metadata,
    sbom: built.sbom,
    previous,
    now: ctx.started,
    description: `layer-sync: latest artifact of ${target.package} (${ctx.config.source.repository}/${ctx.spec.path}, ${target.runtime} ${target.architecture})`,
    force: ctx.force,
    dryRun: ctx.dryRun,
    warn: (warning) => summary.warnings.push(warning),
  });
  if (result.kind === "skipped") {
    Object.assign(summary, { skipped: true, reason: result.reason });
    if (result.reason === "unchanged") {
      summary.key = result.key;
      summary.build.sbom = { key: sbomKey(result.key), components: built.sbom.components };
    }
  }
}
