/**
 * `layer-sync rollback --package NAME [--to VERSION] [--regions R,..] [--json]`: the same core as the publish
 * handler's `{"rollback": {"package", "to"?}}` (`lib/publish/rollback.ts`). Points the package's
 * layer-version-arn back at the previous version from the history (or at VERSION) in every Region of
 * PUBLISH_REGIONS (or those given), without publishing. A table or, with `--json`, the rollback summary on
 * stdout; exit 1 with a one-line reason when a Region failed.
 */

import { type Environment, loadPublishConfig } from "../lib/common/config.ts";
import { redact } from "../lib/common/redact.ts";
import { newConsumerClients } from "../lib/publish/consumer-clients.ts";
import { type RollbackSummary, rollbackReleaseEvents, runRollback } from "../lib/publish/rollback.ts";
import { listOption, noPositionals, type ParsedCommand, stringOption, UsageError } from "./args.ts";
import { publishClients, releaseEventSink } from "./aws-clients.ts";
import { type CliIo, Progress, table } from "./output.ts";

export function rollbackTable(summary: RollbackSummary): string {
  const rows = summary.regions.map((r) => [
    summary.package,
    r.region,
    r.previous ? String(r.previous.version) : "-",
    r.current ? String(r.current.version) : "-",
    r.error ? `failed: ${r.error}` : r.changed ? "rolled back" : "already there",
  ]);
  return table(["PACKAGE", "REGION", "FROM", "TO", "STATE"], rows);
}

export async function rollbackCommand(parsed: ParsedCommand, env: Environment, io: CliIo): Promise<number> {
  noPositionals(parsed);
  const packages = listOption(parsed, "package");
  if (packages.length !== 1) throw new UsageError("rollback takes exactly one --package NAME");
  const toText = stringOption(parsed, "to");
  const to = toText === undefined ? undefined : Number(toText);
  if (to !== undefined && !(Number.isInteger(to) && to >= 1)) {
    throw new UsageError(`--to must be a layer version number (1 or more), got "${toText}"`);
  }
  const clients = publishClients();
  try {
    const homeRegion = await clients.homeRegion();
    // --regions stands for PUBLISH_REGIONS, as for status (the Regions to work in)
    const config = loadPublishConfig({ env, flags: parsed.settings }, { homeRegion });
    const logger = new Progress(io, env).logger();
    const consumers = newConsumerClients(clients.home.organizations);
    const summary = await runRollback(
      config,
      { package: packages[0] ?? "", to },
      {
        ...clients.home,
        regionClients: clients.regionClients,
        clock: () => new Date(),
        logger,
        consumers,
        ...(homeRegion ? { region: homeRegion } : {}),
      },
    ).finally(() => consumers.close());
    await releaseEventSink(config.summaryEventBus, logger).flush(rollbackReleaseEvents(summary));
    io.stdout.write(parsed.values.json ? `${JSON.stringify(summary, null, 2)}\n` : rollbackTable(summary));
    if (summary.error !== undefined) {
      io.stderr.write(`${redact(`layer-sync: rollback of ${summary.package} failed: ${summary.error}`)}\n`);
      return 1;
    }
    return 0;
  } finally {
    clients.close();
  }
}
