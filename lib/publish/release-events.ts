/**
 * Release events: every change of a Region's `layer-version-arn` (publish, rollback, promote) becomes one
 * EventBridge event `detail-type: "Layer Sync Release"`, `source: layer-sync`, on SUMMARY_EVENT_BUS in the
 * home Region, one per Region changed:
 *
 *   {"package", "region", "previous": {"version", "layerVersionArn"} | null, "current": {…}, "commit",
 *    "action": "publish|rollback|promote", "consumersOnPrevious": N | null, "sbomDiff": {…} | null}
 *
 * `consumersOnPrevious` is null unless a consumer source is configured (CONSUMER_SOURCE roles|config): then it
 * counts the functions on the previous version in that Region, from the run's consumer inventory (the accounts
 * that could be read; null when the inventory could not be read at all, or there was no previous version).
 * `sbomDiff` is null unless both versions have an SBOM (not yet recorded per version). The
 * publish core reports each move through `PublishDependencies.onRelease`; the handler puts the events after
 * the run. A failure to put them is logged, never fatal (the pointer has moved either way).
 */
import { type EventBridgeClient, PutEventsCommand } from "@aws-sdk/client-eventbridge";
import { describeError } from "../common/errors.ts";
import type { Logger } from "../common/log.ts";
import { type Inventory, usesOf } from "./consumers.ts";
import { parseLayerArn } from "./layers.ts";

export const RELEASE_DETAIL_TYPE = "Layer Sync Release";
export const RELEASE_SOURCE = "layer-sync";

export interface ReleaseVersion {
  version: number;
  layerVersionArn: string;
}

export interface ReleaseEvent {
  package: string;
  region: string;
  previous: ReleaseVersion | null;
  current: ReleaseVersion;
  commit: string | null;
  action: "publish" | "rollback" | "promote";
  consumersOnPrevious: number | null;
  sbomDiff: { added: unknown[]; removed: unknown[]; changed: unknown[] } | null;
}

/** A version reference from a LayerVersionArn; null when there is none or it cannot be parsed. */
export function versionOf(arn: string | undefined | null): ReleaseVersion | null {
  const version = arn ? parseLayerArn(arn)?.version : undefined;
  return arn && version !== undefined ? { version, layerVersionArn: arn } : null;
}

export function releaseEvent(args: {
  package: string;
  region: string;
  previousArn: string | undefined | null;
  currentArn: string;
  commit: string | null;
  action: ReleaseEvent["action"];
  consumersOnPrevious?: number | null | undefined;
}): ReleaseEvent | undefined {
  const current = versionOf(args.currentArn);
  if (!current || args.previousArn === args.currentArn) return undefined;
  return {
    package: args.package,
    region: args.region,
    previous: versionOf(args.previousArn),
    current,
    commit: args.commit,
    action: args.action,
    consumersOnPrevious: args.consumersOnPrevious ?? null,
    sbomDiff: null,
  };
}

/**
 * `consumersOnPrevious`: the functions on the version `previousArn` names, in its Region, from the consumer
 * inventory. null without a consumer source (`consumers` undefined), without a previous version, or when the
 * inventory could not be read (logged).
 */
export async function consumersOnVersion(
  consumers: (() => Promise<Inventory>) | undefined,
  previousArn: string | undefined | null,
  logger: Logger,
): Promise<number | null> {
  const previous = previousArn ? parseLayerArn(previousArn) : undefined;
  if (!consumers || previous?.version === undefined) return null;
  try {
    const inventory = await consumers();
    const target = { layerName: previous.layerName, region: previous.region, owner: previous.account };
    return usesOf(inventory.functions, target).filter((u) => u.version === previous.version).length;
  } catch (error) {
    logger.warn("the consumers of the previous version could not be counted", { error: describeError(error) });
    return null;
  }
}

/** Put the events (10 per PutEvents call, EventBridge's limit). Never throws. */
export async function putReleaseEvents(
  client: EventBridgeClient,
  bus: string,
  events: readonly ReleaseEvent[],
  logger: Logger,
): Promise<void> {
  for (let i = 0; i < events.length; i += 10) {
    const batch = events.slice(i, i + 10);
    try {
      const res = await client.send(
        new PutEventsCommand({
          Entries: batch.map((e) => ({
            EventBusName: bus,
            Source: RELEASE_SOURCE,
            DetailType: RELEASE_DETAIL_TYPE,
            Detail: JSON.stringify(e),
            Resources: [e.current.layerVersionArn],
          })),
        }),
      );
      if (res.FailedEntryCount) {
        logger.warn("release events were not accepted", {
          failed: res.FailedEntryCount,
          code: res.Entries?.find((e) => e.ErrorCode)?.ErrorCode,
        });
      }
    } catch (error) {
      logger.warn("putting release events failed", { error: describeError(error) });
    }
  }
}
