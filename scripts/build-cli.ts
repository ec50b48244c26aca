/**
 * `npm run build:cli`: bundle the CLI into ESM that plain Node runs (no tsx, no node_modules at run time):
 * `dist/bundle/cli.mjs`, the entry, and `dist/bundle/chunks/`, one chunk per group of modules the CLI
 * imports on demand (esbuild code splitting). `--version`, `help` and usage errors therefore parse only the
 * entry's few KB, and a command only what it needs (the AWS SDK only for commands that call AWS). It also
 * writes the package's `bin`, `dist/layer-sync.mjs`: a few lines that turn on Node's on-disk compile cache
 * (Node ≥ 22.1; `NODE_DISABLE_COMPILE_CACHE=1` turns it off) and import the entry, so later starts skip
 * compiling. npm runs this as `prepare`, so both exist after `npm ci` in a fresh clone and in every
 * `npm pack` tarball.
 *
 * The bundle is built into a temporary folder that replaces `dist/bundle/` by rename, and the bin is written
 * to a temporary name and renamed, so a reader never sees a half-written bundle or a mix of two builds.
 */
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type BuildOptions, build } from "esbuild";
import { WORKER_BUNDLES } from "../infra/workers.ts";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
/** The module the bundle starts from: the only place to change when the CLI moves. */
export const CLI_ENTRY = join(REPO_ROOT, "scripts", "cli-main.ts");
/** The bundle's folder: the entry and its chunks. */
export const CLI_BUNDLE_DIR = join(REPO_ROOT, "dist", "bundle");
/** The bundle's entry. */
export const CLI_BUNDLE = join(CLI_BUNDLE_DIR, "cli.mjs");
/** The package's `bin` (package.json), which imports the bundle next to it. */
export const CLI_BIN = join(REPO_ROOT, "dist", "layer-sync.mjs");
/** The oldest Node the package supports (package.json `engines`). */
export const CLI_TARGET = "node20.19";

/**
 * ESM bundles have no `require`; CommonJS dependencies that call it (for Node built-ins) need one. The
 * alias keeps the banner's import from clashing with names in the bundle.
 */
const BANNER = [
  'import { createRequire as __layerSyncCreateRequire } from "node:module";',
  "const require = __layerSyncCreateRequire(import.meta.url);",
].join("\n");

const LAUNCHER = `#!/usr/bin/env node
// layer-sync's command (built by scripts/build-cli.ts): cache the bundle's compiled code, then run it.
import module from "node:module";

module.enableCompileCache?.();
await import("./${basename(CLI_BUNDLE_DIR)}/${basename(CLI_BUNDLE)}");
`;

/**
 * esbuild's options for plain-Node ESM of `entries` (name → source) into `outdir`: the deflate worker as an
 * entry of its own beside them (the pool, in an entry or a chunk, looks for it there), chunks for what is
 * imported on demand, and `require` for CommonJS dependencies. The CLI and the bench's worker use it.
 */
export function nodeBundleOptions(entries: Record<string, string>, outdir: string): BuildOptions {
  return {
    entryPoints: {
      ...entries,
      ...Object.fromEntries(WORKER_BUNDLES.map((w) => [basename(w.file, ".mjs"), join(REPO_ROOT, w.source)])),
    },
    outdir,
    outExtension: { ".js": ".mjs" },
    chunkNames: "chunks/[name]-[hash]",
    splitting: true,
    bundle: true,
    platform: "node",
    format: "esm",
    target: CLI_TARGET,
    // prefer packages' ESM builds (better tree shaking for the AWS SDK), fall back to CommonJS
    mainFields: ["module", "main"],
    banner: { js: BANNER },
    logLevel: "warning",
    absWorkingDir: REPO_ROOT,
  };
}

async function writeAtomically(file: string, text: string): Promise<void> {
  const temp = `${file}.${process.pid}.tmp`;
  await writeFile(temp, text, { mode: 0o755 });
  await rename(temp, file);
}

/**
 * Build the bundle (entry and chunks) into `bundleDir` and the bin beside it; returns the source files the
 * bundle holds (repository-relative).
 */
export async function buildCli(bundleDir = CLI_BUNDLE_DIR): Promise<string[]> {
  const parent = dirname(bundleDir);
  await mkdir(parent, { recursive: true });
  const temp = `${bundleDir}.${process.pid}.tmp`;
  const old = `${bundleDir}.${process.pid}.old`;
  try {
    await rm(temp, { recursive: true, force: true });
    const result = await build({
      ...nodeBundleOptions({ [basename(CLI_BUNDLE, ".mjs")]: CLI_ENTRY }, temp),
      minify: true,
      legalComments: "eof",
      metafile: true,
    });
    // swap the whole folder: the old entry never meets the new chunks
    await rm(old, { recursive: true, force: true });
    await rename(bundleDir, old).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== "ENOENT") throw error;
    });
    await rename(temp, bundleDir);
    await rm(old, { recursive: true, force: true });
    await writeAtomically(join(parent, basename(CLI_BIN)), LAUNCHER);
    // the single-file bundle of earlier builds is no longer what the bin runs
    await rm(join(parent, "cli.mjs"), { force: true });
    return Object.keys(result.metafile.inputs);
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    throw error;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const t0 = performance.now();
  const inputs = await buildCli();
  process.stderr.write(
    `built ${relative(REPO_ROOT, CLI_BIN)} and ${relative(REPO_ROOT, CLI_BUNDLE)} from ${inputs.length} modules in ${Math.round(performance.now() - t0)} ms\n`,
  );
}
