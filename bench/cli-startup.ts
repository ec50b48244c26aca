/**
 * `npm run bench:cli [-- --runs 20] [--node PATH]...`: how long `layer-sync --version` takes from an
 * installed tarball. Packs the repository (`npm pack`, which builds the bundle), installs the tarball with
 * `npm i -g` into a temporary prefix, and runs `<prefix>/bin/layer-sync --version` from another directory,
 * timing each process from spawn to exit. Target: at most 0.2 s wall (median and 90th percentile).
 *
 * Each Node is measured twice: `warm` with Node's compile cache in place (every start after the first, the
 * usual case), and `cold` with the cache turned off (the first start; always the case on Node < 22.1).
 * Exit code 0 even when the target is missed, unless `--strict`.
 */
import { execFile, spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs, promisify } from "node:util";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");

const exec = promisify(execFile);
const TARGET_MS = 200;

function runOnce(node: string, bin: string, cwd: string, env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolveRun, reject) => {
    const t0 = performance.now();
    const child = spawn(node, [bin, "--version"], { cwd, env, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.on("error", reject);
    child.on("exit", (code) => {
      const ms = performance.now() - t0;
      if (code !== 0 || !out.startsWith("layer-sync ")) reject(new Error(`--version exited ${code}: ${out}`));
      else resolveRun(ms);
    });
  });
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? Number.NaN;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      runs: { type: "string", default: "20" },
      node: { type: "string", multiple: true },
      strict: { type: "boolean" },
    },
  });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a whole number ≥ 1 (got "${values.runs}")`);
  const nodes = (values.node ?? [process.execPath]).map((n) => resolve(n));
  const scratch = await mkdtemp(join(tmpdir(), "layer-sync-cli-startup-"));
  let pass = true;
  try {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith("npm_")));
    process.stderr.write("npm pack (builds the bundle) …\n");
    const { stdout } = await exec("npm", ["pack", "--json", "--pack-destination", scratch], {
      cwd: repoRoot,
      env,
      maxBuffer: 16 * 1024 * 1024,
    });
    const [packed] = JSON.parse(stdout.slice(stdout.indexOf("["))) as { filename: string; size: number }[];
    if (!packed) throw new Error("npm pack printed no package");
    const prefix = join(scratch, "prefix");
    await exec(
      "npm",
      ["i", "-g", "--prefix", prefix, "--offline", "--no-audit", "--no-fund", join(scratch, packed.filename)],
      {
        cwd: scratch,
        env,
      },
    );
    const bin = join(prefix, "bin", "layer-sync");
    const version = JSON.parse(await readFile(join(repoRoot, "package.json"), "utf8")).version as string;
    process.stdout.write(
      `layer-sync ${version} from ${packed.filename} (${Math.round(packed.size / 1024)} KiB), ${runs} runs each, target ≤ ${TARGET_MS} ms\n`,
    );
    for (const node of nodes) {
      const { stdout: nodeVersion } = await exec(node, ["--version"]);
      const { stdout: hasCache } = await exec(node, ["-p", "typeof require('node:module').enableCompileCache"]);
      const modes = hasCache.trim() === "function" ? (["warm", "cold"] as const) : (["cold"] as const);
      if (modes.length === 1) process.stdout.write(`  node ${nodeVersion.trim()} has no compile cache (Node < 22.1)\n`);
      for (const mode of modes) {
        const runEnv: NodeJS.ProcessEnv = { ...env, NODE_COMPILE_CACHE: join(scratch, "compile-cache") };
        if (mode === "cold") runEnv.NODE_DISABLE_COMPILE_CACHE = "1";
        else await runOnce(node, bin, scratch, runEnv); // fills the cache
        const times: number[] = [];
        for (let i = 0; i < runs; i++) times.push(await runOnce(node, bin, scratch, runEnv));
        times.sort((a, b) => a - b);
        const median = quantile(times, 0.5);
        const p90 = quantile(times, 0.9);
        const ok = median <= TARGET_MS && p90 <= TARGET_MS;
        pass &&= ok;
        process.stdout.write(
          `  node ${nodeVersion.trim()} ${mode}: median ${Math.round(median)} ms, p90 ${Math.round(p90)} ms, min ${Math.round(times[0] ?? 0)} ms, max ${Math.round(times.at(-1) ?? 0)} ms  ${ok ? "PASS" : "FAIL"}\n`,
        );
      }
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  return values.strict && !pass ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`bench:cli: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 2;
  },
);
