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
