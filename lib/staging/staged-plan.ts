/** The build plan of a staged folder: read by the sync (is it a build folder?) and by the builds. */

import { planBuild } from "../common/build-plan.ts";
import type { SyncConfig } from "../common/config.ts";
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
