/**
 * Keeps what handlers under test print out of the test output: their Powertools logs (log level SILENT, read
 * when `handlers/runtime.ts` builds its logger) and their EMF metrics (disabled; the metrics code still runs).
 * A test that asserts on logs raises the level and captures them with `captureHandlerLogs()` (`logs.ts`).
 * `LAYER_SYNC_TEST_LOGS=1` in the shell prints them again, for debugging.
 */
export function quietHandlers(): void {
  process.env.POWERTOOLS_METRICS_DISABLED ??= "true";
  if (process.env.LAYER_SYNC_TEST_LOGS === "1") return;
  // the Lambda runtime's level (AWS_LAMBDA_LOG_LEVEL) would win over Powertools' own
  delete process.env.AWS_LAMBDA_LOG_LEVEL;
  delete process.env.LOG_LEVEL;
  process.env.POWERTOOLS_LOG_LEVEL = "SILENT";
}
