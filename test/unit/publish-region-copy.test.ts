import { describe, expect, it } from "vitest";
import { copySource, locationRegion, sha256Base64 } from "../../lib/publish/region-copy.ts";

describe("staging an artifact in another Region", () => {
  it("names the copy source as bucket/key with each key segment URL-encoded", () => {
    expect(copySource("home", "layers/py-a/20261121T100000Z-abc.zip")).toBe(
      "home/layers/py-a/20261121T100000Z-abc.zip",
    );
    expect(copySource("home", "layers/a b/x+y?.zip")).toBe("home/layers/a%20b/x%2By%3F.zip");
  });

  it("reads GetBucketLocation's empty answer as us-east-1 and EU as eu-west-1", () => {
    expect(locationRegion(undefined)).toBe("us-east-1");
    expect(locationRegion("")).toBe("us-east-1");
    expect(locationRegion("EU")).toBe("eu-west-1");
    expect(locationRegion("ap-southeast-2")).toBe("ap-southeast-2");
  });

  it("compares checksums in S3's base64 form of the hex content-sha256", () => {
    const hex = "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9";
    expect(sha256Base64(hex)).toBe("uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=");
  });
});
