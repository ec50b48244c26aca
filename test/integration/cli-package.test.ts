import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Worker } from "node:worker_threads";
import { deflateRawSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WORKER_ROLE } from "../../lib/zip/deflate-worker.ts";
import { type BitbucketEmulator, startBitbucketEmulator } from "../emulators/bitbucket.ts";
import { standardRepo } from "../fixtures/repo.ts";
import { readZip } from "../support/zip.ts";

const exec = promisify(execFile);
const ROOT = new URL("../../", import.meta.url).pathname;
const TOKEN = "bb-package-token-5e6f7a8b9c0d";
const pkg = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as {
  version: string;
  dependencies?: Record<string, string>;
};
let scratch: string;
let bb: BitbucketEmulator;
let packed: { filename: string; files: { path: string }[] };

/** npm with the caller's environment minus what `npm test` injects (npm_config_*, npm_lifecycle_*, …). */
function npmEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith("npm_")));
}

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "ls-package-"));
  bb = await startBitbucketEmulator({ repos: [standardRepo({ bigFileBytes: 64 * 1024 })], accessTokens: [TOKEN] });
  // `npm pack` runs the `prepare` script, which builds the bundle, exactly as a release would
  const { stdout } = await exec("npm", ["pack", "--json", "--pack-destination", scratch], {
    cwd: ROOT,
    env: npmEnv(),
    maxBuffer: 16 * 1024 * 1024,
  });
  const json = stdout.slice(stdout.indexOf("[")); // prepare's output may come first
  const [first] = JSON.parse(json) as (typeof packed)[];
  if (!first) throw new Error(`npm pack printed no package: ${stdout.slice(0, 300)}`);
  packed = first;
  await exec(
    "npm",
    [
      "i",
      "-g",
      "--prefix",
      join(scratch, "prefix"),
      "--offline",
      "--no-audit",
      "--no-fund",
      join(scratch, packed.filename),
    ],
    { cwd: scratch, env: npmEnv() },
  );
}, 120_000);

afterAll(async () => {
  await bb?.close();
  await rm(scratch, { recursive: true, force: true });
});

describe("the npm pack tarball", () => {
  it("holds only package.json, the README, the bin and the bundle, and needs no dependencies", () => {
    const files = packed.files.map((f) => f.path).sort();
    const chunks = files.filter((f) => f.startsWith("dist/bundle/chunks/"));
    expect(files.filter((f) => !chunks.includes(f))).toEqual([
      "README.md",
      "dist/bundle/cli.mjs",
      "dist/bundle/deflate-worker.mjs",
      "dist/layer-sync.mjs",
      "package.json",
    ]);
    // the commands' code, split from the entry so that --version and help load only the entry
    expect(chunks.length).toBeGreaterThan(1);
    for (const c of chunks) expect(c).toMatch(/^dist\/bundle\/chunks\/[\w-]+\.mjs$/);
    expect(pkg.dependencies ?? {}).toEqual({});
  });

  it("ships the deflate worker as its own module, which answers a batch on a worker thread", async () => {
    const module = join(scratch, "prefix", "lib", "node_modules", "layer-sync", "dist", "bundle", "deflate-worker.mjs");
    const text = Buffer.from("layer-sync ".repeat(1000));
    const answer = await new Promise<{ lengths?: number[]; buffer?: ArrayBuffer }>((resolve, reject) => {
      const worker = new Worker(module, { workerData: WORKER_ROLE });
      worker.once("message", (m: { lengths?: number[]; buffer?: ArrayBuffer }) => {
        resolve(m);
        void worker.terminate();
      });
      worker.once("error", reject);
      const input = new Uint8Array(text); // a copy that owns its whole ArrayBuffer
      worker.postMessage({ id: 1, buffer: input.buffer, lengths: [input.length], ops: [-1], level: 6 });
    });
    expect(Buffer.from(answer.buffer ?? new ArrayBuffer(0)).equals(deflateRawSync(text, { level: 6 }))).toBe(true);
  });

  it("installs with npm i -g and answers --version from another directory with package.json's version", async () => {
    const installed = await readdir(join(scratch, "prefix", "lib", "node_modules", "layer-sync"));
    expect(installed.sort()).toEqual(["README.md", "dist", "package.json"]);
    const { stdout } = await exec(join(scratch, "prefix", "bin", "layer-sync"), ["--version"], { cwd: scratch });
    expect(stdout).toBe(`layer-sync ${pkg.version}\n`);
  });

  it("runs sync --out with plain Node, writing the folder's zip", async () => {
    const out = join(scratch, "out");
    const { stdout } = await exec(
      join(scratch, "prefix", "bin", "layer-sync"),
      [
        "sync",
        "--provider",
        "bitbucket",
        "--repository",
        "acme/layers",
        "--api-url",
        bb.apiUrl,
        "--web-url",
        bb.webUrl,
        "--path",
        "layers/tools",
        "--work-dir",
        join(scratch, "work"),
        "--out",
        out,
        "--json",
      ],
      { cwd: scratch, env: { PATH: process.env.PATH, SOURCE_TOKEN: TOKEN } },
    );
    const summary = JSON.parse(stdout) as { packages: { name: string; key: string; files: number }[] };
    expect(summary.packages).toHaveLength(1);
    const [tools] = summary.packages;
    const zip = await readZip(await readFile(join(out, tools?.key ?? "missing")));
    expect(zip.length).toBe(tools?.files);
    expect(stdout).not.toContain(TOKEN);
  });
});
