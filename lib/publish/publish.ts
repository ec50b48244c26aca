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
 * Packages are independent: a failing package gets `error` in its summary entry and the others go on. The
 * core never reads `process.env`; it gets its settings, clients and clock from the caller.
 */
import type { LambdaClient } from "@aws-sdk/client-lambda";
import type { OrganizationsClient } from "@aws-sdk/client-organizations";
import type { RAMClient } from "@aws-sdk/client-ram";
import type { S3Client } from "@aws-sdk/client-s3";
import type { SSMClient } from "@aws-sdk/client-ssm";
import { type ArtifactHead, headArtifact } from "../artifacts.ts";
import { mapLimit } from "../concurrency.ts";
import { artifactKeyParameter, layerArnParameter, type PublishConfig } from "../config.ts";
import { describeError, LayerSyncError, PublishError } from "../errors.ts";
import type { PublishEvent } from "../events.ts";
import { type Logger, silentLogger } from "../sync.ts";
import { callFailed } from "./aws-errors.ts";
import { LAYER_NAME, layerSettingsProblems, resolveLayerSettings, shaTag } from "./layer-settings.ts";
import {
  contentRun,
  convergeVersions,
  type LayerVersionInfo,
  listLayerVersions,
  parseLayerArn,
  publishLayerVersion,
} from "./layers.ts";
import { resolveShareTargets, type ShareTargets } from "./organizations.ts";
import {
  discoverPackages,
  namedVersions,
  readStringParameter,
  ssmParameterArn,
  writeLayerArnParameter,
} from "./parameters.ts";
import { applyLayerPermissions, desiredStatements } from "./permissions.ts";
import { deleteVersions, planRetention } from "./retention.ts";
import { ensureResourceShare, resourceShareName } from "./share.ts";

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
}

export type PublishRequest = Exclude<PublishEvent, { kind: "ignored" }>;

export interface PackageShareSummary {
  arn: string;
  name: string;
  principals: string[];
  resources: string[];
  created: boolean;
  associated: string[];
  disassociated: string[];
}

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
  reason: "unchanged" | "resumed" | "duplicate" | null;
  /** The `layer-sync-*` statement ids on the version. */
  permissions: string[];
  permissionChanges: { added: string[]; removed: string[] };
  parameter: { name: string; written: boolean } | null;
  /** null when no principal is configured (nothing is shared) or the step was not reached. */
  share: PackageShareSummary | null;
  /** Versions deleted by this run (duplicates and retention), highest first. */
  deleted: number[];
  warnings: string[];
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

/** `2 of 3 package(s) failed to publish: a: … | b: …` */
export function failureMessage(summary: PublishSummary): string {
  const failed = summary.packages.filter((p) => p.error !== undefined);
  return `${failed.length} of ${summary.packages.length} package(s) failed to publish: ${failed
    .map((p) => `${p.name}: ${p.error}`)
    .join(" | ")}`;
}

const NOT_SHARED =
  "not shared: no SHARE_ORGANIZATION_ID, SHARE_OU_IDS or SHARE_ACCOUNT_IDS is configured, so the layer version and its ARN parameter stay in this account";

interface RunContext {
  targets: () => Promise<ShareTargets>;
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
  };
}

async function readArtifact(deps: PublishDependencies, bucket: string, key: string): Promise<ArtifactHead | undefined> {
  try {
    return await headArtifact(deps.s3, bucket, key);
  } catch (error) {
    const cause = error instanceof Error && error.cause !== undefined ? error.cause : error;
    throw callFailed(
      PublishError,
      { call: "s3:GetObject", resource: `s3://${bucket}/${key} (HeadObject)`, hint: "check ARTIFACT_BUCKET" },
      cause,
    );
  }
}

/** Publish, permission, point, share and prune one package. Never throws: failures go into `error`. */
export async function publishPackage(
  config: PublishConfig,
  pkg: string,
  deps: PublishDependencies,
  run: RunContext,
): Promise<PackagePublishSummary> {
  const log = deps.logger ?? silentLogger;
  const s = emptySummary(config, pkg);
  try {
    await publishSteps(config, pkg, deps, run, s, log);
    log.info("package done", {
      package: pkg,
      version: s.version,
      published: s.published,
      reason: s.reason,
      deleted: s.deleted,
    });
  } catch (error) {
    s.error = describeError(error);
    log.error("package failed", { package: pkg, error: s.error });
  }
  s.deleted.sort((a, b) => b - a);
  return s;
}

async function publishSteps(
  config: PublishConfig,
  pkg: string,
  deps: PublishDependencies,
  run: RunContext,
  s: PackagePublishSummary,
  log: Logger,
): Promise<void> {
  const { lambda, ssm, ram } = deps;
  const prefix = config.artifacts.parameterPrefix;
  const bucket = config.artifacts.bucket;
  const layerName = s.layerName;
  if (!bucket) throw new PublishError("ARTIFACT_BUCKET is not set; name the bucket the sync uploads to");
  if (!LAYER_NAME.test(layerName)) {
    throw new PublishError(
      `layer name "${layerName}" must match [A-Za-z0-9_-]{1,140}; rename the folder or change LAYER_NAME_PREFIX`,
    );
  }

  // 1. artifact, settings, targets
  const pointerName = artifactKeyParameter(prefix, pkg);
  const key = await readStringParameter(ssm, pointerName);
  if (key === undefined) {
    throw new PublishError(
      `nothing to publish: parameter ${pointerName} does not exist; run \`layer-sync sync\` for this package first, or check PARAMETER_PREFIX`,
    );
  }
  s.key = key;
  const where = `s3://${bucket}/${key}`;
  const head = await readArtifact(deps, bucket, key);
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
  s.sha256 = meta.contentSha256;
  s.commit = meta.commit;
  const settings = resolveLayerSettings(config.layer, pkg, meta, where);
  const problems = layerSettingsProblems(settings);
  if (problems.length) throw new PublishError(`cannot publish ${where} as layer ${layerName}: ${problems.join("; ")}`);
  const targets = await run.targets();
  const desired = desiredStatements(targets);

  // 2. publish unless the newest version carries this content
  let versions = await listLayerVersions(lambda, layerName);
  let publishedVersion: LayerVersionInfo | undefined;
  if (contentRun(versions, meta.contentSha256).length === 0) {
    try {
      publishedVersion = await publishLayerVersion(lambda, { settings, bucket, key });
      log.info("published layer version", { package: pkg, layer: layerName, version: publishedVersion.version });
    } catch (error) {
      // A publish that failed on the client may have succeeded on the server.
      const after = await listLayerVersions(lambda, layerName).catch(() => undefined);
      const landed = after ? contentRun(after, meta.contentSha256)[0] : undefined;
      if (!landed) throw error;
      publishedVersion = landed;
      s.warnings.push(
        `PublishLayerVersion reported a failure (${describeError(error)}), but version ${landed.version} with ${shaTag(meta.contentSha256)} exists; continuing with it`,
      );
    }
    versions = await listLayerVersions(lambda, layerName);
    const mine = publishedVersion;
    if (!versions.some((v) => v.version === mine.version))
      versions = [mine, ...versions].sort((a, b) => b.version - a.version);
  }

  // 3. converge on one version per content
  const named = await namedVersions(ssm, `${prefix}/${pkg}`, layerName);
  const { keep, duplicates } = convergeVersions(versions, meta.contentSha256, named);
  if (!keep)
    throw new PublishError(`layer ${layerName} has no version carrying ${shaTag(meta.contentSha256)}; run again`);
  s.version = keep.version;
  s.layerVersionArn = keep.arn;
  s.published = publishedVersion?.version === keep.version;
  if (publishedVersion && !s.published) {
    s.reason = "duplicate";
    s.warnings.push(
      `version ${keep.version} already carries this content (published by another run); this run's version ${publishedVersion.version} is a duplicate`,
    );
  }
  const deletedNow = await deleteVersions(lambda, layerName, duplicates);
  s.deleted.push(...deletedNow);

  // 4. permissions
  const permissions = await applyLayerPermissions(lambda, layerName, keep.version, desired);
  s.permissions = permissions.sids;
  s.permissionChanges = { added: permissions.added, removed: permissions.removed };
  s.warnings.push(...permissions.warnings);

  // 5. the ARN parameter, only after the permissions are in place
  const arnName = layerArnParameter(prefix, pkg);
  let changed = permissions.added.length + permissions.removed.length > 0;
  const pointerNow = await readStringParameter(ssm, pointerName);
  if (pointerNow !== key) {
    s.parameter = { name: arnName, written: false };
    s.warnings.push(
      `${pointerName} moved on to ${pointerNow ?? "nothing"} during this run; ${arnName} and the share are left to the run for that artifact`,
    );
  } else {
    const written = await writeLayerArnParameter(ssm, {
      name: arnName,
      value: keep.arn,
      description: `Latest version of Lambda layer ${layerName} (written by layer-sync)`,
      sleep: deps.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms))),
    });
    s.parameter = { name: arnName, written };
    changed ||= written;

    // 6. share the parameter
    if (targets.ramPrincipals.length === 0) {
      s.warnings.push(NOT_SHARED);
    } else {
      const arn = parseLayerArn(keep.arn);
      if (!arn)
        throw new PublishError(`Lambda returned the layer version ARN "${keep.arn}", which layer-sync cannot parse`);
      const region = await ssm.config.region();
      const share = await ensureResourceShare(ram, {
        name: resourceShareName(pkg),
        resourceArn: ssmParameterArn(arn.partition, region, arn.account, arnName),
        principals: targets.ramPrincipals,
        tokenWindow: deps.clock().toISOString().slice(0, 13),
      });
      s.share = {
        arn: share.arn,
        name: share.name,
        principals: share.principals,
        resources: share.resources,
        created: share.created,
        associated: share.associated,
        disassociated: share.disassociated,
      };
      s.warnings.push(...share.warnings);
      changed ||= share.created || share.associated.length > 0 || share.disassociated.length > 0;
    }
  }

  // 7. retention
  const protectedVersions = await namedVersions(ssm, `${prefix}/${pkg}`, layerName);
  protectedVersions.add(keep.version);
  const remaining = versions.filter((v) => !deletedNow.includes(v.version));
  const prune = planRetention(remaining, config.layer.retainVersions, protectedVersions);
  s.deleted.push(...(await deleteVersions(lambda, layerName, prune)));

  if (!s.published && s.reason === null) s.reason = changed ? "resumed" : "unchanged";
}

/** Publish the requested packages (or, for a reconcile, every package with a pointer under the prefix). */
export async function runPublish(
  config: PublishConfig,
  request: PublishRequest,
  deps: PublishDependencies,
): Promise<PublishSummary> {
  const startedAt = deps.clock().toISOString();
  const packages =
    request.kind === "reconcile"
      ? await discoverPackages(deps.ssm, config.artifacts.parameterPrefix)
      : request.packages;
  (deps.logger ?? silentLogger).info("publishing", {
    packages,
    trigger: request.kind === "reconcile" ? "reconcile" : request.trigger,
  });
  const run: RunContext = { targets: memo(() => resolveShareTargets(config.layer, deps.organizations)) };
  const results = await mapLimit(packages, deps.concurrency ?? 2, (pkg) => publishPackage(config, pkg, deps, run));
  return {
    trigger: request.kind === "reconcile" ? "reconcile" : request.trigger,
    startedAt,
    finishedAt: deps.clock().toISOString(),
    packages: results,
  };
}
