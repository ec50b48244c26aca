/**
 * Python lock files converted into exact, hashed requirement lines (`name==version --hash=sha256:…`, with
 * environment markers kept): the input the trusted resolver installs frozen (`--require-hashes
 * --no-deps`). Only the production set is converted:
 *
 *   uv.lock       the project's default dependencies, transitively; no dependency group (dev or other);
 *                 optional extras only when requested.
 *   poetry.lock   the packages of the `main` group (lock-version 2.1 records `groups` and `markers` per
 *                 package); optional (extra-only) packages only when their extra is requested.
 *   Pipfile.lock  the `default` section.
 *
 * A lock out of date with its manifest is a `BuildError` naming the file and the command that regenerates
 * it (the rules are in docs/lock-files.md). Pure functions over file contents: nothing is run or fetched.
 */
import { convertPipfileLock } from "./pipfile-lock.ts";
import { convertPoetryLock } from "./poetry-lock.ts";
import type { PythonLockConversion, PythonLockFamily, PythonLockInput } from "./python-common.ts";
import { convertUvLock } from "./uv-lock.ts";

export { convertPipfileLock, pipfileHash } from "./pipfile-lock.ts";
export { convertPoetryLock, poetryContentHash } from "./poetry-lock.ts";
export {
  type LockedPackage,
  normalizeName,
  type PythonLockConversion,
  type PythonLockFamily,
  type PythonLockInput,
  pythonJson,
  requirementLines,
} from "./python-common.ts";
export { convertUvLock } from "./uv-lock.ts";

/** Converts a Python lock of `family` (see the module comment). */
export function convertPythonLock(family: PythonLockFamily, input: PythonLockInput): PythonLockConversion {
  if (family === "uv") return convertUvLock(input);
  if (family === "poetry") return convertPoetryLock(input);
  return convertPipfileLock(input);
}
