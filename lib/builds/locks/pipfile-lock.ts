/** `Pipfile.lock` converted against its `Pipfile` (see `python.ts`). */
import { createHash } from "node:crypto";
import { BuildError } from "../../common/errors.ts";
import {
  conversion,
  firstLine,
  isTable,
  type LockedPackage,
  normalizeName,
  outOfDate,
  type PythonLockConversion,
  type PythonLockInput,
  parseTomlFile,
  pythonJson,
  sha256Hashes,
  str,
  strings,
  type Table,
  table,
  tables,
} from "./python-common.ts";

/**
 * Pipenv's `_meta.hash.sha256`: sha256 of `json.dumps(data, sort_keys=True, separators=(",", ":"))` where
 * `data` is `{"_meta": {"sources": [[source]], "requires": [requires] or {}}, "default": [packages] or {},
 * "develop": [dev-packages] or {}}` plus every other top-level table of the Pipfile except `source`,
 * `requires`, `packages`, `dev-packages`, `scripts`, `pipfile`, `pipenv`. A Pipfile without `[[source]]`
 * gets pipenv's default PyPI source. Pipenv 2026 (`Pipfile.calculate_hash`) writes the package names of
 * those tables in PEP 503 form (`canonicalNames: true`); older pipenv (plette's `Pipfile.get_hash`) as
 * written.
 */
export function pipfileHash(pipfile: Table, options: { canonicalNames?: boolean } = {}): string {
  const canonical = (section: unknown): unknown =>
    options.canonicalNames === true && isTable(section)
      ? Object.fromEntries(Object.entries(section).map(([k, v]) => [normalizeName(k), v]))
      : section;
  const sources = pipfile.source ?? [{ name: "pypi", url: "https://pypi.org/simple", verify_ssl: true }];
  const data: Table = {
    _meta: { sources, requires: pipfile.requires ?? {} },
    default: canonical(pipfile.packages ?? {}),
    develop: canonical(pipfile["dev-packages"] ?? {}),
  };
  const skipped = new Set([
    "source",
    "requires",
    "packages",
    "dev-packages",
    "scripts",
    "pipfile",
    "pipenv",
    "default",
    "develop",
  ]);
  for (const [key, value] of Object.entries(pipfile)) if (!skipped.has(key)) data[key] = canonical(value);
  return createHash("sha256")
    .update(pythonJson(data, ",", ":"), "utf8")
    .digest("hex");
}

/** Converts `Pipfile.lock` (its `default` section) against its `Pipfile`. */
export function convertPipfileLock(input: PythonLockInput): PythonLockConversion {
  const { where } = input;
  const pipfile = parseTomlFile(input.manifest, "Pipfile", where);
  let lock: Table;
  try {
    lock = table(JSON.parse(input.lock));
  } catch (error) {
    throw new BuildError(`${where}/Pipfile.lock is not valid JSON (${firstLine(error)}); run \`pipenv lock\``, {
      cause: error,
    });
  }
  const recorded = str(table(table(table(lock._meta).hash)).sha256);
  if (recorded !== pipfileHash(pipfile, { canonicalNames: true }) && recorded !== pipfileHash(pipfile)) {
    throw outOfDate(where, "Pipfile.lock", "Pipfile", "pipenv lock", "its _meta.hash does not match");
  }
  const sources = tables(table(lock._meta).sources);
  const out: LockedPackage[] = [];
  for (const [name, entry] of Object.entries(table(lock.default))) {
    const e = table(entry);
    const version = /^===?(.+)$/.exec(str(e.version) ?? "")?.[1];
    if (version === undefined) {
      const kind = ["git", "path", "file", "editable"].find((k) => e[k] !== undefined) ?? "unpinned";
      throw new BuildError(
        `${where}/Pipfile.lock installs ${name} from a ${kind} source, which a frozen hashed install cannot take; depend on a released version from the package index instead`,
      );
    }
    const hashes = sha256Hashes(strings(e.hashes));
    if (hashes.length === 0) {
      throw new BuildError(
        `${where}/Pipfile.lock records no sha256 hash for ${name} ${version}; run \`pipenv lock\` and commit Pipfile.lock`,
      );
    }
    const index =
      sources.find((src) => str(src.name) === str(e.index)) ?? (e.index === undefined ? sources[0] : undefined);
    out.push({ name, version, hashes, marker: str(e.markers), index: str(index?.url) });
  }
  return conversion("pipenv", out);
}

// ---------------------------------------------------------------------------------------------------
