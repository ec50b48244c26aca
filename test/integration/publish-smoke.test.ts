import { S3Client } from "@aws-sdk/client-s3";
import { SSMClient } from "@aws-sdk/client-ssm";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type PublishRequest, runPublish } from "../../lib/publish/publish.ts";
import { readStatus } from "../../lib/publish/status.ts";
import { createBucket, MOTO_ACCOUNT_ID, organizationsFixture, uniqueName } from "../support/aws.ts";
import { createLambdaRole, queueInvokeResults } from "../support/moto-api.ts";
import {
  parameterOf,
  publishConfig,
  putArtifact,
  type RecordedClients,
  regionWorld,
  statementsOf,
} from "../support/publish-fixtures.ts";

// The smoke functions have fixed names per Region, and moto's Invoke results are queued per Region:
// the tests of this file run one after the other, and no other file invokes functions.
const HOME = "eu-west-1";
const OTHER = "us-east-1";
const REGIONS = [HOME, OTHER] as const;
type Region = (typeof REGIONS)[number];
const FUNCTION = "layer-sync-smoke-python312-arm64";

let homeBucket: string;
let otherBucket: string;
let roleArn: string;
let orgId: string;
const open: RecordedClients[] = [];
const admin = { s3: new S3Client({}), ssm: new SSMClient({}) };

beforeAll(async () => {
  homeBucket = await createBucket(uniqueName("smoke-home"));
  otherBucket = await createBucket(uniqueName("smoke-other"), OTHER);
  roleArn = await createLambdaRole(uniqueName("smoke-role"));
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
  const prefix = `/${uniqueName("smk")}`;
  const pkg = uniqueName("py");
  return { prefix, pkg, module: pkg.replace(/-/g, "_"), arnParameter: `${prefix}/${pkg}/layer-version-arn` };
}

function config(n: { prefix: string }, extra: Record<string, string> = {}) {
  return publishConfig({
    ARTIFACT_BUCKET: homeBucket,
    PARAMETER_PREFIX: n.prefix,
    SHARE_ORGANIZATION_ID: orgId,
    PUBLISH_REGIONS: REGIONS.join(","),
    REGION_BUCKETS: `${OTHER}=${otherBucket}`,
    COMPATIBLE_RUNTIMES: "python3.12",
    COMPATIBLE_ARCHITECTURES: "arm64",
    SMOKE_ROLE_ARN: roleArn,
    ...extra,
  });
}

const one = (pkg: string): PublishRequest => ({ kind: "packages", packages: [pkg], trigger: "manual" });
const layerArn = (region: string, pkg: string, version: number) =>
  `arn:aws:lambda:${region}:${MOTO_ACCOUNT_ID}:layer:${pkg}:${version}`;
const passes = (modules: string[]) => ({ ok: true, imported: modules });

/** The Layers each smoke function configuration request (create or update) attached, in order. */
function attached(c: RecordedClients): unknown[] {
  return c.sent
    .filter((s) => s.command === "CreateFunctionCommand" || s.command === "UpdateFunctionConfigurationCommand")
    .map((s) => ({ FunctionName: s.input.FunctionName, Layers: s.input.Layers, Role: s.input.Role }));
}

function invokes(c: RecordedClients): unknown[] {
  return c.inputs("InvokeCommand").map((i) => ({
    FunctionName: i.FunctionName,
    InvocationType: i.InvocationType,
    Payload: JSON.parse(Buffer.from(i.Payload as Uint8Array).toString("utf8")) as unknown,
  }));
}

describe("publishing with the smoke test on", () => {
  it("attaches the new version to the smoke function, invokes it, and only then grants and points, in every Region", async () => {
    const n = names();
    await putArtifact(admin, { bucket: homeBucket, parameterPrefix: n.prefix, pkg: n.pkg, content: "good" });
    for (const region of REGIONS) await queueInvokeResults(region, [passes([n.module])]);
    const w = world();

    const summary = await runPublish(config(n), one(n.pkg), w.deps());

    const [p] = summary.packages;
    expect(p?.error).toBeUndefined();
    for (const region of REGIONS) {
      const c = w.of(region);
      const arn = layerArn(region, n.pkg, 1);
      expect(attached(c)).toEqual([{ FunctionName: FUNCTION, Layers: [arn], Role: roleArn }]);
      expect(invokes(c)).toEqual([
        {
          FunctionName: FUNCTION,
          InvocationType: "RequestResponse",
          Payload: { modules: [n.module], layerVersionArn: arn },
        },
      ]);
      // the invoke comes before the grant and the pointer
      const order = c.sent.map((s) => s.command);
      const invokedAt = order.indexOf("InvokeCommand");
      expect(invokedAt).toBeGreaterThan(order.lastIndexOf("UpdateFunctionConfigurationCommand"));
      expect(invokedAt).toBeLessThan(order.indexOf("AddLayerVersionPermissionCommand"));
      expect(invokedAt).toBeLessThan(order.indexOf("PutParameterCommand"));
      expect(await parameterOf(c.ssm, n.arnParameter)).toEqual({ value: arn, tier: "Advanced" });
      expect(p?.regions.find((r) => r.region === region)).toMatchObject({
        version: 1,
        published: true,
        reason: null,
        smoke: [
          { runtime: "python3.12", architecture: "arm64", functionName: FUNCTION, ok: true, imported: [n.module] },
        ],
      });
    }
  });

  it("leaves the previous version pointed to and granted when the import fails, fails the run, and a retry re-tests without publishing again", async () => {
    const n = names();
    const cfg = config(n);
    await putArtifact(admin, { bucket: homeBucket, parameterPrefix: n.prefix, pkg: n.pkg, content: "v1" });
    for (const region of REGIONS) await queueInvokeResults(region, [passes([n.module])]);
    expect((await runPublish(cfg, one(n.pkg), world().deps())).packages[0]?.error).toBeUndefined();

    await putArtifact(admin, { bucket: homeBucket, parameterPrefix: n.prefix, pkg: n.pkg, content: "v2", second: 1 });
    await queueInvokeResults(HOME, [
      { ok: false, imported: [], error: `${n.module}: ModuleNotFoundError: No module named 'yaml'` },
    ]);
    await queueInvokeResults(OTHER, [passes([n.module])]);
    const failing = world();
    const failed = await runPublish(cfg, one(n.pkg), failing.deps());

    const [p] = failed.packages;
    const home = p?.regions.find((r) => r.region === HOME);
    expect(home).toMatchObject({ version: 2, reason: "smoke-failed", published: true });
    expect(home?.error).toContain(`${n.module}: ModuleNotFoundError: No module named 'yaml'`);
    expect(p?.error).toMatch(new RegExp(`^${HOME}: smoke test of version 2 failed on python3.12 arm64`));
    expect(await parameterOf(failing.of(HOME).ssm, n.arnParameter)).toEqual({
      value: layerArn(HOME, n.pkg, 1),
      tier: "Advanced",
    });
    expect(await statementsOf(failing.of(HOME).lambda, n.pkg, 2)).toEqual([]);
    expect((await statementsOf(failing.of(HOME).lambda, n.pkg, 1)).map((s) => s.sid)).toEqual([
      `layer-sync-org-${orgId}`,
    ]);
    expect(failing.of(HOME).inputs("AddLayerVersionPermissionCommand")).toEqual([]);
    // the other Region passed and moved on
    expect(await parameterOf(failing.of(OTHER).ssm, n.arnParameter)).toMatchObject({
      value: layerArn(OTHER, n.pkg, 2),
    });

    // status shows the failed smoke test of the newest version, out of step
    const status = await readStatus(cfg, { packages: [n.pkg] }, failing.deps());
    const homeStatus = status.packages[0]?.regions.find((r) => r.region === HOME);
    expect(homeStatus?.release).toEqual({
      pointedVersion: 1,
      canaryVersion: null,
      smoke: {
        version: 2,
        ok: false,
        error: `python3.12 arm64: ${n.module}: ModuleNotFoundError: No module named 'yaml'`,
        at: expect.any(String),
      },
      rollbackHold: null,
    });
    expect(homeStatus?.outOfStep).toBe(true);
    expect(status.packages[0]?.regions.find((r) => r.region === OTHER)?.release?.smoke).toMatchObject({
      version: 2,
      ok: true,
    });

    // the same content again: tested again, not published again
    await queueInvokeResults(HOME, [passes([n.module])]);
    const retry = world();
    const again = await runPublish(cfg, one(n.pkg), retry.deps());
    expect(again.packages[0]?.error).toBeUndefined();
    expect(retry.of(HOME).inputs("PublishLayerVersionCommand")).toEqual([]);
    expect(invokes(retry.of(HOME))).toHaveLength(1);
    expect(invokes(retry.of(OTHER))).toEqual([]); // already pointed there
    expect(await parameterOf(retry.of(HOME).ssm, n.arnParameter)).toMatchObject({ value: layerArn(HOME, n.pkg, 2) });
  });

  it("counts a FunctionError (an import crash or a timeout) as a failure", async () => {
    const n = names();
    await putArtifact(admin, { bucket: homeBucket, parameterPrefix: n.prefix, pkg: n.pkg, content: "crash" });
    const w = world();
    for (const region of REGIONS) {
      w.of(region).lambda.middlewareStack.add(
        (next, context) => async (args) => {
          const out = await next(args);
          if (context.commandName !== "InvokeCommand") return out;
          const output = (out as { output: { FunctionError?: string; Payload?: Uint8Array } }).output;
          output.FunctionError = "Unhandled";
          output.Payload = Buffer.from(
            JSON.stringify({
              errorType: "Sandbox.Timedout",
              errorMessage: "RequestId: 1 Error: Task timed out after 60.00 seconds",
            }),
          );
          return out;
        },
        { step: "initialize" },
      );
    }

    const summary = await runPublish(config(n), one(n.pkg), w.deps());

    for (const r of summary.packages[0]?.regions ?? []) {
      expect(r.reason).toBe("smoke-failed");
      expect(r.error).toContain("Sandbox.Timedout: RequestId: 1 Error: Task timed out after 60.00 seconds");
      expect(await parameterOf(w.of(r.region as Region).ssm, n.arnParameter)).toBeUndefined();
    }
  });

  it("publishes without a smoke test when SMOKE_TEST is off", async () => {
    const n = names();
    await putArtifact(admin, { bucket: homeBucket, parameterPrefix: n.prefix, pkg: n.pkg, content: "off" });
    const w = world();
    const summary = await runPublish(config(n, { SMOKE_TEST: "off" }), one(n.pkg), w.deps());
    expect(summary.packages[0]?.error).toBeUndefined();
    expect(invokes(w.of(HOME))).toEqual([]);
    expect(summary.packages[0]?.regions[0]?.smoke).toBeUndefined();
  });
});
