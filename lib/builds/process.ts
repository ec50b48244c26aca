/**
 * Child processes for builds (pip, npm, docker): bounded in time, output captured (the last
 * `OUTPUT_TAIL` bytes of each stream), an explicit environment (nothing inherited), and errors that fit
 * on one line with no credential in them: secrets are registered for redaction before the child starts,
 * and messages pass through `redact()` again.
 */
import { spawn } from "node:child_process";
import { BuildError } from "../common/errors.ts";
import { redact, registerSecret } from "../common/redact.ts";

/** Bytes of each output stream kept for messages. */
export const OUTPUT_TAIL = 64 * 1024;

export interface RunOptions {
  cwd: string;
  /** The child's whole environment. */
  env: Readonly<Record<string, string>>;
  timeoutMs: number;
  /** Values that must never appear in any message (index credentials). */
  secrets?: readonly (string | undefined)[];
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

class Tail {
  private chunks: Buffer[] = [];
  private bytes = 0;
  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    while (this.bytes > OUTPUT_TAIL && this.chunks.length > 1) this.bytes -= (this.chunks.shift() as Buffer).length;
  }
  text(): string {
    return Buffer.concat(this.chunks).subarray(-OUTPUT_TAIL).toString("utf8");
  }
}

/**
 * Run `command args…`; resolves with the exit code and output, whatever the code. Rejects with
 * `BuildError` when the command cannot start or runs past its deadline (the child and its process group
 * are killed).
 */
export function runCommand(command: string, args: readonly string[], options: RunOptions): Promise<RunResult> {
  for (const s of options.secrets ?? []) registerSecret(s);
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: { ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    const out = new Tail();
    const err = new Tail();
    child.stdout.on("data", (c: Buffer) => out.push(c));
    child.stderr.on("data", (c: Buffer) => err.push(c));
    let timedOut = false;
    const kill = () => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
      } catch {
        child.kill("SIGKILL");
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, options.timeoutMs);
    child.on("error", (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const why =
        error.code === "ENOENT"
          ? `${command} was not found on PATH; install it or use another builder (--builder docker)`
          : `${command} could not start: ${error.message}`;
      reject(new BuildError(why, { cause: error }));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (timedOut) {
        reject(
          new BuildError(
            `${command} ${args[0] ?? ""} did not finish within ${Math.round(options.timeoutMs / 1000)} s and was stopped`,
          ),
        );
        return;
      }
      resolve({ code: code ?? (signal ? 128 : 1), stdout: out.text(), stderr: err.text() });
    });
  });
}

/** Lines that only point elsewhere: npm's log-file notes, docker's "Run 'docker run --help' …". */
const NOISE = /^(npm (error|ERR!) (A complete log|Log files)|(Run|See) '[\w -]+ --help'( for more information)?\.?$)/i;

/** The last meaningful line of a tool's output, redacted, for a one-line message. */
export function lastLine(text: string, max = 300): string {
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== "" && !NOISE.test(l));
  const line = lines.findLast((l) => /error/i.test(l)) ?? lines.at(-1) ?? "no output";
  const clean = redact(line.replace(/\s+/g, " "));
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}
