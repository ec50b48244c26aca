import { describe, expect, it } from "vitest";
import { ConfigError } from "../../lib/common/errors.ts";
import { detectFamily, isNeverPackaged } from "../../lib/common/lock-families.ts";

function configError(files: string[]): ConfigError {
  try {
    detectFamily(files, "layers/x");
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error("no ConfigError");
}

describe("detectFamily", () => {
  it.each([
    [["requirements.txt", "app.py"], "requirements", "python", ["requirements.txt"]],
    [["pyproject.toml", "uv.lock"], "uv", "python", ["pyproject.toml", "uv.lock"]],
    [["pyproject.toml", "poetry.lock"], "poetry", "python", ["pyproject.toml", "poetry.lock"]],
    [["Pipfile", "Pipfile.lock"], "pipenv", "python", ["Pipfile", "Pipfile.lock"]],
    [["package.json", "package-lock.json"], "npm", "nodejs", ["package.json", "package-lock.json"]],
    [["package.json", "pnpm-lock.yaml"], "pnpm", "nodejs", ["package.json", "pnpm-lock.yaml"]],
    [["package.json", "yarn.lock", ".yarnrc.yml"], "yarn", "nodejs", ["package.json", "yarn.lock"]],
  ])("recognises %j as the %s family", (files, family, language, described) => {
    const found = detectFamily(files, "layers/x");
    expect(found?.family).toBe(family);
    expect(found?.language).toBe(language);
    expect(found?.files).toEqual(described);
  });

  it("returns undefined for a folder without a manifest or a lock", () => {
    expect(detectFamily(["README.md", "src/requirements.txt", "lib/package.json"], "layers/x")).toBeUndefined();
  });

  it.each([
    [["pyproject.toml"], ["`uv lock` (uv.lock)", "`poetry lock` (poetry.lock)"]],
    [["Pipfile"], ["`pipenv lock` (Pipfile.lock)"]],
    [
      ["package.json"],
      ["`npm install` (package-lock.json)", "`pnpm install` (pnpm-lock.yaml)", "`yarn install` (yarn.lock)"],
    ],
  ])("refuses %j without its lock, naming the commands that write it", (files, commands) => {
    const error = configError(files);
    for (const command of commands) expect(error.message).toContain(command);
    expect(error.message).toContain('folder "layers/x"');
  });

  it("refuses a lock without its manifest", () => {
    expect(configError(["uv.lock"]).message).toContain("has uv.lock but no pyproject.toml");
    expect(configError(["yarn.lock"]).message).toContain("has yarn.lock but no package.json");
  });

  it.each([
    [
      ["pyproject.toml", "uv.lock", "poetry.lock"],
      ["pyproject.toml + uv.lock", "pyproject.toml + poetry.lock"],
    ],
    [
      ["requirements.txt", "Pipfile", "Pipfile.lock"],
      ["requirements.txt", "Pipfile + Pipfile.lock"],
    ],
    [
      ["package.json", "package-lock.json", "yarn.lock"],
      ["package.json + package-lock.json", "package.json + yarn.lock"],
    ],
    [
      ["requirements.txt", "package.json", "pnpm-lock.yaml"],
      ["requirements.txt", "package.json + pnpm-lock.yaml"],
    ],
  ])("refuses two families in one folder, naming both (%j)", (files, labels) => {
    const error = configError(files);
    expect(error.message).toContain("2 dependency families");
    for (const label of labels) expect(error.message).toContain(label);
  });
});

describe("isNeverPackaged", () => {
  it.each([
    "layer.json",
    "requirements.txt",
    "pyproject.toml",
    "uv.lock",
    "poetry.lock",
    "Pipfile",
    "Pipfile.lock",
    "package.json",
    "package-lock.json",
    "pnpm-lock.yaml",
    "yarn.lock",
    "requirements.in",
    "requirements-dev.in",
    "constraints.txt",
    "constraints-prod.txt",
    ".python-version",
    ".npmrc",
    ".yarnrc.yml",
    ".pnp.cjs",
    ".pnp.loader.mjs",
    ".yarn/releases/yarn-4.18.1.cjs",
    ".yarn/cache/ms-npm-2.1.3-81ff3cfac1-aa92de6080.zip",
  ])("never packages the root file %s", (name) => {
    expect(isNeverPackaged(name)).toBe(true);
  });

  it.each([
    "app.py",
    "requirements-dev.txt",
    "lib/requirements.in",
    "pkg/package.json",
    "constraints.md",
    "data.in",
    "pkg/.yarn/x.js",
    ".yarnish/x.js",
  ])("packages %s", (name) => {
    expect(isNeverPackaged(name)).toBe(false);
  });
});
