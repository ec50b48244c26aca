/**
 * Steps 4 and 5 of the sync (see `sync.ts`) for one package the source is done with: checks, zip,
 * verification, then the upload (or `--out`); the pointer write is left for step 6.
 */
import { mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { S3Client } from "@aws-sdk/client-s3";
import type { SSMClient } from "@aws-sdk/client-ssm";
import { newestOutZip } from "../artifacts/out-dir.ts";
import { advancePointer, keyTime } from "../artifacts/pointer.ts";
import { ARTIFACT_FORMAT, type ArtifactMetadata, artifactKey, uploadArtifact } from "../artifacts/store.ts";
import { artifactKeyParameter, type SyncConfig } from "../common/config.ts";
import { ConfigError, describeError } from "../common/errors.ts";
import { moveFile } from "../common/files.ts";
import { encodeLayerConfig, parseLayerConfig } from "../common/layer-json.ts";
import { silentLogger } from "../common/log.ts";
import { checkSymlinkChains } from "../common/paths.ts";
import { nearLimitWarning } from "../common/sizes.ts";
import type { RepositorySource } from "../sources/types.ts";
import { planStagedFolder } from "../staging/staged-plan.ts";
import type { FolderStage, StagingArea } from "../staging/staging.ts";
import { buildZip, LAYER_CONFIG_FILE, verifyZip, type ZipResult } from "../zip/folder-zip.ts";
import type { SyncDependencies, SyncOptions, Work } from "./sync.ts";
import { changeCheckMayFail, sourceId } from "./unchanged.ts";

/**
 * A build folder whose targets take the package name of another folder, or of another build folder's
 * target, is a configuration error naming both. `owners` maps each package name to the folder that holds it
 * (every configured folder first, then each build folder's targets as it is finished).
 */
export async function checkTargetNames(
  config: SyncConfig,
  owners: Map<string, string>,
  w: Work,
  stage: FolderStage,
): Promise<void> {
  // a folder that cannot be planned fails in finishPackage with its own message
  const plan = await planStagedFolder(config, w.spec.path, stage, w.spec.package).catch(() => undefined);
  for (const t of plan && plan.targets.length > 1 ? plan.targets : []) {
    const other = owners.get(t.package);
    if (other !== undefined && other !== w.spec.path) {
      throw new ConfigError(
        `folder "${w.spec.path}" builds package "${t.package}" (${t.runtime} ${t.architecture}), which is also the package of folder "${other}"; rename one of the two folders`,
      );
    }
  }
  for (const t of plan?.targets ?? []) owners.set(t.package, w.spec.path);
}

async function optionalFingerprint(source: RepositorySource, commit: string, w: Work): Promise<string | undefined> {
  if (w.changeCheckFailed) return undefined;
  try {
    return await source.folderFingerprint(commit, w.spec.path);
  } catch (error) {
    if (!changeCheckMayFail(error)) throw error;
    w.summary.warnings.push(`the folder fingerprint is not recorded: ${describeError(error)}`);
    return undefined;
  }
}

export async function finishPackage(
  config: SyncConfig,
  resolved: { commit: string; ref: string },
  w: Work,
  stage: FolderStage,
  staging: StagingArea,
  options: SyncOptions,
  deps: SyncDependencies,
  started: Date,
): Promise<void> {
  deps.deadline?.check(`package "${w.spec.package}"`);
  // each link was checked on arrival; now that all of them are here, follow them through each other
  const links = stage.list().filter((e) => e.kind === "symlink");
  checkSymlinkChains(links, w.spec.path);
  deps.progress?.({ package: w.spec.package, stage: "zipping", bytes: stage.bytes });
  if (deps.onLayerConfig && stage.has(LAYER_CONFIG_FILE)) {
    const text = (await stage.read(LAYER_CONFIG_FILE)).toString("utf8");
    deps.onLayerConfig(w.spec.path, parseLayerConfig(text, `${w.spec.path}/${LAYER_CONFIG_FILE}`));
  }
  if (deps.builds) {
    const targets = await deps.builds.syncFolder({
      config,
      resolved,
      spec: w.spec,
      stage,
      workDir: join(staging.runDir, ".build", w.spec.package),
      started,
      outDir: options.outDir,
      dryRun: options.dryRun === true,
      force: options.force === true,
      s3: deps.s3,
      ssm: deps.ssm,
      tree: w.fingerprint,
      source: sourceId(config, w.spec.path),
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
  if (options.outDir !== undefined) {
    const existing = options.force
      ? undefined
      : await newestOutZip(options.outDir, config.artifacts.artifactPrefix, w.spec.package);
    if (existing?.sha256 === zip.sha256) {
      Object.assign(w.summary, { key: existing.key, skipped: true, reason: "unchanged" });
      return;
    }
    const out = join(options.outDir, ...key.split("/"));
    await mkdir(dirname(out), { recursive: true });
    await moveFile(zip.path, out); // verified above; the staging area is done with it
    w.outFile = out;
    return;
  }
  const prev = w.previous?.metadata;
  if (!options.force && prev && prev.contentSha256 === zip.sha256) {
    Object.assign(w.summary, { key: w.previous?.key ?? key, skipped: true, reason: "unchanged" });
    return;
  }
  if (options.dryRun) {
    Object.assign(w.summary, { skipped: true, reason: "dry-run" });
    return;
  }
  const earlier = w.uploaded;
  if (earlier?.sha256 === zip.sha256) {
    // a retried archive download: an earlier delivery of this run uploaded exactly these bytes
    w.summary.key = earlier.key;
    w.point = earlier.point;
    return;
  }
  if (earlier) {
    // the earlier upload was made from bytes the download's checks later refused: never point at it
    key = replacementKey(config.artifacts.artifactPrefix, w.spec.package, deps.clock(), earlier.key, resolved.commit);
    w.summary.key = key;
    const warning = `the archive download was retried after this package had been uploaded from a corrupt copy; uploaded again as ${key}, and ${earlier.key} is left unreferenced`;
    w.summary.warnings.push(warning);
    (deps.logger ?? silentLogger).warn("artifact replaced", {
      package: w.spec.package,
      key,
      unreferenced: earlier.key,
    });
  }
  const s3 = deps.s3 as S3Client;
  const ssm = deps.ssm as SSMClient;
  const bucket = config.artifacts.bucket as string;
  const fingerprint = w.fingerprint ?? (await optionalFingerprint(deps.source, resolved.commit, w));
  const metadata: ArtifactMetadata = {
    commit: resolved.commit,
    source: sourceId(config, w.spec.path),
    contentSha256: zip.sha256,
    files: zip.files,
    unzippedBytes: zip.unzippedBytes,
    format: ARTIFACT_FORMAT,
    ref: resolved.ref,
  };
  if (fingerprint) metadata.tree = fingerprint;
  if (layerConfig) metadata.layerConfig = layerConfig;
  deps.deadline?.check(`uploading package "${w.spec.package}"`);
  deps.progress?.({ package: w.spec.package, stage: "uploading", bytes: zip.bytes });
  await uploadArtifact(s3, { bucket, key, file: zip.path, metadata }, deps.interrupts).catch((error: unknown) => {
    throw deps.deadline?.passed ? deps.deadline.error(`uploading package "${w.spec.package}"`, error) : error;
  });
  // step 6, once the fetch has confirmed the folder (see runSync)
  const uploadedKey = key;
  w.point = async () => {
    const key = uploadedKey;
    deps.deadline?.check(`pointing package "${w.spec.package}" at ${key}`);
    const pointer = artifactKeyParameter(config.artifacts.parameterPrefix, w.spec.package);
    const outcome = await advancePointer(
      ssm,
      pointer,
      key,
      `layer-sync: latest artifact of ${w.spec.package} (${config.source.repository}/${w.spec.path})`,
      started,
    );
    if (outcome === "superseded") {
      w.summary.warnings.push("a newer run already pointed at a newer artifact; the pointer was left on it");
      (deps.logger ?? silentLogger).warn("pointer superseded", { package: w.spec.package, key });
    }
  };
  w.uploaded = { key, sha256: zip.sha256, point: w.point };
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

/** Whether the staged folder is a build folder (dependency manifests); one that cannot be planned counts. */
export async function isBuildFolder(config: SyncConfig, w: Work, stage: FolderStage): Promise<boolean> {
  return planStagedFolder(config, w.spec.path, stage, w.spec.package).then(
    (plan) => plan !== undefined,
    () => true,
  );
}
