/**
 * What the sync and the builds agree on for a staged folder: its build plan (read by the sync: is it a build
 * folder?, and by the builds), and the hand-over of a build folder (`FolderBuilds`, implemented by lib/builds
 * `folderBuilds`, passed to the sync by its caller: the two pipelines never import each other).
 */

import type { ArtifactDestination } from "../artifacts/commit.ts";
import { type BuildPlan, planBuild } from "../common/build-plan.ts";
import type { FolderSpec, SyncConfig } from "../common/config.ts";
import type { TargetSummary } from "../common/summary.ts";
import { LAYER_CONFIG_FILE } from "../zip/folder-zip.ts";
import type { FolderStage } from "./folder-stage.ts";

/** The build plan of a staged folder, or undefined when it is not a build folder. */
export async function planStagedFolder(
  config: SyncConfig,
  spec: FolderStage["folder"],
  stage: FolderStage,
  name: string,
) {
  const files = stage.list().map((e) => e.path);
  const layerJson = stage.has(LAYER_CONFIG_FILE) ? (await stage.read(LAYER_CONFIG_FILE)).toString("utf8") : undefined;
  return planBuild({
    folder: spec,
    name,
    layerNamePrefix: config.layer.layerNamePrefix,
    files,
    layerJson,
    defaults: { runtimes: config.layer.runtimes, architectures: config.layer.architectures },
  });
}

/** The builds of build folders, as the sync sees them: lib/builds implements it, the caller passes it in. */
export interface FolderBuilds {
  /** The builder a target skipped as unchanged reports (undefined when not known before building). */
  readonly builder: "local" | "docker" | "codebuild" | undefined;
  /** Build, or start building, every target of a staged build folder; undefined when it is not one. */
  syncFolder(request: FolderBuildRequest): Promise<TargetSummary[] | undefined>;
}

/** One staged build folder handed to `FolderBuilds.syncFolder`. */
export interface FolderBuildRequest {
  config: SyncConfig;
  resolved: { commit: string; ref: string };
  spec: FolderSpec;
  stage: FolderStage;
  /** A scratch directory of this run (removed with it). */
  workDir: string;
  started: Date;
  dryRun: boolean;
  force: boolean;
  /** Where the targets' artifacts go (S3 and their pointers, or `--out DIR`). */
  destination: ArtifactDestination;
  /** The folder's fingerprint from the source (GitHub tree SHA), when known. */
  tree?: string | undefined;
  /** `provider:repository:path` of the folder. */
  source: string;
  /** The folder's build plan, computed once by the sync (undefined: the builds plan it themselves). */
  plan?: BuildPlan | undefined;
}
