/**
 * Local builds with the real pip and npm against the public registries (small packages; downloads cached
 * in the project's ignored `.cache/build`). The layers are unzipped with Info-ZIP and used: imported by a
 * Python of the runtime's minor version, required by Node, their `.bin` links run.
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildTarget } from "../../lib/build/content.ts";
import { LocalBuilder } from "../../lib/build/local.ts";
import { type BuildPlan, planBuild } from "../../lib/build/plan.ts";
import { walkDirectory } from "../../lib/build/tree.ts";
import { BuildError } from "../../lib/common/errors.ts";

const FIXTURES = resolve(import.meta.dirname, "../fixtures/build");
const CACHE = resolve(import.meta.dirname, "../../.cache/build");
const TIMEOUT = 120_000;

/** A Python 3.12 to import the x86_64 layer with (pyenv's shim may hide it). */
function python312(): string | undefined {
  const pyenv = "/root/.pyenv/versions";
  const candidates = existsSync(pyenv)
    ? execFileSync("ls", [pyenv], { encoding: "utf8" })
        .split("\n")
        .filter((v) => v.startsWith("3.12."))
        .map((v) => join(pyenv, v, "bin", "python3.12"))
    : [];
  for (const c of [...candidates, "python3.12"]) {
    try {
      execFileSync(c, ["-c", "import sys; assert sys.version_info[:2] == (3, 12)"], { stdio: "ignore" });
      return c;
    } catch {
      // not this one
    }
  }
  return undefined;
}

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "layer-sync-build-"));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

let runs = 0;
async function build(fixture: string, runtimes: string[], architectures: string[] = []) {
  const files = await walkDirectory(join(FIXTURES, fixture), fixture);
  const layerJson = files.some((f) => f.path === "layer.json")
    ? await readFile(join(FIXTURES, fixture, "layer.json"), "utf8")
    : undefined;
  const plan = planBuild({
    folder: `layers/${fixture}`,
    name: fixture,
    layerNamePrefix: "",
    files: files.map((f) => f.path),
    layerJson,
    defaults: { runtimes, architectures },
  }) as BuildPlan;
  const home = join(work, `home-${++runs}`);
  await import("node:fs/promises").then((fs) => fs.mkdir(home, { recursive: true }));
  const builder = new LocalBuilder({
    env: process.env,
    home,
    cacheDir: CACHE,
    timeoutMs: TIMEOUT,
  });
  const results = [];
  for (const target of plan.targets) {
    const dir = join(work, `run-${runs}-${target.package}`);
    const built = await buildTarget({ plan, target, files, builder, workDir: dir, zipFile: `${dir}.zip` });
    results.push({ target, built, bytes: await readFile(built.zip.path) });
  }
  return { plan, results };
}

/** Python's zipfile extracts the layer as Lambda would: files with their modes, symlinks as links. */
const EXTRACT = `
import os, stat, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    assert z.testzip() is None
    for info in z.infolist():
        mode = info.external_attr >> 16
        dest = os.path.join(sys.argv[2], info.filename)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        data = z.read(info)
        if stat.S_ISLNK(mode):
            os.symlink(data.decode(), dest)
        else:
            with open(dest, "wb") as f:
                f.write(data)
            os.chmod(dest, stat.S_IMODE(mode))
`;

async function unzip(zipFile: string): Promise<string> {
  const opt = await mkdtemp(join(work, "opt-"));
  execFileSync("python3", ["-c", EXTRACT, zipFile, opt]);
  return opt;
}

function elfMachine(data: Buffer): number {
  expect(data.subarray(0, 4).toString("latin1")).toBe("\x7fELF");
  return data.readUInt16LE(18);
}

async function filesUnder(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).map(String);
}

describe("a local Python build", () => {
  it("installs a pure-Python requirement into python/ next to the folder's own modules", {
    timeout: TIMEOUT,
  }, async () => {
    const { results } = await build("py-pure", ["python3.12"]);
    const [only] = results;
    expect(only?.target.package).toBe("py-pure");
    const opt = await unzip(only?.built.zip.path ?? "");
    const names = await filesUnder(opt);
    expect(names).toContain("python/six.py");
    expect(names).toContain("python/mymodule.py");
    expect(names).not.toContain("requirements.txt");
    expect(names.some((n) => n.includes("__pycache__"))).toBe(false);
    const py = python312() ?? "python3";
    const out = execFileSync(py, ["-c", "import six, mymodule; print(six.__version__, mymodule.GREETING)"], {
      env: { PYTHONPATH: join(opt, "python"), PATH: process.env.PATH ?? "" },
      encoding: "utf8",
    });
    expect(out.trim()).toBe("1.17.0 hello from the layer");
  });

  it("builds PyYAML for x86_64 and arm64 as two packages with the right binaries", { timeout: TIMEOUT }, async () => {
    const { plan, results } = await build("pyyaml", []);
    expect(plan.targets.map((t) => t.package)).toEqual(["pyyaml-python312-x86_64", "pyyaml-python312-arm64"]);
    const byArch = new Map(results.map((r) => [r.target.architecture, r]));

    const x86 = await unzip(byArch.get("x86_64")?.built.zip.path ?? "");
    const py = python312();
    if (py) {
      const out = execFileSync(py, ["-c", "import yaml; print(yaml.__with_libyaml__, yaml.__file__)"], {
        env: { PYTHONPATH: join(x86, "python"), PATH: process.env.PATH ?? "" },
        encoding: "utf8",
      });
      expect(out).toMatch(new RegExp(`^True ${x86}/python/yaml/__init__.py`));
    }

    const arm = await unzip(byArch.get("arm64")?.built.zip.path ?? "");
    const names = await filesUnder(join(arm, "python"));
    const wheel = await readFile(join(arm, "python", "PyYAML-6.0.2.dist-info", "WHEEL"), "utf8");
    expect(wheel).toMatch(/^Tag: cp312-cp312-manylinux_2_17_aarch64$/m);
    const so = names.filter((n) => n.endsWith(".so"));
    expect(so.length).toBeGreaterThan(0);
    for (const n of so) expect(elfMachine(await readFile(join(arm, "python", n))), n).toBe(183);
    for (const n of (await filesUnder(join(x86, "python"))).filter((f) => f.endsWith(".so"))) {
      expect(elfMachine(await readFile(join(x86, "python", n))), n).toBe(62);
    }
  });

  it("gives byte-identical zips for two builds of the same pinned requirements", { timeout: TIMEOUT }, async () => {
    const a = await build("pyyaml", [], []);
    const b = await build("pyyaml", [], []);
    for (const [i, r] of a.results.entries()) {
      expect(r.bytes.equals(b.results[i]?.bytes ?? Buffer.alloc(0)), r.target.package).toBe(true);
      expect(r.built.fingerprint).toBe(b.results[i]?.built.fingerprint);
    }
  });

  it("fails on a requirement that has only a source distribution, naming it", { timeout: TIMEOUT }, async () => {
    const error = await build("py-sdist", ["python3.12"]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BuildError);
    expect((error as Error).message).toMatch(/requirement "docopt==0.6.2" has no wheel for python3.12 x86_64/);
    expect((error as Error).message).toMatch(/--builder docker/);
    expect((error as Error).message).not.toMatch(/\n/);
  });
});

describe("a local Node.js build", () => {
  it("installs production dependencies whose require and .bin work", { timeout: TIMEOUT }, async () => {
    const { results } = await build("node-bin", ["nodejs22.x"]);
    const [only] = results;
    const opt = await unzip(only?.built.zip.path ?? "");
    const names = await filesUnder(opt);
    expect(names).toContain("nodejs/node_modules/semver/package.json");
    expect(names.some((n) => n.startsWith("nodejs/node_modules/is-number"))).toBe(false);
    expect(names).not.toContain("nodejs/package.json");
    expect(names).not.toContain("package-lock.json");
    const out = execFileSync(process.execPath, ["-e", "console.log(require('semver').valid('1.2.3'))"], {
      env: { NODE_PATH: join(opt, "nodejs", "node_modules") },
      encoding: "utf8",
    });
    expect(out.trim()).toBe("1.2.3");
    const bin = execFileSync(join(opt, "nodejs/node_modules/.bin/semver"), ["-i", "minor", "1.2.3"], {
      env: { PATH: `${join(process.execPath, "..")}:/usr/bin:/bin` },
      encoding: "utf8",
    });
    expect(bin.trim()).toBe("1.3.0");
    const zip = execFileSync("unzip", ["-Z", "-l", only?.built.zip.path ?? ""], { encoding: "utf8" });
    expect(zip).toMatch(/^lrwxrwxrwx .* nodejs\/node_modules\/\.bin\/semver$/m);
    expect(zip).toMatch(/^-rwxr-xr-x .* nodejs\/node_modules\/semver\/bin\/semver\.js$/m);
  });

  it("gives byte-identical zips for two builds of the same lock file", { timeout: TIMEOUT }, async () => {
    const a = await build("node-bin", ["nodejs22.x"]);
    const b = await build("node-bin", ["nodejs22.x"]);
    expect(a.results[0]?.bytes.equals(b.results[0]?.bytes ?? Buffer.alloc(0))).toBe(true);
  });

  it("installs each architecture's platform package of esbuild and nothing else", { timeout: TIMEOUT }, async () => {
    const { results } = await build("node-esbuild", ["nodejs22.x"], ["x86_64", "arm64"]);
    const byArch = new Map(results.map((r) => [r.target.architecture, r]));
    const x86 = await unzip(byArch.get("x86_64")?.built.zip.path ?? "");
    const arm = await unzip(byArch.get("arm64")?.built.zip.path ?? "");
    const x86Names = await filesUnder(join(x86, "nodejs/node_modules/@esbuild"));
    const armNames = await filesUnder(join(arm, "nodejs/node_modules/@esbuild"));
    expect(x86Names.filter((n) => !n.includes("/"))).toEqual(["linux-x64"]);
    expect(armNames.filter((n) => !n.includes("/"))).toEqual(["linux-arm64"]);
    expect(elfMachine(await readFile(join(arm, "nodejs/node_modules/@esbuild/linux-arm64/bin/esbuild")))).toBe(183);
    expect(byArch.get("x86_64")?.built.warnings.join(" ")).toMatch(
      /install scripts were not run.*esbuild \(postinstall\)/,
    );
    const out = execFileSync(
      process.execPath,
      ["-e", "console.log(require('esbuild').transformSync('let x: number = 1', { loader: 'ts' }).code)"],
      { env: { NODE_PATH: join(x86, "nodejs", "node_modules") }, encoding: "utf8" },
    );
    expect(out.trim()).toBe("let x = 1;");
  });
});
