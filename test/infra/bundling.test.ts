import { execFile } from "node:child_process";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Worker } from "node:worker_threads";
import { deflateRawSync } from "node:zlib";
import { OutputFormat } from "aws-cdk-lib/aws-lambda-nodejs";
import { describe, expect, it } from "vitest";
import { CREATE_REQUIRE_BANNER, HANDLER_ENTRIES, nodejsBundling, REPO_ROOT } from "../../infra/bundling.ts";
import { WORKER_ROLE } from "../../lib/zip/deflate-worker.ts";

describe("the NodejsFunction bundling used by cdk deploy", () => {
  it("builds minified ESM for node24 with a source map, module entry points first and a createRequire banner", () => {
    const { commandHooks, ...bundling } = nodejsBundling();
    expect(commandHooks).toBeDefined();
    expect(bundling).toEqual({
      format: OutputFormat.ESM,
      target: "node24",
      minify: true,
      sourceMap: true,
      sourcesContent: false,
      mainFields: ["module", "main"],
      banner: CREATE_REQUIRE_BANNER,
      externalModules: [],
      bundleAwsSDK: true,
    });
    expect(CREATE_REQUIRE_BANNER).toMatch(
      /^import \{ createRequire as \w+ \} from "node:module"; const require = \w+\(import\.meta\.url\);$/,
    );
  });

  it("bundles the two handlers' modules", () => {
    expect(HANDLER_ENTRIES.sync).toMatch(/\/handlers\/sync\.ts$/);
    expect(HANDLER_ENTRIES.publish).toMatch(/\/handlers\/publish\.ts$/);
  });

  it("bundles the deflate worker beside index.mjs after bundling, as a module that answers on a worker thread", async () => {
    const out = await mkdtemp(join(tmpdir(), "layer-sync-bundle-"));
    try {
      const commands = nodejsBundling().commandHooks?.afterBundling(REPO_ROOT.replace(/\/$/, ""), out) ?? [];
      expect(commands).toHaveLength(1);
      for (const command of commands) {
        await promisify(execFile)("bash", ["-c", command], { cwd: REPO_ROOT });
      }
      expect(await readdir(out)).toEqual(["deflate-worker.mjs"]);
      const text = Buffer.from("handler ".repeat(500));
      const reply = await new Promise<{ buffer?: ArrayBuffer }>((resolve, reject) => {
        const worker = new Worker(join(out, "deflate-worker.mjs"), { workerData: WORKER_ROLE });
        worker.once("message", (m: { buffer?: ArrayBuffer }) => {
          resolve(m);
          void worker.terminate();
        });
        worker.once("error", reject);
        const input = new Uint8Array(text); // a copy that owns its whole ArrayBuffer
        worker.postMessage({ id: 1, buffer: input.buffer, lengths: [input.length], ops: [-1], level: 6 });
      });
      expect(Buffer.from(reply.buffer ?? new ArrayBuffer(0)).equals(deflateRawSync(text, { level: 6 }))).toBe(true);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });
});
