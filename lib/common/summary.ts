/**
 * The summary types every producer reports in (folder syncs, local builds, CodeBuild results) and the
 * entry of a package before anything happened to it.
 */
import type { Strategy } from "./settings.ts";

export interface PackageSummary {
  name: string;
  path: string;
  key: string | null;
  files: number;
  /** The zip's size. */
  bytes: number;
  /** The entries' uncompressed sizes added up: what counts against Lambda's 250 MB (null when unknown). */
  unzippedBytes: number | null;
  sha256: string | null;
  skipped: boolean;
  reason: string | null;
  warnings: string[];
  /** A layer built from a dependency manifest (one entry per target). */
  build?: BuildSummary | null;
  error?: string;
  /** `configuration` when the error is in the configuration or the folder's files (the CLI exits 2). */
  errorKind?: "configuration";
}

export interface SyncSummary {
  commit: string;
  ref: string;
  /** The fetch strategy used (`auto` resolves to one of the two), or `none` when nothing was fetched. */
  strategy: Exclude<Strategy, "auto"> | "none";
  packages: PackageSummary[];
  requests: { total: number };
}

/** The summary entry's `build` field. */
export interface BuildSummary {
  runtime: string;
  architecture: string;
  fingerprint: string;
  builder: "local" | "docker" | "codebuild";
  id: string | null;
  /** The built artifact's CycloneDX SBOM: its key (beside the zip) and number of components. */
  sbom?: { key: string; components: number };
  /** `build.slim` on: the files and unzipped bytes it dropped. */
  slim?: { files: number; bytes: number };
}

/** A target's summary entry: a package summary whose `build` is always present. */
export type TargetSummary = PackageSummary & { build: BuildSummary | null };

/** A target's summary before anything happened to it: nothing uploaded, skipped or warned about. */
export function emptyTargetSummary(name: string, path: string, build: BuildSummary | null): TargetSummary {
  return { ...emptyPackageSummary(name, path), build };
}

/** A package's entry before anything happened to it: nothing uploaded, skipped or warned about yet. */
export function emptyPackageSummary(name: string, path: string): PackageSummary {
  return {
    name,
    path,
    key: null,
    files: 0,
    bytes: 0,
    unzippedBytes: null,
    sha256: null,
    skipped: false,
    reason: null,
    warnings: [],
  };
}
