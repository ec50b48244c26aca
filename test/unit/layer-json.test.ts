import { describe, expect, it } from "vitest";
import { ConfigError } from "../../lib/common/errors.ts";
import { decodeLayerConfig, encodeLayerConfig, parseLayerConfig } from "../../lib/common/layer-json.ts";

describe("parseLayerConfig", () => {
  it("reads the four overridable settings and round-trips through S3 metadata", () => {
    const parsed = parseLayerConfig(
      JSON.stringify({
        runtimes: ["python3.13"],
        architectures: ["arm64"],
        description: "Requests for Python",
        license: "Apache-2.0 — ünï",
      }),
      "layers/x/layer.json",
    );
    expect(decodeLayerConfig(encodeLayerConfig(parsed), "s3://b/k")).toEqual(parsed);
    expect(encodeLayerConfig(parsed)).toMatch(/^[A-Za-z0-9_-]+$/);
  });

  it.each([
    ["not json", /is not valid JSON/],
    ["[]", /must be a JSON object/],
    [JSON.stringify({ runtime: ["x"] }), /unknown field\(s\) "runtime"/],
    [JSON.stringify({ runtimes: ["cobol"] }), /unknown runtime\(s\) cobol/],
    [JSON.stringify({ runtimes: Array.from({ length: 16 }, (_, i) => `python3.${i}`) }), /at most 15/],
    [JSON.stringify({ architectures: ["mips"] }), /unknown architecture/],
    [JSON.stringify({ license: "x".repeat(513) }), /"license" is 513 characters/],
  ])("rejects %s with a message naming the file", (text, why) => {
    expect(() => parseLayerConfig(text, "layers/x/layer.json")).toThrow(ConfigError);
    expect(() => parseLayerConfig(text, "layers/x/layer.json")).toThrow(why);
    expect(() => parseLayerConfig(text, "layers/x/layer.json")).toThrow(/layers\/x\/layer\.json/);
  });
});
