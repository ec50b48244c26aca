/**
 * The sync core: one commit, every configured folder, one zip each.
 *
 * 1. Resolve the ref to one commit.
 * 2. For each package, look at the artifact the pointer names. When its metadata says the same source
 *    and format, and the same commit, the same folder fingerprint (GitHub tree SHA) or no change to the
 *    folder between the two commits, the package is skipped before anything is downloaded.
 * 3. Fetch the rest (archive, walk, or auto = archive with a walk fallback) into the staging area.
 * 4. Build and verify each zip. Equal `content-sha256` to the current artifact ⇒ skipped as unchanged.
 * 5. Upload (never overwriting), verify, then move the pointer forward. `--out` writes the zips to a folder
 *    instead and calls no AWS API; `dryRun` builds and reports only.
 *
 * Packages are independent: one failing does not stop the others; its summary entry carries the error.
 */
import { randomBytes } from "node:crypto";
import { copyFile, mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { S3Client } from "@aws-sdk/client-s3";
import type { SSMClient } from "@aws-sdk/client-ssm";
import { type BuildDependencies, type BuildSummary, syncBuiltFolder } from "../build/sync-builds.ts";
import { artifactKeyParameter, type FolderSpec, type SyncConfig } from "../shared/config.ts";
import {
  ArchiveUnavailableError,
  describeError,
  RateLimitError,
  SourceAuthError,
  SourceError,
} from "../shared/errors.ts";
import { encodeLayerConfig, parseLayerConfig } from "../shared/layer-config.ts";
import { type Logger, silentLogger } from "../shared/log.ts";
import { checkSymlinkChains } from "../shared/paths.ts";
import {
  ARTIFACT_FORMAT,
  type ArtifactHead,
  type ArtifactMetadata,
  artifactKey,
  headArtifact,
  type RunInterrupts,
  uploadArtifact,
} from "./artifacts/artifacts.ts";
import { advancePointer, readParameter } from "./artifacts/pointer.ts";
import type { FetchResult, FetchStrategy, FolderTarget, RepositorySource } from "./sources/types.ts";
import { type FolderStage, StagingArea } from "./staging/staging.ts";
import { buildZip, LAYER_CONFIG_FILE, verifyZip, type ZipResult } from "./zip/archive.ts";

export interface PackageSummary {
  name: string;
  path: string;
  key: string | null;
  files: number;
  /** The zip's size. */
  bytes: number;
  /** The entries' uncompressed sizes added up: what counts against Lambda's 250 MB (null when unknown). */
  unzippedBytes: number | null;
  sha256: string | null;
  skipped: boolean;
  reason: string | null;
  warnings: string[];
  /** A layer built from a dependency manifest (one entry per target). */
  build?: BuildSummary | null;
  error?: string;
}

export interface SyncSummary {
  commit: string;
  ref: string;
  strategy: FetchStrategy | "none";
  packages: PackageSummary[];
  requests: { total: number };
}

/** Where one package is: sent to `SyncDependencies.progress` as it moves (the CLI shows it on a terminal). */
export interface SyncProgressEvent {
  package: string;
  stage: "resolving" | "fetching" | "zipping" | "uploading" | "done" | "skipped" | "failed";
  /** Bytes of the zip (uploading, done). */
  bytes?: number;
  /** Bytes received so far (fetching), read when the progress is drawn. */
  readBytes?: () => number;
  /** The skip reason or the error. */
  detail?: string;
}

export interface SyncDependencies {
  source: RepositorySource;
  /** Number of requests sent to the source so far (for the summary). */
  requestCount: () => number;
  s3?: S3Client;
  ssm?: SSMClient;
  clock: () => Date;
  workDir: string;
  /** A Lambda environment runs one invocation at a time: clean every stale run directory. */
  exclusiveWorkDir: boolean;
  logger?: Logger;
  /** Build folders (dependency manifests) are built with this; without it they are mirrored as they are. */
  build?: BuildDependencies | undefined;
  /** Filled in with what a signal handler must undo (the run directory, open multipart uploads). */
  interrupts?: RunInterrupts;
  /** The process that owns the run directory (a later run removes it once this process is gone). */
  ownerPid?: number;
  /** Told each package's stage as it changes. */
  progress?: (event: SyncProgressEvent) => void;
}

export interface SyncOptions {
  /** Overrides the configured ref. */
  ref?: string | undefined;
  /** Overrides the configured folders (must be a subset or new valid folders). */
  folders?: FolderSpec[] | undefined;
  dryRun?: boolean;
  force?: boolean;
  /** Write zips to `DIR/<key>` instead of S3; no AWS call is made. */
  outDir?: string | undefined;
}

interface Work {
  spec: FolderSpec;
  summary: PackageSummary;
  previous?: ArtifactHead | undefined;
  fingerprint?: string | undefined;
  /** The change check failed (and was passed over): do not ask the provider for the fingerprint again. */
  changeCheckFailed?: boolean;
  stage?: FolderStage;
  done: boolean;
  /** The per-target entries of a build folder, which replace `summary`. */
  targets?: PackageSummary[];
}

/** `provider:repository:path`, the `source` metadata value. */
export function sourceId(config: SyncConfig, folder: string): string {
  return `${config.source.provider}:${config.source.repository}:${folder}`;
}

function emptySummary(spec: FolderSpec): PackageSummary {
  return {
    name: spec.package,
    path: spec.path,
    key: null,
    files: 0,
    bytes: 0,
    unzippedBytes: null,
    sha256: null,
    skipped: false,
    reason: null,
    warnings: [],
  };
}

export async function runSync(config: SyncConfig, options: SyncOptions, deps: SyncDependencies): Promise<SyncSummary> {
  const log = deps.logger ?? silentLogger;
  const started = deps.clock();
  const folders = options.folders ?? config.source.folders;
  const progress = deps.progress ?? (() => undefined);
  for (const spec of folders) progress({ package: spec.package, stage: "resolving" });
  const useAws = options.outDir === undefined;
  if (useAws && (!deps.s3 || !deps.ssm || !config.artifacts.bucket)) {
    throw new Error("runSync needs S3 and SSM clients and a bucket unless outDir is set");
  }
  const resolved = await deps.source.resolveRef(options.ref ?? config.source.ref);
  log.info("resolved ref", { ref: resolved.ref, commit: resolved.commit });

  const work: Work[] = folders.map((spec) => ({ spec, summary: emptySummary(spec), done: false }));
  const fail = (w: Work, error: unknown) => {
    w.summary.error = describeError(error);
    w.done = true;
    log.error("package failed", { package: w.spec.package, error: w.summary.error });
    progress({ package: w.spec.package, stage: "failed", detail: w.summary.error });
  };
  const finished = (w: Work) => {
    for (const p of w.targets ?? [w.summary]) {
      const stage = p.error ? "failed" : p.skipped ? "skipped" : "done";
      progress({ package: p.name, stage, bytes: p.bytes, detail: p.error ?? p.reason ?? undefined });
    }
  };

  // 2. skip before download where the metadata proves nothing changed
  for (const w of work) {
    try {
      await checkUnchanged(config, resolved.commit, w, deps, useAws && !options.force);
      if (w.done) finished(w);
    } catch (error) {
      fail(w, error);
    }
  }

  const staging = await StagingArea.create(
    deps.workDir,
    `${started.getTime()}-${randomBytes(4).toString("hex")}`,
    { maxFiles: config.source.maxFiles, maxBytes: config.source.maxBytes },
    {
      exclusive: deps.exclusiveWorkDir,
      now: started.getTime(),
      packSmallFiles: true,
      ...(deps.ownerPid === undefined ? {} : { ownerPid: deps.ownerPid }),
    },
  );
  if (deps.interrupts) deps.interrupts.staging = staging;
  let used: FetchStrategy | "none" = "none";
  try {
    // 3. fetch what is left
    const pending = work.filter((w) => !w.done);
    const targets: FolderTarget[] = [];
    for (const w of pending) {
      const stage = await staging.stage(w.spec.path, w.spec.package);
      w.stage = stage;
      targets.push({ folder: w.spec.path, sink: stage });
      progress({ package: w.spec.package, stage: "fetching", readBytes: () => stage.bytes });
    }
    if (targets.length) {
      const fetched = await fetchFolders(config, deps.source, resolved.commit, targets, log);
      used = fetched.strategy;
      for (const w of pending) {
        w.summary.warnings.push(...fetched.result.warnings);
        const outcome = fetched.result.outcomes.find((o) => o.folder === w.spec.path);
        if (outcome?.error) fail(w, outcome.error);
      }
    }
    // 4./5. zip, compare, upload, point
    for (const w of pending) {
      if (w.done || !w.stage) continue;
      try {
        await finishPackage(config, resolved, w, w.stage, staging, options, deps, started);
        finished(w);
      } catch (error) {
        fail(w, error);
      }
    }
  } finally {
    await staging.dispose();
    if (deps.interrupts) deps.interrupts.staging = undefined;
  }
  const summary: SyncSummary = {
    commit: resolved.commit,
    ref: resolved.ref,
    strategy: used,
    packages: work.flatMap((w) => w.targets ?? [w.summary]),
    requests: { total: deps.requestCount() },
  };
  log.info("sync finished", {
    commit: summary.commit,
    failed: work.filter((w) => w.summary.error).length,
    skipped: work.filter((w) => w.summary.skipped).length,
    requests: summary.requests.total,
  });
  return summary;
}

/**
 * Whether a failed "did this folder change?" lookup may be passed over. Proxies, Data Center-style hosts and
 * narrower permissions answer 404, 403 or 5xx (or an unexpected shape) to it; fetching the folder still works.
 * A wrong token or an exhausted rate limit would fail the fetch too, so those are not passed over.
 */
function changeCheckMayFail(error: unknown): boolean {
  return error instanceof SourceError && !(error instanceof SourceAuthError) && !(error instanceof RateLimitError);
}

async function checkUnchanged(
  config: SyncConfig,
  commit: string,
  w: Work,
  deps: SyncDependencies,
  mayUseAws: boolean,
): Promise<void> {
  if (!mayUseAws || !deps.s3 || !deps.ssm || !config.artifacts.bucket) return;
  const pointer = artifactKeyParameter(config.artifacts.parameterPrefix, w.spec.package);
  const key = await readParameter(deps.ssm, pointer);
  if (!key) return;
  w.previous = await headArtifact(deps.s3, config.artifacts.bucket, key);
  const prev = w.previous?.metadata;
  if (!prev || prev.source !== sourceId(config, w.spec.path) || prev.format !== ARTIFACT_FORMAT) return;
  let unchanged = prev.commit === commit;
  if (!unchanged) {
    try {
      w.fingerprint = await deps.source.folderFingerprint(commit, w.spec.path);
      if (w.fingerprint !== undefined && prev.tree !== undefined) unchanged = w.fingerprint === prev.tree;
      else if (w.fingerprint === undefined) {
        unchanged = (await deps.source.folderChanged(w.spec.path, prev.commit, commit)) === false;
      }
    } catch (error) {
      if (!changeCheckMayFail(error)) throw error;
      // only an optimisation: fetch the folder, and the zip's SHA-256 decides (step 4)
      w.changeCheckFailed = true;
      const warning = `could not tell cheaply whether "${w.spec.path}" changed since ${prev.commit.slice(0, 7)} (${describeError(error)}); fetched it and compared the zip's SHA-256 with the current artifact instead`;
      w.summary.warnings.push(warning);
      (deps.logger ?? silentLogger).warn("change check failed", { package: w.spec.package, warning });
    }
  }
  if (unchanged) {
    Object.assign(w.summary, {
      key,
      files: prev.files,
      bytes: w.previous?.size ?? 0,
      unzippedBytes: prev.unzippedBytes ?? null,
      sha256: prev.contentSha256,
      skipped: true,
      reason: "unchanged",
    });
    w.done = true;
  }
}

async function fetchFolders(
  config: SyncConfig,
  source: RepositorySource,
  commit: string,
  targets: FolderTarget[],
  log: Logger,
): Promise<{ strategy: FetchStrategy; result: FetchResult }> {
  const strategy = config.source.strategy;
  if (strategy === "walk") return { strategy: "walk", result: await source.walk(commit, targets) };
  if (strategy === "archive") return { strategy: "archive", result: await source.archive(commit, targets) };
  try {
    return { strategy: "archive", result: await source.archive(commit, targets) };
  } catch (error) {
    if (!(error instanceof ArchiveUnavailableError)) throw error;
    const warning = `archive download unavailable, fell back to walking the API: ${describeError(error)}`;
    log.warn(warning);
    const result = await source.walk(commit, targets);
    result.warnings.unshift(warning);
    return { strategy: "walk", result };
  }
}

/** The folder's fingerprint for the metadata, or none when the provider cannot give it (it is optional). */
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

async function finishPackage(
  config: SyncConfig,
  resolved: { commit: string; ref: string },
  w: Work,
  stage: FolderStage,
  staging: StagingArea,
  options: SyncOptions,
  deps: SyncDependencies,
  started: Date,
): Promise<void> {
  // each link was checked on arrival; now that all of them are here, follow them through each other
  const links = stage.list().filter((e) => e.kind === "symlink");
  checkSymlinkChains(links, w.spec.path);
  deps.progress?.({ package: w.spec.package, stage: "zipping", bytes: stage.bytes });
  if (deps.build) {
    const targets = await syncBuiltFolder({
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
      build: deps.build,
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
  await verifyZip(stage, zip.path);
  const key = artifactKey(config.artifacts.artifactPrefix, w.spec.package, started, resolved.commit);
  Object.assign(w.summary, {
    key,
    files: zip.files,
    bytes: zip.bytes,
    unzippedBytes: zip.unzippedBytes,
    sha256: zip.sha256,
  });

  if (options.outDir !== undefined) {
    const out = join(options.outDir, ...key.split("/"));
    await mkdir(dirname(out), { recursive: true });
    await copyFile(zip.path, out);
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
  deps.progress?.({ package: w.spec.package, stage: "uploading", bytes: zip.bytes });
  await uploadArtifact(s3, { bucket, key, file: zip.path, metadata }, deps.interrupts);
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
}
