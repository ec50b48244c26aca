/**
 * `layer-sync status [--package NAME]... [--regions R,..] [--json]`: what is published and shared where,
 * read without writing anything (`lib/publish/status.ts`). A table on stdout, or the status JSON with
 * `--json`. A package or Region that is out of step is marked, and listed below the table with its problems
 * and what to run to fix it: the command carries this run's setting flags that it reads.
 *
 * Exit codes, like `terraform plan -detailed-exitcode` (but 2 stays "usage or configuration", as for
 * every command): 0 everything is in step, 3 something is out of step, 1 a Region could not be read.
 */

import { type Environment, loadPublishConfig } from "../lib/common/config.ts";
import { wrapCommand, wrapText } from "../lib/common/shell.ts";
import { newConsumerClients } from "../lib/publish/consumer-clients.ts";
import { callerIdentity } from "../lib/publish/consumer-sources.ts";
import { inventoryReader } from "../lib/publish/consumers.ts";
import { discoverPackages } from "../lib/publish/parameters.ts";
import { type RegionStatus, readStatus, type StatusReport } from "../lib/publish/status.ts";
import { listOption, noPositionals, type ParsedCommand } from "./args.ts";
import { publishClients } from "./aws-clients.ts";
import { type CliIo, jsonText, palette, printable, table } from "./output.ts";

/** The exit code when the state was read but something is out of step. */
export const OUT_OF_STEP_EXIT = 3;

/** The width every line of the status output fits in. */
export const STATUS_WIDTH = 160;

/**
 * The table, one row per package and Region with short cells (long ones end in `…`), then, for each Region out
 * of step, its full problems and the commands that fix it, wrapped at STATUS_WIDTH columns. `✓` in step, `✗`
 * out of step, `○` in step as far as was checked, with a note (sharing, without any SHARE_* setting).
 */
export function statusTable(report: StatusReport, colour: ReturnType<typeof palette>): string {
  const withConsumers = report.consumerAccounts !== undefined;
  const withRelease = report.packages.some((p) => p.regions.some((r) => r.release));
  const regions = report.packages.flatMap((p) => p.regions.map((r) => ({ p, r })));
  const mark = (r: RegionStatus) => (r.outOfStep ? "✗" : r.notes?.length ? "○" : "✓");
  const rows = regions.map(({ p, r }) => [
    mark(r),
    p.name,
    r.region,
    r.version === null ? "-" : String(r.version),
    r.parameterMatches ? "yes" : "no",
    r.shared ? r.principals.join(",") || "-" : "-",
    (p.commit ?? "-").slice(0, 7),
    ...(withConsumers
      ? [r.consumers ? `${r.consumers.latest}/${r.consumers.older}/${r.consumers.incompatible}` : "-"]
      : []),
    ...(withRelease ? [releaseText(r.release)] : []),
    r.outOfStep ? [...r.problems, r.error].filter(Boolean).join("; ") : (r.notes ?? []).join("; "),
  ]);
  if (!rows.length) return "no packages under the parameter prefix\n";
  const headers = [
    "",
    "PACKAGE",
    "REGION",
    "VERSION",
    "PARAMETER",
    "SHARED WITH",
    "COMMIT",
    ...(withConsumers ? ["CONSUMERS L/O/I"] : []),
    ...(withRelease ? ["RELEASE"] : []),
    "OUT OF STEP / NOTE",
  ];
  // SSM values, metadata and names in the cells are escaped by `table`; only the mark is coloured, after that
  const paint = (row: number, column: number, text: string) => {
    const r = regions[row]?.r;
    if (column !== 0 || !r) return text;
    return r.outOfStep ? colour.red(text) : r.notes?.length ? colour.yellow(text) : colour.green(text);
  };
  const details = regions.filter(({ r }) => r.outOfStep).flatMap(({ p, r }) => fixLines(p.name, r));
  const noted = regions.some(({ r }) => !r.outOfStep && r.notes?.length);
  const legend = noted
    ? wrapText(
        `○ in step, but sharing was not checked: no SHARE_* setting in force. Give status the SHARE_* settings publish uses to check it.`,
        STATUS_WIDTH,
        "  ",
      )
    : [];
  const below = [...details, ...legend];
  return `${table(headers, rows, paint, STATUS_WIDTH)}${below.length ? `\n${below.join("\n")}\n` : ""}`;
}

/** A Region out of step below the table: its full problems, then each fix command, wrapped at STATUS_WIDTH. */
function fixLines(pkg: string, r: RegionStatus): string[] {
  const lines = wrapText(printable(`${pkg} in ${r.region} is out of step:`), STATUS_WIDTH, "    ");
  for (const problem of [...r.problems, ...(r.error ? [`error: ${r.error}`] : [])])
    lines.push(...wrapText(printable(`  - ${problem}`), STATUS_WIDTH, "    "));
  for (const words of r.fixCommands ?? [])
    lines.push(...wrapCommand(words.map(printable), STATUS_WIDTH, "  → run: ", 6));
  return lines;
}

export function releaseText(release: RegionStatus["release"]): string {
  if (!release) return "";
  const parts = [`pointed ${release.pointedVersion ?? "-"}`];
  if (release.canaryVersion !== null) parts.push(`canary ${release.canaryVersion}`);
  if (release.smoke) {
    parts.push(`smoke v${release.smoke.version} ${release.smoke.ok ? "ok" : `failed: ${release.smoke.error ?? ""}`}`);
  }
  if (release.rollbackHold) parts.push(`held by rollback (from ${release.rollbackHold.from ?? "-"})`);
  return parts.join(", ");
}

export async function statusCommand(parsed: ParsedCommand, env: Environment, io: CliIo): Promise<number> {
  noPositionals(parsed);
  const clients = publishClients();
  const consumers = newConsumerClients(clients.home.organizations);
  try {
    const homeRegion = await clients.homeRegion();
    const config = loadPublishConfig({ env, flags: parsed.settings }, { homeRegion });
    const packages = listOption(parsed, "package");
    const prefix = config.artifacts.parameterPrefix;
    const reader = inventoryReader(config, consumers, async () =>
      packages.length ? packages : discoverPackages(clients.home.ssm, prefix),
    );
    const owner = reader ? (await callerIdentity(consumers.sts)).account : "";
    const report = await readStatus(
      config,
      { packages, flags: parsed.settings },
      {
        ...clients.home,
        regionClients: clients.regionClients,
        ...(homeRegion ? { region: homeRegion } : {}),
        ...(reader ? { consumerInventory: { inventory: reader, owner } } : {}),
      },
    );
    io.stdout.write(parsed.values.json ? jsonText(report) : statusTable(report, palette(io, env)));
    if (report.packages.some((p) => p.regions.some((r) => r.error !== undefined))) return 1;
    return report.packages.some((p) => p.outOfStep) ? OUT_OF_STEP_EXIT : 0;
  } finally {
    consumers.close();
    clients.close();
  }
}
