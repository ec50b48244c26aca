import { describe, expect, it } from "vitest";
import { buildScript } from "../../lib/builds/buildspec.ts";
import { buildPhaseScript } from "../../lib/builds/docker.ts";
import { buildFingerprint } from "../../lib/builds/fingerprint.ts";
import { compileArguments, noBytecodeWarning } from "../../lib/builds/local.ts";
import {
  cacheTag,
  finishPythonTree,
  keepsBytecode,
  normalizeShebang,
  recordHash,
  SCRIPT_SHEBANG,
  slimDrops,
} from "../../lib/builds/python-tree.ts";
import type { TreeEntry } from "../../lib/builds/tree.ts";
import { planBuild } from "../../lib/common/build-plan.ts";
import { BuildError, ConfigError } from "../../lib/common/errors.ts";
import { parseBuildSection } from "../../lib/common/layer-json.ts";

const file = (path: string, text = "x", kind: TreeEntry["kind"] = "file"): TreeEntry => {
  const content = Buffer.from(text);
  return { path, kind, size: content.length, content };
};
const paths = (entries: readonly TreeEntry[]) => entries.map((e) => e.path);
const text = async (entries: readonly TreeEntry[], path: string) => {
  const e = entries.find((x) => x.path === path);
  return Buffer.isBuffer(e?.content) ? e.content.toString("utf8") : undefined;
};
const options = { runtime: "python3.12", bytecode: true, slim: false, where: "layers/p (python3.12 x86_64)" };

describe("the .pyc a built Python layer keeps", () => {
  it("are the target's own cpython-3XY files in __pycache__, and none when bytecode is off", () => {
    expect(cacheTag("python3.12")).toBe("cpython-312");
    expect(keepsBytecode("python/six.py", "python3.12", true)).toBe(true);
    expect(keepsBytecode("python/__pycache__/six.cpython-312.pyc", "python3.12", true)).toBe(true);
    expect(keepsBytecode("python/__pycache__/six.cpython-311.pyc", "python3.12", true)).toBe(false);
    expect(keepsBytecode("python/__pycache__/six.cpython-312.opt-1.pyc", "python3.12", true)).toBe(false);
    expect(keepsBytecode("python/__pycache__/six.cpython-312.pyc", "python3.12", false)).toBe(false);
  });

  it("are filtered from the install tree before it is zipped", async () => {
    const built = [
      file("python/six.py"),
      file("python/__pycache__/six.cpython-312.pyc"),
      file("python/__pycache__/six.cpython-39.pyc"),
    ];
    expect(paths((await finishPythonTree(built, options)).entries)).toEqual([
      "python/__pycache__/six.cpython-312.pyc",
      "python/six.py",
    ]);
    expect(paths((await finishPythonTree(built, { ...options, bytecode: false })).entries)).toEqual(["python/six.py"]);
  });

  it("are compiled unchecked-hash with /opt/python file names, in one deterministic process", () => {
    const args = compileArguments("/tmp/out/python");
    expect(args.join(" ")).toBe(
      "-s -m compileall -q -f -d /opt/python --invalidation-mode unchecked-hash /tmp/out/python",
    );
    expect(args).not.toContain("-j0");
  });

  it("are compiled the same way by the container recipe's build phase, for Docker and CodeBuild alike", () => {
    const phase = buildPhaseScript("python", { out: "/o", dl: "/d" });
    const compile =
      "PYTHONHASHSEED=0 python3 -s -m compileall -q -f -d /opt/python --invalidation-mode unchecked-hash /o/python";
    expect(phase).toContain(compile);
    // after the install, with the data-scheme libraries placed first
    expect(phase.indexOf(compile)).toBeGreaterThan(phase.indexOf("pip install"));
    expect(phase).toContain(`python3 - "/d/wheels" "/o/lib" <<'LAYER_SYNC_DATA'`);
    expect(buildScript("python")).toContain("--invalidation-mode unchecked-hash");
    expect(buildPhaseScript("nodejs", { out: "/o", dl: "/d" })).not.toContain("compileall");
  });

  it("are missing with a warning that names the interpreter and the cold-start cost", () => {
    expect(noBytecodeWarning("python3.12")).toMatch(
      /^no python3\.12 interpreter found: layer ships without \.pyc; cold starts recompile every module \(imports 2-5x slower\)/,
    );
  });
});

describe("console scripts of every builder", () => {
  it("get the portable shebang, with their RECORD row brought up to date in both installers' layouts", async () => {
    const script = "#!/var/lang/bin/python3.12\nimport sys\n";
    const fixed = Buffer.from(`${SCRIPT_SHEBANG}\nimport sys\n`);
    const built = [
      file("python/bin/tool", script, "executable"),
      file("python/bin/other", "#!/bin/sh\necho hi\n", "executable"),
      // pip --target writes the scripts' rows relative to its scratch lib/python
      file("python/tool-1.0.dist-info/RECORD", "tool/__init__.py,,\n../../bin/tool,sha256=old,27\n"),
    ];
    const { entries } = await finishPythonTree(built, options);
    expect(await text(entries, "python/bin/tool")).toBe(fixed.toString());
    expect(entries.find((e) => e.path === "python/bin/tool")?.kind).toBe("executable");
    expect(entries.find((e) => e.path === "python/bin/other")?.content).toBe(built[1]?.content);
    expect(await text(entries, "python/tool-1.0.dist-info/RECORD")).toBe(
      `tool/__init__.py,,\n../../bin/tool,${recordHash(fixed)},${fixed.length}\n`,
    );
    expect(normalizeShebang(fixed)).toBeUndefined();
  });
});

describe("data-scheme files", () => {
  it("move a shared library uv put in python/lib/ to the layer's lib/ (/opt/lib)", async () => {
    const built = [
      file("python/tbb-2022.0.0.dist-info/RECORD", "lib/libtbb.so.12,sha256=x,3\ntbb/__init__.py,,\n"),
      file("python/lib/libtbb.so.12", "elf"),
      file("python/tbb/__init__.py"),
    ];
    const { entries } = await finishPythonTree(built, options);
    expect(paths(entries)).toEqual([
      "lib/libtbb.so.12",
      "python/tbb-2022.0.0.dist-info/RECORD",
      "python/tbb/__init__.py",
    ]);
  });

  it("keep a library the container recipe extracted into lib/ for a pip --target install", async () => {
    const built = [
      file("lib/libtbb.so.12", "elf"),
      file("python/tbb-2022.0.0.dist-info/RECORD", "../libtbb.so.12,sha256=x,3\n../pkgconfig/tbb.pc,,\n"),
    ];
    const { entries, warnings } = await finishPythonTree(built, options);
    expect(paths(entries)).toContain("lib/libtbb.so.12");
    expect(warnings).toEqual([
      'package "tbb" installs 1 build-time data file(s) (lib/pkgconfig/tbb.pc) that the installer did not keep; they are not in the layer',
    ]);
  });

  it("fail the target naming the package when the installer dropped a shared library", async () => {
    const built = [file("python/tbb-2022.0.0.dist-info/RECORD", "../libtbb.so.12,sha256=x,3\n")];
    await expect(finishPythonTree(built, options)).rejects.toThrow(BuildError);
    await expect(finishPythonTree(built, options)).rejects.toThrow(
      /^layers\/p \(python3\.12 x86_64\): shared librar\(ies\) that package\(s\) install through the wheel data scheme were dropped by the installer: "tbb" \(lib\/libtbb\.so\.12\)/,
    );
  });

  it("refuse two packages installing the same library", async () => {
    const built = [
      file("python/a-1.dist-info/RECORD", "lib/libx.so,,\n"),
      file("python/b-1.dist-info/RECORD", "../libx.so,,\n"),
      file("python/lib/libx.so"),
    ];
    await expect(finishPythonTree(built, options)).rejects.toThrow(/packages "a" and "b" both install/);
  });
});

describe("build.slim", () => {
  it("drops tests, RECORD files and the runtime's boto3, botocore and s3transfer, and counts them", async () => {
    expect(slimDrops("python/pandas/tests/test_x.py")).toBe(true);
    expect(slimDrops("python/tornado/test/util.py")).toBe(true);
    expect(slimDrops("python/numpy/testing/utils.py")).toBe(false);
    expect(slimDrops("python/requests-2.32.3.dist-info/RECORD")).toBe(true);
    expect(slimDrops("python/requests-2.32.3.dist-info/METADATA")).toBe(false);
    expect(slimDrops("python/botocore/data/endpoints.json")).toBe(true);
    expect(slimDrops("python/boto3-1.35.0.dist-info/METADATA")).toBe(true);
    expect(slimDrops("python/boto3_stubs/__init__.py")).toBe(false);
    expect(slimDrops("tests/x.py")).toBe(false);
    const built = [
      file("python/pandas/__init__.py"),
      file("python/pandas/tests/test_a.py", "12345"),
      file("python/s3transfer/__init__.py", "123"),
    ];
    const slim = await finishPythonTree(built, { ...options, slim: true });
    expect(paths(slim.entries)).toEqual(["python/pandas/__init__.py"]);
    expect(slim.slim).toEqual({ files: 2, bytes: 8 });
    expect((await finishPythonTree(built, options)).slim).toBeUndefined();
  });
});

describe("layer.json build.bytecode and build.slim", () => {
  it("default to on and off, and are read from the build section", () => {
    const base = { folder: "layers/p", name: "p", layerNamePrefix: "", files: ["requirements.txt", "layer.json"] };
    const defaults = { runtimes: [], architectures: [] };
    expect(planBuild({ ...base, defaults })).toMatchObject({ bytecode: true, slim: false });
    const layerJson = '{"build": {"bytecode": false, "slim": true}}';
    expect(planBuild({ ...base, defaults, layerJson })).toMatchObject({ bytecode: false, slim: true });
  });

  it("must be true or false, in one line naming the field", () => {
    expect(() => parseBuildSection({ bytecode: "no" }, "layers/p/layer.json")).toThrow(ConfigError);
    expect(() => parseBuildSection({ slim: 1 }, "layers/p/layer.json")).toThrow(
      'layers/p/layer.json: "build.slim" must be true or false, not 1',
    );
  });

  it("change the build fingerprint", () => {
    const input = { files: [], runtime: "python3.12", architecture: "x86_64", tool: "local uv 0.13.9" };
    const on = buildFingerprint(input);
    expect(buildFingerprint({ ...input, bytecode: true, slim: false })).toBe(on);
    expect(buildFingerprint({ ...input, bytecode: false })).not.toBe(on);
    expect(buildFingerprint({ ...input, slim: true })).not.toBe(on);
  });
});
