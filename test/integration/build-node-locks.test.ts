/**
 * Local builds of the pnpm and Yarn lock families. The lock files are made at test time by the real tools at
 * pinned versions (pnpm 10.34.8, Yarn 1.22.22, Yarn 4.18.1 as `@yarnpkg/cli-dist`), installed with
 * `npm install --prefix` into `.tmp/` from the npm registry; the build converts the lock into an exact
 * package-lock.json and installs it with `npm ci --omit=dev --ignore-scripts` for nodejs24.x on x86_64 and
 * arm64 (pure-JS dependencies, so both build here). The layer must hold exactly the lock's production set
 * (a nested version included), no dev dependency, the same bytes on a rebuild, and an SBOM of what it holds
 * with the lock's hashes.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildTarget, checkRequirements } from "../../lib/builds/content.ts";
import { LocalBuilder } from "../../lib/builds/local.ts";
import { walkDirectory } from "../../lib/builds/tree.ts";
import { type BuildPlan, planBuild } from "../../lib/common/build-plan.ts";
import { BuildError, ConfigError } from "../../lib/common/errors.ts";
import { cycloneDx15Errors } from "../support/cyclonedx.ts";
import { readZip } from "../support/zip.ts";

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "../..");
const CACHE = join(ROOT, ".cache", "build");
const TOOL_VERSIONS = ["pnpm@10.34.8", "yarn@1.22.22", "@yarnpkg/cli-dist@4.18.1"];
const TOOLS = join(ROOT, ".tmp", "node-lock-tools-pnpm10.34.8-yarn1.22.22-berry4.18.1");
const LONG = 300_000;

type Kind = "pnpm" | "yarn1" | "berry";
const LOCK: Record<Kind, string> = { pnpm: "pnpm-lock.yaml", yarn1: "yarn.lock", berry: "yarn.lock" };

const MANIFEST = {
  name: "fixture-node-locks",
  version: "1.0.0",
  private: true,
  // debug 2.6.9 needs ms 2.0.0 while the folder asks for ms ^2.1.3: one of them is nested
  dependencies: { debug: "2.6.9", ms: "^2.1.3", "@sindresorhus/is": "4.6.0" },
  devDependencies: { "is-odd": "3.0.1" },
};
/** The production set every lock holds (name@version). */
const PRODUCTION = ["@sindresorhus/is@4.6.0", "debug@2.6.9", "ms@2.0.0", "ms@2.1.3"];

async function sh(file: string, args: string[], cwd: string, env: Record<string, string> = {}): Promise<string> {
  const { stdout } = await run(file, args, { cwd, env: { ...process.env, ...env }, timeout: LONG });
  return stdout;
}

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "layer-sync-node-locks-"));
  if (!existsSync(join(TOOLS, "node_modules", "@yarnpkg", "cli-dist", "bin", "yarn.js"))) {
    await mkdir(TOOLS, { recursive: true });
    await sh(
      "npm",
      ["install", "--prefix", TOOLS, "--ignore-scripts", "--no-audit", "--no-fund", ...TOOL_VERSIONS],
      TOOLS,
    );
  }
}, LONG);
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

let folders = 0;
/** A folder with package.json and the lock the real tool wrote (and nothing else of the tool's). */
async function lockedFolder(kind: Kind, manifest: object = MANIFEST): Promise<string> {
  const dir = join(work, `${kind}-${++folders}`);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "package.json"), `${JSON.stringify(manifest, null, 2)}\n`);
  const bin = join(TOOLS, "node_modules");
  const env = { HOME: join(work, "tool-home"), npm_config_cache: join(work, "tool-npm-cache") };
  if (kind === "pnpm") {
    await sh(
      "node",
      [join(bin, "pnpm", "bin", "pnpm.cjs"), "install", "--lockfile-only", "--ignore-scripts"],
      dir,
      env,
    );
  } else if (kind === "yarn1") {
    const args = ["install", "--ignore-scripts", "--non-interactive", "--no-progress", "--no-default-rc"];
    await sh(
      "node",
      [join(bin, "yarn", "bin", "yarn.js"), ...args, "--cache-folder", join(work, "yarn1-cache")],
      dir,
      env,
    );
  } else {
    await writeFile(join(dir, ".yarnrc.yml"), "enableTelemetry: false\nenableGlobalCache: false\n");
    await sh(
      "node",
      [join(bin, "@yarnpkg", "cli-dist", "bin", "yarn.js"), "install", "--mode=update-lockfile"],
      dir,
      env,
    );
  }
  // the layer's source: the manifest, the lock, the tool's build-only file and one module of the folder's own
  for (const extra of ["node_modules", ".yarn", ".pnp.cjs", ".pnp.loader.mjs"]) {
    await rm(join(dir, extra), { recursive: true, force: true });
  }
  await writeFile(join(dir, "index.js"), "module.exports = 1;\n");
  return dir;
}

function plan(kind: Kind): BuildPlan {
  return planBuild({
    folder: `layers/${kind}`,
    name: kind,
    layerNamePrefix: "",
    files: [LOCK[kind], "package.json", "index.js"],
    defaults: { runtimes: ["nodejs24.x"], architectures: ["x86_64", "arm64"] },
  }) as BuildPlan;
}

let builds = 0;
async function build(dir: string, kind: Kind, targetIndex: number) {
  const files = await walkDirectory(dir, kind);
  const p = plan(kind);
  const target = p.targets[targetIndex] as BuildPlan["targets"][number];
  const home = join(work, `home-${++builds}`);
  await mkdir(home, { recursive: true });
  const builder = new LocalBuilder({ env: process.env, home, cacheDir: CACHE, timeoutMs: LONG });
  const requirements = await checkRequirements(p, files);
  const out = join(work, `run-${builds}`);
  const built = await buildTarget({
    plan: p,
    target,
    files,
    builder,
    workDir: out,
    zipFile: `${out}.zip`,
    requirements,
  });
  const bytes = await readFile(built.zip.path);
  const entries = await readZip(bytes);
  const installed: string[] = [];
  for (const e of entries) {
    if (!/^nodejs\/node_modules\/(?:.+\/node_modules\/)?(?:@[^/]+\/)?[^/@]+\/package\.json$/.test(e.name)) continue;
    const pkg = JSON.parse(e.content.toString("utf8")) as { name: string; version: string };
    installed.push(`${pkg.name}@${pkg.version}`);
  }
  return {
    plan: p,
    target,
    requirements,
    built,
    bytes,
    names: entries.map((e) => e.name),
    installed: installed.sort(),
  };
}

describe("a local build of a pnpm or Yarn lock", () => {
  it.each(["pnpm", "yarn1", "berry"] as const)(
    "installs exactly the %s lock's production set for nodejs24.x on both architectures, the same bytes twice",
    { timeout: LONG },
    async (kind) => {
      const dir = await lockedFolder(kind);
      const x86 = await build(dir, kind, 0);
      expect(x86.target).toMatchObject({ runtime: "nodejs24.x", architecture: "x86_64" });
      const lockSet = (x86.requirements?.nodeLock?.packages ?? []).map((p) => `${p.name}@${p.version}`);
      expect(lockSet).toEqual(PRODUCTION);
      expect(x86.installed).toEqual(PRODUCTION);
      expect(x86.names).toContain("nodejs/node_modules/debug/node_modules/ms/package.json");
      expect(x86.names.some((n) => /is-odd|is-number/.test(n))).toBe(false);
      expect(x86.names).toContain("index.js");
      for (const never of ["package.json", "package-lock.json", "pnpm-lock.yaml", "yarn.lock", ".yarnrc.yml"]) {
        expect(x86.names).not.toContain(never);
      }
      expect(x86.names).not.toContain("nodejs/node_modules/.package-lock.json");

      const again = await build(dir, kind, 0);
      expect(again.bytes.equals(x86.bytes)).toBe(true);
      expect(again.built.sbom.text).toBe(x86.built.sbom.text);

      const arm = await build(dir, kind, 1);
      expect(arm.target).toMatchObject({ runtime: "nodejs24.x", architecture: "arm64" });
      expect(arm.installed).toEqual(PRODUCTION);

      // the SBOM: exactly the installed packages, with the integrity the lock recorded (Berry records none)
      const sbom = JSON.parse(x86.built.sbom.text) as {
        components: { name: string; version: string; purl: string; hashes?: { alg: string; content: string }[] }[];
      };
      expect(cycloneDx15Errors(sbom)).toEqual([]);
      const components = sbom.components.map((c) => `${c.name}@${c.version}`).sort();
      expect(components).toEqual(PRODUCTION);
      const ms = sbom.components.find((c) => c.name === "ms" && c.version === "2.1.3");
      expect(ms?.purl).toBe("pkg:npm/ms@2.1.3");
      if (kind === "berry") {
        expect(ms?.hashes ?? []).toEqual([]);
      } else {
        // sha512-6FlzubTLZG3J… (ms 2.1.3's registry integrity) as hex
        const sha512 = Buffer.from(
          "6FlzubTLZG3J2a/NVCAleEhjzq5oxgHyaCU9yYXvcLsvoVaHJq/s5xXI6/XXP6tz7R9xAOtHnSO/tXtF3WRTlA==",
          "base64",
        ).toString("hex");
        expect(ms?.hashes).toEqual([{ alg: "SHA-512", content: sha512 }]);
      }
    },
  );

  it.each([
    ["pnpm", "pnpm-lock.yaml", "pnpm install"],
    ["yarn1", "yarn.lock", "yarn install"],
    ["berry", "yarn.lock", "yarn install"],
  ] as const)(
    "fails a %s folder whose lock is out of date with package.json, naming %s and `%s`",
    { timeout: LONG },
    async (kind, lock, command) => {
      const dir = await lockedFolder(kind);
      const stale = { ...MANIFEST, dependencies: { ...MANIFEST.dependencies, "is-number": "7.0.0" } };
      await writeFile(join(dir, "package.json"), JSON.stringify(stale));
      const files = await walkDirectory(dir, kind);
      const error = await checkRequirements(plan(kind), files).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BuildError);
      expect(String((error as Error).message)).toContain(`layers/${kind}/${lock} is out of date with package.json`);
      expect(String((error as Error).message)).toContain(`run \`${command}\``);
    },
  );

  it("refuses package.json without a lock, naming the commands that write one (exit 2)", () => {
    expect(() => plan("pnpm")).not.toThrow();
    const without = () =>
      planBuild({
        folder: "layers/api",
        name: "api",
        layerNamePrefix: "",
        files: ["package.json", "index.js"],
        defaults: { runtimes: ["nodejs24.x"], architectures: ["x86_64"] },
      });
    expect(without).toThrow(ConfigError);
    expect(without).toThrow(
      /`npm install` \(package-lock\.json\) or `pnpm install` \(pnpm-lock\.yaml\) or `yarn install`/,
    );
  });

  it("refuses a folder with both pnpm-lock.yaml and yarn.lock, naming both (exit 2)", () => {
    const both = () =>
      planBuild({
        folder: "layers/api",
        name: "api",
        layerNamePrefix: "",
        files: ["package.json", "pnpm-lock.yaml", "yarn.lock"],
        defaults: { runtimes: ["nodejs24.x"], architectures: ["x86_64"] },
      });
    expect(both).toThrow(ConfigError);
    expect(both).toThrow(/package\.json \+ pnpm-lock\.yaml, package\.json \+ yarn\.lock/);
  });
});
