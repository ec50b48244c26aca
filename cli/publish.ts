/**
 * `layer-sync publish [--package NAME]... [flags]`: the same core as the publish handler. Without
 * `--package` it reconciles every package under the parameter prefix. Prints the publish summary (JSON) on
 * stdout; when a package failed, a one-line reason goes to stderr and the exit code is 1.
 */
import { LambdaClient } from "@aws-sdk/client-lambda";
import { OrganizationsClient } from "@aws-sdk/client-organizations";
import { RAMClient } from "@aws-sdk/client-ram";
import { S3Client } from "@aws-sdk/client-s3";
import { SSMClient } from "@aws-sdk/client-ssm";
import { failureMessage, type PublishRequest, type RegionClients, runPublish } from "../lib/publish/publish.ts";
import { loadPublishConfig } from "../lib/shared/config.ts";
import { parsePublishEvent } from "../lib/shared/events.ts";
import { redact } from "../lib/shared/redact.ts";
import type { PublishCommand } from "./main.ts";

export const publishCommand: PublishCommand = async ({ env, flags, packages, io, logger }) => {
  const clients = {
    lambda: new LambdaClient({}),
    s3: new S3Client({}),
    ssm: new SSMClient({}),
    ram: new RAMClient({}),
    organizations: new OrganizationsClient({}),
  };
  const regional = new Map<string, RegionClients>();
  const regionClients = (region: string): RegionClients => {
    let c = regional.get(region);
    if (!c) {
      c = {
        lambda: new LambdaClient({ region }),
        s3: new S3Client({ region }),
        ssm: new SSMClient({ region }),
        ram: new RAMClient({ region }),
      };
      regional.set(region, c);
    }
    return c;
  };
  try {
    const homeRegion = await clients.lambda.config.region().catch(() => undefined);
    const config = loadPublishConfig({ env, flags }, { homeRegion });
    const parsed = parsePublishEvent(packages.length ? { packages } : {}, config.artifacts.parameterPrefix);
    if (parsed.kind === "ignored") return { output: { ignored: parsed.reason }, failed: false };
    const request: PublishRequest = parsed;
    const summary = await runPublish(config, request, { ...clients, regionClients, clock: () => new Date(), logger });
    const failed = summary.packages.some((p) => p.error !== undefined);
    if (failed) io.stderr.write(`${redact(`layer-sync: ${failureMessage(summary)}`)}\n`);
    return { output: summary, failed };
  } finally {
    for (const client of Object.values(clients)) client.destroy();
    for (const set of regional.values()) for (const client of Object.values(set)) client.destroy();
  }
};
