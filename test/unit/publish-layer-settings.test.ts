import { describe, expect, it } from "vitest";
import type { ArtifactMetadata } from "../../lib/artifacts/store.ts";
import type { LayerDefaults } from "../../lib/common/config.ts";
import { PublishError } from "../../lib/common/errors.ts";
import { encodeLayerConfig } from "../../lib/common/layer-json.ts";
import {
  carriesContent,
  describeArtifact,
  layerSettingsProblems,
  parseSource,
  resolveLayerSettings,
  shaTag,
  taggedSha,
} from "../../lib/publish/layer-settings.ts";

const sha = "0123456789abcdef".repeat(4);
const commit = "abc1234def5678901234567890abcdef12345678";
const meta: ArtifactMetadata = {
  commit,
  source: "github:acme/repo:layers/py-requests",
  contentSha256: sha,
  files: 3,
  format: "1",
};
const layer: LayerDefaults = {
  layerNamePrefix: "acme-",
  runtimes: ["python3.13"],
  architectures: ["arm64"],
  license: "MIT",
  shareOrganizationId: undefined,
  shareOuIds: [],
  shareAccountIds: [],
  retainVersions: 10,
};

describe("the layer version description", () => {
  it("names the repository, short commit, path and the first 12 hex of the content sha256", () => {
    expect(describeArtifact(meta)).toBe("acme/repo@abc1234 layers/py-requests sha256:0123456789ab");
  });

  it("puts a layer.json description in front and keeps the identifying part intact", () => {
    expect(describeArtifact(meta, "HTTP client for Python")).toBe(
      "HTTP client for Python acme/repo@abc1234 layers/py-requests sha256:0123456789ab",
    );
  });

  it("trims a long layer.json description so the whole stays within 256 characters", () => {
    const text = describeArtifact(meta, "x".repeat(200));
    expect(text.length).toBe(256);
    expect(text.endsWith("… acme/repo@abc1234 layers/py-requests sha256:0123456789ab")).toBe(true);
  });

  it("shortens a very long path from the left and a very long repository, never dropping commit or tag", () => {
    const longPath = describeArtifact({ ...meta, source: `github:acme/repo:${"deep/".repeat(80)}py-requests` });
    expect(longPath.length).toBeLessThanOrEqual(256);
    expect(longPath).toMatch(/^acme\/repo@abc1234 ….*py-requests sha256:0123456789ab$/);
    const longRepo = describeArtifact({ ...meta, source: `github:${"r".repeat(300)}/x:p` });
    expect(longRepo.length).toBeLessThanOrEqual(256);
    expect(longRepo).toMatch(/@abc1234 sha256:0123456789ab$/);
  });

  it("splits the source into provider, repository and a path that may contain colons", () => {
    expect(parseSource("bitbucket:ws/repo:a:b/c")).toEqual({
      provider: "bitbucket",
      repository: "ws/repo",
      path: "a:b/c",
    });
    expect(parseSource("nonsense")).toBeUndefined();
  });
});

describe("the content tag", () => {
  it("is read back from the end of a description, even when the user text contains another tag", () => {
    expect(shaTag(sha)).toBe("sha256:0123456789ab");
    expect(taggedSha("see sha256:ffffffffffff acme/repo@abc1234 p sha256:0123456789ab")).toBe("0123456789ab");
    expect(carriesContent("acme/repo@abc1234 p sha256:0123456789ab", sha)).toBe(true);
    expect(carriesContent("acme/repo@abc1234 p sha256:0123456789ac", sha)).toBe(false);
    expect(carriesContent("hand-made version", sha)).toBe(false);
    expect(carriesContent(undefined, sha)).toBe(false);
  });
});

describe("resolving the publish settings", () => {
  it("takes the environment defaults when the artifact carries no layer.json", () => {
    expect(resolveLayerSettings(layer, "py-requests", meta, "s3://b/k")).toEqual({
      layerName: "acme-py-requests",
      runtimes: ["python3.13"],
      architectures: ["arm64"],
      description: "acme/repo@abc1234 layers/py-requests sha256:0123456789ab",
      license: "MIT",
    });
  });

  it("lets layer.json override runtimes, architectures, description and licence", () => {
    const layerConfig = encodeLayerConfig({
      runtimes: ["python3.12", "python3.13"],
      architectures: ["x86_64"],
      description: "requests",
      license: "Apache-2.0",
    });
    expect(resolveLayerSettings(layer, "py-requests", { ...meta, layerConfig }, "s3://b/k")).toEqual({
      layerName: "acme-py-requests",
      runtimes: ["python3.12", "python3.13"],
      architectures: ["x86_64"],
      description: "requests acme/repo@abc1234 layers/py-requests sha256:0123456789ab",
      license: "Apache-2.0",
    });
  });

  it("fails with a PublishError naming the artifact when the carried layer.json is invalid", () => {
    const layerConfig = Buffer.from(JSON.stringify({ runtimes: ["cobol"] })).toString("base64url");
    expect(() => resolveLayerSettings(layer, "p", { ...meta, layerConfig }, "s3://b/k")).toThrowError(PublishError);
    expect(() => resolveLayerSettings(layer, "p", { ...meta, layerConfig }, "s3://b/k")).toThrowError(
      /layer\.json carried by s3:\/\/b\/k.*cobol.*fix layer\.json/,
    );
  });
});

describe("checking the settings against Lambda's limits before publishing", () => {
  const ok = resolveLayerSettings(layer, "py-requests", meta, "s3://b/k");

  it("accepts settings within the limits", () => {
    expect(layerSettingsProblems(ok)).toEqual([]);
  });

  it("reports a bad layer name, too many runtimes, a long description and a long licence", () => {
    const problems = layerSettingsProblems({
      layerName: "bad.name",
      runtimes: Array.from({ length: 16 }, (_, i) => `python3.${i}`),
      architectures: ["x86_64", "arm64", "x86_64"],
      description: "d".repeat(257),
      license: "l".repeat(513),
    });
    expect(problems).toHaveLength(5);
    expect(problems.join("\n")).toMatch(/layer name "bad.name" must match/);
    expect(problems.join("\n")).toMatch(/16 compatible runtimes; Lambda allows at most 15/);
    expect(problems.join("\n")).toMatch(/description is 257 characters/);
    expect(problems.join("\n")).toMatch(/licence is 513 characters/);
  });

  it("rejects a layer name of 141 characters and accepts one of 140", () => {
    expect(layerSettingsProblems({ ...ok, layerName: "a".repeat(141) })).toHaveLength(1);
    expect(layerSettingsProblems({ ...ok, layerName: "a".repeat(140) })).toEqual([]);
  });
});
