/**
 * The one interface every provider adapter implements. The sync core resolves a ref once, then asks the
 * adapter to deliver each folder's entries into an `EntrySink` (the staging area), either by walking the
 * API or by streaming one archive. Adapters never touch the file system or S3 themselves.
 */
import type { Readable } from "node:stream";

import type { Provider, Strategy } from "../common/settings.ts";

export type { Provider, Strategy };
export type FetchStrategy = Exclude<Strategy, "auto">;

export interface ResolvedRef {
  /** The ref as asked for, or the main branch name when none was given. */
  ref: string;
  /** The 40-hex commit every folder is read at. */
  commit: string;
}

/** Where an adapter delivers one folder's entries. Paths are relative to the folder, `/`-separated. */
export interface EntrySink {
  /** The folder path in the repository, without leading or trailing slash. */
  readonly folder: string;
  /**
   * A regular file (mode 100644) or an executable (100755). `body` is consumed fully before the promise
   * resolves. A Buffer `body` stays the caller's: the sink copies what it needs, so the caller may keep,
   * change or reuse it once the promise has settled. `size` (when known, as an archive's header declares
   * it) lets the sink refuse a file over its limits before reading any of a stream `body`.
   */
  file(path: string, body: Readable | Buffer, options: { executable: boolean; size?: number }): Promise<void>;
  /** A symbolic link (mode 120000) whose content is `target`. */
  symlink(path: string, target: string): Promise<void>;
  /**
   * Forget everything delivered so far: an archive is about to be delivered again from its start. A path
   * delivered twice otherwise is refused as a duplicate.
   */
  reset?(): Promise<void>;
}

/** A folder to fetch together with the sink that receives it. */
export interface FolderTarget {
  folder: string;
  sink: EntrySink;
  /**
   * Called for the folder as soon as the fetch is done with it (again after `sink.reset` when an archive
   * download is retried: every folder is then delivered again), and awaited before the fetch goes on
   * (backpressure: an archive download waits meanwhile): without an error once every entry has arrived and
   * passed the fetch's checks (an archive: when the stream leaves the folder; a walk: when its downloads
   * end), with the error when it failed. An error it throws fails the folder. A folder completed without
   * error may still fail later (an archive that names one of its paths again), so whoever consumes it must
   * wait for the fetch's outcome before pointing at anything built from it.
   */
  complete?: (error?: Error) => Promise<void>;
}

/** Per-folder result of a fetch: a folder either arrived completely or carries the reason it did not. */
export interface FetchOutcome {
  folder: string;
  error?: Error;
}

export interface FetchResult {
  outcomes: FetchOutcome[];
  /** Human-readable warnings (for example an archive fallback). */
  warnings: string[];
}

export interface RepositorySource {
  readonly provider: Provider;
  /** Resolve a branch (which may contain `/`), tag or commit, or the main branch when `ref` is undefined. */
  resolveRef(ref: string | undefined): Promise<ResolvedRef>;
  /**
   * A cheap content fingerprint of the folder at `commit` (GitHub: the git tree SHA), or undefined where the
   * provider has none. Equal fingerprints mean byte-identical zips.
   */
  folderFingerprint(commit: string, folder: string): Promise<string | undefined>;
  /**
   * Whether anything under `folder` changed between two commits, without downloading files, or undefined
   * when the provider cannot tell cheaply.
   */
  folderChanged(folder: string, fromCommit: string, toCommit: string): Promise<boolean | undefined>;
  /**
   * Which of many folders changed since the commits their artifacts were built from, in a few requests
   * whatever their number (Bitbucket: one `diffstat` per distinct previous commit; GitHub: tree SHAs from
   * the listing of the folders' parents). Folders missing from the answer could not be told. Throws when
   * the batched call fails; the core then checks folder by folder.
   */
  changedFolders(commit: string, queries: ChangeQuery[]): Promise<Map<string, ChangeAnswer>>;
  /** List and download every entry of each folder through the API. */
  walk(commit: string, targets: FolderTarget[]): Promise<FetchResult>;
  /**
   * Download one archive of the commit and extract only the requested folders while streaming. Throws
   * `ArchiveUnavailableError` when the archive is refused, so `auto` can fall back to `walk`.
   */
  archive(commit: string, targets: FolderTarget[]): Promise<FetchResult>;
}

/** One folder of a batched change check: what its current artifact was built from. */
export interface ChangeQuery {
  folder: string;
  /** The commit the current artifact was built from. */
  since: string;
  /** The folder's fingerprint recorded with the artifact (GitHub tree SHA), if any. */
  tree?: string | undefined;
}

export interface ChangeAnswer {
  changed: boolean;
  /** The folder's fingerprint at the new commit, where the provider has one. */
  fingerprint?: string | undefined;
}
