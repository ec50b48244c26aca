/**
 * Secrets in the CLI's own environment, kept out of its children's reach. A child of the same user can
 * read `/proc/<parent pid>/environ`, and that file shows the environment the process *started* with:
 * deleting a variable from `process.env` only unlinks it from libc's list, its bytes stay where the
 * kernel put them. So the CLI, before any child starts:
 *
 * - takes a snapshot of the environment for its settings (the token is read from there);
 * - deletes `SOURCE_TOKEN` from `process.env`;
 * - moves the AWS credential variables the SDK still needs to fresh memory (unset, then set again);
 * - and on Linux overwrites the original bytes of all of them in its start-up environment block
 *   (`/proc/self/mem`, between `env_start` and `env_end` of `/proc/self/stat`), so `/proc/<pid>/environ`
 *   no longer shows them.
 *
 * Elsewhere (macOS) the last step is not possible; children still get only the explicit scrubbed
 * environment (`lib/builds/builders.ts` `childEnvironment`).
 */
import { closeSync, openSync, readFileSync, writeSync } from "node:fs";

/** Read once into the settings, then removed from the process's environment. */
export const REMOVED_VARIABLES: readonly string[] = ["SOURCE_TOKEN"];
/** Kept for the AWS SDK, but moved off the start-up environment block. */
export const HIDDEN_VARIABLES: readonly string[] = ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"];

type MutableEnv = Record<string, string | undefined>;

/** The byte ranges (offset in the block, length) of `NAME=value` entries of `names` in an environment block. */
export function entryRanges(block: Buffer, names: readonly string[]): [number, number][] {
  const out: [number, number][] = [];
  let start = 0;
  while (start < block.length) {
    let end = block.indexOf(0, start);
    if (end < 0) end = block.length;
    const entry = block.subarray(start, end).toString("latin1");
    const eq = entry.indexOf("=");
    if (eq > 0 && names.includes(entry.slice(0, eq))) out.push([start, end - start]);
    start = end + 1;
  }
  return out;
}

/**
 * Overwrite the entries of `names` in this process's start-up environment block with `NAME=` and
 * asterisks. Returns how many were overwritten, or undefined when this system has no such block.
 */
export function overwriteStartupEnvironment(names: readonly string[]): number | undefined {
  if (process.platform !== "linux") return undefined;
  let fd: number | undefined;
  try {
    const stat = readFileSync("/proc/self/stat", "utf8");
    // fields after "(comm)": the first is field 3; env_start and env_end are fields 50 and 51
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const envStart = Number(fields[47]);
    const envEnd = Number(fields[48]);
    if (!Number.isSafeInteger(envStart) || !Number.isSafeInteger(envEnd) || envEnd <= envStart) return undefined;
    const block = readFileSync("/proc/self/environ");
    const ranges = entryRanges(block, names);
    if (!ranges.length) return 0;
    fd = openSync("/proc/self/mem", "r+");
    for (const [offset, length] of ranges) {
      const entry = block.subarray(offset, offset + length).toString("latin1");
      const name = entry.slice(0, entry.indexOf("=") + 1);
      const masked = Buffer.from(name.padEnd(length, "*"), "latin1");
      writeSync(fd, masked, 0, masked.length, envStart + offset);
    }
    return ranges.length;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Snapshot `live` (the process's environment) for the settings, then remove or hide the secrets in it.
 * Returns the snapshot.
 */
export function takeSecrets(live: MutableEnv): Readonly<Record<string, string | undefined>> {
  const snapshot = { ...live };
  for (const name of REMOVED_VARIABLES) delete live[name];
  for (const name of HIDDEN_VARIABLES) {
    const value = live[name];
    if (value === undefined) continue;
    // unset, then set again: libc copies the value to new memory and forgets the start-up bytes
    delete live[name];
    live[name] = value;
  }
  overwriteStartupEnvironment([...REMOVED_VARIABLES, ...HIDDEN_VARIABLES]);
  return snapshot;
}
