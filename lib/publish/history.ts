/**
 * A package's release state in one Region, next to its `layer-version-arn` parameter:
 *
 * - `{PARAMETER_PREFIX}/{package}/history`: String, Advanced tier, RAM-shared with the ARN parameter; JSON
 *   `[{"version", "layerVersionArn", "commit", "at"}]`, newest first: every version layer-sync pointed
 *   consumers to by publishing or promoting (a rollback points back at an entry and adds none). Entries of
 *   versions retention deleted are dropped, and at most `HISTORY_MAX` entries are kept.
 * - `{PARAMETER_PREFIX}/{package}/rollback`: String (Standard tier, not shared), present while a rollback
 *   holds the pointer: JSON `{"version", "layerVersionArn", "from", "artifactKey", "at"}`. A publish of the
 *   same artifact (`artifactKey`) keeps the pointer where the rollback put it; a newer artifact moves it
 *   forward and deletes this parameter.
 */
import { DeleteParameterCommand, PutParameterCommand, type SSMClient } from "@aws-sdk/client-ssm";
import { attempt, isNotFound } from "../common/aws-errors.ts";
import { PublishError } from "../common/errors.ts";
import { retryTooManyUpdates } from "../common/ssm.ts";
import { readStringParameter } from "./parameters.ts";

export const HISTORY_MAX = 40;

export interface HistoryEntry {
  version: number;
  layerVersionArn: string;
  commit: string | null;
  at: string;
}

export interface RollbackHold {
  version: number;
  layerVersionArn: string;
  /** The version pointed to before the first rollback of this hold. */
  from: number | null;
  /** The artifact key current when the rollback was made. */
  artifactKey: string | null;
  at: string;
}

export function historyParameter(parameterPrefix: string, pkg: string): string {
  return `${parameterPrefix}/${pkg}/history`;
}

/** `{PARAMETER_PREFIX}/{package}/canary-arn`: the version on the canary channel, until promoted. */
export function canaryParameter(parameterPrefix: string, pkg: string): string {
  return `${parameterPrefix}/${pkg}/canary-arn`;
}

/** `{PARAMETER_PREFIX}/{package}/smoke`: the last smoke test in the Region (for `status`). */
export function smokeParameter(parameterPrefix: string, pkg: string): string {
  return `${parameterPrefix}/${pkg}/smoke`;
}

export interface SmokeRecord {
  version: number;
  ok: boolean;
  /** The first failure: target and the import error's last line. */
  error?: string;
  at: string;
}

export function parseSmokeRecord(text: string | undefined): SmokeRecord | undefined {
  if (!text) return undefined;
  try {
    const v: unknown = JSON.parse(text);
    if (!isObject(v) || !Number.isInteger(v.version) || typeof v.ok !== "boolean") return undefined;
    return {
      version: v.version as number,
      ok: v.ok,
      ...(typeof v.error === "string" ? { error: v.error } : {}),
      at: typeof v.at === "string" ? v.at : "",
    };
  } catch {
    return undefined;
  }
}

export function rollbackParameter(parameterPrefix: string, pkg: string): string {
  return `${parameterPrefix}/${pkg}/rollback`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The entries of a history parameter's value; anything malformed is skipped. */
export function parseHistory(text: string | undefined): HistoryEntry[] {
  if (!text) return [];
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return [];
  }
  if (!Array.isArray(raw)) return [];
  return raw.flatMap((e): HistoryEntry[] =>
    isObject(e) && Number.isInteger(e.version) && typeof e.layerVersionArn === "string" && typeof e.at === "string"
      ? [
          {
            version: e.version as number,
            layerVersionArn: e.layerVersionArn,
            commit: typeof e.commit === "string" ? e.commit : null,
            at: e.at,
          },
        ]
      : [],
  );
}

export function parseHold(text: string | undefined): RollbackHold | undefined {
  if (!text) return undefined;
  try {
    const v: unknown = JSON.parse(text);
    if (!isObject(v) || !Number.isInteger(v.version) || typeof v.layerVersionArn !== "string") return undefined;
    return {
      version: v.version as number,
      layerVersionArn: v.layerVersionArn,
      from: Number.isInteger(v.from) ? (v.from as number) : null,
      artifactKey: typeof v.artifactKey === "string" ? v.artifactKey : null,
      at: typeof v.at === "string" ? v.at : "",
    };
  } catch {
    return undefined;
  }
}

/** PutParameter (String, Overwrite) without reading it first. */
export async function putStringParameter(
  ssm: SSMClient,
  args: {
    name: string;
    value: string;
    tier: "Standard" | "Advanced";
    description: string;
    sleep: (ms: number) => Promise<void>;
  },
): Promise<void> {
  await attempt(PublishError, { call: "ssm:PutParameter", resource: `parameter ${args.name}` }, () =>
    retryTooManyUpdates(
      () =>
        ssm.send(
          new PutParameterCommand({
            Name: args.name,
            Value: args.value,
            Type: "String",
            Tier: args.tier,
            Overwrite: true,
            Description: args.description,
          }),
        ),
      args.sleep,
    ),
  );
}

export async function deleteParameter(ssm: SSMClient, name: string): Promise<void> {
  try {
    await ssm.send(new DeleteParameterCommand({ Name: name }));
  } catch (error) {
    if (isNotFound(error)) return;
    await attempt(PublishError, { call: "ssm:DeleteParameter", resource: `parameter ${name}` }, () =>
      Promise.reject(error),
    );
  }
}

/** The history with `entry` on top (unless it is on top already), without versions that no longer exist. */
export function withEntry(
  history: readonly HistoryEntry[],
  entry: HistoryEntry,
  existing?: ReadonlySet<number>,
): HistoryEntry[] | undefined {
  if (history[0]?.version === entry.version) return undefined;
  return [entry, ...history.filter((e) => e.version !== entry.version && (!existing || existing.has(e.version)))].slice(
    0,
    HISTORY_MAX,
  );
}

/** Put `entry` on top of the Region's history; returns false when it was on top already. */
export async function recordInHistory(
  ssm: SSMClient,
  args: {
    name: string;
    entry: HistoryEntry;
    existing?: ReadonlySet<number>;
    layerName: string;
    sleep: (ms: number) => Promise<void>;
    /** The parameter's value when the caller has just read it (saves a GetParameter). */
    known?: { value: string | undefined };
  },
): Promise<boolean> {
  const text = args.known ? args.known.value : await readStringParameter(ssm, args.name);
  const next = withEntry(parseHistory(text), args.entry, args.existing);
  if (!next) return false;
  await putStringParameter(ssm, {
    name: args.name,
    value: JSON.stringify(next),
    tier: "Advanced",
    description: `Versions of Lambda layer ${args.layerName} consumers were pointed to, newest first (written by layer-sync)`,
    sleep: args.sleep,
  });
  return true;
}
