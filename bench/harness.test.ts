import { describe, expect, it } from "vitest";
import { RUN_IDS, runBench } from "./harness.ts";
import { renderMarkdown, renderText } from "./report.ts";

describe("the bench harness on the tiny fixture and a tiny packages table", () => {
  it("measures every run with numbers, baseline and layer-sync zips hold the same entries, and the packages table has every figure", async () => {
    const report = await runBench({
      fixtures: ["tiny"],
      latencyMs: 0,
      runs: 1,
      baselineRuns: 1,
      timeoutSeconds: 60,
      baseline: "run",
      baselineBudgetSeconds: 60,
      // its own moto server: the bench's buckets must not share state with the suite's moto
      aws: true,
      // the packages table on a fixture of a few kB per folder, at two counts so growth is computed
      packages: { counts: [1, 2], scale: 0.001, latencyMs: 0, timeoutSeconds: 60 },
    });
    const [tiny] = report.fixtures;
    expect(tiny?.stats.files).toBeGreaterThan(0);
    const runs = tiny?.runs ?? [];
    expect(runs.map((r) => r.id)).toEqual([...RUN_IDS]);
    for (const r of runs) {
      expect(r.status, `${r.id}: ${r.note}`).toBe("ok");
      expect(r.requests, r.id).toBeGreaterThan(0);
      expect(r.wallMs, r.id).toBeGreaterThan(0);
      expect(r.peakRssBytes, r.id).toBeGreaterThan(0);
      expect(r.outputBytes, r.id).toBeGreaterThan(0);
      expect(r.speedupVsBaseline, r.id).toBeGreaterThan(0);
      expect(r.timesLowerBound, r.id).toBeGreaterThan(0);
    }
    for (const r of runs.filter((x) => x.kind === "layer-sync" || x.kind === "lower-bound" || x.kind === "baseline")) {
      expect(r.entries, r.id).toBe(tiny?.stats.files);
      expect(r.entriesMatchBaseline, r.id).toBe(true);
      expect(r.entriesMatchFixture, r.id).toBe(true);
    }
    for (const r of runs.filter((x) => x.kind === "unchanged")) {
      expect(r.skippedUnchanged, r.id).toBe(true);
      expect(r.uploaded, r.id).toBe(false);
    }
    expect(renderText(report)).toContain("layer-sync bitbucket --strategy auto");
    expect(renderMarkdown(report)).toContain("| run | requests |");

    const packages = report.packages;
    expect(packages?.folders).toBe(50);
    expect(packages?.rows.map((r) => [r.provider, r.packages])).toEqual([
      ["bitbucket", 1],
      ["bitbucket", 2],
      ["github", 1],
      ["github", 2],
    ]);
    for (const r of packages?.rows ?? []) {
      const at = `${r.provider} ×${r.packages}`;
      expect(r.notes, at).toEqual([]);
      for (const m of [r.floor, r.first, r.unchanged]) {
        expect(m?.requests, at).toBeGreaterThan(0);
        expect(m?.wallMs, at).toBeGreaterThan(0);
        expect(m?.peakRssBytes, at).toBeGreaterThan(0);
      }
      expect(r.largestBoundBytes, at).toBeGreaterThan(0);
      expect(r.unchanged?.allSkipped, at).toBe(true);
      expect(r.unchanged?.uploaded, at).toBe(false);
    }
    expect(packages?.targets.filter((t) => t.status === "SKIP")).toEqual([]);
    expect(renderText(report)).toMatch(/unchanged: requests .* per package/);
    expect(renderMarkdown(report)).toContain("| bitbucket | 1 pkg | 2 pkg | growth |");
  }, 240_000);
});
