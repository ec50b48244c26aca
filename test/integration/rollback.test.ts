import { PublishLayerVersionCommand } from "@aws-sdk/client-lambda";
import { describe, expect, it } from "vitest";
import { parsePublishEvent } from "../../lib/common/events.ts";
import { runPublish } from "../../lib/publish/publish.ts";
import { runRollback } from "../../lib/publish/rollback.ts";
import { readStatus } from "../../lib/publish/status.ts";
import { parameterOf, statementsOf } from "../support/publish-fixtures.ts";
import { HOME, layerArn, one, packageNames, REGIONS, twoRegionPublish } from "../support/two-region-publish.ts";

const env = twoRegionPublish("rb");
const { admin } = env;
const world = () => env.world();
const names = () => packageNames("rb");
const config = (n: { prefix: string }) => env.config(n);

/** Two published versions (v1, then v2) in both Regions. */
async function twoVersions(n: ReturnType<typeof names>) {
  const first = await env.artifact(n, { content: "a" });
  expect((await runPublish(config(n), one(n.pkg), world().deps())).packages[0]?.error).toBeUndefined();
  const second = await env.artifact(n, { content: "b", second: 1 });
  expect((await runPublish(config(n), one(n.pkg), world().deps())).packages[0]?.error).toBeUndefined();
  return { first, second };
}

describe("the version history", () => {
  it("lists the versions consumers were pointed to in each Region, newest first, on the Advanced tier", async () => {
    const n = names();
    const { first, second } = await twoVersions(n);
    for (const region of REGIONS) {
      const history = await parameterOf(world().of(region).ssm, n.historyParameter);
      expect(history?.tier).toBe("Advanced");
      expect(JSON.parse(history?.value ?? "[]")).toEqual([
        { version: 2, layerVersionArn: layerArn(region, n.pkg, 2), commit: second.commit, at: expect.any(String) },
        { version: 1, layerVersionArn: layerArn(region, n.pkg, 1), commit: first.commit, at: expect.any(String) },
      ]);
    }
  });
});

describe("rolling back", () => {
  it("points every Region back at the previous version with at most five calls each, and a reconcile keeps it until a newer artifact arrives", async () => {
    const n = names();
    const { first } = await twoVersions(n);
    const w = world();

    const summary = await runRollback(config(n), { package: n.pkg }, w.deps());

    expect(summary.error).toBeUndefined();
    for (const region of REGIONS) {
      const c = w.of(region);
      expect(summary.regions.find((r) => r.region === region)).toEqual({
        region,
        previous: { version: 2, layerVersionArn: layerArn(region, n.pkg, 2) },
        current: { version: 1, layerVersionArn: layerArn(region, n.pkg, 1) },
        commit: first.commit,
        changed: true,
      });
      const regional = c.sent.filter((s) => s.service !== "organizations");
      expect(regional.map((s) => s.command)).toEqual([
        "GetParametersCommand",
        "GetLayerVersionCommand",
        "GetLayerVersionPolicyCommand",
        "PutParameterCommand",
        "PutParameterCommand",
      ]);
      expect(regional.every((s) => s.signedRegion === region)).toBe(true);
      expect(await parameterOf(c.ssm, n.arnParameter)).toEqual({ value: layerArn(region, n.pkg, 1), tier: "Advanced" });
      // nothing was published
      expect(c.inputs("PublishLayerVersionCommand")).toEqual([]);
      expect((await statementsOf(c.lambda, n.pkg, 1)).map((s) => s.sid)).toEqual([`layer-sync-org-${env.orgId}`]);
    }

    // status says the pointer is held, and does not call the older pointer out of step
    const status = await readStatus(config(n), { packages: [n.pkg] }, world().deps());
    for (const r of status.packages[0]?.regions ?? []) {
      expect(r.problems).toEqual([]);
      expect(r.release).toEqual({
        pointedVersion: 1,
        canaryVersion: null,
        smoke: null,
        rollbackHold: { version: 1, from: 2, at: expect.any(String) },
      });
    }

    // a reconcile of the same artifact keeps the rollback
    const reconcile = world();
    const kept = await runPublish(config(n), { kind: "reconcile" }, reconcile.deps());
    expect(kept.packages[0]?.error).toBeUndefined();
    expect(kept.packages[0]?.regions.map((r) => [r.region, r.version, r.reason])).toEqual(
      REGIONS.map((r) => [r, 1, "rollback-held"]),
    );
    for (const region of REGIONS) {
      expect((await parameterOf(reconcile.of(region).ssm, n.arnParameter))?.value).toBe(layerArn(region, n.pkg, 1));
    }

    // a newer artifact moves forward again and ends the hold
    await env.artifact(n, { content: "c", second: 2 });
    const forward = world();
    const moved = await runPublish(config(n), { kind: "reconcile" }, forward.deps());
    expect(moved.packages[0]?.error).toBeUndefined();
    for (const region of REGIONS) {
      const c = forward.of(region);
      expect((await parameterOf(c.ssm, n.arnParameter))?.value).toBe(layerArn(region, n.pkg, 3));
      expect(await parameterOf(c.ssm, n.holdParameter)).toBeUndefined();
      const history = JSON.parse((await parameterOf(c.ssm, n.historyParameter))?.value ?? "[]") as {
        version: number;
      }[];
      expect(history.map((e) => e.version)).toEqual([3, 2, 1]);
    }
  });

  it("points at a given version, and refuses one that is gone or was not published by layer-sync", async () => {
    const n = names();
    await twoVersions(n);
    const w = world();
    // a version under the same layer name that layer-sync did not publish
    const { s3: _s3, ...homeClients } = w.of(HOME);
    await homeClients.lambda.send(
      new PublishLayerVersionCommand({
        LayerName: n.pkg,
        Content: {
          S3Bucket: env.homeBucket,
          S3Key: (await parameterOf(admin.ssm, `${n.prefix}/${n.pkg}/artifact-key`))?.value,
        },
        Description: "hand-made",
      }),
    );

    const gone = await runRollback(config(n), { package: n.pkg, to: 99 }, w.deps());
    expect(gone.error).toMatch(/eu-west-1: version 99 of layer \S+ no longer exists/);
    const foreign = await runRollback(config(n), { package: n.pkg, to: 3, regions: [HOME] }, w.deps());
    expect(foreign.regions.map((r) => r.region)).toEqual([HOME]);
    expect(foreign.error).toMatch(/version 3 of layer \S+ was not published by layer-sync/);
    expect((await parameterOf(admin.ssm, n.arnParameter))?.value).toBe(layerArn(HOME, n.pkg, 2));

    const given = await runRollback(config(n), { package: n.pkg, to: 1 }, world().deps());
    expect(given.error).toBeUndefined();
    expect(given.regions.map((r) => r.current?.version)).toEqual([1, 1]);
  });
});

describe("the publish handler's rollback event", () => {
  it("is parsed with its package and optional version, and anything else is refused", () => {
    expect(parsePublishEvent({ rollback: { package: "py-requests", to: 3 } }, "/layer-sync")).toEqual({
      kind: "rollback",
      package: "py-requests",
      to: 3,
    });
    expect(parsePublishEvent({ rollback: { package: "py-requests" } }, "/layer-sync")).toEqual({
      kind: "rollback",
      package: "py-requests",
    });
    expect(() => parsePublishEvent({ rollback: { package: "py", to: "3" } }, "/layer-sync")).toThrow(/rollback.to/);
    expect(() => parsePublishEvent({ rollback: { package: "py" }, package: "x" }, "/layer-sync")).toThrow(
      /unknown field/,
    );
  });
});
