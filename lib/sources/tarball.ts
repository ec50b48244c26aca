/**
 * Streaming extraction of the requested folders from a provider's `.tar.gz` archive (Bitbucket's
 * `/get/{commit}.tar.gz`, GitHub's tarball). The single top folder (`owner-repo-<sha>`) is detected, not
 * guessed, and stripped; entries outside the requested folders are skipped without touching the disk.
 *
 * A broken or cut-short archive raises `RetryableBodyError`, so the HTTP client downloads it again. A bad
 * entry (unsafe name, escaping symlink, size limit) fails only its own folder. Git writes submodules into
 * archives as empty directories, which cannot otherwise exist in git, so an empty directory is reported
 * as a submodule. Small files that turn out to be Git LFS pointers are handed back for resolution.
 *
 * Git archives keep a folder's entries together (tree order), so with `early` a target with a `complete`
 * callback is finished as soon as the stream leaves it: its checks run, its LFS pointers are resolved, and the
 * callback is awaited before the next entry is read (the download waits for as long as it takes). A path of a
 * finished folder that comes again later fails that folder. Such a folder was read from bytes the gzip
 * CRC-32 trailer has not vouched for yet: a retried download therefore resets every folder and delivers and
 * completes each one again, and whoever consumes `complete` must not point at anything built from a folder
 * before the whole fetch has returned (see `FolderTarget.complete`). Without `early`, every `complete` target
 * is finished, one after another, once the archive has fully arrived.
 */
import { once } from "node:events";
import { PassThrough, Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import * as tar from "tar-stream";
import { mapLimit } from "../common/concurrency.ts";
import {
  describeError,
  PathSafetyError,
  SourceNotFoundError,
  SourceProtocolError,
  UnsupportedEntryError,
} from "../common/errors.ts";
import { quoteName, relativeTo } from "../common/paths.ts";
import { collect, completeFolder, isLfsPointer, LFS_POINTER_MAX_BYTES } from "./common.ts";
import { RetryableBodyError } from "./http/client.ts";
import type { FetchResult, FolderTarget } from "./types.ts";

export interface LfsPending {
  target: FolderTarget;
  /** Path relative to the folder. */
  path: string;
  /** Path from the repository root. */
  repoPath: string;
  executable: boolean;
  pointer: Buffer;
}

/** How an extraction finishes its folders. */
export interface ExtractHooks {
  /**
   * Finish each folder as soon as the stream leaves it (default: once the whole archive has arrived and its
   * gzip CRC-32 has checked out). Every attempt of a retried download completes every folder again.
   */
  early?: boolean;
  /** Resolve an LFS pointer of a folder about to be finished (`complete` targets only). */
  resolveLfs?: (pending: LfsPending) => Promise<void>;
}

export interface ExtractResult {
  errors: Map<string, Error>;
  lfs: LfsPending[];
}

/**
 * Feed one tar entry to several consumers (nested target folders), with backpressure. A consumer that
 * fails stops receiving data; the entry is still read to its end so extraction can go on.
 */
async function fanOut(
  entry: AsyncIterable<Buffer>,
  consumers: ((body: Readable) => Promise<void>)[],
): Promise<unknown[]> {
  const bodies = consumers.map(() => new PassThrough());
  const errors: unknown[] = consumers.map(() => undefined);
  const done = consumers.map((consume, i) =>
    consume(bodies[i] as PassThrough).then(
      () => undefined,
      (error: unknown) => {
        errors[i] = error;
        bodies[i]?.destroy();
      },
    ),
  );
  for await (const chunk of entry) {
    for (const [i, body] of bodies.entries()) {
      if (errors[i] !== undefined || body.destroyed) continue;
      if (!body.write(chunk)) await Promise.race([once(body, "drain").catch(() => undefined), done[i]]);
    }
  }
  for (const body of bodies) if (!body.destroyed) body.end();
  await Promise.all(done);
  return errors;
}

/**
 * Entries up to this size (as the tar header declares it) are read into memory whole and delivered as
 * bytes (no stream per file and per consumer, which would cost more than such a file's bytes); larger ones
 * as a stream with their declared size, so the sink refuses one over its limits before a byte of it is
 * read into memory, and reads the rest into memory of its own (staging packs files up to 48 MiB).
 */
const IN_MEMORY_ENTRY_MAX = 1024 * 1024;

/** An entry's bytes, which must be exactly the `size` its header declared. */
async function collectEntry(entry: AsyncIterable<Buffer>, size: number): Promise<Buffer> {
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for await (const chunk of entry) {
    if (at + chunk.length > size) throw new Error(`a tar entry holds more than the ${size} bytes its header declares`);
    at += chunk.copy(out, at);
  }
  if (at !== size) throw new Error(`a tar entry holds ${at} of the ${size} bytes its header declares`);
  return out;
}

async function discardEntry(entry: AsyncIterable<Buffer>): Promise<void> {
  for await (const _ of entry) {
    // skip the bytes of an entry nobody asked for
  }
}

/** Extract `targets` from a gzip-compressed tar stream. */
export async function extractFolders(
  body: Readable,
  targets: FolderTarget[],
  what: string,
  hooks: ExtractHooks = {},
): Promise<ExtractResult> {
  const errors = new Map<string, Error>();
  const lfs: LfsPending[] = [];
  const seen = new Map<string, number>(); // folder -> entries delivered
  const dirs = new Map<string, { target: FolderTarget; path: string; children: number }>();
  /** Every path the archive has named, whatever its type: a second arrival is refused, naming it. */
  const named = new Set<string>();
  /** Folders finished by this attempt (with their errors), and those that had an entry in it. */
  const settled = new Map<string, Error | undefined>();
  const settledNow = new Set<string>();
  const entered = new Set<string>();
  let root: string | undefined;
  // a retried download delivers the whole archive again: start every folder, finished or not, from nothing
  for (const t of targets) await t.sink.reset?.();

  const fail = (target: FolderTarget, error: unknown) => {
    if (!errors.has(target.folder))
      errors.set(target.folder, error instanceof Error ? error : new Error(String(error)));
    if (settled.has(target.folder)) settled.set(target.folder, errors.get(target.folder));
  };
  const inside = (t: FolderTarget, repoPath: string) =>
    repoPath === t.folder || relativeTo(t.folder, repoPath) !== undefined;

  /** Whether the folder, all of whose entries have arrived, holds what a layer cannot. */
  const check = (target: FolderTarget) => {
    if (errors.has(target.folder)) return;
    if (!seen.get(target.folder)) {
      fail(target, new SourceNotFoundError(`folder "${target.folder}" does not exist at this commit (${what})`));
      return;
    }
    for (const [repoPath, d] of dirs) {
      if (d.target === target && d.children === 0) {
        fail(
          target,
          new UnsupportedEntryError(
            `folder "${target.folder}" contains a submodule (or an empty directory) at ${quoteName(d.path || repoPath)}; submodules cannot be packaged — vendor the code into the folder instead`,
          ),
        );
        return;
      }
    }
  };

  /** Finish a `complete` target: checks, its LFS pointers, then its consumer (awaited: the stream waits). */
  const settle = async (target: FolderTarget) => {
    settledNow.add(target.folder);
    settled.set(target.folder, undefined);
    check(target);
    const mine = lfs.filter((p) => p.target === target);
    if (mine.length && hooks.resolveLfs) {
      lfs.splice(0, lfs.length, ...lfs.filter((p) => p.target !== target));
      for (const p of mine) {
        if (errors.has(target.folder)) break;
        await hooks.resolveLfs(p).catch((error: unknown) => fail(target, error));
      }
    }
    const error = await completeFolder(target, errors.get(target.folder));
    if (error) fail(target, error);
    settled.set(target.folder, errors.get(target.folder));
  };

  const handle = async (header: tar.Header, entry: AsyncIterable<Buffer>): Promise<void> => {
    const name = header.name.replace(/\/+$/, "");
    const slash = name.indexOf("/");
    const top = slash < 0 ? name : name.slice(0, slash);
    root ??= top;
    if (top !== root) {
      throw new SourceProtocolError(`${what}: the archive has more than one top folder ("${root}" and "${top}")`);
    }
    const repoPath = slash < 0 ? "" : name.slice(slash + 1);
    // the stream has left these folders: finish them before anything else arrives
    if (hooks.early) {
      for (const t of targets) {
        if (t.complete && entered.has(t.folder) && !settledNow.has(t.folder) && !inside(t, repoPath)) await settle(t);
      }
    }
    const within = repoPath ? targets.filter((t) => inside(t, repoPath)) : [];
    for (const t of within) {
      if (settledNow.has(t.folder)) {
        fail(
          t,
          new PathSafetyError(
            `entry ${quoteName(relativeTo(t.folder, repoPath) ?? repoPath)} in folder "${t.folder}" arrives after the folder ended in the archive; git archives keep a folder's entries together, so the source is corrupt or hostile`,
          ),
        );
      } else if (!settled.has(t.folder)) entered.add(t.folder);
    }
    const owners = within.filter((t) => !errors.has(t.folder) && !settled.has(t.folder));
    if (owners.length === 0) return discardEntry(entry);
    if (named.has(repoPath)) {
      for (const t of owners) {
        const rel = relativeTo(t.folder, repoPath) ?? repoPath;
        fail(
          t,
          new PathSafetyError(
            `entry ${quoteName(rel)} in folder "${t.folder}" arrives twice in the archive; a git tree cannot hold that, so the source is corrupt or hostile`,
          ),
        );
      }
      return discardEntry(entry);
    }
    named.add(repoPath);
    // count children of the parent directory for submodule detection
    const parent = repoPath.includes("/") ? repoPath.slice(0, repoPath.lastIndexOf("/")) : "";
    const parentDir = dirs.get(parent);
    if (parentDir) parentDir.children++;
    for (const t of owners) seen.set(t.folder, (seen.get(t.folder) ?? 0) + 1);

    if (header.type === "directory") {
      for (const t of owners)
        dirs.set(repoPath, { target: t, path: relativeTo(t.folder, repoPath) ?? "", children: 0 });
      return discardEntry(entry);
    }
    const files: FolderTarget[] = [];
    for (const t of owners) {
      const rel = relativeTo(t.folder, repoPath);
      if (rel === undefined) {
        fail(t, new SourceProtocolError(`${what}: "${t.folder}" is a ${header.type} in the archive, not a folder`));
      } else if (header.type === "symlink") {
        await t.sink.symlink(rel, header.linkname ?? "").catch((error: unknown) => fail(t, error));
      } else if (header.type === "file" || header.type === "contiguous-file") {
        files.push(t);
      } else {
        fail(
          t,
          new UnsupportedEntryError(
            `folder "${t.folder}" contains ${quoteName(rel)} of type ${header.type}, which a layer cannot hold`,
          ),
        );
      }
    }
    if (files.length === 0) return discardEntry(entry);
    const executable = ((header.mode ?? 0o644) & 0o100) !== 0;
    if (header.size <= LFS_POINTER_MAX_BYTES) {
      const content = await collect(Readable.from(entry));
      for (const t of files) {
        const rel = relativeTo(t.folder, repoPath) as string;
        // the sinks do not keep the bytes (see EntrySink.file): every nested folder gets the same buffer
        if (isLfsPointer(content)) lfs.push({ target: t, path: rel, repoPath, executable, pointer: content });
        else await t.sink.file(rel, content, { executable, size: content.length }).catch((e: unknown) => fail(t, e));
      }
      return;
    }
    if (header.size <= IN_MEMORY_ENTRY_MAX) {
      // read whole (the header declares the size, so memory stays bounded) and handed over as bytes: no
      // stream per file and per consumer; the sinks do not keep them, so nested folders share one buffer
      const content = await collectEntry(entry, header.size);
      for (const t of files) {
        const rel = relativeTo(t.folder, repoPath) as string;
        await t.sink.file(rel, content, { executable, size: content.length }).catch((e: unknown) => fail(t, e));
      }
      return;
    }
    const errs = await fanOut(
      entry,
      files.map(
        (t) => (body: Readable) =>
          t.sink.file(relativeTo(t.folder, repoPath) as string, body, { executable, size: header.size }),
      ),
    );
    for (const [i, e] of errs.entries()) if (e !== undefined) fail(files[i] as FolderTarget, e);
  };

  const extract = tar.extract();
  // 256 KiB pieces instead of 16: a sixteenth of the trips from the thread pool and of the chunks to parse
  const feeding = pipeline(body, createGunzip({ chunkSize: 256 * 1024 }), extract);
  try {
    for await (const entry of extract) {
      await handle(entry.header, entry as unknown as AsyncIterable<Buffer>);
    }
    await feeding;
  } catch (error) {
    await feeding.catch(() => undefined);
    if (error instanceof SourceProtocolError) throw error;
    throw new RetryableBodyError(`${what}: the archive is corrupt or was cut short (${describeError(error)})`, {
      cause: error,
    });
  }

  for (const target of targets) {
    if (settled.has(target.folder)) continue; // finished early
    if (target.complete) await settle(target);
    else check(target);
  }
  return { errors, lfs };
}

/**
 * Resolve the Git LFS pointers an archive held with `resolve` (a failure fails only that folder), then
 * report one outcome per requested folder.
 */
export async function finishExtraction(
  targets: FolderTarget[],
  result: ExtractResult,
  concurrency: number,
  resolve: (pending: LfsPending) => Promise<void>,
): Promise<FetchResult> {
  await mapLimit(result.lfs, concurrency, async (p) => {
    if (result.errors.has(p.target.folder)) return;
    try {
      await resolve(p);
    } catch (error) {
      result.errors.set(p.target.folder, error instanceof Error ? error : new Error(String(error)));
    }
  });
  return {
    outcomes: targets.map((t) => {
      const error = result.errors.get(t.folder);
      return error ? { folder: t.folder, error } : { folder: t.folder };
    }),
    warnings: [],
  };
}
