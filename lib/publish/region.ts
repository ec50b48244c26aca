/**
 * Publishing one package in one Region (steps 2–7 of `publish.ts`, with that Region's clients and bucket):
 * stage the artifact there (outside the home Region), publish unless the newest version carries the content,
 * converge, permissions, the Region's ARN parameter, the Region's RAM share, retention.
 *
 * A Region never throws: its failure goes into its summary entry's `error`, so one Region failing (throttled,
 * not enabled, access denied) neither stops nor rolls back the others, and the next run completes it (every
 * step is idempotent; an artifact already copied and a version already carrying the content are reused).
 */
import type { LambdaClient } from "@aws-sdk/client-lambda";
import type { RAMClient } from "@aws-sdk/client-ram";
import type { S3Client } from "@aws-sdk/client-s3";
import type { SSMClient } from "@aws-sdk/client-ssm";
import type { ArtifactMetadata } from "../artifacts/store.ts";
import { layerArnParameter, type RegionTarget } from "../common/config.ts";
import { describeError, PublishError } from "../common/errors.ts";
import type { Logger } from "../common/log.ts";
import type { Inventory } from "./consumers.ts";
import {
  canaryParameter,
  deleteParameter,
  historyParameter,
  parseHold,
  putStringParameter,
  recordInHistory,
  rollbackParameter,
} from "./history.ts";
import { type LayerSettings, shaTag } from "./layer-settings.ts";
import {
  contentRun,
  convergeVersions,
  type LayerVersionInfo,
  listLayerVersions,
  publishLayerVersion,
} from "./layers.ts";
import type { ShareTargets } from "./organizations.ts";
import { sharePackageParameters } from "./package-share.ts";
import { namedIn, parametersUnder, readStringParameter, writeLayerArnParameter } from "./parameters.ts";
import { applyLayerPermissions, type DesiredStatement } from "./permissions.ts";
import { checkBucketRegion, copyArtifactToRegion } from "./region-copy.ts";
import { regionError } from "./region-error.ts";
import { consumersOnVersion, type ReleaseEvent, releaseEvent } from "./release-events.ts";
import { deleteVersions, type KeptInUse, retainVersions } from "./retention.ts";
import type { ShareResult } from "./share.ts";
import type { SmokeLocks, SmokeResult, SmokeTarget } from "./smoke.ts";
import { smokeGate } from "./smoke-gate.ts";

/** The clients of one Region. Organizations is global and stays with the home clients. */
export interface RegionClients {
  lambda: LambdaClient;
  s3: S3Client;
  ssm: SSMClient;
  ram: RAMClient;
}

/** Makes (or reuses) the clients of a Region other than the home one. */
export type RegionClientFactory = (region: string) => RegionClients;

/** A package's resource share in a summary: what `ensureResourceShare` did, its warnings reported apart. */
export type PackageShareSummary = Omit<ShareResult, "warnings">;

export type PublishReason = "unchanged" | "resumed" | "duplicate" | "smoke-failed" | "rollback-held" | "canary";

/** One entry of a package's `regions` in the publish summary. */
export interface RegionPublishSummary {
  region: string;
  version: number | null;
  layerVersionArn: string | null;
  published: boolean;
  reason: PublishReason | null;
  parameter: { name: string; written: boolean } | null;
  share: PackageShareSummary | null;
  /** Versions deleted in this Region by this run, highest first. */
  deleted: number[];
  /** With a consumer source: the versions retention kept because functions use them (absent with `none`). */
  keptInUse?: KeptInUse[];
  /** Set when retention deleted nothing on purpose, with the reason. */
  retention?: string;
  /** The smoke test of the version, when this run ran one (one entry per runtime × architecture tested). */
  smoke?: SmokeResult[];
  error?: string;
}

/** A Region's summary entry plus what the package's top-level fields take from the home Region. */
export interface RegionOutcome {
  target: RegionTarget;
  summary: RegionPublishSummary;
  permissions: string[];
  permissionChanges: { added: string[]; removed: string[] };
  warnings: string[];
}

/** What every Region of a package shares, read once in the home Region. */
export interface PreparedPackage {
  pkg: string;
  layerName: string;
  parameterPrefix: string;
  /** `{prefix}/{package}/artifact-key`, read again (home) before the ARN parameter is written. */
  pointerName: string;
  key: string;
  homeBucket: string;
  meta: ArtifactMetadata;
  settings: LayerSettings;
  targets: ShareTargets;
  desired: DesiredStatement[];
  retainVersions: number;
  /** The canary channel (CANARY_ACCOUNT_IDS): its statements and PROMOTE_AFTER_HOURS. */
  canary?: { statements: DesiredStatement[]; promoteAfterHours: number | undefined } | undefined;
  /** The smoke test's targets (SMOKE_TEST on); undefined when it is off. */
  smoke?: SmokeTarget[] | undefined;
}

export interface RegionRunContext {
  /** The home Region's SSM client: the artifact-key pointer lives there only. */
  homeSsm: SSMClient;
  clock: () => Date;
  sleep: (ms: number) => Promise<void>;
  logger: Logger;
  /** Checks a Region's bucket once per run. */
  bucketChecked: (target: RegionTarget, s3: S3Client) => Promise<void>;
  /** With a consumer source: the functions of every Region of the run, read once on first use. */
  consumers?: () => Promise<Inventory>;
  /** `layer-sync promote`: move the pointer to the version on the canary channel now. */
  promote?: boolean | undefined;
  /** Told of every move of a Region's ARN parameter (a release event). */
  onRelease?: ((event: ReleaseEvent) => void) | undefined;
  /** SMOKE_TEST on: the smoke functions' role and the run's locks on them. */
  smoke?: { roleArn: string; locks: SmokeLocks };
}

export const NOT_SHARED =
  "not shared: no SHARE_ORGANIZATION_ID, SHARE_OU_IDS or SHARE_ACCOUNT_IDS is configured, so the layer version and its ARN parameter stay in this account";

/** Per-run memo of the bucket checks, one per Region. */
export function bucketChecks(): RegionRunContext["bucketChecked"] {
  const done = new Map<string, Promise<void>>();
  return (target, s3) => {
    let check = done.get(target.region);
    if (!check) {
      check = checkBucketRegion(s3, target.bucket, target.region);
      done.set(target.region, check);
    }
    return check;
  };
}

export function emptyRegionSummary(region: string): RegionPublishSummary {
  return {
    region,
    version: null,
    layerVersionArn: null,
    published: false,
    reason: null,
    parameter: null,
    share: null,
    deleted: [],
  };
}

/** Publish, permission, point, share and prune one package in one Region. Never throws. */
export async function publishInRegion(
  prepared: PreparedPackage,
  target: RegionTarget,
  clients: RegionClients,
  run: RegionRunContext,
): Promise<RegionOutcome> {
  const outcome: RegionOutcome = {
    target,
    summary: emptyRegionSummary(target.region),
    permissions: [],
    permissionChanges: { added: [], removed: [] },
    warnings: [],
  };
  try {
    await regionSteps(prepared, target, clients, run, outcome);
  } catch (error) {
    outcome.summary.error = regionError(error, target);
    run.logger.error("region failed", { package: prepared.pkg, region: target.region, error: outcome.summary.error });
  }
  outcome.summary.deleted.sort((a, b) => b - a);
  return outcome;
}

async function regionSteps(
  p: PreparedPackage,
  target: RegionTarget,
  clients: RegionClients,
  run: RegionRunContext,
  out: RegionOutcome,
): Promise<void> {
  const { lambda, ssm, ram, s3 } = clients;
  const s = out.summary;
  const { layerName, key, meta } = p;
  const bucket = target.bucket;

  // 1b. outside the home Region, a copy of the artifact in that Region's bucket
  if (!target.home) {
    await run.bucketChecked(target, s3);
    const copied = await copyArtifactToRegion(s3, {
      sourceBucket: p.homeBucket,
      bucket,
      key,
      contentSha256: meta.contentSha256,
      region: target.region,
    });
    if (copied) run.logger.info("copied artifact", { package: p.pkg, region: target.region, bucket, key });
  }

  // 2. publish unless the newest version carries this content
  let versions = await listLayerVersions(lambda, layerName);
  let publishedVersion: LayerVersionInfo | undefined;
  if (contentRun(versions, meta.contentSha256).length === 0) {
    try {
      publishedVersion = await publishLayerVersion(lambda, { settings: p.settings, bucket, key });
      run.logger.info("published layer version", {
        package: p.pkg,
        region: target.region,
        layer: layerName,
        version: publishedVersion.version,
      });
    } catch (error) {
      // A publish that failed on the client may have succeeded on the server.
      const after = await listLayerVersions(lambda, layerName).catch(() => undefined);
      const landed = after ? contentRun(after, meta.contentSha256)[0] : undefined;
      if (!landed) throw error;
      publishedVersion = landed;
      out.warnings.push(
        `PublishLayerVersion reported a failure (${describeError(error)}), but version ${landed.version} with ${shaTag(meta.contentSha256)} exists; continuing with it`,
      );
    }
    versions = await listLayerVersions(lambda, layerName);
    const mine = publishedVersion;
    if (!versions.some((v) => v.version === mine.version))
      versions = [mine, ...versions].sort((a, b) => b.version - a.version);
  }

  // 3. converge on one version per content
  const path = `${p.parameterPrefix}/${p.pkg}`;
  const under = await parametersUnder(ssm, path);
  const named = namedIn(under, layerName);
  const valueUnder = (name: string) => under.find((q) => q.Name === name)?.Value;
  const { keep, duplicates } = convergeVersions(versions, meta.contentSha256, named);
  if (!keep)
    throw new PublishError(`layer ${layerName} has no version carrying ${shaTag(meta.contentSha256)}; run again`);
  s.version = keep.version;
  s.layerVersionArn = keep.arn;
  s.published = publishedVersion?.version === keep.version;
  if (publishedVersion && !s.published) {
    s.reason = "duplicate";
    out.warnings.push(
      `version ${keep.version} already carries this content (published by another run); this run's version ${publishedVersion.version} is a duplicate`,
    );
  }
  const deletedNow = await deleteVersions(lambda, layerName, duplicates);
  s.deleted.push(...deletedNow);

  // 3a. a rollback holds the pointer until a newer artifact arrives
  const arnName = layerArnParameter(p.parameterPrefix, p.pkg);
  const holdName = rollbackParameter(p.parameterPrefix, p.pkg);
  const hold = parseHold(valueUnder(holdName));
  if (hold && hold.artifactKey === key) {
    s.version = hold.version;
    s.layerVersionArn = hold.layerVersionArn;
    s.published = false;
    s.reason = "rollback-held";
    s.parameter = { name: arnName, written: false };
    out.warnings.push(
      `${arnName} is held at version ${hold.version} by a rollback (${holdName}) until a newer artifact than ${key} arrives`,
    );
    return;
  }

  // 3b. smoke test, before anything grants or names a version that consumers have not seen yet
  const previousArn = valueUnder(arnName);
  const canaryName = canaryParameter(p.parameterPrefix, p.pkg);
  const canaryEntry = under.find((q) => q.Name === canaryName);
  const onCanary = canaryEntry?.Value === keep.arn;
  if (p.smoke?.length && run.smoke && previousArn !== keep.arn && !onCanary) {
    const gate = await smokeGate({
      lambda,
      ssm,
      region: target.region,
      targets: p.smoke,
      version: keep,
      pkg: p.pkg,
      parameterPrefix: p.parameterPrefix,
      layerName,
      arnName,
      options: { ...run.smoke, sleep: run.sleep, clock: run.clock },
    });
    s.smoke = gate.results;
    if (gate.failure) {
      s.reason = "smoke-failed";
      throw gate.failure;
    }
    run.logger.info("smoke test passed", { package: p.pkg, region: target.region, version: keep.version });
  }

  // 3c. the canary channel: grant the canary accounts only and name the version in canary-arn, until promoted
  let action: "publish" | "promote" = "publish";
  if (p.canary && previousArn !== keep.arn) {
    const since = canaryEntry?.LastModifiedDate?.getTime();
    const hours = p.canary.promoteAfterHours;
    const due =
      onCanary &&
      (run.promote === true ||
        (hours !== undefined && since !== undefined && run.clock().getTime() - since >= hours * 3_600_000));
    if (!due) {
      const granted = await applyLayerPermissions(lambda, layerName, keep.version, p.canary.statements);
      out.permissions = granted.sids;
      out.permissionChanges = { added: granted.added, removed: granted.removed };
      if (!onCanary) {
        await putStringParameter(ssm, {
          name: canaryName,
          value: keep.arn,
          tier: "Advanced",
          description: `Lambda layer ${layerName} version on the canary channel (written by layer-sync)`,
          sleep: run.sleep,
        });
      }
      s.reason = "canary";
      s.parameter = { name: arnName, written: false };
      await shareParameters(p, target, ram, run, out, keep.arn, [canaryName]);
      out.warnings.push(
        `version ${keep.version} is on the canary channel (${canaryName}, granted to CANARY_ACCOUNT_IDS only); run layer-sync promote --package ${p.pkg}${hours !== undefined ? ` or wait ${hours} h` : ""} to release it`,
      );
      return;
    }
    action = "promote";
  }

  // 4. permissions
  const permissions = await applyLayerPermissions(lambda, layerName, keep.version, p.desired);
  out.permissions = permissions.sids;
  out.permissionChanges = { added: permissions.added, removed: permissions.removed };
  out.warnings.push(...permissions.warnings);

  // 5. the Region's ARN parameter, only after the permissions are in place
  let changed = permissions.added.length + permissions.removed.length > 0;
  const pointerNow = await readStringParameter(run.homeSsm, p.pointerName);
  if (pointerNow !== key) {
    s.parameter = { name: arnName, written: false };
    out.warnings.push(
      `${p.pointerName} moved on to ${pointerNow ?? "nothing"} during this run; ${arnName} and the share are left to the run for that artifact`,
    );
  } else {
    const written = await writeLayerArnParameter(ssm, {
      name: arnName,
      value: keep.arn,
      description: `Latest version of Lambda layer ${layerName} (written by layer-sync)`,
      sleep: run.sleep,
    });
    s.parameter = { name: arnName, written };
    changed ||= written;
    if (written) {
      const event = releaseEvent({
        package: p.pkg,
        region: target.region,
        previousArn: previousArn,
        currentArn: keep.arn,
        commit: meta.commit,
        action,
        consumersOnPrevious: run.onRelease ? await consumersOnVersion(run.consumers, previousArn, run.logger) : null,
      });
      if (event) run.onRelease?.(event);
    }

    // 5b. the history, and the end of a rollback's hold
    const historyName = historyParameter(p.parameterPrefix, p.pkg);
    const recorded = await recordInHistory(ssm, {
      name: historyName,
      entry: { version: keep.version, layerVersionArn: keep.arn, commit: meta.commit, at: run.clock().toISOString() },
      existing: new Set(versions.map((v) => v.version)),
      layerName,
      sleep: run.sleep,
      known: { value: valueUnder(historyName) },
    });
    changed ||= recorded;
    if (hold) {
      await deleteParameter(ssm, holdName);
      changed = true;
    }
    if (canaryEntry && (written || onCanary)) await deleteParameter(ssm, canaryName);

    // 6. share the parameters
    const shared = await shareParameters(p, target, ram, run, out, keep.arn, [arnName, historyName]);
    changed ||= shared;
  }

  // 7. retention: never what a parameter or the history names, nor (with a consumer source) what a function uses
  const kept = await retainVersions({
    ssm,
    lambda,
    path,
    layerName,
    keep,
    remaining: versions.filter((v) => !deletedNow.includes(v.version)),
    historyName: historyParameter(p.parameterPrefix, p.pkg),
    retainVersions: p.retainVersions,
    consumers: run.consumers,
    region: target.region,
  });
  out.warnings.push(...kept.warnings);
  s.deleted.push(...kept.deleted);
  if (kept.keptInUse) s.keptInUse = kept.keptInUse;
  if (kept.retention) s.retention = kept.retention;

  if (!s.published && s.reason === null) s.reason = changed ? "resumed" : "unchanged";
}

/** Step 6 (and the canary channel's share): the package's RAM share holds `parameters`. Returns whether it changed. */
async function shareParameters(
  p: PreparedPackage,
  target: RegionTarget,
  ram: RAMClient,
  run: RegionRunContext,
  out: RegionOutcome,
  layerVersionArn: string,
  parameters: [string, ...string[]],
): Promise<boolean> {
  if (p.targets.ramPrincipals.length === 0) {
    out.warnings.push(NOT_SHARED);
    return false;
  }
  const share = await sharePackageParameters(ram, {
    pkg: p.pkg,
    region: target.region,
    layerVersionArn,
    parameters,
    principals: p.targets.ramPrincipals,
    clock: run.clock,
  });
  const { warnings, ...summary } = share;
  out.summary.share = summary;
  out.warnings.push(...warnings);
  return share.created || share.associated.length > 0 || share.disassociated.length > 0;
}
