import { spawn } from "node:child_process";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BitbucketEmulator, startBitbucketEmulator } from "../emulators/bitbucket.ts";
import { standardRepo } from "../fixtures/repo.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const TOKEN = "bb-signal-token-5e6f7a8b9c0d";
let bb: BitbucketEmulator;
let scratch: string;

beforeAll(async () => {
  bb = await startBitbucketEmulator({ repos: [standardRepo({ bigFileBytes: 64 * 1024 })], accessTokens: [TOKEN] });
  scratch = await mkdtemp(join(tmpdir(), "ls-signals-"));
});
afterAll(async () => {
  await bb.close();
  await rm(scratch, { recursive: true, force: true });
});

async function until(check: () => Promise<boolean>, ms: number): Promise<void> {
  for (const end = Date.now() + ms; Date.now() < end; ) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`not reached within ${ms} ms`);
}

describe("the layer-sync command interrupted by a signal", () => {
  it.each([
    ["SIGINT", 130],
    ["SIGTERM", 143],
  ] as const)(
    "on %s removes its run directory and exits %i",
    async (signal, code) => {
      const work = await mkdtemp(join(scratch, "work-"));
      // every download hangs, so the run is caught with its run directory in place
      bb.inject({
        match: (t) => t.path.includes("/src/") && !t.path.endsWith("/"),
        fault: { kind: "delay", ms: 30_000 },
        times: Infinity,
      });
      const child = spawn(
        process.execPath,
        [
          join(ROOT, "scripts/layer-sync.mjs"),
          "sync",
          "--strategy",
          "walk",
          "--out",
          join(scratch, "out"),
          "--work-dir",
          work,
        ],
        {
          cwd: ROOT,
          env: {
            PATH: process.env.PATH,
            SOURCE_PROVIDER: "bitbucket",
            SOURCE_REPOSITORY: "acme/layers",
            SOURCE_PATHS: "layers/tools",
            SOURCE_API_URL: bb.apiUrl,
            SOURCE_WEB_URL: bb.webUrl,
            SOURCE_TOKEN: TOKEN,
          },
        },
      );
      let stderr = "";
      child.stderr.on("data", (d: Buffer) => {
        stderr += d.toString();
      });
      const exited = new Promise<number | null>((resolve) => child.on("close", (c) => resolve(c)));
      try {
        await until(async () => (await readdir(work)).length > 0, 20_000);
        await until(async () => bb.requests.some((r) => r.path.includes("/src/") && !r.path.endsWith("/")), 20_000);
        child.kill(signal);
        expect(await exited).toBe(code);
        expect(await readdir(work)).toEqual([]);
        expect(stderr).toContain(`interrupted by ${signal}`);
      } finally {
        bb.clearFaults();
        child.kill("SIGKILL");
      }
    },
    60_000,
  );
});
