/**
 * Rolling a package back across 4 Regions (`npx tsx bench/rollback.ts [--runs N] [--latency MS]`), on a moto
 * server of its own. Each run publishes two versions of a fresh package in eu-west-1, us-east-1,
 * ap-southeast-2 and eu-central-1 (not measured), then measures one `runRollback` to the previous version:
 * its wall time and the requests it sent per Region (every client counts what it sends). Every request
 * waits `latency` ms first, so the figure reflects round trips to AWS rather than moto's CPU.
 *
 * Targets (issue 22): under 10 s for 4 Regions, at most 5 API calls per Region.
 * Prints a JSON report and writes it to bench/results/rollback.json.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { LambdaClient } from "@aws-sdk/client-lambda";
import { OrganizationsClient } from "@aws-sdk/client-organizations";
import { RAMClient } from "@aws-sdk/client-ram";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { PutParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { ARTIFACT_FORMAT, artifactKey, uploadArtifact } from "../lib/artifacts/store.ts";
import { artifactKeyParameter, loadPublishConfig } from "../lib/common/config.ts";
import { runPublish } from "../lib/publish/publish.ts";
import { runRollback } from "../lib/publish/rollback.ts";
import { MODE, ZIP_DATE } from "../lib/zip/folder-zip.ts";
import { zipToBuffer } from "../lib/zip/writer.ts";

const HOME = "eu-west-1";
const FOUR = [HOME, "us-east-1", "ap-southeast-2", "eu-central-1"];

interface Counted {
  middlewareStack: {
    add(
      m: (next: (a: unknown) => Promise<unknown>) => (a: unknown) => Promise<unknown>,
      o: { step: "initialize" },
    ): void;
  };
}

function meter<T extends object>(client: T, counts: Record<string, number>, region: string, latencyMs: number): T {
  (client as unknown as Counted).middlewareStack.add(
    (next) => async (args) => {
      counts[region] = (counts[region] ?? 0) + 1;
      if (latencyMs) await new Promise((r) => setTimeout(r, latencyMs));
      return next(args);
    },
    { step: "initialize" },
  );
  return client;
}

function clientsFor(region: string, counts: Record<string, number>, latencyMs: number) {
  return {
    lambda: meter(new LambdaClient({ region }), counts, region, latencyMs),
    s3: meter(new S3Client({ region }), counts, region, latencyMs),
    ssm: meter(new SSMClient({ region }), counts, region, latencyMs),
    ram: meter(new RAMClient({ region }), counts, region, latencyMs),
  };
}

async function putArtifact(s3: S3Client, ssm: SSMClient, bucket: string, prefix: string, pkg: string, second: number) {
  const content = randomBytes(64);
  const zip = await zipToBuffer([{ name: "python/mod.py", mode: MODE.file, size: content.length, content }], ZIP_DATE);
  const sha256 = createHash("sha256").update(zip).digest("hex");
  const commit = createHash("sha1").update(content).digest("hex");
  const key = artifactKey("layers/", pkg, new Date(Date.UTC(2026, 11, 1, 10, 0, second)), commit);
  const dir = await mkdtemp(join(tmpdir(), "bench-rollback-"));
  try {
    await writeFile(join(dir, "l.zip"), zip);
    await uploadArtifact(s3, {
      bucket,
      key,
      file: join(dir, "l.zip"),
      metadata: { commit, source: `github:acme/l:${pkg}`, contentSha256: sha256, files: 1, format: ARTIFACT_FORMAT },
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  await ssm.send(
    new PutParameterCommand({ Name: artifactKeyParameter(prefix, pkg), Value: key, Type: "String", Overwrite: true }),
  );
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: "string" }, latency: { type: "string" } } });
  const runs = Number(values.runs ?? 3);
  const latencyMs = Number(values.latency ?? 20);
  const { startMoto } = await import("../test/support/moto.global.ts");
  const moto = await startMoto();
  process.env.AWS_ENDPOINT_URL = moto.endpoint;
  process.env.AWS_ACCESS_KEY_ID = "testing";
  process.env.AWS_SECRET_ACCESS_KEY = "testing";
  process.env.AWS_REGION = HOME;
  try {
    const buckets: Record<string, string> = {};
    for (const region of FOUR) {
      const bucket = `bench-rollback-${region}-${randomBytes(4).toString("hex")}`;
      const s3 = new S3Client({ region });
      await s3.send(
        new CreateBucketCommand({
          Bucket: bucket,
          ...(region === "us-east-1"
            ? {}
            : { CreateBucketConfiguration: { LocationConstraint: region as "eu-west-1" } }),
        }),
      );
      s3.destroy();
      buckets[region] = bucket;
    }
    const rows: { wallMs: number; requests: Record<string, number>; failures: number }[] = [];
    for (let run = 0; run < runs; run++) {
      const prefix = `/bench-rb-${randomBytes(4).toString("hex")}`;
      const pkg = `py-${randomBytes(4).toString("hex")}`;
      const config = loadPublishConfig({
        env: {
          ARTIFACT_BUCKET: buckets[HOME],
          PARAMETER_PREFIX: prefix,
          SHARE_ACCOUNT_IDS: "111122223333",
          PUBLISH_REGIONS: FOUR.join(","),
          REGION_BUCKETS: FOUR.filter((r) => r !== HOME)
            .map((r) => `${r}=${buckets[r]}`)
            .join(","),
        },
      });
      const setup: Record<string, number> = {};
      const home = clientsFor(HOME, setup, 0);
      const organizations = new OrganizationsClient({});
      const regional = new Map(FOUR.map((r) => [r, clientsFor(r, setup, 0)]));
      for (const second of [0, 1]) {
        await putArtifact(home.s3, home.ssm, buckets[HOME] ?? "", prefix, pkg, second);
        await runPublish(
          config,
          { kind: "packages", packages: [pkg], trigger: "manual" },
          {
            ...home,
            organizations,
            clock: () => new Date(),
            region: HOME,
            regionClients: (r) => regional.get(r) ?? home,
          },
        );
      }
      const counts: Record<string, number> = {};
      const measured = new Map(FOUR.map((r) => [r, clientsFor(r, counts, latencyMs)]));
      const homeMeasured = measured.get(HOME) ?? home;
      const started = performance.now();
      const summary = await runRollback(
        config,
        { package: pkg },
        {
          ...homeMeasured,
          organizations,
          clock: () => new Date(),
          region: HOME,
          regionClients: (r) => measured.get(r) ?? homeMeasured,
        },
      );
      rows.push({
        wallMs: Math.round(performance.now() - started),
        requests: counts,
        failures: summary.regions.filter((r) => r.error !== undefined || !r.changed).length,
      });
      for (const set of [...regional.values(), ...measured.values()]) for (const c of Object.values(set)) c.destroy();
      organizations.destroy();
    }
    const walls = rows.map((r) => r.wallMs).sort((a, b) => a - b);
    const median = walls[Math.floor(walls.length / 2)] ?? 0;
    const most = Math.max(...rows.flatMap((r) => Object.values(r.requests)));
    const report = {
      regions: FOUR,
      runs,
      latencyMs,
      medianWallMs: median,
      wallRangeMs: [walls[0], walls.at(-1)],
      mostRequestsInARegion: most,
      rows,
      targets: [
        { name: "4 Regions in under 10 s", pass: median < 10_000, detail: `${median} ms median` },
        { name: "at most 5 API calls per Region", pass: most <= 5, detail: `${most} at most` },
        { name: "every Region rolled back", pass: rows.every((r) => r.failures === 0), detail: "" },
      ],
    };
    const text = `${JSON.stringify(report, null, 2)}\n`;
    await mkdir("bench/results", { recursive: true });
    await writeFile("bench/results/rollback.json", text);
    process.stdout.write(text);
  } finally {
    await moto.stop();
  }
}

await main();
