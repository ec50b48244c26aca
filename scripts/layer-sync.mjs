#!/usr/bin/env node
// Entry point of the `layer-sync` command: loads the TypeScript CLI through tsx and passes it the
// process environment (lib/ never reads process.env itself).
import { register } from "tsx/esm/api";

register();
const { main } = await import("../lib/cli.ts");
process.exitCode = await main(process.argv.slice(2), process.env, {
  stdout: process.stdout,
  stderr: process.stderr,
  process,
});
