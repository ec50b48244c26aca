/**
 * Step 2 of the sync (see `sync.ts`): which packages are unchanged since the artifact their pointer names,
 * decided before anything is downloaded, with the source asked once about all of them.
 */
import { currentArtifact, type S3Destination } from "../artifacts/commit.ts";
import { ARTIFACT_FORMAT, type ArtifactMetadata } from "../artifacts/store.ts";
import type { SyncConfig } from "../common/config.ts";
import { describeError, RateLimitError, SourceAuthError, SourceError } from "../common/errors.ts";
import { silentLogger } from "../common/log.ts";
import type { ChangeAnswer } from "../sources/types.ts";
import type { PackageRun } from "./package-run.ts";
import type { SyncDependencies } from "./sync.ts";

/** `provider:repository:path`, the `source` metadata value. */
export function sourceId(config: SyncConfig, folder: string): string {
  return `${config.source.provider}:${config.source.repository}:${folder}`;
}

/**
 * Whether a failed "did this folder change?" lookup may be passed over. Proxies, Data Center-style hosts and
 * narrower permissions answer 404, 403 or 5xx (or an unexpected shape) to it; fetching the folder still works.
 * A wrong token or an exhausted rate limit would fail the fetch too, so those are not passed over.
 */
export function changeCheckMayFail(error: unknown): boolean {
  return error instanceof SourceError && !(error instanceof SourceAuthError) && !(error instanceof RateLimitError);
}

interface Candidate {
  w: PackageRun;
  key: string;
  prev: ArtifactMetadata;
}

/**
 * Step 2 for every package: read each pointer and artifact, then ask the source once about all the
 * packages whose artifact is from another commit. When that batched call fails (in a way a fetch would
 * survive), each package is asked on its own, with a warning.
 */
export async function checkUnchanged(
  config: SyncConfig,
  commit: string,
  work: PackageRun[],
  deps: SyncDependencies,
  destination: S3Destination,
): Promise<void> {
  const candidates: Candidate[] = [];
  for (const w of work) {
    try {
      const c = await previousArtifact(config, w, destination);
      if (!c) continue;
      if (c.prev.commit === commit) markUnchanged(c, deps);
      else candidates.push(c);
    } catch (error) {
      w.fail(error);
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
      for (const c of candidates) c.w.fail(error);
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
      c.w.fail(error);
    }
  }
}

/** The package's current artifact, when its metadata is of this source and format. */
async function previousArtifact(
  config: SyncConfig,
  w: PackageRun,
  destination: S3Destination,
): Promise<Candidate | undefined> {
  const { key, head } = await currentArtifact(destination, w.spec.package);
  if (!key) return undefined;
  w.previous = head;
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
  const builder = deps.builds?.builder;
  if (prev.build && builder) w.summary.build = { ...prev.build, builder, id: null };
  w.markUnchanged();
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
