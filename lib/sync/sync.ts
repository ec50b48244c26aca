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
 * Each package is a `PackageRun` (package-run.ts) with one `state`; its zip and commit are in
 * zip-and-commit.ts, the commit sequence itself in lib/artifacts/commit.ts.
 */

import { randomBytes } from "node:crypto";
import type { S3Client } from "@aws-sdk/client-s3";
import type { SSMClient } from "@aws-sdk/client-ssm";
import { type ArtifactDestination, dirDestination, s3Destination } from "../artifacts/commit.ts";
import type { RunInterrupts } from "../artifacts/store.ts";
import type { FolderSpec, SyncConfig } from "../common/config.ts";
import type { RunDeadline } from "../common/deadline.ts";
import { ArchiveUnavailableError, describeError } from "../common/errors.ts";
import type { LayerOverrides } from "../common/layer-json.ts";
import { type Logger, silentLogger } from "../common/log.ts";
import type { SyncSummary } from "../common/summary.ts";
import type { EntrySink, FetchResult, FetchStrategy, FolderTarget, RepositorySource } from "../sources/types.ts";
import type { FolderBuilds } from "../staging/staged-plan.ts";
import { StagingArea } from "../staging/staging.ts";
import { deflatePool } from "../zip/deflate-pool.ts";
import { ZIP_LEVEL } from "../zip/writer.ts";
import { CommitQueue, PackageRun, type RunContext } from "./package-run.ts";
import { checkUnchanged } from "./unchanged.ts";

export type { PackageSummary, SyncSummary } from "../common/summary.ts";
export type { FolderBuildRequest, FolderBuilds } from "../staging/staged-plan.ts";
export { sourceId } from "./unchanged.ts";

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
  /**
   * Build folders (dependency manifests) are built with this (lib/builds `folderBuilds`: locally, or started
   * in CodeBuild by the Lambda sync); without it they are mirrored as they are.
   */
  builds?: FolderBuilds | undefined;
  /** Filled in with what a signal handler must undo (the run directory, open multipart uploads). */
  interrupts?: RunInterrupts;
  /** The process that owns the run directory (a later run removes it once this process is gone). */
  ownerPid?: number;
  /** Past it, no package is zipped, no upload starts and no pointer is written (the HTTP client aborts too). */
  deadline?: RunDeadline;
  /** Told each package's stage as it changes. */
  progress?: (event: SyncProgressEvent) => void;
  /**
   * Told the parsed `layer.json` of each folder that has one (by folder path), before it is zipped or built:
   * `sync --out DIR --smoke` takes the modules to import from its `"smoke"`.
   */
  onLayerConfig?: (path: string, overrides: LayerOverrides) => void;
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

export async function runSync(config: SyncConfig, options: SyncOptions, deps: SyncDependencies): Promise<SyncSummary> {
  const log = deps.logger ?? silentLogger;
  const started = deps.clock();
  const folders = options.folders ?? config.source.folders;
  const progress = deps.progress ?? (() => undefined);
  for (const spec of folders) progress({ package: spec.package, stage: "resolving" });
  const destination = syncDestination(config, options, deps);
  // the deflate worker starts while the ref resolves (see `DeflatePool.warm`)
  deflatePool(ZIP_LEVEL).warm(1);
  const resolved = await deps.source.resolveRef(options.ref ?? config.source.ref);
  log.info("resolved ref", { ref: resolved.ref, commit: resolved.commit });

  const work = folders.map((spec) => new PackageRun(spec, { log, progress }));
  // 2. skip before download where the metadata proves nothing changed
  if (destination.kind === "s3" && !options.force) {
    await checkUnchanged(config, resolved.commit, work, deps, destination);
  }
  for (const p of work) if (p.state === "unchanged") p.report();

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
    const owners = new Map(work.map((p) => [p.spec.package, p.spec.path]));
    const run: RunContext = { config, resolved, options, deps, destination, started, staging, owners, log };
    // 3. fetch what is left; 4./5. each package committed as soon as the source is done with it
    const pending = work.filter((p) => p.state === "pending");
    const queue = new CommitQueue(run);
    const targets: FolderTarget[] = [];
    for (const p of pending) {
      const stage = await staging.stage(p.spec.path, p.spec.package);
      p.fetch(stage);
      const sink: EntrySink = {
        folder: stage.folder,
        file: (path, body, opts) => stage.file(path, body, opts),
        symlink: (path, target) => stage.symlink(path, target),
        reset: () => queue.redeliver(p, stage),
      };
      targets.push({ folder: p.spec.path, sink, complete: (error) => queue.settle(p, error) });
    }
    if (targets.length) {
      let fetched: Awaited<ReturnType<typeof fetchFolders>>;
      try {
        fetched = await fetchFolders(config, deps.source, resolved.commit, targets, log);
      } finally {
        await queue.fetchReturned();
      }
      used = fetched.strategy;
      for (const p of pending) {
        p.summary.warnings.push(...fetched.result.warnings);
        const error = fetched.result.outcomes.find((o) => o.folder === p.spec.path)?.error;
        if (p.awaitsCommit) await p.commit(run, error);
        else await p.confirm(error);
      }
    }
    // 6. point at what was uploaded, now that the fetch has confirmed it
    for (const p of pending) {
      await p.pointForward();
      if (!p.summary.error) p.report();
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
    packages: work.flatMap((p) => p.targets ?? [p.summary]),
    requests: { total: deps.requestCount() },
  };
  log.info("sync finished", {
    commit: summary.commit,
    failed: work.filter((p) => p.summary.error).length,
    skipped: work.filter((p) => p.summary.skipped).length,
    requests: summary.requests.total,
  });
  return summary;
}

/** `--out DIR`, or S3 with the clients and bucket the caller gave (one of the two is required). */
function syncDestination(config: SyncConfig, options: SyncOptions, deps: SyncDependencies): ArtifactDestination {
  const { artifactPrefix, parameterPrefix, bucket } = config.artifacts;
  if (options.outDir !== undefined) return dirDestination(options.outDir, artifactPrefix);
  if (!deps.s3 || !deps.ssm || !bucket) {
    throw new Error("runSync needs S3 and SSM clients and a bucket unless outDir is set");
  }
  return s3Destination({
    s3: deps.s3,
    ssm: deps.ssm,
    bucket,
    artifactPrefix,
    parameterPrefix,
    interrupts: deps.interrupts,
    deadline: deps.deadline,
    logger: deps.logger,
  });
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
  // an archive's entries arrive faster than one worker compresses them
  deflatePool(ZIP_LEVEL).warm(2);
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
