/**
 * A package's RAM share in one Region (`layer-sync-{package}`): the parameters consumers read, each added
 * once it exists (RAM shares only resources that exist):
 *
 * - `{prefix}/{package}/layer-version-arn`, the released version;
 * - `{prefix}/{package}/history`, the versions consumers were pointed to;
 * - `{prefix}/{package}/canary-arn`, the version on the canary channel, while there is one. Promoting
 *   deletes that parameter, and RAM drops a deleted resource from the share; the next canary version's
 *   parameter is added again.
 *
 * Resources are only ever added here (`ensureResourceShare` never removes one); principals converge.
 */
import type { RAMClient } from "@aws-sdk/client-ram";
import { PublishError } from "../common/errors.ts";
import { parseLayerArn } from "./layers.ts";
import { ssmParameterArn } from "./parameters.ts";
import { ensureResourceShare, resourceShareName, type ShareResult } from "./share.ts";

/**
 * Ensure the package's share in `region` holds `parameters` (names, the first one leading) and is shared with
 * `principals`. `layerVersionArn` is a version of this account in `region`: it gives the parameters' ARNs.
 */
export async function sharePackageParameters(
  ram: RAMClient,
  args: {
    pkg: string;
    region: string;
    layerVersionArn: string;
    parameters: readonly [string, ...string[]];
    principals: readonly string[];
    clock: () => Date;
  },
): Promise<ShareResult> {
  const arn = parseLayerArn(args.layerVersionArn);
  if (!arn) {
    throw new PublishError(
      `Lambda returned the layer version ARN "${args.layerVersionArn}", which layer-sync cannot parse`,
    );
  }
  if (arn.region !== args.region) {
    throw new PublishError(
      `Lambda in ${args.region} returned the layer version ARN "${args.layerVersionArn}" of another Region; check the AWS endpoint configuration`,
    );
  }
  const [first, ...more] = args.parameters.map((name) =>
    ssmParameterArn(arn.partition, args.region, arn.account, name),
  );
  return ensureResourceShare(ram, {
    name: resourceShareName(args.pkg),
    resourceArn: first ?? "",
    moreResourceArns: more,
    principals: args.principals,
    tokenWindow: args.clock().toISOString().slice(0, 13),
  });
}
