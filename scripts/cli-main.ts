/**
 * The `layer-sync` program: the one module that names the CLI's entry (`cli/main.ts` `main`) and runs it
 * with the process's arguments, environment and streams (lib/ never reads process.env itself).
 * `scripts/build-cli.ts` bundles this file into `dist/layer-sync.mjs` (the package's `bin`);
 * `scripts/layer-sync.mjs` runs it from source through tsx. When the CLI moves, change the import below.
 */
import { main } from "../cli/main.ts";

process.exitCode = await main(process.argv.slice(2), process.env, {
  stdout: process.stdout,
  stderr: process.stderr,
  process,
});
