/**
 * Worker-thread modules that every bundle ships as files of their own: beside the handler's `index.mjs`, and
 * in the CLI bundle's folder (the code that starts a worker looks for it there). No CDK import here: the
 * CLI's build script reads this too. Repository-relative source → file name in the bundle.
 */
export const WORKER_BUNDLES = [{ source: "lib/zip/deflate-worker.ts", file: "deflate-worker.mjs" }] as const;

/** The esbuild command line (after `esbuild`) that bundles one worker module as its own ESM file. */
export function workerBundleArguments(source: string, outfile: string): string[] {
  return [source, "--bundle", "--platform=node", "--format=esm", "--target=node24", "--minify", `--outfile=${outfile}`];
}
