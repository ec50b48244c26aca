/**
 * One measured run in its own process, so its peak RSS belongs to that run alone (see `peakRssBytes`).
 * The harness bundles it (`bundledWorker` in harness.ts: plain ESM, as users run layer-sync) and starts it
 * with `fork(bundle, [jobJson])`. A worker loads
 * only the modules its job needs (layer-sync runs: the CLI, as `npx layer-sync` does), all of them before
 * the clock starts; the result goes back over IPC.
 */
import { readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import type { Job, JobResult, LayerSyncJob, WorkerMessage } from "./jobs.ts";

const job = JSON.parse(process.argv[2] ?? "{}") as Job;
const { main } = job.kind === "layer-sync" ? await import("../cli/main.ts") : { main: undefined };
// the CLI loads its commands on demand; load the sync command's modules now, before the clock starts (tsx
// compiles them on first import, which the installed, bundled CLI never does)
if (job.kind === "layer-sync")
  await Promise.all([
    import("../cli/args.ts"),
    import("../cli/help.ts"),
    import("../cli/output.ts"),
    import("../cli/sync.ts"),
  ]);
const { runBaseline } = job.kind === "baseline" ? await import("./baseline.ts") : { runBaseline: undefined };
const { runLowerBound } = job.kind === "lower-bound" ? await import("./lower-bound.ts") : { runLowerBound: undefined };

interface Summary {
  requests?: { total?: number };
  packages?: { key?: string | null; error?: string }[];
}

async function layerSync(job: LayerSyncJob): Promise<{ requests: number; summary: Summary; zipFile?: string }> {
  const { source } = job;
  const argv = [
    "sync",
    "--provider",
    source.provider,
    "--repository",
    source.repository,
    "--ref",
    job.ref,
    ...(job.folders ?? [job.folder]).flatMap((f) => ["--path", f]),
    "--api-url",
    source.apiUrl,
    "--strategy",
    job.strategy,
    "--work-dir",
    job.workDir,
    "--json",
  ];
  if (source.provider === "bitbucket") argv.push("--web-url", source.webUrl);
  if (job.concurrency !== undefined) argv.push("--concurrency", String(job.concurrency));
  if (job.outDir !== undefined) argv.push("--out", job.outDir);
  if (job.bucket !== undefined) argv.push("--bucket", job.bucket);
  if (job.parameterPrefix !== undefined) argv.push("--parameter-prefix", job.parameterPrefix);
  if (job.artifactPrefix !== undefined) argv.push("--prefix", job.artifactPrefix);
  const out: string[] = [];
  const err: string[] = [];
  if (!main) throw new Error("the CLI is not loaded");
  const code = await main(
    argv,
    { ...process.env, SOURCE_TOKEN: source.token },
    { stdout: { write: (t: string) => out.push(t) }, stderr: { write: (t: string) => err.push(t), isTTY: false } },
  );
  const text = out.join("");
  if (code !== 0) throw new Error(`layer-sync exited ${code}: ${err.join("").trim() || text.slice(0, 500)}`);
  const summary = JSON.parse(text) as Summary;
  const key = summary.packages?.[0]?.key;
  const zipFile = job.outDir !== undefined && key ? `${job.outDir}/${key}` : undefined;
  return { requests: summary.requests?.total ?? 0, summary, ...(zipFile ? { zipFile } : {}) };
}

/**
 * The process's peak RSS. On Linux this is `VmHWM` from /proc/self/status: `getrusage`'s `ru_maxrss` (what
 * `process.resourceUsage().maxRSS` reports) survives `execve`, so a forked worker would inherit the
 * harness's own, much larger, RSS as its starting peak.
 */
function peakRssBytes(): number {
  try {
    const hwm = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync("/proc/self/status", "utf8"))?.[1];
    if (hwm) return Number(hwm) * 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS * 1024;
}

interface Performed {
  clientRequests: number;
  zipFile?: string | undefined;
  summary?: unknown;
  /** When the measured part ended, if before `perform` returned. */
  stoppedAt?: number;
}

async function perform(job: Job): Promise<Performed> {
  if (job.kind === "baseline") {
    if (!runBaseline) throw new Error("the baseline is not loaded");
    const r = await runBaseline(job);
    return { clientRequests: r.requests, zipFile: r.zipFile };
  }
  if (job.kind === "lower-bound") {
    if (!runLowerBound) throw new Error("the lower bound is not loaded");
    const r = await runLowerBound(job);
    // the clock stops with the zip in memory; the file is written only so the entries can be compared
    const stoppedAt = performance.now();
    await writeFile(job.outFile, r.zip);
    return { clientRequests: r.requests, zipFile: job.outFile, stoppedAt };
  }
  const r = await layerSync(job);
  return { clientRequests: r.requests, summary: r.summary, zipFile: r.zipFile };
}

/**
 * Where the memory is at the run's highest RSS, sampled every 20 ms: the V8 heap, the memory outside it
 * (`external`, of which `arrayBuffers`: Buffers, the deflate worker's batches, undici bodies) and the rest
 * (code, native allocations, the deflate worker's own heap, freed memory not yet returned).
 */
function sampleMemory(): { stop: () => NonNullable<JobResult["memory"]> } {
  const loaded = process.memoryUsage.rss();
  let top = process.memoryUsage();
  const timer = setInterval(() => {
    if (process.memoryUsage.rss() > top.rss) top = process.memoryUsage();
  }, 20);
  timer.unref();
  return {
    stop: () => {
      clearInterval(timer);
      return {
        loadedRssBytes: loaded,
        atPeak: {
          rss: top.rss,
          heapUsed: top.heapUsed,
          heapTotal: top.heapTotal,
          external: top.external,
          arrayBuffers: top.arrayBuffers,
        },
      };
    },
  };
}

async function run(): Promise<JobResult> {
  const sampler = sampleMemory();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let performed: Performed | undefined;
  let error: unknown;
  try {
    performed = await perform(job);
  } catch (e) {
    error = e;
  }
  const t1 = performed?.stoppedAt ?? performance.now();
  const cpu = process.cpuUsage(cpu0);
  const measured = {
    wallMs: t1 - t0,
    cpuMs: (cpu.user + cpu.system) / 1000,
    maxRssBytes: peakRssBytes(),
    memory: sampler.stop(),
  };
  if (!performed) {
    return { ok: false, error: error instanceof Error ? error.message : String(error), clientRequests: 0, ...measured };
  }
  return {
    ok: true,
    clientRequests: performed.clientRequests,
    zipFile: performed.zipFile,
    summary: performed.summary,
    ...measured,
  };
}

const result = await run();
const message: WorkerMessage = { type: "result", result };
if (process.send) process.send(message, () => process.exit(0));
else {
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}
