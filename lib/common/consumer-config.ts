/**
 * Where the functions that use the layers are read from (`lib/publish/consumers.ts`), as parsed by
 * `config.ts` from CONSUMER_SOURCE, CONSUMER_AGGREGATOR, CONSUMER_AGGREGATOR_ROLE_ARN and CONSUMER_READ_ROLE.
 */
export interface ConsumerConfig {
  /** `CONSUMER_SOURCE`: `none` reads nothing (retention as before). */
  source: "none" | "roles" | "config";
  /** `CONSUMER_AGGREGATOR`: the AWS Config aggregator of the `config` source. */
  aggregator: string | undefined;
  /** `CONSUMER_AGGREGATOR_ROLE_ARN`: assumed to query an aggregator in another account. */
  aggregatorRoleArn: string | undefined;
  /** `CONSUMER_READ_ROLE`: the role name the `roles` source assumes in every account. */
  readRole: string;
}

export const DEFAULT_CONSUMER_READ_ROLE = "layer-sync-consumer-read";
