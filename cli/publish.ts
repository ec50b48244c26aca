/**
 * `layer-sync publish [--package NAME]... [flags] [--json]`: the same core as the publish handler. Without
 * `--package` it reconciles every package under the parameter prefix. Prints the publish summary as JSON
 * with `--json`, a table otherwise; when a package failed, a one-line reason goes to stderr and the exit
 * code is 1.
 */

import { type Environment, loadPublishConfig } from "../lib/common/config.ts";
import { parsePublishEvent } from "../lib/common/events.ts";
import { newConsumerClients } from "../lib/publish/consumer-clients.ts";
import { failureMessage, type PublishRequest, type PublishSummary, runPublish } from "../lib/publish/publish.ts";
import { listOption, noPositionals, type ParsedCommand } from "./args.ts";
import { publishClients, releaseEventSink } from "./aws-clients.ts";
import { type CliIo, jsonText, Progress, printable, table } from "./output.ts";

/** One row per package and Region: what this run did there. */
export function publishTable(summary: PublishSummary): string {
  const rows = summary.packages.flatMap((p) => {
    const regions = p.regions.length ? p.regions : [{ region: "-", ...p }];
    return regions.map((r) => [
      p.name,
      r.region,
      r.version === null ? "-" : String(r.version),
      r.error ? `failed: ${r.error}` : r.published ? "published" : (r.reason ?? "-"),
      r.share ? `shared with ${r.share.principals.length}` : "-",
      r.layerVersionArn ?? "-",
    ]);
  });
  const head = `${summary.trigger} run, ${summary.packages.length} package(s)\n`;
  return head + table(["PACKAGE", "REGION", "VERSION", "STATE", "SHARE", "LAYER VERSION ARN"], rows);
}

export async function publishCommand(parsed: ParsedCommand, env: Environment, io: CliIo): Promise<number> {
  noPositionals(parsed);
  const packages = listOption(parsed, "package");
  const clients = publishClients();
  try {
    const config = loadPublishConfig({ env, flags: parsed.settings }, { homeRegion: await clients.homeRegion() });
    const parsedEvent = parsePublishEvent(packages.length ? { packages } : {}, config.artifacts.parameterPrefix);
    if (parsedEvent.kind === "ignored" || parsedEvent.kind === "rollback") {
      io.stdout.write(
        jsonText({ ignored: parsedEvent.kind === "ignored" ? parsedEvent.reason : "use layer-sync rollback" }),
      );
      return 0;
    }
    const request: PublishRequest = parsedEvent;
    const logger = new Progress(io, env).logger();
    const consumers = newConsumerClients(clients.home.organizations);
    const releases = releaseEventSink(config.summaryEventBus, logger);
    const deps = {
      ...clients.home,
      regionClients: clients.regionClients,
      clock: () => new Date(),
      logger,
      consumers,
      onRelease: releases.onRelease,
    };
    const summary = await runPublish(config, request, deps).finally(() => consumers.close());
    await releases.flush();
    io.stdout.write(parsed.values.json ? jsonText(summary) : publishTable(summary));
    const failed = summary.packages.some((p) => p.error !== undefined);
    if (failed) io.stderr.write(`${printable(`layer-sync: ${failureMessage(summary)}`)}\n`);
    return failed ? 1 : 0;
  } finally {
    clients.close();
  }
}
