/**
 * The Lambda functions, their log groups and their roles (the roles' statements are added by iam.ts).
 * Code is bundled from handlers/ by NodejsFunction, or given (inline code in tests, S3 in template mode).
 */
import { Duration, RemovalPolicy, Size, type Stack } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
import * as lambda from "aws-cdk-lib/aws-lambda";
import * as destinations from "aws-cdk-lib/aws-lambda-destinations";
import { NodejsFunction } from "aws-cdk-lib/aws-lambda-nodejs";
import * as logs from "aws-cdk-lib/aws-logs";
import type * as sns from "aws-cdk-lib/aws-sns";
import { type FunctionName, HANDLER_ENTRIES, nodejsBundling, REPO_ROOT } from "../bundling.ts";
import type { LayerSyncOptions } from "../settings.ts";
import { ephemeralStorageMiB, maxBytesOf } from "./ephemeral.ts";
import type { Resolved } from "./resolved.ts";

export interface Functions {
  readonly syncFunction: lambda.Function;
  readonly publishFunction: lambda.Function;
  readonly syncRole: iam.Role;
  readonly publishRole: iam.Role;
  readonly syncLogs: logs.LogGroup;
  readonly publishLogs: logs.LogGroup;
}

export interface FunctionInputs {
  readonly resolved: Resolved;
  readonly options: LayerSyncOptions;
  /** Variables the stack adds to every function (ARTIFACT_BUCKET, ...). */
  readonly environment: Record<string, string>;
  readonly failureTopic: sns.ITopic;
}

export function createFunctions(scope: Stack, input: FunctionInputs): Functions {
  const { resolved, options } = input;
  const retention = retentionDays(options.logRetentionDays ?? 90);
  const syncLogs = new logs.LogGroup(scope, "SyncLogGroup", { retention, removalPolicy: RemovalPolicy.RETAIN });
  const publishLogs = new logs.LogGroup(scope, "PublishLogGroup", { retention, removalPolicy: RemovalPolicy.RETAIN });
  const syncRole = new iam.Role(scope, "SyncRole", {
    assumedBy: new iam.ServicePrincipal("lambda.amazonaws.com"),
    description: "layer-sync sync function: repository to S3 artifacts and SSM pointers",
  });
  const publishRole = new iam.Role(scope, "PublishRole", {
    assumedBy: new iam.ServicePrincipal("lambda.amazonaws.com"),
    description: "layer-sync publish function: S3 artifacts to shared Lambda layer versions",
  });

  const common = {
    runtime: lambda.Runtime.NODEJS_24_X,
    architecture: lambda.Architecture.ARM_64,
    handler: "index.handler",
    environment: { ...resolved.env, ...input.environment },
    ...(options.tracing && { tracing: lambda.Tracing.ACTIVE }),
    // Async invocations (EventBridge, the pipeline's Invoke action): two retries, then the failure
    // record goes straight to the failure topic, so a human hears about it.
    retryAttempts: 2,
    maxEventAge: Duration.hours(6),
    onFailure: new destinations.SnsDestination(input.failureTopic),
  } satisfies Partial<lambda.FunctionProps>;
  const codeFor = (name: FunctionName) => {
    const given = resolved.code?.[name as keyof NonNullable<Resolved["code"]>];
    return given
      ? { code: given }
      : {
          entry: HANDLER_ENTRIES[name],
          projectRoot: REPO_ROOT,
          depsLockFilePath: `${REPO_ROOT}package-lock.json`,
          bundling: nodejsBundling(),
        };
  };

  const syncFunction = new NodejsFunction(scope, "SyncFunction", {
    ...common,
    ...codeFor("sync"),
    description: "layer-sync: repository folders to S3 zips and SSM pointers",
    role: syncRole,
    logGroup: syncLogs,
    memorySize: 2048,
    timeout: Duration.minutes(15),
    // One package's staged bytes plus its zip at a time, from SOURCE_MAX_BYTES (formula in ephemeral.ts).
    ephemeralStorageSize: Size.mebibytes(ephemeralStorageMiB(maxBytesOf(resolved.env))),
    // No reserved concurrency: pipeline runs are serialised by the FIFO queue in front of the function (triggers.ts).
  });
  const publishFunction = new NodejsFunction(scope, "PublishFunction", {
    ...common,
    ...codeFor("publish"),
    description: "layer-sync: S3 zips to Lambda layer versions shared across the organization",
    role: publishRole,
    logGroup: publishLogs,
    memorySize: 512,
    timeout: Duration.minutes(5),
  });
  return { syncFunction, publishFunction, syncRole, publishRole, syncLogs, publishLogs };
}

const RETENTION_DAYS = new Map<number, logs.RetentionDays>(
  Object.values(logs.RetentionDays)
    .filter((v): v is logs.RetentionDays => typeof v === "number")
    .map((v) => [v as number, v]),
);

function retentionDays(days: number): logs.RetentionDays {
  const value = RETENTION_DAYS.get(days);
  if (value === undefined) {
    throw new Error(`logRetentionDays must be a CloudWatch Logs retention value such as 30, 90, 365 (got ${days})`);
  }
  return value;
}
