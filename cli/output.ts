/**
 * What the CLI writes. Stdout carries only the result: JSON with `--json`, a table otherwise. Stderr
 * carries the one-line reason of a failure and, on a terminal only, live progress: one line per package
 * that is rewritten in place as it moves through its stages. Colour only on a terminal and never when
 * `NO_COLOR` is set (https://no-color.org).
 */

import { ConfigError, describeError } from "../lib/common/errors.ts";
import type { Logger } from "../lib/common/log.ts";
import { escapeControls } from "../lib/common/paths.ts";
import { redact } from "../lib/common/redact.ts";
import { formatBytes } from "../lib/common/sizes.ts";
import type { SyncProgressEvent } from "../lib/sync/sync.ts";

export interface CliIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown; isTTY?: boolean; columns?: number };
  /**
   * The process, when the CLI runs as a command: on SIGINT or SIGTERM a sync removes its run directory,
   * aborts its open multipart uploads (waiting at most 2 s) and exits 130 or 143.
   */
  process?: {
    pid: number;
    /**
     * The live environment: the CLI removes `SOURCE_TOKEN` from it (and hides the AWS keys) before any
     * child starts (`cli/secrets.ts`); `main`'s `env` is read for the settings first.
     */
    env?: Record<string, string | undefined>;
    on(signal: "SIGINT" | "SIGTERM", listener: () => void): unknown;
    off(signal: "SIGINT" | "SIGTERM", listener: () => void): unknown;
    exit(code: number): void;
  };
}

type Env = Readonly<Record<string, string | undefined>>;

/** ANSI colours, or none off a terminal and under NO_COLOR. */
export function palette(io: CliIo, env: Env) {
  const on = io.stderr.isTTY === true && (env.NO_COLOR ?? "") === "";
  const paint = (code: number) => (text: string) => (on ? `\x1b[${code}m${text}\x1b[0m` : text);
  return { green: paint(32), yellow: paint(33), red: paint(31), dim: paint(2) };
}

/**
 * A line of text for the terminal from values that came from outside (SSM values, S3 metadata, names, errors
 * quoting them): redacted, and every control character escaped as the sync's errors do (`escapeControls`).
 */
export function printable(text: string): string {
  return escapeControls(redact(text));
}

/**
 * `--json` output: `JSON.stringify` escapes C0 control characters but leaves DEL and C1 (`\x9b` starts an
 * escape sequence on some terminals) as they are; they are written as `\u00XX`, which parses to the same value.
 */
export function jsonText(value: unknown): string {
  return `${JSON.stringify(value, null, 2).replace(/[\x7f-\x9f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)}\n`;
}

/** The failure line(s) on stderr: one line, or a headline and one problem per line for several problems. */
export function writeError(io: CliIo, error: unknown, usageHint: boolean): void {
  if (error instanceof ConfigError && error.problems.length > 1) {
    const lines = error.problems.map((p) => `  ${printable(p)}`);
    io.stderr.write(`layer-sync: invalid configuration (${error.problems.length} problems):\n${lines.join("\n")}\n`);
    return;
  }
  io.stderr.write(
    `layer-sync: ${printable(describeError(error))}${usageHint ? "\nrun layer-sync --help for usage" : ""}\n`,
  );
}

/** `12.3 MiB`-style sizes for people (binary units, as everywhere in layer-sync). */
export const bytes = formatBytes;

/**
 * Rows as aligned columns; the last column is not padded. Cells are `printable`: pass colour codes only
 * through `paint`, applied after the cells are escaped and measured. With `width`, every line fits it: the
 * widest columns are narrowed, never below their header, and cells longer than their column end in `…`.
 */
export function table(
  header: string[],
  rows: string[][],
  paint?: (row: number, column: number, text: string) => string,
  width?: number,
): string {
  const all = [header, ...rows.map((r) => r.map(printable))];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)));
  if (width !== undefined) narrow(widths, header, width - 2 * (header.length - 1));
  const clip = (c: string, w: number) => (c.length > w ? `${c.slice(0, Math.max(w - 1, 0))}…` : c);
  const cell = (row: number, i: number, c: string) => (row > 0 && paint ? paint(row - 1, i, c) : c);
  return `${all
    .map((r, row) =>
      r
        .map((c, i) => {
          const w = widths[i] ?? 0;
          return cell(row, i, i === r.length - 1 ? clip(c, w) : clip(c, w).padEnd(w));
        })
        .join("  "),
    )
    .join("\n")}\n`;
}

/** Narrow the widest column, one character at a time, until the columns add up to `room` or all are at their header. */
function narrow(widths: number[], header: string[], room: number): void {
  let total = widths.reduce((a, b) => a + b, 0);
  while (total > room) {
    let widest = -1;
    widths.forEach((w, i) => {
      if (w > Math.max(header[i]?.length ?? 0, 1) && (widest < 0 || w > (widths[widest] ?? 0))) widest = i;
    });
    if (widest < 0) return;
    widths[widest] = (widths[widest] ?? 0) - 1;
    total--;
  }
}

const STAGE_TEXT: Record<SyncProgressEvent["stage"], string> = {
  resolving: "resolving",
  fetching: "fetching",
  zipping: "zipping",
  uploading: "uploading",
  done: "done",
  skipped: "skipped",
  failed: "failed",
};

/**
 * Live progress on a terminal: one line per package, rewritten in place. Log lines (warnings, errors) are
 * written above the block. Off a terminal it writes nothing at all.
 */
export class Progress {
  private readonly lines = new Map<string, SyncProgressEvent>();
  private drawn = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly colour: ReturnType<typeof palette>;
  readonly enabled: boolean;

  constructor(
    private readonly io: CliIo,
    env: Env,
  ) {
    this.enabled = io.stderr.isTTY === true;
    this.colour = palette(io, env);
  }

  /** The `progress` dependency of the sync core. */
  readonly event = (event: SyncProgressEvent): void => {
    if (!this.enabled) return;
    this.lines.set(event.package, event);
    if (event.stage === "fetching" && !this.timer) {
      this.timer = setInterval(() => this.draw(), 250);
      this.timer.unref();
    }
    this.draw();
  };

  /** A logger that writes above the progress lines (and nothing off a terminal). */
  logger(): Logger {
    const line = (level: string, message: string, extra?: Record<string, unknown>) => {
      if (!this.enabled) return;
      const text = `${level === "info" ? "" : `${level}: `}${message}${extra ? ` ${JSON.stringify(extra)}` : ""}`;
      this.above(redact(text));
    };
    return {
      info: (m, e) => line("info", m, e),
      warn: (m, e) => line("warning", m, e),
      error: (m, e) => line("error", m, e),
    };
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.enabled) this.draw();
  }

  private above(text: string): void {
    this.clear();
    this.io.stderr.write(`${printable(text)}\n`);
    this.draw();
  }

  private clear(): void {
    if (this.drawn) this.io.stderr.write(`\x1b[${this.drawn}A\x1b[0J`);
    this.drawn = 0;
  }

  private render(e: SyncProgressEvent): string {
    const c = this.colour;
    const size = e.readBytes ? e.readBytes() : e.bytes;
    const stage = STAGE_TEXT[e.stage];
    const detail = [size !== undefined && size > 0 ? bytes(size) : "", e.detail ?? ""].filter((s) => s).join(", ");
    const plain = `  ${e.package}  ${stage}${detail ? ` ${detail}` : ""}`;
    // a wrapped line would break the rewrite in place
    const columns = this.io.stderr.columns ?? 120;
    if (plain.length >= columns) return `${plain.slice(0, columns - 2)}…`;
    const paint =
      e.stage === "done" ? c.green : e.stage === "skipped" ? c.yellow : e.stage === "failed" ? c.red : String;
    return `  ${e.package}  ${paint(stage)}${detail ? ` ${c.dim(detail)}` : ""}`;
  }

  private draw(): void {
    if (!this.enabled) return;
    this.clear();
    const rows = [...this.lines.values()].map((e) => this.render(e));
    if (rows.length) this.io.stderr.write(`${rows.join("\n")}\n`);
    this.drawn = rows.length;
  }
}
