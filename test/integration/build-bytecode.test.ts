/**
 * The shared Python step with real installers: `.pyc` compiled by the local builder with an interpreter of
 * the target's minor version (pyenv's or PATH's python3.12; without one, the summary warning), none with
 * `build.bytecode: false`, the same bytes on a rebuild; `build.slim` on a package that ships its tests; and a
 * wheel installing a shared library through the data scheme (written here, served from a localhost index to
 * the pinned uv, and installed by the container recipe's build phase with the host's real pip).
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildPhaseScript, WHEELHOUSE_COMPLETE } from "../../lib/builds/docker.ts";
import { noBytecodeWarning } from "../../lib/builds/local.ts";
import { finishPythonTree } from "../../lib/builds/python-tree.ts";
import { walkDirectory } from "../../lib/builds/tree.ts";
import { BuildError } from "../../lib/common/errors.ts";
import { localFolderBuilds } from "../support/local-folder-build.ts";
import { readZip } from "../support/zip.ts";

const TIMEOUT = 180_000;

/** A working python3.12 on this machine (pyenv's shim may hide it), or undefined. */
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
const PY312 = python312();
/** The builder's PATH: this machine's, with the python3.12 found above first. */
const HOST_PATH = PY312?.includes("/") ? `${dirname(PY312)}:${process.env.PATH}` : (process.env.PATH ?? "");

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "layer-sync-bytecode-"));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const buildFolder = localFolderBuilds(() => work);

/** Build a folder of `requirements.txt` (and layer.json) for python3.12 x86_64 with the local builder. */
async function build(requirements: string, layerJson?: string, index?: string) {
  const built = await buildFolder({
    name: "py",
    files: { "requirements.txt": requirements, ...(layerJson ? { "layer.json": layerJson } : {}) },
    architectures: ["x86_64"],
    builder: {
      env: { ...process.env, PATH: HOST_PATH },
      timeoutMs: TIMEOUT,
      index: index ? { pipIndexUrl: index } : undefined,
    },
  });
  const bytes = await readFile(built.zip.path);
  return { built, bytes, names: (await readZip(bytes)).map((e) => e.name), zip: built.zip.path };
}

describe("bytecode of a local python3.12 build", () => {
  it("ships unchecked-hash .pyc for 3.12 naming /opt/python when this machine has python3.12, else warns", {
    timeout: TIMEOUT,
  }, async () => {
    const { built, names, zip } = await build("six==1.17.0\n");
    if (!PY312) {
      // no python3.12 here (and uv could not install one): the layer has no .pyc and the summary says why
      expect(built.warnings).toContain(noBytecodeWarning("python3.12"));
      expect(names.some((n) => n.includes("__pycache__"))).toBe(false);
      return;
    }
    expect(built.warnings).toEqual([]);
    expect(names).toContain("python/__pycache__/six.cpython-312.pyc");
    expect(names.filter((n) => n.endsWith(".pyc")).every((n) => /\.cpython-312\.pyc$/.test(n))).toBe(true);
    const check = [
      "import marshal, sys, zipfile",
      "data = zipfile.ZipFile(sys.argv[1]).read('python/__pycache__/six.cpython-312.pyc')",
      "print(int.from_bytes(data[4:8], 'little'), marshal.loads(data[16:]).co_filename)",
    ].join("\n");
    // flags 1: hash-based, source not checked (PEP 552); tracebacks name where Lambda mounts the layer
    expect(execFileSync(PY312, ["-c", check, zip], { encoding: "utf8" }).trim()).toBe("1 /opt/python/six.py");
  });

  it("ships no .pyc with build.bytecode false, and fingerprints the choice", { timeout: TIMEOUT }, async () => {
    const on = await build("six==1.17.0\n");
    const off = await build("six==1.17.0\n", '{"build": {"bytecode": false}}');
    expect(off.names.some((n) => n.includes("__pycache__") || n.endsWith(".pyc"))).toBe(false);
    expect(off.built.warnings).toEqual([]);
    expect(off.built.fingerprint).not.toBe(on.built.fingerprint);
  });

  it("gives byte-identical zips when a package of many modules is compiled twice", { timeout: TIMEOUT }, async () => {
    const a = await build("PyYAML==6.0.2\n");
    const b = await build("PyYAML==6.0.2\n");
    if (PY312) expect(a.names).toContain("python/yaml/__pycache__/constructor.cpython-312.pyc");
    expect(a.bytes.equals(b.bytes)).toBe(true);
    expect(a.built.fingerprint).toBe(b.built.fingerprint);
  });
});

describe("build.slim in a local build", () => {
  it("drops the package's tests and RECORD and reports the files and bytes saved", { timeout: TIMEOUT }, async () => {
    const full = await build("simplejson==3.19.3\n");
    const slim = await build("simplejson==3.19.3\n", '{"build": {"slim": true}}');
    const dropped = full.names.filter((n) => !slim.names.includes(n));
    expect(dropped.some((n) => n.startsWith("python/simplejson/tests/"))).toBe(true);
    expect(dropped).toContain("python/simplejson-3.19.3.dist-info/RECORD");
    expect(slim.names.some((n) => n.includes("/tests/") || n.endsWith("/RECORD"))).toBe(false);
    expect(slim.names).toContain("python/simplejson/__init__.py");
    expect(slim.built.slim?.files).toBe(dropped.length);
    expect(slim.built.slim?.bytes).toBe(full.built.zip.size - slim.built.zip.size);
    expect(full.built.slim).toBeUndefined();
  });
});

/** A wheel of `tbbx` 1.0 whose shared library is a data-scheme file (`tbbx-1.0.data/data/lib/libtbbx.so.12`). */
const WHEEL = "tbbx-1.0-py3-none-any.whl";
const MAKE_WHEEL = `
import base64, hashlib, sys, zipfile
files = {
    "tbbx/__init__.py": b"VERSION = '1.0'\\n",
    "tbbx-1.0.data/data/lib/libtbbx.so.12": b"\\x7fELF not really a library\\n",
    "tbbx-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\\nName: tbbx\\nVersion: 1.0\\n",
    "tbbx-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\\nGenerator: layer-sync-test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
}
def row(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"
record = "\\n".join([row(n, d) for n, d in files.items()] + ["tbbx-1.0.dist-info/RECORD,,", ""])
with zipfile.ZipFile(sys.argv[1], "w") as z:
    for name, data in files.items():
        z.writestr(name, data)
    z.writestr("tbbx-1.0.dist-info/RECORD", record)
`;

describe("a wheel that installs a shared library through the data scheme", () => {
  let wheels: string;
  let server: Server;
  let index: string;
  beforeAll(async () => {
    wheels = join(work, "wheels");
    await mkdir(wheels, { recursive: true });
    execFileSync("python3", ["-c", MAKE_WHEEL, join(wheels, WHEEL)]);
    const wheel = await readFile(join(wheels, WHEEL));
    // a PEP 503 simple index of that one wheel
    server = createServer((req, res) => {
      if (req.url === "/simple/tbbx/") {
        res.setHeader("content-type", "text/html");
        res.end(`<html><body><a href="/files/${WHEEL}">${WHEEL}</a></body></html>`);
      } else if (req.url === `/files/${WHEEL}`) res.end(wheel);
      else res.writeHead(404).end();
    });
    await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
    index = `http://127.0.0.1:${(server.address() as AddressInfo).port}/simple`;
  });
  afterAll(async () => {
    await new Promise((ok) => server.close(ok));
  });

  it("has it moved to the layer's lib/ (/opt/lib) by a local build", { timeout: TIMEOUT }, async () => {
    const { names } = await build("tbbx==1.0\n", '{"build": {"bytecode": false}}', index);
    expect(names).toContain("lib/libtbbx.so.12");
    expect(names).toContain("python/tbbx/__init__.py");
    expect(names.some((n) => n.startsWith("python/lib/"))).toBe(false);
  });

  it("has it extracted into lib/ by the container recipe, whose pip --target drops it, or fails naming it", {
    timeout: TIMEOUT,
  }, async () => {
    const dl = join(work, "dl");
    const out = join(work, "out");
    await mkdir(join(dl, "wheels"), { recursive: true });
    await mkdir(join(dl, "empty"), { recursive: true });
    await mkdir(out, { recursive: true });
    await writeFile(join(dl, "wheels", WHEEL), await readFile(join(wheels, WHEEL)));
    await writeFile(join(dl, "requirements.txt"), "tbbx==1.0\n");
    await writeFile(join(dl, WHEELHOUSE_COMPLETE), "");
    // the build phase of Docker and CodeBuild, with this machine's pip and python3 for the image's
    execFileSync("bash", ["-c", buildPhaseScript("python", { out, dl })], { stdio: "pipe" });
    const tree = await walkDirectory(out, "the build output");
    const paths = tree.map((e) => e.path);
    expect(paths).toContain("lib/libtbbx.so.12");
    const record = await readFile(join(out, "python", "tbbx-1.0.dist-info", "RECORD"), "utf8");
    expect(record).toMatch(/^\.\.\/libtbbx\.so\.12,/m);
    // the image's python3 compiled the modules for itself
    const pycache = await readdir(join(out, "python", "tbbx", "__pycache__"));
    expect(pycache.every((n) => /^__init__\.cpython-3\d+\.pyc$/.test(n))).toBe(true);
    const runtime = `python3.${/cpython-3(\d+)/.exec(pycache[0] ?? "")?.[1]}`;
    const where = "layers/py (python3.12 x86_64)";
    const kept = await finishPythonTree(tree, { runtime, bytecode: true, slim: false, where });
    expect(kept.entries.map((e) => e.path)).toEqual(expect.arrayContaining(["lib/libtbbx.so.12"]));
    // without the extraction (a wheel built from a source distribution), the target fails naming the package
    const hollow = tree.filter((e) => !e.path.startsWith("lib/"));
    await expect(finishPythonTree(hollow, { runtime, bytecode: true, slim: false, where })).rejects.toThrow(BuildError);
    await expect(finishPythonTree(hollow, { runtime, bytecode: true, slim: false, where })).rejects.toThrow(
      /dropped by the installer: "tbbx" \(lib\/libtbbx\.so\.12\)/,
    );
  });
});
