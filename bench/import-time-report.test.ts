import { describe, expect, it } from "vitest";
import {
  evaluateImportTargets,
  type ImportRow,
  type ImportSide,
  type ImportTimeReport,
  importTargetsPass,
  renderImportMarkdown,
  renderImportText,
} from "./import-time-report.ts";

// The import-time bench itself needs python3, pip and PyPI, so it is not smoke-tested here; this checks
// only how its figures become targets and tables (no time is measured).

const side = (medianMs: number, pycFiles: number): ImportSide => ({
  zipBytes: 30_000_000,
  pyFiles: 2000,
  pycFiles,
  medianMs,
  allMs: [medianMs],
  buildMs: null,
});

const row = (layer: string, recipe: number, layerSync: number): ImportRow => ({
  layer,
  statement: "import numpy",
  requirements: ["numpy==2.2.6"],
  recipe: side(recipe, 1900),
  layerSync: side(layerSync, 0),
  ratio: Math.round((layerSync / recipe) * 100) / 100,
  sameDistributions: true,
  notes: [],
});

function report(rows: ImportRow[]): ImportTimeReport {
  return {
    version: 1,
    startedAt: "2026-12-07T03:00:00.000Z",
    finishedAt: "2026-12-07T03:05:00.000Z",
    python: "Python 3.11.7",
    runtime: "python3.11",
    runs: 1,
    loadAverage: [1, 1],
    rows,
    targets: evaluateImportTargets(rows),
  };
}

describe("the import-time targets and tables", () => {
  it("pass both thresholds at 1.0, only the limit up to 1.2, and neither above it", () => {
    const targets = evaluateImportTargets([row("even", 500, 500), row("near", 500, 550), row("slow", 500, 2000)]);
    expect(targets.map((t) => [t.id, t.status])).toEqual([
      ["import:even:target", "PASS"],
      ["import:even:limit", "PASS"],
      ["import:near:target", "FAIL"],
      ["import:near:limit", "PASS"],
      ["import:slow:target", "FAIL"],
      ["import:slow:limit", "FAIL"],
    ]);
    expect(importTargetsPass(report([row("even", 500, 450)]))).toBe(true);
    expect(importTargetsPass(report([row("slow", 500, 2000)]))).toBe(false);
  });

  it("skip a layer that has no numbers and say why", () => {
    const failed: ImportRow = { ...row("data", 1, 1), recipe: null, layerSync: null, ratio: null };
    failed.notes = ["build failed: no network"];
    const targets = evaluateImportTargets([failed]);
    expect(targets.map((t) => t.status)).toEqual(["SKIP", "SKIP"]);
    expect(targets[0]?.note).toBe("build failed: no network");
  });

  it("print one line per layer with both medians, the ratio and the .pyc counts", () => {
    const r = report([row("data", 400, 1800)]);
    const text = renderImportText(r);
    expect(text).toMatch(/^data\s+400\s+1800\s+4\.50×\s+1900 \/ 0\s+30\.0 MB \/ 30\.0 MB$/m);
    expect(text).toContain("FAIL import:data:limit");
    expect(renderImportMarkdown(r)).toContain("| data | 400 | 1800 | 4.50× | 1900 / 0 | 30.0 MB / 30.0 MB |");
  });
});
