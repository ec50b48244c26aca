/**
 * Local builds with the real uv (the pinned version, installed into the project's ignored
 * `.cache/layer-sync` when missing) and npm against the public registries (small packages; downloads
 * cached in `.cache/build`). The layers are unzipped and used: imported by a Python of the runtime's
 * minor version, required by Node, their `.bin` links run. The marker fixture is built on three "hosts"
 * (python3.11 first on PATH, python3.12 first, no python3 at all but a uv-managed 3.12) and must give the same
 * bytes but for the `.pyc`, which only the hosts with a python3.12 compile, to the same bytes.
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildTarget } from "../../lib/builds/content.ts";
import { LocalBuilder } from "../../lib/builds/local.ts";
import { walkDirectory } from "../../lib/builds/tree.ts";
import { type BuildPlan, planBuild } from "../../lib/common/build-plan.ts";
import { BuildError } from "../../lib/common/errors.ts";
import { readZip } from "../support/zip.ts";

const FIXTURES = resolve(import.meta.dirname, "../fixtures/build");
const CACHE = resolve(import.meta.dirname, "../../.cache/build");
const TOOLS = resolve(import.meta.dirname, "../../.cache/layer-sync");
const TIMEOUT = 120_000;

/** A Python of `minor` (3.12 by default) to import a layer with, or to stand in for a host's (pyenv's shim may hide it). */
function python3x(minor = 12): string | undefined {
  const pyenv = "/root/.pyenv/versions";
  const candidates = existsSync(pyenv)
    ? execFileSync("ls", [pyenv], { encoding: "utf8" })
        .split("\n")
        .filter((v) => v.startsWith(`3.${minor}.`))
        .map((v) => join(pyenv, v, "bin", `python3.${minor}`))
    : [];
  for (const c of [...candidates, `python3.${minor}`]) {
    try {
      execFileSync(c, ["-c", `import sys; assert sys.version_info[:2] == (3, ${minor})`], { stdio: "ignore" });
      return c;
    } catch {
      // not this one
    }
  }
  return undefined;
}
const python312 = () => python3x(12);

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "layer-sync-build-"));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** What a build machine looks like to the builder: its PATH and layer-sync's tool cache. */
interface Host {
  path: string;
  toolCache: string;
}

let runs = 0;
async function build(fixture: string, runtimes: string[], architectures: string[] = [], host?: Host) {
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
    env: host ? { ...process.env, PATH: host.path } : process.env,
    home,
    cacheDir: CACHE,
    toolCache: host?.toolCache ?? TOOLS,
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
    // compiled for 3.12 when this machine has it (build-bytecode.test.ts), never anything else
    expect(names.filter((n) => n.includes("__pycache__")).every((n) => /\.cpython-312\.pyc$/.test(n))).toBe(true);
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
    expect((error as Error).message).toMatch(
      /requirement "docopt==0.6.2" has no wheel for python3.12 x86_64 \(x86_64-manylinux_2_34\)/,
    );
    expect((error as Error).message).toMatch(/--builder docker/);
    expect((error as Error).message).not.toMatch(/\n/);
  });
});

/** A host whose PATH holds only `python3` (and `python3.X` when `alias`) pointing at `interpreter`, and /usr/bin's tools. */
async function hostWith(name: string, interpreter: string | undefined, alias?: string): Promise<Host> {
  const bin = join(work, `host-${name}`);
  await mkdir(bin, { recursive: true });
  if (interpreter) {
    await symlink(interpreter, join(bin, "python3"));
    if (alias) await symlink(interpreter, join(bin, alias));
  }
  return { path: interpreter ? `${bin}:/usr/bin:/bin` : bin, toolCache: TOOLS };
}

/**
 * A host with no python3 on PATH at all: its tool cache holds the pinned uv and a uv-managed CPython 3.12
 * laid out as `uv python install` lays it out (`python/cpython-3.12.x-<os>-<arch>-gnu/bin/python3.12`),
 * here pyenv's build linked in, since python-build-standalone downloads are unreachable from this sandbox.
 */
async function hostWithoutPython(python: string): Promise<Host> {
  const tools = join(work, "tools-nopython");
  const version = execFileSync(python, ["-c", "import platform; print(platform.python_version())"], {
    encoding: "utf8",
  }).trim();
  const managed = join(tools, "python", `cpython-${version}-linux-x86_64-gnu`, "bin");
  await mkdir(managed, { recursive: true });
  await symlink(python, join(managed, "python3.12"));
  await mkdir(join(tools, "uv-0.13.9"), { recursive: true });
  await symlink(join(TOOLS, "uv-0.13.9", "uv"), join(tools, "uv-0.13.9", "uv"));
  const bin = join(work, "host-empty");
  await mkdir(bin, { recursive: true });
  return { path: bin, toolCache: tools };
}

describe("a local Python build of environment markers", () => {
  const host311 = python3x(11);
  const host312 = python3x(12);

  it("installs each architecture's packages for the target, not the host, with the same bytes on every host", {
    timeout: TIMEOUT * 4,
  }, async () => {
    if (!host311 || !host312) throw new Error("this test needs Python 3.11 and 3.12 (pyenv) on the machine");
    const hosts = [
      ["python3.11 first", await hostWith("311", host311)],
      ["python3.12 first", await hostWith("312", host312, "python3.12")],
    ] as [string, Host][];
    const first = await build("py-markers", [], [], hosts[0]?.[1]);
    // the tool cache now has the pinned uv the host without Python links to
    hosts.push(["no python3", await hostWithoutPython(host312)]);
    const layers = new Map<string, string[]>();
    for (const r of first.results) {
      const opt = await unzip(r.built.zip.path);
      const names = await filesUnder(join(opt, "python"));
      layers.set(r.target.architecture, names);
      expect(await readFile(join(opt, "python", "bin", "pyflakes"), "utf8")).toMatch(/^#!\/usr\/bin\/env python3\n/);
      const record = await readFile(join(opt, "python", "pyflakes-3.2.0.dist-info", "RECORD"), "utf8");
      const script = await readFile(join(opt, "python", "bin", "pyflakes"));
      const digest = (await import("node:crypto")).createHash("sha256").update(script).digest("base64url");
      expect(record).toContain(`bin/pyflakes,sha256=${digest},${script.length}`);
    }
    const x86 = layers.get("x86_64") ?? [];
    const arm = layers.get("arm64") ?? [];
    expect(x86.some((n) => n.startsWith("orjson/"))).toBe(true);
    expect(x86.some((n) => n.startsWith("ujson"))).toBe(false);
    expect(arm.some((n) => /^ujson\.cpython-312-aarch64-linux-gnu\.so$/.test(n))).toBe(true);
    expect(arm.some((n) => n.startsWith("orjson"))).toBe(false);
    for (const names of [x86, arm]) expect(names).toContain("setuptools-75.1.0.dist-info/METADATA");

    // the layer never depends on the interpreter uv runs with; only whether a python3.12 compiles the .pyc
    // differs (and is in the fingerprint): the hosts with one (on PATH, or uv-managed) give the same layer plus
    // the same .pyc
    const withoutPyc = async (bytes: Buffer) =>
      (await readZip(bytes)).filter((e) => !e.name.includes("/__pycache__/")).map((e) => [e.name, e.content]);
    let compiled: typeof first.results | undefined;
    for (const [name, host] of hosts.slice(1)) {
      const again = await build("py-markers", [], [], host);
      for (const [i, r] of again.results.entries()) {
        const before = first.results[i];
        expect(r.target.package, name).toBe(before?.target.package);
        expect(r.built.fingerprint, name).not.toBe(before?.built.fingerprint);
        expect((await readZip(r.bytes)).some((e) => e.name.endsWith(".cpython-312.pyc"))).toBe(true);
        expect(await withoutPyc(r.bytes), name).toEqual(await withoutPyc(before?.bytes ?? Buffer.alloc(0)));
        const same = compiled?.[i];
        if (!same) continue;
        expect(r.built.fingerprint, name).toBe(same.built.fingerprint);
        expect(r.bytes.equals(same.bytes), `${name}: ${r.target.package}`).toBe(true);
      }
      compiled ??= again.results;
    }
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
