/**
 * Consumers: which Lambda functions, in which accounts and Regions, use which version of each package's
 * layer. Lambda has no API that lists a layer version's users, and other accounts can never be granted
 * `lambda:ListLayerVersions`, so the functions are read where they live, from one of two sources
 * (`CONSUMER_SOURCE`):
 *
 * - `roles`: the accounts the layers are shared with (the whole organization with SHARE_ORGANIZATION_ID,
 *   else the accounts of SHARE_OU_IDS and SHARE_ACCOUNT_IDS), plus the management account and the caller's
 *   own. In each, assume `CONSUMER_READ_ROLE` (STS) and list the functions of every Region (ListFunctions,
 *   every page), accounts concurrently within a bound, with retries on throttling. An account that cannot be
 *   read (role missing, access denied, Region not enabled) is listed in `accounts.failed` with the reason.
 * - `config`: one AWS Config advanced query (`SelectAggregateResourceConfig`, every page) on the
 *   aggregator `CONSUMER_AGGREGATOR`, through `CONSUMER_AGGREGATOR_ROLE_ARN` when set.
 *
 * Each function that has one of the packages' layers attached is then classified against the versions of
 * that layer in its Region: the version used, whether it is the latest (the version `layer-version-arn`
 * names there), whether its runtime and architecture are among the version's compatible ones (null: the
 * version no longer exists), and drift (`missing-version`: pinned to a deleted version; `foreign-version`:
 * a version layer-sync did not publish, its Description lacking the `sha256:` content tag).
 *
 * The sources are in `consumer-sources.ts`. The core never reads `process.env`: clients (and the factories that make them with assumed credentials)
 * and the sleep between retries are passed in.
 */
import type { LambdaClient } from "@aws-sdk/client-lambda";
import type { SSMClient } from "@aws-sdk/client-ssm";
import { mapLimit } from "../common/concurrency.ts";
import { layerArnParameter, type PublishConfig } from "../common/config.ts";
import { describeError } from "../common/errors.ts";
import type { AccountFailure, ConsumerFunction, InventoryReader } from "./consumer-sources.ts";
import { taggedSha } from "./layer-settings.ts";
import { listLayerVersions, parseLayerArn } from "./layers.ts";
import { discoverPackages, readStringParameter } from "./parameters.ts";

export {
  type AccountFailure,
  type ConsumerClients,
  type ConsumerFunction,
  type Credentials,
  consumerQuery,
  type Inventory,
  type InventoryReader,
  inventoryReader,
  parseConfigResults,
} from "./consumer-sources.ts";

// ------------------------------------------------------------------------------------------ classification

/** A layer version with what compatibility needs. */
export interface LayerVersionFacts {
  version: number;
  arn: string;
  description: string;
  runtimes: string[];
  architectures: string[];
}

/** Every version of a layer with its compatible runtimes and architectures, newest first. */
export async function listVersionFacts(lambda: LambdaClient, layerName: string): Promise<LayerVersionFacts[]> {
  return (await listLayerVersions(lambda, layerName)).map((v) => ({
    version: v.version,
    arn: v.arn,
    description: v.description,
    runtimes: v.runtimes ?? [],
    architectures: v.architectures ?? [],
  }));
}

export type Drift = "missing-version" | "foreign-version";

export interface ConsumerEntry {
  account: string;
  region: string;
  functionName: string;
  runtime: string | null;
  architecture: string | null;
  version: number;
  latest: boolean;
  /** null when the version no longer exists, so its compatible runtimes and architectures are unknown. */
  compatible: boolean | null;
  /** `missing-version`: the version was deleted; `foreign-version`: layer-sync did not publish it. */
  drift: Drift | null;
}

export interface ConsumerCounts {
  /** Functions on the latest version. */
  latest: number;
  /** Functions on any other version. */
  older: number;
  /** Functions whose runtime or architecture is not among their version's compatible ones. */
  incompatible: number;
}

export interface ConsumerRegion {
  region: string;
  latestVersion: number | null;
  functions: ConsumerEntry[];
  counts: ConsumerCounts;
  /** Versions of the layer whose Description lacks layer-sync's `sha256:` tag. */
  foreignVersions: number[];
  error?: string;
}

export interface ConsumerPackage {
  name: string;
  regions: ConsumerRegion[];
}

export interface ConsumersReport {
  packages: ConsumerPackage[];
  accounts: { read: number; failed: AccountFailure[] };
}

/** Whether a runtime and architecture are among a version's compatible ones (an empty list allows any). */
export function isCompatible(v: LayerVersionFacts, runtime: string | null, architecture: string | null): boolean {
  const runtimeOk = v.runtimes.length === 0 || (runtime !== null && v.runtimes.includes(runtime));
  const archOk = v.architectures.length === 0 || v.architectures.includes(architecture ?? "x86_64");
  return runtimeOk && archOk;
}

/** The versions of `layerName` (owned by `owner`, in `region`) that each function uses. */
export function usesOf(
  functions: readonly ConsumerFunction[],
  target: { layerName: string; region: string; owner: string },
): { fn: ConsumerFunction; version: number }[] {
  const out: { fn: ConsumerFunction; version: number }[] = [];
  for (const fn of functions) {
    if (fn.region !== target.region) continue;
    for (const arn of fn.layers) {
      const parts = parseLayerArn(arn);
      if (
        parts?.version !== undefined &&
        parts.layerName === target.layerName &&
        parts.region === target.region &&
        parts.account === target.owner
      ) {
        out.push({ fn, version: parts.version });
      }
    }
  }
  return out;
}

/** Function counts by version of one layer in one Region. */
export function usageByVersion(
  functions: readonly ConsumerFunction[],
  target: { layerName: string; region: string; owner: string },
): Map<number, number> {
  const counts = new Map<number, number>();
  for (const u of usesOf(functions, target)) counts.set(u.version, (counts.get(u.version) ?? 0) + 1);
  return counts;
}

/** Classify the functions using one layer in one Region, sorted by account, then function name. */
export function classify(
  functions: readonly ConsumerFunction[],
  target: { layerName: string; region: string; owner: string },
  versions: readonly LayerVersionFacts[],
  latestVersion: number | null,
): Omit<ConsumerRegion, "region" | "latestVersion"> {
  const byVersion = new Map(versions.map((v) => [v.version, v]));
  const entries: ConsumerEntry[] = usesOf(functions, target).map(({ fn, version }) => {
    const v = byVersion.get(version);
    const foreign = v !== undefined && taggedSha(v.description) === undefined;
    return {
      account: fn.account,
      region: fn.region,
      functionName: fn.functionName,
      runtime: fn.runtime,
      architecture: fn.architecture,
      version,
      latest: latestVersion !== null && version === latestVersion,
      compatible: v ? isCompatible(v, fn.runtime, fn.architecture) : null,
      drift: v === undefined ? "missing-version" : foreign ? "foreign-version" : null,
    };
  });
  entries.sort((a, b) => a.account.localeCompare(b.account) || a.functionName.localeCompare(b.functionName));
  return {
    functions: entries,
    counts: {
      latest: entries.filter((e) => e.latest).length,
      older: entries.filter((e) => !e.latest).length,
      incompatible: entries.filter((e) => e.compatible === false).length,
    },
    foreignVersions: versions
      .filter((v) => taggedSha(v.description) === undefined)
      .map((v) => v.version)
      .sort((a, b) => a - b),
  };
}

// ------------------------------------------------------------------------------------------------- report

export interface ConsumersDependencies {
  /** The home Region's SSM client (where the artifact-key pointers are). */
  ssm: SSMClient;
  /** The home Region. */
  region: string;
  /** Lambda and SSM clients of a Region (the caller's own credentials). */
  regionClients: (region: string) => { lambda: LambdaClient; ssm: SSMClient };
  /** The configured source. */
  inventory: InventoryReader;
  /** The account that owns the layers (the caller's). */
  owner: string;
}

/** `latestVersion`: the version the Region's `layer-version-arn` parameter names. */
function versionNamed(arn: string | undefined, layerName: string): number | null {
  const parts = arn ? parseLayerArn(arn) : undefined;
  return parts?.layerName === layerName && parts.version !== undefined ? parts.version : null;
}

/** Read the consumers of the requested packages (default every package under the prefix) in every Region. */
export async function readConsumers(
  config: PublishConfig,
  request: { packages?: readonly string[] },
  deps: ConsumersDependencies,
): Promise<ConsumersReport> {
  const regions = config.regions.publishRegions ?? [deps.region];
  const prefix = config.artifacts.parameterPrefix;
  const packages = request.packages?.length ? [...request.packages] : await discoverPackages(deps.ssm, prefix);
  const inventory = await deps.inventory(regions);
  const result: ConsumerPackage[] = await mapLimit(packages, 2, async (pkg) => {
    const layerName = `${config.layer.layerNamePrefix}${pkg}`;
    const perRegion = await mapLimit(regions, 4, async (region): Promise<ConsumerRegion> => {
      try {
        const target = { layerName, region, owner: deps.owner };
        const clients = deps.regionClients(region);
        const [versions, named] = await Promise.all([
          listVersionFacts(clients.lambda, layerName),
          readStringParameter(clients.ssm, layerArnParameter(prefix, pkg)),
        ]);
        const latestVersion = versionNamed(named, layerName);
        return { region, latestVersion, ...classify(inventory.functions, target, versions, latestVersion) };
      } catch (error) {
        const counts = { latest: 0, older: 0, incompatible: 0 };
        return { region, latestVersion: null, functions: [], counts, foreignVersions: [], error: describeError(error) };
      }
    });
    return { name: pkg, regions: perRegion };
  });
  return { packages: result, accounts: inventory.accounts };
}
