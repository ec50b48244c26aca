import { describe, expect, it } from "vitest";
import { NEWEST_RUNTIME, planBuild, targetPackage } from "../../lib/build/plan.ts";
import { ConfigError } from "../../lib/common/errors.ts";
import { parseLayerConfig } from "../../lib/common/layer-config.ts";

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
    expect(plan).toMatchObject({ language: "python", manifests: ["requirements.txt"], exclude: ["**/__pycache__/**"] });
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

  it.each([
    [["package.json"], undefined, /has package\.json but no package-lock\.json; .*commit package-lock\.json/],
    [["requirements.txt", "package.json", "package-lock.json"], undefined, /both requirements\.txt and package\.json/],
    [["layer.json"], '{"build":{}}', /has a "build" section but the folder has no requirements\.txt/],
    [
      ["requirements.txt"],
      '{"build":{"runtimes":["nodejs22.x"]}}',
      /nodejs22\.x do not match the folder's requirements\.txt/,
    ],
    [["requirements.txt"], '{"build":{"architectures":["mips"]}}', /unknown build architecture\(s\) mips/],
    [["requirements.txt"], '{"build":{"runtime":["python3.12"]}}', /"build" has unknown field\(s\) "runtime"/],
    [["requirements.txt"], '{"build":{"exclude":["/etc/**"]}}', /exclude globs must be relative/],
    [["requirements.txt"], '{"build":[]}', /"build" must be an object/],
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
