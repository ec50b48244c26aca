/**
 * The import-time table (`bench/import-time.ts`): its report type, the targets (layer-sync ≤ 1.0 × the
 * `pip install --target` + zip recipe, never worse than 1.2 ×) and the text and Markdown renderings.
 */
import type { TargetResult } from "./report.ts";

/** Target and limit of layer-sync's median import time over the recipe's (issue 21, item 3). */
export const IMPORT_TARGET_RATIO = 1.0;
export const IMPORT_LIMIT_RATIO = 1.2;

/** One build of one layer, extracted into a read-only directory and imported `runs` times. */
export interface ImportSide {
  /** The zip's size (bytes). */
  zipBytes: number;
  /** Modules in the zip: `.py` sources and compiled `.pyc` files. */
  pyFiles: number;
  pycFiles: number;
  /** Median import time (ms), and every measured run in order. */
  medianMs: number;
  allMs: number[];
  /** Wall time of the build (ms); null when a cached zip was used. */
  buildMs: number | null;
}

export interface ImportRow {
  layer: string;
  /** The Python statement timed. */
  statement: string;
  /** The pinned requirements both builds installed. */
  requirements: string[];
  recipe: ImportSide | null;
  layerSync: ImportSide | null;
  /** layer-sync median / recipe median. */
  ratio: number | null;
  /** Both zips hold the same `*.dist-info` directories (the same distributions at the same versions). */
  sameDistributions: boolean | null;
  /** Why the row has no numbers, or what looked wrong. */
  notes: string[];
}

export interface ImportTimeReport {
  version: 1;
  startedAt: string;
  finishedAt: string;
  /** `python3 --version` of the interpreter that built (the recipe) and imported, e.g. "Python 3.11.7". */
  python: string;
  /** The Lambda runtime layer-sync built for, matching that interpreter, e.g. "python3.11". */
  runtime: string;
  runs: number;
  /** 1-minute load average at the start and the end (the machine may be shared). */
  loadAverage: [start: number, end: number];
  rows: ImportRow[];
  targets: TargetResult[];
}

function target(id: string, threshold: string, actual: string, pass: boolean | null, note: string | null) {
  const status: TargetResult["status"] = pass === null ? "SKIP" : pass ? "PASS" : "FAIL";
  return { id, description: "layer-sync / recipe median import time", threshold, actual, status, note };
}

/** Two targets per layer: the ratio at most 1.0 (the target) and at most 1.2 (never worse). */
export function evaluateImportTargets(rows: ImportRow[]): TargetResult[] {
  return rows.flatMap((r) => {
    const actual = r.ratio === null ? "no numbers" : `${r.ratio.toFixed(2)}×`;
    const note = r.ratio === null ? r.notes.join("; ") || "not measured" : null;
    const check = (limit: number) => (r.ratio === null ? null : r.ratio <= limit);
    return [
      target(
        `import:${r.layer}:target`,
        `≤ ${IMPORT_TARGET_RATIO.toFixed(1)}×`,
        actual,
        check(IMPORT_TARGET_RATIO),
        note,
      ),
      target(`import:${r.layer}:limit`, `≤ ${IMPORT_LIMIT_RATIO.toFixed(1)}×`, actual, check(IMPORT_LIMIT_RATIO), note),
    ];
  });
}

export function importTargetsPass(report: ImportTimeReport): boolean {
  return report.targets.every((t) => t.status !== "FAIL");
}

const ms = (v: number | undefined | null): string => (v === undefined || v === null ? "-" : `${Math.round(v)}`);
const mb = (v: number | undefined | null): string =>
  v === undefined || v === null ? "-" : `${(v / 1_000_000).toFixed(1)} MB`;

function cells(r: ImportRow): string[] {
  return [
    r.layer,
    ms(r.recipe?.medianMs),
    ms(r.layerSync?.medianMs),
    r.ratio === null ? "-" : `${r.ratio.toFixed(2)}×`,
    `${r.recipe?.pycFiles ?? "-"} / ${r.layerSync?.pycFiles ?? "-"}`,
    `${mb(r.recipe?.zipBytes)} / ${mb(r.layerSync?.zipBytes)}`,
  ];
}

const HEADER = ["layer", "recipe ms", "layer-sync ms", "ratio", ".pyc recipe / layer-sync", "zip recipe / layer-sync"];

export function renderImportText(report: ImportTimeReport): string {
  const rows = [HEADER, ...report.rows.map(cells)];
  const widths = HEADER.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  const out = [
    `import time from a read-only copy (${report.python}, layer-sync built for ${report.runtime}; median of ${report.runs} fresh interpreters each; load ${report.loadAverage.join(" → ")})`,
    ...rows.map(line),
  ];
  for (const r of report.rows) {
    out.push(`  ${r.layer}: ${r.statement}`);
    for (const n of r.notes) out.push(`  ${r.layer}: ${n}`);
  }
  for (const t of report.targets) {
    out.push(
      `${t.status.padEnd(4)} ${t.id}: ${t.description} ${t.threshold}: ${t.actual}${t.note ? ` (${t.note})` : ""}`,
    );
  }
  return `${out.join("\n")}\n`;
}

export function renderImportMarkdown(report: ImportTimeReport): string {
  const row = (c: string[]) => `| ${c.join(" | ")} |`;
  const out = [
    `Import time from a read-only copy: ${report.python}, layer-sync built for ${report.runtime}, median of ${report.runs} fresh interpreters per cell, 1-minute load average ${report.loadAverage.join(" → ")} (${report.finishedAt}).`,
    "",
    row(HEADER),
    row(HEADER.map((_, i) => (i === 0 ? "---" : "---:"))),
    ...report.rows.map((r) => row(cells(r))),
    "",
    ...report.rows.map((r) => `- ${r.layer}: \`${r.statement}\` — ${r.requirements.join(", ")}`),
    ...report.rows.flatMap((r) => r.notes.map((n) => `- ${r.layer}: ${n}`)),
    "",
    row(["target", "threshold", "actual", "status"]),
    row(["---", "---", "---", "---"]),
    ...report.targets.map((t) => row([t.id, t.threshold, t.actual, t.status])),
  ];
  return `${out.join("\n")}\n`;
}
