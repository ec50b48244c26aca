import { describe, expect, it } from "vitest";
import { NEWEST_RUNTIME, planBuild, targetPackage } from "../../lib/common/build-plan.ts";
import { ConfigError } from "../../lib/common/errors.ts";
import { BUILD_RUNTIMES, parseLayerConfig, tooManyTargets } from "../../lib/common/layer-json.ts";

const base = {
  folder: "layers/pydeps",
  name: "pydeps",
  layerNamePrefix: "org-",
  defaults: { runtimes: [], architectures: [] },
};

describe("planBuild", () => {
  it("is undefined for a folder without a manifest or build section", () => {
    expect(planBuild({ ...base, files: ["python/x.py", "layer.json"], layerJson: '{"runtimes":["python3.12"]}' })).toBe(
      undefined,
    );
  });

  it("detects Python from requirements.txt and defaults to the newest runtime on x86_64 under the folder's name", () => {
    const plan = planBuild({ ...base, files: ["requirements.txt", "python/mymodule.py"] });
    expect(plan).toMatchObject({
      language: "python",
      manifests: ["requirements.txt"],
      exclude: [],
      bytecode: true,
      slim: false,
    });
    expect(plan?.targets).toEqual([
      {
        runtime: NEWEST_RUNTIME.python,
        architecture: "x86_64",
        package: "pydeps",
        layerName: "org-pydeps",
        compatibleRuntimes: [NEWEST_RUNTIME.python],
        compatibleArchitectures: ["x86_64"],
      },
    ]);
  });

  it("names one package per runtime and architecture when there are several targets", () => {
    const plan = planBuild({
      ...base,
      files: ["requirements.txt", "layer.json"],
      layerJson: JSON.stringify({
        build: { runtimes: ["python3.12", "python3.13"], architectures: ["x86_64", "arm64"] },
      }),
    });
    expect(plan?.targets.map((t) => [t.package, t.compatibleRuntimes, t.compatibleArchitectures])).toEqual([
      ["pydeps-python312-x86_64", ["python3.12"], ["x86_64"]],
      ["pydeps-python312-arm64", ["python3.12"], ["arm64"]],
      ["pydeps-python313-x86_64", ["python3.13"], ["x86_64"]],
      ["pydeps-python313-arm64", ["python3.13"], ["arm64"]],
    ]);
    expect(targetPackage("nodedeps", "nodejs22.x", "x86_64", false)).toBe("nodedeps-nodejs22x-x86_64");
  });

  it("takes the matching COMPATIBLE_RUNTIMES and COMPATIBLE_ARCHITECTURES as defaults", () => {
    const plan = planBuild({
      ...base,
      folder: "layers/nodedeps",
      name: "nodedeps",
      files: ["package.json", "package-lock.json", "index.js"],
      defaults: { runtimes: ["python3.12", "nodejs22.x"], architectures: ["arm64"] },
    });
    expect(plan?.language).toBe("nodejs");
    expect(plan?.manifests).toEqual(["package.json", "package-lock.json"]);
    expect(plan?.targets.map((t) => t.package)).toEqual(["nodedeps"]);
    expect(plan?.targets[0]).toMatchObject({ runtime: "nodejs22.x", architecture: "arm64" });
  });

  it("prefers layer.json's own runtimes and architectures over the settings", () => {
    const plan = planBuild({
      ...base,
      files: ["requirements.txt", "layer.json"],
      layerJson: JSON.stringify({ runtimes: ["python3.13"], architectures: ["arm64"] }),
      defaults: { runtimes: ["python3.12"], architectures: ["x86_64"] },
    });
    expect(plan?.targets.map((t) => `${t.runtime} ${t.architecture}`)).toEqual(["python3.13 arm64"]);
  });

  it("keeps a given exclude list instead of the default", () => {
    const plan = planBuild({
      ...base,
      files: ["requirements.txt", "layer.json"],
      layerJson: JSON.stringify({ build: { exclude: ["python/**/tests/**"] } }),
    });
    expect(plan?.exclude).toEqual(["python/**/tests/**"]);
  });

  it("carries build.maxUnzippedMiB as every target's budget", () => {
    const plan = planBuild({ ...base, files: ["requirements.txt"], layerJson: '{"build":{"maxUnzippedMiB":50}}' });
    expect(plan?.maxUnzippedMiB).toBe(50);
    expect(planBuild({ ...base, files: ["requirements.txt"] })?.maxUnzippedMiB).toBeUndefined();
  });

  it.each([
    [["pyproject.toml", "uv.lock", "app.py"], "uv", ["pyproject.toml", "uv.lock"]],
    [["pyproject.toml", "poetry.lock"], "poetry", ["pyproject.toml", "poetry.lock"]],
    [["Pipfile", "Pipfile.lock", "requirements.in"], "pipenv", ["Pipfile", "Pipfile.lock"]],
    [["requirements.txt", "constraints.txt"], "requirements", ["requirements.txt"]],
  ])("plans %j as a Python build of the %s family", (files, family, manifests) => {
    const plan = planBuild({ ...base, files });
    expect(plan).toMatchObject({ language: "python", family, manifests });
  });

  it.each([
    [["package.json", "package-lock.json"], "npm", ["package.json", "package-lock.json"]],
    [["package.json", "pnpm-lock.yaml", ".npmrc"], "pnpm", ["package.json", "pnpm-lock.yaml"]],
    [["package.json", "yarn.lock", ".yarnrc.yml"], "yarn", ["package.json", "yarn.lock"]],
  ])("plans %j as a Node.js build of the %s family", (files, family, manifests) => {
    const plan = planBuild({ ...base, files });
    expect(plan).toMatchObject({ language: "nodejs", family, manifests });
  });

  it.each([
    [
      ["package.json"],
      undefined,
      /has package\.json but no lock file; run `npm install` \(package-lock\.json\) or `pnpm install` \(pnpm-lock\.yaml\) or `yarn install` \(yarn\.lock\)/,
    ],
    [["requirements.txt", "package.json", "package-lock.json"], undefined, /both requirements\.txt and package\.json/],
    [
      ["layer.json"],
      '{"build":{}}',
      /has a "build" section but the folder has no dependency manifest at its root \(requirements\.txt, pyproject\.toml/,
    ],
    [
      ["pyproject.toml"],
      undefined,
      /has pyproject\.toml but no lock file; run `uv lock` \(uv\.lock\) or `poetry lock`/,
    ],
    [["Pipfile"], undefined, /has Pipfile but no lock file; run `pipenv lock`/],
    [
      ["pyproject.toml", "uv.lock", "poetry.lock"],
      undefined,
      /holds 2 dependency families \(pyproject\.toml \+ uv\.lock, pyproject\.toml \+ poetry\.lock\)/,
    ],
    [
      ["requirements.txt", "Pipfile", "Pipfile.lock"],
      undefined,
      /holds 2 dependency families \(requirements\.txt, Pipfile \+ Pipfile\.lock\)/,
    ],
    [
      ["package.json", "pnpm-lock.yaml", "yarn.lock"],
      undefined,
      /holds 2 dependency families \(package\.json \+ pnpm-lock\.yaml, package\.json \+ yarn\.lock\)/,
    ],
    [
      ["package.json", "package-lock.json", "yarn.lock"],
      undefined,
      /holds 2 dependency families \(package\.json \+ package-lock\.json, package\.json \+ yarn\.lock\)/,
    ],
    [
      ["requirements.txt"],
      '{"build":{"runtimes":["nodejs22.x"]}}',
      /nodejs22\.x do not match the folder's requirements\.txt/,
    ],
    [["requirements.txt"], '{"build":{"architectures":["mips"]}}', /unknown build architecture\(s\) mips/],
    [["requirements.txt"], '{"build":{"runtime":["python3.12"]}}', /"build" has unknown field\(s\) "runtime"/],
    [
      ["requirements.txt"],
      '{"build":{"maxUnzippedMiB":0}}',
      /"build\.maxUnzippedMiB" must be a whole number of MiB from 1 to 250/,
    ],
    [["requirements.txt"], '{"build":{"maxUnzippedMiB":251}}', /"build\.maxUnzippedMiB" must be a whole number/],
    [["requirements.txt"], '{"build":{"maxUnzippedMiB":"50"}}', /"build\.maxUnzippedMiB" must be a whole number/],
    [["requirements.txt"], '{"build":{"exclude":["/etc/**"]}}', /exclude globs must be relative/],
    [["requirements.txt"], '{"build":[]}', /"build" must be an object/],
    [
      ["requirements.txt"],
      '{"build":{"runtimes":["python3.15"]}}',
      /build runtime\(s\): "python3\.15" is not a Lambda runtime layer-sync builds for; use one of python3\.9, .*nodejs24\.x$/,
    ],
    [
      ["package.json", "package-lock.json"],
      '{"build":{"runtimes":["nodejs26.x", "nodejs16.x"]}}',
      /"nodejs26\.x", "nodejs16\.x" are not Lambda runtimes/,
    ],
    [
      ["requirements.txt"],
      '{"runtimes":["python3.15"]}',
      /layers\/pydeps\/layer\.json: runtime\(s\): "python3\.15" is not a Lambda runtime/,
    ],
  ])("rejects %j with %s", (files, layerJson, why) => {
    const run = () => planBuild({ ...base, files, layerJson });
    expect(run).toThrow(ConfigError);
    expect(run).toThrow(why);
  });

  it("rejects a target whose layer name would be too long, naming the target", () => {
    const name = "x".repeat(125);
    const run = () =>
      planBuild({
        ...base,
        name,
        files: ["requirements.txt", "layer.json"],
        layerJson: JSON.stringify({ build: { runtimes: ["python3.12"], architectures: ["x86_64", "arm64"] } }),
      });
    expect(run).toThrow(/for python3\.12 arm64, which must match \[A-Za-z0-9_-\]\{1,140\}/);
  });
});

describe("a folder's build targets", () => {
  it("may be any runtime of BUILD_RUNTIMES, a list of Python and Node.js runtimes that holds each language's default", () => {
    expect(BUILD_RUNTIMES).toEqual(expect.arrayContaining(Object.values(NEWEST_RUNTIME)));
    for (const runtime of BUILD_RUNTIMES) {
      expect(runtime).toMatch(/^(python3\.\d+|nodejs\d+\.x)$/);
      const files = runtime.startsWith("python") ? ["requirements.txt"] : ["package.json", "package-lock.json"];
      const plan = planBuild({ ...base, files, layerJson: JSON.stringify({ build: { runtimes: [runtime] } }) });
      expect(plan?.targets.map((t) => t.runtime)).toEqual([runtime]);
    }
  });

  it("may not be a runtime Lambda has not launched yet or that is neither Python nor Node.js, naming it and the choices", () => {
    for (const runtime of ["python3.15", "nodejs26.x", "java21", "provided.al2023"]) {
      const run = () =>
        planBuild({
          ...base,
          files: ["requirements.txt"],
          layerJson: JSON.stringify({ build: { runtimes: [runtime] } }),
        });
      expect(run).toThrow(ConfigError);
      expect(run).toThrow(
        `"${runtime}" is not a Lambda runtime layer-sync builds for; use one of ${BUILD_RUNTIMES.join(", ")}`,
      );
    }
  });

  it("refuses an unknown runtime named in COMPATIBLE_RUNTIMES, naming the setting and the value", () => {
    const run = () =>
      planBuild({ ...base, files: ["requirements.txt"], defaults: { runtimes: ["python3.15"], architectures: [] } });
    expect(run).toThrow(ConfigError);
    expect(run).toThrow(/^COMPATIBLE_RUNTIMES \(--runtimes\), building folder "layers\/pydeps": "python3\.15" is not/);
  });

  it("number at most 32: more runtimes × architectures are refused, naming the count", () => {
    const runtimes = Array.from({ length: 17 }, (_, i) => `python3.${20 + i}`);
    const run = () =>
      parseLayerConfig(
        JSON.stringify({ build: { runtimes, architectures: ["x86_64", "arm64"] } }),
        "layers/x/layer.json",
      );
    expect(run).toThrow(ConfigError);
    expect(run).toThrow(
      /layers\/x\/layer\.json: "build": 17 runtime\(s\) × 2 architecture\(s\) make 34 build targets; at most 32/,
    );
    expect(tooManyTargets(16, 2, "w")).toBeUndefined();
    expect(tooManyTargets(33, 1, "w")).toMatch(/^w: 33 runtime\(s\) × 1 architecture\(s\) make 33 build targets/);
  });
});

describe("parseLayerConfig with a build section", () => {
  it("accepts a valid build section and keeps it out of the publish overrides", () => {
    const parsed = parseLayerConfig(
      JSON.stringify({ description: "deps", build: { runtimes: ["python3.12"], architectures: ["arm64"] } }),
      "layers/x/layer.json",
    );
    expect(parsed).toEqual({ description: "deps" });
  });

  it("reports a bad build section with the file's other problems", () => {
    expect(() =>
      parseLayerConfig(JSON.stringify({ license: 1, build: { architectures: ["sparc"] } }), "layers/x/layer.json"),
    ).toThrow(/"license" must be a string; .*unknown build architecture\(s\) sparc/);
  });
});
