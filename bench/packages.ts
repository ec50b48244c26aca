/**
 * The packages table: 1, 10 and 50 folders of one repository (`bench/packages-fixture.ts`) in one run, on
 * both providers. For each count and provider:
 *
 * - floor: one archive download plus a deflate of each folder's bytes (`bench/lower-bound.ts`);
 * - first: `layer-sync sync --strategy auto --out DIR` of the first commit;
 * - unchanged: after a first sync of that commit to S3 and SSM on moto (run, not measured), a sync of the
 *   second commit, which changes none of the folders: every package must be skipped and nothing uploaded.
 *
 * Each run reports the requests that reached the emulator, its wall time, the worker's peak RSS and the
 * peak size of its work directory (what the Lambda holds in `/tmp`: staging and zips), sampled by the
 * harness every `SAMPLE_MS` while the run goes on (a sample can miss a peak shorter than that).
 */
import { randomBytes } from "node:crypto";
import { lstat, mkdir, readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { CreateBucketCommand, ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3";
import { Agent } from "undici";
import type { Provider } from "../lib/sources/types.ts";
import { startBitbucketEmulator } from "../test/emulators/bitbucket.ts";
import { startGitHubEmulator } from "../test/emulators/github.ts";
import { runWorker, warm } from "./harness.ts";
import type { Job, SourceEndpoints } from "./jobs.ts";
import { buildPackagesFixture, PACKAGE_COUNT, type PackageStats } from "./packages-fixture.ts";
import { evaluatePackageTargets, type PackagesReport, type PackagesRow } from "./packages-report.ts";

export const DEFAULT_PACKAGE_COUNTS: readonly number[] = [1, 10, 50];
const TOKEN = "bench-packages-token-0123456789abcdef";
const SAMPLE_MS = 50;
const PROVIDERS: readonly Provider[] = ["bitbucket", "github"];

export interface PackagesOptions {
  /** Package counts to run (each at most 50). */
  counts: number[];
  /** Fixture scale: 1 is about 300 MB, 0.1 (`--quick`) about 30 MB. */
  scale: number;
  latencyMs: number;
  timeoutSeconds: number;
  concurrency?: number | undefined;
}

/** Peak total size of the regular files below `dir`, sampled until `stop` is called. */
function sampleDirectory(dir: string): { stop: () => Promise<number> } {
  let peak = 0;
  let running = true;
  const size = async (path: string): Promise<number> => {
    let total = 0;
    let names: string[];
    try {
      names = await readdir(path);
    } catch {
      return 0; // not there yet, or already removed
    }
    for (const name of names) {
      const full = join(path, name);
      try {
        const st = await lstat(full);
        total += st.isDirectory() ? await size(full) : st.isFile() ? st.size : 0;
      } catch {
        // removed while we looked
      }
    }
    return total;
  };
  const loop = (async () => {
    while (running) {
      peak = Math.max(peak, await size(dir));
      await new Promise((r) => setTimeout(r, SAMPLE_MS));
    }
    peak = Math.max(peak, await size(dir));
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return peak;
    },
  };
}

interface PackageSummary {
  name: string;
  key?: string | null;
  skipped?: boolean;
  reason?: string | null;
  error?: string;
}

function packagesOf(summary: unknown): PackageSummary[] {
  const p = (summary as { packages?: PackageSummary[] } | undefined)?.packages;
  return Array.isArray(p) ? p : [];
}

async function countObjects(s3: S3Client, bucket: string): Promise<number> {
  let count = 0;
  let token: string | undefined;
  do {
    const res = await s3.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    count += res.KeyCount ?? 0;
    token = res.NextContinuationToken;
  } while (token);
  return count;
}

/** Run the packages table. `s3` is moto's; without it the unchanged rows are skipped. */
export async function benchPackages(
  options: PackagesOptions,
  ctx: { tmp: string; env: NodeJS.ProcessEnv; s3: S3Client | undefined; log: (line: string) => void },
): Promise<PackagesReport> {
  const { log } = ctx;
  const bad = options.counts.filter((n) => !Number.isInteger(n) || n < 1 || n > PACKAGE_COUNT);
  if (bad.length)
    throw new Error(`package counts must be whole numbers from 1 to ${PACKAGE_COUNT} (got ${bad.join(", ")})`);
  const t0 = performance.now();
  const fixture = buildPackagesFixture(options.scale);
  log(
    `[packages] ${fixture.packages.length} folders, ${fixture.bytes} bytes (scale ${options.scale}, built in ${Math.round(performance.now() - t0)} ms)`,
  );
  const bb = await startBitbucketEmulator({
    repos: [fixture.repo],
    accessTokens: [TOKEN],
    latencyMs: options.latencyMs,
  });
  const gh = await startGitHubEmulator({
    repos: [fixture.repo],
    tokens: [TOKEN],
    latencyMs: options.latencyMs,
    rateLimit: { limit: 10_000_000, remaining: 10_000_000 },
  });
  const endpoints: Record<Provider, SourceEndpoints> = {
    bitbucket: {
      provider: "bitbucket",
      apiUrl: bb.apiUrl,
      webUrl: bb.webUrl,
      token: TOKEN,
      repository: fixture.repository,
    },
    github: { provider: "github", apiUrl: gh.apiUrl, webUrl: gh.apiUrl, token: TOKEN, repository: fixture.repository },
  };
  const requestLog: Record<Provider, { count: () => number; reset: () => void }> = {
    bitbucket: { count: () => bb.requests.length, reset: () => bb.resetRequests() },
    github: { count: () => gh.requests.length, reset: () => gh.resetRequests() },
  };
  const dir = join(ctx.tmp, "packages");
  const bucket = `layer-sync-bench-packages-${randomBytes(4).toString("hex")}`;
  const timeoutMs = options.timeoutSeconds * 1000;
  const rows: PackagesRow[] = [];
  try {
    // the emulators build (and keep) each commit's archive on first request: not part of any measured run
    const dispatcher = new Agent({ connections: 2 });
    const headers = { authorization: `Bearer ${TOKEN}`, "user-agent": "bench-warm-up" };
    try {
      for (const commit of [fixture.first, fixture.second]) {
        await warm(`${bb.webUrl}/${fixture.repository}/get/${commit}.tar.gz`, headers, dispatcher);
        await warm(`${gh.apiUrl}/repos/${fixture.repository}/tarball/${commit}`, headers, dispatcher);
      }
    } finally {
      await dispatcher.close();
    }
    if (ctx.s3) {
      await ctx.s3.send(
        new CreateBucketCommand({ Bucket: bucket, CreateBucketConfiguration: { LocationConstraint: "eu-west-1" } }),
      );
    }
    for (const provider of PROVIDERS) {
      for (const count of options.counts) {
        const selected: PackageStats[] = fixture.packages.slice(0, count);
        const folders = selected.map((p) => p.folder);
        const base = join(dir, `${provider}-${count}`);
        const source = endpoints[provider];
        const row: PackagesRow = {
          provider,
          packages: count,
          stagedBytes: selected.reduce((a, p) => a + p.bytes, 0),
          largestBoundBytes: null,
          floor: null,
          first: null,
          unchanged: null,
          notes: [],
        };
        rows.push(row);
        const measure = async (label: string, job: Job, workDir: string | undefined) => {
          await mkdir(base, { recursive: true });
          requestLog[provider].reset();
          const sampler = workDir ? sampleDirectory(workDir) : undefined;
          const { result } = await runWorker(job, ctx.env, timeoutMs);
          const peakTmp = sampler ? await sampler.stop() : null;
          const requests = requestLog[provider].count();
          if (!result.ok) {
            row.notes.push(`${label} failed: ${result.error ?? "no result"}`);
            log(`[packages] ${provider} ×${count} ${label}: failed: ${result.error}`);
            return undefined;
          }
          log(
            `[packages] ${provider} ×${count} ${label}: ${Math.round(result.wallMs)} ms, ${requests} requests, peak RSS ${Math.round(result.maxRssBytes / 1048576)} MiB${peakTmp === null ? "" : `, peak /tmp ${Math.round(peakTmp / 1048576)} MiB`}`,
          );
          return {
            result,
            measured: { requests, wallMs: result.wallMs, peakRssBytes: result.maxRssBytes, peakTmpBytes: peakTmp },
          };
        };
        const syncJob = (ref: string, workDir: string, s3: boolean, outDir?: string): Job => ({
          kind: "layer-sync",
          source,
          ref,
          folder: folders[0] as string,
          folders,
          strategy: "auto",
          workDir,
          outDir,
          bucket: s3 ? bucket : undefined,
          parameterPrefix: s3 ? `/layer-sync-bench-packages/${provider}-${count}` : undefined,
          artifactPrefix: s3 ? `${provider}-${count}/` : undefined,
          concurrency: options.concurrency,
        });

        const floor = await measure(
          "floor",
          {
            kind: "lower-bound",
            source,
            commit: fixture.first,
            folder: folders[0] as string,
            folders,
            outFile: join(base, "floor.zip"),
          },
          undefined,
        );
        if (floor) row.floor = { ...floor.measured, peakTmpBytes: null };

        const out = join(base, "out");
        const first = await measure(
          "first",
          syncJob(fixture.first, join(base, "work-first"), false, out),
          join(base, "work-first"),
        );
        if (first) {
          row.first = first.measured;
          // the bound: the largest package's staged bytes plus its zip
          let largest = 0;
          for (const p of packagesOf(first.result.summary)) {
            if (p.error) row.notes.push(`first: ${p.name} failed: ${p.error}`);
            const staged = selected.find((s) => s.name === p.name)?.bytes ?? 0;
            const zip = p.key ? (await stat(join(out, ...p.key.split("/")))).size : 0;
            largest = Math.max(largest, staged + zip);
          }
          row.largestBoundBytes = largest;
        }
        await rm(base, { recursive: true, force: true });

        if (!ctx.s3) {
          row.notes.push("unchanged: needs moto (run without --no-aws)");
          continue;
        }
        const seed = await runWorker(syncJob(fixture.first, join(base, "work-seed"), true), ctx.env, timeoutMs);
        await rm(base, { recursive: true, force: true });
        if (!seed.result.ok) {
          row.notes.push(`unchanged: the first sync to S3 failed: ${seed.result.error}`);
          continue;
        }
        const before = await countObjects(ctx.s3, bucket);
        const unchanged = await measure(
          "unchanged",
          syncJob(fixture.second, join(base, "work-unchanged"), true),
          join(base, "work-unchanged"),
        );
        await rm(base, { recursive: true, force: true });
        if (unchanged) {
          const pkgs = packagesOf(unchanged.result.summary);
          row.unchanged = {
            ...unchanged.measured,
            allSkipped: pkgs.length === count && pkgs.every((p) => p.skipped === true && p.reason === "unchanged"),
            uploaded: (await countObjects(ctx.s3, bucket)) !== before,
          };
        }
      }
    }
  } finally {
    await Promise.all([bb.close(), gh.close()]);
    await rm(dir, { recursive: true, force: true });
  }
  const largest = fixture.packages.reduce((a, p) => (p.bytes > a.bytes ? p : a));
  const report: PackagesReport = {
    scale: options.scale,
    folders: fixture.packages.length,
    bytes: fixture.bytes,
    largestPackage: { name: largest.name, bytes: largest.bytes },
    counts: options.counts,
    rows,
    targets: [],
  };
  report.targets = evaluatePackageTargets(report);
  return report;
}
