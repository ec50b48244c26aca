/**
 * The publish core: for each package, turn the artifact its pointer names into a Lambda layer version, make
 * the version usable across the organization, and let member accounts find it through a RAM-shared parameter.
 *
 * Per package, in this order (each step idempotent, so any run resumes what an earlier run left unfinished):
 *
 * 1. Read `{prefix}/{package}/artifact-key`, HEAD the object, take its metadata and layer.json overrides,
 *    and check the settings against Lambda's limits. Resolve the sharing targets (once per run).
 * 2. When the newest layer version already carries the artifact's content tag (`sha256:<12 hex>` in its
 *    Description), publish nothing. Otherwise PublishLayerVersion from S3; if the call fails, list again:
 *    it may have succeeded on the server.
 * 3. Converge: of the newest run of versions carrying the content, keep the lowest and delete the others
 *    (unless a parameter names them). Racing runs for one artifact all keep the same version.
 * 4. Apply the `layer-sync-*` permission statements to the kept version.
 * 5. Only then point `{prefix}/{package}/layer-version-arn` at it (Advanced tier; skipped when the pointer
 *    moved on to a newer artifact meanwhile: that run writes it).
 * 6. Ensure the RAM share `layer-sync-{package}` holds that parameter for the configured principals.
 * 7. Retention: delete versions beyond RETAIN_VERSIONS, except versions a parameter names.
 *
 * Regions (PUBLISH_REGIONS, default the home Region): step 1 runs once, in the home Region; steps 2–7 run
 * in every Region with that Region's clients (`region.ts`), after a server-side copy of the artifact into
 * the Region's REGION_BUCKETS bucket outside the home Region. Regions run concurrently with a bound and
 * independently: one failing Region does not stop or roll back the others. Layer version numbers may differ
 * between Regions; each Region's ARN parameter is the source of truth there.
 *
 * Packages are independent too: a failing package (or Region) gets `error` in its summary entry and the
 * others go on. The core never reads `process.env`; it gets its settings, clients and clock from the caller.
 */
import type { LambdaClient } from "@aws-sdk/client-lambda";
import type { OrganizationsClient } from "@aws-sdk/client-organizations";
import type { RAMClient } from "@aws-sdk/client-ram";
import type { S3Client } from "@aws-sdk/client-s3";
import type { SSMClient } from "@aws-sdk/client-ssm";
import { mapLimit } from "../common/concurrency.ts";
import { artifactKeyParameter, type PublishConfig, planRegions, type RegionTarget } from "../common/config.ts";
import { describeError, LayerSyncError, PublishError } from "../common/errors.ts";
import type { PublishEvent } from "../common/events.ts";
import { decodeLayerConfig } from "../common/layer-json.ts";
import { type Logger, silentLogger } from "../common/log.ts";
import { escapeControls } from "../common/paths.ts";
import { checkArtifactOwner, readArtifact } from "./artifact-owner.ts";
import { type ConsumerClients, inventoryReader } from "./consumers.ts";
import { defaultSmokeModules, zipEntryNames } from "./layer-entries.ts";

export { checkArtifactOwner } from "./artifact-owner.ts";

import { LAYER_NAME, layerSettingsProblems, resolveLayerSettings } from "./layer-settings.ts";
import { resolveShareTargets, type ShareTargets } from "./organizations.ts";
import { discoverPackages, readStringParameter } from "./parameters.ts";
import { desiredStatements } from "./permissions.ts";
import {
  bucketChecks,
  emptyRegionSummary,
  NOT_SHARED,
  type PackageShareSummary,
  type PreparedPackage,
  type PublishReason,
  publishInRegion,
  type RegionClientFactory,
  type RegionClients,
  type RegionOutcome,
  type RegionPublishSummary,
  type RegionRunContext,
} from "./region.ts";
import type { ReleaseEvent } from "./release-events.ts";
import { SmokeLocks, type SmokeTarget, smokeTargets } from "./smoke.ts";

export type { PackageShareSummary, RegionClientFactory, RegionClients, RegionPublishSummary } from "./region.ts";

export interface PublishClients {
  lambda: LambdaClient;
  s3: S3Client;
  ssm: SSMClient;
  ram: RAMClient;
  organizations: OrganizationsClient;
}

export interface PublishDependencies extends PublishClients {
  clock: () => Date;
  logger?: Logger;
  /** Back-off between retries of a throttled parameter write. */
  sleep?: (ms: number) => Promise<void>;
  /** Packages worked on at once (default 2; Lambda's control plane allows about 15 requests a second). */
  concurrency?: number;
  /** The home Region (default: the Region of the `lambda` client). */
  region?: string;
  /** The clients of every other Region in PUBLISH_REGIONS (the home Region uses the clients above). */
  regionClients?: RegionClientFactory;
  /** Regions worked on at once for one package (default 4). */
  regionConcurrency?: number;
  /** The clients the consumer source reads with (required when CONSUMER_SOURCE is not `none`). */
  consumers?: ConsumerClients;
  /** `layer-sync promote`: release the version on the canary channel now. */
  promote?: boolean;
  /** Told of every move of a Region's ARN parameter, for release events (`release-events.ts`). */
  onRelease?: (event: ReleaseEvent) => void;
}

export type PublishRequest = Exclude<PublishEvent, { kind: "ignored" } | { kind: "rollback" }>;

/** One package. The top-level fields describe the home Region; `regions` has one entry per Region. */
export interface PackagePublishSummary {
  name: string;
  layerName: string;
  key: string | null;
  sha256: string | null;
  commit: string | null;
  version: number | null;
  layerVersionArn: string | null;
  /** True when this run published the version that is now current. */
  published: boolean;
  /** Why nothing was published: `unchanged` (all was in place), `resumed` (an earlier run's work was completed), `duplicate` (another run published the same content first). */
  reason: PublishReason | null;
  /** The `layer-sync-*` statement ids on the version. */
  permissions: string[];
  permissionChanges: { added: string[]; removed: string[] };
  parameter: { name: string; written: boolean } | null;
  /** null when no principal is configured (nothing is shared) or the step was not reached. */
  share: PackageShareSummary | null;
  /** Versions deleted by this run (duplicates and retention), highest first. */
  deleted: number[];
  /** The home Region's warnings, then the other Regions' warnings prefixed with the Region. */
  warnings: string[];
  /** Every Region in PUBLISH_REGIONS, in that order. */
  regions: RegionPublishSummary[];
  /** Set when the package failed in any Region; with several Regions it names each failed Region. */
  error?: string;
}

export interface PublishSummary {
  trigger: "parameter-change" | "manual" | "reconcile";
  startedAt: string;
  finishedAt: string;
  packages: PackagePublishSummary[];
}

/** Thrown by the handler after a run in which at least one package failed; the message names each failure. */
export class PublishFailedError extends LayerSyncError {
  readonly summary: PublishSummary;
  constructor(summary: PublishSummary) {
    super(failureMessage(summary));
    this.summary = summary;
  }
}

/** `2 of 3 package(s) failed to publish: a: … | b: eu-west-1: …; ap-southeast-2: …` */
export function failureMessage(summary: PublishSummary): string {
  const failed = summary.packages.filter((p) => p.error !== undefined);
  return `${failed.length} of ${summary.packages.length} package(s) failed to publish: ${failed
    .map((p) => `${p.name}: ${p.error}`)
    .join(" | ")}`;
}

interface RunContext {
  targets: () => Promise<ShareTargets>;
  regions: RegionTarget[];
  region: RegionRunContext;
}

function memo<T>(fn: () => Promise<T>): () => Promise<T> {
  let value: Promise<T> | undefined;
  return () => {
    value ??= fn();
    return value;
  };
}

function emptySummary(config: PublishConfig, pkg: string): PackagePublishSummary {
  return {
    name: pkg,
    layerName: `${config.layer.layerNamePrefix}${pkg}`,
    key: null,
    sha256: null,
    commit: null,
    version: null,
    layerVersionArn: null,
    published: false,
    reason: null,
    permissions: [],
    permissionChanges: { added: [], removed: [] },
    parameter: null,
    share: null,
    deleted: [],
    warnings: [],
    regions: [],
  };
}

/** Step 1, in the home Region: the pointer, the artifact's metadata and settings, the sharing targets. */
async function preparePackage(
  config: PublishConfig,
  pkg: string,
  deps: PublishDependencies,
  run: RunContext,
  s: PackagePublishSummary,
): Promise<PreparedPackage> {
  const prefix = config.artifacts.parameterPrefix;
  const bucket = config.artifacts.bucket;
  const layerName = s.layerName;
  if (!bucket) throw new PublishError("ARTIFACT_BUCKET is not set; name the bucket the sync uploads to");
  if (!LAYER_NAME.test(layerName)) {
    throw new PublishError(
      `layer name "${layerName}" must match [A-Za-z0-9_-]{1,140}; rename the folder or change LAYER_NAME_PREFIX`,
    );
  }
  const pointerName = artifactKeyParameter(prefix, pkg);
  const key = await readStringParameter(deps.ssm, pointerName);
  if (key === undefined) {
    throw new PublishError(
      `nothing to publish: parameter ${pointerName} does not exist; run \`layer-sync sync\` for this package first, or check PARAMETER_PREFIX`,
    );
  }
  s.key = key;
  const where = `s3://${bucket}/${escapeControls(key)}`; // the key is an SSM value: never print it raw
  const head = await readArtifact(deps.s3, bucket, key);
  if (!head) {
    throw new PublishError(
      `${pointerName} names ${where}, which does not exist; run the sync again to upload a new artifact, or check ARTIFACT_BUCKET`,
    );
  }
  const meta = head.metadata;
  if (!meta) {
    throw new PublishError(
      `${where} has no layer-sync metadata (commit, source, content-sha256), so it was not uploaded by layer-sync; run the sync again`,
    );
  }
  checkArtifactOwner(pkg, key, meta, pointerName);
  s.sha256 = meta.contentSha256;
  s.commit = meta.commit;
  const settings = resolveLayerSettings(config.layer, pkg, meta, where);
  const problems = layerSettingsProblems(settings);
  if (problems.length) throw new PublishError(`cannot publish ${where} as layer ${layerName}: ${problems.join("; ")}`);
  const targets = await run.targets();
  let smoke: SmokeTarget[] | undefined;
  if (config.release.smokeTest) {
    const modules = decodeLayerConfig(meta.layerConfig, where).smoke;
    const planned = smokeTargets({
      runtimes: settings.runtimes,
      architectures: settings.architectures,
      build: meta.build,
      modules,
    });
    if (planned.length && modules === undefined) {
      const names = await zipEntryNames(deps.s3, bucket, key, head.size);
      for (const t of planned) t.modules = defaultSmokeModules(names, t.family);
    }
    if (planned.length === 0) {
      s.warnings.push(
        "not smoke-tested: the layer names no Python or Node.js runtime (set COMPATIBLE_RUNTIMES or layer.json runtimes)",
      );
    }
    smoke = planned;
  }
  return {
    smoke,
    pkg,
    layerName,
    parameterPrefix: prefix,
    pointerName,
    key,
    homeBucket: bucket,
    meta,
    settings,
    targets,
    desired: desiredStatements({
      organizationId: targets.organizationId,
      accountIds: [...targets.accountIds, ...config.release.canaryAccountIds],
    }),
    canary: config.release.canaryAccountIds.length
      ? {
          statements: desiredStatements({ organizationId: undefined, accountIds: config.release.canaryAccountIds }),
          promoteAfterHours: config.release.promoteAfterHours,
        }
      : undefined,
    retainVersions: config.layer.retainVersions,
  };
}

function clientsFor(target: RegionTarget, deps: PublishDependencies): RegionClients {
  if (target.home) return deps;
  if (!deps.regionClients) {
    throw new PublishError(`no AWS clients for ${target.region}: the caller passed no region client factory`);
  }
  return deps.regionClients(target.region);
}

/** Fill the package's summary from its Regions: top-level fields from the home Region, `error` from all. */
function merge(s: PackagePublishSummary, outcomes: readonly RegionOutcome[]): void {
  s.regions = outcomes.map((o) => o.summary);
  const home = outcomes.find((o) => o.target.home);
  if (home) {
    const h = home.summary;
    Object.assign(s, {
      version: h.version,
      layerVersionArn: h.layerVersionArn,
      published: h.published,
      reason: h.reason,
      permissions: home.permissions,
      permissionChanges: home.permissionChanges,
      parameter: h.parameter,
      share: h.share,
      deleted: h.deleted,
    });
    s.warnings.push(...home.warnings);
  }
  for (const o of outcomes) {
    if (o === home) continue;
    for (const w of o.warnings) {
      if (w === NOT_SHARED) {
        if (!s.warnings.includes(NOT_SHARED)) s.warnings.push(NOT_SHARED);
      } else s.warnings.push(`${o.target.region}: ${w}`);
    }
  }
  const failed = outcomes.filter((o) => o.summary.error !== undefined);
  if (failed.length === 0) return;
  s.error =
    outcomes.length === 1
      ? failed[0]?.summary.error
      : failed.map((o) => `${o.target.region}: ${o.summary.error}`).join("; ");
}

/** Publish, permission, point, share and prune one package in every Region. Never throws: failures go into `error`. */
export async function publishPackage(
  config: PublishConfig,
  pkg: string,
  deps: PublishDependencies,
  run: RunContext,
): Promise<PackagePublishSummary> {
  const log = deps.logger ?? silentLogger;
  const s = emptySummary(config, pkg);
  let prepared: PreparedPackage;
  try {
    prepared = await preparePackage(config, pkg, deps, run, s);
  } catch (error) {
    s.error = describeError(error);
    s.regions = run.regions.map((t) => ({ ...emptyRegionSummary(t.region), error: s.error }));
    log.error("package failed", { package: pkg, error: s.error });
    return s;
  }
  const outcomes = await mapLimit(run.regions, deps.regionConcurrency ?? 4, async (target) => {
    let clients: RegionClients;
    try {
      clients = clientsFor(target, deps);
    } catch (error) {
      const summary = { ...emptyRegionSummary(target.region), error: describeError(error) };
      return { target, summary, permissions: [], permissionChanges: { added: [], removed: [] }, warnings: [] };
    }
    return publishInRegion(prepared, target, clients, run.region);
  });
  merge(s, outcomes);
  if (s.error !== undefined) log.error("package failed", { package: pkg, error: s.error });
  else
    log.info("package done", {
      package: pkg,
      version: s.version,
      published: s.published,
      reason: s.reason,
      deleted: s.deleted,
      regions: s.regions.map((r) => r.region),
    });
  return s;
}

/** Publish the requested packages (or, for a reconcile, every package with a pointer under the prefix). */
export async function runPublish(
  config: PublishConfig,
  request: PublishRequest,
  deps: PublishDependencies,
): Promise<PublishSummary> {
  const startedAt = deps.clock().toISOString();
  const regions = planRegions(config, deps.region ?? (await deps.lambda.config.region()));
  const packages =
    request.kind === "reconcile"
      ? await discoverPackages(deps.ssm, config.artifacts.parameterPrefix)
      : request.packages;
  const logger = deps.logger ?? silentLogger;
  logger.info("publishing", {
    packages,
    regions: regions.map((r) => r.region),
    trigger: request.kind === "reconcile" ? "reconcile" : request.trigger,
  });
  const source = config.consumers?.source ?? "none";
  if (source !== "none" && !deps.consumers) {
    throw new PublishError(`CONSUMER_SOURCE is ${source}, but the caller passed no clients to read consumers with`);
  }
  const reader = deps.consumers ? inventoryReader(config, deps.consumers, async () => packages) : undefined;
  const run: RunContext = {
    targets: memo(() => resolveShareTargets(config.layer, deps.organizations)),
    regions,
    region: {
      homeSsm: deps.ssm,
      clock: deps.clock,
      sleep: deps.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms))),
      logger,
      bucketChecked: bucketChecks(),
      ...(reader ? { consumers: memo(() => reader(regions.map((r) => r.region))) } : {}),
      onRelease: deps.onRelease,
      promote: deps.promote,
      ...(config.release.smokeTest && config.release.smokeRoleArn
        ? { smoke: { roleArn: config.release.smokeRoleArn, locks: new SmokeLocks() } }
        : {}),
    },
  };
  const results = await mapLimit(packages, deps.concurrency ?? 2, (pkg) => publishPackage(config, pkg, deps, run));
  return {
    trigger: request.kind === "reconcile" ? "reconcile" : request.trigger,
    startedAt,
    finishedAt: deps.clock().toISOString(),
    packages: results,
  };
}
