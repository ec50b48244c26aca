/**
 * Retention: keep the newest RETAIN_VERSIONS versions of a layer and delete older ones, except versions a
 * parameter still names (the package's `layer-version-arn`, or a pin an operator keeps under the package's
 * parameter path). Every layer version counts against the Region's 75 GB code storage, so a
 * publish-per-change layer must prune. Functions that already use a deleted version keep working; new
 * functions can no longer attach it, and a function pinned to it fails to deploy or update.
 *
 * Never deleted either: the versions the package's history (`{prefix}/{package}/history`, JSON, newest first)
 * lists, which rollback may need; and, with a consumer source (`CONSUMER_SOURCE`), every version a function
 * still uses. When the source could not read every account, retention deletes nothing in that run.
 */
import type { LambdaClient } from "@aws-sdk/client-lambda";
import type { SSMClient } from "@aws-sdk/client-ssm";
import { describeError } from "../common/errors.ts";
import { type Inventory, usageByVersion } from "./consumers.ts";
import { deleteLayerVersion, type LayerVersionInfo, parseLayerArn } from "./layers.ts";
import { parametersUnder, versionsNamed } from "./parameters.ts";

/** A version retention kept because functions use it. */
export interface KeptInUse {
  version: number;
  functions: number;
}

/** `{PARAMETER_PREFIX}/{package}/history`, the releases' version history (`history.ts`). */
export { historyParameter } from "./history.ts";

/**
 * The versions the history parameter's value lists (`[{"version", "layerVersionArn", "commit", "at"}]`).
 * No parameter: none. A value that is not such a list: a problem, and retention deletes nothing.
 */
export function historyVersions(value: string | undefined): { versions: number[]; problem?: string } {
  if (value === undefined) return { versions: [] };
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    parsed = undefined;
  }
  if (!Array.isArray(parsed)) {
    return {
      versions: [],
      problem: "the history parameter is not a JSON list of versions; retention deleted nothing (fix or delete it)",
    };
  }
  const versions = parsed.flatMap((entry: unknown) => {
    const v = typeof entry === "object" && entry !== null ? (entry as { version?: unknown }).version : undefined;
    return typeof v === "number" && Number.isInteger(v) ? [v] : [];
  });
  return { versions };
}

export const skippedUnreadable = (n: number) => `skipped: consumers unreadable in ${n} account(s)`;

/**
 * Of the versions retention planned to delete, the ones no function uses. Deletes nothing (`skipped`) when
 * the consumers could not be read in every account, or not at all.
 */
export async function consumerRetention(
  consumers: () => Promise<Inventory>,
  planned: readonly LayerVersionInfo[],
  target: { layerName: string; region: string; owner: string },
): Promise<{ delete: LayerVersionInfo[]; keptInUse: KeptInUse[]; skipped?: string; warning?: string }> {
  let inventory: Inventory;
  try {
    inventory = await consumers();
  } catch (error) {
    const reason = describeError(error);
    return {
      delete: [],
      keptInUse: [],
      skipped: "skipped: consumers could not be read",
      warning: `retention deleted nothing: the consumers could not be read (${reason})`,
    };
  }
  const failed = inventory.accounts.failed.length;
  const usage = usageByVersion(inventory.functions, target);
  const keptInUse = planned
    .filter((v) => usage.has(v.version))
    .map((v) => ({ version: v.version, functions: usage.get(v.version) ?? 0 }));
  if (failed > 0) return { delete: [], keptInUse, skipped: skippedUnreadable(failed) };
  return { delete: planned.filter((v) => !usage.has(v.version)), keptInUse };
}

/** The versions to delete (highest first): all beyond the newest `retain`, minus the protected ones. */
export function planRetention(
  versions: readonly LayerVersionInfo[],
  retain: number,
  protectedVersions: ReadonlySet<number>,
): LayerVersionInfo[] {
  const newestFirst = [...versions].sort((a, b) => b.version - a.version);
  return newestFirst.slice(Math.max(0, retain)).filter((v) => !protectedVersions.has(v.version));
}

/** Delete the given versions one by one; returns the version numbers deleted. */
export async function deleteVersions(
  lambda: LambdaClient,
  layerName: string,
  versions: readonly LayerVersionInfo[],
): Promise<number[]> {
  const deleted: number[] = [];
  for (const v of versions) {
    await deleteLayerVersion(lambda, layerName, v.version);
    deleted.push(v.version);
  }
  return deleted;
}

/**
 * How many of the history's newest entries retention never deletes: the pointed version and the one
 * `layer-sync rollback` returns to by default. Older entries follow RETAIN_VERSIONS like any version; the
 * history forgets a version once it is gone (`history.ts`).
 */
export const HISTORY_KEPT = 2;

/** What step 7 of a Region's publish decided and did. */
export interface RetentionOutcome {
  deleted: number[];
  warnings: string[];
  keptInUse?: KeptInUse[];
  retention?: string;
}

/**
 * Step 7 of a Region's publish: delete versions beyond `retainVersions`, never the kept one, one a parameter
 * under `path` names, the history's newest `HISTORY_KEPT`, nor (with a consumer source) one a function uses.
 */
export async function retainVersions(args: {
  ssm: SSMClient;
  lambda: LambdaClient;
  path: string;
  layerName: string;
  keep: { version: number; arn: string };
  remaining: readonly LayerVersionInfo[];
  historyName: string;
  retainVersions: number;
  consumers: (() => Promise<Inventory>) | undefined;
  region: string;
}): Promise<RetentionOutcome> {
  const out: RetentionOutcome = { deleted: [], warnings: [] };
  const underPath = await parametersUnder(args.ssm, args.path);
  const protectedVersions = versionsNamed(underPath, args.layerName);
  protectedVersions.add(args.keep.version);
  const history = historyVersions(underPath.find((x) => x.Name === args.historyName)?.Value);
  if (history.problem) {
    out.warnings.push(history.problem);
    out.retention = "skipped: the history parameter could not be read";
  }
  // the history's newest entries: the version consumers are pointed to and the one a rollback returns to
  // (RETAIN_VERSIONS=1 asks for one version only, so it leaves nothing to roll back to)
  for (const v of history.versions.slice(0, Math.min(HISTORY_KEPT, args.retainVersions))) protectedVersions.add(v);
  let prune = history.problem ? [] : planRetention(args.remaining, args.retainVersions, protectedVersions);
  if (args.consumers) {
    out.keptInUse = [];
    if (prune.length > 0) {
      const owner = parseLayerArn(args.keep.arn)?.account ?? "";
      const decided = await consumerRetention(args.consumers, prune, {
        layerName: args.layerName,
        region: args.region,
        owner,
      });
      prune = decided.delete;
      out.keptInUse = decided.keptInUse;
      if (decided.skipped) {
        out.retention = decided.skipped;
        if (decided.warning) out.warnings.push(decided.warning);
      }
    }
  }
  out.deleted.push(...(await deleteVersions(args.lambda, args.layerName, prune)));
  return out;
}
