import { defineConfig } from "vitest/config";

/**
 * `npm run test:bench`: the bench harness's smoke test (bench/harness.test.ts) on the tiny fixture, with its
 * own moto server. It checks the benchmark tool, not layer-sync, so it is not part of `npm test`.
 */
export default defineConfig({
  test: {
    include: ["bench/**/*.test.ts"],
    testTimeout: 240_000,
    hookTimeout: 120_000,
    pool: "forks",
    reporters: ["default"],
  },
});
