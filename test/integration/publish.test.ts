import { AddLayerVersionPermissionCommand, LambdaClient, ResourceConflictException } from "@aws-sdk/client-lambda";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { PutParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type PublishRequest, runPublish } from "../../lib/publish/publish.ts";
import {
  createBucket,
  MOTO_ACCOUNT_ID,
  type OrganizationsFixture,
  organizationsFixture,
  uniqueName,
} from "../support/aws.ts";
import {
  type ArtifactSpec,
  associationsOf,
  awsFault,
  parameterOf,
  publishConfig,
  putArtifact,
  type RecordedClients,
  recordedClients,
  setPointer,
  sharesNamed,
  statementsOf,
  versionsOf,
} from "../support/publish-fixtures.ts";

const REGION = "eu-west-1";
const OUTSIDE_ACCOUNT = "111122223333";

let bucket: string;
let org: OrganizationsFixture;
const open: RecordedClients[] = [];
const admin = { lambda: new LambdaClient({}), ssm: new SSMClient({}), s3: new S3Client({}) };

beforeAll(async () => {
  bucket = await createBucket(uniqueName("publish"));
  org = await organizationsFixture();
});

afterEach(() => {
  for (const c of open.splice(0)) c.destroy();
});

afterAll(() => {
  for (const client of Object.values(admin)) client.destroy();
});

function clients(): RecordedClients {
  const c = recordedClients();
  open.push(c);
  return c;
}

/** A fresh parameter prefix and package, so tests never see each other's state. */
function names() {
  const prefix = `/${uniqueName("ls")}`;
  const pkg = uniqueName("py");
  return {
    prefix,
    pkg,
    layerName: pkg,
    arnParameter: `${prefix}/${pkg}/layer-version-arn`,
    parameterArn: `arn:aws:ssm:${REGION}:${MOTO_ACCOUNT_ID}:parameter${prefix}/${pkg}/layer-version-arn`,
    historyArn: `arn:aws:ssm:${REGION}:${MOTO_ACCOUNT_ID}:parameter${prefix}/${pkg}/history`,
    shareName: `layer-sync-${pkg}`,
  };
}

const one = (pkg: string): PublishRequest => ({ kind: "packages", packages: [pkg], trigger: "manual" });

/** Publish settings for the test bucket and `prefix`, plus `extra`. */
const settings = (prefix: string, extra: Record<string, string> = {}) =>
  publishConfig({ ARTIFACT_BUCKET: bucket, PARAMETER_PREFIX: prefix, ...extra });

/** An artifact of the package with `content` (and more of its spec), uploaded with its pointer. */
const put = (n: { prefix: string; pkg: string }, content: string, more: Partial<ArtifactSpec> = {}) =>
  putArtifact(admin, { bucket, parameterPrefix: n.prefix, pkg: n.pkg, content, ...more });

/**
 * Makes one of the clients throw `fault()` for `command`: before it is sent, or (`after`) once it was sent and
 * its answer dropped (a lost response).
 */
function failOn(
  c: RecordedClients,
  service: "lambda" | "ssm" | "ram",
  command: string,
  fault: () => Error,
  when: "before" | "after" = "before",
): void {
  const middleware =
    <A, R>(next: (args: A) => Promise<R>, context: { commandName?: string }) =>
    async (args: A): Promise<R> => {
      const hit = context.commandName === command;
      if (hit && when === "before") throw fault();
      const out = await next(args);
      if (hit) throw fault();
      return out;
    };
  if (service === "lambda") c.lambda.middlewareStack.add(middleware, { step: "initialize" });
  else if (service === "ssm") c.ssm.middlewareStack.add(middleware, { step: "initialize" });
  else c.ram.middlewareStack.add(middleware, { step: "initialize" });
}

describe("publishing a changed artifact", () => {
  it("creates exactly one version whose statements grant the organization, each account and every account under each OU", async () => {
    const n = names();
    const c = clients();
    const artifact = await put(n, "v1");
    const config = settings(n.prefix, {
      COMPATIBLE_RUNTIMES: "python3.12,python3.13",
      COMPATIBLE_ARCHITECTURES: "arm64",
      LAYER_LICENSE: "MIT",
      SHARE_ORGANIZATION_ID: org.organizationId,
      SHARE_OU_IDS: org.parentOu.id,
      SHARE_ACCOUNT_IDS: OUTSIDE_ACCOUNT,
    });

    const summary = await runPublish(config, one(n.pkg), c.deps());

    const versions = await versionsOf(c.lambda, n.layerName);
    expect(versions).toHaveLength(1);
    const [v1] = versions;
    expect(v1?.description).toBe(
      `acme/layers@${artifact.commit.slice(0, 7)} layers/${n.pkg} sha256:${artifact.sha256.slice(0, 12)}`,
    );

    const accounts = [OUTSIDE_ACCOUNT, org.parentOuAccountId, org.nestedOuAccountId].sort();
    const expectedSids = [
      `layer-sync-org-${org.organizationId}`,
      ...accounts.map((a) => `layer-sync-account-${a}`),
    ].sort();
    const statements = await statementsOf(c.lambda, n.layerName, 1);
    expect(statements.map((s) => s.sid).sort()).toEqual(expectedSids);
    expect(statements.every((s) => s.actions.length === 1 && s.actions[0] === "lambda:GetLayerVersion")).toBe(true);

    // moto accepts any action, principal or duplicate id: check what was actually sent
    const adds = c.inputs("AddLayerVersionPermissionCommand");
    expect(adds.map((a) => a.StatementId).sort()).toEqual(expectedSids);
    expect(new Set(adds.map((a) => a.StatementId)).size).toBe(adds.length);
    for (const a of adds) {
      expect(a).toMatchObject({ LayerName: n.layerName, VersionNumber: 1, Action: "lambda:GetLayerVersion" });
    }
    expect(adds.find((a) => a.Principal === "*")).toEqual({
      LayerName: n.layerName,
      VersionNumber: 1,
      StatementId: `layer-sync-org-${org.organizationId}`,
      Action: "lambda:GetLayerVersion",
      Principal: "*",
      OrganizationId: org.organizationId,
    });
    expect(
      adds
        .filter((a) => a.Principal !== "*")
        .map((a) => a.Principal)
        .sort(),
    ).toEqual(accounts);
    expect(adds.filter((a) => a.Principal !== "*").every((a) => a.OrganizationId === undefined)).toBe(true);

    expect(c.inputs("PublishLayerVersionCommand")).toEqual([
      {
        LayerName: n.layerName,
        Content: { S3Bucket: bucket, S3Key: artifact.key },
        Description: v1?.description,
        CompatibleRuntimes: ["python3.12", "python3.13"],
        CompatibleArchitectures: ["arm64"],
        LicenseInfo: "MIT",
      },
    ]);

    const share = {
      arn: expect.stringMatching(/^arn:aws:ram:eu-west-1:/),
      name: n.shareName,
      principals: [org.organizationArn, org.parentOu.arn, OUTSIDE_ACCOUNT],
      resources: [n.historyArn, n.parameterArn],
      created: true,
      associated: [],
      disassociated: [],
    };
    expect(summary.packages).toEqual([
      {
        name: n.pkg,
        layerName: n.layerName,
        key: artifact.key,
        sha256: artifact.sha256,
        commit: artifact.commit,
        version: 1,
        layerVersionArn: v1?.arn,
        published: true,
        reason: null,
        permissions: expectedSids,
        permissionChanges: {
          added: [`layer-sync-org-${org.organizationId}`, ...accounts.map((a) => `layer-sync-account-${a}`)],
          removed: [],
        },
        parameter: { name: n.arnParameter, written: true },
        share,
        deleted: [],
        warnings: [],
        // without PUBLISH_REGIONS, the home Region only
        regions: [
          {
            region: REGION,
            version: 1,
            layerVersionArn: v1?.arn,
            published: true,
            reason: null,
            parameter: { name: n.arnParameter, written: true },
            share,
            deleted: [],
          },
        ],
      },
    ]);
  });

  it("points the Advanced-tier ARN parameter at the version only after the permissions are in place", async () => {
    const n = names();
    const c = clients();
    await put(n, "order");
    const config = settings(n.prefix, {
      SHARE_ACCOUNT_IDS: OUTSIDE_ACCOUNT,
    });

    const summary = await runPublish(config, one(n.pkg), c.deps());

    const arn = `arn:aws:lambda:${REGION}:${MOTO_ACCOUNT_ID}:layer:${n.layerName}:1`;
    expect(summary.packages[0]?.layerVersionArn).toBe(arn);
    expect(await parameterOf(c.ssm, n.arnParameter)).toEqual({ value: arn, tier: "Advanced" });
    const puts = c.inputs("PutParameterCommand");
    expect(puts).toEqual([
      {
        Name: n.arnParameter,
        Value: arn,
        Type: "String",
        Tier: "Advanced",
        Overwrite: true,
        Description: `Latest version of Lambda layer ${n.layerName} (written by layer-sync)`,
      },
      {
        Name: `${n.prefix}/${n.pkg}/history`,
        Value: expect.any(String),
        Type: "String",
        Tier: "Advanced",
        Overwrite: true,
        Description: `Versions of Lambda layer ${n.layerName} consumers were pointed to, newest first (written by layer-sync)`,
      },
    ]);
    expect(JSON.parse(String(puts[1]?.Value))).toEqual([
      { version: 1, layerVersionArn: arn, commit: expect.stringMatching(/^[0-9a-f]{40}$/), at: expect.any(String) },
    ]);
    const order = c.sent.map((s) => s.command);
    expect(order.lastIndexOf("AddLayerVersionPermissionCommand")).toBeLessThan(order.indexOf("PutParameterCommand"));
    expect(order.indexOf("PutParameterCommand")).toBeLessThan(order.indexOf("CreateResourceShareCommand"));
  });

  it("holds the parameter in one RAM share named after the package, created in one call without external principals", async () => {
    const n = names();
    const c = clients();
    await put(n, "ram");
    const config = settings(n.prefix, {
      SHARE_ORGANIZATION_ID: org.organizationId,
      SHARE_OU_IDS: org.nestedOu.id,
    });

    await runPublish(config, one(n.pkg), c.deps());

    const shares = await sharesNamed(c.ram, n.shareName);
    expect(shares).toHaveLength(1);
    const shareArn = shares[0] ?? "";
    expect(await associationsOf(c.ram, shareArn, "RESOURCE")).toEqual([n.historyArn, n.parameterArn]);
    expect(await associationsOf(c.ram, shareArn, "PRINCIPAL")).toEqual([org.nestedOu.arn, org.organizationArn].sort());
    const [create] = c.inputs("CreateResourceShareCommand");
    expect(create).toEqual({
      name: n.shareName,
      resourceArns: [n.parameterArn, n.historyArn],
      principals: [org.organizationArn, org.nestedOu.arn],
      allowExternalPrincipals: false,
      clientToken: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/),
    });
    expect(create?.resourceArns).not.toContainEqual(expect.stringContaining("parameter//"));
    expect(c.inputs("AssociateResourceShareCommand")).toEqual([]);
  });

  it("takes runtimes, architectures, description and licence from the artifact's layer.json over the defaults", async () => {
    const n = names();
    const c = clients();
    await put(n, "overrides", {
      layerConfig: {
        runtimes: ["nodejs24.x"],
        architectures: ["x86_64"],
        description: "Shared helpers",
        license: "Apache-2.0",
      },
    });
    const config = settings(n.prefix, {
      COMPATIBLE_RUNTIMES: "python3.13",
      LAYER_LICENSE: "MIT",
    });

    const summary = await runPublish(config, one(n.pkg), c.deps());

    const [publish] = c.inputs("PublishLayerVersionCommand");
    expect(publish).toMatchObject({
      CompatibleRuntimes: ["nodejs24.x"],
      CompatibleArchitectures: ["x86_64"],
      LicenseInfo: "Apache-2.0",
      Description: expect.stringMatching(/^Shared helpers acme\/layers@[0-9a-f]{7} layers\/\S+ sha256:[0-9a-f]{12}$/),
    });
    // no principals: nothing is shared, and the summary says so
    expect(summary.packages[0]?.share).toBeNull();
    expect(summary.packages[0]?.permissions).toEqual([]);
    expect(summary.packages[0]?.warnings).toEqual([expect.stringMatching(/^not shared: no SHARE_ORGANIZATION_ID/)]);
    expect(c.sent.filter((s) => s.service === "ram" || s.service === "organizations")).toEqual([]);
  });
});

describe("publishing the same artifact again", () => {
  it("changes nothing: no version, statement, parameter write or share call", async () => {
    const n = names();
    const first = clients();
    await put(n, "same");
    const config = settings(n.prefix, {
      SHARE_ORGANIZATION_ID: org.organizationId,
      SHARE_ACCOUNT_IDS: OUTSIDE_ACCOUNT,
    });
    const before = await runPublish(config, one(n.pkg), first.deps());

    const again = clients();
    const after = await runPublish(config, one(n.pkg), again.deps());

    expect(again.writes()).toEqual([]);
    expect(await versionsOf(again.lambda, n.layerName)).toHaveLength(1);
    expect(after.packages[0]).toMatchObject({
      version: before.packages[0]?.version,
      layerVersionArn: before.packages[0]?.layerVersionArn,
      published: false,
      reason: "unchanged",
      permissions: before.packages[0]?.permissions,
      parameter: { name: n.arnParameter, written: false },
      share: { arn: before.packages[0]?.share?.arn, created: false, associated: [], disassociated: [] },
      deleted: [],
    });
  });

  it("publishes restored content again as a new version rather than pointing back at an old one", async () => {
    const n = names();
    const c = clients();
    const config = settings(n.prefix);
    const a = await put(n, "A", { second: 1 });
    await runPublish(config, one(n.pkg), c.deps());
    await put(n, "B", { second: 2 });
    await runPublish(config, one(n.pkg), c.deps());
    await setPointer(admin.ssm, n.prefix, n.pkg, a.key);

    const summary = await runPublish(config, one(n.pkg), c.deps());

    expect(summary.packages[0]).toMatchObject({ version: 3, published: true });
    expect((await versionsOf(c.lambda, n.layerName)).map((v) => v.version)).toEqual([3, 2, 1]);
  });
});

describe("retention", () => {
  it("deletes versions beyond RETAIN_VERSIONS and reports them", async () => {
    const n = names();
    const c = clients();
    const config = settings(n.prefix, { RETAIN_VERSIONS: "2" });
    const deleted: number[][] = [];
    for (let i = 1; i <= 4; i++) {
      await put(n, `r${i}`, { second: i });
      deleted.push((await runPublish(config, one(n.pkg), c.deps())).packages[0]?.deleted ?? []);
    }

    expect(deleted).toEqual([[], [], [1], [2]]);
    expect((await versionsOf(c.lambda, n.layerName)).map((v) => v.version)).toEqual([4, 3]);
    expect(c.inputs("DeleteLayerVersionCommand")).toEqual([
      { LayerName: n.layerName, VersionNumber: 1 },
      { LayerName: n.layerName, VersionNumber: 2 },
    ]);
  });

  it("keeps an old version that a parameter under the package still names", async () => {
    const n = names();
    const c = clients();
    const config = settings(n.prefix, { RETAIN_VERSIONS: "1" });
    await put(n, "p1", { second: 1 });
    const first = await runPublish(config, one(n.pkg), c.deps());
    await admin.ssm.send(
      new PutParameterCommand({
        Name: `${n.prefix}/${n.pkg}/pinned`,
        Value: first.packages[0]?.layerVersionArn ?? "",
        Type: "String",
      }),
    );
    const deleted: number[] = [];
    for (let i = 2; i <= 3; i++) {
      await put(n, `p${i}`, { second: i });
      deleted.push(...((await runPublish(config, one(n.pkg), c.deps())).packages[0]?.deleted ?? []));
    }

    expect(deleted).toEqual([2]);
    expect((await versionsOf(c.lambda, n.layerName)).map((v) => v.version)).toEqual([3, 1]);
  });
});

describe("reconciling", () => {
  it("publishes every package that has an artifact-key under the prefix and ignores other parameters", async () => {
    const prefix = `/${uniqueName("rec")}`;
    const pkgs = [uniqueName("a"), uniqueName("b")].sort();
    const c = clients();
    for (const pkg of pkgs) await putArtifact(admin, { bucket, parameterPrefix: prefix, pkg, content: pkg });
    await admin.ssm.send(new PutParameterCommand({ Name: `${prefix}/notes/readme`, Value: "x", Type: "String" }));
    const config = settings(prefix);

    const summary = await runPublish(config, { kind: "reconcile" }, c.deps());

    expect(summary.trigger).toBe("reconcile");
    expect(summary.packages.map((p) => [p.name, p.version, p.published, p.error])).toEqual(
      pkgs.map((pkg) => [pkg, 1, true, undefined]),
    );
    expect(c.inputs("GetParametersByPathCommand")[0]).toMatchObject({ Path: prefix, Recursive: true });
  });
});

describe("resuming after a partial failure", () => {
  it("completes the share on the next run when the run died between publishing and sharing, without publishing again", async () => {
    const n = names();
    const failing = clients();
    failOn(failing, "ram", "CreateResourceShareCommand", () =>
      awsFault("ServiceUnavailableException", "injected", 503),
    );
    await put(n, "resume-ram");
    const config = settings(n.prefix, {
      SHARE_ORGANIZATION_ID: org.organizationId,
    });

    const broken = await runPublish(config, one(n.pkg), failing.deps());
    expect(broken.packages[0]?.error).toMatch(
      /^ram:CreateResourceShare on resource share layer-sync-\S+ for arn:aws:ssm:\S+ failed \(ServiceUnavailableException: injected\); run again/,
    );
    expect(broken.packages[0]?.version).toBe(1);

    const healthy = clients();
    const resumed = await runPublish(config, one(n.pkg), healthy.deps());

    expect(healthy.inputs("PublishLayerVersionCommand")).toEqual([]);
    expect(healthy.inputs("AddLayerVersionPermissionCommand")).toEqual([]);
    expect(resumed.packages[0]).toMatchObject({
      version: 1,
      published: false,
      reason: "resumed",
      parameter: { written: false },
      share: { created: true, resources: [n.historyArn, n.parameterArn], principals: [org.organizationArn] },
    });
    expect(resumed.packages[0]?.error).toBeUndefined();
    expect(await versionsOf(healthy.lambda, n.layerName)).toHaveLength(1);
    expect(await sharesNamed(healthy.ram, n.shareName)).toHaveLength(1);
  });

  it("writes the parameter and the share on the next run when writing the parameter failed", async () => {
    const n = names();
    const failing = clients();
    failOn(failing, "ssm", "PutParameterCommand", () => awsFault("InternalServerError", "injected", 500));
    await put(n, "resume-ssm");
    const config = settings(n.prefix, {
      SHARE_ACCOUNT_IDS: OUTSIDE_ACCOUNT,
    });

    const broken = await runPublish(config, one(n.pkg), failing.deps());
    expect(broken.packages[0]?.error).toMatch(
      /^ssm:PutParameter on parameter \S+\/layer-version-arn failed \(InternalServerError/,
    );
    expect(failing.inputs("CreateResourceShareCommand")).toEqual([]);
    expect(await parameterOf(failing.ssm, n.arnParameter)).toBeUndefined();

    const healthy = clients();
    const resumed = await runPublish(config, one(n.pkg), healthy.deps());

    expect(healthy.inputs("PublishLayerVersionCommand")).toEqual([]);
    expect(resumed.packages[0]).toMatchObject({
      version: 1,
      reason: "resumed",
      parameter: { written: true },
      share: { created: true },
    });
    expect((await parameterOf(healthy.ssm, n.arnParameter))?.value).toBe(resumed.packages[0]?.layerVersionArn);
  });

  it("continues with the version when PublishLayerVersion failed on the client but succeeded on the server", async () => {
    const n = names();
    const c = clients();
    failOn(c, "lambda", "PublishLayerVersionCommand", () => awsFault("TimeoutError", "socket hang up", 0), "after");
    await put(n, "lost-response");
    const config = settings(n.prefix, {
      SHARE_ACCOUNT_IDS: OUTSIDE_ACCOUNT,
    });

    const summary = await runPublish(config, one(n.pkg), c.deps());

    expect(summary.packages[0]).toMatchObject({
      version: 1,
      published: true,
      permissions: [`layer-sync-account-${OUTSIDE_ACCOUNT}`],
    });
    expect(summary.packages[0]?.error).toBeUndefined();
    expect(summary.packages[0]?.warnings).toEqual([
      expect.stringMatching(/PublishLayerVersion reported a failure .*TimeoutError.*version 1/),
    ]);
    expect(await versionsOf(c.lambda, n.layerName)).toHaveLength(1);
  });
});

describe("concurrent publishes of one artifact", () => {
  it("leave exactly one version, which every run reports, with one share and the parameter naming it", async () => {
    const n = names();
    const setup = clients();
    await put(n, "race");
    const config = settings(n.prefix, {
      SHARE_ORGANIZATION_ID: org.organizationId,
      SHARE_ACCOUNT_IDS: OUTSIDE_ACCOUNT,
    });
    const runners = [clients(), clients(), clients()];

    const summaries = await Promise.all(runners.map((r) => runPublish(config, one(n.pkg), r.deps())));

    for (const s of summaries) expect(s.packages[0]?.error).toBeUndefined();
    expect(summaries.filter((s) => s.packages[0]?.published)).toHaveLength(1);
    const versions = await versionsOf(setup.lambda, n.layerName);
    expect(versions).toHaveLength(1);
    const kept = versions[0];
    expect(new Set(summaries.map((s) => s.packages[0]?.layerVersionArn))).toEqual(new Set([kept?.arn]));
    expect((await parameterOf(setup.ssm, n.arnParameter))?.value).toBe(kept?.arn);
    expect(await sharesNamed(setup.ram, n.shareName)).toHaveLength(1);
    // moto keeps a statement id added twice (AWS refuses it with ResourceConflictException); the ids are the expected ones
    const sids = new Set((await statementsOf(setup.lambda, n.layerName, kept?.version ?? 0)).map((s) => s.sid));
    expect(sids).toEqual(new Set([`layer-sync-org-${org.organizationId}`, `layer-sync-account-${OUTSIDE_ACCOUNT}`]));
  });
});

describe("layer permissions over time", () => {
  it("removes layer-sync statements and RAM principals no longer configured and leaves other statements alone", async () => {
    const n = names();
    const c = clients();
    await put(n, "stale");
    const wide = settings(n.prefix, {
      SHARE_ACCOUNT_IDS: `${OUTSIDE_ACCOUNT},222233334444`,
    });
    await runPublish(wide, one(n.pkg), c.deps());
    await admin.lambda.send(
      new AddLayerVersionPermissionCommand({
        LayerName: n.layerName,
        VersionNumber: 1,
        StatementId: "hand-made",
        Action: "lambda:GetLayerVersion",
        Principal: "999988887777",
      }),
    );
    const narrow = settings(n.prefix, {
      SHARE_ACCOUNT_IDS: OUTSIDE_ACCOUNT,
    });
    const again = clients();

    const summary = await runPublish(narrow, one(n.pkg), again.deps());

    expect(summary.packages[0]).toMatchObject({
      reason: "resumed",
      permissions: [`layer-sync-account-${OUTSIDE_ACCOUNT}`],
      permissionChanges: { added: [], removed: ["layer-sync-account-222233334444"] },
      share: { disassociated: ["222233334444"], principals: [OUTSIDE_ACCOUNT] },
    });
    expect(again.inputs("RemoveLayerVersionPermissionCommand")).toEqual([
      { LayerName: n.layerName, VersionNumber: 1, StatementId: "layer-sync-account-222233334444" },
    ]);
    const sids = (await statementsOf(again.lambda, n.layerName, 1)).map((s) => s.sid).sort();
    expect(sids).toEqual(["hand-made", `layer-sync-account-${OUTSIDE_ACCOUNT}`]);
    const shareArn = summary.packages[0]?.share?.arn ?? "";
    expect(await associationsOf(again.ram, shareArn, "PRINCIPAL")).toEqual([OUTSIDE_ACCOUNT]);
  });

  it("accepts a statement another run added meanwhile (ResourceConflictException) once it has checked it matches", async () => {
    const n = names();
    const c = clients();
    failOn(
      c,
      "lambda",
      "AddLayerVersionPermissionCommand",
      () => new ResourceConflictException({ message: "The statement id provided already exists", $metadata: {} }),
      "after",
    );
    await put(n, "conflict");
    const config = settings(n.prefix, {
      SHARE_ACCOUNT_IDS: OUTSIDE_ACCOUNT,
    });

    const summary = await runPublish(config, one(n.pkg), c.deps());

    expect(summary.packages[0]?.error).toBeUndefined();
    expect(summary.packages[0]?.permissionChanges).toEqual({ added: [], removed: [] });
    expect(c.inputs("RemoveLayerVersionPermissionCommand")).toEqual([]);
    expect((await statementsOf(c.lambda, n.layerName, 1)).map((s) => s.sid)).toEqual([
      `layer-sync-account-${OUTSIDE_ACCOUNT}`,
    ]);
  });

  it("replaces a conflicting statement with the same id but other content", async () => {
    const n = names();
    const c = clients();
    const sid = `layer-sync-account-${OUTSIDE_ACCOUNT}`;
    let planted = false;
    c.lambda.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === "AddLayerVersionPermissionCommand" && !planted) {
          planted = true; // another writer got there first with different content
          await admin.lambda.send(
            new AddLayerVersionPermissionCommand({
              LayerName: n.layerName,
              VersionNumber: 1,
              StatementId: sid,
              Action: "lambda:GetLayerVersion",
              Principal: "999988887777",
            }),
          );
          throw new ResourceConflictException({ message: "The statement id provided already exists", $metadata: {} });
        }
        return next(args);
      },
      { step: "initialize" },
    );
    await put(n, "conflict-other");
    const config = settings(n.prefix, {
      SHARE_ACCOUNT_IDS: OUTSIDE_ACCOUNT,
    });

    const summary = await runPublish(config, one(n.pkg), c.deps());

    expect(summary.packages[0]?.error).toBeUndefined();
    const statements = await statementsOf(c.lambda, n.layerName, 1);
    expect(statements.map((s) => [s.sid, s.principal])).toEqual([[sid, OUTSIDE_ACCOUNT]]);
  });
});

describe("failures", () => {
  it("say that the sync must run first when the package has no artifact-key pointer", async () => {
    const n = names();
    const c = clients();
    const summary = await runPublish(settings(n.prefix), one(n.pkg), c.deps());
    expect(summary.packages[0]?.error).toBe(
      `nothing to publish: parameter ${n.prefix}/${n.pkg}/artifact-key does not exist; run \`layer-sync sync\` for this package first, or check PARAMETER_PREFIX`,
    );
    expect(c.sent.filter((s) => s.service === "lambda")).toEqual([]);
  });

  it("name the missing object when the pointer names a key that is not in the bucket", async () => {
    const n = names();
    const c = clients();
    await setPointer(admin.ssm, n.prefix, n.pkg, "layers/gone/gone-20260101T000000Z-abc1234.zip");
    const summary = await runPublish(settings(n.prefix), one(n.pkg), c.deps());
    expect(summary.packages[0]?.error).toMatch(
      new RegExp(
        `names s3://${bucket}/layers/gone/gone-20260101T000000Z-abc1234\\.zip, which does not exist; run the sync again`,
      ),
    );
    // moto would publish an empty version from a missing key; layer-sync never asks it to
    expect(c.inputs("PublishLayerVersionCommand")).toEqual([]);
  });

  it("refuse an object without layer-sync metadata", async () => {
    const n = names();
    const c = clients();
    const key = `foreign/${n.pkg}.zip`;
    await admin.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: "zip" }));
    await setPointer(admin.ssm, n.prefix, n.pkg, key);
    const summary = await runPublish(settings(n.prefix), one(n.pkg), c.deps());
    expect(summary.packages[0]?.error).toMatch(/has no layer-sync metadata \(commit, source, content-sha256\)/);
    expect(c.inputs("PublishLayerVersionCommand")).toEqual([]);
  });

  it("refuse a pointer that names another package's artifact, naming both, and publish nothing", async () => {
    const n = names();
    const c = clients();
    const other = uniqueName("py");
    const theirs = await putArtifact(admin, { bucket, parameterPrefix: n.prefix, pkg: other, content: "theirs" });
    await setPointer(admin.ssm, n.prefix, n.pkg, theirs.key);
    const summary = await runPublish(settings(n.prefix), one(n.pkg), c.deps());
    expect(summary.packages[0]?.error).toBe(
      `${n.prefix}/${n.pkg}/artifact-key names "${theirs.key}", whose key's package segment is package "${other}", not "${n.pkg}"; refusing to publish another package's artifact — run \`layer-sync sync\` for ${n.pkg} to point it at its own`,
    );
    expect(c.sent.filter((s) => s.service === "lambda")).toEqual([]);
  });

  it("refuse an artifact under the package's key whose metadata source is another folder, naming both", async () => {
    const n = names();
    const c = clients();
    const a = await put(n, "copied", { source: "github:acme/layers:layers/other-deps" });
    const summary = await runPublish(settings(n.prefix), one(n.pkg), c.deps());
    expect(summary.packages[0]?.error).toBe(
      `${n.prefix}/${n.pkg}/artifact-key names "${a.key}", whose metadata source "github:acme/layers:layers/other-deps" is package "other-deps", not "${n.pkg}"; refusing to publish another package's artifact — run \`layer-sync sync\` for ${n.pkg} to point it at its own`,
    );
    expect(c.sent.filter((s) => s.service === "lambda")).toEqual([]);
  });

  it("accept a built target's artifact, whose folder is the package name less its runtime and architecture", async () => {
    const n = names();
    const c = clients();
    const pkg = `${n.pkg}-python312-arm64`;
    await putArtifact(admin, {
      bucket,
      parameterPrefix: n.prefix,
      pkg,
      content: "built",
      source: `github:acme/layers:layers/${n.pkg}`,
      build: { runtime: "python3.12", architecture: "arm64" },
    });
    const summary = await runPublish(settings(n.prefix), one(pkg), c.deps());
    expect(summary.packages[0]).toMatchObject({ name: pkg, published: true });
    expect(summary.packages[0]?.error).toBeUndefined();
    // the same artifact is not the x86_64 target's
    await setPointer(admin.ssm, n.prefix, `${n.pkg}-python312-x86_64`, summary.packages[0]?.key ?? "");
    const wrong = await runPublish(settings(n.prefix), one(`${n.pkg}-python312-x86_64`), c.deps());
    expect(wrong.packages[0]?.error).toMatch(
      new RegExp(`whose key's package segment is package "${pkg}", not "${n.pkg}-python312-x86_64"`),
    );
  });

  it("refuse a layer name over 140 characters before calling Lambda", async () => {
    const n = names();
    const c = clients();
    await put(n, "long");
    const summary = await runPublish(settings(n.prefix, { LAYER_NAME_PREFIX: "x".repeat(130) }), one(n.pkg), c.deps());
    expect(summary.packages[0]?.error).toMatch(/^layer name "x{130}py-[0-9a-f]+" must match \[A-Za-z0-9_-\]\{1,140\}/);
    expect(c.sent.filter((s) => s.service === "lambda")).toEqual([]);
  });

  it("stop before publishing when SHARE_ORGANIZATION_ID is not the caller's organization", async () => {
    const n = names();
    const c = clients();
    await put(n, "other-org");
    const summary = await runPublish(
      settings(n.prefix, { SHARE_ORGANIZATION_ID: "o-zzzzzzzzzz" }),
      one(n.pkg),
      c.deps(),
    );
    expect(summary.packages[0]?.error).toBe(
      `SHARE_ORGANIZATION_ID is o-zzzzzzzzzz, but this account belongs to organization ${org.organizationId}; set SHARE_ORGANIZATION_ID=${org.organizationId} (RAM can share only within the caller's organization)`,
    );
    expect(c.inputs("PublishLayerVersionCommand")).toEqual([]);
  });

  it("name an OU that does not exist", async () => {
    const n = names();
    const c = clients();
    await put(n, "no-ou");
    const summary = await runPublish(settings(n.prefix, { SHARE_OU_IDS: "ou-zzzz-zzzzzzzz" }), one(n.pkg), c.deps());
    expect(summary.packages[0]?.error).toMatch(
      /^organizations:ListAccountsForParent on OU ou-zzzz-zzzzzzzz failed \(ParentNotFoundException.*\); OU ou-zzzz-zzzzzzzz was not found in the organization; check SHARE_OU_IDS$/,
    );
  });

  it("name the IAM action to grant when access is denied, and leave the parameter unwritten", async () => {
    const n = names();
    const c = clients();
    failOn(c, "lambda", "AddLayerVersionPermissionCommand", () =>
      awsFault("AccessDeniedException", "User is not authorized to perform: lambda:AddLayerVersionPermission", 403),
    );
    await put(n, "denied");
    const summary = await runPublish(settings(n.prefix, { SHARE_ACCOUNT_IDS: OUTSIDE_ACCOUNT }), one(n.pkg), c.deps());
    expect(summary.packages[0]?.error).toMatch(
      /^lambda:AddLayerVersionPermission on layer \S+ version 1 statement layer-sync-account-111122223333 failed \(AccessDeniedException: .*\); grant lambda:AddLayerVersionPermission on layer \S+ version 1 statement \S+ to the role that runs layer-sync$/,
    );
    expect(await parameterOf(c.ssm, n.arnParameter)).toBeUndefined();
  });

  it("keep packages independent: one failing package does not stop the others", async () => {
    const prefix = `/${uniqueName("ind")}`;
    const good = uniqueName("good");
    const c = clients();
    await putArtifact(admin, { bucket, parameterPrefix: prefix, pkg: good, content: "good" });
    const summary = await runPublish(
      settings(prefix),
      { kind: "packages", packages: ["missing-pkg", good], trigger: "manual" },
      c.deps(),
    );
    expect(summary.packages.map((p) => [p.name, p.published, p.error === undefined])).toEqual([
      ["missing-pkg", false, false],
      [good, true, true],
    ]);
  });
});
