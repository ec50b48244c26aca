/**
 * The clients of the Regions a publish reaches besides the home one: one set per Region, made on first use
 * and kept, shared by the publish function and the CLI. Endpoints and credentials come from the SDK's usual
 * configuration (which reads AWS_ENDPOINT_URL itself); only the Region is set here.
 */
import { LambdaClient } from "@aws-sdk/client-lambda";
import { RAMClient } from "@aws-sdk/client-ram";
import { S3Client } from "@aws-sdk/client-s3";
import { SSMClient } from "@aws-sdk/client-ssm";
import type { RegionClientFactory, RegionClients } from "./region.ts";

export interface RegionClientCache {
  /** The clients of `region`, made on its first call and returned again after. */
  clientsFor: RegionClientFactory;
  /** Destroy every client made so far (the CLI, when its command ends). */
  destroy(): void;
}

/** A cache of per-Region clients; each caller that owns a lifetime (a warm Lambda, one CLI command) makes one. */
export function regionClientCache(): RegionClientCache {
  const made = new Map<string, RegionClients>();
  return {
    clientsFor: (region) => {
      let clients = made.get(region);
      if (!clients) {
        clients = {
          lambda: new LambdaClient({ region }),
          s3: new S3Client({ region }),
          ssm: new SSMClient({ region }),
          ram: new RAMClient({ region }),
        };
        made.set(region, clients);
      }
      return clients;
    },
    destroy: () => {
      for (const set of made.values()) for (const client of Object.values(set)) client.destroy();
      made.clear();
    },
  };
}
