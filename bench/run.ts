/**
 * `npm run bench [-- flags]`: measure layer-sync against the seed algorithm and the physical floor on
 * deterministic fixtures served by the project's emulators. See docs/performance.md.
 *
 * Exit code 0 even when a target is missed (benchmarks are not tests), unless `--strict`.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { FIXTURE_NAMES, type FixtureName } from "./fixtures.ts";
import { type BenchOptions, RUN_IDS, repoRoot, runBench } from "./harness.ts";
import { DEFAULT_IMPORT_RUNS, runImportTimeBench, saveImportTime } from "./import-time.ts";
import { importTargetsPass, renderImportText } from "./import-time-report.ts";
import { DEFAULT_PACKAGE_COUNTS } from "./packages.ts";
import { type PublishBenchReport, renderPublishText, runPublishBench } from "./publish-regions.ts";
import { allTargetsPass, renderMarkdown, renderText } from "./report.ts";

const USAGE = `usage: npm run bench -- [flags]
  --fixture NAME      tiny | medium | large | all, or a comma list (default medium)
  --latency MS        latency the emulators add to every request (default 50; env BENCH_LATENCY_MS)
  --runs N            measured runs per row, median reported (default 3; env BENCH_RUNS)
  --baseline-runs N   runs of the (slow) baseline (default 1)
  --baseline MODE     run | skip | auto: skip it when estimated over --baseline-budget (default auto)
  --baseline-budget S seconds the baseline may take per fixture in auto mode (default 600)
  --concurrency N     SOURCE_CONCURRENCY for layer-sync (default: layer-sync's default, 8)
  --timeout S         per-run timeout in seconds (default 900)
  --only IDS          comma list of runs: ${RUN_IDS.join(", ")}, publish, packages, import-time
                      (publish: 1 and 4 Regions; packages: the 1/10/50-package table; import-time: the
                      import-time table; naming only these skips the rest)
  --no-packages       skip the packages table
  --package-counts L  package counts of the packages table (default ${DEFAULT_PACKAGE_COUNTS.join(",")})
  --quick             the packages table on a fixture a tenth the size (about 30 MB instead of 300 MB)
  --no-import-time    skip the import-time table (it needs python3, pip, zip, unzip and PyPI)
  --import-runs N     fresh interpreters per import-time cell, median reported (default ${DEFAULT_IMPORT_RUNS})
  --no-aws            skip the unchanged and publish runs (they need moto)
  --no-publish        skip publishing to 1 and 4 Regions
  --results DIR       where to write latest.json, latest.md, import-time.json and a timestamped JSON
                      (default bench/results)
  --no-save           print only
  --strict            exit 1 when a target is missed`;

function positiveInt(name: string, raw: string | undefined, fallback: number, min = 0): number {
  if (raw === undefined || raw === "") return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min)
    throw new Error(`--${name} must be a whole number ≥ ${min} (got "${raw}")`);
  return Number(raw);
}

function fixturesOf(raw: string[] | undefined): FixtureName[] {
  const names = (raw ?? ["medium"]).flatMap((v) => v.split(",")).map((v) => v.trim());
  if (names.includes("all")) return [...FIXTURE_NAMES];
  const bad = names.filter((n) => !(FIXTURE_NAMES as readonly string[]).includes(n));
  if (bad.length) throw new Error(`unknown fixture ${bad.join(", ")}; use ${FIXTURE_NAMES.join(", ")} or all`);
  return [...new Set(names)] as FixtureName[];
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      fixture: { type: "string", multiple: true },
      latency: { type: "string" },
      runs: { type: "string" },
      "baseline-runs": { type: "string" },
      baseline: { type: "string" },
      "baseline-budget": { type: "string" },
      concurrency: { type: "string" },
      timeout: { type: "string" },
      only: { type: "string" },
      "no-packages": { type: "boolean" },
      "package-counts": { type: "string" },
      quick: { type: "boolean" },
      "no-import-time": { type: "boolean" },
      "import-runs": { type: "string" },
      "no-aws": { type: "boolean" },
      "no-publish": { type: "boolean" },
      results: { type: "string" },
      "no-save": { type: "boolean" },
      strict: { type: "boolean" },
      help: { type: "boolean" },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const baseline = values.baseline ?? "auto";
  if (baseline !== "run" && baseline !== "skip" && baseline !== "auto") {
    throw new Error(`--baseline must be run, skip or auto (got "${baseline}")`);
  }
  const only = values.only?.split(",").map((s) => s.trim());
  const extra = ["packages", "publish", "import-time"];
  const unknown = only?.filter((id) => !extra.includes(id) && !RUN_IDS.includes(id)) ?? [];
  if (unknown.length)
    throw new Error(`unknown run ${unknown.join(", ")}; use ${RUN_IDS.join(", ")}, publish, packages or import-time`);
  const importWanted = values["no-import-time"] !== true && (!only || only.includes("import-time"));
  const importRuns = positiveInt("import-runs", values["import-runs"], DEFAULT_IMPORT_RUNS, 1);
  const publishWanted =
    values["no-aws"] !== true && values["no-publish"] !== true && (!only || only.includes("publish"));
  const fixtureRuns = only?.filter((id) => !extra.includes(id));
  const runFixtures = fixtureRuns === undefined || fixtureRuns.length > 0;
  const runPackages = values["no-packages"] !== true && (only === undefined || only.includes("packages"));
  const counts = (values["package-counts"] ?? DEFAULT_PACKAGE_COUNTS.join(","))
    .split(",")
    .map((c) => positiveInt("package-counts", c.trim(), 1, 1));
  const timeoutSeconds = positiveInt("timeout", values.timeout, 900, 1);
  const latencyMs = positiveInt("latency", values.latency ?? process.env.BENCH_LATENCY_MS, 50);
  const concurrency =
    values.concurrency === undefined ? undefined : positiveInt("concurrency", values.concurrency, 8, 1);
  const options: BenchOptions = {
    fixtures: runFixtures ? fixturesOf(values.fixture) : [],
    latencyMs,
    runs: positiveInt("runs", values.runs ?? process.env.BENCH_RUNS, 3, 1),
    baselineRuns: positiveInt("baseline-runs", values["baseline-runs"], 1),
    concurrency,
    timeoutSeconds,
    baseline,
    baselineBudgetSeconds: positiveInt("baseline-budget", values["baseline-budget"], 600),
    aws: values["no-aws"] !== true,
    only: fixtureRuns,
    packages: runPackages
      ? {
          counts: [...new Set(counts)].sort((a, b) => a - b),
          scale: values.quick ? 0.1 : 1,
          latencyMs,
          timeoutSeconds,
          concurrency,
        }
      : undefined,
    log: (line) => process.stderr.write(`${line}\n`),
  };
  const publish = publishWanted ? await publishBench(options.runs, options.latencyMs, options.log) : undefined;
  if (publish) process.stdout.write(`\n${renderPublishText(publish)}`);
  if (publish && values["no-save"] !== true) {
    const dir = resolve(values.results ?? join(repoRoot, "bench", "results"));
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "publish-regions.json"), `${JSON.stringify(publish, null, 2)}\n`);
  }
  const publishPass = publish?.targets.every((t) => t.pass) ?? true;
  const imports = importWanted ? await runImportTimeBench({ runs: importRuns, log: options.log }) : undefined;
  if (imports) process.stdout.write(`\n${renderImportText(imports)}`);
  if (imports && values["no-save"] !== true) {
    await saveImportTime(imports, resolve(values.results ?? join(repoRoot, "bench", "results")));
  }
  const importPass = imports ? importTargetsPass(imports) : true;
  if (!runFixtures && !runPackages) return values.strict && !(publishPass && importPass) ? 1 : 0;
  const report = await runBench(options);
  process.stdout.write(`\n${renderText(report)}\n`);
  if (values["no-save"] !== true) {
    const dir = resolve(values.results ?? join(repoRoot, "bench", "results"));
    await mkdir(dir, { recursive: true });
    const json = `${JSON.stringify(report, null, 2)}\n`;
    const stamp = report.finishedAt.replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
    await writeFile(join(dir, "latest.json"), json);
    await writeFile(join(dir, `${stamp}.json`), json);
    await writeFile(join(dir, "latest.md"), `${renderMarkdown(report)}\n`);
    process.stderr.write(`results written to ${dir}/latest.json, latest.md and ${stamp}.json\n`);
  }
  const pass = allTargetsPass(report) && publishPass && importPass;
  if (!pass) process.stderr.write("some targets were missed (see FAIL above)\n");
  return values.strict && !pass ? 1 : 0;
}

/** Publishing to 1 and 4 Regions on a moto server of its own. */
async function publishBench(
  runs: number,
  latencyMs: number,
  log: ((line: string) => void) | undefined,
): Promise<PublishBenchReport> {
  const { startMoto } = await import("../test/support/moto.global.ts");
  log?.("starting moto for the publish runs …");
  const moto = await startMoto();
  try {
    return await runPublishBench({ endpoint: moto.endpoint, runs, latencyMs, log });
  } finally {
    await moto.stop();
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n${USAGE}\n`);
    process.exitCode = 2;
  },
);
