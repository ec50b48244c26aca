/**
 * The sync core: one commit, every configured folder, one zip each.
 *
 * 1. Resolve the ref to one commit.
 * 2. For each package, look at the artifact the pointer names. When its metadata says the same source
 *    and format, and the same commit, the same folder fingerprint (GitHub tree SHA) or no change to the
 *    folder between the two commits, the package is skipped before anything is downloaded. The source is
 *    asked about all packages at once (`changedFolders`: a few requests whatever their number); only when
 *    that fails is each package asked on its own, with a warning.
 * 3. Fetch the rest (archive, walk, or auto = archive with a walk fallback) into the staging area, one
 *    package after another: as soon as the source is done with a package (an archive: when the stream
 *    leaves its folder; the download waits meanwhile),
 * 4. its zip is built and verified (equal `content-sha256` to the current artifact ⇒ skipped as unchanged),
 * 5. uploaded (never overwriting) and verified, or written to `--out`, and the package leaves the staging
 *    area. `/tmp` therefore holds about one package and its zip at a time. `dryRun` builds and reports only.
 * 6. Once the fetch has confirmed every package it delivered, the pointers move forward.
 *
 * Packages are independent: one failing does not stop the others; its summary entry carries the error.
 */
import { randomBytes } from "node:crypto";
import { copyFile, mkdir, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { S3Client } from "@aws-sdk/client-s3";
import type { SSMClient } from "@aws-sdk/client-ssm";
import type { CodeBuildDependencies } from "../build/codebuild.ts";
import { type BuildDependencies, type BuildSummary, planStagedFolder, syncBuiltFolder } from "../build/sync-builds.ts";
import { artifactKeyParameter, type FolderSpec, type SyncConfig } from "../shared/config.ts";
import type { RunDeadline } from "../shared/deadline.ts";
import {
  ArchiveUnavailableError,
  ConfigError,
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
import type { ChangeAnswer, FetchResult, FetchStrategy, FolderTarget, RepositorySource } from "./sources/types.ts";
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
  /** Build folders are built in CodeBuild (the Lambda sync): the builds are started and the run returns. */
  codebuild?: CodeBuildDependencies | undefined;
  /** Filled in with what a signal handler must undo (the run directory, open multipart uploads). */
  interrupts?: RunInterrupts;
  /** The process that owns the run directory (a later run removes it once this process is gone). */
  ownerPid?: number;
  /** Past it, no package is zipped, no upload starts and no pointer is written (the HTTP client aborts too). */
  deadline?: RunDeadline;
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
  /** Finished (zipped and uploaded, or failed) and removed from the staging area. */
  settled?: boolean;
  /** Moves the pointer to the uploaded artifact, once the fetch has confirmed the folder. */
  point?: () => Promise<void>;
  /** The zip written to `--out`, removed again if the fetch fails the folder afterwards. */
  outFile?: string;
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
  if (useAws && !options.force) await checkUnchanged(config, resolved.commit, work, deps, fail);
  for (const w of work) if (w.done && !w.summary.error) finished(w);

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
    // 4./5. zip, compare, upload (or write to --out), then leave the staging area; once per package
    const owners = new Map(work.map((w) => [w.spec.package, w.spec.path]));
    const settle = async (w: Work, error?: Error): Promise<void> => {
      if (w.settled || !w.stage) return;
      w.settled = true;
      try {
        if (error) fail(w, error);
        else {
          if (deps.build || deps.codebuild) await checkTargetNames(config, owners, w, w.stage);
          await finishPackage(config, resolved, w, w.stage, staging, options, deps, started);
        }
      } catch (thrown) {
        fail(w, thrown);
      } finally {
        log.info("package left staging", { package: w.spec.package, stagedBytes: w.stage.diskBytes });
        await staging.release(w.stage);
        await rm(join(staging.runDir, ".build", w.spec.package), { recursive: true, force: true });
      }
    };
    // 3. fetch what is left, each package finished as soon as the source is done with it
    const pending = work.filter((w) => !w.done);
    const targets: FolderTarget[] = [];
    for (const w of pending) {
      const stage = await staging.stage(w.spec.path, w.spec.package);
      w.stage = stage;
      targets.push({ folder: w.spec.path, sink: stage, complete: (error) => settle(w, error) });
      progress({ package: w.spec.package, stage: "fetching", readBytes: () => stage.bytes });
    }
    if (targets.length) {
      const fetched = await fetchFolders(config, deps.source, resolved.commit, targets, log);
      used = fetched.strategy;
      for (const w of pending) {
        w.summary.warnings.push(...fetched.result.warnings);
        const outcome = fetched.result.outcomes.find((o) => o.folder === w.spec.path);
        // a source that did not finish the package: finish it now
        if (!w.settled) await settle(w, outcome?.error);
        else if (outcome?.error && !w.done) {
          // failed after it was finished (an archive naming its paths again): never point at it
          fail(w, outcome.error);
          if (w.outFile) await rm(w.outFile, { force: true });
        }
      }
    }
    // 6. point at what was uploaded, now that the fetch has confirmed it
    for (const w of pending) {
      if (!w.done && w.point) {
        try {
          await w.point();
        } catch (error) {
          fail(w, error);
        }
      }
      if (!w.summary.error) finished(w);
    }
    log.info("staging peak", { bytes: staging.peakBytes });
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
 * A build folder whose targets take the package name of another folder, or of another build folder's
 * target, is a configuration error naming both. `owners` maps each package name to the folder that holds it
 * (every configured folder first, then each build folder's targets as it is finished).
 */
async function checkTargetNames(
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

/**
 * Whether a failed "did this folder change?" lookup may be passed over. Proxies, Data Center-style hosts and
 * narrower permissions answer 404, 403 or 5xx (or an unexpected shape) to it; fetching the folder still works.
 * A wrong token or an exhausted rate limit would fail the fetch too, so those are not passed over.
 */
function changeCheckMayFail(error: unknown): boolean {
  return error instanceof SourceError && !(error instanceof SourceAuthError) && !(error instanceof RateLimitError);
}

interface Candidate {
  w: Work;
  key: string;
  prev: ArtifactMetadata;
}

/**
 * Step 2 for every package: read each pointer and artifact, then ask the source once about all the
 * packages whose artifact is from another commit. When that batched call fails (in a way a fetch would
 * survive), each package is asked on its own, with a warning.
 */
async function checkUnchanged(
  config: SyncConfig,
  commit: string,
  work: Work[],
  deps: SyncDependencies,
  fail: (w: Work, error: unknown) => void,
): Promise<void> {
  if (!deps.s3 || !deps.ssm || !config.artifacts.bucket) return;
  const candidates: Candidate[] = [];
  for (const w of work) {
    try {
      const c = await previousArtifact(config, w, deps);
      if (!c) continue;
      if (c.prev.commit === commit) markUnchanged(c, deps);
      else candidates.push(c);
    } catch (error) {
      fail(w, error);
    }
  }
  if (candidates.length === 0) return;
  let answers: Map<string, ChangeAnswer> | undefined;
  try {
    answers = await deps.source.changedFolders(
      commit,
      candidates.map((c) => ({ folder: c.w.spec.path, since: c.prev.commit, tree: c.prev.tree })),
    );
  } catch (error) {
    if (!changeCheckMayFail(error)) {
      for (const c of candidates) fail(c.w, error);
      return;
    }
    const warning = `could not check the ${candidates.length} folders for changes in one go (${describeError(error)}); checked them one by one`;
    (deps.logger ?? silentLogger).warn("batched change check failed", { warning });
    for (const c of candidates) c.w.summary.warnings.push(warning);
  }
  for (const c of candidates) {
    const answer = answers?.get(c.w.spec.path);
    if (answer) {
      if (answer.fingerprint !== undefined) c.w.fingerprint = answer.fingerprint;
      if (!answer.changed) markUnchanged(c, deps);
      continue;
    }
    try {
      await checkOne(commit, c, deps);
    } catch (error) {
      fail(c.w, error);
    }
  }
}

/** The package's current artifact, when its metadata is of this source and format. */
async function previousArtifact(config: SyncConfig, w: Work, deps: SyncDependencies): Promise<Candidate | undefined> {
  const pointer = artifactKeyParameter(config.artifacts.parameterPrefix, w.spec.package);
  const key = await readParameter(deps.ssm as SSMClient, pointer);
  if (!key) return undefined;
  w.previous = await headArtifact(deps.s3 as S3Client, config.artifacts.bucket as string, key);
  const prev = w.previous?.metadata;
  if (!prev || prev.source !== sourceId(config, w.spec.path) || prev.format !== ARTIFACT_FORMAT) return undefined;
  return { w, key, prev };
}

function markUnchanged({ w, key, prev }: Candidate, deps: SyncDependencies): void {
  Object.assign(w.summary, {
    key,
    files: prev.files,
    bytes: w.previous?.size ?? 0,
    unzippedBytes: prev.unzippedBytes ?? null,
    sha256: prev.contentSha256,
    skipped: true,
    reason: "unchanged",
  });
  // a single-target build folder: its artifact says what it was built for (the builder is this run's)
  const builder = deps.codebuild ? "codebuild" : deps.build?.kind === "auto" ? undefined : deps.build?.kind;
  if (prev.build && builder) w.summary.build = { ...prev.build, builder, id: null };
  w.done = true;
}

/** One package on its own (the batched check could not tell). */
async function checkOne(commit: string, c: Candidate, deps: SyncDependencies): Promise<void> {
  const { w, prev } = c;
  let unchanged = false;
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
  if (unchanged) markUnchanged(c, deps);
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
  deps.deadline?.check(`package "${w.spec.package}"`);
  // each link was checked on arrival; now that all of them are here, follow them through each other
  const links = stage.list().filter((e) => e.kind === "symlink");
  checkSymlinkChains(links, w.spec.path);
  deps.progress?.({ package: w.spec.package, stage: "zipping", bytes: stage.bytes });
  if (deps.build || deps.codebuild) {
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
      codebuild: deps.codebuild,
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
  w.point = async () => {
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
}
