/**
 * `layer-sync status [--package NAME]... [--regions R,..] [--json]`: what is published and shared where,
 * read without writing anything (`lib/publish/status.ts`). A table on stdout, or the status JSON with
 * `--json`. A package or Region that is out of step is marked with what to run to fix it.
 *
 * Exit codes, like `terraform plan -detailed-exitcode` (but 2 stays "usage or configuration", as for
 * every command): 0 everything is in step, 3 something is out of step, 1 a Region could not be read.
 */

import { type Environment, loadPublishConfig } from "../lib/common/config.ts";
import { callerIdentity } from "../lib/publish/consumer-sources.ts";
import { inventoryReader } from "../lib/publish/consumers.ts";
import { discoverPackages } from "../lib/publish/parameters.ts";
import { type RegionStatus, readStatus, type StatusReport } from "../lib/publish/status.ts";
import { listOption, noPositionals, type ParsedCommand } from "./args.ts";
import { consumerClients, publishClients } from "./aws-clients.ts";
import { type CliIo, jsonText, palette, table } from "./output.ts";

/** The exit code when the state was read but something is out of step. */
export const OUT_OF_STEP_EXIT = 3;

export function statusTable(report: StatusReport, colour: ReturnType<typeof palette>): string {
  const withConsumers = report.consumerAccounts !== undefined;
  const regions = report.packages.flatMap((p) => p.regions.map((r) => ({ p, r })));
  const rows = regions.map(({ p, r }) => [
    r.outOfStep ? "✗" : "✓",
    p.name,
    r.region,
    r.version === null ? "-" : String(r.version),
    r.parameterMatches ? "yes" : "no",
    r.shared ? r.principals.join(",") || "-" : "-",
    (p.commit ?? "-").slice(0, 7),
    ...(withConsumers
      ? [r.consumers ? `${r.consumers.latest}/${r.consumers.older}/${r.consumers.incompatible}` : "-"]
      : []),
    r.outOfStep ? `${[...r.problems, r.error].filter(Boolean).join("; ")}${r.fix ? ` → run: ${r.fix}` : ""}` : "",
  ]);
  if (!rows.length) return "no packages under the parameter prefix\n";
  const consumerHead = withConsumers ? ["CONSUMERS L/O/I"] : [];
  const headers = [
    "",
    "PACKAGE",
    "REGION",
    "VERSION",
    "PARAMETER",
    "SHARED WITH",
    "COMMIT",
    ...consumerHead,
    "OUT OF STEP",
  ];
  // SSM values, metadata and names in the cells are escaped by `table`; only the mark is coloured, after that
  const paint = (row: number, column: number, text: string) =>
    column === 0 ? (regions[row]?.r.outOfStep ? colour.red(text) : colour.green(text)) : text;
  if (!regions.some(({ r }) => r.release)) return table(headers, rows, paint);
  // releases in use: the pointed and canary versions, the last smoke test, a rollback's hold
  return table(
    [...headers, "RELEASE"],
    rows.map((row, i) => [...row, releaseText(regions[i]?.r.release)]),
    paint,
  );
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
  const consumers = consumerClients(clients.home.organizations);
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
      { packages },
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
