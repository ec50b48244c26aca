/**
 * A sync by the real core and source client into a local folder (`--out`, no AWS), as the tests that look at
 * its output or its logs run it: settings through the real loader, a fixed clock, a shared work folder, and
 * the source's HTTP client closed afterwards.
 */
import { loadSyncConfig } from "../../lib/common/config.ts";
import type { SyncSummary } from "../../lib/common/summary.ts";
import { createSource } from "../../lib/sources/index.ts";
import { runSync, type SyncDependencies } from "../../lib/sync/sync.ts";

export async function syncToDir(
  env: Record<string, string | undefined>,
  token: string,
  dirs: { out: string; work: string },
  extra: Partial<Omit<SyncDependencies, "source" | "requestCount">> = {},
): Promise<SyncSummary> {
  const config = loadSyncConfig({ env, flags: {} }, { requireBucket: false });
  const bundle = createSource(config.source, token);
  try {
    return await runSync(
      config,
      { outDir: dirs.out },
      {
        source: bundle.source,
        requestCount: () => bundle.http.requestCount,
        clock: () => new Date("2026-12-01T00:00:00Z"),
        workDir: dirs.work,
        exclusiveWorkDir: false,
        ...extra,
      },
    );
  } finally {
    await bundle.http.close();
  }
}
