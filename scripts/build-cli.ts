/**
 * `npm run build:cli`: bundle the CLI into one ESM file, `dist/cli.mjs`, that plain Node runs (no tsx, no
 * node_modules at run time), and write the package's `bin`, `dist/layer-sync.mjs`: a few lines that turn on
 * Node's on-disk compile cache (Node ≥ 22.1; `NODE_DISABLE_COMPILE_CACHE=1` turns it off) and import the
 * bundle, so later starts skip compiling its 1.7 MB. npm runs this as `prepare`, so both exist after
 * `npm ci` in a fresh clone and in every `npm pack` tarball.
 *
 * Each file is written to a temporary name and renamed, so a reader never sees a half-written one.
 */
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
/** The module the bundle starts from: the only place to change when the CLI moves. */
export const CLI_ENTRY = join(REPO_ROOT, "scripts", "cli-main.ts");
/** The bundle. */
export const CLI_BUNDLE = join(REPO_ROOT, "dist", "cli.mjs");
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
await import("./${basename(CLI_BUNDLE)}");
`;

async function writeAtomically(file: string, text: string): Promise<void> {
  const temp = `${file}.${process.pid}.tmp`;
  await writeFile(temp, text, { mode: 0o755 });
  await rename(temp, file);
}

/** Build the bundle and the bin; returns the source files the bundle holds (repository-relative). */
export async function buildCli(outFile = CLI_BUNDLE): Promise<string[]> {
  await mkdir(dirname(outFile), { recursive: true });
  const temp = `${outFile}.${process.pid}.tmp`;
  try {
    const result = await build({
      entryPoints: [CLI_ENTRY],
      outfile: temp,
      bundle: true,
      platform: "node",
      format: "esm",
      target: CLI_TARGET,
      // prefer packages' ESM builds (better tree shaking for the AWS SDK), fall back to CommonJS
      mainFields: ["module", "main"],
      minify: true,
      legalComments: "eof",
      banner: { js: BANNER },
      metafile: true,
      logLevel: "warning",
      absWorkingDir: REPO_ROOT,
    });
    await rename(temp, outFile);
    await writeAtomically(join(dirname(outFile), basename(CLI_BIN)), LAUNCHER);
    return Object.keys(result.metafile.inputs);
  } catch (error) {
    await rm(temp, { force: true });
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
