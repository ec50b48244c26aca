/** Targets (PASS/FAIL per fixture) and the text and Markdown renderings of a bench report. */
import type { BenchReport, FixtureReport, RunReport } from "./harness.ts";
import type { JobResult } from "./jobs.ts";
import { renderPackagesMarkdown, renderPackagesText } from "./packages-report.ts";

export interface TargetResult {
  id: string;
  description: string;
  threshold: string;
  actual: string;
  status: "PASS" | "FAIL" | "SKIP";
  note: string | null;
}

const MiB = 1024 * 1024;
const RSS_LIMITS: Partial<Record<string, number>> = { medium: 256 * MiB, large: 512 * MiB };
const TARGET_LATENCY_MS = 50;

function target(
  id: string,
  description: string,
  threshold: string,
  actual: string,
  pass: boolean | null,
  note: string | null = null,
): TargetResult {
  return { id, description, threshold, actual, status: pass === null ? "SKIP" : pass ? "PASS" : "FAIL", note };
}

/** The run when it succeeded. */
const ok = (r: RunReport | undefined): RunReport | undefined => (r?.status === "ok" ? r : undefined);

/** "failed: reason" / "skipped: reason" / "not run" for a run that has no numbers. */
function missing(r: RunReport | undefined): string {
  if (!r) return "not run";
  return r.note ? `${r.status}: ${r.note}` : r.status;
}

/** Evaluate the issue's targets for one fixture. Speed targets are defined for medium at 50 ms latency. */
export function evaluateTargets(f: FixtureReport, latencyMs: number): TargetResult[] {
  const out: TargetResult[] = [];
  const find = (id: string) => f.runs.find((r) => r.id === id);
  const requestTarget = (id: string, description: string, limit: number, threshold: string) => {
    const raw = find(id);
    const r = ok(raw);
    const requests = r?.requests ?? null;
    out.push(
      target(
        `${id}:requests`,
        description,
        threshold,
        requests !== null ? String(requests) : missing(raw),
        requests !== null ? requests <= limit : null,
      ),
    );
  };
  if (f.name === "tiny") {
    out.push(target("tiny", "targets", "defined for medium and large", "smoke fixture", null, "no targets on tiny"));
    return out;
  }
  for (const provider of ["bitbucket", "github"] as const) {
    requestTarget(`${provider}:archive`, `${provider} archive: source requests`, 5, "≤ 5");
    requestTarget(`${provider}:auto`, `${provider} auto: source requests`, 5, "≤ 5");
    requestTarget(
      `${provider}:walk`,
      `${provider} walk: source requests`,
      f.walkRequestBudget,
      `≤ (directories + files)/10 + files = ${f.walkRequestBudget}`,
    );
  }
  const speedNote =
    f.name !== "medium"
      ? "defined for the medium fixture"
      : latencyMs !== TARGET_LATENCY_MS
        ? `defined at ${TARGET_LATENCY_MS} ms latency (this run: ${latencyMs} ms)`
        : null;
  for (const provider of ["bitbucket", "github"] as const) {
    const auto = ok(find(`${provider}:auto`));
    const speedup = auto?.speedupVsBaseline ?? null;
    out.push(
      target(
        `${provider}:auto:speedup`,
        `${provider} auto vs baseline`,
        "≥ 50× faster",
        speedup !== null ? `${speedup.toFixed(1)}×` : `baseline ${missing(find("baseline"))}`,
        speedNote || speedup === null ? null : speedup >= 50,
        speedNote,
      ),
    );
    const times = auto?.timesLowerBound ?? null;
    out.push(
      target(
        `${provider}:auto:lower-bound`,
        `${provider} auto vs lower bound`,
        "≤ 1.5× the lower bound",
        times !== null ? `${times.toFixed(2)}×` : `lower bound ${missing(find(`lower-bound:${provider}`))}`,
        speedNote || times === null ? null : times <= 1.5,
        speedNote,
      ),
    );
  }
  for (const provider of ["bitbucket", "github"] as const) {
    const raw = find(`unchanged:${provider}`);
    const r = ok(raw);
    out.push(
      target(
        `unchanged:${provider}`,
        `${provider} second sync of the same commit`,
        "≤ 3 requests, skipped as unchanged, nothing uploaded",
        r
          ? `${r.requests} requests, ${r.skippedUnchanged ? "skipped: unchanged" : "NOT skipped"}, ${r.uploaded ? "UPLOADED" : "no upload"}`
          : missing(raw),
        r && r.requests !== null ? r.requests <= 3 && r.skippedUnchanged === true && r.uploaded === false : null,
      ),
    );
  }
  const limit = RSS_LIMITS[f.name];
  if (limit !== undefined) {
    // one target per strategy (walk, archive, auto: the issue's "≤ 256 MB for walk, archive and auto"), the
    // worst of both providers, with where its memory was at its peak
    for (const strategy of ["walk", "archive", "auto"] as const) {
      const measured = f.runs.filter((r) => r.status === "ok" && r.kind === "layer-sync" && r.strategy === strategy);
      const worst = measured.reduce<RunReport | undefined>(
        (w, r) => (w === undefined || (r.peakRssBytes ?? 0) > (w.peakRssBytes ?? 0) ? r : w),
        undefined,
      );
      out.push(
        target(
          `peak-rss:${strategy}`,
          `peak RSS of layer-sync --strategy ${strategy}`,
          `≤ ${limit / MiB} MiB`,
          worst ? `${mib(worst.peakRssBytes)} (${worst.id})` : "no run",
          worst ? (worst.peakRssBytes ?? 0) <= limit : null,
          worst?.memoryAtPeak ? memoryNote({ memory: worst.memoryAtPeak }).trim() : null,
        ),
      );
    }
    const unchanged = f.runs.filter((r) => r.status === "ok" && r.kind === "unchanged");
    const top = Math.max(0, ...unchanged.map((r) => r.peakRssBytes ?? 0));
    out.push(
      target(
        "peak-rss:unchanged",
        "peak RSS of the unchanged runs",
        `≤ ${limit / MiB} MiB`,
        unchanged.length ? mib(top) : "no run",
        unchanged.length ? top <= limit : null,
      ),
    );
  }
  return out;
}

/** Where the run's memory was at its highest RSS (see `sampleMemory` in worker.ts), for the log line. */
export function memoryNote(result: Pick<JobResult, "memory">): string {
  const m = result.memory;
  if (!m) return "";
  const mb = (n: number) => Math.round(n / 1048576);
  const p = m.atPeak;
  return ` (loaded ${mb(m.loadedRssBytes)}; at peak: heap ${mb(p.heapUsed)}/${mb(p.heapTotal)}, external ${mb(p.external)} of which buffers ${mb(p.arrayBuffers)}, rest ${mb(p.rss - p.heapTotal - p.external)})`;
}

function mib(bytes: number | null): string {
  return bytes === null ? "–" : `${Math.round(bytes / MiB)} MiB`;
}

function seconds(ms: number | null): string {
  if (ms === null) return "–";
  return ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${(ms / 1000).toFixed(2)} s`;
}

function megabytes(bytes: number | null): string {
  return bytes === null ? "–" : `${(bytes / 1e6).toFixed(2)} MB`;
}

function ratio(v: number | null, digits = 1): string {
  return v === null ? "–" : `${v.toFixed(digits)}×`;
}

function yesNo(v: boolean | null): string {
  return v === null ? "–" : v ? "yes" : "NO";
}

const HEADERS = [
  "run",
  "requests",
  "wall (median, min–max)",
  "CPU",
  "× faster than baseline",
  "× lower bound",
  "peak RSS",
  "output",
  "entries = baseline",
  "status",
];

function wall(r: RunReport): string {
  if (r.wallMs === null) return "–";
  if (r.wallMsAll.length < 2) return seconds(r.wallMs);
  const lo = Math.min(...r.wallMsAll);
  const hi = Math.max(...r.wallMsAll);
  const digits = hi >= 10_000 ? 1 : 2;
  return `${seconds(r.wallMs)} (${(lo / 1000).toFixed(digits)}–${(hi / 1000).toFixed(digits)})`;
}

function rows(f: FixtureReport, noteLength = Number.POSITIVE_INFINITY): string[][] {
  return f.runs.map((r) => [
    r.label,
    r.requests === null ? "–" : String(r.requests),
    wall(r),
    seconds(r.cpuMs),
    ratio(r.speedupVsBaseline),
    ratio(r.timesLowerBound, 2),
    mib(r.peakRssBytes),
    megabytes(r.outputBytes),
    r.kind === "unchanged"
      ? r.skippedUnchanged === null
        ? "–"
        : r.uploaded
          ? "uploaded!"
          : "skipped"
      : yesNo(r.entriesMatchBaseline),
    r.status === "ok"
      ? "ok"
      : `${r.status}${r.note ? `: ${r.note.length > noteLength ? `${r.note.slice(0, noteLength)}…` : r.note}` : ""}`,
  ]);
}

function fixtureLine(f: FixtureReport): string {
  const s = f.stats;
  return `${f.name}: ${s.files} entries in ${s.directories} directories, ${megabytes(s.bytes)} unzipped (${megabytes(s.compressibleBytes)} text-like, ${megabytes(s.randomBytes)} random)`;
}

function optionsLine(report: BenchReport): string {
  const o = report.options;
  const e = report.environment;
  return `latency ${o.latencyMs} ms per request, ${o.runs} run(s) per row (baseline ${o.baselineRuns}), SOURCE_CONCURRENCY ${o.concurrency ?? "default (8)"}; Node ${e.node}, ${e.cpus} × ${e.cpuModel}, load average ${e.loadAverageAtStart.map((l) => l.toFixed(2)).join("/")} at start`;
}

/** A plain-text table for the terminal. */
export function renderText(report: BenchReport): string {
  const lines: string[] = [optionsLine(report), ""];
  for (const f of report.fixtures) {
    lines.push(fixtureLine(f));
    const table = [HEADERS, ...rows(f, 40)];
    const widths = HEADERS.map((_, i) => Math.max(...table.map((r) => (r[i] ?? "").length)));
    for (const [n, r] of table.entries()) {
      lines.push(r.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join("  "));
      if (n === 0) lines.push(widths.map((w) => "-".repeat(w)).join("  "));
    }
    lines.push("");
    for (const t of f.targets) {
      lines.push(
        `  ${t.status.padEnd(4)}  ${t.description}: ${t.actual} (target ${t.threshold})${t.note ? ` — ${t.note}` : ""}`,
      );
    }
    lines.push("");
  }
  if (report.packages) lines.push(renderPackagesText(report.packages), "");
  return lines.join("\n");
}

const cell = (s: string) => s.replace(/\|/g, "\\|");

/** The same report as Markdown. */
export function renderMarkdown(report: BenchReport): string {
  const lines: string[] = [`# layer-sync bench — ${report.finishedAt}`, "", optionsLine(report), ""];
  for (const f of report.fixtures) {
    lines.push(`## ${fixtureLine(f)}`, "");
    lines.push(`| ${HEADERS.join(" | ")} |`, `|${HEADERS.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`);
    for (const r of rows(f)) lines.push(`| ${r.map(cell).join(" | ")} |`);
    lines.push("", "| target | threshold | actual | result |", "|---|---|---|---|");
    for (const t of f.targets) {
      lines.push(
        `| ${cell(t.description)} | ${cell(t.threshold)} | ${cell(t.actual)} | ${t.status}${t.note ? ` (${cell(t.note)})` : ""} |`,
      );
    }
    lines.push("");
  }
  if (report.packages) lines.push(renderPackagesMarkdown(report.packages), "");
  return lines.join("\n");
}

/** Whether every evaluated target passed (SKIP counts as passed). */
export function allTargetsPass(report: BenchReport): boolean {
  return (
    report.fixtures.every((f) => f.targets.every((t) => t.status !== "FAIL")) &&
    (report.packages?.targets ?? []).every((t) => t.status !== "FAIL")
  );
}
