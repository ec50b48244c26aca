/** The packages table's report: its rows, the targets (PASS/FAIL) and how each figure grows with the count. */
import type { Provider } from "../lib/sources/types.ts";
import type { TargetResult } from "./report.ts";

export interface Measured {
  /** Requests that reached the source emulator. */
  requests: number;
  wallMs: number;
  peakRssBytes: number;
  /** Peak size of the run's work directory (staging and zips); null when the run has none (the floor). */
  peakTmpBytes: number | null;
}

export interface PackagesRow {
  provider: Provider;
  packages: number;
  /** Unzipped bytes of the selected folders. */
  stagedBytes: number;
  /** The largest selected package's staged bytes plus its zip (the /tmp bound is 1.3 × this). */
  largestBoundBytes: number | null;
  floor: Measured | null;
  first: Measured | null;
  unchanged: (Measured & { allSkipped: boolean; uploaded: boolean }) | null;
  notes: string[];
}

export interface PackagesReport {
  scale: number;
  folders: number;
  bytes: number;
  largestPackage: { name: string; bytes: number };
  counts: number[];
  rows: PackagesRow[];
  targets: TargetResult[];
}

const MiB = 1024 * 1024;
export const UNCHANGED_REQUEST_LIMIT = 3;
export const FLOOR_FACTOR = 1.3;
export const RSS_LIMIT = 512 * MiB;
export const TMP_FACTOR = 1.3;

const mib = (b: number | null | undefined) => (b === null || b === undefined ? "-" : `${(b / MiB).toFixed(1)} MiB`);
const sec = (ms: number | null | undefined) => (ms === null || ms === undefined ? "-" : `${(ms / 1000).toFixed(2)} s`);

function result(
  id: string,
  description: string,
  threshold: string,
  actual: string,
  pass: boolean | null,
  note: string | null = null,
): TargetResult {
  return { id, description, threshold, actual, status: pass === null ? "SKIP" : pass ? "PASS" : "FAIL", note };
}

export function evaluatePackageTargets(report: PackagesReport): TargetResult[] {
  const out: TargetResult[] = [];
  for (const r of report.rows) {
    const at = `${r.provider} ×${r.packages}`;
    const u = r.unchanged;
    out.push(
      result(
        `packages:${r.provider}:${r.packages}:unchanged-requests`,
        `${at} unchanged: requests (all skipped, nothing uploaded)`,
        `≤ ${UNCHANGED_REQUEST_LIMIT}`,
        u ? `${u.requests}${u.allSkipped && !u.uploaded ? "" : " (NOT all skipped or something uploaded)"}` : "not run",
        u ? u.requests <= UNCHANGED_REQUEST_LIMIT && u.allSkipped && !u.uploaded : null,
      ),
    );
    const ratio = r.first && r.floor ? r.first.wallMs / r.floor.wallMs : null;
    out.push(
      result(
        `packages:${r.provider}:${r.packages}:first-vs-floor`,
        `${at} first run: wall / floor (${sec(r.first?.wallMs)} / ${sec(r.floor?.wallMs)})`,
        `≤ ${FLOOR_FACTOR}×`,
        ratio === null ? "not run" : `${ratio.toFixed(2)}×`,
        ratio === null ? null : ratio <= FLOOR_FACTOR,
      ),
    );
    const rss = Math.max(r.first?.peakRssBytes ?? 0, u?.peakRssBytes ?? 0);
    out.push(
      result(
        `packages:${r.provider}:${r.packages}:rss`,
        `${at} peak RSS (first, unchanged)`,
        `≤ ${mib(RSS_LIMIT)}`,
        r.first || u ? mib(rss) : "not run",
        r.first || u ? rss <= RSS_LIMIT : null,
      ),
    );
    const tmp = r.first?.peakTmpBytes ?? null;
    const bound = r.largestBoundBytes === null ? null : r.largestBoundBytes * TMP_FACTOR;
    out.push(
      result(
        `packages:${r.provider}:${r.packages}:tmp`,
        `${at} first run: peak /tmp`,
        bound === null
          ? `≤ ${TMP_FACTOR} × (largest package + its zip)`
          : `≤ ${mib(bound)} (${TMP_FACTOR} × ${mib(r.largestBoundBytes)})`,
        mib(tmp),
        tmp === null || bound === null ? null : tmp <= bound,
      ),
    );
  }
  return out;
}

type Figure = { label: string; get: (r: PackagesRow) => number | null | undefined; show: (v: number) => string };
const FIGURES: Figure[] = [
  { label: "first: requests", get: (r) => r.first?.requests, show: String },
  { label: "first: wall", get: (r) => r.first?.wallMs, show: (v) => sec(v) },
  { label: "floor: wall", get: (r) => r.floor?.wallMs, show: (v) => sec(v) },
  {
    label: "first: × floor",
    get: (r) => (r.first && r.floor ? r.first.wallMs / r.floor.wallMs : null),
    show: (v) => `${v.toFixed(2)}×`,
  },
  { label: "first: peak RSS", get: (r) => r.first?.peakRssBytes, show: mib },
  { label: "first: peak /tmp", get: (r) => r.first?.peakTmpBytes, show: mib },
  {
    label: "/tmp bound",
    get: (r) => (r.largestBoundBytes === null ? null : r.largestBoundBytes * TMP_FACTOR),
    show: mib,
  },
  { label: "unchanged: requests", get: (r) => r.unchanged?.requests, show: String },
  { label: "unchanged: wall", get: (r) => r.unchanged?.wallMs, show: (v) => sec(v) },
  { label: "unchanged: peak RSS", get: (r) => r.unchanged?.peakRssBytes, show: mib },
  { label: "unchanged: peak /tmp", get: (r) => r.unchanged?.peakTmpBytes, show: mib },
];

/** "×5.0 for 50× the packages (+0.08 s per package)": how a figure grows from the smallest to the largest count. */
function growth(rows: PackagesRow[], f: Figure): string {
  const points = rows
    .map((r) => ({ n: r.packages, v: f.get(r) }))
    .filter((p): p is { n: number; v: number } => typeof p.v === "number");
  const a = points[0];
  const b = points.at(-1);
  if (!a || !b || a === b || b.n === a.n) return "-";
  const perPackage = (b.v - a.v) / (b.n - a.n);
  const factor = a.v === 0 ? "" : `×${(b.v / a.v).toFixed(2)}, `;
  return `${factor}${perPackage >= 0 ? "+" : ""}${f.show(perPackage)} per package`;
}

/** One table per provider: a row per figure, a column per package count, and the growth. */
function tables(report: PackagesReport): { provider: Provider; header: string[]; rows: string[][] }[] {
  const providers = [...new Set(report.rows.map((r) => r.provider))];
  return providers.map((provider) => {
    const rows = report.rows.filter((r) => r.provider === provider).sort((x, y) => x.packages - y.packages);
    const header = [provider, ...rows.map((r) => `${r.packages} pkg`), "growth"];
    return {
      provider,
      header,
      rows: FIGURES.map((f) => [
        f.label,
        ...rows.map((r) => {
          const v = f.get(r);
          return typeof v === "number" ? f.show(v) : "-";
        }),
        growth(rows, f),
      ]),
    };
  });
}

function headline(report: PackagesReport): string {
  return `packages: ${report.folders} folders in one repository, ${mib(report.bytes)} unzipped (scale ${report.scale}), largest ${report.largestPackage.name} ${mib(report.largestPackage.bytes)}; counts ${report.counts.join(", ")}; one run per cell; first = --strategy auto --out, unchanged = a later commit that touches no folder`;
}

export function renderPackagesText(report: PackagesReport): string {
  const lines = [headline(report), ""];
  for (const t of tables(report)) {
    const all = [t.header, ...t.rows];
    const widths = t.header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)));
    for (const [n, r] of all.entries()) {
      lines.push(r.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join("  "));
      if (n === 0) lines.push(widths.map((w) => "-".repeat(w)).join("  "));
    }
    lines.push("");
  }
  for (const t of report.targets)
    lines.push(`  ${t.status.padEnd(4)}  ${t.description}: ${t.actual} (target ${t.threshold})`);
  for (const r of report.rows) for (const n of r.notes) lines.push(`  note  ${r.provider} ×${r.packages}: ${n}`);
  return lines.join("\n");
}

export function renderPackagesMarkdown(report: PackagesReport): string {
  const cell = (s: string) => s.replace(/\|/g, "\\|");
  const lines = [`## ${headline(report)}`, ""];
  for (const t of tables(report)) {
    lines.push(`| ${t.header.join(" | ")} |`, `|${t.header.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`);
    for (const r of t.rows) lines.push(`| ${r.map(cell).join(" | ")} |`);
    lines.push("");
  }
  lines.push("| target | threshold | actual | result |", "|---|---|---|---|");
  for (const t of report.targets)
    lines.push(`| ${cell(t.description)} | ${cell(t.threshold)} | ${cell(t.actual)} | ${t.status} |`);
  for (const r of report.rows) for (const n of r.notes) lines.push("", `- ${r.provider} ×${r.packages}: ${cell(n)}`);
  return lines.join("\n");
}
