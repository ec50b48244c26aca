import {
  CreateEventBusCommand,
  EventBridgeClient,
  PutRuleCommand,
  PutTargetsCommand,
} from "@aws-sdk/client-eventbridge";
import { S3Client } from "@aws-sdk/client-s3";
import { SSMClient } from "@aws-sdk/client-ssm";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../cli/main.ts";
import { publishHandler } from "../../handlers/publish.ts";
import { createBucket, MOTO_ACCOUNT_ID, uniqueName } from "../support/aws.ts";
import { createQueue, receiveAll } from "../support/moto-api.ts";
import { putArtifact } from "../support/publish-fixtures.ts";
import { captureIo } from "../support/zip.ts";

const REGION = "eu-west-1";
const SETTINGS = ["ARTIFACT_BUCKET", "PARAMETER_PREFIX", "SHARE_ACCOUNT_IDS", "SUMMARY_EVENT_BUS"];
const admin = { s3: new S3Client({}), ssm: new SSMClient({}), events: new EventBridgeClient({}) };
let bucket: string;

beforeAll(async () => {
  bucket = await createBucket(uniqueName("release-events"));
});

afterEach(() => {
  for (const name of SETTINGS) delete process.env[name];
});

afterAll(() => {
  for (const client of Object.values(admin)) client.destroy();
});

/** A bus whose "Layer Sync Release" events land in a new queue, as a consumer team would subscribe. */
async function subscribedQueue(): Promise<{ bus: string; url: string }> {
  const bus = uniqueName("releases");
  await admin.events.send(new CreateEventBusCommand({ Name: bus }));
  const rule = uniqueName("release-rule");
  await admin.events.send(
    new PutRuleCommand({
      Name: rule,
      EventBusName: bus,
      EventPattern: JSON.stringify({ source: ["layer-sync"], "detail-type": ["Layer Sync Release"] }),
    }),
  );
  const queue = await createQueue(REGION, uniqueName("release-queue"));
  await admin.events.send(
    new PutTargetsCommand({ Rule: rule, EventBusName: bus, Targets: [{ Id: "queue", Arn: queue.arn }] }),
  );
  return { bus, url: queue.url };
}

describe("release events", () => {
  it("puts one Layer Sync Release event per pointer move (publish, publish, rollback) on SUMMARY_EVENT_BUS", async () => {
    const { bus, url } = await subscribedQueue();
    const prefix = `/${uniqueName("rel")}`;
    const pkg = uniqueName("py");
    Object.assign(process.env, {
      ARTIFACT_BUCKET: bucket,
      PARAMETER_PREFIX: prefix,
      SHARE_ACCOUNT_IDS: "111122223333",
      SUMMARY_EVENT_BUS: bus,
    });
    const arn = (v: number) => `arn:aws:lambda:${REGION}:${MOTO_ACCOUNT_ID}:layer:${pkg}:${v}`;

    const first = await putArtifact(admin, { bucket, parameterPrefix: prefix, pkg, content: "one" });
    await publishHandler({ package: pkg });
    const second = await putArtifact(admin, { bucket, parameterPrefix: prefix, pkg, content: "two", second: 1 });
    await publishHandler({ package: pkg });
    await publishHandler({ package: pkg }); // unchanged: no event
    await publishHandler({ rollback: { package: pkg } });

    const received = (await receiveAll(REGION, url)) as { source: string; "detail-type": string; detail: unknown }[];
    expect(received.every((e) => e.source === "layer-sync" && e["detail-type"] === "Layer Sync Release")).toBe(true);
    const details = received.map((e) => e.detail);
    const base = { package: pkg, region: REGION, consumersOnPrevious: null, sbomDiff: null };
    expect(details).toEqual([
      {
        ...base,
        previous: null,
        current: { version: 1, layerVersionArn: arn(1) },
        commit: first.commit,
        action: "publish",
      },
      {
        ...base,
        previous: { version: 1, layerVersionArn: arn(1) },
        current: { version: 2, layerVersionArn: arn(2) },
        commit: second.commit,
        action: "publish",
      },
      {
        ...base,
        previous: { version: 2, layerVersionArn: arn(2) },
        current: { version: 1, layerVersionArn: arn(1) },
        commit: first.commit,
        action: "rollback",
      },
    ]);
  });

  it("puts the same event when the command line rolls back or publishes, with SUMMARY_EVENT_BUS in its environment", async () => {
    const { bus, url } = await subscribedQueue();
    const prefix = `/${uniqueName("relcli")}`;
    const pkg = uniqueName("py");
    const env = { ...process.env, ARTIFACT_BUCKET: bucket, PARAMETER_PREFIX: prefix, SUMMARY_EVENT_BUS: bus };
    const cli = async (args: string[]) => {
      const cap = captureIo();
      const code = await main(args, env, cap.io);
      expect(code, cap.stderr()).toBe(0);
    };
    await putArtifact(admin, { bucket, parameterPrefix: prefix, pkg, content: "one" });
    await cli(["publish", "--package", pkg, "--json"]);
    await putArtifact(admin, { bucket, parameterPrefix: prefix, pkg, content: "two", second: 1 });
    await cli(["publish", "--package", pkg, "--json"]);
    await cli(["rollback", "--package", pkg, "--json"]);

    const received = (await receiveAll(REGION, url)) as { detail: { action: string; current: { version: number } } }[];
    expect(received.map((e) => [e.detail.action, e.detail.current.version])).toEqual([
      ["publish", 1],
      ["publish", 2],
      ["rollback", 1],
    ]);
  });
});
