import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  assembleLayer,
  checkRequirements,
  checkUnzippedSize,
  folderContent,
  withSanitized,
  writeLayerZip,
} from "../../lib/builds/content.ts";
import { layerSbom, sbomKey } from "../../lib/builds/layer-sbom.ts";
import { type TreeEntry, walkDirectory } from "../../lib/builds/tree.ts";
import { type BuildPlan, DEFAULT_EXCLUDE, planBuild } from "../../lib/common/build-plan.ts";
import { BuildError, LimitExceededError, PathSafetyError } from "../../lib/common/errors.ts";
import { cycloneDx15Errors } from "../support/cyclonedx.ts";
import { readZip } from "../support/zip.ts";

const file = (path: string, size = 1, kind: TreeEntry["kind"] = "file"): TreeEntry => ({
  path,
  kind,
  size,
  content: Buffer.alloc(size, 97),
});
const link = (path: string, target: string): TreeEntry => ({
  path,
  kind: "symlink",
  size: target.length,
  target,
  content: Buffer.from(target),
});

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "layer-sync-content-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("folderContent", () => {
  it("drops the root manifests and layer.json but keeps nested files of the same name", () => {
    const kept = folderContent(
      [
        "requirements.txt",
        "package.json",
        "package-lock.json",
        "layer.json",
        "python/requirements.txt",
        "python/m.py",
      ].map((p) => file(p)),
    );
    expect(kept.map((e) => e.path)).toEqual(["python/requirements.txt", "python/m.py"]);
  });
});

describe("assembleLayer", () => {
  it("merges the build and the folder, sorted, without the folder's own __pycache__", () => {
    const entries = assembleLayer(
      [
        file("python/yaml/__init__.py"),
        file("python/yaml/__pycache__/x.pyc"),
        file("python/bin/tool", 1, "executable"),
      ],
      [file("requirements.txt"), file("python/mymodule.py"), file("__pycache__/y.pyc")],
      DEFAULT_EXCLUDE,
      "layers/x",
    );
    // the build's bytecode is kept or dropped by build.bytecode (python-tree.ts), the folder's never shipped
    expect(entries.map((e) => `${e.path} ${e.kind}`)).toEqual([
      "python/bin/tool executable",
      "python/mymodule.py file",
      "python/yaml/__init__.py file",
      "python/yaml/__pycache__/x.pyc file",
    ]);
  });

  it("refuses a folder file that would replace an installed one", () => {
    expect(() => assembleLayer([file("python/six.py")], [file("python/six.py")], [], "layers/x")).toThrow(BuildError);
  });

  it("refuses a folder file or link where the packages are installed, naming it", () => {
    const installed = [file("python/yaml/__init__.py")];
    expect(() => assembleLayer(installed, [link("python", "lib")], [], "layers/x")).toThrow(
      /^layers\/x: the folder's symlink "python" is where the layer's packages are installed, which must be a directory/,
    );
    // even when the build installed nothing
    expect(() => assembleLayer([], [file("nodejs")], [], "layers/n")).toThrow(/the folder's file "nodejs" is where/);
    expect(() => assembleLayer([], [file("nodejs/node_modules")], [], "layers/n")).toThrow(
      /the folder's file "nodejs\/node_modules" is where/,
    );
  });

  it("refuses a folder file or link where the build installed a directory, naming both paths", () => {
    for (const mine of [file("python/yaml"), link("python/yaml", "../elsewhere")]) {
      expect(() =>
        assembleLayer([file("python/yaml/__init__.py")], [file("requirements.txt"), mine], [], "layers/x"),
      ).toThrow(
        new RegExp(
          `^layers/x: the folder's ${mine.kind === "symlink" ? "symlink" : "file"} "python/yaml" is where the build's "python/yaml/__init__\\.py" needs a directory; rename or move the folder's entry$`,
        ),
      );
    }
    // and the other way round: a folder directory where the build installed a file
    expect(() => assembleLayer([file("python/six.py")], [file("python/six.py/x")], [], "layers/x")).toThrow(
      /the build's file "python\/six\.py" is where the folder's "python\/six\.py\/x" needs a directory/,
    );
    expect(() =>
      assembleLayer([file("python/yaml/__init__.py")], [file("python/yaml2")], [], "layers/x"),
    ).not.toThrow();
  });

  it("refuses a link that leaves the layer root, also through another link", () => {
    expect(() =>
      assembleLayer([link("nodejs/node_modules/.bin/x", "../../../../etc/passwd")], [], [], "layers/x"),
    ).toThrow(PathSafetyError);
    expect(() => assembleLayer([link("a/up", ".."), link("a/escape", "up/../..")], [], [], "layers/x")).toThrow(
      /leaves the folder through symlink/,
    );
  });
});

describe("checkUnzippedSize", () => {
  it("fails a layer over its build.maxUnzippedMiB budget, naming the budget and the largest packages", () => {
    const MiB = 1024 * 1024;
    const entries = [file("python/numpy/core.so", 2 * MiB), file("python/six.py", 10), file("python/yaml/a.so", MiB)];
    expect(checkUnzippedSize(entries, "layers/x", undefined, 4)).toBe(3 * MiB + 10);
    const run = () => assembleLayer(entries, [], [], "layers/x (python3.12 x86_64)", undefined, 2);
    expect(run).toThrow(LimitExceededError);
    expect(run).toThrow(
      /^layers\/x \(python3\.12 x86_64\) is .* unzipped, over its budget of 2 MiB \(layer\.json "build\.maxUnzippedMiB"\); largest: python\/numpy 2(\.0)? MiB, python\/yaml 1(\.0)? MiB, python\/ 10 B;/,
    );
    // a budget above Lambda's limit never raises it
    expect(() => checkUnzippedSize(entries, "layers/x", 3 * MiB, 100)).toThrow(/over Lambda's/);
  });

  it("names the largest installed packages when the layer is over the limit", () => {
    const entries = [
      file("python/numpy/core.so", 600),
      file("python/numpy/x.py", 100),
      file("python/pandas/a.so", 400),
      file("nodejs/node_modules/@img/sharp/lib.so", 50),
      file("README", 10),
    ];
    expect(() => checkUnzippedSize(entries, "layers/big", 1000)).toThrow(LimitExceededError);
    expect(() => checkUnzippedSize(entries, "layers/big", 1000)).toThrow(
      /layers\/big is 1\.1 KiB unzipped, over Lambda's 1000 B limit.*largest: python\/numpy 700 B, python\/pandas 400 B, nodejs\/node_modules\/@img\/sharp 50 B, README 10 B/,
    );
    expect(checkUnzippedSize(entries, "layers/big", 2000)).toBe(1160);
  });
});

describe("walkDirectory and writeLayerZip", () => {
  it("keep executables, symlinks and modes and write the same bytes twice", async () => {
    await mkdir(join(dir, "nodejs/node_modules/pkg/bin"), { recursive: true });
    await mkdir(join(dir, "nodejs/node_modules/.bin"), { recursive: true });
    await writeFile(join(dir, "nodejs/node_modules/pkg/bin/cli.js"), "#!/usr/bin/env node\n", { mode: 0o755 });
    await writeFile(join(dir, "nodejs/node_modules/pkg/index.js"), "module.exports = 1;\n");
    await symlink("../pkg/bin/cli.js", join(dir, "nodejs/node_modules/.bin/cli"));
    const entries = await walkDirectory(dir, "build output");
    const a = await writeLayerZip(entries, join(dir, "..", `${dir.split("/").pop()}-a.zip`));
    const b = await writeLayerZip(entries, join(dir, "..", `${dir.split("/").pop()}-b.zip`));
    expect(a.sha256).toBe(b.sha256);
    const { readFile } = await import("node:fs/promises");
    const zip = await readZip(await readFile(a.path));
    expect(zip.map((e) => [e.name, e.mode.toString(8)])).toEqual([
      ["nodejs/node_modules/.bin/cli", "120777"],
      ["nodejs/node_modules/pkg/bin/cli.js", "100755"],
      ["nodejs/node_modules/pkg/index.js", "100644"],
    ]);
    expect(zip[0]?.content.toString()).toBe("../pkg/bin/cli.js");
    await rm(a.path);
    await rm(b.path);
  });

  it("refuses a symlink in the build output that points outside it", async () => {
    await symlink("/etc/passwd", join(dir, "passwd"));
    await expect(walkDirectory(dir, "build output")).rejects.toThrow(PathSafetyError);
  });
});

const LOCKS = join(import.meta.dirname, "../fixtures/locks");
const text = (path: string, data: string): TreeEntry => ({
  path,
  kind: "file",
  size: Buffer.byteLength(data),
  content: Buffer.from(data),
});
/** A lock fixture folder as a build folder's entries, with an app file beside it. */
function lockFolder(family: string, files: string[], edit: (path: string, data: string) => string = (_, d) => d) {
  const entries = [
    ...files.map((f) => text(f, edit(f, readFileSync(join(LOCKS, family, f), "utf8")))),
    text("app.py", "print('hi')\n"),
  ];
  const plan = planBuild({
    folder: `layers/${family}`,
    name: family,
    layerNamePrefix: "",
    files: entries.map((e) => e.path),
    defaults: { runtimes: ["python3.12"], architectures: ["x86_64"] },
  }) as BuildPlan;
  return { plan, entries };
}

describe("folderContent never packages build-only root files", () => {
  it("drops every manifest and lock, requirements*.in, constraints*.txt and tool settings at the root only", () => {
    const names = [
      "pyproject.toml",
      "uv.lock",
      "poetry.lock",
      "Pipfile",
      "Pipfile.lock",
      "pnpm-lock.yaml",
      "yarn.lock",
      "requirements-dev.in",
      "constraints.txt",
      ".python-version",
      ".npmrc",
      ".yarnrc.yml",
      "app.py",
      "python/pkg/constraints.txt",
    ];
    expect(folderContent(names.map((n) => file(n))).map((e) => e.path)).toEqual([
      "app.py",
      "python/pkg/constraints.txt",
    ]);
  });
});

describe("checkRequirements with a lock family", () => {
  it.each([
    ["uv", ["pyproject.toml", "uv.lock"]],
    ["poetry", ["pyproject.toml", "poetry.lock"]],
    ["pipenv", ["Pipfile", "Pipfile.lock"]],
  ])(
    "converts %s's lock into a hashed requirements.txt under --require-hashes for the builders",
    async (family, files) => {
      const { plan, entries } = lockFolder(family, files);
      const checked = await checkRequirements(plan, entries);
      const requirements = checked?.files.get("requirements.txt") ?? "";
      const lines = requirements.split("\n").filter((l) => l !== "");
      expect(lines[0]).toBe("--require-hashes");
      expect(lines.slice(1).every((l) => /^[A-Za-z0-9._-]+==\S+ .*--hash=sha256:[0-9a-f]{64}/.test(l))).toBe(true);
      expect(lines.some((l) => l.startsWith("requests=="))).toBe(true);
      expect(lines.some((l) => /^pytest==/i.test(l))).toBe(false);
      expect(checked?.lock?.packages.length).toBe(lines.length - 1);
      // the builders get the converted file beside the (never packaged) manifest and lock
      const source = withSanitized(entries, checked);
      expect(source.map((e) => e.path).sort()).toEqual([...files, "app.py", "requirements.txt"].sort());
      expect(folderContent(source).map((e) => e.path)).toEqual(["app.py"]);
    },
  );

  it("fails with a BuildError naming the lock and `uv lock` when the lock is out of date", async () => {
    const { plan, entries } = lockFolder("uv", ["pyproject.toml", "uv.lock"], (path, data) =>
      path === "pyproject.toml" ? data.replace('"tqdm"]', '"tqdm", "attrs>=23"]') : data,
    );
    const error = await checkRequirements(plan, entries).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BuildError);
    expect((error as Error).message).toMatch(/layers\/uv\/uv\.lock is out of date with pyproject\.toml.*`uv lock`/);
  });
});

describe("layerSbom", () => {
  const metadata = (name: string, version: string) =>
    `Metadata-Version: 2.1\nName: ${name}\nVersion: ${version}\n\nbody\n`;

  it("lists what the layer holds with the lock's hashes, valid CycloneDX 1.5, the same bytes twice", async () => {
    const { plan, entries } = lockFolder("uv", ["pyproject.toml", "uv.lock"]);
    const requirements = await checkRequirements(plan, entries);
    const lock = requirements?.lock?.packages ?? [];
    const layer = [
      ...lock.map((p) =>
        text(`python/${p.name.replace(/-/g, "_")}-${p.version}.dist-info/METADATA`, metadata(p.name, p.version)),
      ),
      text("python/requests/__init__.py", ""),
      text("app.py", ""),
    ];
    // what the builder received: the converted requirements.txt with the lock's hashes
    const source = withSanitized(entries, requirements);
    const args = { subject: "uv", language: "python" as const, entries: layer, source, where: "layers/uv" };
    const sbom = await layerSbom(args);
    const doc = JSON.parse(sbom.text);
    expect(cycloneDx15Errors(doc)).toEqual([]);
    expect(sbom.components).toBe(lock.length);
    const requests = doc.components.find((c: { name: string }) => c.name === "requests");
    expect(requests.purl).toMatch(/^pkg:pypi\/requests@2\.34\.2$/);
    expect(requests.hashes.length).toBeGreaterThan(0);
    expect(requests.hashes[0].alg).toBe("SHA-256");
    expect((await layerSbom(args)).text).toBe(sbom.text);
  });

  it("lists Node packages, scoped and nested, with the npm lock's integrity", async () => {
    const files = ["package.json", "package-lock.json"].map((f) =>
      text(f, readFileSync(join(LOCKS, "npm", f), "utf8")),
    );
    const plan = planBuild({
      folder: "layers/npm",
      name: "npm",
      layerNamePrefix: "",
      files: files.map((f) => f.path),
      defaults: { runtimes: ["nodejs24.x"], architectures: ["x86_64"] },
    }) as BuildPlan;
    const lock = JSON.parse(readFileSync(join(LOCKS, "npm", "package-lock.json"), "utf8")) as {
      packages: Record<string, { version?: string; dev?: boolean }>;
    };
    const [path, first] = Object.entries(lock.packages).find(([p, v]) => p !== "" && !v.dev) ?? ["", {}];
    const name = path.replace(/^.*node_modules\//, "");
    const layer = [
      text(`nodejs/node_modules/${name}/package.json`, JSON.stringify({ name, version: first.version })),
      text("nodejs/node_modules/@scope/a/package.json", JSON.stringify({ name: "@scope/a", version: "1.0.0" })),
      text("nodejs/node_modules/@scope/a/node_modules/b/package.json", JSON.stringify({ name: "b", version: "2.0.0" })),
      text("nodejs/node_modules/b/lib/package.json", JSON.stringify({ name: "not-a-package", version: "9" })),
    ];
    const sbom = await layerSbom({ subject: plan.name, language: "nodejs", entries: layer, source: files, where: "x" });
    const doc = JSON.parse(sbom.text);
    expect(cycloneDx15Errors(doc)).toEqual([]);
    expect(doc.components.map((c: { purl: string }) => c.purl).sort()).toEqual(
      [`pkg:npm/${name.replace("@", "%40")}@${first.version}`, "pkg:npm/%40scope/a@1.0.0", "pkg:npm/b@2.0.0"].sort(),
    );
    const locked = doc.components.find((c: { name: string }) => c.name === name);
    expect(locked.hashes?.[0]?.alg).toBe("SHA-512");
  });

  it("takes the hashes of a hashed requirements.txt, and none from unhashed lines", async () => {
    const h = `sha256:${"a".repeat(64)}`;
    const source = [text("requirements.txt", `six==1.17.0 --hash=${h}\nPyYAML==6.0.2\n`)];
    const layer = [
      text("python/six-1.17.0.dist-info/METADATA", metadata("six", "1.17.0")),
      text("python/PyYAML-6.0.2.dist-info/METADATA", metadata("PyYAML", "6.0.2")),
    ];
    const doc = JSON.parse(
      (await layerSbom({ subject: "x", language: "python", entries: layer, source, where: "x" })).text,
    );
    expect(doc.components.map((c: { purl: string; hashes?: unknown[] }) => [c.purl, c.hashes?.length ?? 0])).toEqual([
      ["pkg:pypi/pyyaml@6.0.2", 0],
      ["pkg:pypi/six@1.17.0", 1],
    ]);
  });

  it("is stored beside the artifact with .zip replaced by .cdx.json", () => {
    expect(sbomKey("layers/a/a-20261207T000000Z-abc1234.zip")).toBe("layers/a/a-20261207T000000Z-abc1234.cdx.json");
  });
});
