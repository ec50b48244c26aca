/**
 * One description of how the handlers are bundled, used by NodejsFunction (`cdk deploy`) and by the
 * CfCT build script (infra/synth.ts), so both routes ship the same code.
 */
import { fileURLToPath } from "node:url";
import { type BundlingOptions, OutputFormat } from "aws-cdk-lib/aws-lambda-nodejs";
import { WORKER_BUNDLES, workerBundleArguments } from "./workers.ts";

export { WORKER_BUNDLES } from "./workers.ts";

/** The repository root (the folder holding package.json and package-lock.json). */
export const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The handlers, each an ESM module exporting `handler` (build: the build-finished function). */
export const HANDLER_ENTRIES = {
  sync: fileURLToPath(new URL("../handlers/sync.ts", import.meta.url)),
  publish: fileURLToPath(new URL("../handlers/publish.ts", import.meta.url)),
  build: fileURLToPath(new URL("../handlers/build.ts", import.meta.url)),
} as const;

export type FunctionName = keyof typeof HANDLER_ENTRIES;

/** esbuild's target for the nodejs24.x runtime. */
export const ESBUILD_TARGET = "node24";

/**
 * ESM bundles have no `require`; CommonJS dependencies that call it (for Node built-ins) need one.
 * The alias keeps the banner's import from clashing with names in the bundle.
 */
export const CREATE_REQUIRE_BANNER =
  'import { createRequire as __layerSyncCreateRequire } from "node:module"; const require = __layerSyncCreateRequire(import.meta.url);';

/** Prefer packages' ESM builds (better tree shaking for the AWS SDK), fall back to CommonJS. */
export const MAIN_FIELDS = ["module", "main"];

/** NodejsFunction bundling: ESM, node24, minified, with a source map and our own AWS SDK. */
export function nodejsBundling(): BundlingOptions {
  return {
    format: OutputFormat.ESM,
    target: ESBUILD_TARGET,
    minify: true,
    sourceMap: true,
    sourcesContent: false,
    mainFields: MAIN_FIELDS,
    banner: CREATE_REQUIRE_BANNER,
    // Bundle the AWS SDK instead of using the runtime's copy: its version varies by Region and rollout,
    // and the handlers need @aws-sdk/client-ram and @aws-sdk/client-codebuild at known versions.
    externalModules: [],
    bundleAwsSDK: true,
    // the deflate worker is its own module: bundled beside index.mjs, where the pool looks for it
    commandHooks: {
      beforeBundling: () => [],
      beforeInstall: () => [],
      afterBundling: (inputDir: string, outputDir: string) =>
        WORKER_BUNDLES.map((w) =>
          [
            "npx",
            "--no-install",
            "esbuild",
            ...workerBundleArguments(`${inputDir}/${w.source}`, `${outputDir}/${w.file}`),
          ]
            .map((a) => JSON.stringify(a))
            .join(" "),
        ),
    },
  };
}
