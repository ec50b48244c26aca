import { defineConfig } from "vitest/config";

/** Runs only the emulator tests, without the moto global setup: `npx vitest run --config test/emulators/vitest.emulators.config.ts`. */
export default defineConfig({
  test: {
    include: ["test/emulators/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
  },
});
