/**
 * `npm run synth`: the CfCT route.
 *
 * 1. Synthesises LayerSyncStack in template mode and writes infra/template/layer-sync.template.json
 *    (and RegionalBucketStack into infra/template/regional-bucket.template.json, for the extra Regions):
 *    one self-contained CloudFormation template (no CDK bootstrap, no assets; settings and the code
 *    location are template parameters). cdk-nag's AwsSolutions pack must report nothing unacknowledged.
 * 2. Bundles handlers/sync.ts, handlers/publish.ts and handlers/build.ts with esbuild (the same options as NodejsFunction)
 *    into index.mjs and zips each deterministically into infra/template/dist/layer-sync-<name>-<sha12>.zip
 *    (the content hash in the name makes CloudFormation update the function when the code changes).
 *    infra/template/dist/ is build output: do not commit it.
 *
 * Exits 1 with a one-line reason when a handler is missing or a step fails.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { App, type Stack } from "aws-cdk-lib";
import { AwsSolutionsChecks } from "cdk-nag";
import { build } from "esbuild";
import { MODE, ZIP_DATE } from "../lib/zip/folder-zip.ts";
import { zipToBuffer } from "../lib/zip/writer.ts";
import {
  CREATE_REQUIRE_BANNER,
  ESBUILD_TARGET,
  type FunctionName,
  HANDLER_ENTRIES,
  MAIN_FIELDS,
  REPO_ROOT,
  WORKER_BUNDLES,
} from "./bundling.ts";
import { RegionalBucketStack } from "./regional-stack.ts";
import { LayerSyncStack } from "./stack.ts";

const TEMPLATE_DIR = fileURLToPath(new URL("./template/", import.meta.url));
export const TEMPLATE_FILE = join(TEMPLATE_DIR, "layer-sync.template.json");
/** The regional bucket template CfCT deploys to every extra publishing Region. */
export const REGIONAL_TEMPLATE_FILE = join(TEMPLATE_DIR, "regional-bucket.template.json");
const DIST_DIR = join(TEMPLATE_DIR, "dist");
/**
 * The folder of the code bucket the zips are uploaded to (docs/deployment.md, CfCT route step 2, copies `dist/` there), so the
 * SyncCodeS3Key / PublishCodeS3Key / BuildCodeS3Key values are `layer-sync/<zip name>`, as printed and as in the manifest.
 */
export const CODE_KEY_PREFIX = "layer-sync/";

/** The S3 key of a function zip in the code bucket. */
export function codeKey(zipName: string): string {
  return `${CODE_KEY_PREFIX}${zipName}`;
}

/** The stack behind the CfCT template (also what the tests check). */
export function templateStack(app: App): LayerSyncStack {
  return new LayerSyncStack(app, "LayerSync", { mode: "template" });
}

/** The stack behind the regional bucket template. */
export function regionalTemplateStack(app: App): RegionalBucketStack {
  return new RegionalBucketStack(app, "LayerSyncRegionalBucket", { mode: "template" });
}

/** The template-mode stack's CloudFormation template, after checking it with cdk-nag. */
export function synthesizeTemplate(make: (app: App) => Stack = templateStack): Record<string, unknown> {
  const app = new App({ outdir: mkdtempSync(join(tmpdir(), "layer-sync-synth-")) });
  const stack = make(app);
  const report = new AwsSolutionsChecks(app).validateScope(stack);
  if (report.violations.length > 0) {
    const lines = report.violations.map(
      (v) => `${v.ruleName} at ${v.violatingResources.map((r) => r.constructPath).join(", ")}`,
    );
    throw new Error(`cdk-nag AwsSolutions findings without an acknowledgment: ${lines.join("; ")}`);
  }
  const assembly = app.synth();
  const template = assembly.getStackArtifact(stack.artifactId).template as Record<string, unknown>;
  rmSync(assembly.directory, { recursive: true, force: true });
  return template;
}

/**
 * Zips files (name → bytes) with sorted entries, the fixed 1980 date and 0644 modes, with layer-sync's own
 * writer (the records every standard reader accepts, see lib/zip/writer.ts) at DEFLATE level 9.
 */
export async function deterministicZip(files: ReadonlyMap<string, Uint8Array>): Promise<Buffer> {
  const names = [...files.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  return zipToBuffer(
    names.map((name) => {
      const content = Buffer.from(files.get(name) ?? new Uint8Array());
      return { name, mode: MODE.file, size: content.length, content };
    }),
    ZIP_DATE,
    { level: 9 },
  );
}

async function bundle(name: FunctionName): Promise<{ file: string; sha256: string; bytes: number }> {
  const entry = HANDLER_ENTRIES[name];
  const outdir = join(DIST_DIR, "build", name);
  /** The options every bundle here shares (NodejsFunction's, see bundling.ts). */
  const common = {
    absWorkingDir: REPO_ROOT,
    bundle: true,
    platform: "node",
    format: "esm",
    target: ESBUILD_TARGET,
    minify: true,
    logLevel: "warning",
  } as const;
  await build({
    ...common,
    entryPoints: [entry],
    outfile: join(outdir, "index.mjs"),
    sourcemap: "external",
    sourcesContent: false,
    mainFields: MAIN_FIELDS,
    banner: { js: CREATE_REQUIRE_BANNER },
  });
  // worker modules beside index.mjs, as NodejsFunction's afterBundling hook puts them (bundling.ts)
  for (const w of WORKER_BUNDLES) {
    await build({ ...common, entryPoints: [join(REPO_ROOT, w.source)], outfile: join(outdir, w.file) });
  }
  const zip = await deterministicZip(
    new Map([
      ["index.mjs", readFileSync(join(outdir, "index.mjs"))],
      ["index.mjs.map", readFileSync(join(outdir, "index.mjs.map"))],
      ...WORKER_BUNDLES.map((w) => [w.file, readFileSync(join(outdir, w.file))] as const),
    ]),
  );
  const sha256 = createHash("sha256").update(zip).digest("hex");
  const file = join(DIST_DIR, `layer-sync-${name}-${sha256.slice(0, 12)}.zip`);
  writeFileSync(file, zip);
  return { file, sha256, bytes: zip.length };
}

async function main(): Promise<void> {
  mkdirSync(TEMPLATE_DIR, { recursive: true });
  writeFileSync(TEMPLATE_FILE, `${JSON.stringify(synthesizeTemplate(), null, 2)}\n`);
  process.stderr.write(`wrote ${relative(REPO_ROOT, TEMPLATE_FILE)}\n`);
  writeFileSync(REGIONAL_TEMPLATE_FILE, `${JSON.stringify(synthesizeTemplate(regionalTemplateStack), null, 2)}\n`);
  process.stderr.write(`wrote ${relative(REPO_ROOT, REGIONAL_TEMPLATE_FILE)}\n`);

  rmSync(DIST_DIR, { recursive: true, force: true });
  const missing = Object.values(HANDLER_ENTRIES).filter((entry) => !existsSync(entry));
  if (missing.length > 0) {
    throw new Error(
      `${missing.map((m) => relative(REPO_ROOT, m)).join(" and ")} not found; the function zips were not built (write the handlers, then run npm run synth again)`,
    );
  }
  mkdirSync(DIST_DIR, { recursive: true });
  const code: Record<string, { key: string; sha256: string; bytes: number }> = {};
  for (const name of ["sync", "publish", "build"] as const) {
    const { file, sha256, bytes } = await bundle(name);
    code[name] = { key: codeKey(relative(DIST_DIR, file)), sha256, bytes };
    process.stderr.write(`wrote ${relative(REPO_ROOT, file)} (${bytes} bytes)\n`);
  }
  writeFileSync(join(DIST_DIR, "code.json"), `${JSON.stringify(code, null, 2)}\n`);
  process.stdout.write(
    [
      `Upload the zips to ${CODE_KEY_PREFIX} in an S3 bucket in the home Region (docs/deployment.md: Route 2, step 2) and pass their keys as template parameters:`,
      `  SyncCodeS3Key=${code.sync?.key}`,
      `  PublishCodeS3Key=${code.publish?.key}`,
      `  BuildCodeS3Key=${code.build?.key}`,
      "",
    ].join("\n"),
  );
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((error: unknown) => {
    process.stderr.write(`npm run synth failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}
