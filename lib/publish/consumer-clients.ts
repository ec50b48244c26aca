/**
 * The clients the consumer sources read with (`ConsumerClients`), as the CLI and the functions make them:
 * endpoints and credentials of the caller's clients come from the SDK's usual configuration (which reads
 * AWS_ENDPOINT_URL itself), like the per-Region clients of `region-clients.ts`.
 */
import { ConfigServiceClient } from "@aws-sdk/client-config-service";
import { LambdaClient } from "@aws-sdk/client-lambda";
import type { OrganizationsClient } from "@aws-sdk/client-organizations";
import { STSClient } from "@aws-sdk/client-sts";
import type { ConsumerClients } from "./consumer-sources.ts";

/**
 * The caller's `organizations` (its owner destroys it) and a new STS client, and factories of the Lambda and
 * Config clients made per read with assumed credentials (the reader destroys those). `close()` destroys the
 * STS client; a warm Lambda keeps the set instead.
 */
export function newConsumerClients(organizations: OrganizationsClient): ConsumerClients & { close(): void } {
  const sts = new STSClient({});
  return {
    organizations,
    sts,
    lambdaAs: (region, credentials) => new LambdaClient({ region, credentials }),
    configAs: (credentials) => new ConfigServiceClient(credentials ? { credentials } : {}),
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    close: () => sts.destroy(),
  };
}
