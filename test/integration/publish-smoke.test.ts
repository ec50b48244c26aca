import { beforeAll, describe, expect, it } from "vitest";
import { runPublish } from "../../lib/publish/publish.ts";
import { readStatus } from "../../lib/publish/status.ts";
import { uniqueName } from "../support/aws.ts";
import { createLambdaRole, queueInvokeResults } from "../support/moto-api.ts";
import { parameterOf, type RecordedClients, statementsOf } from "../support/publish-fixtures.ts";
import {
  HOME,
  layerArn,
  OTHER,
  one,
  packageNames,
  REGIONS,
  type Region,
  twoRegionPublish,
} from "../support/two-region-publish.ts";

// The smoke functions have fixed names per Region, and moto's Invoke results are queued per Region:
// the tests of this file run one after the other, and no other file invokes functions.
const FUNCTION = "layer-sync-smoke-python312-arm64";

const env = twoRegionPublish("smoke");
let roleArn: string;

beforeAll(async () => {
  roleArn = await createLambdaRole(uniqueName("smoke-role"));
});

const world = () => env.world();
const names = () => packageNames("smk");

function config(n: { prefix: string }, extra: Record<string, string> = {}) {
  return env.config(n, {
    COMPATIBLE_RUNTIMES: "python3.12",
    COMPATIBLE_ARCHITECTURES: "arm64",
    SMOKE_ROLE_ARN: roleArn,
    ...extra,
  });
}

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
    await env.artifact(n, { content: "good" });
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
    await env.artifact(n, { content: "v1" });
    for (const region of REGIONS) await queueInvokeResults(region, [passes([n.module])]);
    expect((await runPublish(cfg, one(n.pkg), world().deps())).packages[0]?.error).toBeUndefined();

    await env.artifact(n, { content: "v2", second: 1 });
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
      `layer-sync-org-${env.orgId}`,
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
    await env.artifact(n, { content: "crash" });
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
    await env.artifact(n, { content: "off" });
    const w = world();
    const summary = await runPublish(config(n, { SMOKE_TEST: "off" }), one(n.pkg), w.deps());
    expect(summary.packages[0]?.error).toBeUndefined();
    expect(invokes(w.of(HOME))).toEqual([]);
    expect(summary.packages[0]?.regions[0]?.smoke).toBeUndefined();
  });
});
