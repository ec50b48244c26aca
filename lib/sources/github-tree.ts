/**
 * Listing a GitHub directory whose own tree is truncated even without recursion.
 *
 * The contents API lists a directory (up to 1,000 entries) with names, types and object ids, but without
 * file modes: an executable looks like any other file. The truncated tree gives the modes of the entries
 * it did return. The listing is rebuilt as a git tree object (modes known from the partial tree, 100644 for
 * the other files) and accepted only when its SHA-1 is the directory's tree id: that proves the listing
 * complete and every mode right. Otherwise the caller falls back to the archive.
 */
import { createHash } from "node:crypto";
import { SourceProtocolError } from "../common/errors.ts";
import { quoteName } from "../common/paths.ts";

/** The contents API's most entries in one directory listing. */
export const CONTENTS_LIST_MAX = 1000;

export interface GitTreeItem {
  path: string;
  mode: string;
  type: string;
  sha: string;
  size?: number;
}

/** One entry of a contents API directory listing (the fields used). */
export interface ContentsItem {
  name?: unknown;
  type?: unknown;
  sha?: unknown;
  size?: unknown;
}

/** A directory that no route could list; `routes` says which were tried and why each failed. */
export class TreeListingError extends SourceProtocolError {}

interface Entry {
  name: string;
  mode: string;
  sha: string;
  size: number | undefined;
}

/** The SHA-1 of the git tree object holding `entries` (git's order: trees compare as `name/`). */
export function gitTreeSha(entries: readonly { name: string; mode: string; sha: string }[]): string {
  const key = (e: { name: string; mode: string }) => Buffer.from(e.mode === "40000" ? `${e.name}/` : e.name);
  const sorted = [...entries].sort((a, b) => Buffer.compare(key(a), key(b)));
  const body = Buffer.concat(sorted.flatMap((e) => [Buffer.from(`${e.mode} ${e.name}\0`), Buffer.from(e.sha, "hex")]));
  return createHash("sha1")
    .update(Buffer.concat([Buffer.from(`tree ${body.length}\0`), body]))
    .digest("hex");
}

const TYPE_OF_MODE: Record<string, string> = {
  "40000": "tree",
  "100644": "blob",
  "100755": "blob",
  "120000": "blob",
  "160000": "commit",
};

/**
 * The directory's items (relative to it) from a contents listing, or the reason the listing cannot stand
 * for the tree `treeSha`. `partial` is what the truncated tree returned (names relative to the directory).
 */
export function itemsFromContents(
  listing: unknown,
  partial: readonly GitTreeItem[],
  treeSha: string,
): { items: GitTreeItem[] } | { reason: string } {
  if (!Array.isArray(listing)) return { reason: "it did not answer with a directory listing" };
  const known = new Map(partial.map((i) => [i.path, i.mode]));
  const entries: Entry[] = [];
  for (const raw of listing as ContentsItem[]) {
    const { name, type, sha } = raw;
    if (typeof name !== "string" || typeof sha !== "string" || !/^[0-9a-f]{40}$/.test(sha)) {
      throw new SourceProtocolError(`the contents listing has a malformed entry ${quoteName(String(name))}`);
    }
    let mode: string;
    if (type === "dir") mode = "40000";
    else if (type === "symlink") mode = "120000";
    else if (type === "submodule") mode = "160000";
    else if (type === "file") mode = known.get(name) ?? "100644";
    else throw new SourceProtocolError(`the contents listing has an entry ${quoteName(name)} of unknown type`);
    // a listed "file" that the partial tree knows as a submodule keeps the tree's mode
    entries.push({ name, mode, sha, size: typeof raw.size === "number" ? raw.size : undefined });
  }
  if (gitTreeSha(entries) !== treeSha) {
    return {
      reason:
        entries.length >= CONTENTS_LIST_MAX
          ? `it lists at most ${CONTENTS_LIST_MAX} entries`
          : "its listing does not rebuild the tree (an executable or submodule it cannot show)",
    };
  }
  return {
    items: entries.map((e) => ({
      path: e.name,
      mode: e.mode,
      type: TYPE_OF_MODE[e.mode] ?? "blob",
      sha: e.sha,
      ...(e.mode === "40000" || e.size === undefined ? {} : { size: e.size }),
    })),
  };
}
