/**
 * The one interface every provider adapter implements. The sync core resolves a ref once, then asks the
 * adapter to deliver each folder's entries into an `EntrySink` (the staging area), either by walking the
 * API or by streaming one archive. Adapters never touch the file system or S3 themselves.
 */
import type { Readable } from "node:stream";

import type { Provider, Strategy } from "../../shared/settings.ts";

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
  /** A regular file (mode 100644) or an executable (100755). `body` is consumed fully. */
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
  /** List and download every entry of each folder through the API. */
  walk(commit: string, targets: FolderTarget[]): Promise<FetchResult>;
  /**
   * Download one archive of the commit and extract only the requested folders while streaming. Throws
   * `ArchiveUnavailableError` when the archive is refused, so `auto` can fall back to `walk`.
   */
  archive(commit: string, targets: FolderTarget[]): Promise<FetchResult>;
}
