/**
 * Steps 4 and 5 of the sync (see `sync.ts`) for one package the source is done with: checks, zip,
 * verification, then the commit (`lib/artifacts/commit.ts`: upload or `--out`); the pointer write is left
 * for step 6.
 */
import { join } from "node:path";
import { commitArtifact } from "../artifacts/commit.ts";
import { keyTime } from "../artifacts/pointer.ts";
import { ARTIFACT_FORMAT, type ArtifactMetadata, artifactKey } from "../artifacts/store.ts";
import { describeError } from "../common/errors.ts";
import { encodeLayerConfig, parseLayerConfig } from "../common/layer-json.ts";
import { silentLogger } from "../common/log.ts";
import { checkSymlinkChains } from "../common/paths.ts";
import { nearLimitWarning } from "../common/sizes.ts";
import type { RepositorySource } from "../sources/types.ts";
import type { FolderStage } from "../staging/staging.ts";
import { buildZip, LAYER_CONFIG_FILE, verifyZip, type ZipResult } from "../zip/folder-zip.ts";
import type { PackageRun, RunContext } from "./package-run.ts";
import { changeCheckMayFail, sourceId } from "./unchanged.ts";

async function optionalFingerprint(
  source: RepositorySource,
  commit: string,
  w: PackageRun,
): Promise<string | undefined> {
  if (w.changeCheckFailed) return undefined;
  try {
    return await source.folderFingerprint(commit, w.spec.path);
  } catch (error) {
    if (!changeCheckMayFail(error)) throw error;
    w.summary.warnings.push(`the folder fingerprint is not recorded: ${describeError(error)}`);
    return undefined;
  }
}

/**
 * Zip a staged folder, verify the zip and commit it (`commitArtifact`), or hand a build folder to the
 * builds. An upload is not pointed at yet: `w.point` does that once the fetch has confirmed the folder.
 */
export async function zipAndCommitFolder(run: RunContext, w: PackageRun, stage: FolderStage): Promise<void> {
  const { config, resolved, options, deps, destination, started, staging } = run;
  deps.deadline?.check(`package "${w.spec.package}"`);
  // each link was checked on arrival; now that all of them are here, follow them through each other
  const links = stage.list().filter((e) => e.kind === "symlink");
  checkSymlinkChains(links, w.spec.path);
  deps.progress?.({ package: w.spec.package, stage: "zipping", bytes: stage.bytes });
  if (deps.onLayerConfig && stage.has(LAYER_CONFIG_FILE)) {
    const text = (await stage.read(LAYER_CONFIG_FILE)).toString("utf8");
    deps.onLayerConfig(w.spec.path, parseLayerConfig(text, `${w.spec.path}/${LAYER_CONFIG_FILE}`));
  }
  const planned = deps.builds ? await w.plan(config) : undefined;
  if (planned?.error !== undefined) throw planned.error;
  if (deps.builds && planned?.plan) {
    const targets = await deps.builds.syncFolder({
      config,
      resolved,
      spec: w.spec,
      stage,
      workDir: join(staging.runDir, ".build", w.spec.package),
      started,
      dryRun: options.dryRun === true,
      force: options.force === true,
      destination,
      tree: w.fingerprint,
      source: sourceId(config, w.spec.path),
      plan: planned.plan,
    });
    if (targets) {
      w.targets = targets;
      return;
    }
  }
  let layerConfig: string | undefined;
  if (stage.has(LAYER_CONFIG_FILE)) {
    const text = (await stage.read(LAYER_CONFIG_FILE)).toString("utf8");
    layerConfig = encodeLayerConfig(parseLayerConfig(text, `${w.spec.path}/${LAYER_CONFIG_FILE}`));
  }
  const zip: ZipResult = await buildZip(stage, staging.zipPath(w.spec.package));
  stage.countZip(zip.bytes);
  await verifyZip(stage, zip.path);
  let key = artifactKey(config.artifacts.artifactPrefix, w.spec.package, started, resolved.commit);
  Object.assign(w.summary, {
    key,
    files: zip.files,
    bytes: zip.bytes,
    unzippedBytes: zip.unzippedBytes,
    sha256: zip.sha256,
  });
  const near = nearLimitWarning(zip.unzippedBytes);
  if (near) w.summary.warnings.push(near);

  const earlier = w.uploaded;
  if (destination.kind === "s3" && earlier?.sha256 === zip.sha256) {
    // a retried archive download: an earlier delivery of this run uploaded exactly these bytes (it was not
    // unchanged and not a dry run then, so it is not now either)
    w.summary.key = earlier.key;
    w.point = earlier.point;
    return;
  }
  if (destination.kind === "s3" && earlier) {
    // the earlier upload was made from bytes the download's checks later refused: never point at it
    key = replacementKey(config.artifacts.artifactPrefix, w.spec.package, deps.clock(), earlier.key, resolved.commit);
  }
  const metadata: ArtifactMetadata = {
    commit: resolved.commit,
    source: sourceId(config, w.spec.path),
    contentSha256: zip.sha256,
    files: zip.files,
    unzippedBytes: zip.unzippedBytes,
    format: ARTIFACT_FORMAT,
    ref: resolved.ref,
  };
  if (layerConfig) metadata.layerConfig = layerConfig;
  const result = await commitArtifact(destination, {
    package: w.spec.package,
    key,
    zip,
    metadata,
    previous: w.previous,
    now: started,
    description: `layer-sync: latest artifact of ${w.spec.package} (${config.source.repository}/${w.spec.path})`,
    force: options.force,
    dryRun: options.dryRun,
    point: "later",
    warn: (warning) => w.summary.warnings.push(warning),
    beforeUpload: async () => {
      if (earlier) {
        w.summary.key = key;
        const warning = `the archive download was retried after this package had been uploaded from a corrupt copy; uploaded again as ${key}, and ${earlier.key} is left unreferenced`;
        w.summary.warnings.push(warning);
        (deps.logger ?? silentLogger).warn("artifact replaced", {
          package: w.spec.package,
          key,
          unreferenced: earlier.key,
        });
      }
      const fingerprint = w.fingerprint ?? (await optionalFingerprint(deps.source, resolved.commit, w));
      deps.progress?.({ package: w.spec.package, stage: "uploading", bytes: zip.bytes });
      return fingerprint ? { tree: fingerprint } : undefined;
    },
  });
  switch (result.kind) {
    case "skipped":
      Object.assign(w.summary, { skipped: true, reason: result.reason });
      if (result.reason === "unchanged") w.summary.key = result.key;
      return;
    case "written":
      w.outFile = result.file;
      return;
    case "uploaded": {
      // step 6, once the fetch has confirmed the folder (see runSync)
      const point = async () => {
        await result.point();
      };
      w.point = point;
      w.uploaded = { key: result.key, sha256: zip.sha256, point };
      return;
    }
    case "pointed":
      return;
  }
}

/**
 * A key for an artifact that replaces one this run uploaded earlier from bytes that later failed the
 * download's checks: dated by the clock now, and at least a second after the earlier key, so it differs
 * within the key format (`{package}-{YYYYMMDDTHHMMSSZ}-{short commit}.zip`) and sorts after it.
 */
export function replacementKey(prefix: string, pkg: string, now: Date, earlier: string, commit: string): string {
  const after = (keyTime(earlier) ?? 0) + 1000;
  return artifactKey(prefix, pkg, new Date(Math.max(now.getTime(), after)), commit);
}
