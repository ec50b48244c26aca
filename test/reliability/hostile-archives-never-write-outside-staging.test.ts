import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { fuzz, generateCase, runCase } from "../support/hostile.ts";

const parent = await mkdtemp(join(tmpdir(), "ls-hostile-"));
afterAll(() => rm(parent, { recursive: true, force: true }));

describe("hostile archives and walk deliveries", () => {
  it("never write outside the staging folder, and either fail naming an entry or build exactly the tree", async () => {
    const report = await fuzz(join(parent, "fuzz"), 1, 200);
    expect(report.cases).toBe(200);
    // the generator reaches both outcomes
    expect(report.built).toBeGreaterThan(10);
    expect(report.failed).toBeGreaterThan(100);
  }, 120_000);

  it("refuses a chain of links that climbs out when a later entry reuses a link's name", async () => {
    for (const via of ["archive", "walk"] as const) {
      const result = await runCase(
        {
          seed: 0,
          via,
          entries: [
            // each link stays inside when read alone; together they climb out
            { name: "sub/up", kind: "symlink", data: ".." },
            { name: "escape", kind: "symlink", data: "sub/up/../outside" },
            { name: "escape", kind: "file", data: "overwrite\n" },
          ],
        },
        join(parent, `chain-${via}`),
        join(parent, `chain-${via}-check`),
      );
      expect(result.outcome).toBe("failed");
      expect(result.message).toMatch(/"escape"/);
    }
  });

  it("refuses a path that arrives twice as a file and a directory, naming it", async () => {
    const result = await runCase(
      {
        seed: 0,
        via: "archive",
        entries: [
          { name: "x", kind: "dir", data: "" },
          { name: "x", kind: "file", data: "one\n" },
        ],
      },
      join(parent, "dup"),
      join(parent, "dup-check"),
    );
    expect(result).toMatchObject({ outcome: "failed", message: expect.stringMatching(/"x" .*arrives twice/) });
  });

  it("generates the same case from the same seed", () => {
    expect(generateCase(42)).toEqual(generateCase(42));
  });
});
