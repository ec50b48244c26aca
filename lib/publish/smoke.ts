/**
 * The smoke test of a new layer version, in one Region, before `layer-version-arn` names it (see
 * docs/publishing.md "Release flow"):
 *
 * 1. For each target (runtime × architecture of the layer, Python and Node.js runtimes only) there is one
 *    smoke function per Region, `layer-sync-smoke-{runtime without dots}-{architecture}`, created on demand
 *    by publish with SMOKE_ROLE_ARN (logs only) and the handler of `smoke-handlers.ts`.
 * 2. Attach the new version: CreateFunction with `Layers: [arn]` when the function is missing, else
 *    UpdateFunctionCode (only when the handler's CodeSha256 differs) and UpdateFunctionConfiguration with
 *    `Layers: [arn]`; then wait until the update is `Successful`.
 * 3. Invoke it with `{"modules": [...], "layerVersionArn": arn}`: `ok: true` passes; `ok: false`, a
 *    `FunctionError`, an answer that is not the handler's, or no answer in time fails.
 *
 * One function serves every package of its target, so within a run the steps 2–3 of a function are done one
 * package at a time (`SmokeLocks`).
 */
import {
  type Architecture,
  CreateFunctionCommand,
  type FunctionConfiguration,
  GetFunctionConfigurationCommand,
  InvokeCommand,
  type InvokeCommandOutput,
  type LambdaClient,
  type Runtime,
  UpdateFunctionCodeCommand,
  UpdateFunctionConfigurationCommand,
} from "@aws-sdk/client-lambda";
import { attempt, errorName, isNotFound } from "../common/aws-errors.ts";
import { PublishError } from "../common/errors.ts";
import { type SmokeFamily, smokeCode } from "./smoke-handlers.ts";

export interface SmokeTarget {
  runtime: string;
  architecture: string;
  family: SmokeFamily;
  /** The modules imported, in order. */
  modules: string[];
}

/** One target's result, as the Region entry of the publish summary reports it (`smoke`). */
export interface SmokeResult {
  runtime: string;
  architecture: string;
  functionName: string;
  ok: boolean;
  imported: string[];
  error?: string;
}

export interface SmokeOptions {
  roleArn: string;
  locks: SmokeLocks;
  sleep: (ms: number) => Promise<void>;
  clock: () => Date;
  /** How long to wait for the function to be updated, and for its answer (default 120 s each). */
  waitMs?: number;
  invokeTimeoutMs?: number;
}

export const SMOKE_TIMEOUT_SECONDS = 60;
export const SMOKE_MEMORY_MB = 1024;
export const SMOKE_FUNCTION_PREFIX = "layer-sync-smoke-";

/** `layer-sync-smoke-python312-arm64`, `layer-sync-smoke-nodejs22x-x86_64`. */
export function smokeFunctionName(runtime: string, architecture: string): string {
  return `${SMOKE_FUNCTION_PREFIX}${runtime.replace(/\./g, "")}-${architecture}`;
}

export function smokeFamily(runtime: string): SmokeFamily | undefined {
  if (/^python3\.\d+$/.test(runtime)) return "python";
  if (/^nodejs\d+\.x$/.test(runtime)) return "nodejs";
  return undefined;
}

/** Serialises the use of one smoke function (per Region) within a run. */
export class SmokeLocks {
  private readonly tails = new Map<string, Promise<unknown>>();
  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const before = this.tails.get(key) ?? Promise.resolve();
    const result = before.then(fn, fn);
    this.tails.set(
      key,
      result.catch(() => undefined),
    );
    return result;
  }
}

async function configuration(lambda: LambdaClient, name: string): Promise<FunctionConfiguration | undefined> {
  try {
    return await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: name }));
  } catch (error) {
    if (isNotFound(error)) return undefined;
    return attempt(PublishError, { call: "lambda:GetFunctionConfiguration", resource: `function ${name}` }, () =>
      Promise.reject(error),
    );
  }
}

/** Wait until the function is Active and its last update Successful. */
async function waitUpdated(lambda: LambdaClient, name: string, options: SmokeOptions): Promise<void> {
  const deadline = options.clock().getTime() + (options.waitMs ?? 120_000);
  for (let delay = 500; ; delay = Math.min(delay * 2, 5_000)) {
    const c = await configuration(lambda, name);
    const state = c?.State;
    const update = c?.LastUpdateStatus;
    if (state === "Failed" || update === "Failed") {
      throw new PublishError(
        `smoke function ${name} could not be updated (${c?.StateReason ?? c?.LastUpdateStatusReason ?? "no reason given"}); check SMOKE_ROLE_ARN and the function`,
      );
    }
    if (c && state !== "Pending" && update !== "InProgress") return;
    if (options.clock().getTime() >= deadline) {
      throw new PublishError(
        `smoke function ${name} was still being updated after ${options.waitMs ?? 120_000} ms; run again`,
      );
    }
    await options.sleep(delay);
  }
}

/** Create the target's smoke function with `layerArn` attached, or attach `layerArn` to it. */
async function attach(
  lambda: LambdaClient,
  name: string,
  target: SmokeTarget,
  layerArn: string,
  options: SmokeOptions,
): Promise<void> {
  const code = await smokeCode(target.family);
  const settings = {
    FunctionName: name,
    Role: options.roleArn,
    Handler: code.handler,
    Runtime: target.runtime as Runtime,
    Timeout: SMOKE_TIMEOUT_SECONDS,
    MemorySize: SMOKE_MEMORY_MB,
    Layers: [layerArn],
  };
  let existing = await configuration(lambda, name);
  if (!existing) {
    try {
      await lambda.send(
        new CreateFunctionCommand({
          ...settings,
          Architectures: [target.architecture as Architecture],
          Code: { ZipFile: code.zip },
          Description: "layer-sync smoke test: imports a new layer version's modules before consumers see it",
          Tags: { "managed-by": "layer-sync" },
        }),
      );
      await waitUpdated(lambda, name, options);
      return;
    } catch (error) {
      if (errorName(error) !== "ResourceConflictException") {
        return attempt(
          PublishError,
          {
            call: "lambda:CreateFunction",
            resource: `smoke function ${name}`,
            permission: "lambda:CreateFunction (and iam:PassRole on SMOKE_ROLE_ARN)",
          },
          () => Promise.reject(error),
        );
      }
      existing = await configuration(lambda, name); // created by a racing run
    }
  }
  await waitUpdated(lambda, name, options);
  if (existing?.CodeSha256 !== code.codeSha256) {
    await attempt(PublishError, { call: "lambda:UpdateFunctionCode", resource: `smoke function ${name}` }, () =>
      lambda.send(
        new UpdateFunctionCodeCommand({
          FunctionName: name,
          ZipFile: code.zip,
          Architectures: [target.architecture as Architecture],
        }),
      ),
    );
    await waitUpdated(lambda, name, options);
  }
  await attempt(
    PublishError,
    {
      call: "lambda:UpdateFunctionConfiguration",
      resource: `smoke function ${name} (layer ${layerArn})`,
      permission: "lambda:UpdateFunctionConfiguration and lambda:GetLayerVersion (and iam:PassRole on SMOKE_ROLE_ARN)",
    },
    () => lambda.send(new UpdateFunctionConfigurationCommand(settings)),
  );
  await waitUpdated(lambda, name, options);
}

/** The last non-empty line of a text (an error's last line is its reason). */
export function lastLine(text: string): string {
  const lines = text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "");
  return lines.at(-1) ?? text.trim();
}

function decode(payload: Uint8Array | undefined): unknown {
  const text = Buffer.from(payload ?? []).toString("utf8");
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** Invoke the smoke function and judge its answer. */
async function invoke(
  lambda: LambdaClient,
  name: string,
  target: SmokeTarget,
  layerArn: string,
  options: SmokeOptions,
): Promise<Pick<SmokeResult, "ok" | "imported" | "error">> {
  const timeoutMs = options.invokeTimeoutMs ?? 120_000;
  const payload = JSON.stringify({ modules: target.modules, layerVersionArn: layerArn });
  let res: InvokeCommandOutput;
  try {
    res = await lambda.send(
      new InvokeCommand({ FunctionName: name, InvocationType: "RequestResponse", Payload: Buffer.from(payload) }),
      { abortSignal: AbortSignal.timeout(timeoutMs) },
    );
  } catch (error) {
    if (errorName(error) === "AbortError" || errorName(error) === "TimeoutError") {
      return { ok: false, imported: [], error: `timed out: no answer from ${name} within ${timeoutMs} ms` };
    }
    return attempt(PublishError, { call: "lambda:InvokeFunction", resource: `smoke function ${name}` }, () =>
      Promise.reject(error),
    );
  }
  const body = decode(res.Payload);
  if (res.FunctionError) {
    const b = typeof body === "object" && body !== null ? (body as Record<string, unknown>) : {};
    const message = typeof b.errorMessage === "string" ? b.errorMessage : typeof body === "string" ? body : "";
    const type = typeof b.errorType === "string" ? b.errorType : res.FunctionError;
    return { ok: false, imported: [], error: `${type}: ${lastLine(message) || "no message"}` };
  }
  if (typeof body !== "object" || body === null || typeof (body as { ok?: unknown }).ok !== "boolean") {
    return {
      ok: false,
      imported: [],
      error: `the smoke function answered ${JSON.stringify(body).slice(0, 200)}, not {"ok", "imported"}`,
    };
  }
  const b = body as { ok: boolean; imported?: unknown; error?: unknown };
  const imported = Array.isArray(b.imported) ? b.imported.filter((m): m is string => typeof m === "string") : [];
  if (b.ok) return { ok: true, imported };
  return { ok: false, imported, error: typeof b.error === "string" ? lastLine(b.error) : "ok: false, no error given" };
}

/** Smoke-test `layerArn` on every target in this Region, in order, stopping at the first failure. */
export async function smokeTest(
  lambda: LambdaClient,
  region: string,
  targets: readonly SmokeTarget[],
  layerArn: string,
  options: SmokeOptions,
): Promise<SmokeResult[]> {
  const results: SmokeResult[] = [];
  for (const target of targets) {
    const functionName = smokeFunctionName(target.runtime, target.architecture);
    const outcome = await options.locks.run(`${region}/${functionName}`, async () => {
      await attach(lambda, functionName, target, layerArn, options);
      return invoke(lambda, functionName, target, layerArn, options);
    });
    results.push({ runtime: target.runtime, architecture: target.architecture, functionName, ...outcome });
    if (!outcome.ok) break;
  }
  return results;
}

/**
 * The targets of a layer: its compatible runtimes (else the runtime it was built for) that have a smoke
 * handler, times its compatible architectures (else the one it was built for, else x86_64), each with the
 * modules to import (`layer.json` "smoke").
 */
export function smokeTargets(args: {
  runtimes: readonly string[];
  architectures: readonly string[];
  build: { runtime: string; architecture: string } | undefined;
  /** `layer.json` "smoke"; when undefined the caller fills in each target's default modules. */
  modules: readonly string[] | undefined;
}): SmokeTarget[] {
  const runtimes = args.runtimes.length ? args.runtimes : args.build ? [args.build.runtime] : [];
  const architectures = args.architectures.length
    ? args.architectures
    : args.build
      ? [args.build.architecture]
      : ["x86_64"];
  const out: SmokeTarget[] = [];
  for (const runtime of runtimes) {
    const family = smokeFamily(runtime);
    if (!family) continue;
    for (const architecture of architectures)
      out.push({ runtime, architecture, family, modules: [...(args.modules ?? [])] });
  }
  return out;
}
