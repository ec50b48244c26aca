/**
 * Vitest global setup: one moto server (AWS emulator) for the whole test run.
 *
 * 1. Ensures a project-local virtualenv with moto (default `.venv/`; `LAYER_SYNC_VENV` points elsewhere, e.g.
 *    to try the fresh-machine path). When `python -c "import moto.server"` works at the pinned version nothing is
 *    installed; otherwise `python3 -m venv` + `pip install moto[server]==…` run under a lock directory inside
 *    the venv, so parallel Vitest runs (or CI's own install step) never race.
 * 2. Starts `moto_launcher.py` (moto's ThreadedMotoServer with the RAM gaps closed) on 127.0.0.1. The launcher
 *    binds port 0, so the OS picks a free port atomically, and prints `ready port=<n>`.
 * 3. Polls `GET /moto-api/` until moto answers, then provides `motoEndpoint` to the test files
 *    (`test/support/setup.ts` turns it into `AWS_ENDPOINT_URL`).
 * 4. Teardown closes the launcher's stdin and sends SIGTERM (SIGKILL after 5 s). If the runner dies without a
 *    teardown, the launcher still exits, because it stops when its stdin reaches EOF.
 *
 * The endpoint is an IP address on purpose: the S3 client then uses path-style URLs without any client option.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import type { TestProject } from "vitest/node";

declare module "vitest" {
  export interface ProvidedContext {
    /** Base URL of the moto server for this run, e.g. `http://127.0.0.1:41234`. */
    motoEndpoint: string;
  }
}

export const MOTO_VERSION = "5.2.5";
const MOTO_REQUIREMENT = `moto[server]==${MOTO_VERSION}`;
const HOST = "127.0.0.1";
const READY_TIMEOUT_MS = 30_000;
const POLL_TIMEOUT_MS = 10_000;
const LOCK_TIMEOUT_MS = 15 * 60_000;
const LOCK_STALE_WITHOUT_OWNER_MS = 60_000;

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const launcherPath = join(repoRoot, "test", "support", "moto_launcher.py");

function log(message: string): void {
  process.stderr.write(`[moto] ${message}\n`);
}

interface RunResult {
  code: number | null;
  output: string;
  spawnError: NodeJS.ErrnoException | undefined;
}

/** Runs a command without stdin, capturing stdout+stderr (and echoing them when `echo` is set). */
function run(command: string, args: readonly string[], echo = false): Promise<RunResult> {
  return new Promise((resolveRun) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], cwd: repoRoot });
    const chunks: Buffer[] = [];
    const collect = (chunk: Buffer): void => {
      chunks.push(chunk);
      if (echo) process.stderr.write(chunk);
    };
    child.stdout.on("data", collect);
    child.stderr.on("data", collect);
    child.on("error", (error: NodeJS.ErrnoException) => {
      resolveRun({ code: null, output: "", spawnError: error });
    });
    child.on("close", (code) => {
      resolveRun({ code, output: Buffer.concat(chunks).toString("utf8"), spawnError: undefined });
    });
  });
}

function tail(text: string, lines = 15): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

async function motoIsInstalled(python: string): Promise<boolean> {
  if (!existsSync(python)) return false;
  const probe = `import moto, moto.server; raise SystemExit(0 if moto.__version__ == "${MOTO_VERSION}" else 3)`;
  const result = await run(python, ["-c", probe]);
  return result.code === 0;
}

function pidIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** A lock directory (mkdir is atomic) with an owner file; a lock whose owner process is gone is taken over. */
async function withLock<T>(lockDir: string, body: () => Promise<T>): Promise<T> {
  const ownerFile = join(lockDir, "owner");
  const deadline = Date.now() + LOCK_TIMEOUT_MS;
  let announced = false;
  for (;;) {
    try {
      mkdirSync(lockDir);
      writeFileSync(ownerFile, String(process.pid));
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    const owner = existsSync(ownerFile) ? Number.parseInt(readFileSync(ownerFile, "utf8"), 10) : Number.NaN;
    const stale = Number.isNaN(owner)
      ? Date.now() - (statSync(lockDir, { throwIfNoEntry: false })?.mtimeMs ?? Date.now()) > LOCK_STALE_WITHOUT_OWNER_MS
      : !pidIsAlive(owner);
    if (stale) {
      rmSync(lockDir, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `Timed out waiting for ${lockDir} (held by process ${owner}); remove the directory if no install is running.`,
      );
    }
    if (!announced) {
      log(`waiting for another process (pid ${owner}) to finish installing moto…`);
      announced = true;
    }
    await sleep(500);
  }
  try {
    return await body();
  } finally {
    rmSync(lockDir, { recursive: true, force: true });
  }
}

/** Returns the venv's python, creating the venv and installing moto first when needed. */
export async function ensureMotoVenv(venvDir: string): Promise<string> {
  const python = join(venvDir, "bin", "python");
  if (await motoIsInstalled(python)) return python;

  mkdirSync(venvDir, { recursive: true });
  const lockName = ".layer-sync-install.lock";
  const foreign = readdirSync(venvDir).filter((entry) => entry !== lockName);
  if (foreign.length > 0 && !existsSync(join(venvDir, "pyvenv.cfg"))) {
    throw new Error(`${venvDir} exists but is not a Python virtualenv; remove it or point LAYER_SYNC_VENV elsewhere.`);
  }

  await withLock(join(venvDir, lockName), async () => {
    if (await motoIsInstalled(python)) return; // another process installed it while we waited

    if (!existsSync(python)) {
      log(`creating virtualenv ${venvDir}`);
      const created = await run("python3", ["-m", "venv", venvDir]);
      if (created.spawnError?.code === "ENOENT") {
        throw new Error(
          "python3 was not found on PATH; the AWS integration tests run moto from a Python virtualenv. " +
            "Install Python 3.9+ with its venv module (Debian/Ubuntu: apt-get install python3 python3-venv) and rerun.",
        );
      }
      if (created.code !== 0) {
        throw new Error(
          `python3 -m venv ${venvDir} failed (exit ${created.code}); on Debian/Ubuntu install python3-venv. ` +
            `Output:\n${tail(created.output || String(created.spawnError))}`,
        );
      }
    }

    log(`installing ${MOTO_REQUIREMENT} into ${venvDir} (from PyPI)`);
    const pipArgs = ["-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--quiet"];
    const installed = await run(python, [...pipArgs, MOTO_REQUIREMENT], true);
    if (installed.code !== 0 || !(await motoIsInstalled(python))) {
      throw new Error(
        `pip install '${MOTO_REQUIREMENT}' into ${venvDir} failed (exit ${installed.code}); it needs network access ` +
          `to PyPI. Fix the cause, or delete ${venvDir} to start over. Output:\n${tail(installed.output)}`,
      );
    }
    log(`installed ${MOTO_REQUIREMENT}`);
  });
  return python;
}

interface RunningLauncher {
  child: ChildProcess;
  port: number;
}

function startLauncher(python: string): Promise<RunningLauncher> {
  return new Promise((resolveStart, rejectStart) => {
    const child = spawn(python, [launcherPath, "--host", HOST, "--port", "0", "--exit-on-stdin-eof"], {
      stdio: ["pipe", "pipe", "pipe"],
      cwd: repoRoot,
      env: { ...process.env, PYTHONUNBUFFERED: "1" },
    });
    const stderrLines: string[] = [];
    let ready = false;
    const fail = (reason: string): void => {
      if (ready) return;
      ready = true; // settle once
      clearTimeout(timer);
      child.kill("SIGKILL");
      rejectStart(new Error(`moto_launcher.py did not start: ${reason}\n${stderrLines.slice(-20).join("\n")}`));
    };
    const timer = setTimeout(() => fail(`no "ready" line within ${READY_TIMEOUT_MS} ms`), READY_TIMEOUT_MS);

    createInterface({ input: child.stderr }).on("line", (line) => {
      if (ready) process.stderr.write(`[moto] ${line}\n`);
      else stderrLines.push(line);
    });
    createInterface({ input: child.stdout }).on("line", (line) => {
      const match = /^ready port=(\d+)$/.exec(line);
      if (!ready && match?.[1] !== undefined) {
        ready = true;
        clearTimeout(timer);
        resolveStart({ child, port: Number(match[1]) });
      } else if (ready) {
        process.stderr.write(`[moto] ${line}\n`);
      }
    });
    child.on("error", (error) => fail(error.message));
    child.on("exit", (code, signal) => {
      if (!ready) fail(`exited early (code ${code}, signal ${signal})`);
      else if (code !== 0 && signal !== "SIGKILL") log(`server exited unexpectedly (code ${code}, signal ${signal})`);
    });
  });
}

async function waitUntilAnswering(endpoint: string): Promise<void> {
  const deadline = Date.now() + POLL_TIMEOUT_MS;
  let lastProblem = "no attempt";
  while (Date.now() < deadline) {
    try {
      const response = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(2_000) });
      await response.arrayBuffer();
      if (response.ok) return;
      lastProblem = `HTTP ${response.status}`;
    } catch (error) {
      lastProblem = error instanceof Error ? error.message : String(error);
    }
    await sleep(100);
  }
  throw new Error(`moto at ${endpoint} did not answer GET /moto-api/ within ${POLL_TIMEOUT_MS} ms: ${lastProblem}`);
}

async function stopLauncher(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolveExit) => child.once("exit", () => resolveExit()));
  child.stdin?.end();
  child.kill("SIGTERM");
  const timeout = sleep(5_000, undefined, { ref: false }).then(() => "timeout" as const);
  if ((await Promise.race([exited, timeout])) === "timeout") {
    child.kill("SIGKILL");
    await exited;
  }
}

/** Ensure the venv, start the patched moto server on a free port and wait until it answers. */
export async function startMoto(): Promise<{ endpoint: string; stop: () => Promise<void> }> {
  const venvDir = resolve(repoRoot, process.env.LAYER_SYNC_VENV || ".venv");
  const python = await ensureMotoVenv(venvDir);
  const { child, port } = await startLauncher(python);
  const endpoint = `http://${HOST}:${port}`;
  try {
    await waitUntilAnswering(endpoint);
  } catch (error) {
    await stopLauncher(child);
    throw error;
  }
  return { endpoint, stop: () => stopLauncher(child) };
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const moto = await startMoto();
  project.provide("motoEndpoint", moto.endpoint);
  return moto.stop;
}
