/** Entry names a zip may not hold together, checked by the writer before writing and by verification after. */
import { ArchiveError } from "../common/errors.ts";
import { quoteName } from "../common/paths.ts";

/**
 * The first two entry names that no extractor can write side by side, or undefined: one name twice (byte for
 * byte; names that differ only in case are distinct on Lambda's case-sensitive file system), or a name that is
 * also a directory of another (`a` and `a/b`: `unzip` cannot create `a/b` once `a` is a file or link, nor `a`
 * once it is a directory). Zips hold no directory entries, so every name is a file or a link.
 */
export function conflictingNames(names: readonly string[]): [string, string] | undefined {
  const seen = new Set<string>();
  for (const name of names) {
    if (seen.has(name)) return [name, name];
    seen.add(name);
  }
  for (const name of names) {
    for (let i = name.indexOf("/"); i > 0; i = name.indexOf("/", i + 1)) {
      const parent = name.slice(0, i);
      if (seen.has(parent)) return [parent, name];
    }
  }
  return undefined;
}

/** Throws when `names` cannot all be extracted (see `conflictingNames`), naming both entries. */
export function checkEntryNames(names: readonly string[]): void {
  const clash = conflictingNames(names);
  if (!clash) return;
  const [a, b] = clash;
  throw new ArchiveError(
    a === b
      ? `entry ${quoteName(a)} appears twice; unzip cannot extract both`
      : `entries ${quoteName(a)} and ${quoteName(b)} conflict: ${quoteName(a)} is a file or link and the other needs it as a directory; unzip cannot extract both`,
  );
}
