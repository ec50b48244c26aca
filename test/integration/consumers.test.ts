/**
 * Consumers on moto, with an organization of several accounts: the management account publishes a layer
 * (layer-sync versions and one published by hand); functions in the management account and in member
 * accounts of a shared OU use the current, an old and the hand-made version, another layer, or none; one
 * member account has no read role. The launcher lets member accounts attach the management account's layer
 * and refuses AssumeRole of a role that does not exist (see test/support/moto_launcher.py).
 */
import { LambdaClient, PublishLayerVersionCommand } from "@aws-sdk/client-lambda";
import { OrganizationsClient } from "@aws-sdk/client-organizations";
import { S3Client } from "@aws-sdk/client-s3";
import { PutParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../cli/main.ts";
import { type ConsumersReport, inventoryReader, readConsumers } from "../../lib/publish/consumers.ts";
import { type PublishRequest, runPublish } from "../../lib/publish/publish.ts";
import type { ReleaseEvent } from "../../lib/publish/release-events.ts";
import { rollbackReleaseEvents, runRollback } from "../../lib/publish/rollback.ts";
import { readStatus } from "../../lib/publish/status.ts";
import {
  createAccountIn,
  createBucket,
  MOTO_ACCOUNT_ID,
  type OrganizationsFixture,
  organizationsFixture,
  uniqueName,
} from "../support/aws.ts";
import { createFunction, createRole, credentialsIn, testConsumerClients } from "../support/consumer-fixtures.ts";
import { publishConfig, putArtifact, recordedClients, versionsOf } from "../support/publish-fixtures.ts";

const HOME = "eu-west-1";
const admin = { s3: new S3Client({}), ssm: new SSMClient({}), lambda: new LambdaClient({}) };
let org: OrganizationsFixture;
let unreadable: string;
let bucket: string;
const prefix = `/${uniqueName("cons")}`;
const pkg = uniqueName("py");
const readRole = uniqueName("read");
const arn = (version: number, layer = pkg) => `arn:aws:lambda:${HOME}:${MOTO_ACCOUNT_ID}:layer:${layer}:${version}`;
const EMPTY_ZIP = new Uint8Array([80, 75, 5, 6, ...new Array<number>(18).fill(0)]);
const one: PublishRequest = { kind: "packages", packages: [pkg], trigger: "manual" };

function config(extra: Record<string, string> = {}) {
  return publishConfig({
    ARTIFACT_BUCKET: bucket,
    PARAMETER_PREFIX: prefix,
    SHARE_OU_IDS: org.parentOu.id,
    CONSUMER_SOURCE: "roles",
    CONSUMER_READ_ROLE: readRole,
    ...extra,
  });
}

async function publish(
  content: string,
  second: number,
  extra: Record<string, string> = {},
  onRelease?: (event: ReleaseEvent) => void,
) {
  await putArtifact(admin, { bucket, parameterPrefix: prefix, pkg, content, second });
  const clients = recordedClients();
  const consumers = testConsumerClients();
  try {
    return await runPublish(config(extra), one, { ...clients.deps(), consumers, ...(onRelease ? { onRelease } : {}) });
  } finally {
    consumers.close();
    clients.destroy();
  }
}

beforeAll(async () => {
  bucket = await createBucket(uniqueName("cons"));
  org = await organizationsFixture();
  const orgs = new OrganizationsClient({});
  unreadable = await createAccountIn(orgs, org.rootId, org.parentOu.id);
  orgs.destroy();

  // v1 (old), v2 (never used), v3 (current) by layer-sync; v4 by hand (no content tag)
  for (const [i, content] of ["one", "two", "three"].entries()) await publish(content, i, { RETAIN_VERSIONS: "10" });
  await admin.lambda.send(
    new PublishLayerVersionCommand({
      LayerName: pkg,
      Content: { ZipFile: EMPTY_ZIP },
      Description: "uploaded by hand",
      CompatibleRuntimes: ["python3.12"],
    }),
  );
  const other = uniqueName("other");
  await admin.lambda.send(new PublishLayerVersionCommand({ LayerName: other, Content: { ZipFile: EMPTY_ZIP } }));

  // the read role where it may be read: the management account and the two OU accounts, not `unreadable`
  const homeRole = await createRole(readRole);
  const member = await credentialsIn(org.parentOuAccountId);
  const nested = await credentialsIn(org.nestedOuAccountId);
  await createRole(readRole, member);
  await createRole(readRole, nested);
  const orgRole = (account: string) => `arn:aws:iam::${account}:role/OrganizationAccountAccessRole`;
  await createFunction({ name: `${pkg}-home`, role: homeRole, layers: [arn(3)] });
  const m = orgRole(org.parentOuAccountId);
  await createFunction({ name: "on-current", role: m, layers: [arn(3)] }, member);
  await createFunction({ name: "on-old-arm", role: m, layers: [arn(1)], architecture: "arm64" }, member);
  await createFunction({ name: "on-other-layer", role: m, layers: [`${arn(1, other)}`] }, member);
  await createFunction({ name: "on-nothing", role: m, layers: [] }, member);
  const n = orgRole(org.nestedOuAccountId);
  await createFunction({ name: "on-hand-made", role: n, layers: [arn(4)], runtime: "nodejs22.x" }, nested);
  // unreadable: it has functions, but no read role
  await createFunction(
    { name: "hidden", role: orgRole(unreadable), layers: [arn(3)] },
    await credentialsIn(unreadable),
  );
});

afterAll(() => {
  for (const client of Object.values(admin)) client.destroy();
});

async function inventory() {
  const clients = testConsumerClients();
  try {
    const cfg = config();
    const reader = inventoryReader(cfg, clients, async () => [pkg]);
    if (!reader) throw new Error("no reader for CONSUMER_SOURCE=roles");
    return await readConsumers(
      cfg,
      { packages: [pkg] },
      {
        ssm: admin.ssm,
        region: HOME,
        regionClients: () => ({ lambda: admin.lambda, ssm: admin.ssm }),
        inventory: reader,
        owner: MOTO_ACCOUNT_ID,
      },
    );
  } finally {
    clients.close();
  }
}

describe("the consumers of a layer across the organization", () => {
  it("reports each function on the current, an old or a hand-made version once, with its account, and no other function", async () => {
    const report = await inventory();
    const region = report.packages[0]?.regions[0];
    expect(region?.latestVersion).toBe(3);
    expect(region?.foreignVersions).toEqual([4]);
    const rows = region?.functions.map((f) => [f.account, f.functionName, f.version, f.latest, f.compatible, f.drift]);
    expect(rows).toEqual(
      [
        [MOTO_ACCOUNT_ID, `${pkg}-home`, 3, true, true, null],
        [org.parentOuAccountId, "on-current", 3, true, true, null],
        [org.parentOuAccountId, "on-old-arm", 1, false, true, null],
        [org.nestedOuAccountId, "on-hand-made", 4, false, false, "foreign-version"],
      ].sort((a, b) => String(a[0]).localeCompare(String(b[0])) || String(a[1]).localeCompare(String(b[1]))),
    );
    expect(region?.counts).toEqual({ latest: 2, older: 2, incompatible: 1 });
  });

  it("gives status the consumer counts of each Region: on the latest version, on older ones, incompatible", async () => {
    const clients = testConsumerClients();
    const home = recordedClients();
    try {
      const cfg = config();
      const reader = inventoryReader(cfg, clients, async () => [pkg]);
      if (!reader) throw new Error("no reader for CONSUMER_SOURCE=roles");
      const consumerInventory = { inventory: reader, owner: MOTO_ACCOUNT_ID };
      const report = await readStatus(cfg, { packages: [pkg] }, { ...home.deps(), region: HOME, consumerInventory });
      expect(report.packages[0]?.regions[0]?.consumers).toEqual({ latest: 2, older: 2, incompatible: 1 });
      expect(report.consumerAccounts?.failed.map((f) => f.account)).toEqual([unreadable]);
    } finally {
      clients.close();
      home.destroy();
    }
  });

  it("lists the account without the read role in accounts.failed, with the reason, and counts the others", async () => {
    const report = await inventory();
    expect(report.accounts.read).toBe(3);
    expect(report.accounts.failed).toEqual([
      {
        account: unreadable,
        error: expect.stringMatching(
          new RegExp(
            `^sts:AssumeRole on arn:aws:iam::${unreadable}:role/${readRole} failed \\(AccessDenied.*consumer-read-role`,
          ),
        ),
      },
    ]);
  });
});

async function cli(argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const io = {
    stdout: { write: (t: string) => out.push(t) },
    stderr: { write: (t: string) => err.push(t), isTTY: false },
  };
  const code = await main(argv, {}, io);
  return { code, stdout: out.join(""), stderr: err.join("") };
}

describe("layer-sync consumers", () => {
  const flags = () => ["--package", pkg, "--parameter-prefix", prefix, "--share-ou", org.parentOu.id];

  it("prints the consumers as JSON and exits 1 when an account could not be read", async () => {
    const r = await cli(["consumers", ...flags(), "--consumer-source", "roles", "--read-role", readRole, "--json"]);
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout) as ConsumersReport;
    expect(report.accounts.failed.map((f) => f.account)).toEqual([unreadable]);
    expect(report.packages[0]?.regions[0]?.functions.map((f) => f.functionName).sort()).toEqual(
      [`${pkg}-home`, "on-current", "on-hand-made", "on-old-arm"].sort(),
    );
    expect(Object.keys(report.packages[0]?.regions[0]?.functions[0] ?? {})).toEqual(
      expect.arrayContaining([
        "account",
        "region",
        "functionName",
        "runtime",
        "architecture",
        "version",
        "latest",
        "compatible",
      ]),
    );
  });

  it("prints a table under 160 columns", async () => {
    const r = await cli(["consumers", ...flags(), "--consumer-source", "roles", "--read-role", readRole]);
    expect(r.stdout).toContain("on-old-arm");
    expect(r.stdout).toContain(`unreadable ${unreadable}`);
    expect(Math.max(...r.stdout.split("\n").map((l) => l.length))).toBeLessThan(160);
  });

  it("exits 2 saying to choose a source when CONSUMER_SOURCE is none", async () => {
    const r = await cli(["consumers", ...flags()]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/CONSUMER_SOURCE \(--consumer-source\) is none.*choose roles .* or config/);
  });
});

/** Overwrite a package's history parameter so that it lists only `versions`. */
async function setHistory(name: string, versions: number[]) {
  const history = versions.map((v) => ({
    version: v,
    layerVersionArn: arn(v, name),
    commit: "c".repeat(40),
    at: "2026-12-01T00:00:00Z",
  }));
  await admin.ssm.send(
    new PutParameterCommand({
      Name: `${prefix}/${name}/history`,
      Value: JSON.stringify(history),
      Type: "String",
      Tier: "Advanced",
      Overwrite: true,
    }),
  );
}

describe("retention with consumers", () => {
  it("deletes nothing while an account is unreadable, then keeps the versions in use and deletes the unused one", async () => {
    // the history no longer lists v1 to v3 (publishing recorded them), so only the consumers protect them
    await setHistory(pkg, []);
    const blocked = await publish("four", 10, { RETAIN_VERSIONS: "1" });
    const entry = blocked.packages[0]?.regions[0];
    expect(entry?.version).toBe(5);
    expect(entry?.deleted).toEqual([]);
    expect(entry?.retention).toBe("skipped: consumers unreadable in 1 account(s)");
    expect(entry?.keptInUse).toEqual([
      { version: 4, functions: 1 },
      { version: 3, functions: 2 },
      { version: 1, functions: 1 },
    ]);

    await createRole(readRole, await credentialsIn(unreadable));
    const done = await publish("four", 10, { RETAIN_VERSIONS: "1" });
    const region = done.packages[0]?.regions[0];
    expect(region?.deleted).toEqual([2]);
    expect(region?.keptInUse).toEqual([
      { version: 4, functions: 1 },
      { version: 3, functions: 3 },
      { version: 1, functions: 1 },
    ]);
    expect(region?.retention).toBeUndefined();
    expect((await versionsOf(admin.lambda, pkg)).map((v) => v.version)).toEqual([5, 4, 3, 1]);
  });
});

describe("retention without a consumer source", () => {
  it("works as before, and keeps the version a rollback returns to (the history's second entry)", async () => {
    const name = uniqueName("hist");
    const env = { ARTIFACT_BUCKET: bucket, PARAMETER_PREFIX: prefix, RETAIN_VERSIONS: "2" };
    const run = async (content: string, second: number) => {
      await putArtifact(admin, { bucket, parameterPrefix: prefix, pkg: name, content, second });
      const clients = recordedClients();
      try {
        const request: PublishRequest = { kind: "packages", packages: [name], trigger: "manual" };
        return await runPublish(publishConfig(env), request, clients.deps());
      } finally {
        clients.destroy();
      }
    };
    await run("h1", 1);
    await run("h2", 2);
    // as if version 2 had never been released (say its smoke test failed): consumers went from 1 to 3
    const history = [{ version: 1, layerVersionArn: arn(1, name), commit: "c".repeat(40), at: "2026-12-01T00:00:00Z" }];
    await admin.ssm.send(
      new PutParameterCommand({
        Name: `${prefix}/${name}/history`,
        Value: JSON.stringify(history),
        Type: "String",
        Overwrite: true,
      }),
    );
    const summary = await run("h3", 3);
    const region = summary.packages[0]?.regions[0];
    // RETAIN_VERSIONS=2 keeps 3 and 2; version 1 is beyond it, but rollback returns to it
    expect(region?.deleted).toEqual([]);
    expect(region?.keptInUse).toBeUndefined();
    expect(region?.retention).toBeUndefined();
    expect((await versionsOf(admin.lambda, name)).map((v) => v.version)).toEqual([3, 2, 1]);
  });
});

describe("release events with a consumer source", () => {
  it("count the functions on the previous version in consumersOnPrevious, for a publish and a rollback", async () => {
    // after the retention test, v5 is current; two functions (home, member) move to it
    const member = await credentialsIn(org.parentOuAccountId);
    const memberRole = `arn:aws:iam::${org.parentOuAccountId}:role/OrganizationAccountAccessRole`;
    await createFunction({ name: `${pkg}-home-on-5`, role: await createRole(uniqueName("fn")), layers: [arn(5)] });
    await createFunction({ name: "on-five", role: memberRole, layers: [arn(5)] }, member);

    const events: ReleaseEvent[] = [];
    await publish("six", 20, { RETAIN_VERSIONS: "10" }, (e) => events.push(e));
    expect(events.map((e) => [e.action, e.previous?.version, e.current.version, e.consumersOnPrevious])).toEqual([
      ["publish", 5, 6, 2],
    ]);

    await createFunction({ name: "on-six", role: memberRole, layers: [arn(6)] }, member);
    const clients = recordedClients();
    const consumers = testConsumerClients();
    try {
      const rolled = await runRollback(config(), { package: pkg }, { ...clients.deps(), consumers });
      expect(rolled.regions.map((r) => [r.previous?.version, r.current?.version, r.consumersOnPrevious])).toEqual([
        [6, 5, 1],
      ]);
      expect(rollbackReleaseEvents(rolled).map((e) => [e.action, e.consumersOnPrevious])).toEqual([["rollback", 1]]);
    } finally {
      consumers.close();
      clients.destroy();
    }
  });
});
