/**
 * The benchmark harness: builds a fixture, serves it from the project's Bitbucket and GitHub emulators
 * (with injected latency), and measures each run in its own worker process (`bench/worker.ts`):
 *
 * - baseline: the seed algorithm (`bench/baseline.ts`) against the Bitbucket emulator;
 * - lower bound, per provider: one archive download plus an in-memory zip (`bench/lower-bound.ts`);
 * - layer-sync `--strategy walk|archive|auto` for both providers, through the real CLI with `--out`;
 * - unchanged, per provider: a second sync of the same commit against S3 and SSM on moto (the first one
 *   is run, not measured), which must skip before downloading and upload nothing.
 *
 * Requests are counted by the emulators (every request that reached a source host) and by the worker's
 * own client. Nothing talks to anything but 127.0.0.1.
 */
import { type ChildProcess, fork } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, stat } from "node:fs/promises";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { crc32 } from "node:zlib";
import { CreateBucketCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { Agent, request } from "undici";
import type { Provider, Strategy } from "../lib/sources/types.ts";
import { type BitbucketEmulator, startBitbucketEmulator } from "../test/emulators/bitbucket.ts";
import { type GitHubEmulator, startGitHubEmulator } from "../test/emulators/github.ts";
import type { RecordedRequest } from "../test/emulators/server.ts";
import { expectedZipEntries } from "../test/fixtures/repo.ts";
import {
  BENCH_FOLDER,
  BENCH_OWNER,
  BENCH_REPO,
  type BenchFixture,
  buildFixture,
  type FixtureName,
  type FixtureStats,
} from "./fixtures.ts";
import type { Job, JobResult, SourceEndpoints, WorkerMessage } from "./jobs.ts";
import { benchPackages, type PackagesOptions } from "./packages.ts";
import type { PackagesReport } from "./packages-report.ts";
import { evaluateTargets, memoryNote, type TargetResult } from "./report.ts";
import { cachedBundle } from "./worker-bundle.ts";
import { compareEntries, readZipEntries, type ZipEntryInfo } from "./zipinfo.ts";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const workerSource = join(repoRoot, "bench", "worker.ts");
/** Where the bundled worker goes (git-ignored `.cache/`), one folder per key. */
const workerBundleDir = join(repoRoot, ".cache", "bench", "worker-bundle");
let workerBundle: Promise<string> | undefined;

/**
 * The worker as users run layer-sync: bundled by esbuild into plain ESM (as `npm run build:cli` bundles the
 * CLI and the CDK stack the functions), with the deflate worker beside it, and run by plain Node. Under
 * `--import tsx` every process also holds tsx's loader and compiled sources (about 40 MiB more RSS at start:
 * 111–125 MiB against 76 MiB for the bundled CLI), which no user's run carries. Built when a file it is built
 * from changed (`cachedBundle`: keyed by the inputs' contents and the build options' sources), else reused.
 */
export function bundledWorker(): Promise<string> {
  workerBundle ??= (async () => {
    const { nodeBundleOptions } = await import("../scripts/build-cli.ts");
    const { dir } = await cachedBundle({
      cacheDir: workerBundleDir,
      root: repoRoot,
      keyFiles: ["scripts/build-cli.ts", "infra/workers.ts", "tsconfig.json", "package-lock.json"],
      options: (outdir) => nodeBundleOptions({ worker: workerSource }, outdir),
    });
    return join(dir, "worker.mjs");
  })();
  return workerBundle;
}
const TOKEN = "bench-access-token-0123456789abcdef";
const STRATEGIES: readonly Strategy[] = ["walk", "archive", "auto"];
const PROVIDERS: readonly Provider[] = ["bitbucket", "github"];

export type RunKind = "baseline" | "lower-bound" | "layer-sync" | "unchanged";

export interface BenchOptions {
  fixtures: FixtureName[];
  /** Latency the emulators add to every request (ms). */
  latencyMs: number;
  /** Measured repetitions of every run except the baseline. */
  runs: number;
  baselineRuns: number;
  /** SOURCE_CONCURRENCY for layer-sync (default: layer-sync's own default). */
  concurrency?: number | undefined;
  /** Per-run timeout (seconds). */
  timeoutSeconds: number;
  /** "auto" skips the baseline when its estimated time exceeds `baselineBudgetSeconds`. */
  baseline: "run" | "skip" | "auto";
  baselineBudgetSeconds: number;
  /** Run the unchanged (second sync) runs on moto. */
  aws: boolean;
  /** An already running moto (`AWS_ENDPOINT_URL`); otherwise the harness starts one when `aws` is set. */
  motoEndpoint?: string | undefined;
  /** Run ids to run (default all), e.g. ["baseline", "bitbucket:auto"]. */
  only?: string[] | undefined;
  /** The packages table (1/10/50 folders of one repository, `bench/packages.ts`); not run when undefined. */
  packages?: PackagesOptions | undefined;
  log?: (line: string) => void;
}

export interface RunReport {
  id: string;
  label: string;
  kind: RunKind;
  provider: Provider;
  strategy: Strategy | null;
  status: "ok" | "failed" | "skipped" | "timeout";
  note: string | null;
  runs: number;
  /** Requests that reached the source emulators (max over the runs). */
  requests: number | null;
  /** Requests counted by the run's own HTTP client. */
  clientRequests: number | null;
  /** Median wall time (ms). */
  wallMs: number | null;
  wallMsAll: number[];
  cpuMs: number | null;
  /** Highest peak RSS over the runs (bytes). */
  peakRssBytes: number | null;
  /** Where the memory was at the highest peak over the runs (see `sampleMemory` in worker.ts). */
  memoryAtPeak: JobResult["memory"] | null;
  /** Size of the zip produced (or, for unchanged, of the artifact kept). */
  outputBytes: number | null;
  entries: number | null;
  /** baseline wall / this wall */
  speedupVsBaseline: number | null;
  /** this wall / the same provider's lower bound */
  timesLowerBound: number | null;
  /** The zip's entries (name, mode, CRC-32, size) equal the baseline zip's. */
  entriesMatchBaseline: boolean | null;
  /** The zip's entries equal the fixture's git tree. */
  entriesMatchFixture: boolean | null;
  /** unchanged runs: the package was skipped as unchanged. */
  skippedUnchanged: boolean | null;
  /** unchanged runs: an object was added to the bucket. */
  uploaded: boolean | null;
}

export interface FixtureReport {
  name: FixtureName;
  stats: FixtureStats;
  /** The walk target: (directories + files) / 10 + files. */
  walkRequestBudget: number;
  runs: RunReport[];
  targets: TargetResult[];
}

export interface BenchReport {
  version: 1;
  startedAt: string;
  finishedAt: string;
  environment: {
    node: string;
    platform: string;
    cpus: number;
    cpuModel: string;
    memoryBytes: number;
    loadAverageAtStart: number[];
    loadAverageAtEnd: number[];
  };
  options: {
    latencyMs: number;
    runs: number;
    baselineRuns: number;
    concurrency: number | null;
    timeoutSeconds: number;
  };
  fixtures: FixtureReport[];
  /** The packages table, when it ran. */
  packages: PackagesReport | null;
}

interface RunSpec {
  id: string;
  label: string;
  kind: RunKind;
  provider: Provider;
  strategy: Strategy | null;
}

function runSpecs(): RunSpec[] {
  const specs: RunSpec[] = [
    {
      id: "baseline",
      label: "baseline (seed algorithm, Bitbucket)",
      kind: "baseline",
      provider: "bitbucket",
      strategy: null,
    },
  ];
  for (const provider of PROVIDERS) {
    specs.push({
      id: `lower-bound:${provider}`,
      label: `lower bound (${provider} archive + in-memory zip)`,
      kind: "lower-bound",
      provider,
      strategy: null,
    });
  }
  for (const provider of PROVIDERS) {
    for (const strategy of STRATEGIES) {
      specs.push({
        id: `${provider}:${strategy}`,
        label: `layer-sync ${provider} --strategy ${strategy}`,
        kind: "layer-sync",
        provider,
        strategy,
      });
    }
  }
  for (const provider of PROVIDERS) {
    specs.push({
      id: `unchanged:${provider}`,
      label: `unchanged: second sync (${provider}, auto, S3+SSM)`,
      kind: "unchanged",
      provider,
      strategy: "auto",
    });
  }
  return specs;
}

export const RUN_IDS: readonly string[] = runSpecs().map((s) => s.id);

function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** The environment a worker gets: the bench's own, pointed at moto when there is one, never at real AWS. */
export function workerEnv(motoEndpoint: string | undefined, noConfig: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.keys(env)) {
    if (name.startsWith("AWS_")) delete env[name];
  }
  Object.assign(env, {
    AWS_REGION: "eu-west-1",
    AWS_ACCESS_KEY_ID: "testing",
    AWS_SECRET_ACCESS_KEY: "testing",
    AWS_CONFIG_FILE: noConfig,
    AWS_SHARED_CREDENTIALS_FILE: noConfig,
    AWS_EC2_METADATA_DISABLED: "true",
    // without moto, any AWS call goes to a closed loopback port rather than to AWS
    AWS_ENDPOINT_URL: motoEndpoint ?? "http://127.0.0.1:9",
  });
  return env;
}

/** Run one job in a fresh worker process; a run past its timeout is killed. */
export async function runWorker(
  job: Job,
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<{ result: JobResult; timedOut: boolean; stderr: string }> {
  const workerPath = await bundledWorker();
  return new Promise((resolveRun) => {
    const child: ChildProcess = fork(workerPath, [JSON.stringify(job)], {
      cwd: repoRoot,
      env,
      // BENCH_WORKER_NODE_FLAGS: Node flags for the measured process, e.g. "--cpu-prof --cpu-prof-dir=DIR"
      execArgv: env.BENCH_WORKER_NODE_FLAGS?.split(/\s+/).filter(Boolean) ?? [],
      stdio: ["ignore", "pipe", "pipe", "ipc"],
    });
    let result: JobResult | undefined;
    let timedOut = false;
    const stderr: string[] = [];
    child.stderr?.on("data", (c: Buffer) => {
      if (stderr.join("").length < 20_000) stderr.push(c.toString("utf8"));
    });
    child.stdout?.resume();
    child.on("message", (m: WorkerMessage) => {
      if (m.type === "result") result = m.result;
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      const text = stderr.join("");
      resolveRun({
        result: result ?? {
          ok: false,
          error: timedOut
            ? `timed out after ${Math.round(timeoutMs / 1000)} s`
            : `worker exited (code ${code}, signal ${signal}) without a result: ${text.trim().slice(-500)}`,
          wallMs: timedOut ? timeoutMs : 0,
          cpuMs: 0,
          maxRssBytes: 0,
          clientRequests: 0,
        },
        timedOut,
        stderr: text,
      });
    });
  });
}

/** Drain a URL (following redirects, the token only on the first hop), so emulator caches are warm. */
export async function warm(url: string, headers: Record<string, string>, dispatcher: Agent): Promise<void> {
  let next = url;
  let h = headers;
  for (let hops = 0; hops < 3; hops++) {
    const res = await request(next, { headers: h, dispatcher });
    const location = res.headers.location;
    await res.body.dump({ limit: Number.MAX_SAFE_INTEGER });
    if (res.statusCode >= 300 && res.statusCode < 400 && typeof location === "string") {
      next = new URL(location, next).href;
      h = { "user-agent": headers["user-agent"] ?? "bench" };
      continue;
    }
    if (res.statusCode !== 200) throw new Error(`warm-up GET ${next} answered ${res.statusCode}`);
    return;
  }
}

async function warmUp(fixture: BenchFixture, bb: BitbucketEmulator, gh: GitHubEmulator): Promise<void> {
  const dispatcher = new Agent({ connections: 2 });
  const repo = `${BENCH_OWNER}/${BENCH_REPO}`;
  const bbHeaders = { authorization: `Bearer ${TOKEN}`, "user-agent": "bench-warm-up" };
  const ghHeaders = { ...bbHeaders, "x-github-api-version": "2022-11-28" };
  const c = fixture.commit;
  const firstFile = [...fixture.repo.head().entries.keys()].find((p) => p.startsWith(`${BENCH_FOLDER}/`)) ?? "";
  try {
    await Promise.all([
      warm(`${bb.webUrl}/${repo}/get/${c}.tar.gz`, bbHeaders, dispatcher),
      warm(`${gh.apiUrl}/repos/${repo}/tarball/${c}`, ghHeaders, dispatcher),
    ]);
    await warm(
      `${bb.apiUrl}/repositories/${repo}/src/${c}/${BENCH_FOLDER}/?max_depth=30&pagelen=100`,
      bbHeaders,
      dispatcher,
    );
    await warm(`${bb.apiUrl}/repositories/${repo}/src/${c}/${firstFile}`, bbHeaders, dispatcher);
    await warm(`${gh.apiUrl}/repos/${repo}/git/trees/${c}?recursive=1`, ghHeaders, dispatcher);
    await warm(`${gh.apiUrl}/repos/${repo}/contents/${BENCH_FOLDER}?ref=${c}`, ghHeaders, dispatcher);
    const blob = fixture.repo.children(fixture.repo.head(), BENCH_FOLDER).find((i) => i.type === "blob");
    if (blob) await warm(`${gh.apiUrl}/repos/${repo}/git/blobs/${blob.sha}`, ghHeaders, dispatcher);
  } finally {
    await dispatcher.close();
  }
}

function fixtureEntries(fixture: BenchFixture): ZipEntryInfo[] {
  return expectedZipEntries(fixture.repo.head(), BENCH_FOLDER).map((e) => ({
    name: e.name,
    mode: e.mode,
    crc: crc32(e.content) >>> 0,
    size: e.content.length,
  }));
}

async function countObjects(s3: S3Client, bucket: string): Promise<number> {
  const res = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
  return res.KeyCount ?? 0;
}

function emptyReport(spec: RunSpec, status: RunReport["status"], note: string | null): RunReport {
  return {
    ...spec,
    status,
    note,
    runs: 0,
    requests: null,
    clientRequests: null,
    wallMs: null,
    wallMsAll: [],
    cpuMs: null,
    peakRssBytes: null,
    memoryAtPeak: null,
    outputBytes: null,
    entries: null,
    speedupVsBaseline: null,
    timesLowerBound: null,
    entriesMatchBaseline: null,
    entriesMatchFixture: null,
    skippedUnchanged: null,
    uploaded: null,
  };
}

interface PackageSummary {
  skipped?: boolean;
  reason?: string | null;
  bytes?: number;
  error?: string;
}

function firstPackage(summary: unknown): PackageSummary | undefined {
  const packages = (summary as { packages?: PackageSummary[] } | undefined)?.packages;
  return Array.isArray(packages) ? packages[0] : undefined;
}

async function benchFixture(
  name: FixtureName,
  options: BenchOptions,
  ctx: { tmp: string; env: NodeJS.ProcessEnv; s3: S3Client | undefined; log: (line: string) => void },
): Promise<FixtureReport> {
  const { log } = ctx;
  const t0 = performance.now();
  const fixture = buildFixture(name);
  const { stats } = fixture;
  log(
    `[${name}] ${stats.files} entries in ${stats.directories} directories, ${stats.bytes} bytes (built in ${Math.round(performance.now() - t0)} ms)`,
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
    // the walks send thousands of requests per run; the bench is not about GitHub's hourly budget
    rateLimit: { limit: 10_000_000, remaining: 10_000_000 },
  });
  const repository = `${BENCH_OWNER}/${BENCH_REPO}`;
  const endpoints: Record<Provider, SourceEndpoints> = {
    bitbucket: { provider: "bitbucket", apiUrl: bb.apiUrl, webUrl: bb.webUrl, token: TOKEN, repository },
    github: { provider: "github", apiUrl: gh.apiUrl, webUrl: gh.apiUrl, token: TOKEN, repository },
  };
  const logs: Record<Provider, { requests: RecordedRequest[]; reset: () => void }> = {
    bitbucket: { requests: bb.requests, reset: () => bb.resetRequests() },
    github: { requests: gh.requests, reset: () => gh.resetRequests() },
  };
  const expected = fixtureEntries(fixture);
  const runs: RunReport[] = [];
  const entriesOf = new Map<string, ZipEntryInfo[]>();
  const dir = join(ctx.tmp, name);
  const timeoutMs = options.timeoutSeconds * 1000;
  const bucket = `layer-sync-bench-${name}-${randomBytes(4).toString("hex")}`;
  let bucketReady = false;

  try {
    const tw = performance.now();
    await warmUp(fixture, bb, gh);
    log(`[${name}] emulators warm (${Math.round(performance.now() - tw)} ms)`);

    // which runs take part, and how often
    const plan: { spec: RunSpec; repeat: number }[] = [];
    for (const spec of runSpecs()) {
      if (options.only && !options.only.includes(spec.id)) continue;
      const repeat = spec.kind === "baseline" ? options.baselineRuns : options.runs;
      if (spec.kind === "baseline") {
        const estimateS = ((stats.files * 1.1 + stats.directories * 1.5) * (options.latencyMs + 2)) / 1000;
        if (options.baseline === "skip" || repeat === 0) {
          runs.push(emptyReport(spec, "skipped", "baseline not requested"));
          continue;
        }
        if (options.baseline === "auto" && estimateS * repeat > options.baselineBudgetSeconds) {
          runs.push(
            emptyReport(
              spec,
              "skipped",
              `estimated ${Math.round(estimateS * repeat)} s is over the ${options.baselineBudgetSeconds} s budget (--baseline run forces it)`,
            ),
          );
          continue;
        }
      }
      if (spec.kind === "unchanged" && (!options.aws || !ctx.s3)) {
        runs.push(emptyReport(spec, "skipped", "needs moto (run without --no-aws)"));
        continue;
      }
      plan.push({ spec, repeat });
    }

    const runDir = (spec: RunSpec, i: number) => join(dir, spec.id.replace(/:/g, "-"), String(i));
    const jobFor = (spec: RunSpec, i: number): Job => {
      const source = endpoints[spec.provider];
      const out = runDir(spec, i);
      if (spec.kind === "baseline") {
        return { kind: "baseline", source, ref: "main", folder: BENCH_FOLDER, outFile: join(out, "baseline.zip") };
      }
      if (spec.kind === "lower-bound") {
        return {
          kind: "lower-bound",
          source,
          commit: fixture.commit,
          folder: BENCH_FOLDER,
          outFile: join(out, "lower-bound.zip"),
        };
      }
      return {
        kind: "layer-sync",
        source,
        ref: "main",
        folder: BENCH_FOLDER,
        strategy: spec.strategy ?? "auto",
        workDir: join(out, "work"),
        outDir: spec.kind === "layer-sync" ? join(out, "out") : undefined,
        bucket: spec.kind === "unchanged" ? bucket : undefined,
        parameterPrefix: spec.kind === "unchanged" ? `/layer-sync-bench/${spec.provider}` : undefined,
        artifactPrefix: spec.kind === "unchanged" ? `${spec.provider}/` : undefined,
        concurrency: options.concurrency,
      };
    };

    interface Progress {
      results: JobResult[];
      requestCounts: number[];
      failure?: { status: RunReport["status"]; note: string };
      outputBytes: number | null;
      entries?: ZipEntryInfo[];
      skippedUnchanged: boolean | null;
      uploaded: boolean | null;
    }
    const progress = new Map<string, Progress>();
    for (const { spec } of plan) {
      progress.set(spec.id, {
        results: [],
        requestCounts: [],
        outputBytes: null,
        skippedUnchanged: null,
        uploaded: null,
      });
    }

    // the unchanged runs need a first sync of the commit (uploads; not measured)
    for (const { spec } of plan) {
      if (spec.kind !== "unchanged" || !ctx.s3) continue;
      if (!bucketReady) {
        await ctx.s3.send(
          new CreateBucketCommand({ Bucket: bucket, CreateBucketConfiguration: { LocationConstraint: "eu-west-1" } }),
        );
        bucketReady = true;
      }
      const first = await runWorker(jobFor(spec, -1), ctx.env, timeoutMs);
      if (!first.result.ok) {
        (progress.get(spec.id) as Progress).failure = {
          status: "failed",
          note: `first sync failed: ${first.result.error}`,
        };
      }
    }

    // rounds: every run once per round, so a change in machine load hits all of them alike
    const rounds = Math.max(0, ...plan.map((p) => p.repeat));
    for (let i = 0; i < rounds; i++) {
      for (const { spec, repeat } of plan) {
        const p = progress.get(spec.id) as Progress;
        if (i >= repeat || p.failure) continue;
        await mkdir(runDir(spec, i), { recursive: true });
        const before = spec.kind === "unchanged" && ctx.s3 ? await countObjects(ctx.s3, bucket) : 0;
        logs[spec.provider].reset();
        const { result, timedOut } = await runWorker(jobFor(spec, i), ctx.env, timeoutMs);
        const count = logs[spec.provider].requests.length;
        if (!result.ok) {
          p.failure = { status: timedOut ? "timeout" : "failed", note: result.error ?? "failed" };
          log(`[${name}] ${spec.id} run ${i + 1}: ${p.failure.status}: ${p.failure.note}`);
          continue;
        }
        p.results.push(result);
        p.requestCounts.push(count);
        if (result.zipFile) {
          p.outputBytes = (await stat(result.zipFile)).size;
          p.entries ??= await readZipEntries(result.zipFile);
        }
        if (spec.kind === "unchanged" && ctx.s3) {
          const pkg = firstPackage(result.summary);
          p.skippedUnchanged = (p.skippedUnchanged ?? true) && pkg?.skipped === true && pkg.reason === "unchanged";
          p.uploaded = (p.uploaded ?? false) || (await countObjects(ctx.s3, bucket)) !== before;
          p.outputBytes = pkg?.bytes ?? null;
        }
        log(
          `[${name}] ${spec.id} run ${i + 1}/${repeat}: ${Math.round(result.wallMs)} ms, ${count} requests, peak RSS ${Math.round(result.maxRssBytes / 1048576)} MiB${memoryNote(result)}`,
        );
        // zips and staging of finished runs are not needed any more
        await rm(runDir(spec, i), { recursive: true, force: true });
      }
    }

    for (const { spec } of plan) {
      const p = progress.get(spec.id) as Progress;
      if (p.results.length === 0) {
        runs.push(emptyReport(spec, p.failure?.status ?? "failed", p.failure?.note ?? "no run finished"));
        continue;
      }
      if (p.entries) entriesOf.set(spec.id, p.entries);
      const walls = p.results.map((r) => r.wallMs);
      runs.push({
        ...spec,
        status: p.failure ? p.failure.status : "ok",
        note: p.failure ? p.failure.note : null,
        runs: p.results.length,
        requests: Math.max(...p.requestCounts),
        clientRequests: Math.max(...p.results.map((r) => r.clientRequests)),
        wallMs: median(walls),
        wallMsAll: walls.map((w) => Math.round(w)),
        cpuMs: median(p.results.map((r) => r.cpuMs)),
        peakRssBytes: Math.max(...p.results.map((r) => r.maxRssBytes)),
        memoryAtPeak:
          p.results.reduce((w, r) => (r.maxRssBytes > w.maxRssBytes ? r : w), p.results[0] as JobResult).memory ?? null,
        outputBytes: p.outputBytes,
        entries: p.entries?.length ?? null,
        speedupVsBaseline: null,
        timesLowerBound: null,
        entriesMatchBaseline: null,
        entriesMatchFixture: p.entries ? compareEntries(p.entries, expected).length === 0 : null,
        skippedUnchanged: p.skippedUnchanged,
        uploaded: p.uploaded,
      });
    }
    // keep the report in the canonical order
    const order = new Map(RUN_IDS.map((id, i) => [id, i]));
    runs.sort((x, y) => (order.get(x.id) ?? 0) - (order.get(y.id) ?? 0));
  } finally {
    await Promise.all([bb.close(), gh.close()]);
    await rm(dir, { recursive: true, force: true });
  }

  const baseline = runs.find((r) => r.id === "baseline");
  const baselineEntries = entriesOf.get("baseline");
  for (const r of runs) {
    if (r.wallMs === null) continue;
    if (baseline?.wallMs) r.speedupVsBaseline = baseline.wallMs / r.wallMs;
    const floor = runs.find((x) => x.id === `lower-bound:${r.provider}`);
    if (floor?.wallMs) r.timesLowerBound = r.wallMs / floor.wallMs;
    const own = entriesOf.get(r.id);
    if (baselineEntries && own) {
      const diff = compareEntries(own, baselineEntries);
      r.entriesMatchBaseline = diff.length === 0;
      if (diff.length) log(`[${name}] ${r.id} differs from the baseline zip: ${diff.join("; ")}`);
    }
  }
  const walkRequestBudget = Math.floor((stats.directories + stats.files) / 10) + stats.files;
  const report: FixtureReport = { name, stats, walkRequestBudget, runs, targets: [] };
  report.targets = evaluateTargets(report, options.latencyMs);
  return report;
}

/** Run the whole bench. The caller prints and stores the report. */
export async function runBench(options: BenchOptions): Promise<BenchReport> {
  const log = options.log ?? (() => undefined);
  const startedAt = new Date().toISOString();
  const loadAverageAtStart = loadavg();
  const tmp = await mkdtemp(join(tmpdir(), "layer-sync-bench-"));
  let moto: { endpoint: string; stop: () => Promise<void> } | undefined;
  let s3: S3Client | undefined;
  try {
    let endpoint = options.motoEndpoint;
    if (options.aws && endpoint === undefined) {
      const wanted =
        options.packages !== undefined ||
        (options.fixtures.length > 0 && (options.only ?? RUN_IDS).some((id) => id.startsWith("unchanged:")));
      if (wanted) {
        const { startMoto } = await import("../test/support/moto.global.ts");
        log("starting moto …");
        moto = await startMoto();
        endpoint = moto.endpoint;
      }
    }
    const noConfig = join(tmp, "no-aws-config");
    const env = workerEnv(endpoint, noConfig);
    if (endpoint !== undefined) {
      s3 = new S3Client({
        endpoint,
        region: "eu-west-1",
        forcePathStyle: true,
        credentials: { accessKeyId: "testing", secretAccessKey: "testing" },
      });
    }
    const fixtures: FixtureReport[] = [];
    for (const name of options.fixtures) {
      fixtures.push(await benchFixture(name, options, { tmp, env, s3, log }));
    }
    const packages = options.packages ? await benchPackages(options.packages, { tmp, env, s3, log }) : null;
    const cpu = cpus();
    return {
      version: 1,
      startedAt,
      finishedAt: new Date().toISOString(),
      environment: {
        node: process.version,
        platform: `${process.platform}-${process.arch}`,
        cpus: cpu.length,
        cpuModel: cpu[0]?.model ?? "unknown",
        memoryBytes: totalmem(),
        loadAverageAtStart,
        loadAverageAtEnd: loadavg(),
      },
      options: {
        latencyMs: options.latencyMs,
        runs: options.runs,
        baselineRuns: options.baselineRuns,
        concurrency: options.concurrency ?? null,
        timeoutSeconds: options.timeoutSeconds,
      },
      fixtures,
      packages,
    };
  } finally {
    s3?.destroy();
    await moto?.stop();
    await rm(tmp, { recursive: true, force: true });
  }
}
