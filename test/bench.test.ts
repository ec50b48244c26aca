import { describe, expect, it } from "vitest";
import { RUN_IDS, runBench } from "../bench/harness.ts";
import { renderMarkdown, renderText } from "../bench/report.ts";

describe("the bench harness on the tiny fixture", () => {
  it("measures every run with numbers, and baseline and layer-sync zips hold the same entries", async () => {
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
  }, 120_000);
});
