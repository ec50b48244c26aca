/**
 * The consumer inventory at scale (`npx tsx bench/consumers.ts [--runs N] [--latency MS,MS] [--out FILE]`):
 * on a moto server of its own, an organization of 50 member accounts, each with the read role and 4
 * functions in each of 2 Regions (400 functions, each with a version of the layer attached), read by the
 * `roles` source exactly as `layer-sync consumers` reads it (STS AssumeRole per account, ListFunctions per
 * account and Region, accounts 16 at a time, Regions 4 at a time).
 *
 * Every STS and Lambda request first waits `latency` ms (0: moto's own cost; 100: a round trip to AWS), so
 * the wall time reflects round trips rather than moto's CPU. Reported: wall time (median of the runs) and the
 * requests by API. `docs/performance.md` extrapolates to 500 accounts × 4 Regions from these counts and the
 * APIs' documented limits.
 */
import { writeFile } from "node:fs/promises";
import { CreateRoleCommand, IAMClient } from "@aws-sdk/client-iam";
import { CreateFunctionCommand, LambdaClient, PublishLayerVersionCommand } from "@aws-sdk/client-lambda";
import {
  CreateAccountCommand,
  CreateOrganizationCommand,
  OrganizationsClient as Organizations,
  type OrganizationsClient,
} from "@aws-sdk/client-organizations";
import { PutParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { AssumeRoleCommand, STSClient } from "@aws-sdk/client-sts";
import { loadConsumersConfig } from "../lib/common/config.ts";
import { type Credentials, inventoryReader, readConsumers } from "../lib/publish/consumers.ts";
import { MODE, ZIP_DATE } from "../lib/zip/folder-zip.ts";
import { zipToBuffer } from "../lib/zip/writer.ts";

const HOME = "eu-west-1";
const REGIONS = [HOME, "us-east-1"];
const ACCOUNTS = 50;
const PER_ACCOUNT_REGION = 4;
const READ_ROLE = "layer-sync-consumer-read";
const PKG = "bench-consumers";

export interface ConsumersBenchRow {
  latencyMs: number;
  wallMs: number;
  wallRangeMs: [number, number];
  requests: Record<string, number>;
  functionsFound: number;
  accountsRead: number;
  accountsFailed: number;
}

interface Meter {
  counts: Record<string, number>;
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
      const name = (context.commandName ?? "?").replace(/Command$/, "");
      meter.counts[name] = (meter.counts[name] ?? 0) + 1;
      if (latencyMs > 0) await new Promise((r) => setTimeout(r, latencyMs));
      return next(args);
    },
    { step: "initialize" },
  );
  return client;
}

const TRUST = JSON.stringify({
  Version: "2012-10-17",
  Statement: [{ Effect: "Allow", Principal: { AWS: "*" }, Action: "sts:AssumeRole" }],
});

async function credentialsIn(sts: STSClient, account: string): Promise<Credentials> {
  const res = await sts.send(
    new AssumeRoleCommand({
      RoleArn: `arn:aws:iam::${account}:role/OrganizationAccountAccessRole`,
      RoleSessionName: "bench-setup",
    }),
  );
  const c = res.Credentials;
  if (!c?.AccessKeyId || !c.SecretAccessKey) throw new Error("AssumeRole answered without credentials");
  return { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.SessionToken };
}

async function setUp(base: { endpoint: string; credentials: Credentials }, log: (line: string) => void) {
  const organizations: OrganizationsClient = new Organizations({ ...base, region: HOME });
  const sts = new STSClient({ ...base, region: HOME });
  const org = await organizations.send(new CreateOrganizationCommand({ FeatureSet: "ALL" }));
  const orgId = org.Organization?.Id ?? "";
  const layerArns: Record<string, string[]> = {};
  const empty = await zipToBuffer(
    [{ name: "python/x.py", mode: MODE.file, size: 1, content: Buffer.from("\n") }],
    ZIP_DATE,
  );
  for (const region of REGIONS) {
    const lambda = new LambdaClient({ ...base, region });
    const ssm = new SSMClient({ ...base, region });
    layerArns[region] = [];
    for (const n of [1, 2]) {
      const v = await lambda.send(
        new PublishLayerVersionCommand({
          LayerName: PKG,
          Content: { ZipFile: empty },
          Description: `acme/repo@abc123${n} layers/${PKG} sha256:00000000000${n}`,
          CompatibleRuntimes: ["python3.12"],
        }),
      );
      layerArns[region]?.push(v.LayerVersionArn ?? "");
    }
    await ssm.send(
      new PutParameterCommand({
        Name: `/bench/${PKG}/layer-version-arn`,
        Value: layerArns[region]?.[1] ?? "",
        Type: "String",
        Overwrite: true,
      }),
    );
    await ssm.send(
      new PutParameterCommand({ Name: `/bench/${PKG}/artifact-key`, Value: "k", Type: "String", Overwrite: true }),
    );
    lambda.destroy();
    ssm.destroy();
  }
  // the management account is read too (its read role is deployed as a plain stack: StackSets skip it)
  const homeIam = new IAMClient({ ...base, region: HOME });
  await homeIam.send(new CreateRoleCommand({ RoleName: READ_ROLE, AssumeRolePolicyDocument: TRUST }));
  homeIam.destroy();
  const code = await zipToBuffer(
    [{ name: "index.py", mode: MODE.file, size: 2, content: Buffer.from("#\n") }],
    ZIP_DATE,
  );
  for (let i = 0; i < ACCOUNTS; i++) {
    const created = await organizations.send(
      new CreateAccountCommand({ AccountName: `bench-${i}`, Email: `bench-${i}@example.com` }),
    );
    const account = created.CreateAccountStatus?.AccountId ?? "";
    const credentials = await credentialsIn(sts, account);
    const iam = new IAMClient({ ...base, credentials, region: HOME });
    await iam.send(new CreateRoleCommand({ RoleName: READ_ROLE, AssumeRolePolicyDocument: TRUST }));
    iam.destroy();
    for (const region of REGIONS) {
      const lambda = new LambdaClient({ ...base, credentials, region });
      for (let f = 0; f < PER_ACCOUNT_REGION; f++) {
        await lambda.send(
          new CreateFunctionCommand({
            FunctionName: `fn-${i}-${f}`,
            Role: `arn:aws:iam::${account}:role/OrganizationAccountAccessRole`,
            Runtime: "python3.12",
            Handler: "index.handler",
            Code: { ZipFile: code },
            Layers: [layerArns[region]?.[f % 2] ?? ""],
          }),
        );
      }
      lambda.destroy();
    }
    if ((i + 1) % 10 === 0) log(`  ${i + 1} accounts set up`);
  }
  organizations.destroy();
  sts.destroy();
  return orgId;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

export async function runConsumersBench(options: {
  endpoint: string;
  runs: number;
  latencies: number[];
  log?: (line: string) => void;
}): Promise<ConsumersBenchRow[]> {
  const log = options.log ?? (() => undefined);
  const base = { endpoint: options.endpoint, credentials: { accessKeyId: "testing", secretAccessKey: "testing" } };
  log(`setting up ${ACCOUNTS} accounts × ${REGIONS.length} Regions, ${PER_ACCOUNT_REGION} functions each …`);
  const orgId = await setUp(base, log);
  const config = loadConsumersConfig({
    env: {
      PARAMETER_PREFIX: "/bench",
      SHARE_ORGANIZATION_ID: orgId,
      PUBLISH_REGIONS: REGIONS.join(","),
      CONSUMER_SOURCE: "roles",
    },
  });
  const rows: ConsumersBenchRow[] = [];
  for (const latencyMs of options.latencies) {
    const walls: number[] = [];
    let last: Omit<ConsumersBenchRow, "latencyMs" | "wallMs" | "wallRangeMs"> | undefined;
    for (let run = 0; run < options.runs; run++) {
      const meter: Meter = { counts: {} };
      const organizations = instrument(new Organizations({ ...base, region: HOME }), meter, latencyMs);
      const sts = instrument(new STSClient({ ...base, region: HOME }), meter, latencyMs);
      const home = {
        lambda: new LambdaClient({ ...base, region: HOME }),
        ssm: new SSMClient({ ...base, region: HOME }),
      };
      const other = {
        lambda: new LambdaClient({ ...base, region: "us-east-1" }),
        ssm: new SSMClient({ ...base, region: "us-east-1" }),
      };
      const reader = inventoryReader(
        config,
        {
          organizations,
          sts,
          lambdaAs: (region, credentials) =>
            instrument(new LambdaClient({ endpoint: options.endpoint, region, credentials }), meter, latencyMs),
          configAs: () => {
            throw new Error("not used");
          },
          sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
        },
        async () => [PKG],
      );
      if (!reader) throw new Error("no reader");
      const started = performance.now();
      const report = await readConsumers(
        config,
        { packages: [PKG] },
        {
          ssm: home.ssm,
          region: HOME,
          regionClients: (r) => (r === HOME ? home : other),
          inventory: reader,
          owner: "123456789012",
        },
      );
      walls.push(performance.now() - started);
      last = {
        requests: meter.counts,
        functionsFound: report.packages[0]?.regions.reduce((n, r) => n + r.functions.length, 0) ?? 0,
        accountsRead: report.accounts.read,
        accountsFailed: report.accounts.failed.length,
      };
      for (const c of [organizations, sts, home.lambda, home.ssm, other.lambda, other.ssm]) c.destroy();
    }
    const row = {
      latencyMs,
      wallMs: Math.round(median(walls)),
      wallRangeMs: [Math.round(Math.min(...walls)), Math.round(Math.max(...walls))] as [number, number],
      ...(last ?? { requests: {}, functionsFound: 0, accountsRead: 0, accountsFailed: 0 }),
    };
    log(`  latency ${latencyMs} ms: ${row.wallMs} ms, ${JSON.stringify(row.requests)}`);
    rows.push(row);
  }
  return rows;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const value = (flag: string) => {
    const i = args.indexOf(flag);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const runs = Number(value("--runs") ?? 3);
  const latencies = (value("--latency") ?? "0,100").split(",").map(Number);
  const out = value("--out") ?? "bench/results/consumers.json";
  const { startMoto } = await import("../test/support/moto.global.ts");
  const log = (line: string) => process.stderr.write(`${line}\n`);
  log("starting moto …");
  const moto = await startMoto();
  try {
    const rows = await runConsumersBench({ endpoint: moto.endpoint, runs, latencies, log });
    const result = {
      accounts: ACCOUNTS,
      regions: REGIONS.length,
      functions: ACCOUNTS * REGIONS.length * PER_ACCOUNT_REGION,
      runs,
      rows,
    };
    await writeFile(out, `${JSON.stringify(result, null, 2)}\n`);
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    await moto.stop();
  }
}

if (process.argv[1]?.endsWith("bench/consumers.ts")) await main();
