/**
 * File trees for built layers: a local directory (a build's output) or a staged folder, as a list of
 * entries the zip writer can take. Walking never follows a link, rejects anything that is not a file,
 * an executable or a symlink, and checks every name and link target against the tree's root.
 */
import { lstat, readdir, readFile, readlink } from "node:fs/promises";
import { join } from "node:path";
import { BuildError, UnsupportedEntryError } from "../common/errors.ts";
import { checkRelativePath, checkSymlinkTarget, quoteName } from "../common/paths.ts";
import type { FolderStage } from "../staging/staging.ts";
import type { ZipInput } from "../zip/writer.ts";

export interface TreeEntry {
  /** `/`-separated path relative to the tree's root (the layer root). */
  path: string;
  kind: "file" | "executable" | "symlink";
  /** Bytes of a file, or length of a link's target. */
  size: number;
  /** Symlink target, as stored. */
  target?: string;
  /** What the zip writer reads. */
  content: ZipInput["content"];
  /** The content's bytes, for fingerprints (files of a staged folder). */
  read?: () => Promise<Buffer>;
  /** CRC-32 and size of the bytes as they arrived (files of a staged folder), for verifying the zip. */
  digest?: () => Promise<{ crc: number; size: number } | undefined>;
}

/** Sort entries by the UTF-8 bytes of their paths (the zip order). */
export function sortEntries<T extends { path: string }>(entries: T[]): T[] {
  return entries.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
}

/**
 * Every file, executable and symlink under `root`, with paths relative to it and prefixed by `prefix`
 * (e.g. `python/`). `where` names the tree in messages.
 */
export async function walkDirectory(root: string, where: string, prefix = ""): Promise<TreeEntry[]> {
  const out: TreeEntry[] = [];
  const visit = async (dir: string, rel: string): Promise<void> => {
    const names = (await readdir(dir)).sort();
    for (const name of names) {
      const relPath = rel ? `${rel}/${name}` : name;
      const full = `${prefix}${relPath}`;
      checkRelativePath(full, where);
      const abs = join(dir, name);
      const st = await lstat(abs);
      if (st.isDirectory()) await visit(abs, relPath);
      else if (st.isSymbolicLink()) {
        const target = await readlink(abs);
        checkSymlinkTarget(full, target, where);
        out.push({
          path: full,
          kind: "symlink",
          size: Buffer.byteLength(target),
          target,
          content: Buffer.from(target),
        });
      } else if (st.isFile()) {
        const kind = st.mode & 0o111 ? "executable" : "file";
        out.push({ path: full, kind, size: st.size, content: { path: abs } });
      } else {
        throw new UnsupportedEntryError(
          `${quoteName(full)} in ${where} is neither a file, a directory nor a symlink; it cannot go into a layer`,
        );
      }
    }
  };
  await visit(root, "");
  return sortEntries(out);
}

/** The entries of a staged folder, read from its stage (files on disk or packed), under `prefix`. */
export function stageTree(stage: FolderStage, prefix = ""): TreeEntry[] {
  return stage.list().map((staged) => {
    const e = { ...staged, path: `${prefix}${staged.path}` };
    if (e.kind === "symlink") {
      const target = e.target ?? "";
      return { path: e.path, kind: e.kind, size: e.size, target, content: Buffer.from(target) };
    }
    const prepared = stage.prepared(staged.path);
    return {
      path: e.path,
      kind: e.kind,
      size: e.size,
      content: prepared ? { prepared } : { path: stage.absolute(staged.path) },
      read: () => stage.read(staged.path),
      digest: () => stage.checksum(staged.path),
    };
  });
}

/** The bytes of an entry: a file's content, a link's target. */
export async function entryBytes(e: TreeEntry): Promise<Buffer> {
  if (e.kind === "symlink") return Buffer.from(e.target ?? "");
  if (e.read) return e.read();
  if (Buffer.isBuffer(e.content)) return e.content;
  if ("path" in e.content) return readFile(e.content.path);
  throw new BuildError(`entry ${quoteName(e.path)} has no readable content`);
}
