/**
 * `layer-sync sync [flags] [--out DIR] [--json] [--dry-run] [--force]`: the same core as the sync handler.
 * With `--out DIR` each zip goes to `DIR/<key>` and no AWS API is called. On SIGINT or SIGTERM the run
 * directory is removed and open multipart uploads are aborted.
 */
import { arch, homedir, tmpdir, userInfo } from "node:os";
import { delimiter, join, resolve } from "node:path";
import type { SSMClient } from "@aws-sdk/client-ssm";
import type { RunInterrupts } from "../lib/artifacts/store.ts";
import { BUILDER_KINDS, type BuilderKind } from "../lib/builds/builders.ts";
import { type BuildDependencies, folderBuilds } from "../lib/builds/folder-builds.ts";
import { type Environment, loadSyncConfig, type SyncConfig } from "../lib/common/config.ts";
import { RunDeadline } from "../lib/common/deadline.ts";
import { ConfigError, describeError, summarise } from "../lib/common/errors.ts";
import type { LayerOverrides } from "../lib/common/layer-json.ts";
import type { SyncSummary } from "../lib/sync/sync.ts";
import {
  DEFAULT_DEADLINE_SECONDS,
  noPositionals,
  type ParsedCommand,
  secondsOption,
  stringOption,
  UsageError,
} from "./args.ts";
import { bytes, type CliIo, jsonText, Progress, printable, table } from "./output.ts";

/** Exit codes after a signal: 128 + its number. */
const SIGNAL_EXIT = { SIGINT: 130, SIGTERM: 143 } as const;

/** A local build may run this long per target. */
const BUILD_TIMEOUT_MS = 15 * 60 * 1000;

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
      void Promise.race([Promise.all(aborts), cap]).then(() => {
        // work still in flight while the aborts ran may have written into the run directory again
        interrupts.staging?.disposeSync();
        proc.exit(SIGNAL_EXIT[signal]);
      });
    };
    proc.on(signal, handler);
    return [signal, handler] as const;
  });
  return () => {
    for (const [signal, handler] of handlers) proc.off(signal, handler);
  };
}

/** The human summary: a headline and one row per package. */
export function syncTable(summary: SyncSummary): string {
  const rows = summary.packages.map((p) => [
    p.name,
    String(p.files),
    bytes(p.bytes),
    p.error ? `failed: ${p.error}` : p.skipped ? `skipped (${p.reason})` : "ok",
    p.key ?? "-",
  ]);
  const head = `commit ${summary.commit} (${summary.ref}) via ${summary.strategy}, ${summary.requests.total} source requests\n`;
  return head + table(["PACKAGE", "FILES", "SIZE", "STATE", "KEY"], rows);
}

/** layer-sync's tool cache (the pinned uv, uv-managed interpreters): `$XDG_CACHE_HOME/layer-sync` or `~/.cache/layer-sync`. */
export function toolCache(env: Environment): string {
  const xdg = env.XDG_CACHE_HOME;
  if (xdg?.startsWith("/")) return join(xdg, "layer-sync");
  return join(env.HOME?.startsWith("/") ? env.HOME : homedir(), ".cache", "layer-sync");
}

async function buildDependencies(
  parsed: ParsedCommand,
  config: SyncConfig,
  env: Environment,
  ssm: SSMClient | undefined,
  workDir: string,
): Promise<BuildDependencies> {
  const kind = (stringOption(parsed, "builder") ?? "auto") as BuilderKind;
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
      const { readTokenParameter } = await import("../lib/common/token.ts");
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
    toolCache: toolCache(env),
    timeoutMs: BUILD_TIMEOUT_MS,
    index: { pipIndexUrl: config.build?.pipIndexUrl, npmRegistry: config.build?.npmRegistry, token },
    user: uid >= 0 ? `${uid}:${gid}` : undefined,
  };
}

/** The run's deadline from `--deadline` (default one hour), counted from the start of the command. */
function cliDeadline(parsed: ParsedCommand): RunDeadline {
  const seconds = secondsOption(parsed, "deadline", DEFAULT_DEADLINE_SECONDS);
  return new RunDeadline(
    Date.now() + seconds * 1000,
    `--deadline ${seconds} s from the start of the run`,
    Date.now,
    "raise --deadline, or sync fewer or smaller folders per run",
  );
}

export async function syncCommand(parsed: ParsedCommand, env: Environment, io: CliIo): Promise<number> {
  noPositionals(parsed);
  const deadline = cliDeadline(parsed);
  try {
    return await syncUntil(parsed, env, io, deadline);
  } finally {
    deadline.dispose();
  }
}

async function syncUntil(parsed: ParsedCommand, env: Environment, io: CliIo, deadline: RunDeadline): Promise<number> {
  const outOption = stringOption(parsed, "out");
  const out = outOption === undefined ? undefined : resolve(outOption);
  const config = loadSyncConfig({ env, flags: parsed.settings }, { requireBucket: out === undefined });
  const smoke = parsed.values.smoke === true;
  // layer.json "smoke" of each folder that names its modules (told by the sync), for the local smoke test
  const smokeModules = new Map<string, string[]>();
  if (smoke && out === undefined) throw new UsageError("--smoke runs the layers written by --out DIR; add --out DIR");
  if (out !== undefined && config.source.tokenParameterName && config.source.token === undefined) {
    throw new ConfigError(
      "--out calls no AWS API, so the token parameter cannot be read; give the token in SOURCE_TOKEN instead (or unset TOKEN_PARAMETER_NAME for a public repository)",
    );
  }
  // the AWS SDK, HTTP client and sources load only now: --help and usage errors start without them
  const [{ S3Client }, { SSMClient }, { createSource }, { runSync }, { checkToken, readTokenParameter }] =
    await Promise.all([
      import("@aws-sdk/client-s3"),
      import("@aws-sdk/client-ssm"),
      import("../lib/sources/index.ts"),
      import("../lib/sync/sync.ts"),
      import("../lib/common/token.ts"),
    ]);
  const progress = new Progress(io, env);
  const aws = out === undefined ? { s3: new S3Client({}), ssm: new SSMClient({}) } : undefined;
  let token: string | undefined;
  if (config.source.token !== undefined) token = checkToken(config.source.token, "SOURCE_TOKEN");
  else if (config.source.tokenParameterName && aws)
    token = await readTokenParameter(aws.ssm, config.source.tokenParameterName);
  const workOption = stringOption(parsed, "work-dir");
  const workDir = workOption !== undefined ? resolve(workOption) : join(tmpdir(), "layer-sync");
  const build = await buildDependencies(parsed, config, env, aws?.ssm, workDir);
  // a build never runs past the deadline either
  build.timeoutMs = Math.max(1000, Math.min(build.timeoutMs, deadline.remainingMs()));
  const bundle = createSource(config.source, token, { runDeadline: deadline });
  let summary: SyncSummary;
  const interrupts: RunInterrupts = { aborts: new Set() };
  const stopListening = onSignals(io, interrupts);
  // at the deadline, abort the multipart uploads under way, as the Lambda handler does
  const abortUploads = () => {
    for (const abort of interrupts.aborts) void abort().catch(() => undefined);
  };
  deadline.signal.addEventListener("abort", abortUploads, { once: true });
  try {
    summary = await runSync(
      config,
      { outDir: out, dryRun: parsed.values["dry-run"] === true, force: parsed.values.force === true },
      {
        source: bundle.source,
        requestCount: () => bundle.http.requestCount,
        s3: aws?.s3,
        ssm: aws?.ssm,
        clock: () => new Date(),
        workDir,
        exclusiveWorkDir: false,
        logger: progress.logger(),
        progress: progress.event,
        builds: folderBuilds({ build }),
        interrupts,
        deadline,
        ...(io.process ? { ownerPid: io.process.pid } : {}),
        ...(smoke
          ? {
              onLayerConfig: (path: string, o: LayerOverrides) => {
                if (o.smoke) smokeModules.set(path, o.smoke);
              },
            }
          : {}),
      },
    );
  } finally {
    deadline.signal.removeEventListener("abort", abortUploads);
    progress.stop();
    stopListening();
    await bundle.http.close();
  }
  let smokeFailed = false;
  let output: SyncSummary & { smoke?: unknown } = summary;
  if (smoke && out !== undefined) {
    const { smokeSyncedPackages } = await import("../lib/publish/smoke-synced.ts");
    const results = await smokeSyncedPackages({
      outDir: out,
      packages: summary.packages,
      runtimes: config.layer.runtimes,
      architectures: config.layer.architectures,
      machine: arch() === "x64" ? "x86_64" : arch(),
      pathDirs: (env.PATH ?? "").split(delimiter).filter(Boolean),
      node: process.execPath,
      baseEnv: { PATH: env.PATH, HOME: env.HOME, LANG: env.LANG },
      smokeModules,
    });
    for (const r of results) {
      const what =
        r.result === "ok"
          ? `ok (${r.imported.join(", ") || "nothing to import"})`
          : r.result === "failed"
            ? `FAILED: ${r.error ?? ""}`
            : `not smoke-tested: ${r.note ?? ""}`;
      io.stderr.write(`smoke ${r.package} ${r.runtime} ${r.architecture}: ${what}\n`);
    }
    smokeFailed = results.some((r) => r.result === "failed");
    output = { ...summary, smoke: results };
  }
  io.stdout.write(parsed.values.json ? jsonText(output) : syncTable(summary));
  if (!parsed.values.json) {
    // --json carries them in the summary; a person reads them here, on a terminal or not
    for (const p of summary.packages) {
      for (const w of p.warnings) io.stderr.write(`layer-sync: warning: ${printable(`${p.name}: ${w}`)}\n`);
    }
  }
  const failed = summary.packages.filter((p) => p.error);
  if (failed.length) {
    const reasons = summarise(
      failed.map((p) => `${p.name}: ${p.error}`),
      3,
      " | ",
    );
    io.stderr.write(
      `layer-sync: ${printable(describeError(new Error(`${failed.length} package(s) failed: ${reasons}`)))}\n`,
    );
    // a package refused for its configuration (layer.json, a requirement line, clashing package names) is
    // exit 2, like a bad setting
    return failed.some((p) => p.errorKind === "configuration") ? 2 : 1;
  }
  if (smokeFailed) {
    io.stderr.write("layer-sync: a layer failed its local smoke test (see the smoke lines above)\n");
    return 1;
  }
  return 0;
}
