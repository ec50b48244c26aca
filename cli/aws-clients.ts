/**
 * The AWS clients of `publish` and `status`: the home Region's (from the SDK's usual configuration) and,
 * made on first use, one set per other Region (`regionClientCache`, shared with the publish function).
 * `close()` destroys every client made.
 */
import { EventBridgeClient } from "@aws-sdk/client-eventbridge";
import { LambdaClient } from "@aws-sdk/client-lambda";
import { OrganizationsClient } from "@aws-sdk/client-organizations";
import { RAMClient } from "@aws-sdk/client-ram";
import { S3Client } from "@aws-sdk/client-s3";
import { SSMClient } from "@aws-sdk/client-ssm";
import type { Logger } from "../lib/common/log.ts";
import { regionClientCache } from "../lib/publish/region-clients.ts";
import { putReleaseEvents, type ReleaseEvent } from "../lib/publish/release-events.ts";

export function publishClients() {
  const home = {
    lambda: new LambdaClient({}),
    s3: new S3Client({}),
    ssm: new SSMClient({}),
    ram: new RAMClient({}),
    organizations: new OrganizationsClient({}),
  };
  const regional = regionClientCache();
  return {
    home,
    regionClients: regional.clientsFor,
    /** The home Region, or undefined when the SDK has none configured. */
    homeRegion: () => home.lambda.config.region().catch(() => undefined),
    close(): void {
      for (const client of Object.values(home)) client.destroy();
      regional.destroy();
    },
  };
}

/**
 * Release events from the CLI, as the publish function puts them: with SUMMARY_EVENT_BUS set in the
 * environment, every move of a Region's layer-version-arn (publish, promote, rollback) becomes one
 * `Layer Sync Release` event on that bus. `flush` puts what was collected; without a bus it does nothing.
 */
export function releaseEventSink(bus: string | undefined, logger: Logger) {
  const events: ReleaseEvent[] = [];
  return {
    onRelease: (event: ReleaseEvent) => {
      events.push(event);
    },
    async flush(more: readonly ReleaseEvent[] = []): Promise<void> {
      events.push(...more);
      if (!bus || events.length === 0) return;
      const client = new EventBridgeClient({});
      try {
        await putReleaseEvents(client, bus, events, logger);
      } finally {
        client.destroy();
      }
    },
  };
}
