import { describe, expect, it } from "vitest";
import { loadPublishConfig } from "../../lib/common/config.ts";
import { ConfigError } from "../../lib/common/errors.ts";
import { parseLayerConfig } from "../../lib/common/layer-json.ts";
import { defaultSmokeModules } from "../../lib/publish/layer-entries.ts";
import { lastLine, SmokeLocks, smokeFunctionName, smokeTargets } from "../../lib/publish/smoke.ts";
import { smokeCode } from "../../lib/publish/smoke-handlers.ts";

const ROLE = "arn:aws:iam::123456789012:role/layer-sync-smoke";

describe("the smoke test's default modules", () => {
  it("are the top-level Python packages and modules, in python/ and site-packages, without metadata folders", () => {
    const names = [
      "python/",
      "python/yaml/__init__.py",
      "python/PyYAML-6.0.1.dist-info/METADATA",
      "python/six.py",
      "python/_cffi_backend.cpython-312-x86_64-linux-gnu.so",
      "python/__pycache__/six.cpython-312.pyc",
      "python/bin/normalizer",
      "python/lib/python3.12/site-packages/requests/__init__.py",
      "python/lib/python3.12/site-packages/requests-2.32.0.dist-info/RECORD",
      "nodejs/node_modules/lodash/index.js",
    ];
    expect(defaultSmokeModules(names, "python")).toEqual(["_cffi_backend", "requests", "six", "yaml"]);
  });

  it("are the nodejs/node_modules packages, scoped ones included, without .bin and @types", () => {
    const names = [
      "nodejs/node_modules/.bin/uuid",
      "nodejs/node_modules/.package-lock.json",
      "nodejs/node_modules/uuid/package.json",
      "nodejs/node_modules/@aws-sdk/client-s3/package.json",
      "nodejs/node_modules/@types/node/index.d.ts",
      "nodejs/node20/node_modules/sharp/package.json",
      "python/yaml/__init__.py",
    ];
    expect(defaultSmokeModules(names, "nodejs")).toEqual(["@aws-sdk/client-s3", "sharp", "uuid"]);
  });
});

describe("the smoke targets of a layer", () => {
  it("are its Python and Node.js runtimes times its architectures, with layer.json's modules", () => {
    const targets = smokeTargets({
      runtimes: ["python3.12", "java21", "nodejs22.x"],
      architectures: ["x86_64", "arm64"],
      build: undefined,
      modules: ["yaml"],
    });
    expect(targets.map((t) => [smokeFunctionName(t.runtime, t.architecture), t.family, t.modules])).toEqual([
      ["layer-sync-smoke-python312-x86_64", "python", ["yaml"]],
      ["layer-sync-smoke-python312-arm64", "python", ["yaml"]],
      ["layer-sync-smoke-nodejs22x-x86_64", "nodejs", ["yaml"]],
      ["layer-sync-smoke-nodejs22x-arm64", "nodejs", ["yaml"]],
    ]);
  });

  it("fall back to the runtime and architecture a layer was built for, and to x86_64", () => {
    const built = { runtime: "python3.13", architecture: "arm64", fingerprint: "f" };
    expect(
      smokeTargets({ runtimes: [], architectures: [], build: built, modules: undefined }).map((t) => [
        t.runtime,
        t.architecture,
      ]),
    ).toEqual([["python3.13", "arm64"]]);
    expect(
      smokeTargets({ runtimes: ["nodejs24.x"], architectures: [], build: undefined, modules: undefined }).map(
        (t) => t.architecture,
      ),
    ).toEqual(["x86_64"]);
    expect(smokeTargets({ runtimes: [], architectures: [], build: undefined, modules: undefined })).toEqual([]);
  });
});

describe("the smoke settings", () => {
  const base = { ARTIFACT_BUCKET: "bucket-a" };

  it("turn the smoke test on by default when SMOKE_ROLE_ARN is set, and off otherwise", () => {
    expect(loadPublishConfig({ env: base }).release).toMatchObject({ smokeTest: false, smokeRoleArn: undefined });
    expect(loadPublishConfig({ env: { ...base, SMOKE_ROLE_ARN: ROLE } }).release).toMatchObject({
      smokeTest: true,
      smokeRoleArn: ROLE,
    });
    expect(
      loadPublishConfig({ env: { ...base, SMOKE_ROLE_ARN: ROLE }, flags: { "smoke-test": "off" } }).release.smokeTest,
    ).toBe(false);
  });

  it("refuse SMOKE_TEST on without a role, and a role that is not a role ARN", () => {
    expect(() => loadPublishConfig({ env: { ...base, SMOKE_TEST: "on" } })).toThrow(
      /SMOKE_TEST \(--smoke-test\) is on, but SMOKE_ROLE_ARN \(--smoke-role\) is not set/,
    );
    expect(() => loadPublishConfig({ env: { ...base, SMOKE_ROLE_ARN: "layer-sync-smoke" } })).toThrow(ConfigError);
  });

  it('accept layer.json "smoke" module lists and refuse anything else', () => {
    expect(parseLayerConfig('{"smoke": ["numpy", "google.protobuf", "@scope/pkg"]}', "layer.json").smoke).toEqual([
      "numpy",
      "google.protobuf",
      "@scope/pkg",
    ]);
    expect(() => parseLayerConfig('{"smoke": "numpy"}', "layer.json")).toThrow(/"smoke" must be an array/);
    expect(() => parseLayerConfig('{"smoke": ["import os"]}', "layer.json")).toThrow(/invalid module/);
  });
});

describe("the smoke functions' code", () => {
  it("zips to the same bytes every time", async () => {
    const a = await smokeCode("python");
    expect(a.handler).toBe("layer_sync_smoke.handler");
    expect(a.codeSha256).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect((await smokeCode("nodejs")).codeSha256).not.toBe(a.codeSha256);
  });

  it("keeps an error's last line, the reason", () => {
    expect(lastLine("Traceback (most recent call last):\n  File x\nImportError: libfoo.so: cannot open\n")).toBe(
      "ImportError: libfoo.so: cannot open",
    );
  });

  it("uses one function at a time within a run", async () => {
    const locks = new SmokeLocks();
    const seen: string[] = [];
    const task = (id: string) => async () => {
      seen.push(`start ${id}`);
      await new Promise((r) => setTimeout(r, 5));
      seen.push(`end ${id}`);
    };
    await Promise.all([locks.run("f", task("a")), locks.run("f", task("b"))]);
    expect(seen).toEqual(["start a", "end a", "start b", "end b"]);
  });
});
