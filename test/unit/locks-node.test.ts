import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  type NodeLockInput,
  parseYarnV1,
  readNodeLock,
  readNpmLock,
  readPnpmLock,
  readYarnLock,
} from "../../lib/builds/locks/node.ts";
import { BuildError } from "../../lib/common/errors.ts";

const FIXTURES = join(import.meta.dirname, "../fixtures/locks");
function input(dir: string, lock: string): NodeLockInput {
  return {
    manifest: readFileSync(join(FIXTURES, dir, "package.json"), "utf8"),
    lock: readFileSync(join(FIXTURES, dir, lock), "utf8"),
    where: `layers/${dir}`,
  };
}
function buildError(run: () => unknown): BuildError {
  try {
    run();
  } catch (error) {
    if (error instanceof BuildError) return error;
    throw error;
  }
  throw new Error("no BuildError");
}

/** The production set of the fixture package.json (debug → ms, @sindresorhus/is; is-number is a devDependency). */
const PRODUCTION = ["@sindresorhus/is@4.6.0", "debug@4.4.3", "ms@2.1.3"];
const ids = (set: { packages: { name: string; version: string }[] }) =>
  set.packages.map((p) => `${p.name}@${p.version}`);
const SHA512 = /^sha512-[A-Za-z0-9+/]{86}==$/;

describe("readNpmLock", () => {
  it("reads the production set of package-lock.json, with resolved URLs and integrity", () => {
    const set = readNpmLock(input("npm", "package-lock.json"));
    expect(ids(set)).toEqual(PRODUCTION);
    expect(set.packages.every((p) => SHA512.test(p.integrity ?? ""))).toBe(true);
  });

  it("fails naming package-lock.json and `npm install` when package.json asks for another range", () => {
    const base = input("npm", "package-lock.json");
    const error = buildError(() => readNpmLock({ ...base, manifest: base.manifest.replace("^4.3.4", "^4.4.0") }));
    expect(error.message).toContain("layers/npm/package-lock.json is out of date with package.json (debug@^4.4.0)");
    expect(error.message).toContain("`npm install`");
  });
});

describe("readPnpmLock", () => {
  it("reads the production set of a lockfileVersion 9 lock, without devDependencies", () => {
    const set = readPnpmLock(input("pnpm", "pnpm-lock.yaml"));
    expect(set.format).toBe("pnpm 9.0");
    expect(ids(set)).toEqual(PRODUCTION);
    expect(set.packages.every((p) => SHA512.test(p.integrity ?? ""))).toBe(true);
  });

  it("follows aliases and peer-suffixed snapshot keys", () => {
    const base = input("pnpm", "pnpm-lock.yaml");
    const lock = base.lock
      .replace("        version: 4.4.3", "        version: 4.4.3(supports-color@8.1.1)")
      .replace("  debug@4.4.3:\n    dependencies:", "  debug@4.4.3(supports-color@8.1.1):\n    dependencies:")
      .replace("      ms: 2.1.3", "      ms: 2.1.3\n      tiny: ms@2.1.3");
    expect(ids(readPnpmLock({ ...base, lock }))).toEqual(PRODUCTION);
  });

  it("fails naming pnpm-lock.yaml and `pnpm install` when a dependency was added to package.json", () => {
    const base = input("pnpm", "pnpm-lock.yaml");
    const manifest = base.manifest.replace('"debug": "^4.3.4",', '"debug": "^4.3.4", "left-pad": "^1.3.0",');
    const error = buildError(() => readPnpmLock({ ...base, manifest }));
    expect(error.message).toContain("layers/pnpm/pnpm-lock.yaml is out of date with package.json (left-pad@^1.3.0)");
    expect(error.message).toContain("`pnpm install`");
  });

  it("refuses an older lockfileVersion", () => {
    const base = input("pnpm", "pnpm-lock.yaml");
    const lock = base.lock.replace("lockfileVersion: '9.0'", "lockfileVersion: '6.0'");
    expect(buildError(() => readPnpmLock({ ...base, lock })).message).toContain("lockfileVersion 6.0");
  });
});

describe("readYarnLock", () => {
  it("reads the production set of a Yarn 1 lock", () => {
    const set = readYarnLock(input("yarn1", "yarn.lock"));
    expect(set.format).toBe("yarn 1");
    expect(ids(set)).toEqual(PRODUCTION);
    expect(set.packages.find((p) => p.name === "ms")?.resolved).toMatch(/^https:\/\/registry\.yarnpkg\.com\/ms\//);
    expect(set.packages.every((p) => SHA512.test(p.integrity ?? ""))).toBe(true);
  });

  it("reads the production set of a Yarn Berry lock, without the workspace's devDependencies", () => {
    const set = readNodeLock("yarn", input("berry", "yarn.lock"));
    expect(set.format).toBe("yarn berry 10");
    expect(ids(set)).toEqual(PRODUCTION);
  });

  it.each([
    ["yarn1", "yarn.lock"],
    ["berry", "yarn.lock"],
  ])("fails naming yarn.lock and `yarn install` when package.json changed (%s)", (dir, lock) => {
    const base = input(dir, lock);
    const manifest = base.manifest.replace('"^4.6.0"', '"^5.0.0"');
    const error = buildError(() => readYarnLock({ ...base, manifest }));
    expect(error.message).toContain(
      `layers/${dir}/yarn.lock is out of date with package.json (@sindresorhus/is@^5.0.0)`,
    );
    expect(error.message).toContain("`yarn install`");
  });
});

describe("patches layer-sync does not apply", () => {
  it("fails a pnpm lock that patches an installed package, naming it", () => {
    const base = input("pnpm", "pnpm-lock.yaml");
    const lock = base.lock.replace(
      "importers:",
      "patchedDependencies:\n  ms@2.1.3:\n    hash: abc\n    path: patches/ms.patch\n\nimporters:",
    );
    expect(buildError(() => readPnpmLock({ ...base, lock })).message).toContain("pnpm-lock.yaml patches ms@2.1.3");
  });

  it("fails a Berry lock that resolves a package to a user patch, but not to Yarn's built-in ones", () => {
    const base = input("berry", "yarn.lock");
    const patch = (to: string) => base.lock.replace('resolution: "ms@npm:2.1.3"', `resolution: "${to}"`);
    const user = patch("ms@patch:ms@npm%3A2.1.3#./.yarn/patches/ms.patch::version=2.1.3&hash=abc");
    expect(buildError(() => readYarnLock({ ...base, lock: user })).message).toContain("yarn.lock patches ms");
    const builtin = patch("ms@patch:ms@npm%3A2.1.3#~builtin<compat/ms>::version=2.1.3&hash=abc");
    expect(ids(readYarnLock({ ...base, lock: builtin }))).toEqual(PRODUCTION);
  });
});

describe("parseYarnV1", () => {
  it("maps every comma-separated key of an entry to the entry, with nested blocks", () => {
    const entries = parseYarnV1(
      '# yarn lockfile v1\n\n"a@^1.0.0", a@^1.1.0:\n  version "1.2.0"\n  dependencies:\n    "@s/b" "^2"\n  optional true\n',
    );
    expect([...entries.keys()]).toEqual(["a@^1.0.0", "a@^1.1.0"]);
    expect(entries.get("a@^1.1.0")).toEqual({ version: "1.2.0", dependencies: { "@s/b": "^2" }, optional: true });
    expect(entries.get("a@^1.0.0")).toBe(entries.get("a@^1.1.0"));
  });
});
