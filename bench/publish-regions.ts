/**
 * Publishing to 1 and to 4 Regions (`npm run bench`, after the sync rows; `--no-publish` or `--no-aws` skip it).
 *
 * Each measured run publishes fresh packages (new parameter prefix, new layer names) on moto: in one Region
 * (the home one, eu-west-1) or in four (eu-west-1, us-east-1, ap-southeast-2, eu-central-1, the other three
 * through a server-side copy into their buckets). Every AWS request waits `latencyMs` first, like the
 * emulators' source latency, so that the figure reflects round trips to AWS rather than moto's CPU.
 *
 * Targets: the 4-Region wall time is at most 1.5× the 1-Region wall time, and the function moves 0 bytes
 * itself (GetObject response bytes plus PutObject/UploadPart request bytes, counted on every client).
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LambdaClient } from "@aws-sdk/client-lambda";
import { OrganizationsClient } from "@aws-sdk/client-organizations";
import { RAMClient } from "@aws-sdk/client-ram";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { PutParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import JSZip from "jszip";
import { ARTIFACT_FORMAT, artifactKey, uploadArtifact } from "../lib/artifacts/store.ts";
import { artifactKeyParameter, loadPublishConfig } from "../lib/common/config.ts";
import { type RegionClients, runPublish } from "../lib/publish/publish.ts";

const HOME = "eu-west-1";
const FOUR = [HOME, "us-east-1", "ap-southeast-2", "eu-central-1"];

export interface PublishBenchOptions {
  endpoint: string;
  runs: number;
  latencyMs: number;
  packages?: number;
  zipBytes?: number;
  log?: (line: string) => void;
}

export interface PublishBenchRow {
  regions: number;
  /** Median wall time of the measured runs, ms. */
  wallMs: number;
  wallRangeMs: [number, number];
  /** Bytes the function itself downloaded (GetObject) or uploaded (PutObject, UploadPart). */
  transferredBytes: number;
  copyRequests: number;
  failures: number;
}

export interface PublishBenchReport {
  packages: number;
  zipBytes: number;
  latencyMs: number;
  rows: PublishBenchRow[];
  ratio: number;
  targets: { name: string; pass: boolean; detail: string }[];
}

interface Meter {
  transferred: number;
  copies: number;
}

interface Sendable {
  middlewareStack: {
    add(
      mw: (
        next: (args: { input: object }) => Promise<{ output: object }>,
        context: { commandName?: string },
      ) => (args: { input: object }) => Promise<{ output: object }>,
      options: { step: "initialize" },
    ): void;
  };
}

function instrument<T>(client: T, meter: Meter, latencyMs: number): T {
  (client as unknown as Sendable).middlewareStack.add(
    (next, context) => async (args) => {
      if (latencyMs > 0) await new Promise((r) => setTimeout(r, latencyMs));
      const name = context.commandName ?? "";
      const input = args.input as { Body?: unknown };
      if ((name === "PutObjectCommand" || name === "UploadPartCommand") && input.Body instanceof Uint8Array)
        meter.transferred += input.Body.byteLength;
      if (name === "CopyObjectCommand") meter.copies++;
      const out = await next(args);
      if (name === "GetObjectCommand")
        meter.transferred += (out.output as { ContentLength?: number }).ContentLength ?? 0;
      return out;
    },
    { step: "initialize" },
  );
  return client;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

/** Measure publishing to 1 and 4 Regions on the moto server at `endpoint`. */
export async function runPublishBench(options: PublishBenchOptions): Promise<PublishBenchReport> {
  const log = options.log ?? (() => undefined);
  const packages = options.packages ?? 3;
  const zipBytes = options.zipBytes ?? 4 * 1024 * 1024;
  const base = {
    endpoint: options.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: "testing", secretAccessKey: "testing" },
  };
  const admin = { s3: new S3Client({ ...base, region: HOME }), ssm: new SSMClient({ ...base, region: HOME }) };
  const tag = randomBytes(4).toString("hex");
  const buckets: Record<string, string> = {};
  const dir = await mkdtemp(join(tmpdir(), "layer-sync-bench-publish-"));
  try {
    for (const region of FOUR) {
      const bucket = `bench-publish-${region}-${tag}`;
      const s3 = new S3Client({ ...base, region });
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
    const rows: PublishBenchRow[] = [];
    for (const regions of [[HOME], FOUR]) {
      const walls: number[] = [];
      let transferred = 0;
      let copies = 0;
      let failures = 0;
      for (let run = 0; run < options.runs; run++) {
        const prefix = `/bench-${tag}-${regions.length}-${run}`;
        const names = Array.from({ length: packages }, (_, i) => `bench-${tag}-${regions.length}r${run}p${i}`);
        for (const [i, pkg] of names.entries()) await seed(admin, buckets[HOME] ?? "", prefix, pkg, zipBytes, i, dir);
        const meter: Meter = { transferred: 0, copies: 0 };
        const make = (region: string): RegionClients => ({
          lambda: instrument(new LambdaClient({ ...base, region }), meter, options.latencyMs),
          s3: instrument(new S3Client({ ...base, region }), meter, options.latencyMs),
          ssm: instrument(new SSMClient({ ...base, region }), meter, options.latencyMs),
          ram: instrument(new RAMClient({ ...base, region }), meter, options.latencyMs),
        });
        const regional = new Map(regions.map((r) => [r, make(r)]));
        const home = regional.get(HOME) as RegionClients;
        const organizations = instrument(new OrganizationsClient({ ...base, region: HOME }), meter, options.latencyMs);
        const config = loadPublishConfig({
          env: {
            ARTIFACT_BUCKET: buckets[HOME],
            PARAMETER_PREFIX: prefix,
            SHARE_ACCOUNT_IDS: "111122223333",
            PUBLISH_REGIONS: regions.join(","),
            REGION_BUCKETS: regions
              .filter((r) => r !== HOME)
              .map((r) => `${r}=${buckets[r]}`)
              .join(","),
          },
        });
        const started = performance.now();
        const summary = await runPublish(
          config,
          { kind: "packages", packages: names, trigger: "manual" },
          {
            ...home,
            organizations,
            region: HOME,
            regionClients: (r) => regional.get(r) as RegionClients,
            clock: () => new Date(),
          },
        );
        walls.push(performance.now() - started);
        failures += summary.packages.filter((p) => p.error !== undefined).length;
        transferred += meter.transferred;
        copies += meter.copies;
        for (const set of regional.values()) for (const c of Object.values(set)) c.destroy();
        organizations.destroy();
      }
      const row: PublishBenchRow = {
        regions: regions.length,
        wallMs: Math.round(median(walls)),
        wallRangeMs: [Math.round(Math.min(...walls)), Math.round(Math.max(...walls))],
        transferredBytes: transferred,
        copyRequests: copies,
        failures,
      };
      log(`publish to ${row.regions} Region(s): ${row.wallMs} ms, ${row.transferredBytes} bytes moved by layer-sync`);
      rows.push(row);
    }
    const [one, four] = rows;
    const ratio = one && four && one.wallMs > 0 ? four.wallMs / one.wallMs : Number.NaN;
    return {
      packages,
      zipBytes,
      latencyMs: options.latencyMs,
      rows,
      ratio,
      targets: [
        { name: "4 Regions ≤ 1.5× the wall time of 1 Region", pass: ratio <= 1.5, detail: `${ratio.toFixed(2)}×` },
        {
          name: "0 bytes re-uploaded by the function",
          pass: rows.every((r) => r.transferredBytes === 0),
          detail: `${rows.reduce((n, r) => n + r.transferredBytes, 0)} bytes`,
        },
        { name: "every run succeeded", pass: rows.every((r) => r.failures === 0), detail: "" },
      ],
    };
  } finally {
    for (const c of Object.values(admin)) c.destroy();
    await rm(dir, { recursive: true, force: true });
  }
}

/** A stored (uncompressed) zip of `bytes` random bytes, uploaded like the sync does, and its pointer. */
async function seed(
  admin: { s3: S3Client; ssm: SSMClient },
  bucket: string,
  prefix: string,
  pkg: string,
  bytes: number,
  second: number,
  dir: string,
): Promise<void> {
  const zip = new JSZip();
  zip.file("python/blob.bin", randomBytes(bytes), { date: new Date(Date.UTC(2026, 0, 1)) });
  const body = await zip.generateAsync({ type: "uint8array", compression: "STORE" });
  const sha256 = createHash("sha256").update(body).digest("hex");
  const commit = createHash("sha1").update(pkg).digest("hex");
  const key = artifactKey("layers/", pkg, new Date(Date.UTC(2026, 10, 21, 10, 0, second)), commit);
  const file = join(dir, `${pkg}.zip`);
  await writeFile(file, body);
  await uploadArtifact(admin.s3, {
    bucket,
    key,
    file,
    metadata: {
      commit,
      source: `github:bench/layers:layers/${pkg}`,
      contentSha256: sha256,
      files: 1,
      format: ARTIFACT_FORMAT,
    },
  });
  await admin.ssm.send(
    new PutParameterCommand({ Name: artifactKeyParameter(prefix, pkg), Value: key, Type: "String", Overwrite: true }),
  );
}

export function renderPublishText(report: PublishBenchReport): string {
  const lines = [
    `publish: ${report.packages} packages of ${(report.zipBytes / 1048576).toFixed(1)} MiB, ${report.latencyMs} ms per AWS request`,
    ...report.rows.map(
      (r) =>
        `  ${r.regions} Region(s)  ${r.wallMs} ms (${r.wallRangeMs[0]}–${r.wallRangeMs[1]})  moved by layer-sync ${r.transferredBytes} B  CopyObject ${r.copyRequests}  failures ${r.failures}`,
    ),
    ...report.targets.map((t) => `  ${t.pass ? "PASS" : "FAIL"} ${t.name}${t.detail ? `: ${t.detail}` : ""}`),
  ];
  return `${lines.join("\n")}\n`;
}
