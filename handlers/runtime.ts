/**
 * What the handlers share: the Powertools logger and metrics, AWS clients created once per execution
 * environment (endpoints come from the SDK's standard configuration, including AWS_ENDPOINT_URL), and a
 * middy middleware that scrubs secrets from any error before Lambda sees it.
 */
import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics } from "@aws-lambda-powertools/metrics";
import { CloudWatchLogsClient } from "@aws-sdk/client-cloudwatch-logs";
import { CodeBuildClient } from "@aws-sdk/client-codebuild";
import { EventBridgeClient } from "@aws-sdk/client-eventbridge";
import { LambdaClient } from "@aws-sdk/client-lambda";
import { OrganizationsClient } from "@aws-sdk/client-organizations";
import { RAMClient } from "@aws-sdk/client-ram";
import { S3Client } from "@aws-sdk/client-s3";
import { SSMClient } from "@aws-sdk/client-ssm";
import type { MiddlewareObj } from "@middy/core";
import type { Context } from "aws-lambda";
import { type BuildResultDependencies, cloudWatchLogTail, type LogTailApi } from "../lib/builds/codebuild-result.ts";
import type { Logger as CoreLogger } from "../lib/common/log.ts";
import { redact } from "../lib/common/redact.ts";
import { newConsumerClients } from "../lib/publish/consumer-clients.ts";
import type { ConsumerClients } from "../lib/publish/consumers.ts";
import type { PublishDependencies, RegionClientFactory } from "../lib/publish/publish.ts";
import { regionClientCache } from "../lib/publish/region-clients.ts";

export const logger = new Logger({ serviceName: "layer-sync" });
/** Its own warnings (such as "No application metrics to publish") go through the structured logger too. */
export const metrics = new Metrics({ namespace: "LayerSync", serviceName: "layer-sync", logger });

/** The core's logger interface on top of Powertools, with every message and field scrubbed. */
export const coreLogger: CoreLogger = {
  info: (message, extra) => logger.info(redact(message), scrub(extra)),
  warn: (message, extra) => logger.warn(redact(message), scrub(extra)),
  error: (message, extra) => logger.error(redact(message), scrub(extra)),
};

function scrub(extra: Record<string, unknown> | undefined): Record<string, unknown> {
  return extra ? (JSON.parse(redact(JSON.stringify(extra))) as Record<string, unknown>) : {};
}

let clients: { s3: S3Client; ssm: SSMClient; events: EventBridgeClient } | undefined;

/** AWS clients, created on first use and reused while the environment stays warm. */
export function awsClients(): { s3: S3Client; ssm: SSMClient; events: EventBridgeClient } {
  clients ??= { s3: new S3Client({}), ssm: new SSMClient({}), events: new EventBridgeClient({}) };
  return clients;
}

type PublishOnlyClients = Pick<PublishDependencies, "lambda" | "ram" | "organizations"> & {
  regionClients: RegionClientFactory;
};

let consumers: ConsumerClients | undefined;

/**
 * The clients the consumer source reads with (CONSUMER_SOURCE), created on first use: the caller's STS and
 * Organizations clients, and Lambda / Config clients made per read with assumed credentials.
 */
export function consumerClients(organizations: OrganizationsClient): ConsumerClients {
  consumers ??= newConsumerClients(organizations);
  return consumers;
}

let codebuild: CodeBuildClient | undefined;
let logs: LogTailApi | undefined;

/** The CodeBuild client (sync: start builds; gate and build-finished: read them), created on first use. */
export function codeBuildClient(): CodeBuildClient {
  codebuild ??= new CodeBuildClient({});
  return codebuild;
}

let publishOnly: PublishOnlyClients | undefined;

/** The clients of another Region, created on first use and reused while the environment stays warm. */
export const regionClients: RegionClientFactory = regionClientCache().clientsFor;

/**
 * What `takeBuildResult` (lib/builds/codebuild-result.ts) works with, in the build-finished handler and the
 * gate alike: the home S3 and SSM clients, the log tail of failed builds, the clock and the run directory.
 */
export function buildResultDependencies() {
  const { s3, ssm } = awsClients();
  logs ??= cloudWatchLogTail(new CloudWatchLogsClient({}));
  return {
    s3,
    ssm,
    logs,
    clock: () => new Date(),
    workDir: "/tmp/layer-sync",
    // inside Lambda one invocation owns the environment; a local `layer-sync invoke` shares /tmp
    exclusiveWorkDir: process.env.AWS_LAMBDA_RUNTIME_API !== undefined,
    logger: coreLogger,
  } satisfies BuildResultDependencies;
}

/** The clients only publishing needs, created on first use and reused while the environment stays warm. */
export function publishClients(): PublishOnlyClients {
  publishOnly ??= {
    lambda: new LambdaClient({}),
    ram: new RAMClient({}),
    organizations: new OrganizationsClient({}),
    regionClients,
  };
  return publishOnly;
}

/** Re-throw errors with secrets removed from message and stack. */
export function redactErrors(): MiddlewareObj {
  return {
    onError: async (request) => {
      const error = request.error;
      if (error instanceof Error) {
        error.message = redact(error.message);
        if (error.stack) error.stack = redact(error.stack);
      }
    },
  };
}

/** A Lambda context for running a handler outside Lambda (`layer-sync invoke`, the demo). */
export function localContext(functionName: string): Context {
  const fail = () => {
    throw new Error("not available outside Lambda");
  };
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: "$LATEST",
    invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:${functionName}`,
    memoryLimitInMB: "2048",
    awsRequestId: `local-${Date.now()}`,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: "local",
    getRemainingTimeInMillis: () => 900_000,
    done: fail,
    fail,
    succeed: fail,
  };
}
