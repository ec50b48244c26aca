import { describe, expect, it } from "vitest";
import { BUILD_RECIPE_VERSION, buildFingerprint, type FingerprintInput } from "../../lib/builds/fingerprint.ts";

const input: FingerprintInput = {
  files: [
    { path: "requirements.txt", kind: "file", data: Buffer.from("PyYAML==6.0.2\n") },
    { path: "python/mymodule.py", kind: "file", data: Buffer.from("X = 1\n") },
  ],
  runtime: "python3.12",
  architecture: "arm64",
  tool: "docker public.ecr.aws/sam/build-python3.12:latest-arm64",
};

describe("buildFingerprint", () => {
  it("is 64 hex digits and does not depend on the order the files are listed in", () => {
    const fp = buildFingerprint(input);
    expect(fp).toMatch(/^[0-9a-f]{64}$/);
    expect(buildFingerprint({ ...input, files: [...input.files].reverse() })).toBe(fp);
    expect(BUILD_RECIPE_VERSION).toMatch(/^\d+$/);
  });

  it.each<[string, Partial<FingerprintInput>]>([
    [
      "the manifest bytes",
      {
        files: [
          { path: "requirements.txt", kind: "file", data: Buffer.from("PyYAML==6.0.3\n") },
          input.files[1] as FingerprintInput["files"][number],
        ],
      },
    ],
    [
      "another file of the folder",
      {
        files: [
          input.files[0] as FingerprintInput["files"][number],
          { path: "python/mymodule.py", kind: "file", data: Buffer.from("X = 2\n") },
        ],
      },
    ],
    [
      "a file's mode",
      {
        files: [
          input.files[0] as FingerprintInput["files"][number],
          { path: "python/mymodule.py", kind: "executable", data: Buffer.from("X = 1\n") },
        ],
      },
    ],
    [
      "a file's name",
      {
        files: [
          input.files[0] as FingerprintInput["files"][number],
          { path: "python/other.py", kind: "file", data: Buffer.from("X = 1\n") },
        ],
      },
    ],
    ["the runtime", { runtime: "python3.13" }],
    ["the architecture", { architecture: "x86_64" }],
    ["the image or tool versions", { tool: "local pip 24.2 (python 3.13)" }],
    ["the package index", { index: "https://example.com/simple/" }],
  ])("changes with %s", (_what, change) => {
    expect(buildFingerprint({ ...input, ...change })).not.toBe(buildFingerprint(input));
  });

  it("cannot be made equal by moving bytes between a name and a content", () => {
    const a = buildFingerprint({ ...input, files: [{ path: "ab", kind: "file", data: Buffer.from("c") }] });
    const b = buildFingerprint({ ...input, files: [{ path: "a", kind: "file", data: Buffer.from("bc") }] });
    expect(a).not.toBe(b);
  });
});

describe("the local builder's identity", () => {
  it("names the pinned resolver and its version for Python without bytecode, whatever the host has on PATH", async () => {
    const { LocalBuilder } = await import("../../lib/builds/local.ts");
    const request = {
      language: "python" as const,
      runtime: "python3.12",
      architecture: "arm64" as const,
      sourceDir: "",
      outDir: "",
      // with bytecode on, it also says which interpreter compiles (build-local.test.ts)
      bytecode: false,
    };
    const a = new LocalBuilder({ env: { PATH: "/nonexistent" }, home: "/tmp", timeoutMs: 1000 });
    const b = new LocalBuilder({ env: { PATH: "/usr/bin:/bin" }, home: "/tmp", timeoutMs: 1000 });
    expect(await a.identity(request)).toBe("local uv 0.13.9");
    expect(await b.identity(request)).toBe(await a.identity(request));
  });
});
