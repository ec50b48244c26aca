import { describe, expect, it } from "vitest";
import { contentRun, convergeVersions, type LayerVersionInfo, parseLayerArn } from "../../lib/publish/layers.ts";
import { planRetention } from "../../lib/publish/retention.ts";

const A = "a".repeat(64);
const B = "b".repeat(64);
const v = (version: number, sha: string | undefined): LayerVersionInfo => ({
  version,
  arn: `arn:aws:lambda:eu-west-1:123456789012:layer:l:${version}`,
  description: sha ? `acme/repo@abc1234 p sha256:${sha.slice(0, 12)}` : "made by hand",
  createdDate: undefined,
});

describe("retention", () => {
  it("keeps the newest N versions and deletes the older ones, highest first", () => {
    const versions = [v(1, A), v(2, B), v(3, A), v(4, B), v(5, A)];
    expect(planRetention(versions, 2, new Set()).map((x) => x.version)).toEqual([3, 2, 1]);
  });

  it("never deletes a version a parameter names, however old", () => {
    const versions = [v(5, A), v(4, B), v(3, A), v(2, B), v(1, A)];
    expect(planRetention(versions, 2, new Set([1])).map((x) => x.version)).toEqual([3, 2]);
  });

  it("deletes nothing when there are no more versions than retained", () => {
    expect(planRetention([v(2, A), v(1, B)], 2, new Set())).toEqual([]);
  });
});

describe("finding the versions that carry an artifact's content", () => {
  it("takes only the newest consecutive run, so restored content is published again rather than matched to an old version", () => {
    expect(contentRun([v(3, A), v(2, A), v(1, B)], A).map((x) => x.version)).toEqual([3, 2]);
    expect(contentRun([v(3, B), v(2, A)], A)).toEqual([]);
    expect(contentRun([], A)).toEqual([]);
  });

  it("keeps the lowest version of the run and names the others as duplicates, sparing named ones", () => {
    const versions = [v(7, A), v(6, A), v(5, A), v(4, B)];
    const { keep, duplicates } = convergeVersions(versions, A, new Set([6]));
    expect(keep?.version).toBe(5);
    expect(duplicates.map((x) => x.version)).toEqual([7]);
  });

  it("gives every racing run the same answer whichever duplicate it published", () => {
    const seenByFirst = convergeVersions([v(9, A), v(8, A), v(7, B)], A, new Set());
    const seenBySecond = convergeVersions([v(9, A), v(8, A), v(7, B)], A, new Set([9]));
    expect(seenByFirst.keep?.version).toBe(8);
    expect(seenBySecond.keep?.version).toBe(8);
  });
});

describe("layer ARNs", () => {
  it("yield partition, region, account, name and version", () => {
    expect(parseLayerArn("arn:aws:lambda:eu-west-1:123456789012:layer:py-requests:3")).toEqual({
      partition: "aws",
      region: "eu-west-1",
      account: "123456789012",
      layerName: "py-requests",
      version: 3,
    });
    expect(parseLayerArn("arn:aws-cn:lambda:cn-north-1:123456789012:layer:x")?.version).toBeUndefined();
    expect(parseLayerArn("arn:aws:lambda:eu-west-1:123456789012:function:f")).toBeUndefined();
  });
});
