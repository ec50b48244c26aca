/**
 * The SSM pointer `{PARAMETER_PREFIX}/{package}/artifact-key`. Keys are timestamped, so "newer" is the greater
 * file name (`{package}-{timestamp}…`, whatever ARTIFACT_PREFIX was).
 * The pointer only moves forward: a run never replaces a newer key with its own, and when two runs overlap
 * and the older one writes last, whichever run notices (by reading the version just before its own write)
 * puts the newer key back. The result is the newest artifact, whatever the interleaving.
 */
import { GetParameterCommand, ParameterNotFound, PutParameterCommand, type SSMClient } from "@aws-sdk/client-ssm";
import { errorName } from "../common/aws-errors.ts";
import { describeError, ParameterError } from "../common/errors.ts";
import { retryTooManyUpdates } from "../common/ssm.ts";

export type PointerWrite = "written" | "superseded";

/** Read a String parameter; undefined when it does not exist. `selector` is a version number. */
export async function readParameter(ssm: SSMClient, name: string, version?: number): Promise<string | undefined> {
  try {
    const res = await ssm.send(new GetParameterCommand({ Name: version ? `${name}:${version}` : name }));
    return res.Parameter?.Value;
  } catch (error) {
    if (
      error instanceof ParameterNotFound ||
      errorName(error) === "ParameterNotFound" ||
      errorName(error) === "ParameterVersionNotFound"
    ) {
      return undefined;
    }
    throw new ParameterError(`reading SSM parameter ${name} failed (${errorName(error)}): ${describeError(error)}`, {
      cause: error,
    });
  }
}

async function put(ssm: SSMClient, name: string, value: string, description: string): Promise<number> {
  try {
    const res = await retryTooManyUpdates(() =>
      ssm.send(
        new PutParameterCommand({
          Name: name,
          Value: value,
          Type: "String",
          Overwrite: true,
          Description: description,
        }),
      ),
    );
    return res.Version ?? 0;
  } catch (error) {
    throw new ParameterError(`writing SSM parameter ${name} failed (${errorName(error)}): ${describeError(error)}`, {
      cause: error,
    });
  }
}

/**
 * Whether artifact key `a` is newer than `b`. Keys end in `{package}-{timestamp}…zip`; comparing that file name
 * (not the whole key) keeps the order right after ARTIFACT_PREFIX changes.
 */
function isNewer(a: string, b: string): boolean {
  return a.slice(a.lastIndexOf("/") + 1) > b.slice(b.lastIndexOf("/") + 1);
}

/** How far ahead of this run's clock a key may be dated before it counts as written by a wrong clock. */
export const CLOCK_SKEW_MS = 15 * 60_000;

/** The time in a key's file name (`…-YYYYMMDDTHHMMSSZ-sha.zip`), or undefined when it has none. */
export function keyTime(key: string): number | undefined {
  const m = /-(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z-[^/]*\.zip$/.exec(key);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, se] = m.map(Number) as number[];
  return Date.UTC(y as number, (mo as number) - 1, d, h, mi, se);
}

/**
 * Point `name` at `key` unless a newer key is already there; repairs an overlapping older write. A current
 * key dated after `now` (beyond `CLOCK_SKEW_MS`) was written by a machine with a wrong clock: ordering by
 * key names would freeze the pointer on it until that date, so the write fails instead, naming the key.
 */
export async function advancePointer(
  ssm: SSMClient,
  name: string,
  key: string,
  description: string,
  now?: Date,
): Promise<PointerWrite> {
  const current = await readParameter(ssm, name);
  const currentTime = current === undefined ? undefined : keyTime(current);
  if (
    current !== undefined &&
    now !== undefined &&
    currentTime !== undefined &&
    currentTime > now.getTime() + CLOCK_SKEW_MS
  ) {
    throw new ParameterError(
      `pointer ${name} names ${current}, dated ${new Date(currentTime).toISOString()}, after this run's clock (${now.toISOString()}): a run with a wrong clock wrote it, and newer artifacts would never replace it. Fix that machine's clock, then point ${name} at the right artifact (aws ssm put-parameter --overwrite) or delete it, and run again`,
    );
  }
  if (current !== undefined && isNewer(current, key)) return "superseded";
  let value = key;
  for (let round = 0; round < 5; round++) {
    const version = await put(ssm, name, value, description);
    if (version <= 1) break;
    const before = await readParameter(ssm, name, version - 1);
    if (before === undefined || !isNewer(before, value)) break;
    // an older run wrote after a newer one: put the newer key back
    value = before;
  }
  return value === key ? "written" : "superseded";
}
