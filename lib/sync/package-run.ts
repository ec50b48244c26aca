/**
 * One package through one sync run (see `sync.ts`), as a state machine with one `state`:
 *
 * ```
 * pending ──change check──▶ unchanged            pending ──error──▶ failed
 * pending ──staged──▶ fetching ──source done──▶ committing ──▶ committed | uploaded | failed
 *                     fetching ──source done, a build folder while the fetch goes on──▶ deferred
 *                     deferred | fetching ──fetch returned──▶ committing
 * uploaded ──fetch confirmed, pointer moved──▶ pointed            (or failed)
 * committed | uploaded ──fetch failed the folder afterwards──▶ failed (an --out zip is removed)
 * any delivered state ──a retried download delivers it again──▶ fetching
 * ```
 *
 * `CommitQueue` runs the commits one at a time while the next package downloads. A build folder's plan is
 * computed once per delivery (`plan()`) and carried to the builds.
 */
import { rm } from "node:fs/promises";
import { join } from "node:path";
import type { ArtifactDestination } from "../artifacts/commit.ts";
import type { ArtifactHead } from "../artifacts/store.ts";
import type { BuildPlan } from "../common/build-plan.ts";
import type { FolderSpec, SyncConfig } from "../common/config.ts";
import { ConfigError, describeError } from "../common/errors.ts";
import type { Logger } from "../common/log.ts";
import { emptyPackageSummary, type PackageSummary } from "../common/summary.ts";
import { planStagedFolder } from "../staging/staged-plan.ts";
import type { FolderStage, StagingArea } from "../staging/staging.ts";
import type { SyncDependencies, SyncOptions, SyncProgressEvent } from "./sync.ts";
import { zipAndCommitFolder } from "./zip-and-commit.ts";

export type PackageState =
  /** Waiting for the change check, then for the fetch. */
  | "pending"
  /** Skipped before download: the metadata proves nothing changed. */
  | "unchanged"
  /** The source is delivering it into its stage. */
  | "fetching"
  /** A build folder the source is done with; committed once the fetch has returned. */
  | "deferred"
  /** The source is done with it: being zipped (or built) and committed, or waiting its turn. */
  | "committing"
  /** Committed with nothing left to point at: skipped, written to --out, or a build folder's targets. */
  | "committed"
  /** Uploaded; the pointer moves once the fetch has confirmed the folder. */
  | "uploaded"
  | "pointed"
  | "failed";

/** The whole run, as each package's commit sees it. */
export interface RunContext {
  config: SyncConfig;
  resolved: { commit: string; ref: string };
  options: SyncOptions;
  deps: SyncDependencies;
  destination: ArtifactDestination;
  started: Date;
  staging: StagingArea;
  /** Each package name → the folder that holds it (see `checkTargetNames`). */
  owners: Map<string, string>;
  log: Logger;
}

/** What a package reports to as it moves. */
export interface PackageEvents {
  log: Logger;
  progress: (event: SyncProgressEvent) => void;
}

/** The build plan of a delivered folder: undefined when it is not a build folder; `error` when unplannable. */
export interface PlannedFolder {
  plan: BuildPlan | undefined;
  error?: unknown;
}

export class PackageRun {
  state: PackageState = "pending";
  summary: PackageSummary;
  previous?: ArtifactHead | undefined;
  /** The folder's fingerprint from the source (GitHub tree SHA), when known. */
  fingerprint?: string | undefined;
  /** The change check failed (and was passed over): do not ask the provider for the fingerprint again. */
  changeCheckFailed = false;
  stage?: FolderStage;
  /** The per-target entries of a build folder, which replace `summary`. */
  targets?: PackageSummary[] | undefined;
  /**
   * The artifact uploaded from an earlier delivery of this run (an archive download that was retried): kept
   * when the new zip has the same SHA-256, else replaced under a new key and never pointed at.
   */
  uploaded?: { key: string; sha256: string; point: () => Promise<void> };
  /** Moves the pointer to the uploaded artifact, once the fetch has confirmed the folder. */
  point?: (() => Promise<void>) | undefined;
  /** The zip written to `--out`, removed again if the fetch fails the folder afterwards. */
  outFile?: string | undefined;
  /** Warnings the package had before the fetch (a redelivery keeps only these). */
  private warningsBefore = 0;
  private planned?: Promise<PlannedFolder> | undefined;

  constructor(
    readonly spec: FolderSpec,
    private readonly events: PackageEvents,
  ) {
    this.summary = emptyPackageSummary(spec.package, spec.path);
  }

  /** Skipped before download (the summary already says why). */
  markUnchanged(): void {
    this.state = "unchanged";
  }

  fail(error: unknown): void {
    this.summary.error = describeError(error);
    if (error instanceof ConfigError) this.summary.errorKind = "configuration";
    this.state = "failed";
    this.events.log.error("package failed", { package: this.spec.package, error: this.summary.error });
    this.events.progress({ package: this.spec.package, stage: "failed", detail: this.summary.error });
  }

  /** The fetch is about to deliver the package into `stage`. */
  fetch(stage: FolderStage): void {
    this.stage = stage;
    this.warningsBefore = this.summary.warnings.length;
    this.state = "fetching";
    this.events.progress({ package: this.spec.package, stage: "fetching", readBytes: () => stage.bytes });
  }

  /** The delivered folder's build plan, computed once per delivery. */
  plan(config: SyncConfig): Promise<PlannedFolder> {
    const stage = this.stage;
    if (!stage) return Promise.resolve({ plan: undefined });
    this.planned ??= planStagedFolder(config, this.spec.path, stage, this.spec.package).then(
      (plan) => ({ plan }),
      (error: unknown) => ({ plan: undefined, error }),
    );
    return this.planned;
  }

  /** Whether the delivered folder is a build folder (one that cannot be planned counts). */
  async isBuildFolder(config: SyncConfig): Promise<boolean> {
    const { plan, error } = await this.plan(config);
    return plan !== undefined || error !== undefined;
  }

  /** Zip (or build) and commit the delivered folder, then let it leave the staging area. */
  async commit(run: RunContext, error?: Error): Promise<void> {
    const stage = this.stage;
    if (!stage) return;
    this.state = "committing";
    try {
      if (error) this.fail(error);
      else {
        if (run.deps.builds) checkTargetNames(run.owners, this.spec.path, (await this.plan(run.config)).plan);
        await zipAndCommitFolder(run, this, stage);
        this.committed();
      }
    } catch (thrown) {
      this.fail(thrown);
    } finally {
      run.log.info("package left staging", {
        package: this.spec.package,
        stagedBytes: stage.peakDiskBytes,
        footprintBytes: stage.footprint,
      });
      await run.staging.release(stage);
      await rm(join(run.staging.runDir, ".build", this.spec.package), { recursive: true, force: true });
    }
  }

  /** The commit went through: something to point at later, or nothing left to do. */
  committed(): void {
    this.state = this.point ? "uploaded" : "committed";
  }

  /** A retried archive download delivers the package again: forget what its earlier delivery made. */
  async redeliver(): Promise<void> {
    this.planned = undefined;
    if (this.state === "pending" || this.state === "fetching") return;
    if (this.outFile) await rm(this.outFile, { force: true });
    this.summary = {
      ...emptyPackageSummary(this.spec.package, this.spec.path),
      warnings: this.summary.warnings.slice(0, this.warningsBefore),
    };
    this.targets = undefined;
    this.point = undefined;
    this.outFile = undefined;
    this.state = "fetching";
    const stage = this.stage;
    this.events.progress({ package: this.spec.package, stage: "fetching", readBytes: () => stage?.bytes ?? 0 });
  }

  /** The fetch has returned and the package still waits for its commit (a source that did not finish it, or a build folder that waited). */
  get awaitsCommit(): boolean {
    return this.state === "fetching" || this.state === "deferred";
  }

  /** The fetch has returned with `error` for this folder after it was committed: never point at it. */
  async confirm(error: Error | undefined): Promise<void> {
    if (!error || (this.state !== "committed" && this.state !== "uploaded")) return;
    // an archive naming its paths again after the folder was complete
    this.fail(error);
    if (this.outFile) await rm(this.outFile, { force: true });
  }

  /** Step 6: move the pointer to the uploaded artifact, now that the fetch has confirmed it. */
  async pointForward(): Promise<void> {
    if (this.state !== "uploaded" || !this.point) return;
    try {
      await this.point();
      this.state = "pointed";
    } catch (error) {
      this.fail(error);
    }
  }

  /** Tell the progress how each of its packages (a build folder's targets) ended. */
  report(): void {
    for (const p of this.targets ?? [this.summary]) {
      const stage = p.error ? "failed" : p.skipped ? "skipped" : "done";
      this.events.progress({ package: p.name, stage, bytes: p.bytes, detail: p.error ?? p.reason ?? undefined });
    }
  }
}

/**
 * The commits of a run, one at a time, while the next package downloads (within the staging area's limit).
 * While the fetch goes on, a build folder waits (`deferred`): it points at its layers as it goes, so it is
 * committed only once the fetch has confirmed it.
 */
export class CommitQueue {
  private last: Promise<void> = Promise.resolve();
  private fetching = true;

  constructor(private readonly run: RunContext) {}

  /** The source is done with the package (this delivery), with `error` when it failed it. */
  async settle(p: PackageRun, error?: Error): Promise<void> {
    const stage = p.stage;
    if (p.state !== "fetching" || !stage) return;
    p.state = "committing";
    await this.last;
    if (!error && this.fetching && this.run.deps.builds && (await p.isBuildFolder(this.run.config))) {
      p.state = "deferred";
      return;
    }
    this.run.staging.limitWhileFinishing(stage);
    this.last = p.commit(this.run, error);
  }

  /** The source delivers the package again: once its commit (if any) is over, forget it and empty its stage. */
  async redeliver(p: PackageRun, stage: FolderStage): Promise<void> {
    await this.last;
    await p.redeliver();
    await stage.reset();
  }

  /** The fetch has returned: wait for the commit under way. */
  async fetchReturned(): Promise<void> {
    this.fetching = false;
    await this.last;
  }
}

/**
 * A build folder whose targets take the package name of another folder, or of another build folder's
 * target, is a configuration error naming both. `owners` maps each package name to the folder that holds it
 * (every configured folder first, then each build folder's targets as it is committed).
 */
export function checkTargetNames(owners: Map<string, string>, path: string, plan: BuildPlan | undefined): void {
  // a folder that cannot be planned fails in zipAndCommitFolder with its own message
  for (const t of plan && plan.targets.length > 1 ? plan.targets : []) {
    const other = owners.get(t.package);
    if (other !== undefined && other !== path) {
      throw new ConfigError(
        `folder "${path}" builds package "${t.package}" (${t.runtime} ${t.architecture}), which is also the package of folder "${other}"; rename one of the two folders`,
      );
    }
  }
  for (const t of plan?.targets ?? []) owners.set(t.package, path);
}
