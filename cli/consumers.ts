/**
 * `layer-sync consumers [--package NAME]... [--regions R,..] [--json]`: which Lambda functions, in which
 * accounts and Regions, use which version of each package's layer (`lib/publish/consumers.ts`). A table on
 * stdout (under 160 columns), or the consumers JSON with `--json`. Writes nothing.
 *
 * Exit codes: 0 every account was read; 1 some account (or Region) could not be read, the output still
 * lists what was read; 2 usage or configuration, including CONSUMER_SOURCE `none`.
 */

import { type Environment, loadConsumersConfig } from "../lib/common/config.ts";
import { ConfigError } from "../lib/common/errors.ts";
import { newConsumerClients } from "../lib/publish/consumer-clients.ts";
import { callerIdentity } from "../lib/publish/consumer-sources.ts";
import { type ConsumersReport, inventoryReader, readConsumers } from "../lib/publish/consumers.ts";
import { discoverPackages } from "../lib/publish/parameters.ts";
import { listOption, noPositionals, type ParsedCommand } from "./args.ts";
import { publishClients } from "./aws-clients.ts";
import { type CliIo, palette, table } from "./output.ts";

export const CHOOSE_SOURCE =
  "CONSUMER_SOURCE (--consumer-source) is none, so there are no consumers to read: choose roles (assume CONSUMER_READ_ROLE in every account) or config (query the AWS Config aggregator CONSUMER_AGGREGATOR)";

/** Cut a cell to `max` characters, marking the cut. */
function cut(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

export function consumersTable(report: ConsumersReport, colour: ReturnType<typeof palette>): string {
  const rows = report.packages.flatMap((p) =>
    p.regions.flatMap((r) => {
      if (r.error !== undefined) return [[cut(p.name, 20), r.region, "-", colour.red(cut(r.error, 90))]];
      return r.functions.map((f) => [
        cut(p.name, 20),
        r.region,
        f.account,
        cut(f.functionName, 36),
        cut(f.runtime ?? "-", 14),
        f.architecture ?? "-",
        String(f.version),
        f.latest ? "yes" : `no (${r.latestVersion ?? "-"})`,
        f.compatible === null ? "unknown" : f.compatible ? "yes" : colour.red("no"),
        f.drift ?? "",
      ]);
    }),
  );
  const head = ["PACKAGE", "REGION", "ACCOUNT", "FUNCTION", "RUNTIME", "ARCH", "VER", "LATEST", "COMPAT", "DRIFT"];
  const body = rows.length ? table(head, rows) : "no function uses these layers\n";
  const { read, failed } = report.accounts;
  const foot = [`${read} account(s) read`];
  for (const f of failed) foot.push(colour.red(cut(`unreadable ${f.account}: ${f.error}`, 159)));
  return `${body}${foot.join("\n")}\n`;
}

export async function consumersCommand(parsed: ParsedCommand, env: Environment, io: CliIo): Promise<number> {
  noPositionals(parsed);
  const config = loadConsumersConfig({ env, flags: parsed.settings });
  if ((config.consumers?.source ?? "none") === "none") throw new ConfigError(CHOOSE_SOURCE);
  const clients = publishClients();
  const consumers = newConsumerClients(clients.home.organizations);
  try {
    const homeRegion = await clients.homeRegion();
    if (!homeRegion) throw new ConfigError("no AWS Region is configured; set AWS_REGION (the home Region)");
    const prefix = config.artifacts.parameterPrefix;
    const requested = listOption(parsed, "package");
    const packages = async () => (requested.length ? requested : discoverPackages(clients.home.ssm, prefix));
    const inventory = inventoryReader(config, consumers, packages);
    if (!inventory) throw new ConfigError(CHOOSE_SOURCE);
    const owner = (await callerIdentity(consumers.sts)).account;
    const report = await readConsumers(
      config,
      { packages: await packages() },
      {
        ssm: clients.home.ssm,
        region: homeRegion,
        regionClients: (region) => (region === homeRegion ? clients.home : clients.regionClients(region)),
        inventory,
        owner,
      },
    );
    io.stdout.write(
      parsed.values.json ? `${JSON.stringify(report, null, 2)}\n` : consumersTable(report, palette(io, env)),
    );
    const regionFailed = report.packages.some((p) => p.regions.some((r) => r.error !== undefined));
    return report.accounts.failed.length > 0 || regionFailed ? 1 : 0;
  } finally {
    consumers.close();
    clients.close();
  }
}
