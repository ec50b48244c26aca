/**
 * `layer-sync promote --package NAME [flags] [--json]`: release the version on the canary channel
 * (`{PARAMETER_PREFIX}/{package}/canary-arn`) to everyone, in every Region: grant the configured principals,
 * move layer-version-arn, record it in the history and delete canary-arn. It is the publish core run with
 * `promote` (`lib/publish/region.ts` step 3c), so a Region whose canary version is already released, or that
 * has none, is left as it is. PROMOTE_AFTER_HOURS does the same from the daily reconcile.
 */

import { type Environment, loadPublishConfig } from "../lib/common/config.ts";
import { redact } from "../lib/common/redact.ts";
import { failureMessage, runPublish } from "../lib/publish/publish.ts";
import { listOption, noPositionals, type ParsedCommand, UsageError } from "./args.ts";
import { publishClients, releaseEventSink } from "./aws-clients.ts";
import { type CliIo, Progress } from "./output.ts";
import { publishTable } from "./publish.ts";

export async function promoteCommand(parsed: ParsedCommand, env: Environment, io: CliIo): Promise<number> {
  noPositionals(parsed);
  const packages = listOption(parsed, "package");
  if (packages.length !== 1) throw new UsageError("promote takes exactly one --package NAME");
  const clients = publishClients();
  try {
    const config = loadPublishConfig({ env, flags: parsed.settings }, { homeRegion: await clients.homeRegion() });
    const logger = new Progress(io, env).logger();
    const releases = releaseEventSink(config.summaryEventBus, logger);
    const summary = await runPublish(
      config,
      { kind: "packages", packages, trigger: "manual" },
      {
        ...clients.home,
        regionClients: clients.regionClients,
        clock: () => new Date(),
        logger,
        promote: true,
        onRelease: releases.onRelease,
      },
    );
    await releases.flush();
    io.stdout.write(parsed.values.json ? `${JSON.stringify(summary, null, 2)}\n` : publishTable(summary));
    const failed = summary.packages.some((p) => p.error !== undefined);
    if (failed) io.stderr.write(`${redact(`layer-sync: ${failureMessage(summary)}`)}\n`);
    return failed ? 1 : 0;
  } finally {
    clients.close();
  }
}
