import { describe, expect, it } from "vitest";
import { runPublish } from "../../lib/publish/publish.ts";
import type { ReleaseEvent } from "../../lib/publish/release-events.ts";
import { readStatus } from "../../lib/publish/status.ts";
import { MOTO_ACCOUNT_ID } from "../support/aws.ts";
import {
  associationsOf,
  parameterOf,
  type RecordedClients,
  sharesNamed,
  statementsOf,
} from "../support/publish-fixtures.ts";
import { HOME, layerArn, one, packageNames, REGIONS, twoRegionPublish } from "../support/two-region-publish.ts";

const CANARY = "111122223333";

const env = twoRegionPublish("canary");

/** Both Regions' recorded clients, and the release events of the runs given its deps. */
function world() {
  const w = env.world();
  const events: ReleaseEvent[] = [];
  return {
    of: w.of,
    events,
    deps: (extra: { promote?: boolean; clock?: () => Date } = {}) =>
      w.deps({ onRelease: (e) => events.push(e), ...extra }),
  };
}

const parameterArn = (region: string, name: string) => `arn:aws:ssm:${region}:${MOTO_ACCOUNT_ID}:parameter${name}`;

/** The parameters the package's RAM share holds in a Region (its one share), and its principals. */
async function shared(clients: RecordedClients, pkg: string) {
  const shares = await sharesNamed(clients.ram, `layer-sync-${pkg}`);
  expect(shares).toHaveLength(1);
  const arn = shares[0] ?? "";
  return {
    resources: await associationsOf(clients.ram, arn, "RESOURCE"),
    principals: await associationsOf(clients.ram, arn, "PRINCIPAL"),
  };
}

describe("the canary channel", () => {
  it("grants a new version to the canary accounts only, and promote (or PROMOTE_AFTER_HOURS) releases it to everyone", async () => {
    const n = packageNames("can");
    const { pkg, arnParameter, canaryParameter } = n;
    const config = env.config(n, { CANARY_ACCOUNT_IDS: CANARY, PROMOTE_AFTER_HOURS: "24" });
    const everyone = [`layer-sync-account-${CANARY}`, `layer-sync-org-${env.orgId}`];

    await env.artifact(n, { content: "one" });
    const canary = world();
    const first = await runPublish(config, one(pkg), canary.deps());
    expect(first.packages[0]?.error).toBeUndefined();
    expect(first.packages[0]?.regions.map((r) => [r.region, r.version, r.reason])).toEqual(
      REGIONS.map((r) => [r, 1, "canary"]),
    );
    for (const region of REGIONS) {
      const c = canary.of(region);
      expect((await parameterOf(c.ssm, canaryParameter))?.value).toBe(layerArn(region, pkg, 1));
      expect(await parameterOf(c.ssm, arnParameter)).toBeUndefined();
      expect((await statementsOf(c.lambda, pkg, 1)).map((s) => s.sid)).toEqual([`layer-sync-account-${CANARY}`]);
      // canary-arn is in the package's RAM share, like layer-version-arn and the history
      expect(await shared(c, pkg)).toEqual({
        resources: [parameterArn(region, canaryParameter)],
        principals: [env.orgArn],
      });
    }
    expect(first.packages[0]?.regions[0]?.share?.resources).toEqual([parameterArn(HOME, canaryParameter)]);
    expect(canary.events).toEqual([]);
    const status = await readStatus(config, { packages: [pkg] }, canary.deps());
    expect(status.packages[0]?.regions.map((r) => [r.release?.pointedVersion, r.release?.canaryVersion])).toEqual([
      [null, 1],
      [null, 1],
    ]);

    const promoting = world();
    const promoted = await runPublish(config, one(pkg), promoting.deps({ promote: true }));
    expect(promoted.packages[0]?.error).toBeUndefined();
    for (const region of REGIONS) {
      const c = promoting.of(region);
      expect((await parameterOf(c.ssm, arnParameter))?.value).toBe(layerArn(region, pkg, 1));
      expect(await parameterOf(c.ssm, canaryParameter)).toBeUndefined();
      expect((await statementsOf(c.lambda, pkg, 1)).map((s) => s.sid).sort()).toEqual(everyone);
    }
    expect(promoting.events.map((e) => [e.region, e.action, e.previous, e.current.version])).toEqual(
      expect.arrayContaining(REGIONS.map((r) => [r, "promote", null, 1])),
    );

    // the next version waits on the canary channel; the reconcile promotes it once PROMOTE_AFTER_HOURS passed
    await env.artifact(n, { content: "two", second: 1 });
    const second = world();
    await runPublish(config, one(pkg), second.deps());
    for (const region of REGIONS) {
      expect((await shared(second.of(region), pkg)).resources).toEqual(
        expect.arrayContaining([arnParameter, canaryParameter].map((name) => parameterArn(region, name))),
      );
    }
    const early = world();
    await runPublish(config, { kind: "reconcile" }, early.deps());
    expect((await parameterOf(early.of(HOME).ssm, arnParameter))?.value).toBe(layerArn(HOME, pkg, 1));
    const later = world();
    const dayLater = new Date(Date.now() + 25 * 3_600_000);
    const reconciled = await runPublish(config, { kind: "reconcile" }, later.deps({ clock: () => dayLater }));
    expect(reconciled.packages[0]?.error).toBeUndefined();
    for (const region of REGIONS) {
      expect((await parameterOf(later.of(region).ssm, arnParameter))?.value).toBe(layerArn(region, pkg, 2));
      // the version before keeps its grants
      expect((await statementsOf(later.of(region).lambda, pkg, 1)).map((s) => s.sid).sort()).toEqual(everyone);
    }
    expect(later.events.map((e) => [e.action, e.previous?.version, e.current.version])).toEqual([
      ["promote", 1, 2],
      ["promote", 1, 2],
    ]);
  });
});
