/**
 * Run summaries on EventBridge: each handler run puts one event (`source: layer-sync`), so failures and
 * results can be routed to SNS, chat or dashboards. A failure to put the event is logged, never fatal.
 */
import { type EventBridgeClient, PutEventsCommand } from "@aws-sdk/client-eventbridge";
import { describeError } from "../shared/errors.ts";
import type { Logger } from "../shared/log.ts";

export const SUMMARY_SOURCE = "layer-sync";

export async function putSummaryEvent(
  client: EventBridgeClient,
  bus: string,
  detailType: "Layer Sync Summary" | "Layer Publish Summary",
  detail: unknown,
  logger: Logger,
): Promise<void> {
  let text = JSON.stringify(detail);
  if (Buffer.byteLength(text) > 200_000) text = JSON.stringify({ truncated: true, note: "summary over 200 KB" });
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
