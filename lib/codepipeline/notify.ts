/**
 * Run summaries on EventBridge: each handler run puts one event (`source: layer-sync`), so failures and
 * results can be routed to SNS, chat or dashboards. A failure to put the event is logged, never fatal.
 */
import { type EventBridgeClient, PutEventsCommand } from "@aws-sdk/client-eventbridge";
import { describeError, summarise } from "../common/errors.ts";
import type { Logger } from "../common/log.ts";

export const SUMMARY_SOURCE = "layer-sync";

export async function putSummaryEvent(
  client: EventBridgeClient,
  bus: string,
  detailType: "Layer Sync Summary" | "Layer Publish Summary",
  detail: unknown,
  logger: Logger,
): Promise<void> {
  const text = JSON.stringify(boundSummary(detail));
  try {
    const res = await client.send(
      new PutEventsCommand({
        Entries: [{ EventBusName: bus, Source: SUMMARY_SOURCE, DetailType: detailType, Detail: text }],
      }),
    );
    if (res.FailedEntryCount) {
      logger.warn("the summary event was not accepted", {
        code: res.Entries?.[0]?.ErrorCode,
        message: res.Entries?.[0]?.ErrorMessage,
      });
    }
  } catch (error) {
    logger.warn("putting the summary event failed", { error: describeError(error) });
  }
}

/** A summary stays under this many bytes of JSON: EventBridge takes 256 KB per entry, Lambda's async results 256 KB. */
export const SUMMARY_MAX_BYTES = 200_000;

const size = (value: unknown) => Buffer.byteLength(JSON.stringify(value));

/**
 * `summary`, or when its JSON is over `maxBytes` a smaller one: each package's warnings become the first
 * three and a count, then packages are dropped (failed ones kept first) and `omittedPackages` counts them.
 */
export function boundSummary<T>(summary: T, maxBytes = SUMMARY_MAX_BYTES): T | (T & { omittedPackages: number }) {
  if (size(summary) <= maxBytes) return summary;
  const packages = (summary as { packages?: unknown }).packages;
  if (!Array.isArray(packages)) return { truncated: true, note: `summary over ${maxBytes} bytes` } as T;
  const shrunk = (packages as Record<string, unknown>[]).map((p) =>
    Array.isArray(p.warnings) && p.warnings.length > 3 ? { ...p, warnings: [summarise(p.warnings.map(String), 3)] } : p,
  );
  if (size({ ...summary, packages: shrunk }) <= maxBytes) return { ...summary, packages: shrunk };
  const ranked = [...shrunk.filter((p) => p.error), ...shrunk.filter((p) => !p.error)];
  // the most packages that fit: the summary without packages (its count at its widest), plus each package and a comma
  let room = maxBytes - size({ ...summary, packages: [], omittedPackages: shrunk.length });
  let kept = 0;
  for (const p of ranked) {
    room -= size(p) + (kept ? 1 : 0);
    if (room < 0) break;
    kept++;
  }
  return { ...summary, packages: ranked.slice(0, kept), omittedPackages: shrunk.length - kept };
}
