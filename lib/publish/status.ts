/**
 * What is published where, read without writing anything: for each package (the ones asked for, or every
 * package with an artifact-key under the prefix) and each Region (PUBLISH_REGIONS, default the home Region),
 * the artifact key and its commit, the latest layer version and its ARN, whether the Region's ARN parameter
 * names it, the principals the RAM share `layer-sync-{package}` is shared with and whether it holds the
 * parameter. A Region that is out of step (nothing published, an older artifact's version, the parameter
 * naming another version, sharing configured but the parameter not shared) is marked, with what to run: the
 * command carries the setting flags of this run that the command reads, so that it acts on the same Regions
 * and shares with the same principals. Without any SHARE_* setting, sharing is not checked, and a Region
 * says so in a note rather than passing it silently (docs/cli.md "status").
 *
 * The core of `layer-sync status`; the command line around it is not part of this module.
 */

import { headArtifact } from "../artifacts/store.ts";
import { mapLimit } from "../common/concurrency.ts";
import { artifactKeyParameter, layerArnParameter, type PublishConfig } from "../common/config.ts";
import { describeError } from "../common/errors.ts";
import { escapeControls } from "../common/paths.ts";
import { commandLine, type SettingFlags, settingArguments } from "../common/shell.ts";
import { type ConsumerCounts, classify, type Inventory, type InventoryReader, listVersionFacts } from "./consumers.ts";
import {
  canaryParameter,
  parseHold,
  parseSmokeRecord,
  rollbackParameter,
  type SmokeRecord,
  smokeParameter,
} from "./history.ts";
import { carriesContent } from "./layer-settings.ts";
import { listLayerVersions, parseLayerArn } from "./layers.ts";
import { discoverPackages, parametersUnder, readStringParameter, ssmParameterArn } from "./parameters.ts";
import type { RegionClientFactory, RegionClients } from "./region.ts";
import { associations, findResourceShares, resourceShareName } from "./share.ts";

export interface RegionStatus {
  region: string;
  version: number | null;
  layerVersionArn: string | null;
  /** The Region's `{prefix}/{package}/layer-version-arn` names the latest version. */
  parameterMatches: boolean;
  /** The principals the Region's RAM share is shared with, sorted. */
  principals: string[];
  /** The Region's RAM share holds the Region's ARN parameter. */
  shared: boolean;
  outOfStep: boolean;
  /** Why the Region is out of step (empty when it is not). */
  problems: string[];
  /** What to run to fix it, one shell line (absent when in step). */
  fix?: string;
  /** The commands of `fix` in order, each as its arguments before shell quoting (absent when in step). */
  fixCommands?: string[][];
  /** What was not checked, for a Region in step (absent when there is nothing to say). */
  notes?: string[];
  /** With a consumer source: functions on the latest version, on older ones, and on incompatible ones. */
  consumers?: ConsumerCounts;
  error?: string;
  /** Present when a release feature is in use in this Region: canary, smoke test, rollback hold. */
  release?: ReleaseStatus;
}

/** The release state of a package in a Region (docs/publishing.md "Releases"). */
export interface ReleaseStatus {
  /** The version `layer-version-arn` names. */
  pointedVersion: number | null;
  /** The version `canary-arn` names, if any. */
  canaryVersion: number | null;
  /** The last smoke test in this Region. */
  smoke: SmokeRecord | null;
  /** Set while a rollback holds the pointer: the version it holds and the one it rolled back from. */
  rollbackHold: { version: number; from: number | null; at: string } | null;
}

export interface PackageStatus {
  name: string;
  artifactKey: string | null;
  commit: string | null;
  regions: RegionStatus[];
  outOfStep: boolean;
}

export interface StatusReport {
  packages: PackageStatus[];
  /** With a consumer source: the accounts read, and the ones that could not be (their counts are missing). */
  consumerAccounts?: Inventory["accounts"];
}

export interface StatusDependencies extends RegionClients {
  /** The home Region (default: the Region of the `lambda` client). */
  region?: string;
  regionClients?: RegionClientFactory;
  concurrency?: number;
  /** With a consumer source: its reader and the account that owns the layers. */
  consumerInventory?: { inventory: InventoryReader; owner: string };
}

/** The note of a Region read without any SHARE_* setting: sharing was not checked. */
export const NOT_SHARED_NOTE = "not shared: no SHARE_* setting in force";

function sharingConfigured(config: PublishConfig): boolean {
  const l = config.layer;
  return l.shareOrganizationId !== undefined || l.shareOuIds.length > 0 || l.shareAccountIds.length > 0;
}

/** The version a LayerVersionArn names, when it is one of `layerName`. */
function versionOf(arn: string | undefined, layerName: string): number | null {
  const parts = arn ? parseLayerArn(arn) : undefined;
  return parts?.layerName === layerName && parts.version !== undefined ? parts.version : null;
}

/** A Region's status before anything was read: no version, parameter or share, no problem yet. */
function unread(region: string): RegionStatus {
  return {
    region,
    version: null,
    layerVersionArn: null,
    parameterMatches: false,
    principals: [],
    shared: false,
    outOfStep: false,
    problems: [],
  };
}

async function regionStatus(
  config: PublishConfig,
  pkg: string,
  artifact: { contentSha256: string | null },
  region: string,
  clients: RegionClients,
  flags: SettingFlags,
  consumers?: { inventory: Inventory; owner: string },
): Promise<RegionStatus> {
  const out = unread(region);
  const layerName = `${config.layer.layerNamePrefix}${pkg}`;
  const arnName = layerArnParameter(config.artifacts.parameterPrefix, pkg);
  if (artifact.contentSha256 === null)
    out.problems.push("the artifact-key parameter or the artifact it names is missing");
  try {
    const [latest] = await listLayerVersions(clients.lambda, layerName);
    if (latest) {
      out.version = latest.version;
      out.layerVersionArn = latest.arn;
    }
    const named = await readStringParameter(clients.ssm, arnName);
    out.parameterMatches = latest !== undefined && named === latest.arn;
    const release = await releaseStatus(clients, config.artifacts.parameterPrefix, pkg, named);
    const [share] = await findResourceShares(clients.ram, resourceShareName(pkg));
    const arn = parseLayerArn(latest?.arn ?? named ?? "");
    if (share?.resourceShareArn) {
      out.principals = (await associations(clients.ram, share.resourceShareArn, "PRINCIPAL")).sort();
      const resources = await associations(clients.ram, share.resourceShareArn, "RESOURCE");
      out.shared =
        arn !== undefined && resources.includes(ssmParameterArn(arn.partition, region, arn.account, arnName));
    }
    if (!latest) out.problems.push(`no version of layer ${layerName}`);
    else if (artifact.contentSha256 && !carriesContent(latest.description, artifact.contentSha256))
      out.problems.push(`version ${latest.version} is not the current artifact`);
    const held = release?.rollbackHold !== null && release?.rollbackHold !== undefined;
    const onCanary = release?.canaryVersion !== null && release?.canaryVersion === latest?.version;
    if (latest && !out.parameterMatches && !held && !onCanary)
      out.problems.push(`${arnName} names ${named === undefined ? "nothing" : escapeControls(named)}`);
    if (release?.smoke && !release.smoke.ok && latest?.version === release.smoke.version)
      out.problems.push(
        `version ${release.smoke.version} failed its smoke test: ${escapeControls(release.smoke.error ?? "no error")}`,
      );
    if (release) out.release = release;
    if (sharingConfigured(config) && !out.shared) out.problems.push(`the RAM share does not hold ${arnName}`);
    if (consumers) {
      const facts = await listVersionFacts(clients.lambda, layerName);
      const target = { layerName, region, owner: consumers.owner };
      out.consumers = classify(consumers.inventory.functions, target, facts, versionOf(named, layerName)).counts;
    }
  } catch (error) {
    out.error = describeError(error);
    out.problems.push("could not be read");
  }
  out.outOfStep = out.problems.length > 0;
  if (out.outOfStep) {
    const publish = ["layer-sync", "publish", "--package", pkg, ...settingArguments("publish", flags)];
    const sync = ["layer-sync", "sync", ...settingArguments("sync", flags)];
    out.fixCommands = artifact.contentSha256 === null ? [sync, publish] : [publish];
    out.fix =
      artifact.contentSha256 === null
        ? `${commandLine(sync)} (the artifact of ${pkg} is missing), then ${commandLine(publish)}`
        : commandLine(publish);
  } else if (!sharingConfigured(config)) {
    out.notes = [
      out.shared && out.principals.length
        ? `sharing not checked: no SHARE_* setting in force (the RAM share holds the parameter for ${out.principals.length} principal(s))`
        : NOT_SHARED_NOTE,
    ];
  }
  return out;
}

/** The canary, smoke and rollback parameters of a package in a Region; undefined when none is in use. */
async function releaseStatus(
  clients: RegionClients,
  prefix: string,
  pkg: string,
  named: string | undefined,
): Promise<ReleaseStatus | undefined> {
  const under = await parametersUnder(clients.ssm, `${prefix}/${pkg}`);
  const value = (name: string) => under.find((p) => p.Name === name)?.Value;
  const canary = value(canaryParameter(prefix, pkg));
  const smoke = parseSmokeRecord(value(smokeParameter(prefix, pkg)));
  const hold = parseHold(value(rollbackParameter(prefix, pkg)));
  if (!canary && !smoke && !hold) return undefined;
  return {
    pointedVersion: named ? (parseLayerArn(named)?.version ?? null) : null,
    canaryVersion: canary ? (parseLayerArn(canary)?.version ?? null) : null,
    smoke: smoke ?? null,
    rollbackHold: hold ? { version: hold.version, from: hold.from, at: hold.at } : null,
  };
}

/** Read the state of every package in every Region. Writes nothing. */
export async function readStatus(
  config: PublishConfig,
  request: {
    packages?: readonly string[];
    /** The setting flags of this run by flag name (the command line's): the fix commands carry them. */
    flags?: SettingFlags;
  },
  deps: StatusDependencies,
): Promise<StatusReport> {
  const home = deps.region ?? (await deps.lambda.config.region());
  const regions = config.regions.publishRegions ?? [home];
  const prefix = config.artifacts.parameterPrefix;
  const packages = request.packages?.length ? [...request.packages] : await discoverPackages(deps.ssm, prefix);
  const inventory = deps.consumerInventory ? await deps.consumerInventory.inventory(regions) : undefined;
  const consumers =
    inventory && deps.consumerInventory ? { inventory, owner: deps.consumerInventory.owner } : undefined;
  const clientsOf = (region: string): RegionClients | undefined =>
    region === home ? deps : deps.regionClients?.(region);
  const result = await mapLimit(packages, deps.concurrency ?? 2, async (pkg): Promise<PackageStatus> => {
    const key = (await readStringParameter(deps.ssm, artifactKeyParameter(prefix, pkg)).catch(() => undefined)) ?? null;
    const head =
      key && config.artifacts.bucket
        ? await headArtifact(deps.s3, config.artifacts.bucket, key).catch(() => undefined)
        : undefined;
    const artifact = { contentSha256: head?.metadata?.contentSha256 ?? null };
    const statuses = await mapLimit(regions, 4, async (region) => {
      const clients = clientsOf(region);
      if (!clients) {
        const error = `no AWS clients for ${region}`;
        return { ...unread(region), outOfStep: true, problems: ["could not be read"], error } satisfies RegionStatus;
      }
      return regionStatus(config, pkg, artifact, region, clients, request.flags ?? {}, consumers);
    });
    return {
      name: pkg,
      artifactKey: key,
      commit: head?.metadata?.commit ?? null,
      regions: statuses,
      outOfStep: statuses.some((s) => s.outOfStep),
    };
  });
  return inventory ? { packages: result, consumerAccounts: inventory.accounts } : { packages: result };
}
