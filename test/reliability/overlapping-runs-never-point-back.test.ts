import { LambdaClient } from "@aws-sdk/client-lambda";
import { S3Client } from "@aws-sdk/client-s3";
import { SSMClient } from "@aws-sdk/client-ssm";
import { describe, expect, it } from "vitest";
import { type PublishRequest, runPublish } from "../../lib/publish/publish.ts";
import { uniqueName } from "../support/aws.ts";
import {
  parameterOf,
  publishConfig,
  putArtifact,
  type RecordedClients,
  recordedClients,
  versionsOf,
} from "../support/publish-fixtures.ts";
import { gate, recordCommands } from "./aws-faults.ts";
import {
  type AwsScope,
  branch,
  type CoreRun,
  minute,
  onlyPackage,
  pointerHistory,
  pointerOf,
  runCore,
  touch,
  useSources,
} from "./harness.ts";
import { scan, watchSecrets } from "./secrets.ts";

watchSecrets();

const sources = useSources({ bucket: "rel-race" });
const admin = { s3: sources.s3, ssm: sources.ssm, lambda: sources.own(new LambdaClient({})) };

/** One run's own clients (so a gate holds that run only), sharing the test's prefixes. */
function runScope(scope: AwsScope): AwsScope {
  return { ...scope, s3: sources.perTest(new S3Client({})), ssm: sources.perTest(new SSMClient({})) };
}

function sync(scope: AwsScope, ref: string, at: number): Promise<CoreRun> {
  return runCore(sources, { provider: "bitbucket", paths: ["layers/tools"], ref, aws: scope, clock: minute(at) });
}

function keyOf(run: CoreRun): string {
  const p = onlyPackage(run);
  expect(p.error).toBeUndefined();
  expect(p.skipped).toBe(false);
  return p.key ?? "";
}

describe("two overlapping syncs of one package", () => {
  it("end on the newer run's artifact when the older run writes the pointer last (it puts the newer key back)", async () => {
    const shared = sources.scope();
    const ref = branch(sources.repo, "race");
    const older = runScope(shared);
    const held = gate(older.ssm, "PutParameterCommand");

    const olderRun = sync(older, ref, 0);
    await held.reached; // the older run has uploaded and read the pointer (empty), and is about to write
    const newerKey = keyOf(await sync(runScope(shared), ref, 1));
    expect(await pointerOf(admin.ssm, shared.prefix, "tools")).toBe(newerKey);
    held.release();
    const olderResult = await olderRun;

    const olderKey = keyOf(olderResult);
    expect(olderKey < newerKey).toBe(true);
    expect(await pointerOf(admin.ssm, shared.prefix, "tools")).toBe(newerKey);
    expect(await pointerHistory(admin.ssm, shared.prefix, "tools")).toEqual([newerKey, olderKey, newerKey]);
    expect(onlyPackage(olderResult).warnings).toContain(
      "a newer run already pointed at a newer artifact; the pointer was left on it",
    );
  });

  it("end on the newer run's artifact when the older run reads the pointer after the newer one wrote it (no write at all)", async () => {
    const shared = sources.scope();
    const ref = branch(sources.repo, "race");
    const older = runScope(shared);
    const olderCommands = recordCommands(older.ssm);
    // 1st GetParameter: skip-unchanged check; 2nd: the read just before the pointer write
    const held = gate(older.ssm, "GetParameterCommand", 2);

    const olderRun = sync(older, ref, 0);
    await held.reached;
    const newerKey = keyOf(await sync(runScope(shared), ref, 1));
    held.release();
    const olderResult = await olderRun;

    expect(await pointerOf(admin.ssm, shared.prefix, "tools")).toBe(newerKey);
    expect(await pointerHistory(admin.ssm, shared.prefix, "tools")).toEqual([newerKey]);
    expect(olderCommands).not.toContain("PutParameterCommand");
    expect(onlyPackage(olderResult).warnings).toEqual([
      "a newer run already pointed at a newer artifact; the pointer was left on it",
    ]);
  });

  it("end on the newest of three runs even when the older run's repair lands after the newest run's write", async () => {
    const shared = sources.scope();
    const ref = branch(sources.repo, "race");
    const oldest = runScope(shared);
    const firstWrite = gate(oldest.ssm, "PutParameterCommand", 1);
    const repairWrite = gate(oldest.ssm, "PutParameterCommand", 2);

    const oldestRun = sync(oldest, ref, 0);
    await firstWrite.reached;
    const middleKey = keyOf(await sync(runScope(shared), ref, 1));
    firstWrite.release(); // oldest writes its key over the middle one, sees that, and goes to put the middle key back
    await repairWrite.reached;
    touch(sources.repo, ref, "layers/tools"); // the newest run has a new commit, so it is not skipped as unchanged
    const newestKey = keyOf(await sync(runScope(shared), ref, 2));
    repairWrite.release(); // the stale repair lands after the newest write
    const oldestKey = keyOf(await oldestRun);

    expect(await pointerOf(admin.ssm, shared.prefix, "tools")).toBe(newestKey);
    expect(await pointerHistory(admin.ssm, shared.prefix, "tools")).toEqual([
      middleKey,
      oldestKey,
      newestKey,
      middleKey,
      newestKey,
    ]);
  });

  it("end on the newer artifact in the plain order too (older run first, newer second)", async () => {
    const shared = sources.scope();
    const ref = branch(sources.repo, "race");
    const newer = runScope(shared);
    const held = gate(newer.ssm, "PutParameterCommand");
    const newerRun = sync(newer, ref, 1);
    await held.reached;
    const olderKey = keyOf(await sync(runScope(shared), ref, 0));
    expect(await pointerOf(admin.ssm, shared.prefix, "tools")).toBe(olderKey);
    held.release();
    const newerKey = keyOf(await newerRun);
    expect(await pointerOf(admin.ssm, shared.prefix, "tools")).toBe(newerKey);
    expect(onlyPackage(await newerRun).warnings).toEqual([]);
  });
});

describe("the pointer after ARTIFACT_PREFIX changes", () => {
  it("moves forward to the newer artifact under the new prefix, though the new key sorts before the old one", async () => {
    const ref = branch(sources.repo, "prefix");
    const old = { ...sources.scope(), artifactPrefix: `zz-${uniqueName("old")}/` };
    const first = keyOf(await sync(old, ref, 0));
    touch(sources.repo, ref, "layers/tools");
    const renamed = { ...old, artifactPrefix: `aa-${uniqueName("new")}/` };
    const second = await sync(renamed, ref, 1);
    const key = keyOf(second);
    expect(key < first).toBe(true);
    expect(onlyPackage(second).warnings).toEqual([]);
    expect(await pointerOf(admin.ssm, old.prefix, "tools")).toBe(key);
  });
});

describe("two publish runs for one artifact", () => {
  function clients(): RecordedClients {
    return sources.perTest(recordedClients());
  }

  it("that both find no version and both publish, converge on one version that both report", async () => {
    const prefix = `/${uniqueName("relrace")}`;
    const pkg = uniqueName("py");
    await putArtifact(admin, { bucket: sources.bucket, parameterPrefix: prefix, pkg, content: "race" });
    const config = publishConfig({
      ARTIFACT_BUCKET: sources.bucket,
      PARAMETER_PREFIX: prefix,
      SHARE_ACCOUNT_IDS: "111122223333",
    });
    const [a, b] = [clients(), clients()];
    const gates = [gate(a.lambda, "PublishLayerVersionCommand"), gate(b.lambda, "PublishLayerVersionCommand")];
    const request: PublishRequest = { kind: "packages", packages: [pkg], trigger: "parameter-change" };

    const runs = [runPublish(config, request, a.deps()), runPublish(config, request, b.deps())];
    await Promise.all(gates.map((g) => g.reached)); // both listed the layer, found nothing, and are about to publish
    for (const g of gates) g.release();
    const summaries = await Promise.all(runs);
    scan("publish summaries", summaries);

    const versions = await versionsOf(admin.lambda, pkg);
    expect(versions.map((v) => v.version)).toEqual([1]);
    const reports = summaries.map((s) => s.packages[0]);
    for (const r of reports) {
      expect(r?.error).toBeUndefined();
      expect(r?.layerVersionArn).toBe(versions[0]?.arn);
    }
    expect(reports.filter((r) => r?.published)).toHaveLength(1);
    expect(reports.filter((r) => r?.reason === "duplicate")).toHaveLength(1);
    expect((await parameterOf(admin.ssm, `${prefix}/${pkg}/layer-version-arn`))?.value).toBe(versions[0]?.arn);
  });
});
