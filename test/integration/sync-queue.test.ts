/**
 * Overlapping pipeline runs, serialised by the sync FIFO queue: the handler takes SQS deliveries whose records
 * wrap the STARTED events, runs them in order, and ends with the newer commit's pointer. A record that fails
 * is reported with every later record, so the queue delivers them again in order.
 */
import { readFile } from "node:fs/promises";
import { GetParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import type { Context } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { handler } from "../../handlers/sync.ts";
import { type BitbucketEmulator, startBitbucketEmulator } from "../emulators/bitbucket.ts";
import { type FixtureRepo, standardRepo } from "../fixtures/repo.ts";
import { createBucket, uniqueName } from "../support/aws.ts";

const TOKEN = "bb-queue-token-7a1c2e9f4b3d";
const ssm = new SSMClient({});
let bb: BitbucketEmulator;
let repo: FixtureRepo;
let prefix: string;
let started: Record<string, unknown>;

const context = {
  functionName: "layer-sync-sync",
  awsRequestId: "test-request",
  invokedFunctionArn: "arn:aws:lambda:eu-west-1:123456789012:function:layer-sync-sync",
  memoryLimitInMB: "2048",
  getRemainingTimeInMillis: () => 900_000,
} as unknown as Context;

/** An SQS FIFO delivery of STARTED events, as the event source mapping sends it. */
function delivery(...executions: string[]) {
  return {
    Records: executions.map((id, i) => ({
      messageId: `m-${id}`,
      receiptHandle: `r-${i}`,
      body: JSON.stringify({ ...started, id, detail: { ...(started.detail as object), "execution-id": id } }),
      attributes: { MessageGroupId: "layer-sync", SequenceNumber: String(i + 1) },
      messageAttributes: {},
      md5OfBody: "",
      eventSource: "aws:sqs",
      eventSourceARN: "arn:aws:sqs:eu-west-1:123456789012:SyncQueue.fifo",
      awsRegion: "eu-west-1",
    })),
  };
}

const invoke = (e: unknown) => handler(e, context) as Promise<{ batchItemFailures: { itemIdentifier: string }[] }>;

async function pointer(pkg: string): Promise<string | undefined> {
  return (await ssm.send(new GetParameterCommand({ Name: `${prefix}/${pkg}/artifact-key` }))).Parameter?.Value;
}

beforeAll(async () => {
  repo = standardRepo({ bigFileBytes: 1024 });
  bb = await startBitbucketEmulator({ repos: [repo], accessTokens: [TOKEN] });
  started = JSON.parse(await readFile(new URL("../../events/pipeline-started.json", import.meta.url), "utf8"));
  prefix = `/${uniqueName("lsq")}`;
  Object.assign(process.env, {
    SOURCE_PROVIDER: "bitbucket",
    SOURCE_REPOSITORY: "acme/layers",
    SOURCE_REF: "main",
    SOURCE_PATHS: "layers/tools",
    SOURCE_API_URL: bb.apiUrl,
    SOURCE_WEB_URL: bb.webUrl,
    ARTIFACT_BUCKET: await createBucket(uniqueName("sync-queue")),
    PARAMETER_PREFIX: prefix,
    SOURCE_TOKEN: TOKEN,
    POWERTOOLS_DEV: "true",
  });
  delete process.env.TOKEN_PARAMETER_NAME;
});

afterAll(async () => {
  await bb.close();
});

describe("the sync handler behind the FIFO queue", () => {
  it("runs two overlapping STARTED events one after the other and ends with the newer commit's pointer", async () => {
    expect(await invoke(delivery("exec-1"))).toEqual({ batchItemFailures: [] });
    const older = await pointer("tools");
    const newer = repo.commit("main", {
      "layers/tools/bin/added.sh": { kind: "file", content: Buffer.from("echo 2\n") },
    });
    expect(await invoke(delivery("exec-2"))).toEqual({ batchItemFailures: [] });
    const latest = await pointer("tools");
    expect(latest).not.toBe(older);
    expect(latest).toMatch(new RegExp(`-${newer.slice(0, 7)}\\.zip$`));
  });

  it("processes a batch in order and reports the failed record and every later one for redelivery", async () => {
    const batch = delivery("exec-3", "exec-4");
    const broken = {
      ...batch,
      Records: [{ ...batch.Records[0], body: JSON.stringify({ bad: true }) }, batch.Records[1]],
    };
    expect(await invoke(broken)).toEqual({
      batchItemFailures: [{ itemIdentifier: "m-exec-3" }, { itemIdentifier: "m-exec-4" }],
    });
  });
});
