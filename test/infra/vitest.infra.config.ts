import { defineConfig } from "vitest/config";

// Infrastructure tests only: CDK synthesis and cdk-nag, fully offline. No globalSetup (the main
// config's moto server is not needed here).
export default defineConfig({
  test: {
    include: ["test/infra/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    reporters: ["default"],
  },
});
