/**
 * Streaming extraction of the requested folders from a provider's `.tar.gz` archive (Bitbucket's
 * `/get/{commit}.tar.gz`, GitHub's tarball). The single top folder (`owner-repo-<sha>`) is detected, not
 * guessed, and stripped; entries outside the requested folders are skipped without touching the disk.
 *
 * A broken or cut-short archive raises `RetryableBodyError`, so the HTTP client downloads it again. A bad
 * entry (unsafe name, escaping symlink, size limit) fails only its own folder. Git writes submodules into
 * archives as empty directories, which cannot otherwise exist in git, so an empty directory is reported
 * as a submodule. Small files that turn out to be Git LFS pointers are handed back for resolution.
 */
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import * as tar from "tar-stream";
import { SourceNotFoundError, SourceProtocolError, UnsupportedEntryError } from "../errors.ts";
import { RetryableBodyError } from "../http.ts";
import { quoteName, relativeTo } from "../paths.ts";
import type { FolderTarget } from "./types.ts";
import { bufferStream, collect, isLfsPointer, LFS_POINTER_MAX_BYTES } from "./common.ts";

export interface LfsPending {
  target: FolderTarget;
  /** Path relative to the folder. */
  path: string;
  /** Path from the repository root. */
  repoPath: string;
  executable: boolean;
  pointer: Buffer;
}

export interface ExtractResult {
  errors: Map<string, Error>;
  lfs: LfsPending[];
}

async function drain(stream: Readable): Promise<void> {
  stream.resume();
  await new Promise<void>((resolve) => {
    if (stream.readableEnded) resolve();
    else {
      stream.once("end", resolve);
      stream.once("error", () => resolve());
      stream.once("close", resolve);
    }
  });
}

/** Extract `targets` from a gzip-compressed tar stream. */
export async function extractFolders(body: Readable, targets: FolderTarget[], what: string): Promise<ExtractResult> {
  const errors = new Map<string, Error>();
  const lfs: LfsPending[] = [];
  const seen = new Map<string, number>(); // folder -> entries delivered
  const dirs = new Map<string, { target: FolderTarget; path: string; children: number }>();
  let root: string | undefined;

  const fail = (target: FolderTarget, error: unknown) => {
    if (!errors.has(target.folder)) errors.set(target.folder, error instanceof Error ? error : new Error(String(error)));
  };

  const handle = async (header: tar.Header, stream: Readable): Promise<void> => {
    const name = header.name.replace(/\/+$/, "");
    const slash = name.indexOf("/");
    const top = slash < 0 ? name : name.slice(0, slash);
    root ??= top;
    if (top !== root) {
      throw new SourceProtocolError(`${what}: the archive has more than one top folder ("${root}" and "${top}")`);
    }
    if (slash < 0) return drain(stream);
    const repoPath = name.slice(slash + 1);
    const owners = targets.filter((t) => repoPath === t.folder || relativeTo(t.folder, repoPath) !== undefined);
    if (owners.length === 0) return drain(stream);
    // count children of the parent directory for submodule detection
    const parent = repoPath.includes("/") ? repoPath.slice(0, repoPath.lastIndexOf("/")) : "";
    const parentDir = dirs.get(parent);
    if (parentDir) parentDir.children++;

    let content: Buffer | undefined;
    if (header.type === "file" && header.size <= LFS_POINTER_MAX_BYTES) content = await collect(stream);
    for (const target of owners) {
      seen.set(target.folder, (seen.get(target.folder) ?? 0) + 1);
      if (errors.has(target.folder)) continue;
      const rel = relativeTo(target.folder, repoPath);
      if (header.type === "directory") {
        if (rel !== undefined) dirs.set(repoPath, { target, path: rel, children: 0 });
        else dirs.set(repoPath, { target, path: "", children: 0 });
        continue;
      }
      if (rel === undefined) {
        fail(target, new SourceProtocolError(`${what}: "${target.folder}" is a ${header.type} in the archive, not a folder`));
        continue;
      }
      try {
        if (header.type === "symlink") {
          await target.sink.symlink(rel, header.linkname ?? "");
        } else if (header.type === "file" || header.type === "contiguous-file") {
          const executable = ((header.mode ?? 0o644) & 0o100) !== 0;
          if (content !== undefined) {
            if (isLfsPointer(content)) {
              lfs.push({ target, path: rel, repoPath, executable, pointer: content });
              continue;
            }
            await target.sink.file(rel, bufferStream(content), { executable, size: content.length });
          } else if (owners.length === 1) {
            await target.sink.file(rel, stream, { executable, size: header.size });
          } else {
            // nested targets share one entry stream: buffer it once
            content = await collect(stream);
            await target.sink.file(rel, bufferStream(content), { executable, size: content.length });
          }
        } else {
          fail(
            target,
            new UnsupportedEntryError(
              `folder "${target.folder}" contains ${quoteName(rel)} of type ${header.type}, which a layer cannot hold`,
            ),
          );
        }
      } catch (error) {
        fail(target, error);
      }
    }
    await drain(stream);
  };

  const extract = tar.extract();
  extract.on("entry", (header, stream, next) => {
    handle(header, stream as unknown as Readable).then(
      () => next(),
      (error: unknown) => next(error as Error),
    );
  });
  try {
    await pipeline(body, createGunzip(), extract);
  } catch (error) {
    if (error instanceof SourceProtocolError) throw error;
    throw new RetryableBodyError(`${what}: the archive is corrupt or was cut short (${(error as Error).message})`, {
      cause: error,
    });
  }

  for (const target of targets) {
    if (errors.has(target.folder)) continue;
    if (!seen.get(target.folder)) {
      fail(target, new SourceNotFoundError(`folder "${target.folder}" does not exist at this commit (${what})`));
      continue;
    }
    for (const [repoPath, d] of dirs) {
      if (d.target === target && d.children === 0) {
        fail(
          target,
          new UnsupportedEntryError(
            `folder "${target.folder}" contains a submodule (or an empty directory) at ${quoteName(repoPath)}; submodules cannot be packaged — vendor the code into the folder instead`,
          ),
        );
        break;
      }
    }
  }
  return { errors, lfs };
}
