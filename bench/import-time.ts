/**
 * The import-time table (issue 21, item 3): how long Python takes to import a layer from a read-only copy,
 * layer-sync's build against the usual recipe, side by side in one run. See docs/performance.md.
 *
 * Two layers with pinned requirements (`IMPORT_LAYERS`): a data layer (numpy + pandas) and a service layer
 * (requests, pydantic, cryptography, PyYAML, Powertools). Each is built two ways:
 *
 * - layer-sync: `layer-sync sync --builder local --out DIR` of a folder holding `requirements.txt` and a
 *   `layer.json` whose `build.runtimes` is the machine's `python3.X`, served by the GitHub emulator; the
 *   zip is layer-sync's own, with whatever its build puts in (today no `.pyc`);
 * - recipe: `python3 -m pip install --target python/ -r requirements.txt` (pip compiles `.pyc` by
 *   default) and `zip -r layer.zip python`.
 *
 * Each zip is extracted with `unzip` (which restores the entries' times, so pip's timestamp-checked `.pyc`
 * stay valid) into its own directory, made read-only (`chmod -R a-w`) like Lambda's `/opt`. Then, per run,
 * a fresh `python3 -s -c` with `PYTHONPATH=<dir>/python` and `PYTHONDONTWRITEBYTECODE=1` times the import
 * statement with `time.perf_counter_ns()` (interpreter start-up not included); the two builds alternate,
 * after one discarded warm-up each. The median over `runs` is reported; the ratio is layer-sync / recipe.
 *
 * Caches (in `.cache/bench/import-time/`, git-ignored): pip's download cache, the recipe's zips (keyed by
 * the requirements, Python and pip versions) and layer-sync's work directory (its uv cache). layer-sync's
 * zip is rebuilt every run so that a change to its build shows at once.
 *
 * The layers and the two builds: `bench/import-time-build.ts`.
 *
 * Alone: `npx tsx bench/import-time.ts [--runs N] [--rebuild] [--no-save]`, or `npm run bench -- --only import-time`.
 */
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { loadavg } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { runCommand } from "../lib/builds/process.ts";
import { startGitHubEmulator } from "../test/emulators/github.ts";
import { FixtureRepo } from "../test/fixtures/repo.ts";
import {
  BUILD_TIMEOUT_MS,
  CA_VARIABLES,
  exists,
  IMPORT_LAYERS,
  type ImportLayer,
  lastLines,
  layerSyncZip,
  PASS_THROUGH,
  pick,
  recipeZip,
  repoRoot,
  run,
} from "./import-time-build.ts";
import {
  evaluateImportTargets,
  type ImportRow,
  type ImportSide,
  type ImportTimeReport,
  importTargetsPass,
  renderImportText,
} from "./import-time-report.ts";
import { readZipEntries } from "./zipinfo.ts";

export const DEFAULT_IMPORT_RUNS = 7;
const IMPORT_TIMEOUT_MS = 60_000;

export interface ImportTimeOptions {
  runs: number;
  /** Caches and scratch (default `.cache/bench/import-time` in the repository). */
  cacheDir?: string | undefined;
  /** Rebuild the recipe's zips even when cached. */
  rebuild?: boolean | undefined;
  /** Only these layers (default all). */
  layers?: string[] | undefined;
  env?: NodeJS.ProcessEnv | undefined;
  log?: ((line: string) => void) | undefined;
}

const median = (values: number[]): number => {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
};

async function countPyc(dir: string): Promise<number> {
  let n = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) if (e.name.endsWith(".pyc")) n++;
  return n;
}

/** Extract into a fresh directory, then take every write permission away (Lambda's `/opt` is read-only). */
async function readOnlyCopy(zip: string, dir: string, env: Record<string, string>): Promise<void> {
  await mkdir(dir, { recursive: true });
  await run("unzip", ["-q", zip, "-d", dir], dir, env, BUILD_TIMEOUT_MS);
  await run("chmod", ["-R", "a-w", dir], dir, env, 60_000);
}

async function removeReadOnly(dir: string, env: Record<string, string>): Promise<void> {
  if (!(await exists(dir))) return;
  await runCommand("chmod", ["-R", "u+w", dir], { cwd: repoRoot, env, timeoutMs: 60_000 });
  await rm(dir, { recursive: true, force: true });
}

/** One fresh interpreter importing the layer: the statement's time in ms, and modules loaded from elsewhere. */
async function importOnce(
  layer: ImportLayer,
  root: string,
  python: string,
  env: Record<string, string>,
): Promise<number> {
  const code = [
    "import sys, time, json",
    "t = time.perf_counter_ns()",
    layer.statement,
    "t = time.perf_counter_ns() - t",
    `root = ${JSON.stringify(`${join(root, "python")}/`)}`,
    `outside = [m for m in ${JSON.stringify(layer.modules)} if not (getattr(sys.modules.get(m), "__file__", None) or "").startswith(root)]`,
    "print(json.dumps({'ns': t, 'outside': outside}))",
  ].join("\n");
  const r = await run(
    python,
    ["-s", "-c", code],
    root,
    { ...env, PYTHONPATH: join(root, "python"), PYTHONDONTWRITEBYTECODE: "1", PYTHONNOUSERSITE: "1" },
    IMPORT_TIMEOUT_MS,
  );
  const result = JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}") as { ns?: number; outside?: string[] };
  if (result.outside?.length) throw new Error(`${result.outside.join(", ")} imported from outside ${root}/python`);
  if (typeof result.ns !== "number") throw new Error(`no time printed: ${lastLines(r.stdout + r.stderr)}`);
  return result.ns / 1e6;
}

async function zipFacts(zip: string): Promise<{ bytes: number; py: number; pyc: number; dists: string[] }> {
  const { size } = await stat(zip);
  const names = (await readZipEntries(zip)).map((e) => e.name);
  const dists = new Set<string>();
  for (const n of names) {
    const m = /^python\/([^/]+\.dist-info)\//.exec(n);
    if (m?.[1]) dists.add(m[1].toLowerCase().replace(/[-_.]+/g, "_"));
  }
  return {
    bytes: size,
    py: names.filter((n) => n.endsWith(".py")).length,
    pyc: names.filter((n) => n.endsWith(".pyc")).length,
    dists: [...dists].sort(),
  };
}

/** Run the import-time table. Needs python3, pip, zip, unzip and the network to PyPI (first run). */
export async function runImportTimeBench(options: ImportTimeOptions): Promise<ImportTimeReport> {
  const startedAt = new Date().toISOString();
  const load = () => Math.round((loadavg()[0] ?? 0) * 100) / 100;
  const loadAtStart = load();
  const log = options.log ?? (() => {});
  const given = options.env ?? process.env;
  const cache = resolve(options.cacheDir ?? join(repoRoot, ".cache", "bench", "import-time"));
  await mkdir(cache, { recursive: true });
  const home = join(cache, "home");
  await mkdir(home, { recursive: true });
  // the interpreter `python3` names for the caller (a pyenv shim needs the caller's HOME to find it)
  const shim = await run(
    "python3",
    ["-c", "import sys; print(sys.executable)"],
    cache,
    pick(given, ["PATH", "HOME", "PYENV_ROOT", "PYENV_VERSION"]),
    30_000,
  );
  const python = shim.stdout.trim();
  const env = { ...pick(given, [...PASS_THROUGH, ...CA_VARIABLES]), HOME: home, LANG: "C.UTF-8" };
  const pythonVersion = (await run(python, ["--version"], cache, env, 30_000)).stdout.trim();
  const minor = /^Python 3\.(\d+)\./.exec(pythonVersion)?.[1];
  if (!minor) throw new Error(`python3 --version printed "${pythonVersion}"; the import-time bench needs CPython 3`);
  const runtime = `python3.${minor}`;
  const pip = (await run(python, ["-m", "pip", "--version"], cache, env, 30_000)).stdout.split(" from ")[0] ?? "";
  const layers = IMPORT_LAYERS.filter((l) => !options.layers || options.layers.includes(l.name));
  log(`[import-time] ${pythonVersion}, layer-sync builds for ${runtime} x86_64; ${options.runs} runs per cell`);

  const repo = new FixtureRepo("bench", "import-time");
  const files: Record<string, { kind: "file"; content: Buffer }> = {};
  for (const l of layers) {
    files[`layers/${l.name}/requirements.txt`] = {
      kind: "file",
      content: Buffer.from(`${l.requirements.join("\n")}\n`),
    };
    files[`layers/${l.name}/layer.json`] = {
      kind: "file",
      content: Buffer.from(JSON.stringify({ build: { runtimes: [runtime], architectures: ["x86_64"] } })),
    };
  }
  repo.commit("main", files, "import-time layers");
  const gh = await startGitHubEmulator({ repos: [repo], publicRepos: true });
  const scratch = await mkdtemp(join(cache, "run-"));
  const rows: ImportRow[] = [];
  try {
    for (const layer of layers) {
      const row: ImportRow = {
        layer: layer.name,
        statement: layer.statement,
        requirements: layer.requirements,
        recipe: null,
        layerSync: null,
        ratio: null,
        sameDistributions: null,
        notes: [],
      };
      rows.push(row);
      const built: { recipe?: { zip: string; buildMs: number | null }; layerSync?: { zip: string; buildMs: number } } =
        {};
      try {
        log(`[import-time] ${layer.name}: pip install --target + zip …`);
        built.recipe = await recipeZip(layer, {
          cache,
          python,
          pythonVersion,
          pip,
          env,
          rebuild: options.rebuild === true,
        });
        log(`[import-time] ${layer.name}: layer-sync sync --builder local --out …`);
        built.layerSync = await layerSyncZip(layer, {
          cache,
          runtime,
          env: given,
          apiUrl: gh.apiUrl,
          out: join(scratch, "out"),
        });
      } catch (error) {
        row.notes.push(`build failed: ${error instanceof Error ? error.message : String(error)}`);
        continue;
      }
      const sides = [
        { id: "recipe" as const, ...built.recipe, dir: join(scratch, `${layer.name}-recipe`) },
        { id: "layerSync" as const, ...built.layerSync, dir: join(scratch, `${layer.name}-layer-sync`) },
      ];
      try {
        const facts = await Promise.all(sides.map((s) => zipFacts(s.zip)));
        row.sameDistributions = JSON.stringify(facts[0]?.dists) === JSON.stringify(facts[1]?.dists);
        if (!row.sameDistributions) {
          row.notes.push(`the zips hold different distributions: ${facts.map((f) => f.dists.join(" ")).join(" vs ")}`);
        }
        for (const s of sides) await readOnlyCopy(s.zip, s.dir, env);
        log(`[import-time] ${layer.name}: timing ${options.runs} + 1 imports of each build …`);
        const before = await Promise.all(sides.map((s) => countPyc(s.dir)));
        const times: number[][] = [[], []];
        // one discarded warm-up each, then alternate so load on the machine hits both alike
        for (let i = 0; i <= options.runs; i++) {
          for (const [j, s] of sides.entries()) {
            const t = await importOnce(layer, s.dir, python, env);
            if (i > 0) times[j]?.push(t);
          }
        }
        const after = await Promise.all(sides.map((s) => countPyc(s.dir)));
        if (JSON.stringify(before) !== JSON.stringify(after)) {
          row.notes.push(`.pyc files were written during the runs (${before.join("/")} → ${after.join("/")})`);
        }
        for (const [j, s] of sides.entries()) {
          const f = facts[j];
          const all = (times[j] ?? []).map((t) => Math.round(t * 10) / 10);
          const side: ImportSide = {
            zipBytes: f?.bytes ?? 0,
            pyFiles: f?.py ?? 0,
            pycFiles: f?.pyc ?? 0,
            medianMs: median(all),
            allMs: all,
            buildMs: s.buildMs === null || s.buildMs === undefined ? null : Math.round(s.buildMs),
          };
          row[s.id] = side;
        }
        if (row.recipe && row.layerSync && row.recipe.medianMs > 0) {
          row.ratio = Math.round((row.layerSync.medianMs / row.recipe.medianMs) * 100) / 100;
        }
        log(
          `[import-time] ${layer.name}: recipe ${row.recipe?.medianMs} ms, layer-sync ${row.layerSync?.medianMs} ms, ratio ${row.ratio}`,
        );
      } catch (error) {
        row.notes.push(`measuring failed: ${error instanceof Error ? error.message : String(error)}`);
      } finally {
        for (const s of sides) await removeReadOnly(s.dir, env);
      }
    }
  } finally {
    await gh.close();
    await removeReadOnly(scratch, env);
  }
  return {
    version: 1,
    startedAt,
    finishedAt: new Date().toISOString(),
    python: pythonVersion,
    runtime,
    runs: options.runs,
    loadAverage: [loadAtStart, load()],
    rows,
    targets: evaluateImportTargets(rows),
  };
}

/** Write `import-time.json` (the latest run) into the results directory. */
export async function saveImportTime(report: ImportTimeReport, dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = join(dir, "import-time.json");
  await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
  return file;
}

async function standalone(): Promise<number> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      runs: { type: "string" },
      layers: { type: "string" },
      rebuild: { type: "boolean" },
      results: { type: "string" },
      "no-save": { type: "boolean" },
      strict: { type: "boolean" },
    },
    strict: true,
  });
  const runs = values.runs === undefined ? DEFAULT_IMPORT_RUNS : Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a whole number ≥ 1 (got "${values.runs}")`);
  const report = await runImportTimeBench({
    runs,
    rebuild: values.rebuild,
    layers: values.layers?.split(",").map((s) => s.trim()),
    log: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(`\n${renderImportText(report)}`);
  if (values["no-save"] !== true) {
    const file = await saveImportTime(report, resolve(values.results ?? join(repoRoot, "bench", "results")));
    process.stderr.write(`results written to ${file}\n`);
  }
  return values.strict && !importTargetsPass(report) ? 1 : 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  standalone().then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(
        `import-time: ${error instanceof Error ? error.message : String(error)}\nusage: npx tsx bench/import-time.ts [--runs N] [--layers data,service] [--rebuild] [--results DIR] [--no-save] [--strict]\n`,
      );
      process.exitCode = 2;
    },
  );
}
