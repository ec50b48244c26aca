/**
 * The gate's wait for CodeBuild builds: continuation tokens carry build ids and are checked as hostile input;
 * one look at the builds waits while any runs and settles every build once all have finished.
 */
import { describe, expect, it } from "vitest";
import type { CodeBuildApi } from "../../lib/builds/codebuild.ts";
import { buildsToken, parseBuildsToken, settleBuilds } from "../../lib/codepipeline/gate.ts";
import { EventValidationError } from "../../lib/common/errors.ts";

const UUID = "8745a7a9-c340-456a-9166-edf953571bef";
const UUID2 = "1745a7a9-c340-456a-9166-edf953571bef";

function api(statuses: Record<string, string>): CodeBuildApi & { asked: string[][] } {
  const asked: string[][] = [];
  return {
    asked,
    startBuild: async () => {
      throw new Error("not used");
    },
    batchGetBuilds: async (ids) => {
      asked.push([...ids]);
      return ids
        .filter((id) => statuses[id])
        .map((id) => ({ id, status: statuses[id] as string, artifactSha256: `sha-of-${id.split(":")[1]}` }));
    },
  };
}

describe("the gate's continuation token", () => {
  it("round-trips the build ids of our projects", () => {
    const token = buildsToken([`p1:${UUID}`, `p2:${UUID2}`]);
    expect(token).toBe(`{"builds":["p1:${UUID}","p2:${UUID2}"]}`);
    expect(parseBuildsToken(token, ["p1", "p2"]).map((b) => b.id)).toEqual([`p1:${UUID}`, `p2:${UUID2}`]);
  });

  it("refuses tokens that are not ours, name other projects or no builds", () => {
    for (const bad of ["not json", "{}", '{"builds":[]}', `{"builds":["p9:${UUID}"]}`, '{"builds":["x"]}']) {
      expect(() => parseBuildsToken(bad, ["p1"])).toThrow(EventValidationError);
    }
  });

  it("says when more builds run than a token can name", () => {
    const ids = Array.from({ length: 40 }, () => `layer-sync-build-x86-64:${UUID}`);
    expect(() => buildsToken(ids)).toThrow(/cannot wait for 40 CodeBuild builds at once/);
  });
});

describe("one look at the builds", () => {
  const builds = parseBuildsToken(buildsToken([`p1:${UUID}`, `p1:${UUID2}`]), ["p1"]);

  it("waits while any build runs, settling none", async () => {
    const settled: string[] = [];
    const r = await settleBuilds(
      api({ [`p1:${UUID}`]: "SUCCEEDED", [`p1:${UUID2}`]: "IN_PROGRESS" }),
      builds,
      async (b) => {
        settled.push(b.id);
      },
    );
    expect(r).toBeUndefined();
    expect(settled).toEqual([]);
  });

  it("settles every build with its state and its artifact's SHA-256 once all have finished; an unknown build counts as faulted", async () => {
    const r = await settleBuilds(
      api({ [`p1:${UUID}`]: "SUCCEEDED" }),
      builds,
      async (b, status, sha256) => `${b.uuid} ${status} ${sha256}`,
    );
    expect(r).toEqual([`${UUID} SUCCEEDED sha-of-${UUID}`, `${UUID2} FAULT undefined`]);
  });
});
