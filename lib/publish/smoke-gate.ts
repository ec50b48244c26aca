/**
 * The smoke test as a gate of the Region flow (`region.ts` step 3b): test the version on every target,
 * record the outcome in `{PARAMETER_PREFIX}/{package}/smoke` (for `status`), and hand back the failure that
 * stops the Region before anything grants or names the version.
 */
import type { LambdaClient } from "@aws-sdk/client-lambda";
import type { SSMClient } from "@aws-sdk/client-ssm";
import { SmokeTestError } from "../common/errors.ts";
import { putStringParameter, type SmokeRecord, smokeParameter } from "./history.ts";
import { type SmokeOptions, type SmokeResult, type SmokeTarget, smokeTest } from "./smoke.ts";

export async function smokeGate(args: {
  lambda: LambdaClient;
  ssm: SSMClient;
  region: string;
  targets: readonly SmokeTarget[];
  version: { version: number; arn: string };
  pkg: string;
  parameterPrefix: string;
  layerName: string;
  arnName: string;
  options: SmokeOptions;
}): Promise<{ results: SmokeResult[]; failure?: SmokeTestError }> {
  const { version } = args;
  const results = await smokeTest(args.lambda, args.region, args.targets, version.arn, args.options);
  const failed = results.find((r) => !r.ok);
  const reason = failed ? `${failed.runtime} ${failed.architecture}: ${failed.error ?? "no error given"}` : undefined;
  const record: SmokeRecord = {
    version: version.version,
    ok: !failed,
    ...(reason ? { error: reason.slice(0, 1000) } : {}),
    at: args.options.clock().toISOString(),
  };
  await putStringParameter(args.ssm, {
    name: smokeParameter(args.parameterPrefix, args.pkg),
    value: JSON.stringify(record),
    tier: "Standard",
    description: `Last smoke test of Lambda layer ${args.layerName} (written by layer-sync)`,
    sleep: args.options.sleep,
  });
  if (!failed) return { results };
  return {
    results,
    failure: new SmokeTestError(
      `smoke test of version ${version.version} failed on ${reason}; ${args.arnName} stays on the previous version (fix the layer and sync again, or run again to retest)`,
    ),
  };
}
