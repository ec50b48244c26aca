import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { buildScript } from "../../lib/builds/buildspec.ts";
import { nodeLockSource, withSanitized } from "../../lib/builds/content.ts";
import { downloadScript } from "../../lib/builds/docker.ts";
import { type NodeLockedPackage, type NodeLockSet, readNodeLock } from "../../lib/builds/locks/node.ts";
import { placeTree, registryTarball, toNpmLock } from "../../lib/builds/locks/npm-lock.ts";
import { type BuildPlan, planBuild } from "../../lib/common/build-plan.ts";

const FIXTURES = join(import.meta.dirname, "../fixtures/locks");
const fixture = (dir: string, file: string) => readFileSync(join(FIXTURES, dir, file), "utf8");

function pkg(id: string, dependencies: Record<string, string> = {}, extra: Partial<NodeLockedPackage> = {}) {
  const at = id.lastIndexOf("@");
  return {
    name: id.slice(0, at),
    version: id.slice(at + 1),
    resolved: undefined,
    integrity: `sha512-${id}`,
    dependencies,
    ...extra,
  };
}

/** Node's lookup from a package folder: its own node_modules, then each parent's, up to the root's. */
function lookup(tree: Map<string, NodeLockedPackage>, from: string, name: string): NodeLockedPackage | undefined {
  for (let at: string | undefined = from; at !== undefined; ) {
    const found = tree.get(at === "" ? `node_modules/${name}` : `${at}/node_modules/${name}`);
    if (found) return found;
    if (at === "") break;
    const i = at.lastIndexOf("/node_modules/");
    at = i === -1 ? "" : at.slice(0, i);
  }
  return undefined;
}

/** Every edge of the set, looked up in the tree, reaches the version the lock chose. */
function expectEveryEdgeResolves(set: NodeLockSet, tree: Map<string, NodeLockedPackage>): void {
  const id = (p: NodeLockedPackage | undefined) => (p ? `${p.name}@${p.version}` : "(missing)");
  for (const [name, want] of Object.entries(set.root ?? {})) expect(id(lookup(tree, "", name))).toBe(want);
  for (const [path, p] of tree) {
    for (const [name, want] of Object.entries(p.dependencies ?? {})) {
      expect(`${path} → ${id(lookup(tree, path, name))}`).toBe(`${path} → ${want}`);
    }
  }
}

describe("placeTree", () => {
  it("hoists what it can and nests a conflicting version under its requirer", () => {
    const set: NodeLockSet = {
      family: "pnpm",
      format: "pnpm 9.0",
      root: { debug: "debug@2.6.9", ms: "ms@2.1.3" },
      packages: [pkg("debug@2.6.9", { ms: "ms@2.0.0" }), pkg("ms@2.0.0"), pkg("ms@2.1.3")],
    };
    const tree = placeTree(set, "layers/api", "pnpm-lock.yaml");
    expect([...tree.keys()]).toEqual(["node_modules/debug", "node_modules/debug/node_modules/ms", "node_modules/ms"]);
    expectEveryEdgeResolves(set, tree);
  });

  it("never places a version where it would shadow what a package below already resolved from above", () => {
    // a/node_modules/b (b@1) resolves c@1 from the root; a/node_modules/e (e@1) then needs c@2: not at a/
    const set: NodeLockSet = {
      family: "yarn",
      format: "yarn 1",
      root: { a: "a@1.0.0", b: "b@2.0.0", e: "e@2.0.0" },
      packages: [
        pkg("a@1.0.0", { b: "b@1.0.0", e: "e@1.0.0" }),
        pkg("b@1.0.0", { c: "c@1.0.0" }),
        pkg("b@2.0.0"),
        pkg("c@1.0.0"),
        pkg("c@2.0.0"),
        pkg("e@1.0.0", { c: "c@2.0.0" }),
        pkg("e@2.0.0"),
      ],
    };
    const tree = placeTree(set, "layers/api", "yarn.lock");
    expect(tree.has("node_modules/a/node_modules/c")).toBe(false);
    expect(tree.get("node_modules/a/node_modules/e/node_modules/c")?.version).toBe("2.0.0");
    expectEveryEdgeResolves(set, tree);
  });
});

describe("toNpmLock", () => {
  it.each([
    ["pnpm", "pnpm", "pnpm-lock.yaml"],
    ["yarn1", "yarn", "yarn.lock"],
    ["berry", "yarn", "yarn.lock"],
  ] as const)(
    "converts the %s fixture into a lockfileVersion 3 lock of its production set",
    (dir, family, lockFile) => {
      const manifest = fixture(dir, "package.json");
      const set = readNodeLock(family, { manifest, lock: fixture(dir, lockFile), where: `layers/${dir}` });
      const out = toNpmLock(set, manifest, `layers/${dir}`, lockFile);
      const pkgJson = JSON.parse(out.packageJson);
      expect(pkgJson).toEqual({
        name: "fixture-node",
        version: "1.0.0",
        dependencies: { debug: "^4.3.4", "@sindresorhus/is": "^4.6.0" },
      });
      const lock = JSON.parse(out.packageLock);
      expect(lock.lockfileVersion).toBe(3);
      expect(lock.packages[""]).toEqual(pkgJson);
      expect(Object.keys(lock.packages)).toEqual([
        "",
        "node_modules/@sindresorhus/is",
        "node_modules/debug",
        "node_modules/ms",
      ]);
      const ms = lock.packages["node_modules/ms"];
      if (dir === "berry") {
        // Berry records no npm integrity: npm resolves the exact version and checks the registry's dist.integrity
        expect(ms).toEqual({ version: "2.1.3" });
      } else {
        expect(ms).toEqual({
          version: "2.1.3",
          resolved: "https://registry.npmjs.org/ms/-/ms-2.1.3.tgz",
          integrity: set.packages.find((p) => p.name === "ms")?.integrity,
        });
        expect(lock.packages["node_modules/@sindresorhus/is"].resolved).toBe(
          "https://registry.npmjs.org/@sindresorhus/is/-/is-4.6.0.tgz",
        );
      }
      expect(lock.packages["node_modules/debug"].dependencies).toEqual({ ms: "2.1.3" });
    },
  );

  it("keeps an alias's real name, marks packages reached only optionally as optional, keeps their platforms", () => {
    const set: NodeLockSet = {
      family: "pnpm",
      format: "pnpm 9.0",
      root: { lodash: "lodash-es@4.17.21", fsevents: "fsevents@2.3.3" },
      rootOptional: ["fsevents"],
      packages: [pkg("fsevents@2.3.3", {}, { os: ["darwin"] }), pkg("lodash-es@4.17.21")],
    };
    const manifest = JSON.stringify({
      name: "x",
      dependencies: { lodash: "npm:lodash-es@^4" },
      optionalDependencies: { fsevents: "^2" },
      devDependencies: { vitest: "^4" },
      overrides: { foo: "1" },
    });
    const out = toNpmLock(set, manifest, "layers/x", "pnpm-lock.yaml");
    expect(JSON.parse(out.packageJson)).toEqual({
      name: "x",
      dependencies: { lodash: "npm:lodash-es@^4" },
      optionalDependencies: { fsevents: "^2" },
    });
    const lock = JSON.parse(out.packageLock);
    expect(lock.packages["node_modules/lodash"]).toMatchObject({
      name: "lodash-es",
      version: "4.17.21",
      resolved: registryTarball("lodash-es", "4.17.21"),
    });
    expect(lock.packages["node_modules/fsevents"]).toMatchObject({ optional: true, os: ["darwin"] });
  });
});

describe("the Docker and CodeBuild recipe of a pnpm or Yarn folder", () => {
  const plan = (lock: string): BuildPlan =>
    planBuild({
      folder: "layers/api",
      name: "api",
      layerNamePrefix: "",
      files: ["package.json", lock],
      defaults: { runtimes: ["nodejs24.x"], architectures: ["x86_64", "arm64"] },
    }) as BuildPlan;

  it.each([
    ["berry", "yarn.lock"],
    ["pnpm", "pnpm-lock.yaml"],
  ])(
    "installs the converted %s lock with npm ci --omit=dev --ignore-scripts after its lock guard",
    async (dir, lockFile) => {
      const p = plan(lockFile);
      const files = [
        { path: "package.json", kind: "file" as const, size: 0, content: Buffer.from(fixture(dir, "package.json")) },
        { path: lockFile, kind: "file" as const, size: 0, content: Buffer.from(fixture(dir, lockFile)) },
      ];
      const checked = nodeLockSource(p, (path) => fixture(dir, path));
      const source = withSanitized(files, checked);
      expect(source.map((f) => f.path).sort()).toEqual(["package-lock.json", "package.json", lockFile].sort());

      // run the generated download phase with a stand-in npm that records its arguments and folder
      const root = await mkdtemp(join(tmpdir(), "layer-sync-recipe-"));
      try {
        const dirs = { src: join(root, "src"), out: join(root, "out"), dl: join(root, "dl") };
        await mkdir(dirs.src, { recursive: true });
        for (const f of source) await writeFile(join(dirs.src, f.path), f.content as Buffer);
        const bin = join(root, "bin");
        await mkdir(bin);
        await writeFile(join(bin, "npm"), `#!/bin/sh\necho "$@" > ${root}/npm-args\nls > ${root}/npm-files\n`);
        await chmod(join(bin, "npm"), 0o755);
        const env = { PATH: `${bin}:${dirname(process.execPath)}:/usr/bin:/bin` };
        await promisify(execFile)("bash", ["-c", downloadScript("nodejs", dirs)], { env });
        expect((await readFile(join(root, "npm-args"), "utf8")).trim()).toBe(
          "ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error",
        );
        expect((await readFile(join(root, "npm-files"), "utf8")).split("\n").filter(Boolean)).toEqual([
          "package-lock.json",
          "package.json",
        ]);
        const installed = JSON.parse(await readFile(join(dirs.out, "nodejs", "package-lock.json"), "utf8"));
        expect(installed.packages["node_modules/ms"].version).toBe("2.1.3");
      } finally {
        await rm(root, { recursive: true, force: true });
      }
      expect(buildScript("nodejs")).toContain("npm ci --omit=dev --ignore-scripts");
    },
  );
});
