import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { assembleLayer, checkUnzippedSize, folderContent, writeLayerZip } from "../../lib/build/content.ts";
import { DEFAULT_EXCLUDE } from "../../lib/build/plan.ts";
import { type TreeEntry, walkDirectory } from "../../lib/build/tree.ts";
import { BuildError, LimitExceededError, PathSafetyError } from "../../lib/common/errors.ts";
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
  it("merges the build and the folder, sorted, without __pycache__ by default", () => {
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
    expect(entries.map((e) => `${e.path} ${e.kind}`)).toEqual([
      "python/bin/tool executable",
      "python/mymodule.py file",
      "python/yaml/__init__.py file",
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
