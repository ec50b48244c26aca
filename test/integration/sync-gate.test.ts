import { randomUUID } from "node:crypto";
import { GetParameterCommand, PutParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import type { Context } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { codePipelineClient, handler } from "../../handlers/sync.ts";
import { type BitbucketEmulator, startBitbucketEmulator } from "../emulators/bitbucket.ts";
import { standardRepo } from "../fixtures/repo.ts";
import { createBucket, uniqueName } from "../support/aws.ts";
import { type CapturedLogs, captureHandlerLogs } from "../support/logs.ts";

const TOKEN = "bb-gate-token-0a1b2c3d4e5f";
const ssm = new SSMClient({});
let bb: BitbucketEmulator;
let prefix: string;
const sent: { command: string; input: Record<string, unknown> }[] = [];
const context = { functionName: "layer-sync-sync", awsRequestId: "gate" } as unknown as Context;
let logs: CapturedLogs | undefined;

/** The structured log lines the handler wrote with this message. */
function logLines(message: string): Record<string, unknown>[] {
  return (logs?.text() ?? "")
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((entry) => entry.message === message);
}

function jobEvent(userParameters?: string) {
  return {
    "CodePipeline.job": {
      id: randomUUID(),
      accountId: "123456789012",
      data: {
        actionConfiguration: { configuration: { FunctionName: "layer-sync-sync", UserParameters: userParameters } },
      },
    },
  };
}

interface GateResult {
  jobId: string;
  succeeded: boolean;
  message: string;
}

beforeAll(async () => {
  bb = await startBitbucketEmulator({ repos: [standardRepo({ bigFileBytes: 64 * 1024 })], accessTokens: [TOKEN] });
  const bucket = await createBucket(uniqueName("gate"));
  prefix = `/${uniqueName("gate")}`;
  await ssm.send(new PutParameterCommand({ Name: `${prefix}/token`, Value: TOKEN, Type: "SecureString" }));
  Object.assign(process.env, {
    SOURCE_PROVIDER: "bitbucket",
    SOURCE_REPOSITORY: "acme/layers",
    SOURCE_REF: "main",
    SOURCE_PATHS: "layers/tools",
    SOURCE_API_URL: bb.apiUrl,
    SOURCE_WEB_URL: bb.webUrl,
    TOKEN_PARAMETER_NAME: `${prefix}/token`,
    ARTIFACT_BUCKET: bucket,
    PARAMETER_PREFIX: prefix,
    LAYER_NAME_PREFIX: `${uniqueName("g")}-`,
    COMPATIBLE_RUNTIMES: "nodejs24.x",
    POWERTOOLS_DEV: "true",
  });
  logs = captureHandlerLogs("INFO");
  codePipelineClient().middlewareStack.add(
    (next, ctx) => async (args) => {
      sent.push({ command: String(ctx.commandName), input: args.input as Record<string, unknown> });
      return next(args);
    },
    { step: "initialize", name: "captureJobResults" },
  );
});

afterAll(async () => {
  logs?.restore();
  await bb.close();
});

describe("the sync handler in pipeline-gate mode", () => {
  it("syncs, publishes and reports success with a summary naming the layer version", async () => {
    const event = jobEvent('{"ref":"main"}');
    const result = (await handler(event, context)) as GateResult;
    expect(result.succeeded).toBe(true);
    const arn = (await ssm.send(new GetParameterCommand({ Name: `${prefix}/tools/layer-version-arn` }))).Parameter
      ?.Value;
    expect(arn).toMatch(/:layer:g-[0-9a-f]+-tools:1$/);
    expect(sent.at(-1)).toEqual({
      command: "PutJobSuccessResultCommand",
      input: {
        jobId: event["CodePipeline.job"].id,
        executionDetails: {
          summary: expect.stringMatching(/^layer-sync at [0-9a-f]{7}: tools synced, layer version 1$/),
          externalExecutionId: expect.any(String),
        },
      },
    });
  });

  it("reports an unchanged run as success without publishing a new version", async () => {
    const result = (await handler(jobEvent(), context)) as GateResult;
    expect(result.succeeded).toBe(true);
    expect(result.message).toMatch(/tools unchanged, layer version 1$/);
    expect(sent.at(-1)?.command).toBe("PutJobSuccessResultCommand");
  });

  it("reports a failing package as a job failure with a message naming it, instead of throwing", async () => {
    const event = jobEvent('{"paths":["layers/escape"]}');
    const result = (await handler(event, context)) as GateResult;
    expect(result.succeeded).toBe(false);
    expect(sent.at(-1)).toEqual({
      command: "PutJobFailureResultCommand",
      input: {
        jobId: event["CodePipeline.job"].id,
        failureDetails: {
          type: "JobFailed",
          message: expect.stringMatching(/escape \(sync\): symlink "evil" .*leaves the folder/),
          externalExecutionId: expect.any(String),
        },
      },
    });
    // the reason reaches the log (CloudWatch), not only CodePipeline
    expect(logLines("pipeline gate result").at(-1)).toMatchObject({
      level: "ERROR",
      jobId: event["CodePipeline.job"].id,
      succeeded: false,
      detail: expect.stringMatching(/escape \(sync\): symlink "evil" .*leaves the folder/),
    });
    // the last good layer stays the current one
    const arn = (await ssm.send(new GetParameterCommand({ Name: `${prefix}/tools/layer-version-arn` }))).Parameter
      ?.Value;
    expect(arn).toMatch(/-tools:1$/);
  });

  it("reports unreadable UserParameters as a configuration error", async () => {
    await handler(jobEvent("{not json"), context);
    expect(sent.at(-1)?.command).toBe("PutJobFailureResultCommand");
    expect(sent.at(-1)?.input.failureDetails).toMatchObject({
      type: "ConfigurationError",
      message: expect.stringMatching(/UserParameters must be JSON/),
    });
  });

  it("fails the job as a configuration error for a refused publish setting, before syncing anything", async () => {
    const before = await ssm.send(new GetParameterCommand({ Name: `${prefix}/tools/artifact-key` }));
    // checked against the function's own Region (AWS_REGION, eu-west-1 in the tests), as the publish function does
    process.env.PUBLISH_REGIONS = "us-east-1";
    try {
      const event = jobEvent('{"force":true}');
      const result = (await handler(event, context)) as GateResult & { sync?: unknown };
      expect(result.succeeded).toBe(false);
      expect(result.sync).toBeUndefined();
      expect(sent.at(-1)).toEqual({
        command: "PutJobFailureResultCommand",
        input: {
          jobId: event["CodePipeline.job"].id,
          failureDetails: {
            type: "ConfigurationError",
            message: expect.stringMatching(/PUBLISH_REGIONS .*must include the home Region eu-west-1/),
            externalExecutionId: expect.any(String),
          },
        },
      });
    } finally {
      delete process.env.PUBLISH_REGIONS;
    }
    const after = await ssm.send(new GetParameterCommand({ Name: `${prefix}/tools/artifact-key` }));
    expect(after.Parameter).toEqual(before.Parameter);
  });

  /** Run `body` with the sync settings `more` added to the environment, then restore them. */
  async function withSettings(more: Record<string, string>, body: () => Promise<void>): Promise<void> {
    const saved = Object.fromEntries(Object.keys(more).map((k) => [k, process.env[k]]));
    Object.assign(process.env, more);
    try {
      await body();
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  }

  it("fails the job as a configuration error for a sync setting it cannot load, before syncing anything", async () => {
    const before = await ssm.send(new GetParameterCommand({ Name: `${prefix}/tools/artifact-key` }));
    await withSettings({ SOURCE_STRATEGY: "fastest" }, async () => {
      const event = jobEvent('{"force":true}');
      const result = (await handler(event, context)) as GateResult & { sync?: unknown };
      expect(result.succeeded).toBe(false);
      expect(result.sync).toBeUndefined();
      expect(sent.at(-1)).toEqual({
        command: "PutJobFailureResultCommand",
        input: {
          jobId: event["CodePipeline.job"].id,
          failureDetails: {
            type: "ConfigurationError",
            message: expect.stringMatching(/^layer-sync failed: SOURCE_STRATEGY [^\n]*fastest/),
            externalExecutionId: expect.any(String),
          },
        },
      });
    });
    const after = await ssm.send(new GetParameterCommand({ Name: `${prefix}/tools/artifact-key` }));
    expect(after.Parameter).toEqual(before.Parameter);
  });

  it("never puts the token into the refusal of a source URL that carries it", async () => {
    await withSettings({ SOURCE_API_URL: bb.apiUrl.replace("://", `://x-token-auth:${TOKEN}@`) }, async () => {
      const event = jobEvent();
      await handler(event, context);
      const failure = sent.at(-1)?.input.failureDetails as { type: string; message: string };
      expect(failure.type).toBe("ConfigurationError");
      expect(failure.message).toMatch(/SOURCE_API_URL .*must not carry credentials.*token parameter/);
      expect(failure.message).not.toContain(TOKEN);
      expect(logs?.text()).not.toContain(TOKEN);
    });
  });

  it("still throws a sync setting it cannot load for an event that is not a job, and reports no job", async () => {
    const reported = sent.length;
    await withSettings({ SOURCE_STRATEGY: "fastest" }, async () => {
      await expect(handler({ ref: "main" }, context)).rejects.toMatchObject({
        name: "ConfigError",
        message: expect.stringMatching(/SOURCE_STRATEGY/),
      });
    });
    expect(sent.length).toBe(reported);
  });

  it("fails loudly when the job result cannot be reported (a job takes one result)", async () => {
    const event = jobEvent();
    await handler(event, context);
    await expect(handler(event, context)).rejects.toThrow(
      /reporting the result of CodePipeline job .* failed \(InvalidJobStateException\)/,
    );
  });
});
