/** A package's entry in the sync summary before anything happened to it: shared by folders and build targets. */
import type { PackageSummary } from "./sync.ts";

/** Nothing uploaded, skipped or warned about yet. */
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

/** Packages that failed on their configuration (a bad `layer.json`, two folders building one package). */
const configFailures = new WeakSet<PackageSummary>();

/**
 * Record that `summary`'s package failed on a configuration error: the CLI then exits 2, not 1. Kept out of
 * the summary object itself, so the JSON summary's shape is unchanged.
 */
export function markConfigFailure(summary: PackageSummary): void {
  configFailures.add(summary);
}

/** Whether `summary`'s package failed on a configuration error (see `markConfigFailure`). */
export function isConfigFailure(summary: PackageSummary): boolean {
  return configFailures.has(summary);
}
