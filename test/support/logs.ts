/**
 * The handlers' logs in tests. `test/support/setup.ts` sets `POWERTOOLS_LOG_LEVEL=SILENT`, so handlers under
 * test print nothing into the test output. A test that asserts on logs (or scans them for tokens) calls
 * `captureHandlerLogs()`: it raises the handlers' Powertools logger to `level` (for every invocation) and keeps what the worker
 * writes to its stdout and stderr (where Powertools prints) instead of printing it, until `restore()`.
 */
import type { LogLevel } from "@aws-lambda-powertools/logger/types";
import { logger } from "../../handlers/runtime.ts";

export interface CapturedLogs {
  /** Everything written so far, in order. */
  text(): string;
  /** Chunks as written, each with the stream it went to. */
  chunks(): { stream: "stdout" | "stderr"; text: string }[];
  /** Put the streams and the log level back. */
  restore(): void;
}

export function captureHandlerLogs(level: LogLevel = "INFO"): CapturedLogs {
  const captured: { stream: "stdout" | "stderr"; text: string }[] = [];
  const before = logger.getLevelName();
  logger.setLogLevel(level);
  // the middleware puts the level back to the one the logger was built with (SILENT) on every invocation
  // after the first; keep the raised one while capturing
  const refresh = logger.refreshSampleRateCalculation;
  logger.refreshSampleRateCalculation = function (this: typeof logger) {
    refresh.call(this);
    this.setLogLevel(level);
  };
  const restore: (() => void)[] = [
    () => {
      logger.refreshSampleRateCalculation = refresh;
      logger.setLogLevel(before);
    },
  ];
  for (const [name, stream] of [
    ["stdout", process.stdout],
    ["stderr", process.stderr],
  ] as const) {
    const original = stream.write;
    stream.write = ((chunk: string | Uint8Array, ...rest: unknown[]): boolean => {
      captured.push({ stream: name, text: typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8") });
      const callback = rest.find((r) => typeof r === "function") as (() => void) | undefined;
      callback?.();
      return true;
    }) as typeof stream.write;
    restore.push(() => {
      stream.write = original;
    });
  }
  return {
    text: () => captured.map((c) => c.text).join(""),
    chunks: () => [...captured],
    restore: () => {
      for (const r of restore.splice(0).reverse()) r();
    },
  };
}
