import { defineConfig } from "vitest/config";

/**
 * `npm run test:unit`: the pure tests in test/unit, without the full suite's global setup (no moto server, no
 * CLI bundle build), no Python and no network. `npm test` runs them too, with everything else.
 */
export default defineConfig({
  test: {
    include: ["test/unit/**/*.test.ts"],
    setupFiles: ["test/support/setup.unit.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    // the files share their fork's module cache instead of loading every module again per file: the suite
    // is import-bound (about 20 s instead of 40 here). Unit tests keep no state between files; the files
    // also pass in shuffled order (`--sequence.shuffle.files`), which the full suite (isolated) re-checks.
    isolate: false,
    reporters: ["default"],
  },
});
