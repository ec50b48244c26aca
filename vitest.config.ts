import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // moto's server is started once for the whole run (project-local virtualenv, free port) and stopped after.
    // The bundled CLI (dist/) is built when missing or older than its sources, for tests that spawn it.
    globalSetup: ["test/support/moto.global.ts", "test/support/cli.global.ts"],
    setupFiles: ["test/support/setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    pool: "forks",
    reporters: ["default"],
  },
});
