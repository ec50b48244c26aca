/**
 * The `layer-sync` command line. It runs the same core as the Lambda handlers.
 *
 *   layer-sync sync [flags] [--out DIR] [--json] [--dry-run] [--force]
 *   layer-sync publish [--package NAME]... [flags] [--json]
 *   layer-sync invoke sync|publish EVENT.json
 *
 * Exit codes: 0 success, 1 the job failed (one-line reason on stderr), 2 bad usage or configuration.
 * Stdout carries only the result; progress goes to stderr when stderr is a terminal.
 */
import { readFile } from "node:fs/promises";
import { tmpdir, userInfo } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import type { SSMClient } from "@aws-sdk/client-ssm";
import { BUILDER_KINDS, type BuilderKind } from "../lib/build/builders.ts";
import type { BuildDependencies } from "../lib/build/sync-builds.ts";
import { type Environment, loadSyncConfig, type SyncConfig } from "../lib/shared/config.ts";
import { ConfigError, describeError, EventValidationError, summarise } from "../lib/shared/errors.ts";
import type { Logger } from "../lib/shared/log.ts";
import { redact } from "../lib/shared/redact.ts";
import type { RunInterrupts } from "../lib/sync/artifacts/artifacts.ts";
import type { SyncSummary } from "../lib/sync/sync.ts";

/**
 * The sync machinery (AWS SDK, HTTP client, sources), loaded only when a command needs it: `--version`,
 * `--help` and usage errors then start without it (the bundled CLI's start-up time).
 */
async function syncModules() {
  const [{ S3Client }, { SSMClient }, { createSource }, { runSync }, { checkToken, readTokenParameter }] =
    await Promise.all([
      import("@aws-sdk/client-s3"),
      import("@aws-sdk/client-ssm"),
      import("../lib/sync/sources/index.ts"),
      import("../lib/sync/sync.ts"),
      import("../lib/shared/token.ts"),
    ]);
  return { S3Client, SSMClient, createSource, runSync, checkToken, readTokenParameter };
}

export interface CliIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown; isTTY?: boolean };
  /**
   * The process, when the CLI runs as a command: on SIGINT or SIGTERM a sync removes its run directory,
   * aborts its open multipart uploads (waiting at most 2 s) and exits 130 or 143.
   */
  process?: {
    pid: number;
    on(signal: "SIGINT" | "SIGTERM", listener: () => void): unknown;
    off(signal: "SIGINT" | "SIGTERM", listener: () => void): unknown;
    exit(code: number): void;
  };
}

/** Exit codes after a signal: 128 + its number. */
const SIGNAL_EXIT = { SIGINT: 130, SIGTERM: 143 } as const;

/** Undo what an interrupted run left (run directory, multipart uploads), then exit with the signal's code. */
function onSignals(io: CliIo, interrupts: RunInterrupts): () => void {
  const proc = io.process;
  if (!proc) return () => undefined;
  const handlers = (["SIGINT", "SIGTERM"] as const).map((signal) => {
    const handler = () => {
      interrupts.staging?.disposeSync();
      io.stderr.write(
        `layer-sync: interrupted by ${signal}; the run directory was removed and nothing was pointed to\n`,
      );
      const aborts = [...interrupts.aborts].map((abort) => abort().catch(() => undefined));
      const cap = new Promise((resolve) => setTimeout(resolve, 2000).unref());
      void Promise.race([Promise.all(aborts), cap]).then(() => proc.exit(SIGNAL_EXIT[signal]));
    };
    proc.on(signal, handler);
    return [signal, handler] as const;
  });
  return () => {
    for (const [signal, handler] of handlers) proc.off(signal, handler);
  };
}

/** Extension point: the publish command, registered by `lib/publish` when present. */
export type PublishCommand = (args: {
  env: Environment;
  flags: Record<string, string | string[] | undefined>;
  packages: string[];
  io: CliIo;
  logger: Logger;
}) => Promise<{ output: unknown; failed: boolean }>;

const USAGE = `usage:
  layer-sync sync [--provider P] [--repository R] [--ref REF] [--path DIR]... [--api-url URL] [--web-url URL]
                  [--strategy auto|walk|archive] [--token-parameter NAME] [--bucket B] [--prefix P]
                  [--parameter-prefix P] [--layer-prefix P] [--out DIR] [--json] [--dry-run] [--force]
                  [--builder auto|docker|local] [--pip-index-url URL] [--npm-registry URL]
                  [--index-token-parameter NAME]
  layer-sync publish [--package NAME]... [--bucket B] [--parameter-prefix P] [--layer-prefix P]
                  [--runtimes R,..] [--architectures A,..] [--share-org O] [--share-ou OU]... [--share-account ID]...
                  [--retain N] [--regions R,..] [--region-bucket REGION=BUCKET]... [--json]
  layer-sync invoke sync|publish EVENT.json
Settings also come from the environment (SOURCE_PROVIDER, SOURCE_REPOSITORY, …); a flag wins.
Exit codes: 0 success, 1 job failed, 2 usage or configuration error.`;

const STRING_FLAGS = [
  "provider",
  "repository",
  "ref",
  "api-url",
  "web-url",
  "strategy",
  "token-parameter",
  "bucket",
  "prefix",
  "parameter-prefix",
  "layer-prefix",
  "runtimes",
  "architectures",
  "license",
  "share-org",
  "retain",
  "concurrency",
  "timeout",
  "max-retries",
  "rate-limit-wait",
  "max-files",
  "max-bytes",
  "out",
  "work-dir",
  "builder",
  "pip-index-url",
  "npm-registry",
  "index-token-parameter",
] as const;
const LIST_FLAGS = ["path", "share-ou", "share-account", "package", "regions", "region-bucket"] as const;
const BOOL_FLAGS = ["json", "dry-run", "force", "help", "version"] as const;

class UsageError extends Error {}

function parse(argv: string[]) {
  const options: Record<string, { type: "string" | "boolean"; multiple?: boolean }> = {};
  for (const f of STRING_FLAGS) options[f] = { type: "string" };
  for (const f of LIST_FLAGS) options[f] = { type: "string", multiple: true };
  for (const f of BOOL_FLAGS) options[f] = { type: "boolean" };
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

function progressLogger(io: CliIo): Logger {
  const show = io.stderr.isTTY === true;
  const line = (level: string, message: string, extra?: Record<string, unknown>) => {
    if (!show) return; // on a pipe or file, stderr carries only the final one-line reason
    io.stderr.write(
      `${redact(`${level === "info" ? "" : `${level}: `}${message}${extra ? ` ${JSON.stringify(extra)}` : ""}`)}\n`,
    );
  };
  return {
    info: (m, e) => line("info", m, e),
    warn: (m, e) => line("warning", m, e),
    error: (m, e) => line("error", m, e),
  };
}

function table(summary: SyncSummary): string {
  const rows = summary.packages.map((p) => {
    const state = p.error ? `FAILED: ${p.error}` : p.skipped ? `skipped (${p.reason})` : "ok";
    return `  ${p.name}  ${p.files} files  ${p.bytes} bytes  ${p.key ?? "-"}  ${state}`;
  });
  return `commit ${summary.commit} (${summary.ref}) via ${summary.strategy}, ${summary.requests.total} source requests\n${rows.join("\n")}\n`;
}

function flagsOf(values: Record<string, string | boolean | (string | boolean)[] | undefined>) {
  const flags: Record<string, string | string[] | undefined> = {};
  for (const [k, v] of Object.entries(values)) {
    if (typeof v === "string") flags[k] = v;
    else if (Array.isArray(v)) flags[k] = v.filter((x): x is string => typeof x === "string");
  }
  return flags;
}

/** A local build may run this long per target. */
const BUILD_TIMEOUT_MS = 15 * 60 * 1000;

async function buildDependencies(
  values: ReturnType<typeof parse>["values"],
  config: SyncConfig,
  env: Environment,
  ssm: SSMClient | undefined,
  workDir: string,
): Promise<BuildDependencies> {
  const kind = (typeof values.builder === "string" ? values.builder : "auto") as BuilderKind;
  if (!BUILDER_KINDS.includes(kind)) throw new UsageError(`--builder must be auto, docker or local (got "${kind}")`);
  const name = config.build?.indexTokenParameter;
  let token: string | undefined;
  if (name !== undefined) {
    if (!ssm) {
      throw new ConfigError(
        "--out calls no AWS API, so BUILD_INDEX_TOKEN_PARAMETER cannot be read; sync with --bucket, or unset it for a public index",
      );
    }
    try {
      const { readTokenParameter } = await import("../lib/shared/token.ts");
      token = await readTokenParameter(ssm, name);
    } catch (error) {
      const message = describeError(error)
        .replace(/^TOKEN_PARAMETER_NAME: /, "")
        .replace("the token parameter", "the index token parameter");
      throw new ConfigError(`BUILD_INDEX_TOKEN_PARAMETER (--index-token-parameter): ${message}`, { cause: error });
    }
  }
  const { uid, gid } = userInfo();
  return {
    kind,
    env,
    cacheDir: join(workDir, "build-cache"),
    timeoutMs: BUILD_TIMEOUT_MS,
    index: { pipIndexUrl: config.build?.pipIndexUrl, npmRegistry: config.build?.npmRegistry, token },
    user: uid >= 0 ? `${uid}:${gid}` : undefined,
  };
}

async function syncCommand(values: ReturnType<typeof parse>["values"], env: Environment, io: CliIo): Promise<number> {
  const out = typeof values.out === "string" ? resolve(values.out) : undefined;
  const flags = flagsOf(values);
  const config = loadSyncConfig({ env, flags }, { requireBucket: out === undefined });
  if (out !== undefined && config.source.tokenParameterName && config.source.token === undefined) {
    throw new ConfigError(
      "--out calls no AWS API, so the token parameter cannot be read; give the token in SOURCE_TOKEN instead (or unset TOKEN_PARAMETER_NAME for a public repository)",
    );
  }
  const { S3Client, SSMClient, createSource, runSync, checkToken, readTokenParameter } = await syncModules();
  const logger = progressLogger(io);
  const aws = out === undefined ? { s3: new S3Client({}), ssm: new SSMClient({}) } : undefined;
  let token: string | undefined;
  if (config.source.token !== undefined) token = checkToken(config.source.token, "SOURCE_TOKEN");
  else if (config.source.tokenParameterName && aws)
    token = await readTokenParameter(aws.ssm, config.source.tokenParameterName);
  const workDir = typeof values["work-dir"] === "string" ? resolve(values["work-dir"]) : join(tmpdir(), "layer-sync");
  const build = await buildDependencies(values, config, env, aws?.ssm, workDir);
  const bundle = createSource(config.source, token);
  let summary: SyncSummary;
  const interrupts: RunInterrupts = { aborts: new Set() };
  const stopListening = onSignals(io, interrupts);
  try {
    summary = await runSync(
      config,
      { outDir: out, dryRun: values["dry-run"] === true, force: values.force === true },
      {
        source: bundle.source,
        requestCount: () => bundle.http.requestCount,
        s3: aws?.s3,
        ssm: aws?.ssm,
        clock: () => new Date(),
        workDir,
        exclusiveWorkDir: false,
        logger,
        build,
        interrupts,
        ...(io.process ? { ownerPid: io.process.pid } : {}),
      },
    );
  } finally {
    stopListening();
    await bundle.http.close();
  }
  io.stdout.write(values.json ? `${JSON.stringify(summary, null, 2)}\n` : table(summary));
  const failed = summary.packages.filter((p) => p.error);
  if (failed.length) {
    io.stderr.write(
      `layer-sync: ${describeError(
        new Error(
          `${failed.length} package(s) failed: ${summarise(
            failed.map((p) => `${p.name}: ${p.error}`),
            3,
            " | ",
          )}`,
        ),
      )}\n`,
    );
    return 1;
  }
  return 0;
}

async function loadPublishCommand(): Promise<PublishCommand | undefined> {
  try {
    const mod = (await import("./publish.ts")) as { publishCommand?: PublishCommand };
    return mod.publishCommand;
  } catch (error) {
    if ((error as { code?: string }).code === "ERR_MODULE_NOT_FOUND") return undefined;
    throw error;
  }
}

async function invokeCommand(positionals: string[], io: CliIo): Promise<number> {
  const [, which, file] = positionals;
  if ((which !== "sync" && which !== "publish") || !file || positionals.length > 3) {
    throw new UsageError("invoke takes: invoke sync|publish EVENT.json");
  }
  let event: unknown;
  try {
    event = JSON.parse(await readFile(file, "utf8"));
  } catch (error) {
    throw new EventValidationError(`cannot read event file ${file}: ${(error as Error).message}`);
  }
  const mod = (await import(which === "sync" ? "../handlers/sync.ts" : "../handlers/publish.ts")) as {
    handler: (event: unknown, context: unknown) => Promise<unknown>;
  };
  const { localContext } = await import("../handlers/runtime.ts");
  const context = localContext(`layer-sync-${which}`);
  // the handler's structured logs and metrics go to stderr; stdout carries only the result
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = process.stderr.write.bind(process.stderr) as typeof process.stdout.write;
  let result: unknown;
  try {
    result = await mod.handler(event, context);
  } finally {
    process.stdout.write = write;
  }
  io.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  return 0;
}

/** Run the CLI; returns the exit code. */
export async function main(argv: string[], env: Environment, io: CliIo): Promise<number> {
  try {
    const { values, positionals } = parse(argv);
    if (values.version) {
      io.stdout.write("layer-sync 0.1.0\n");
      return 0;
    }
    const command = positionals[0];
    if (values.help || command === undefined || command === "help") {
      (command === undefined && !values.help ? io.stderr : io.stdout).write(`${USAGE}\n`);
      return command === undefined && !values.help ? 2 : 0;
    }
    if (command === "sync") {
      if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}"`);
      return await syncCommand(values, env, io);
    }
    if (command === "publish") {
      if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}"`);
      const publish = await loadPublishCommand();
      if (!publish) throw new UsageError("publish is not available in this build");
      const flags = flagsOf(values);
      const packages = Array.isArray(flags.package) ? flags.package : [];
      const { output, failed } = await publish({ env, flags, packages, io, logger: progressLogger(io) });
      io.stdout.write(`${JSON.stringify(output, null, 2)}\n`);
      return failed ? 1 : 0;
    }
    if (command === "invoke") return await invokeCommand(positionals, io);
    throw new UsageError(`unknown command "${command}"`);
  } catch (error) {
    const usage = error instanceof UsageError || error instanceof ConfigError;
    const event = error instanceof EventValidationError;
    io.stderr.write(
      `layer-sync: ${describeError(error)}${error instanceof UsageError ? "\nrun layer-sync --help for usage" : ""}\n`,
    );
    return usage || event ? 2 : 1;
  }
}
