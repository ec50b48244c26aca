/**
 * Rollback: point `{prefix}/{package}/layer-version-arn` back at the previous version from the history (the
 * one it named before the current one) or at a given version, in every configured Region at once, without
 * publishing. Per Region, at most five calls when the version still carries its grants:
 *
 * 1. ssm:GetParameters: the ARN parameter, the history and the rollback hold (at home also the artifact key);
 * 2. lambda:GetLayerVersion: the version exists and was published by layer-sync (its Description carries
 *    the content tag), else the Region refuses;
 * 3. lambda:GetLayerVersionPolicy (+ one AddLayerVersionPermission per missing grant, normally none);
 * 4. ssm:PutParameter of the ARN parameter;
 * 5. ssm:PutParameter of `{prefix}/{package}/rollback`, the hold that makes a publish of the same artifact
 *    keep the pointer where the rollback put it (see `history.ts`).
 *
 * With a consumer source, the consumers of the Regions that moved are read once afterwards (for each one's
 * `consumersOnPrevious`, which the release events carry); those reads are not counted in the five.
 *
 * The RAM share is untouched: it already holds the parameter. Regions are independent: one failing does not
 * stop the others, and its entry says why.
 */
import { GetLayerVersionCommand, type LambdaClient } from "@aws-sdk/client-lambda";
import type { OrganizationsClient } from "@aws-sdk/client-organizations";
import { GetParametersCommand, type SSMClient } from "@aws-sdk/client-ssm";
import { attempt, isNotFound } from "../common/aws-errors.ts";
import { mapLimit } from "../common/concurrency.ts";
import { artifactKeyParameter, layerArnParameter, type PublishConfig, planRegions } from "../common/config.ts";
import { ConfigError, describeError, LayerSyncError, PublishError } from "../common/errors.ts";
import { type Logger, silentLogger } from "../common/log.ts";
import { type ConsumerClients, inventoryReader } from "./consumers.ts";
import {
  type HistoryEntry,
  historyParameter,
  parseHistory,
  parseHold,
  putStringParameter,
  type RollbackHold,
  rollbackParameter,
} from "./history.ts";
import { taggedSha } from "./layer-settings.ts";
import { parseLayerArn } from "./layers.ts";
import { resolveShareTargets } from "./organizations.ts";
import { applyLayerPermissions, desiredStatements } from "./permissions.ts";
import { consumersOnVersion, type ReleaseEvent, releaseEvent } from "./release-events.ts";

export interface RollbackRequest {
  package: string;
  /** The version to point at; default the previous one from each Region's history. */
  to?: number | undefined;
  /** A subset of PUBLISH_REGIONS; default all of them. */
  regions?: readonly string[] | undefined;
}

export interface VersionRef {
  version: number;
  layerVersionArn: string;
}

export interface RollbackRegionResult {
  region: string;
  /** What the ARN parameter named before. */
  previous: VersionRef | null;
  /** What it names now (unchanged when the Region failed). */
  current: VersionRef | null;
  /** The commit of the version now named, from the history (null when not listed). */
  commit: string | null;
  changed: boolean;
  /**
   * With a consumer source, for a Region whose pointer moved: the functions on the previous version (null
   * when the consumers could not be read). Absent without a source.
   */
  consumersOnPrevious?: number | null;
  error?: string;
}

export interface RollbackSummary {
  package: string;
  layerName: string;
  to: number | null;
  regions: RollbackRegionResult[];
  /** Set when any Region failed; names each failed Region. */
  error?: string;
}

export interface RollbackRegionClients {
  lambda: LambdaClient;
  ssm: SSMClient;
}

export interface RollbackDependencies extends RollbackRegionClients {
  organizations: OrganizationsClient;
  clock: () => Date;
  logger?: Logger;
  sleep?: (ms: number) => Promise<void>;
  /** The home Region (default: the Region of the `lambda` client). */
  region?: string;
  regionClients?: (region: string) => RollbackRegionClients;
  /** With a consumer source (CONSUMER_SOURCE roles|config): the clients to read the consumers with. */
  consumers?: ConsumerClients;
}

interface RegionState {
  current: string | undefined;
  history: HistoryEntry[];
  hold: RollbackHold | undefined;
  artifactKey: string | undefined;
}

async function readState(ssm: SSMClient, names: Record<keyof RegionState, string | undefined>): Promise<RegionState> {
  const wanted = Object.values(names).filter((n): n is string => n !== undefined);
  const res = await attempt(
    PublishError,
    { call: "ssm:GetParameters", resource: `parameters ${wanted.join(", ")}` },
    () => ssm.send(new GetParametersCommand({ Names: wanted })),
  );
  const value = (name: string | undefined) =>
    name === undefined ? undefined : res.Parameters?.find((p) => p.Name === name)?.Value;
  return {
    current: value(names.current),
    history: parseHistory(value(names.history)),
    hold: parseHold(value(names.hold)),
    artifactKey: value(names.artifactKey),
  };
}

/** The version a rollback without `--to` points at: the one named before the current one. */
export function previousVersion(
  history: readonly HistoryEntry[],
  current: number | undefined,
): HistoryEntry | undefined {
  const at = history.findIndex((e) => e.version === current);
  return at < 0 ? history.find((e) => e.version !== current) : history[at + 1];
}

/** Thrown by the handler after a rollback in which a Region failed; the message names each failure. */
export class RollbackFailedError extends LayerSyncError {
  readonly summary: RollbackSummary;
  constructor(summary: RollbackSummary) {
    super(
      `rollback of ${summary.package} failed in ${summary.regions.filter((r) => r.error).length} of ${summary.regions.length} Region(s): ${summary.error ?? ""}`,
    );
    this.summary = summary;
  }
}

/** The release events of a rollback: one per Region whose pointer moved. */
export function rollbackReleaseEvents(summary: RollbackSummary): ReleaseEvent[] {
  return summary.regions.flatMap((r) => {
    if (!r.changed || !r.current) return [];
    const event = releaseEvent({
      package: summary.package,
      region: r.region,
      previousArn: r.previous?.layerVersionArn,
      currentArn: r.current.layerVersionArn,
      commit: r.commit,
      action: "rollback",
      consumersOnPrevious: r.consumersOnPrevious ?? null,
    });
    return event ? [event] : [];
  });
}

function failureSummary(s: RollbackSummary): string | undefined {
  const failed = s.regions.filter((r) => r.error !== undefined);
  if (!failed.length) return undefined;
  return failed.map((r) => `${r.region}: ${r.error}`).join("; ");
}

/** Roll one package back in every requested Region. Never throws for a Region: its failure is in `error`. */
export async function runRollback(
  config: PublishConfig,
  request: RollbackRequest,
  deps: RollbackDependencies,
): Promise<RollbackSummary> {
  const log = deps.logger ?? silentLogger;
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const home = deps.region ?? (await deps.lambda.config.region());
  const planned = planRegions(config, home);
  const unknown = (request.regions ?? []).filter((r) => !planned.some((t) => t.region === r));
  if (unknown.length) {
    throw new ConfigError(
      `--regions names ${unknown.join(", ")}, which PUBLISH_REGIONS does not list (${planned.map((t) => t.region).join(",")}); roll back only where layer-sync publishes`,
    );
  }
  const targets = request.regions?.length ? planned.filter((t) => request.regions?.includes(t.region)) : planned;
  const prefix = config.artifacts.parameterPrefix;
  const pkg = request.package;
  const layerName = `${config.layer.layerNamePrefix}${pkg}`;
  const names = {
    current: layerArnParameter(prefix, pkg),
    history: historyParameter(prefix, pkg),
    hold: rollbackParameter(prefix, pkg),
  };
  const summary: RollbackSummary = { package: pkg, layerName, to: request.to ?? null, regions: [] };
  const desired = desiredStatements(await resolveShareTargets(config.layer, deps.organizations));
  // the artifact key lives at home only: read it with the home Region's parameters, before the others start
  const homeState = readState(deps.ssm, { ...names, artifactKey: artifactKeyParameter(prefix, pkg) });
  await homeState.catch(() => undefined);

  summary.regions = await mapLimit(targets, 4, async (target): Promise<RollbackRegionResult> => {
    const result: RollbackRegionResult = {
      region: target.region,
      previous: null,
      current: null,
      commit: null,
      changed: false,
    };
    try {
      const clients = target.home ? deps : deps.regionClients?.(target.region);
      if (!clients)
        throw new PublishError(`no AWS clients for ${target.region}: the caller passed no region client factory`);
      const artifactKey = (await homeState.catch(() => undefined))?.artifactKey;
      const state = target.home ? await homeState : await readState(clients.ssm, { ...names, artifactKey: undefined });
      const currentArn = state.current ? parseLayerArn(state.current) : undefined;
      if (state.current && currentArn?.version !== undefined) {
        result.previous = { version: currentArn.version, layerVersionArn: state.current };
        result.current = result.previous;
      }
      const entry =
        request.to !== undefined
          ? state.history.find((e) => e.version === request.to)
          : previousVersion(state.history, currentArn?.version);
      const version = request.to ?? entry?.version;
      if (version === undefined) {
        throw new PublishError(
          `${names.history} lists no version before ${currentArn?.version ?? "the current one"}; name one with --to VERSION`,
        );
      }
      if (version === currentArn?.version) {
        result.commit = entry?.commit ?? null;
        return result;
      }
      // the version must exist and be this package's (published by layer-sync under this layer name)
      let description: string | undefined;
      let arn: string | undefined;
      try {
        const got = await clients.lambda.send(
          new GetLayerVersionCommand({ LayerName: layerName, VersionNumber: version }),
        );
        description = got.Description;
        arn = got.LayerVersionArn;
      } catch (error) {
        if (isNotFound(error)) {
          throw new PublishError(
            `version ${version} of layer ${layerName} no longer exists (retention deleted it); choose another with --to VERSION`,
            { cause: error },
          );
        }
        throw new PublishError(
          `lambda:GetLayerVersion on layer ${layerName} version ${version} failed: ${describeError(error)}`,
          {
            cause: error,
          },
        );
      }
      if (!arn || parseLayerArn(arn)?.layerName !== layerName || taggedSha(description) === undefined) {
        throw new PublishError(
          `version ${version} of layer ${layerName} was not published by layer-sync for package ${pkg}; refusing to point consumers at it`,
        );
      }
      await applyLayerPermissions(clients.lambda, layerName, version, desired);
      await putStringParameter(clients.ssm, {
        name: names.current,
        value: arn,
        tier: "Advanced",
        description: `Latest version of Lambda layer ${layerName} (written by layer-sync)`,
        sleep,
      });
      const hold: RollbackHold = {
        version,
        layerVersionArn: arn,
        from: state.hold?.from ?? currentArn?.version ?? null,
        artifactKey: state.hold?.artifactKey ?? artifactKey ?? null,
        at: deps.clock().toISOString(),
      };
      await putStringParameter(clients.ssm, {
        name: names.hold,
        value: JSON.stringify(hold),
        tier: "Standard",
        description: `A rollback holds ${names.current} until a newer artifact arrives (written by layer-sync)`,
        sleep,
      });
      result.current = { version, layerVersionArn: arn };
      result.commit = entry?.commit ?? null;
      result.changed = true;
      log.info("rolled back", { package: pkg, region: target.region, from: result.previous?.version, to: version });
    } catch (error) {
      result.error = describeError(error);
      log.error("rollback failed", { package: pkg, region: target.region, error: result.error });
    }
    return result;
  });
  const reader = deps.consumers ? inventoryReader(config, deps.consumers, async () => [pkg]) : undefined;
  if (reader) {
    const moved = summary.regions.filter((r) => r.changed);
    let read: ReturnType<typeof reader> | undefined;
    const inventory = () => {
      read ??= reader(moved.map((r) => r.region));
      return read;
    };
    for (const r of moved)
      r.consumersOnPrevious = await consumersOnVersion(inventory, r.previous?.layerVersionArn, log);
  }
  const error = failureSummary(summary);
  if (error !== undefined) summary.error = error;
  return summary;
}
