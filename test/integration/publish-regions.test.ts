import { HeadObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { SSMClient } from "@aws-sdk/client-ssm";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { failureMessage, type PublishRequest, runPublish } from "../../lib/publish/publish.ts";
import {
  createBucket,
  MOTO_ACCOUNT_ID,
  type OrganizationsFixture,
  organizationsFixture,
  uniqueName,
} from "../support/aws.ts";
import {
  associationsOf,
  awsFault,
  parameterOf,
  publishConfig,
  putArtifact,
  type RecordedClients,
  recordedClients,
  sharesNamed,
  statementsOf,
  versionsOf,
} from "../support/publish-fixtures.ts";

const HOME = "eu-west-1";
const REGIONS = ["us-east-1", HOME, "ap-southeast-2"] as const;
const OTHERS = ["us-east-1", "ap-southeast-2"] as const;
type Region = (typeof REGIONS)[number];

let homeBucket: string;
const buckets = {} as Record<Region, string>;
let strayBucket: string;
let org: OrganizationsFixture;
const open: RecordedClients[] = [];
const admin = { s3: new S3Client({}), ssm: new SSMClient({}) };

beforeAll(async () => {
  homeBucket = await createBucket(uniqueName("regions-home"));
  buckets[HOME] = homeBucket;
  for (const region of OTHERS) buckets[region] = await createBucket(uniqueName(`regions-${region}`), region);
  strayBucket = await createBucket(uniqueName("regions-stray"), "us-east-1");
  org = await organizationsFixture();
});

afterEach(() => {
  for (const c of open.splice(0)) c.destroy();
});

afterAll(() => {
  for (const client of Object.values(admin)) client.destroy();
});

/** Recorded clients for every Region: the home ones are the run's own, the others come from the factory. */
function world(): { home: RecordedClients; of: (region: Region) => RecordedClients; all: RecordedClients[] } {
  const byRegion = {} as Record<Region, RecordedClients>;
  for (const region of REGIONS) {
    byRegion[region] = region === HOME ? recordedClients() : recordedClients(region);
    open.push(byRegion[region]);
  }
  return { home: byRegion[HOME], of: (region) => byRegion[region], all: Object.values(byRegion) };
}

function deps(w: ReturnType<typeof world>) {
  return w.home.deps({ regionClients: (region) => w.of(region as Region) });
}

function names() {
  const prefix = `/${uniqueName("rg")}`;
  const pkg = uniqueName("py");
  return {
    prefix,
    pkg,
    arnParameter: `${prefix}/${pkg}/layer-version-arn`,
    historyParameter: `${prefix}/${pkg}/history`,
    shareName: `layer-sync-${pkg}`,
  };
}

function config(n: { prefix: string }, extra: Record<string, string> = {}) {
  return publishConfig({
    ARTIFACT_BUCKET: homeBucket,
    PARAMETER_PREFIX: n.prefix,
    SHARE_ORGANIZATION_ID: org.organizationId,
    PUBLISH_REGIONS: REGIONS.join(","),
    REGION_BUCKETS: OTHERS.map((r) => `${r}=${buckets[r]}`).join(","),
    ...extra,
  });
}

const one = (pkg: string): PublishRequest => ({ kind: "packages", packages: [pkg], trigger: "manual" });
const parameterArn = (region: string, name: string) => `arn:aws:ssm:${region}:${MOTO_ACCOUNT_ID}:parameter${name}`;

describe("publishing to three Regions", () => {
  it("gives every Region exactly one version with the org permission, an Advanced ARN parameter naming it and a share holding that parameter", async () => {
    const n = names();
    const w = world();
    const artifact = await putArtifact(admin, {
      bucket: homeBucket,
      parameterPrefix: n.prefix,
      pkg: n.pkg,
      content: "r1",
    });

    const summary = await runPublish(config(n), one(n.pkg), deps(w));

    const [p] = summary.packages;
    expect(p?.error).toBeUndefined();
    expect(p?.regions.map((r) => r.region)).toEqual([...REGIONS]);
    for (const region of REGIONS) {
      const c = w.of(region);
      const arn = `arn:aws:lambda:${region}:${MOTO_ACCOUNT_ID}:layer:${n.pkg}:1`;
      expect((await versionsOf(c.lambda, n.pkg)).map((v) => v.arn)).toEqual([arn]);
      expect((await statementsOf(c.lambda, n.pkg, 1)).map((s) => s.sid)).toEqual([
        `layer-sync-org-${org.organizationId}`,
      ]);
      expect(await parameterOf(c.ssm, n.arnParameter)).toEqual({ value: arn, tier: "Advanced" });
      const shares = await sharesNamed(c.ram, n.shareName);
      expect(shares).toHaveLength(1);
      expect(shares[0]).toMatch(new RegExp(`^arn:aws:ram:${region}:`));
      expect(await associationsOf(c.ram, shares[0] ?? "", "RESOURCE")).toEqual([
        parameterArn(region, n.historyParameter),
        parameterArn(region, n.arnParameter),
      ]);
      expect(await associationsOf(c.ram, shares[0] ?? "", "PRINCIPAL")).toEqual([org.organizationArn]);
      expect(p?.regions.find((r) => r.region === region)).toEqual({
        region,
        version: 1,
        layerVersionArn: arn,
        published: true,
        reason: null,
        parameter: { name: n.arnParameter, written: true },
        share: expect.objectContaining({
          arn: shares[0],
          resources: [parameterArn(region, n.historyParameter), parameterArn(region, n.arnParameter)],
        }),
        deleted: [],
      });
      // every request of a Region's work went to that Region
      expect(c.sent.every((s) => s.signedRegion === region)).toBe(true);
    }
    // the top-level fields keep describing the home Region
    expect(p).toMatchObject({
      version: 1,
      layerVersionArn: `arn:aws:lambda:${HOME}:${MOTO_ACCOUNT_ID}:layer:${n.pkg}:1`,
      published: true,
      share: { resources: [parameterArn(HOME, n.historyParameter), parameterArn(HOME, n.arnParameter)] },
    });
    expect(p?.warnings).toEqual([]);

    // moto accepts cross-Region input that AWS may not: check exactly what was sent, and where
    expect(w.home.inputs("CopyObjectCommand")).toEqual([]);
    for (const region of OTHERS) {
      const c = w.of(region);
      expect(c.sent.filter((s) => s.command === "CopyObjectCommand")).toEqual([
        {
          service: "s3",
          command: "CopyObjectCommand",
          input: {
            Bucket: buckets[region],
            Key: artifact.key,
            CopySource: `${homeBucket}/${artifact.key}`,
            MetadataDirective: "COPY",
            ChecksumAlgorithm: "SHA256",
          },
          signedRegion: region,
        },
      ]);
      const copy = await c.s3.send(new HeadObjectCommand({ Bucket: buckets[region], Key: artifact.key }));
      const original = await admin.s3.send(new HeadObjectCommand({ Bucket: homeBucket, Key: artifact.key }));
      expect(copy.Metadata).toEqual(original.Metadata);
      expect(copy.ContentLength).toBe(original.ContentLength);
    }
    // each Region publishes from the bucket in that Region
    for (const region of REGIONS) {
      expect(
        w
          .of(region)
          .inputs("PublishLayerVersionCommand")
          .map((i) => i.Content),
      ).toEqual([{ S3Bucket: buckets[region], S3Key: artifact.key }]);
    }
    // nothing was downloaded or re-uploaded by layer-sync
    const transfers = w.all.flatMap((c) => c.sent).filter((s) => /^(Get|Put)Object(Command)?$/.test(s.command));
    expect(transfers).toEqual([]);
  });

  it("changes nothing in any Region when the same artifact is published again", async () => {
    const n = names();
    await putArtifact(admin, { bucket: homeBucket, parameterPrefix: n.prefix, pkg: n.pkg, content: "r2" });
    await runPublish(config(n), one(n.pkg), deps(world()));

    const w = world();
    const again = await runPublish(config(n), one(n.pkg), deps(w));

    expect(again.packages[0]?.error).toBeUndefined();
    expect(again.packages[0]?.regions.map((r) => [r.region, r.version, r.published, r.reason])).toEqual(
      REGIONS.map((r) => [r, 1, false, "unchanged"]),
    );
    expect(w.all.flatMap((c) => c.writes())).toEqual([]);
    for (const region of REGIONS) expect(await versionsOf(w.of(region).lambda, n.pkg)).toHaveLength(1);
  });

  it("completes the other Regions when one fails, fails naming that Region, and a reconcile completes it without publishing again elsewhere", async () => {
    const n = names();
    const failing = world();
    failing.of("ap-southeast-2").lambda.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === "PublishLayerVersionCommand")
          throw awsFault("TooManyRequestsException", "Rate exceeded", 429);
        return next(args);
      },
      { step: "initialize" },
    );
    await putArtifact(admin, { bucket: homeBucket, parameterPrefix: n.prefix, pkg: n.pkg, content: "r3" });

    const broken = await runPublish(config(n), one(n.pkg), deps(failing));

    const [p] = broken.packages;
    expect(p?.error).toMatch(
      /^ap-southeast-2: lambda:PublishLayerVersion on layer \S+ from s3:\/\/\S+ failed \(TooManyRequestsException: Rate exceeded\); AWS throttled the request/,
    );
    expect(failureMessage(broken)).toMatch(
      new RegExp(`^1 of 1 package\\(s\\) failed to publish: ${n.pkg}: ap-southeast-2: `),
    );
    expect(p?.regions.map((r) => [r.region, r.version, r.error === undefined])).toEqual([
      ["us-east-1", 1, true],
      [HOME, 1, true],
      ["ap-southeast-2", null, false],
    ]);
    for (const region of ["us-east-1", HOME] as const) {
      expect((await parameterOf(failing.of(region).ssm, n.arnParameter))?.value).toMatch(`:${region}:`);
      expect(await sharesNamed(failing.of(region).ram, n.shareName)).toHaveLength(1);
    }
    expect(await parameterOf(failing.of("ap-southeast-2").ssm, n.arnParameter)).toBeUndefined();

    const healthy = world();
    const resumed = await runPublish(config(n), { kind: "reconcile" }, deps(healthy));

    expect(resumed.packages.map((x) => [x.name, x.error])).toEqual([[n.pkg, undefined]]);
    expect(resumed.packages[0]?.regions.map((r) => [r.region, r.version, r.published, r.reason])).toEqual([
      ["us-east-1", 1, false, "unchanged"],
      [HOME, 1, false, "unchanged"],
      ["ap-southeast-2", 1, true, null],
    ]);
    expect(healthy.of("us-east-1").writes()).toEqual([]);
    expect(healthy.home.writes()).toEqual([]);
    // the copy made before the failure is reused
    expect(healthy.all.flatMap((c) => c.inputs("CopyObjectCommand"))).toEqual([]);
    const ap = healthy.of("ap-southeast-2");
    expect(await versionsOf(ap.lambda, n.pkg)).toHaveLength(1);
    expect((await parameterOf(ap.ssm, n.arnParameter))?.value).toBe(
      `arn:aws:lambda:ap-southeast-2:${MOTO_ACCOUNT_ID}:layer:${n.pkg}:1`,
    );
    expect(await sharesNamed(ap.ram, n.shareName)).toHaveLength(1);
  });

  it("says a Region may not be enabled when its credentials are refused there", async () => {
    const n = names();
    const w = world();
    w.of("us-east-1").lambda.middlewareStack.add(
      () => async () => {
        throw awsFault("UnrecognizedClientException", "The security token included in the request is invalid", 403);
      },
      { step: "initialize" },
    );
    await putArtifact(admin, { bucket: homeBucket, parameterPrefix: n.prefix, pkg: n.pkg, content: "r4" });

    const summary = await runPublish(config(n), one(n.pkg), deps(w));

    const failed = summary.packages[0]?.regions.filter((r) => r.error !== undefined);
    expect(failed?.map((r) => r.region)).toEqual(["us-east-1"]);
    expect(failed?.[0]?.error).toMatch(/UnrecognizedClientException/);
    expect(failed?.[0]?.error).toMatch(
      /if us-east-1 is an opt-in Region, enable it for the account or remove it from PUBLISH_REGIONS$/,
    );
    expect(summary.packages[0]?.regions.filter((r) => r.version === 1)).toHaveLength(2);
  });

  it("fails only the Region whose REGION_BUCKETS bucket is in another Region, naming REGION_BUCKETS", async () => {
    const n = names();
    const w = world();
    await putArtifact(admin, { bucket: homeBucket, parameterPrefix: n.prefix, pkg: n.pkg, content: "r5" });
    const wrong = config(n, { REGION_BUCKETS: `us-east-1=${buckets["us-east-1"]},ap-southeast-2=${strayBucket}` });

    const summary = await runPublish(wrong, one(n.pkg), deps(w));

    const ap = summary.packages[0]?.regions.find((r) => r.region === "ap-southeast-2");
    expect(ap?.error).toBe(
      `REGION_BUCKETS (--region-bucket) maps ap-southeast-2 to bucket ${strayBucket}, which is in us-east-1; name a bucket in ap-southeast-2 (Lambda publishes a layer only from a bucket in its own Region)`,
    );
    expect(w.of("ap-southeast-2").inputs("CopyObjectCommand")).toEqual([]);
    expect(w.of("ap-southeast-2").inputs("PublishLayerVersionCommand")).toEqual([]);
    expect(summary.packages[0]?.regions.filter((r) => r.version === 1).map((r) => r.region)).toEqual([
      "us-east-1",
      HOME,
    ]);
  });
});

describe("retention in several Regions", () => {
  it("deletes versions beyond RETAIN_VERSIONS in every Region", async () => {
    const n = names();
    const cfg = config(n, { RETAIN_VERSIONS: "1" });
    for (const [i, content] of ["old", "new"].entries()) {
      await putArtifact(admin, { bucket: homeBucket, parameterPrefix: n.prefix, pkg: n.pkg, content, second: i });
      const summary = await runPublish(cfg, one(n.pkg), deps(world()));
      expect(summary.packages[0]?.error).toBeUndefined();
      expect(summary.packages[0]?.regions.map((r) => r.deleted)).toEqual(REGIONS.map(() => (i === 0 ? [] : [1])));
    }
    const w = world();
    for (const region of REGIONS) {
      expect((await versionsOf(w.of(region).lambda, n.pkg)).map((v) => v.version)).toEqual([2]);
      expect((await parameterOf(w.of(region).ssm, n.arnParameter))?.value).toMatch(new RegExp(`:${region}:.*:2$`));
    }
  });
});
