import { describe, expect, it } from "vitest";
import { DEFAULTS, loadPublishConfig, loadSyncConfig, normaliseFolder, parseFolders } from "../../lib/common/config.ts";
import { ConfigError } from "../../lib/common/errors.ts";

const base = {
  SOURCE_PROVIDER: "bitbucket",
  SOURCE_REPOSITORY: "acme/layers",
  SOURCE_PATHS: "layers/py-requests, layers/tools/",
  ARTIFACT_BUCKET: "my-artifacts",
};

function problems(env: Record<string, string>, flags?: Record<string, string | string[]>): string[] {
  try {
    loadSyncConfig({ env, flags }, { requireBucket: true });
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
  return [];
}

describe("loadSyncConfig", () => {
  it("applies the documented defaults", () => {
    const c = loadSyncConfig({ env: base }, { requireBucket: true });
    expect(c.source.apiUrl).toBe(DEFAULTS.bitbucketApiUrl);
    expect(c.source.webUrl).toBe("https://bitbucket.org");
    expect(c.source.strategy).toBe("auto");
    expect(c.source.ref).toBeUndefined();
    expect(c.artifacts).toEqual({ bucket: "my-artifacts", artifactPrefix: "layers/", parameterPrefix: "/layer-sync" });
    expect(c.pipelineName).toBe("Custom-Control-Tower-CodePipeline");
    expect(c.layer.retainVersions).toBe(10);
    expect(c.source.folders).toEqual([
      { path: "layers/py-requests", package: "py-requests", layerName: "py-requests" },
      { path: "layers/tools", package: "tools", layerName: "tools" },
    ]);
  });

  it("uses GitHub's API by default for the github provider", () => {
    expect(loadSyncConfig({ env: { ...base, SOURCE_PROVIDER: "github" } }, { requireBucket: true }).source.apiUrl).toBe(
      "https://api.github.com",
    );
  });

  it("lets a flag win over its environment variable, and repeatable flags replace the list", () => {
    const c = loadSyncConfig(
      {
        env: { ...base, SOURCE_REF: "main" },
        flags: { ref: "feature/x", path: ["a/one", "b/two"], "layer-prefix": "acme-" },
      },
      { requireBucket: true },
    );
    expect(c.source.ref).toBe("feature/x");
    expect(c.source.folders.map((f) => f.layerName)).toEqual(["acme-one", "acme-two"]);
  });

  it("does not require a bucket for --out builds", () => {
    const { ARTIFACT_BUCKET: _, ...env } = base;
    expect(loadSyncConfig({ env }, { requireBucket: false }).artifacts.bucket).toBeUndefined();
    expect(problems(env)).toEqual([expect.stringMatching(/^ARTIFACT_BUCKET \(--bucket\) is required/)]);
  });

  it("reports every mistake at once, each naming its setting", () => {
    const found = problems({
      SOURCE_PROVIDER: "gitlab",
      SOURCE_REPOSITORY: "not a repo",
      SOURCE_PATHS: "layers/a,other/a,../x",
      ARTIFACT_BUCKET: "Bad_Bucket",
      ARTIFACT_PREFIX: "layers",
      PARAMETER_PREFIX: "no-slash",
      SOURCE_STRATEGY: "fast",
      SOURCE_API_URL: "ftp://x",
      COMPATIBLE_RUNTIMES: "python3.13,cobol",
      COMPATIBLE_ARCHITECTURES: "mips",
      SHARE_ORGANIZATION_ID: "org-1",
      SHARE_OU_IDS: "ou-bad",
      SHARE_ACCOUNT_IDS: "12345",
      RETAIN_VERSIONS: "0",
      SOURCE_CONCURRENCY: "many",
    });
    const settings = found.map((p) => p.split(" ")[0]);
    expect(settings).toEqual(
      expect.arrayContaining([
        "SOURCE_PROVIDER",
        "SOURCE_REPOSITORY",
        "SOURCE_PATHS",
        "ARTIFACT_BUCKET",
        "ARTIFACT_PREFIX",
        "PARAMETER_PREFIX",
        "SOURCE_STRATEGY",
        "SOURCE_API_URL",
        "COMPATIBLE_RUNTIMES",
        "COMPATIBLE_ARCHITECTURES",
        "SHARE_ORGANIZATION_ID",
        "SHARE_OU_IDS",
        "SHARE_ACCOUNT_IDS",
        "RETAIN_VERSIONS",
        "SOURCE_CONCURRENCY",
      ]),
    );
    expect(found.join("\n")).toMatch(/two folders with the same last segment "a": "layers\/a" and "other\/a"/);
  });

  it("refuses a public grant and credentials in URLs", () => {
    expect(problems({ ...base, SHARE_ACCOUNT_IDS: "*" }).join()).toMatch(/would make every layer version public/);
    expect(problems({ ...base, SOURCE_API_URL: "https://user:pw@api.example.com" }).join()).toMatch(
      /must not carry credentials/,
    );
  });

  it("rejects a layer name the Lambda pattern does not allow", () => {
    expect(problems({ ...base, SOURCE_PATHS: "layers/py.requests" }).join()).toMatch(
      /must match \[A-Za-z0-9_-\]\{1,140\}/,
    );
  });
});

describe("loadPublishConfig", () => {
  it("asks for the bucket without offering --out, which publish does not have", () => {
    let caught: unknown;
    try {
      loadPublishConfig({ env: {} });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).problems).toContain(
      "ARTIFACT_BUCKET (--bucket) is required: name the S3 bucket that holds the zips",
    );
  });

  it("reads sharing and retention settings without any source setting", () => {
    const c = loadPublishConfig({
      env: {
        ARTIFACT_BUCKET: "b-1",
        SHARE_ORGANIZATION_ID: "o-abcdefghij",
        SHARE_ACCOUNT_IDS: "111111111111,222222222222",
        RETAIN_VERSIONS: "3",
        COMPATIBLE_RUNTIMES: "nodejs24.x",
      },
    });
    expect(c.layer).toMatchObject({
      shareOrganizationId: "o-abcdefghij",
      shareAccountIds: ["111111111111", "222222222222"],
      retainVersions: 3,
      runtimes: ["nodejs24.x"],
    });
  });
});

describe("normaliseFolder and parseFolders", () => {
  it("strips surrounding slashes and rejects unsafe folder names", () => {
    expect(normaliseFolder("/layers/x/")).toEqual({ path: "layers/x" });
    for (const bad of ["", "/", "a/../b", "a//b", "a\\b", "a\0b", "./a"])
      expect(normaliseFolder(bad)).toHaveProperty("problem");
  });

  it("names both folders when two share a package name", () => {
    expect(parseFolders(["a/x", "b/x"], "").problems).toEqual([
      'has two folders with the same last segment "x": "a/x" and "b/x"',
    ]);
  });
});
