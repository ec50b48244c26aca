/**
 * Lock files made by the real tools at test time (pinned versions), read by layer-sync, and compared with
 * what the tools themselves install in production mode:
 *   uv 0.13.9 and Poetry 2.5.1 (each installed with pip into a virtualenv cached in the repository's
 *     `.tmp/`): `uv lock` / `poetry lock`, then the converted hashed requirements installed by pip
 *     (`--require-hashes --no-deps --target`); Poetry's own `check --lock` agrees with the content-hash rule;
 *   pnpm 10.34.8, Yarn 1.22.22 and Yarn 4.18.1 (`npx`): the lock, then a production install, whose tree
 *     must hold exactly the lock's production set.
 * Every install tree then gives an SBOM that must validate against the CycloneDX 1.5 schema.
 * Pipenv locks are checked in (test/fixtures/locks/README.md says how they were made; `pipenv lock` takes
 * about a minute), with hashes pipenv computed.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readPnpmLock, readYarnLock } from "../../lib/builds/locks/node.ts";
import { convertPoetryLock, convertUvLock } from "../../lib/builds/locks/python.ts";
import {
  createSbom,
  nodeComponents,
  pythonComponents,
  readInstalledNode,
  readInstalledPython,
} from "../../lib/builds/sbom.ts";
import { BuildError } from "../../lib/common/errors.ts";
import { cycloneDx15Errors } from "../support/cyclonedx.ts";

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "../..");
const UV_VERSION = "0.13.9";
const PNPM = "pnpm@10.34.8";
const YARN1 = "yarn@1.22.22";
const YARN_BERRY = "@yarnpkg/cli-dist@4.18.1";
const UV_VENV = join(ROOT, ".tmp", `uv-${UV_VERSION}`);
const POETRY_VERSION = "2.5.1";
const POETRY_VENV = join(ROOT, ".tmp", `poetry-${POETRY_VERSION}`);
const TOOL = { name: "layer-sync", version: "test" };
const LONG = 300_000;

/** The Python that creates the uv virtualenv: the moto virtualenv's, else python3 from PATH. */
function basePython(): string {
  const inVenv = join(resolve(ROOT, process.env.LAYER_SYNC_VENV ?? ".venv"), "bin", "python");
  return existsSync(inVenv) ? inVenv : "python3";
}

async function sh(file: string, args: string[], cwd: string, env: Record<string, string> = {}): Promise<string> {
  const { stdout } = await run(file, args, {
    cwd,
    env: { ...process.env, ...env },
    maxBuffer: 64 * 1024 * 1024,
    timeout: LONG,
  });
  return stdout;
}

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "locks-tools-"));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const PACKAGE_JSON = {
  name: "fixture-node",
  version: "1.0.0",
  private: true,
  dependencies: { debug: "^4.3.4", "@sindresorhus/is": "^4.6.0" },
  devDependencies: { "is-number": "^7.0.0" },
};
const NODE_PRODUCTION = ["@sindresorhus/is", "debug", "ms"];

async function nodeFolder(name: string, extra: Record<string, string> = {}): Promise<string> {
  const dir = join(work, name);
  await mkdir(dir, { recursive: true });
  const manifest = JSON.stringify(PACKAGE_JSON, null, 2);
  await writeFile(join(dir, "package.json"), manifest);
  for (const [file, text] of Object.entries(extra)) await writeFile(join(dir, file), text);
  return dir;
}

const ids = (list: readonly { name: string; version: string }[]) => list.map((p) => `${p.name}@${p.version}`).sort();

describe("locks made by the real tools", () => {
  it(
    "converts a uv.lock into hashed requirements that pip installs as exactly the production set",
    async () => {
      if (!existsSync(join(UV_VENV, "bin", "uv"))) {
        await sh(basePython(), ["-m", "venv", UV_VENV], ROOT);
        await sh(join(UV_VENV, "bin", "python"), ["-m", "pip", "install", "-q", `uv==${UV_VERSION}`], ROOT);
      }
      const dir = join(work, "uv");
      await mkdir(dir, { recursive: true });
      await writeFile(
        join(dir, "pyproject.toml"),
        [
          "[project]",
          'name = "fixture-uv"',
          'version = "0.1.0"',
          'requires-python = ">=3.9"',
          'dependencies = ["requests>=2.31", "click >= 8.1, <9", "tqdm"]',
          "[project.optional-dependencies]",
          'socks = ["PySocks>=1.7"]',
          "[dependency-groups]",
          'dev = ["pytest>=8"]',
          "",
        ].join("\n"),
      );
      const python = join(UV_VENV, "bin", "python");
      const uvEnv = { UV_PYTHON_DOWNLOADS: "never", UV_NO_CONFIG: "1" };
      await sh(join(UV_VENV, "bin", "uv"), ["lock", "--python", python], dir, uvEnv);
      const converted = convertUvLock({
        manifest: await readFile(join(dir, "pyproject.toml"), "utf8"),
        lock: await readFile(join(dir, "uv.lock"), "utf8"),
        where: "layers/uv",
      });
      // uv's own production export names the same packages at the same versions
      const exported = await sh(
        join(UV_VENV, "bin", "uv"),
        ["export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes", "--format", "requirements.txt"],
        dir,
        uvEnv,
      );
      const uvSet = exported
        .split("\n")
        .filter((l) => /^[A-Za-z0-9]/.test(l))
        .map((l) => (l.split(/\s*;/)[0] ?? "").trim().toLowerCase())
        .sort();
      expect(converted.packages.map((p) => `${p.name.toLowerCase()}==${p.version}`).sort()).toEqual(uvSet);
      expect(converted.packages.map((p) => p.name)).not.toContain("pytest");

      await writeFile(join(dir, "requirements.locked.txt"), converted.requirements);
      const target = join(dir, "python");
      await sh(
        python,
        [
          "-m",
          "pip",
          "install",
          "-q",
          "--require-hashes",
          "--no-deps",
          "--only-binary",
          ":all:",
          "--target",
          target,
          "-r",
          "requirements.locked.txt",
        ],
        dir,
      );
      const installed = await readInstalledPython(target);
      const norm = (n: string) => n.toLowerCase().replace(/[-_.]+/g, "-");
      const skipped = converted.packages.filter(
        (p) => !installed.some((i) => norm(i.name) === norm(p.name) && i.version === p.version),
      );
      // requires-python >=3.9 forks the resolution (click, idna, requests, urllib3 have versions for Python
      // < 3.10 and >= 3.10, each under its marker): pip installs one version of every package but the
      // Windows-only colorama, and nothing the conversion did not name
      expect(skipped.filter((p) => !installed.some((i) => norm(i.name) === norm(p.name))).map((p) => p.name)).toEqual([
        "colorama",
      ]);
      expect(installed.map((i) => norm(i.name))).toEqual(
        [...new Set(converted.packages.map((p) => norm(p.name)))].filter((n) => n !== "colorama"),
      );
      expect(skipped.every((p) => p.marker !== undefined)).toBe(true);

      const bom = createSbom({
        subject: { name: "uv" },
        components: pythonComponents(installed, converted.packages),
        tool: TOOL,
      });
      expect(cycloneDx15Errors(bom)).toEqual([]);
      expect(bom.components.every((c) => (c.hashes?.length ?? 0) > 0)).toBe(true);
    },
    LONG,
  );

  it(
    "converts a poetry.lock's main group, and finds it out of date exactly when Poetry does",
    async () => {
      if (!existsSync(join(POETRY_VENV, "bin", "poetry"))) {
        await sh(basePython(), ["-m", "venv", POETRY_VENV], ROOT);
        await sh(join(POETRY_VENV, "bin", "python"), ["-m", "pip", "install", "-q", `poetry==${POETRY_VERSION}`], ROOT);
      }
      const poetry = join(POETRY_VENV, "bin", "poetry");
      const dir = join(work, "poetry");
      await mkdir(dir, { recursive: true });
      const pyproject = [
        "[project]",
        'name = "fixture-poetry"',
        'version = "0.1.0"',
        'requires-python = ">=3.9"',
        'dependencies = ["requests>=2.31", "tqdm"]',
        "[project.optional-dependencies]",
        'socks = ["PySocks>=1.7"]',
        "[tool.poetry]",
        "package-mode = false",
        "[tool.poetry.group.dev.dependencies]",
        'pytest = ">=8"',
        "",
      ].join("\n");
      await writeFile(join(dir, "pyproject.toml"), pyproject);
      const env = { POETRY_VIRTUALENVS_CREATE: "false", POETRY_NO_INTERACTION: "1" };
      await sh(poetry, ["lock"], dir, env);
      const lock = await readFile(join(dir, "poetry.lock"), "utf8");
      const converted = convertPoetryLock({ manifest: pyproject, lock, where: "layers/poetry" });
      const names = converted.packages.map((p) => p.name);
      expect(names).toEqual(expect.arrayContaining(["requests", "tqdm", "urllib3", "certifi", "idna"]));
      expect(names).not.toContain("pytest");
      expect(names).not.toContain("pysocks");

      const python = join(POETRY_VENV, "bin", "python");
      await writeFile(join(dir, "requirements.locked.txt"), converted.requirements);
      const target = join(dir, "python");
      await sh(
        python,
        [
          "-m",
          "pip",
          "install",
          "-q",
          "--require-hashes",
          "--no-deps",
          "--only-binary",
          ":all:",
          "--target",
          target,
          "-r",
          "requirements.locked.txt",
        ],
        dir,
      );
      const installed = (await readInstalledPython(target)).map((p) => p.name.toLowerCase().replace(/[-_.]+/g, "-"));
      expect(installed).toEqual([...new Set(names.map((n) => n.toLowerCase()))].filter((n) => n !== "colorama").sort());

      // a dependency added to pyproject.toml: Poetry's check and layer-sync's both say the lock is stale
      const changed = pyproject.replace('"tqdm"]', '"tqdm", "attrs"]');
      await writeFile(join(dir, "pyproject.toml"), changed);
      await expect(sh(poetry, ["check", "--lock"], dir, env)).rejects.toThrow();
      expect(() => convertPoetryLock({ manifest: changed, lock, where: "layers/poetry" })).toThrow(BuildError);
      // and only the manifest's dependencies count: a description change is not staleness for either
      const described = pyproject.replace('version = "0.1.0"', 'version = "0.1.0"\ndescription = "x"');
      await writeFile(join(dir, "pyproject.toml"), described);
      await sh(poetry, ["check", "--lock"], dir, env);
      expect(convertPoetryLock({ manifest: described, lock, where: "layers/poetry" }).packages).toHaveLength(
        names.length,
      );
    },
    LONG,
  );

  it(
    "reads a pnpm-lock.yaml whose production set is what pnpm installs with --prod",
    async () => {
      const dir = await nodeFolder("pnpm");
      await sh("npx", ["-y", PNPM, "install", "--lockfile-only", "--ignore-scripts"], dir);
      const set = readPnpmLock({
        manifest: await readFile(join(dir, "package.json"), "utf8"),
        lock: await readFile(join(dir, "pnpm-lock.yaml"), "utf8"),
        where: "layers/pnpm",
      });
      expect(set.packages.map((p) => p.name)).toEqual(NODE_PRODUCTION);
      await sh("npx", ["-y", PNPM, "install", "--prod", "--frozen-lockfile", "--ignore-scripts"], dir);
      const installed = await readInstalledNode(join(dir, "node_modules"));
      expect(ids(installed)).toEqual(ids(set.packages));
      const bom = createSbom({
        subject: { name: "pnpm" },
        components: nodeComponents(installed, set.packages),
        tool: TOOL,
      });
      expect(cycloneDx15Errors(bom)).toEqual([]);
    },
    LONG,
  );

  it(
    "reads a Yarn 1 yarn.lock whose production set is what yarn installs with --production",
    async () => {
      const dir = await nodeFolder("yarn1");
      await sh("npx", ["-y", YARN1, "install", "--ignore-scripts", "--non-interactive", "--no-progress"], dir);
      const set = readYarnLock({
        manifest: await readFile(join(dir, "package.json"), "utf8"),
        lock: await readFile(join(dir, "yarn.lock"), "utf8"),
        where: "layers/yarn1",
      });
      expect(set.format).toBe("yarn 1");
      await rm(join(dir, "node_modules"), { recursive: true, force: true });
      await sh(
        "npx",
        ["-y", YARN1, "install", "--production", "--frozen-lockfile", "--ignore-scripts", "--non-interactive"],
        dir,
      );
      expect(ids(await readInstalledNode(join(dir, "node_modules")))).toEqual(ids(set.packages));
      expect(set.packages.map((p) => p.name)).toEqual(NODE_PRODUCTION);
    },
    LONG,
  );

  it(
    "reads a Yarn Berry yarn.lock whose production set is what `yarn workspaces focus --production` installs",
    async () => {
      const dir = await nodeFolder("berry", { ".yarnrc.yml": "nodeLinker: node-modules\nenableTelemetry: false\n" });
      const env = { YARN_ENABLE_GLOBAL_CACHE: "0", YARN_ENABLE_IMMUTABLE_INSTALLS: "0" };
      await sh("npx", ["-y", YARN_BERRY, "install", "--mode=update-lockfile"], dir, env);
      const set = readYarnLock({
        manifest: await readFile(join(dir, "package.json"), "utf8"),
        lock: await readFile(join(dir, "yarn.lock"), "utf8"),
        where: "layers/berry",
      });
      expect(set.format).toMatch(/^yarn berry \d+$/);
      await sh("npx", ["-y", YARN_BERRY, "workspaces", "focus", "--all", "--production"], dir, env);
      expect(ids(await readInstalledNode(join(dir, "node_modules")))).toEqual(ids(set.packages));
      expect(set.packages.map((p) => p.name)).toEqual(NODE_PRODUCTION);
    },
    LONG,
  );
});
