import { LambdaClient } from "@aws-sdk/client-lambda";
import { S3Client } from "@aws-sdk/client-s3";
import { PutParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../cli/main.ts";
import { NOT_SHARED_NOTE, type StatusReport } from "../../lib/publish/status.ts";
import { createBucket, MOTO_ACCOUNT_ID, uniqueName } from "../support/aws.ts";
import { putArtifact, versionsOf } from "../support/publish-fixtures.ts";

const REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"];
const admin = { s3: new S3Client({}), ssm: new SSMClient({}) };
const apse2 = {
  ssm: new SSMClient({ region: "ap-southeast-2" }),
  lambda: new LambdaClient({ region: "ap-southeast-2" }),
};
let flags: string[];
let prefix: string;

beforeAll(async () => {
  const bucket = await createBucket(uniqueName("st-home"));
  const use1 = await createBucket(uniqueName("st-use1"), "us-east-1");
  const ap = await createBucket(uniqueName("st-apse2"), "ap-southeast-2");
  prefix = `/${uniqueName("st")}`;
  flags = ["--bucket", bucket, "--parameter-prefix", prefix, "--regions", REGIONS.join(",")];
  flags.push("--region-bucket", `us-east-1=${use1}`, "--region-bucket", `ap-southeast-2=${ap}`);
});

afterAll(() => {
  for (const c of [...Object.values(admin), ...Object.values(apse2)]) c.destroy();
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

describe("layer-sync status in three Regions", () => {
  let pkg: string;

  beforeAll(async () => {
    pkg = uniqueName("stp");
    const artifact = await putArtifact(admin, {
      bucket: flags[1] as string,
      parameterPrefix: prefix,
      pkg,
      content: "status",
    });
    expect(artifact.key).toMatch(/^layers\//);
    const published = await cli(["publish", "--json", "--package", pkg, ...flags]);
    expect(published.stderr).toBe("");
    expect(published.code).toBe(0);
  });

  it("reports every package in every Region as JSON and exits 0 when all is in step", async () => {
    const r = await cli(["status", "--json", ...flags]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as StatusReport;
    expect(report.packages.map((p) => p.name)).toEqual([pkg]);
    const [p] = report.packages;
    expect(p?.artifactKey).toMatch(new RegExp(`^layers/${pkg}/${pkg}-`));
    expect(p?.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(p?.regions.map((s) => [s.region, s.version, s.layerVersionArn, s.parameterMatches, s.outOfStep])).toEqual(
      REGIONS.map((region) => [region, 1, `arn:aws:lambda:${region}:${MOTO_ACCOUNT_ID}:layer:${pkg}:1`, true, false]),
    );
    // published and read without any SHARE_* setting: in step, with a note that nothing is shared
    expect(p?.regions.map((s) => s.notes)).toEqual(REGIONS.map(() => [NOT_SHARED_NOTE]));
  });

  it("marks a Region that is out of step with what to run, with the flags in force, exits 3, and writes nothing", async () => {
    const arnName = `${prefix}/${pkg}/layer-version-arn`;
    await apse2.ssm.send(
      new PutParameterCommand({
        Name: arnName,
        Value: "arn:aws:lambda:ap-southeast-2:123456789012:layer:x:9",
        Type: "String",
        Overwrite: true,
        Tier: "Advanced",
      }),
    );

    const json = await cli(["status", "--json", "--package", pkg, ...flags]);
    expect(json.code).toBe(3);
    const report = JSON.parse(json.stdout) as StatusReport;
    expect(report.packages[0]?.regions.map((s) => [s.region, s.outOfStep])).toEqual([
      ["us-east-1", false],
      ["eu-west-1", false],
      ["ap-southeast-2", true],
    ]);

    // the fix carries the setting flags of this run that publish reads, in schema order
    const bucket = flags[1] as string;
    const fix = ["layer-sync", "publish", "--package", pkg, "--bucket", bucket, "--parameter-prefix", prefix];
    fix.push(
      "--regions",
      REGIONS.join(","),
      "--region-bucket",
      flags[7] as string,
      "--region-bucket",
      flags[9] as string,
    );
    const bad = report.packages[0]?.regions[2];
    expect(bad?.fixCommands).toEqual([fix]);
    expect(bad?.fix).toBe(fix.join(" "));

    const human = await cli(["status", "--package", pkg, ...flags]);
    expect(human.code).toBe(3);
    const lines = human.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^ +PACKAGE +REGION +VERSION +PARAMETER/);
    expect(lines.filter((l) => l.startsWith("○ ") && l.includes(pkg))).toHaveLength(2);
    expect(lines.filter((l) => l.startsWith("✗"))).toEqual([expect.stringMatching(/ap-southeast-2 .*names/)]);
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(160);
    // below the table: the Region's full problem and the command, its continuation lines joined
    const below = lines.slice(lines.indexOf("") + 1).join("\n");
    expect(below).toContain(`${pkg} in ap-southeast-2 is out of step:\n  - ${arnName} names`);
    expect(below.replace(/ \\\n +/g, " ")).toContain(`→ run: ${fix.join(" ")}\n`);
    // read-only: still one version there
    expect((await versionsOf(apse2.lambda, pkg)).map((v) => v.version)).toEqual([1]);

    // followed exactly, the hint publishes in every Region of this run, and status is in step again
    const followed = await cli([...fix.slice(1), "--json"]);
    expect(followed.stderr).toBe("");
    expect(followed.code).toBe(0);
    expect((await cli(["status", "--package", pkg, ...flags])).code).toBe(0);
  });

  it("accepts only its own flags", async () => {
    // a publish setting status reads (sharing decides whether a share must hold the parameter)
    const r = await cli(["status", "--retain", "3", ...flags]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const wrong = await cli(["status", "--out", "dir"]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/^layer-sync: --out is not a flag of status; it belongs to sync\n/);
  });
});

describe("status with and without the share settings", () => {
  const ACCOUNT = "111122223333";

  it("notes a layer published without sharing instead of passing it, marks it out of step with the share flags, and the hint shares it", async () => {
    const bucket = flags[1] as string;
    const home = ["--bucket", bucket, "--parameter-prefix", `/${uniqueName("sts")}`];
    const pkg = uniqueName("shr");
    await putArtifact(admin, { bucket, parameterPrefix: home[3] as string, pkg, content: "share" });
    // published without the share settings: shared with nobody
    expect((await cli(["publish", "--package", pkg, ...home])).code).toBe(0);

    const unshared = await cli(["status", "--package", pkg, ...home]);
    expect(unshared.code).toBe(0);
    const lines = unshared.stdout.trimEnd().split("\n");
    expect(lines[1]).toMatch(new RegExp(`^○ +${pkg} .*${NOT_SHARED_NOTE.replace("*", "\\*")}$`));
    expect(lines.some((l) => l.startsWith("✓"))).toBe(false);
    expect(lines.at(-1)).toMatch(/^○ in step, but sharing was not checked: no SHARE_\* setting in force/);

    const sharing = ["--share-account", ACCOUNT, "--share-account", "444455556666"];
    const checked = await cli(["status", "--json", "--package", pkg, ...home, ...sharing]);
    expect(checked.code).toBe(3);
    const [region] = (JSON.parse(checked.stdout) as StatusReport).packages[0]?.regions ?? [];
    expect(region?.notes).toBeUndefined();
    expect(region?.problems).toEqual([`the RAM share does not hold ${home[3]}/${pkg}/layer-version-arn`]);
    const fix = region?.fixCommands?.[0] ?? [];
    expect(fix).toEqual(["layer-sync", "publish", "--package", pkg, ...home, ...sharing]);

    expect((await cli(fix.slice(1))).code).toBe(0);
    const after = await cli(["status", "--package", pkg, ...home, ...sharing]);
    expect(after.code).toBe(0);
    expect(after.stdout.trimEnd().split("\n")[1]).toMatch(new RegExp(`^✓ +${pkg} .*${ACCOUNT}`));
  });
});

describe("status and publish with control characters in SSM values", () => {
  // an escape sequence (red), a carriage return, a line feed, the bell and a C1 CSI
  const HOSTILE = "\x1b[31m\r\n\x07\x9b2J";
  // biome-ignore lint/suspicious/noControlCharactersInRegex: what must never be printed
  const RAW = /[\x00-\x09\x0b-\x1f\x7f-\x9f]/;
  let home: string[];
  let pkg: string;

  beforeAll(async () => {
    const bucket = flags[1] as string;
    const ownPrefix = `/${uniqueName("stc")}`;
    home = ["--bucket", bucket, "--parameter-prefix", ownPrefix];
    pkg = uniqueName("ctl");
    await putArtifact(admin, { bucket, parameterPrefix: ownPrefix, pkg, content: "control" });
    expect((await cli(["publish", "--package", pkg, ...home])).code).toBe(0);
    // the ARN parameter and the pointer now hold terminal control sequences
    for (const [name, value] of [
      [`${ownPrefix}/${pkg}/layer-version-arn`, `arn:aws:lambda:eu-west-1:123456789012:layer:x:9${HOSTILE}`],
      [`${ownPrefix}/${pkg}/artifact-key`, `layers/${pkg}/${pkg}-20261121T100000Z${HOSTILE}.zip`],
    ] as const) {
      await admin.ssm.send(
        new PutParameterCommand({ Name: name, Value: value, Type: "String", Overwrite: true, Tier: "Advanced" }),
      );
    }
  });

  /** Every line of the output is a line of the table or of the error: no raw control character anywhere. */
  function clean(text: string): void {
    expect(text).not.toMatch(RAW);
    expect(text).not.toContain("\x1b");
  }

  it("status prints them escaped in the table, and as JSON that parses back to the values", async () => {
    const human = await cli(["status", "--package", pkg, ...home]);
    expect(human.code).toBe(3);
    clean(human.stdout);
    const lines = human.stdout.trimEnd().split("\n");
    // the header and the one Region, then its problem and fix below: no line broken by the value
    expect(lines[2]).toBe("");
    expect(lines[3]).toBe(`${pkg} in eu-west-1 is out of step:`);
    const problem = /^ {2}- .*layer:x:9\\x1b\[31m\\x0d\\x0a\\x07\\x9b2J$/;
    expect(lines.slice(4).filter((l) => problem.test(l))).toHaveLength(1);
    expect(lines.at(-1)).toMatch(/^ {2}→ run: layer-sync publish --package /);

    const json = await cli(["status", "--json", "--package", pkg, ...home]);
    clean(json.stdout);
    const report = JSON.parse(json.stdout) as StatusReport;
    expect(report.packages[0]?.artifactKey).toBe(`layers/${pkg}/${pkg}-20261121T100000Z${HOSTILE}.zip`);
  });

  it("publish prints the failure escaped, on one line of stderr and in the table", async () => {
    const r = await cli(["publish", "--package", pkg, ...home]);
    expect(r.code).toBe(1);
    clean(r.stdout);
    clean(r.stderr);
    expect(r.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain("20261121T100000Z\\x1b[31m\\x0d\\x0a\\x07\\x9b2J.zip");
    const json = await cli(["publish", "--json", "--package", pkg, ...home]);
    clean(json.stdout);
    const summary = JSON.parse(json.stdout) as { packages: { key: string; error: string }[] };
    expect(summary.packages[0]?.key).toBe(`layers/${pkg}/${pkg}-20261121T100000Z${HOSTILE}.zip`);
    // the error quotes the key escaped, like the sync's errors quote names
    expect(summary.packages[0]?.error).toContain("20261121T100000Z\\x1b[31m\\x0d\\x0a\\x07\\x9b2J.zip");
  });
});
