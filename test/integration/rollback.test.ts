import { PublishLayerVersionCommand } from "@aws-sdk/client-lambda";
import { S3Client } from "@aws-sdk/client-s3";
import { SSMClient } from "@aws-sdk/client-ssm";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { parsePublishEvent } from "../../lib/common/events.ts";
import { type PublishRequest, runPublish } from "../../lib/publish/publish.ts";
import { runRollback } from "../../lib/publish/rollback.ts";
import { readStatus } from "../../lib/publish/status.ts";
import { createBucket, MOTO_ACCOUNT_ID, organizationsFixture, uniqueName } from "../support/aws.ts";
import {
  parameterOf,
  publishConfig,
  putArtifact,
  type RecordedClients,
  regionWorld,
  statementsOf,
} from "../support/publish-fixtures.ts";

const HOME = "eu-west-1";
const OTHER = "us-east-1";
const REGIONS = [HOME, OTHER] as const;
type Region = (typeof REGIONS)[number];

let homeBucket: string;
let otherBucket: string;
let orgId: string;
const open: RecordedClients[] = [];
const admin = { s3: new S3Client({}), ssm: new SSMClient({}) };

beforeAll(async () => {
  homeBucket = await createBucket(uniqueName("rb-home"));
  otherBucket = await createBucket(uniqueName("rb-other"), OTHER);
  orgId = (await organizationsFixture()).organizationId;
});

afterEach(() => {
  for (const c of open.splice(0)) c.destroy();
});

afterAll(() => {
  for (const client of Object.values(admin)) client.destroy();
});

const world = () => regionWorld<Region>(HOME, [OTHER], open);

function names() {
  const prefix = `/${uniqueName("rb")}`;
  const pkg = uniqueName("py");
  return {
    prefix,
    pkg,
    arnParameter: `${prefix}/${pkg}/layer-version-arn`,
    historyParameter: `${prefix}/${pkg}/history`,
    holdParameter: `${prefix}/${pkg}/rollback`,
  };
}

function config(n: { prefix: string }) {
  return publishConfig({
    ARTIFACT_BUCKET: homeBucket,
    PARAMETER_PREFIX: n.prefix,
    SHARE_ORGANIZATION_ID: orgId,
    PUBLISH_REGIONS: REGIONS.join(","),
    REGION_BUCKETS: `${OTHER}=${otherBucket}`,
  });
}

const one = (pkg: string): PublishRequest => ({ kind: "packages", packages: [pkg], trigger: "manual" });
const arnOf = (region: string, pkg: string, version: number) =>
  `arn:aws:lambda:${region}:${MOTO_ACCOUNT_ID}:layer:${pkg}:${version}`;

/** Two published versions (v1, then v2) in both Regions. */
async function twoVersions(n: ReturnType<typeof names>) {
  const first = await putArtifact(admin, { bucket: homeBucket, parameterPrefix: n.prefix, pkg: n.pkg, content: "a" });
  expect((await runPublish(config(n), one(n.pkg), world().deps())).packages[0]?.error).toBeUndefined();
  const second = await putArtifact(admin, {
    bucket: homeBucket,
    parameterPrefix: n.prefix,
    pkg: n.pkg,
    content: "b",
    second: 1,
  });
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
        { version: 2, layerVersionArn: arnOf(region, n.pkg, 2), commit: second.commit, at: expect.any(String) },
        { version: 1, layerVersionArn: arnOf(region, n.pkg, 1), commit: first.commit, at: expect.any(String) },
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
        previous: { version: 2, layerVersionArn: arnOf(region, n.pkg, 2) },
        current: { version: 1, layerVersionArn: arnOf(region, n.pkg, 1) },
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
      expect(await parameterOf(c.ssm, n.arnParameter)).toEqual({ value: arnOf(region, n.pkg, 1), tier: "Advanced" });
      // nothing was published
      expect(c.inputs("PublishLayerVersionCommand")).toEqual([]);
      expect((await statementsOf(c.lambda, n.pkg, 1)).map((s) => s.sid)).toEqual([`layer-sync-org-${orgId}`]);
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
      expect((await parameterOf(reconcile.of(region).ssm, n.arnParameter))?.value).toBe(arnOf(region, n.pkg, 1));
    }

    // a newer artifact moves forward again and ends the hold
    await putArtifact(admin, { bucket: homeBucket, parameterPrefix: n.prefix, pkg: n.pkg, content: "c", second: 2 });
    const forward = world();
    const moved = await runPublish(config(n), { kind: "reconcile" }, forward.deps());
    expect(moved.packages[0]?.error).toBeUndefined();
    for (const region of REGIONS) {
      const c = forward.of(region);
      expect((await parameterOf(c.ssm, n.arnParameter))?.value).toBe(arnOf(region, n.pkg, 3));
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
          S3Bucket: homeBucket,
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
    expect((await parameterOf(admin.ssm, n.arnParameter))?.value).toBe(arnOf(HOME, n.pkg, 2));

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
