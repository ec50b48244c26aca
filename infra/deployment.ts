/**
 * The stacks of a `cdk deploy`: the home LayerSyncStack, and one RegionalBucketStack per publishing Region
 * other than the home one (`{stackName}-Bucket-{region}`), each deployed before the home stack. The home
 * stack names those buckets from the account and Region (infra/constructs/regions.ts), so there is no
 * cross-Region reference, only a deployment order.
 */
import type { App, Environment } from "aws-cdk-lib";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import { RegionalBucketStack } from "./regional-stack.ts";
import type { AppConfig } from "./settings.ts";
import { LayerSyncStack } from "./stack.ts";

export interface Deployment {
  readonly stack: LayerSyncStack;
  readonly regional: readonly RegionalBucketStack[];
}

export function layerSyncDeployment(
  app: App,
  config: AppConfig,
  env: Environment,
  code?: { readonly sync: lambda.Code; readonly publish: lambda.Code; readonly build?: lambda.Code },
): Deployment {
  const stack = new LayerSyncStack(app, config.stackName, {
    env,
    settings: config.settings,
    options: config.options,
    ...(code && { code }),
  });
  const regional: RegionalBucketStack[] = [];
  for (const region of config.settings.publishRegions ?? []) {
    if (region === env.region) continue;
    const bucketStack = new RegionalBucketStack(app, `${config.stackName}-Bucket-${region}`, {
      env: { account: env.account, region },
      bucketNamePrefix: config.options.regionBucketNamePrefix,
    });
    stack.addStackDependency(bucketStack, "the home stack's functions publish from the regional buckets");
    regional.push(bucketStack);
  }
  return { stack, regional };
}
