import { describe, expect, it } from "vitest";
import { boundSummary, SUMMARY_MAX_BYTES } from "../../lib/codepipeline/notify.ts";

const bytes = (value: unknown) => Buffer.byteLength(JSON.stringify(value));

function summary(packages: number, failEvery: number, warnings = 0) {
  return {
    commit: "a".repeat(40),
    ref: "main",
    strategy: "walk",
    packages: Array.from({ length: packages }, (_, i) => ({
      name: `pkg-${i}`,
      warnings: Array.from({ length: warnings }, (_, w) => `warning ${w} ${"w".repeat(200)}`),
      ...(i % failEvery === 0 ? { error: `folder "layers/pkg-${i}" failed: ${"x".repeat(960)}` } : {}),
    })),
    requests: { total: 1 },
  };
}

describe("boundSummary", () => {
  it("returns a summary that fits as it is", () => {
    const small = summary(3, 2, 2);
    expect(boundSummary(small)).toBe(small);
  });

  it("keeps a summary of 10,000 failed packages (10 MB of errors) under Lambda's and EventBridge's 256 KB, failures first, with a count", () => {
    const huge = summary(10_000, 3);
    const bounded = boundSummary(huge) as ReturnType<typeof summary> & { omittedPackages: number };
    expect(bytes(bounded)).toBeLessThanOrEqual(SUMMARY_MAX_BYTES);
    expect(bounded.commit).toBe(huge.commit);
    expect(bounded.packages.length).toBeGreaterThan(100);
    expect(bounded.packages.every((p) => p.error)).toBe(true);
    expect(bounded.packages[0]?.name).toBe("pkg-0");
    expect(bounded.omittedPackages).toBe(10_000 - bounded.packages.length);
  });

  it("first cuts each package's warnings to three and a count", () => {
    const noisy = summary(200, 1_000_000, 20);
    const bounded = boundSummary(noisy) as ReturnType<typeof summary>;
    expect(bytes(bounded)).toBeLessThanOrEqual(SUMMARY_MAX_BYTES);
    expect(bounded.packages).toHaveLength(200);
    expect(bounded.packages[5]?.warnings).toEqual([expect.stringMatching(/^warning 0 w+; warning 1 .*; and 17 more$/)]);
  });
});
