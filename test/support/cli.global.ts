/**
 * Vitest global setup: makes sure the bundled CLI (`dist/layer-sync.mjs` and `dist/cli.mjs`, the package's
 * `bin`) is there and no older than the sources it is built from, so tests that spawn the command run what
 * `npx layer-sync` runs. A fresh bundle is left alone (the build takes about a second; most runs skip it).
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { buildCli, CLI_BIN, CLI_BUNDLE, REPO_ROOT } from "../../scripts/build-cli.ts";

/** Folders and files whose change can change the bundle. */
const SOURCES = ["lib", "cli", "handlers", "scripts", "package-lock.json"];

function newestMtime(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const name of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, name)));
  return newest;
}

/** The bundle is missing, or a source changed after it was built. */
export function cliBundleIsStale(): boolean {
  if (!existsSync(CLI_BUNDLE) || !existsSync(CLI_BIN)) return true;
  const built = Math.min(statSync(CLI_BUNDLE).mtimeMs, statSync(CLI_BIN).mtimeMs);
  return SOURCES.some((s) => {
    const path = join(REPO_ROOT, s);
    return existsSync(path) && newestMtime(path) > built;
  });
}

export default async function setup(): Promise<void> {
  if (cliBundleIsStale()) await buildCli();
}
