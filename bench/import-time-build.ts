/**
 * The two layers of the import-time table and the two ways it builds them (`bench/import-time.ts`): the
 * usual recipe (`pip install --target python/` and `zip -r`, cached) and layer-sync's CLI
 * (`sync --builder local --out`, from the GitHub emulator).
 */
import { createHash } from "node:crypto";
import { access, mkdir, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { runCommand } from "../lib/builds/process.ts";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");
/** Bumped when the recipe's commands change, so cached recipe zips are rebuilt. */
const RECIPE_VERSION = 1;
export const BUILD_TIMEOUT_MS = 15 * 60_000;

export interface ImportLayer {
  name: string;
  /** The statement timed; `modules` must be imported from the layer, not from anywhere else. */
  statement: string;
  modules: string[];
  /** Every distribution pinned (the transitive ones too), so both builds install the same set. */
  requirements: string[];
}

/** Pinned to versions with manylinux x86_64 wheels for CPython 3.10–3.13 (resolved by pip, December 2026). */
export const IMPORT_LAYERS: readonly ImportLayer[] = [
  {
    name: "data",
    statement: "import numpy, pandas",
    modules: ["numpy", "pandas"],
    requirements: ["numpy==2.2.6", "pandas==2.3.2", "python-dateutil==4.0.0", "pytz==2026.6", "tzdata==2026.6"],
  },
  {
    name: "service",
    statement:
      "import requests, pydantic, yaml, cryptography.fernet; from aws_lambda_powertools import Logger, Metrics, Tracer",
    modules: ["requests", "pydantic", "yaml", "cryptography.fernet", "aws_lambda_powertools"],
    requirements: [
      "requests==2.34.2",
      "pydantic==2.14.4",
      "cryptography==51.0.1",
      "PyYAML==6.0.4",
      "aws-lambda-powertools==3.37.0",
      "annotated-types==0.8.0",
      "certifi==2026.10.19.post1",
      "cffi==2.1.1",
      "charset-normalizer==3.5.3",
      "idna==3.21",
      "jmespath==1.1.0",
      "pycparser==3.12",
      "pydantic-core==2.50.5",
      "typing-extensions==4.16.0",
      "typing-inspection==0.4.5",
      "urllib3==2.8.0",
    ],
  },
];

export const PASS_THROUGH = ["PATH", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"];
export const CA_VARIABLES = ["SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "PIP_CERT", "NODE_EXTRA_CA_CERTS"];

export function pick(env: NodeJS.ProcessEnv, names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of names) {
    const v = env[n];
    if (v !== undefined && v !== "") out[n] = v;
  }
  return out;
}

export function lastLines(text: string, n = 3): string {
  return text.trim().split("\n").slice(-n).join(" | ").slice(0, 600);
}

export async function run(
  command: string,
  args: string[],
  cwd: string,
  env: Record<string, string>,
  timeoutMs: number,
) {
  const r = await runCommand(command, args, { cwd, env, timeoutMs });
  if (r.code !== 0)
    throw new Error(`${command} ${args.slice(0, 3).join(" ")} … exited ${r.code}: ${lastLines(r.stderr || r.stdout)}`);
  return r;
}

/** The recipe: `pip install --target python/` then `zip -r`; the zip is cached by what decides its content. */
export async function recipeZip(
  layer: ImportLayer,
  ctx: {
    cache: string;
    python: string;
    pythonVersion: string;
    pip: string;
    env: Record<string, string>;
    rebuild: boolean;
  },
): Promise<{ zip: string; buildMs: number | null }> {
  const key = createHash("sha256")
    .update(
      JSON.stringify({ requirements: layer.requirements, python: ctx.pythonVersion, pip: ctx.pip, RECIPE_VERSION }),
    )
    .digest("hex")
    .slice(0, 16);
  const zip = join(ctx.cache, "recipe", `${layer.name}-${key}.zip`);
  if (!ctx.rebuild && (await exists(zip))) return { zip, buildMs: null };
  await mkdir(dirname(zip), { recursive: true });
  const work = await mkdtemp(join(ctx.cache, "recipe-build-"));
  try {
    const t0 = performance.now();
    await writeFile(join(work, "requirements.txt"), `${layer.requirements.join("\n")}\n`);
    // no user or site pip configuration: the plain recipe against PyPI
    const pipEnv = { ...ctx.env, PIP_CONFIG_FILE: "/dev/null", PIP_DISABLE_PIP_VERSION_CHECK: "1" };
    await run(
      ctx.python,
      [
        ...["-m", "pip", "install", "--no-input", "--no-warn-script-location", "--cache-dir", join(ctx.cache, "pip")],
        ...["--target", "python", "-r", "requirements.txt"],
      ],
      work,
      pipEnv,
      BUILD_TIMEOUT_MS,
    );
    await run("zip", ["-r", "-q", "layer.zip", "python"], work, ctx.env, BUILD_TIMEOUT_MS);
    const buildMs = performance.now() - t0;
    await rename(join(work, "layer.zip"), zip);
    return { zip, buildMs };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** layer-sync: `sync --builder local --out` of a folder with the requirements, from the GitHub emulator. */
export async function layerSyncZip(
  layer: ImportLayer,
  ctx: { cache: string; runtime: string; env: NodeJS.ProcessEnv; apiUrl: string; out: string },
): Promise<{ zip: string; buildMs: number }> {
  const { main } = await import("../cli/main.ts");
  const out: string[] = [];
  const err: string[] = [];
  const t0 = performance.now();
  const code = await main(
    [
      "sync",
      "--provider",
      "github",
      "--repository",
      "bench/import-time",
      "--api-url",
      ctx.apiUrl,
      "--path",
      `layers/${layer.name}`,
      "--builder",
      "local",
      "--work-dir",
      join(ctx.cache, "layer-sync-work"),
      "--out",
      ctx.out,
      "--json",
    ],
    {
      ...pick(ctx.env, [...PASS_THROUGH, ...CA_VARIABLES, "HOME"]),
      // layer-sync's tool cache (the pinned uv, uv's interpreters) where the tests keep it
      XDG_CACHE_HOME: join(repoRoot, ".cache"),
    },
    { stdout: { write: (t: string) => out.push(t) }, stderr: { write: (t: string) => err.push(t), isTTY: false } },
  );
  const buildMs = performance.now() - t0;
  const text = out.join("");
  let summary: { packages?: { key?: string | null; error?: string }[] } = {};
  try {
    summary = JSON.parse(text) as typeof summary;
  } catch {
    // reported below
  }
  const [pkg] = summary.packages ?? [];
  if (code !== 0 || !pkg?.key) {
    throw new Error(`layer-sync sync exited ${code}: ${pkg?.error ?? lastLines(err.join("") || text)}`);
  }
  return { zip: join(ctx.out, ...pkg.key.split("/")), buildMs };
}

export async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}
