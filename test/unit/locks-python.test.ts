import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseToml } from "smol-toml";
import { describe, expect, it } from "vitest";
import {
  convertPipfileLock,
  convertPoetryLock,
  convertPythonLock,
  convertUvLock,
  type PythonLockInput,
  pipfileHash,
  poetryContentHash,
  pythonJson,
  requirementLines,
} from "../../lib/builds/locks/python.ts";
import { BuildError } from "../../lib/common/errors.ts";

const FIXTURES = join(import.meta.dirname, "../fixtures/locks");
const read = (family: string, file: string) => readFileSync(join(FIXTURES, family, file), "utf8");
const uv = (): PythonLockInput => ({
  manifest: read("uv", "pyproject.toml"),
  lock: read("uv", "uv.lock"),
  where: "layers/uv",
});
const poetry = (): PythonLockInput => ({
  manifest: read("poetry", "pyproject.toml"),
  lock: read("poetry", "poetry.lock"),
  where: "layers/poetry",
});
const pipenv = (): PythonLockInput => ({
  manifest: read("pipenv", "Pipfile"),
  lock: read("pipenv", "Pipfile.lock"),
  where: "layers/pipenv",
});

function buildError(run: () => unknown): BuildError {
  try {
    run();
  } catch (error) {
    if (error instanceof BuildError) return error;
    throw error;
  }
  throw new Error("no BuildError");
}

const names = (packages: readonly { name: string }[]) => packages.map((p) => p.name);
const PRODUCTION = ["certifi", "charset-normalizer", "click", "colorama", "idna", "requests", "tqdm", "urllib3"];

describe("convertUvLock", () => {
  it("converts the project's default dependencies transitively, without the dev group or extras", () => {
    const result = convertUvLock(uv());
    expect(names(result.packages)).toEqual(PRODUCTION);
    expect(names(result.packages)).not.toContain("pytest");
    expect(names(result.packages)).not.toContain("pysocks");
    expect(names(result.packages)).not.toContain("fixture-uv");
  });

  it("keeps the marker of a package reached only under a marker", () => {
    const colorama = convertUvLock(uv()).packages.find((p) => p.name === "colorama");
    expect(colorama?.marker).toMatch(/win32|Windows/);
    const requests = convertUvLock(uv()).packages.find((p) => p.name === "requests");
    expect(requests?.marker).toBeUndefined();
  });

  it("writes exact, hashed requirement lines with every hash the lock recorded", () => {
    const { requirements, packages } = convertUvLock(uv());
    const line = requirements.split("\n").find((l) => l.startsWith("requests=="));
    expect(line).toMatch(/^requests==2\.34\.2( --hash=sha256:[0-9a-f]{64})+$/);
    expect(packages.every((p) => p.hashes.length > 0)).toBe(true);
    expect(new Set(packages.map((p) => p.index))).toEqual(new Set(["https://pypi.org/simple"]));
    expect(requirements.split("\n").find((l) => l.startsWith("colorama=="))).toMatch(
      /^colorama==0\.4\.6 ; \S.* --hash=sha256:/,
    );
  });

  it("keeps each version of a forked resolution under its own marker, and drops markers both forks cover", () => {
    const result = convertUvLock({
      manifest: read("uv-fork", "pyproject.toml"),
      lock: read("uv-fork", "uv.lock"),
      where: "layers/uv-fork",
    });
    const versions = (name: string) => result.packages.filter((p) => p.name === name).map((p) => [p.version, p.marker]);
    expect(versions("click")).toEqual([
      ["8.1.8", "python_full_version < '3.10'"],
      ["8.5.0", "python_full_version >= '3.10'"],
    ]);
    expect(versions("urllib3").map(([, marker]) => marker)).toEqual([
      "python_full_version < '3.10'",
      "python_full_version >= '3.10'",
    ]);
    expect(versions("certifi")).toEqual([["2026.10.19.post1", undefined]]);
    expect(versions("colorama")).toEqual([["0.4.6", "sys_platform == 'win32'"]]);
  });

  it("adds an optional extra when it is requested", () => {
    expect(names(convertUvLock({ ...uv(), extras: ["socks"] }).packages)).toContain("pysocks");
  });

  it("fails naming the file and `uv lock` when pyproject.toml gained a dependency", () => {
    const input = uv();
    const manifest = input.manifest.replace('"tqdm"]', '"tqdm", "attrs>=23"]');
    const error = buildError(() => convertUvLock({ ...input, manifest }));
    expect(error.message).toContain("layers/uv/uv.lock is out of date with pyproject.toml");
    expect(error.message).toContain("attrs>=23");
    expect(error.message).toContain("`uv lock`");
  });

  it("fails when a version specifier changed, and accepts the same one spelled with other spaces", () => {
    const input = uv();
    expect(() =>
      convertUvLock({ ...input, manifest: input.manifest.replace("click >= 8.1, <9", "click>=8.2,<9") }),
    ).toThrow(/out of date/);
    expect(
      convertUvLock({ ...input, manifest: input.manifest.replace("click >= 8.1, <9", "click<9,>=8.1") }).packages,
    ).toHaveLength(PRODUCTION.length);
  });

  it("refuses a git source, which a hashed install cannot take", () => {
    const input = uv();
    const lock = input.lock.replace(
      'name = "tqdm"\nversion = "4.70.1"\nsource = { registry = "https://pypi.org/simple" }',
      'name = "tqdm"\nversion = "4.70.1"\nsource = { git = "https://github.com/tqdm/tqdm?rev=abc#abc" }',
    );
    expect(lock).not.toBe(input.lock);
    expect(buildError(() => convertUvLock({ ...input, lock })).message).toContain("tqdm from a git source");
  });
});

describe("convertPoetryLock", () => {
  it("converts the main group, without the dev group or optional extras", () => {
    const result = convertPoetryLock(poetry());
    expect(names(result.packages)).toEqual(PRODUCTION.filter((n) => n !== "click"));
    expect(result.packages.find((p) => p.name === "colorama")?.marker).toBe('platform_system == "Windows"');
  });

  it("adds an optional package when its extra is requested", () => {
    expect(names(convertPoetryLock({ ...poetry(), extras: ["socks"] }).packages)).toContain("pysocks");
  });

  it("fails naming poetry.lock and `poetry lock` when the content-hash no longer matches pyproject.toml", () => {
    const input = poetry();
    const error = buildError(() =>
      convertPoetryLock({ ...input, manifest: input.manifest.replace('"tqdm"]', '"tqdm", "attrs"]') }),
    );
    expect(error.message).toBe(
      "layers/poetry/poetry.lock is out of date with pyproject.toml (its content-hash does not match); run `poetry lock` and commit poetry.lock",
    );
  });

  it("refuses a lock without groups (lock-version 2.0)", () => {
    const input = poetry();
    const lock = input.lock.replace('lock-version = "2.1"', 'lock-version = "2.0"');
    expect(buildError(() => convertPoetryLock({ ...input, lock })).message).toContain("lock-version 2.0");
  });
});

describe("convertPipfileLock", () => {
  it("converts the default section, without develop", () => {
    const result = convertPipfileLock(pipenv());
    expect(names(result.packages)).toEqual(["certifi", "charset-normalizer", "idna", "requests", "tqdm", "urllib3"]);
    expect(result.packages.find((p) => p.name === "requests")?.marker).toBe("python_version >= '3.10'");
    expect(new Set(result.packages.map((p) => p.index))).toEqual(new Set(["https://pypi.org/simple"]));
  });

  it("fails naming Pipfile.lock and `pipenv lock` when the Pipfile changed", () => {
    const input = pipenv();
    const error = buildError(() =>
      convertPipfileLock({ ...input, manifest: input.manifest.replace('tqdm = "*"', 'tqdm = ">=4"') }),
    );
    expect(error.message).toContain("layers/pipenv/Pipfile.lock is out of date with Pipfile");
    expect(error.message).toContain("`pipenv lock`");
  });

  it("accepts a Pipfile that only reorders its tables", () => {
    const input = pipenv();
    const [head, rest] = input.manifest.split("[packages]");
    const manifest = `[packages]${rest}\n${head}`;
    expect(convertPythonLock("pipenv", { ...input, manifest }).packages).toHaveLength(6);
  });
});

describe("requirementLines", () => {
  it("writes one sorted, newline-terminated line per package", () => {
    expect(
      requirementLines([
        { name: "b", version: "2", hashes: ["sha256:bb"], marker: undefined, index: undefined },
        {
          name: "A_x",
          version: "1.0",
          hashes: ["sha256:aa", "sha256:ab"],
          marker: "python_version < '3.13'",
          index: undefined,
        },
      ]),
    ).toBe("A_x==1.0 ; python_version < '3.13' --hash=sha256:aa --hash=sha256:ab\nb==2 --hash=sha256:bb\n");
  });
});

describe("pythonJson", () => {
  it("writes what Python's json.dumps(sort_keys=True) writes, non-ASCII escaped", () => {
    expect(pythonJson({ b: [1, true, null], a: 'é"\n', c: 1.5 }, ", ", ": ")).toBe(
      '{"a": "\\u00e9\\"\\n", "b": [1, true, null], "c": 1.5}',
    );
    expect(pythonJson({ b: {}, a: [] }, ",", ":")).toBe('{"a":[],"b":{}}');
  });
});

describe("the manifest hashes", () => {
  const cases = JSON.parse(read(".", "content-hashes.json")) as {
    poetry: Record<string, { text: string; hash: string }>;
    pipenv: Record<string, { text: string; legacy: string; current: string }>;
  };

  it.each(Object.entries(cases.poetry))("equal Poetry's content-hash for the %s pyproject", (_, { text, hash }) => {
    expect(poetryContentHash(parseToml(text))).toBe(hash);
  });

  it.each(Object.entries(cases.pipenv))("equal pipenv's hashes for the %s Pipfile", (_, { text, legacy, current }) => {
    expect(pipfileHash(parseToml(text), { canonicalNames: true })).toBe(current);
    expect(pipfileHash(parseToml(text))).toBe(legacy);
  });
});
