import { readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CreateEventBusCommand } from "@aws-sdk/client-eventbridge";
import { LambdaClient } from "@aws-sdk/client-lambda";
import { S3Client } from "@aws-sdk/client-s3";
import { SSMClient } from "@aws-sdk/client-ssm";
import type { Context } from "aws-lambda";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { main } from "../../cli/main.ts";
import { handler, publishHandler } from "../../handlers/publish.ts";
import { awsClients } from "../../handlers/runtime.ts";
import { parsePublishEvent } from "../../lib/common/events.ts";
import { PublishFailedError, type PublishSummary } from "../../lib/publish/publish.ts";
import { createBucket, uniqueName } from "../support/aws.ts";
import { putArtifact, versionsOf } from "../support/publish-fixtures.ts";

const admin = { s3: new S3Client({}), ssm: new SSMClient({}), lambda: new LambdaClient({}) };
const SETTINGS = ["ARTIFACT_BUCKET", "PARAMETER_PREFIX", "SHARE_ACCOUNT_IDS", "SUMMARY_EVENT_BUS", "RETAIN_VERSIONS"];
let bucket: string;
let prefix: string;

beforeAll(async () => {
  bucket = await createBucket(uniqueName("publish-handler"));
});

beforeEach(() => {
  prefix = `/${uniqueName("h")}`;
  process.env.ARTIFACT_BUCKET = bucket;
  process.env.PARAMETER_PREFIX = prefix;
  process.env.SHARE_ACCOUNT_IDS = "111122223333";
});

afterEach(() => {
  for (const name of SETTINGS) delete process.env[name];
});

afterAll(() => {
  for (const client of Object.values(admin)) client.destroy();
});

async function sample(file: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(join(import.meta.dirname, "../../events", file), "utf8")) as Record<string, unknown>;
}

/** The events/parameter-change.json sample, pointed at a package under this test's prefix. */
async function parameterChange(pkg: string, operation = "Update"): Promise<Record<string, unknown>> {
  const event = await sample("parameter-change.json");
  const name = `${prefix}/${pkg}/artifact-key`;
  return {
    ...event,
    resources: [`arn:aws:ssm:eu-west-1:111111111111:parameter${name}`],
    detail: { ...(event.detail as object), name, operation },
  };
}

function isSummary(result: unknown): result is PublishSummary {
  return typeof result === "object" && result !== null && "packages" in result;
}

describe("the event samples in events/", () => {
  it("parse as a parameter change for py-requests, a manual publish of py-requests and a reconcile", async () => {
    expect(parsePublishEvent(await sample("parameter-change.json"), "/layer-sync")).toEqual({
      kind: "packages",
      packages: ["py-requests"],
      trigger: "parameter-change",
    });
    expect(parsePublishEvent(await sample("publish-manual.json"), "/layer-sync")).toEqual({
      kind: "packages",
      packages: ["py-requests"],
      trigger: "manual",
    });
    expect(parsePublishEvent(await sample("publish-reconcile.json"), "/layer-sync")).toEqual({ kind: "reconcile" });
  });
});

describe("the publish handler", () => {
  it("publishes the package whose artifact-key a Parameter Store Change event names", async () => {
    const pkg = uniqueName("evt");
    await putArtifact(admin, { bucket, parameterPrefix: prefix, pkg, content: "event" });

    const result = await publishHandler(await parameterChange(pkg));

    expect(isSummary(result)).toBe(true);
    if (!isSummary(result)) return;
    expect(result.trigger).toBe("parameter-change");
    expect(result.packages).toHaveLength(1);
    expect(result.packages[0]).toMatchObject({
      name: pkg,
      version: 1,
      published: true,
      permissions: ["layer-sync-account-111122223333"],
    });
    expect(await versionsOf(admin.lambda, pkg)).toHaveLength(1);
  });

  it("ignores a Delete, a parameter outside the prefix and other events, returning the reason", async () => {
    expect(await publishHandler(await parameterChange("x", "Delete"))).toEqual({
      ignored: `operation Delete on ${prefix}/x/artifact-key does not publish`,
    });
    const outside = {
      ...(await parameterChange("x")),
      detail: { name: "/elsewhere/x/artifact-key", operation: "Update" },
    };
    expect(await publishHandler(outside)).toEqual({
      ignored: `parameter /elsewhere/x/artifact-key is not ${prefix}/<package>/artifact-key`,
    });
    expect(await publishHandler({ source: "aws.s3", "detail-type": "Object Created", detail: {} })).toEqual({
      ignored: "event aws.s3 / Object Created is not a Parameter Store Change",
    });
  });

  it("reconciles every package under the prefix for {}", async () => {
    const pkgs = [uniqueName("r1"), uniqueName("r2")].sort();
    for (const pkg of pkgs) await putArtifact(admin, { bucket, parameterPrefix: prefix, pkg, content: pkg });

    const result = await publishHandler(await sample("publish-reconcile.json"));

    expect(isSummary(result) && result.packages.map((p) => [p.name, p.published])).toEqual(pkgs.map((p) => [p, true]));
  });

  it("throws after every package has finished, naming each failure", async () => {
    const good = uniqueName("ok");
    await putArtifact(admin, { bucket, parameterPrefix: prefix, pkg: good, content: "ok" });

    const failure = await publishHandler({ packages: ["absent", good] }).catch((error: unknown) => error);

    expect(failure).toBeInstanceOf(PublishFailedError);
    expect((failure as Error).message).toBe(
      `1 of 2 package(s) failed to publish: absent: nothing to publish: parameter ${prefix}/absent/artifact-key does not exist; run \`layer-sync sync\` for this package first, or check PARAMETER_PREFIX`,
    );
    expect(await versionsOf(admin.lambda, good)).toHaveLength(1);
  });

  it("puts a Layer Publish Summary event on SUMMARY_EVENT_BUS", async () => {
    const bus = uniqueName("bus");
    const { events } = awsClients();
    await events.send(new CreateEventBusCommand({ Name: bus }));
    const sent: { entries: unknown; failed: number | undefined }[] = [];
    events.middlewareStack.add(
      (next, context) => async (args) => {
        const out = await next(args);
        if (context.commandName === "PutEventsCommand") {
          const input = args.input as { Entries?: unknown };
          sent.push({ entries: input.Entries, failed: (out.output as { FailedEntryCount?: number }).FailedEntryCount });
        }
        return out;
      },
      { step: "initialize" },
    );
    process.env.SUMMARY_EVENT_BUS = bus;
    const pkg = uniqueName("sum");
    await putArtifact(admin, { bucket, parameterPrefix: prefix, pkg, content: "summary" });

    const result = await publishHandler({ package: pkg });

    const summaries = sent.filter((s) => JSON.stringify(s.entries).includes('"DetailType":"Layer Publish Summary"'));
    // the version moved: one Layer Sync Release event besides (release-events.test.ts)
    expect(sent.length - summaries.length).toBe(1);
    expect(summaries).toEqual([
      {
        entries: [
          {
            EventBusName: bus,
            Source: "layer-sync",
            DetailType: "Layer Publish Summary",
            Detail: JSON.stringify(result),
          },
        ],
        failed: 0,
      },
    ]);
  });

  it("runs the same way through middy and Powertools as the exported handler", async () => {
    const pkg = uniqueName("mw");
    await putArtifact(admin, { bucket, parameterPrefix: prefix, pkg, content: "middy" });
    const context: Context = {
      callbackWaitsForEmptyEventLoop: false,
      functionName: "layer-sync-publish",
      functionVersion: "$LATEST",
      invokedFunctionArn: "arn:aws:lambda:eu-west-1:123456789012:function:layer-sync-publish",
      memoryLimitInMB: "1024",
      awsRequestId: "test",
      logGroupName: "/aws/lambda/layer-sync-publish",
      logStreamName: "test",
      getRemainingTimeInMillis: () => 60_000,
      done: () => {},
      fail: () => {},
      succeed: () => {},
    };

    const result: unknown = await handler({ package: pkg }, context);

    expect(isSummary(result) && result.packages.map((p) => [p.name, p.version, p.published])).toEqual([[pkg, 1, true]]);
  });
});

describe("the publish command line", () => {
  const io = () => {
    const out: string[] = [];
    const err: string[] = [];
    return {
      out,
      err,
      io: {
        stdout: { write: (t: string) => out.push(t) },
        stderr: { write: (t: string) => err.push(t), isTTY: false },
      },
    };
  };

  it("publishes the packages given with --package and prints the summary as JSON", async () => {
    const pkg = uniqueName("cli");
    await putArtifact(admin, { bucket, parameterPrefix: prefix, pkg, content: "cli" });
    const t = io();

    const code = await main(
      ["publish", "--json", "--package", pkg, "--bucket", bucket, "--parameter-prefix", prefix],
      {},
      t.io,
    );

    expect(code).toBe(0);
    const summary = JSON.parse(t.out.join("")) as PublishSummary;
    expect(summary.trigger).toBe("manual");
    expect(summary.packages.map((p) => [p.name, p.version, p.published, p.share])).toEqual([[pkg, 1, true, null]]);
    expect(t.err).toEqual([]);
  });

  it("exits 1 with a one-line reason on stderr when a package fails", async () => {
    const t = io();

    const code = await main(
      ["publish", "--json", "--package", "absent", "--bucket", bucket, "--parameter-prefix", prefix],
      {},
      t.io,
    );

    expect(code).toBe(1);
    expect(t.err.join("")).toBe(
      `layer-sync: 1 of 1 package(s) failed to publish: absent: nothing to publish: parameter ${prefix}/absent/artifact-key does not exist; run \`layer-sync sync\` for this package first, or check PARAMETER_PREFIX\n`,
    );
  });

  it("exits 2 for a bad package name", async () => {
    const t = io();
    expect(await main(["publish", "--package", "no/slash", "--bucket", bucket], {}, t.io)).toBe(2);
    expect(t.err.join("")).toMatch(/"packages" must be a non-empty array of package names/);
  });

  it("runs the real handler with `invoke publish EVENT.json`", async () => {
    const pkg = uniqueName("inv");
    await putArtifact(admin, { bucket, parameterPrefix: prefix, pkg, content: "invoke" });
    const file = join(tmpdir(), `${uniqueName("event")}.json`);
    await writeFile(file, JSON.stringify(await parameterChange(pkg)));
    const t = io();

    const code = await main(["invoke", "publish", file], {}, t.io);

    expect(code).toBe(0);
    const summary = JSON.parse(t.out.join("")) as PublishSummary;
    expect(summary.packages.map((p) => [p.name, p.published])).toEqual([[pkg, true]]);
  });
});
