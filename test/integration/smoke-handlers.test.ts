import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { arch, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LayerOverrides } from "../../lib/common/layer-json.ts";
import { runSmokeLocally } from "../../lib/publish/smoke-local.ts";
import { smokeSyncedPackages } from "../../lib/publish/smoke-synced.ts";
import { MODE, ZIP_DATE } from "../../lib/zip/folder-zip.ts";
import { zipToBuffer } from "../../lib/zip/writer.ts";
import { startGitHubEmulator } from "../emulators/github.ts";
import { FixtureRepo } from "../fixtures/repo.ts";
import { syncToDir } from "../support/sync-to-dir.ts";

const PYTHON = "/root/.pyenv/versions/3.12.1/bin/python3.12";
const NODE = resolve("node_modules/.bin/node");
const hasPython = existsSync(PYTHON);

let root: string;

async function put(base: string, files: Record<string, string | Buffer>): Promise<string> {
  for (const [name, content] of Object.entries(files)) {
    await mkdir(dirname(join(base, name)), { recursive: true });
    await writeFile(join(base, name), content);
  }
  return base;
}

/** The Python 3.12 smoke handler, run here on `layer` importing `modules`. */
const smokePython = (layer: string, modules: string[]) =>
  runSmokeLocally({ family: "python", interpreter: PYTHON, layerDir: layer, modules, pythonVersion: "3.12" });

/** The Node.js smoke handler, run here on `layer` loading `modules`. */
const smokeNode = (layer: string, modules: string[]) =>
  runSmokeLocally({ family: "nodejs", interpreter: NODE, layerDir: layer, modules });

/** A copy of a shared library of this machine, relabelled (ELF e_machine) for the other architecture. */
async function foreignSharedLibrary(from: string): Promise<Buffer> {
  const bytes = Buffer.from(await readFile(from));
  const EM_X86_64 = 0x3e;
  const EM_AARCH64 = 0xb7;
  bytes.writeUInt16LE(arch() === "arm64" ? EM_X86_64 : EM_AARCH64, 18);
  return bytes;
}

async function someSharedLibrary(dir: string): Promise<string> {
  const found = (await readdir(dir)).find((f) => f.endsWith(".so"));
  if (!found) throw new Error(`no shared library in ${dir}`);
  return join(dir, found);
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "smoke-handlers-"));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe.skipIf(!hasPython)("the Python smoke handler on Python 3.12", () => {
  it("imports a layer's packages from python/ and site-packages and reports them", async () => {
    const layer = await put(join(root, "py-good"), {
      "python/goodpkg/__init__.py": "VALUE = 1\n",
      "python/lib/python3.12/site-packages/sitemod.py": "import goodpkg\n",
    });
    const result = await smokePython(layer, ["goodpkg", "sitemod"]);
    expect(result).toEqual({ ok: true, imported: ["goodpkg", "sitemod"] });
  });

  it("fails with the import error's last line when a module is missing", async () => {
    const layer = await put(join(root, "py-missing"), { "python/goodpkg/__init__.py": "import notinstalled\n" });
    const result = await smokePython(layer, ["json", "goodpkg"]);
    expect(result).toEqual({
      ok: false,
      imported: ["json"],
      error: "goodpkg: ModuleNotFoundError: No module named 'notinstalled'",
    });
  });

  it("fails when the layer's extension module is built for the other architecture", async () => {
    const so = await someSharedLibrary("/root/.pyenv/versions/3.12.1/lib/python3.12/lib-dynload");
    const layer = await put(join(root, "py-arch"), {
      "python/fastnative/__init__.py": "from ._native import speedup\n",
      "python/fastnative/_native.abi3.so": await foreignSharedLibrary(so),
    });
    const result = await smokePython(layer, ["fastnative"]);
    expect(result.ok).toBe(false);
    expect(result.imported).toEqual([]);
    expect(result.error).toMatch(/^fastnative: ImportError: .*_native\.abi3\.so/);
  });
});

describe("the Node.js smoke handler on Node 24", () => {
  it("loads a layer's packages from nodejs/node_modules, CommonJS and ES modules", async () => {
    const layer = await put(join(root, "node-good"), {
      "nodejs/node_modules/cjs-pkg/package.json": JSON.stringify({ name: "cjs-pkg", main: "index.js" }),
      "nodejs/node_modules/cjs-pkg/index.js": "module.exports = 1;\n",
      "nodejs/node_modules/@acme/esm-pkg/package.json": JSON.stringify({
        name: "@acme/esm-pkg",
        type: "module",
        exports: "./index.js",
      }),
      "nodejs/node_modules/@acme/esm-pkg/index.js": "export const value = 1;\n",
    });
    const result = await smokeNode(layer, ["cjs-pkg", "@acme/esm-pkg"]);
    expect(result).toEqual({ ok: true, imported: ["cjs-pkg", "@acme/esm-pkg"] });
  });

  it("fails with the error's reason when a package is missing", async () => {
    const layer = await put(join(root, "node-missing"), {
      "nodejs/node_modules/app/package.json": JSON.stringify({ name: "app", main: "index.js" }),
      "nodejs/node_modules/app/index.js": "require('left-pad-missing');\n",
    });
    const result = await smokeNode(layer, ["app"]);
    expect(result.ok).toBe(false);
    expect(result.error).toMatch(/^app: MODULE_NOT_FOUND: Cannot find module 'left-pad-missing'/);
    expect(result.error).not.toContain("\n");
  });

  it("fails when a native addon is built for the other architecture", async () => {
    const dir = hasPython ? "/root/.pyenv/versions/3.12.1/lib/python3.12/lib-dynload" : "/usr/lib/x86_64-linux-gnu";
    const layer = await put(join(root, "node-arch"), {
      "nodejs/node_modules/native/package.json": JSON.stringify({ name: "native", main: "index.js" }),
      "nodejs/node_modules/native/index.js": "module.exports = require('./build/Release/native.node');\n",
      "nodejs/node_modules/native/build/Release/native.node": await foreignSharedLibrary(await someSharedLibrary(dir)),
    });
    const result = await smokeNode(layer, ["native"]);
    expect(result.ok).toBe(false);
    expect(result.error).toMatch(/^native: ERR_DLOPEN_FAILED: .*native\.node/);
  });
});

describe("sync --out DIR --smoke", () => {
  it("extracts each written zip and runs the handler of each runtime it can, saying which it cannot", async () => {
    const out = join(root, "out");
    const file = (name: string, text: string) => ({
      name,
      mode: MODE.file,
      size: Buffer.byteLength(text),
      content: Buffer.from(text),
    });
    const zip = await zipToBuffer(
      [
        file("nodejs/node_modules/leftpad/index.js", "module.exports = 1;\n"),
        file("nodejs/node_modules/leftpad/package.json", '{"name":"leftpad","main":"index.js"}'),
        file("python/broken/__init__.py", "import not_there\n"),
      ],
      ZIP_DATE,
    );
    await put(out, { "layers/mixed/mixed-20261201T000000Z.zip": zip });
    const machine = arch() === "x64" ? "x86_64" : "arm64";
    const other = machine === "x86_64" ? "arm64" : "x86_64";

    const results = await smokeSyncedPackages({
      outDir: out,
      packages: [{ name: "mixed", key: "layers/mixed/mixed-20261201T000000Z.zip" }],
      runtimes: ["nodejs24.x", "python3.12", "python3.99"],
      architectures: [machine, other],
      machine,
      pathDirs: hasPython ? [dirname(PYTHON)] : [],
      node: NODE,
      baseEnv: { PATH: process.env.PATH },
    });

    const view = results.map((r) => [r.runtime, r.architecture, r.result, r.error ?? r.note]);
    expect(view).toEqual([
      ["nodejs24.x", machine, "ok", `run with ${NODE} (the CLI's Node), not nodejs24.x`],
      ["nodejs24.x", other, "not-run", `this machine is ${machine}`],
      hasPython
        ? ["python3.12", machine, "failed", "broken: ModuleNotFoundError: No module named 'not_there'"]
        : ["python3.12", machine, "not-run", "no python3.12 interpreter on PATH"],
      ["python3.12", other, "not-run", `this machine is ${machine}`],
      ["python3.99", machine, "not-run", "no python3.99 interpreter on PATH"],
      ["python3.99", other, "not-run", `this machine is ${machine}`],
    ]);
  });
});

describe('sync --out DIR --smoke with layer.json "smoke"', () => {
  it("imports the modules layer.json names for folders that have it, and the top-level packages for the others", async () => {
    const TOKEN = "smoke-synced-token-0123456789abcdef";
    const repo = new FixtureRepo("acme", "layers");
    const file = (text: string) => ({ kind: "file" as const, content: Buffer.from(text) });
    const leftpad = {
      "nodejs/node_modules/leftpad/index.js": file("module.exports = 1;\n"),
      "nodejs/node_modules/leftpad/package.json": file('{"name":"leftpad","main":"index.js"}'),
    };
    const prefixed = (folder: string, files: Record<string, ReturnType<typeof file>>) =>
      Object.fromEntries(Object.entries(files).map(([k, v]) => [`${folder}/${k}`, v]));
    repo.commit(
      "main",
      {
        ...prefixed("layers/named", { ...leftpad, "layer.json": file('{"smoke": ["leftpad", "not_in_layer"]}') }),
        ...prefixed("layers/plain", leftpad),
      },
      "two node layers",
    );
    const gh = await startGitHubEmulator({ repos: [repo], tokens: [TOKEN] });
    const machine = arch() === "x64" ? "x86_64" : "arm64";
    const out = join(root, "synced-out");
    const smokeModules = new Map<string, string[]>();
    try {
      const env = {
        SOURCE_PROVIDER: "github",
        SOURCE_REPOSITORY: "acme/layers",
        SOURCE_PATHS: "layers/named,layers/plain",
        SOURCE_API_URL: gh.apiUrl,
      };
      const summary = await syncToDir(
        env,
        TOKEN,
        { out, work: join(root, "synced-work") },
        {
          onLayerConfig: (path: string, o: LayerOverrides) => {
            if (o.smoke) smokeModules.set(path, o.smoke);
          },
        },
      );
      expect(summary.packages.map((p) => p.error ?? "ok")).toEqual(["ok", "ok"]);
      expect([...smokeModules]).toEqual([["layers/named", ["leftpad", "not_in_layer"]]]);

      const results = await smokeSyncedPackages({
        outDir: out,
        packages: summary.packages,
        runtimes: ["nodejs24.x"],
        architectures: [machine],
        machine,
        pathDirs: [],
        node: NODE,
        baseEnv: { PATH: process.env.PATH },
        smokeModules,
      });
      expect(results.map((r) => [r.package, r.result, r.imported, r.error ?? null])).toEqual([
        ["named", "failed", ["leftpad"], expect.stringMatching(/^not_in_layer: /)],
        ["plain", "ok", ["leftpad"], null],
      ]);
    } finally {
      await gh.close();
    }
  });
});
