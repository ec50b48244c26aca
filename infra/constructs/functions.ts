/**
 * The Lambda functions, their log groups and their roles (the roles' statements are added by iam.ts).
 * Code is bundled from handlers/ by NodejsFunction, or given (inline code in tests, S3 in template mode).
 */
import { Aws, CfnCondition, Duration, Fn, RemovalPolicy, Size, type Stack } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
import * as lambda from "aws-cdk-lib/aws-lambda";
import * as destinations from "aws-cdk-lib/aws-lambda-destinations";
import { NodejsFunction } from "aws-cdk-lib/aws-lambda-nodejs";
import * as logs from "aws-cdk-lib/aws-logs";
import type * as sns from "aws-cdk-lib/aws-sns";
import { DEFAULTS, functionVariables } from "../../lib/common/settings.ts";
import { type FunctionName, HANDLER_ENTRIES, nodejsBundling, REPO_ROOT } from "../bundling.ts";
import type { LayerSyncOptions } from "../settings.ts";
import { buildVariables } from "./build-names.ts";
import { ephemeralStorageMiB, maxBytesOf } from "./ephemeral.ts";
import type { Resolved } from "./resolved.ts";

/** The sync function's timeout; the sync queue's visibility timeout is derived from it (triggers.ts). */
export const SYNC_TIMEOUT = Duration.minutes(15);

export interface Functions {
  readonly syncFunction: lambda.Function;
  readonly publishFunction: lambda.Function;
  readonly syncRole: iam.Role;
  readonly publishRole: iam.Role;
  readonly syncLogs: logs.LogGroup;
  readonly publishLogs: logs.LogGroup;
  /** The build-finished function (handlers/build.ts), its role and logs: only when builds are on. */
  readonly build: BuildFunction | undefined;
}

export interface BuildFunction {
  readonly fn: lambda.Function;
  readonly role: iam.Role;
  readonly logs: logs.LogGroup;
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

  // The build projects' names for the sync (in template mode only when the Builds condition holds).
  const builds = resolved.builds;
  const forSync: Record<string, string> =
    builds === false
      ? {}
      : Object.fromEntries(
          Object.entries(buildVariables()).map(([k, v]) => [
            k,
            builds instanceof CfnCondition ? Fn.conditionIf(builds.logicalId, v, Aws.NO_VALUE).toString() : v,
          ]),
        );
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
    environment: { ...common.environment, ...forSync },
    role: syncRole,
    logGroup: syncLogs,
    memorySize: 2048,
    timeout: SYNC_TIMEOUT,
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
  let build: BuildFunction | undefined;
  if (builds !== false) {
    const buildLogs = new logs.LogGroup(scope, "BuildLogGroup", { retention, removalPolicy: RemovalPolicy.RETAIN });
    const buildRole = new iam.Role(scope, "BuildRole", {
      assumedBy: new iam.ServicePrincipal("lambda.amazonaws.com"),
      description: "layer-sync build-finished function: CodeBuild output to S3 artifacts and SSM pointers",
    });
    // Only the variables handlers/build.ts reads (lib/common/settings.ts functionSettings("build")).
    const reads = new Set([...functionVariables("build"), "NODE_OPTIONS"]);
    const all = { ...common.environment, ...buildVariables() };
    const fn = new NodejsFunction(scope, "BuildFunction", {
      ...common,
      ...codeFor("build"),
      description: "layer-sync: a finished CodeBuild build to its S3 zip and SSM pointer",
      environment: Object.fromEntries(Object.entries(all).filter(([k]) => reads.has(k))),
      role: buildRole,
      logGroup: buildLogs,
      memorySize: 2048,
      timeout: Duration.minutes(15),
      // It throws on a failed build so the failure destination fires; a retry would repeat the summary event
      // (a repeated event is harmless: it finds the artifact in place). EventBridge still retries delivery.
      retryAttempts: 0,
      // The build output plus its zip: bounded by Lambda's 250 MB unzipped limit, not by SOURCE_MAX_BYTES.
      ephemeralStorageSize: Size.mebibytes(ephemeralStorageMiB(DEFAULTS.maxBytes)),
    });
    build = { fn, role: buildRole, logs: buildLogs };
  }
  return { syncFunction, publishFunction, syncRole, publishRole, syncLogs, publishLogs, build };
}

const RETENTION_DAYS = new Map<number, logs.RetentionDays>(
  Object.values(logs.RetentionDays)
    .filter((v): v is logs.RetentionDays => typeof v === "number")
    .map((v) => [v as number, v]),
);

export function retentionDays(days: number): logs.RetentionDays {
  const value = RETENTION_DAYS.get(days);
  if (value === undefined) {
    throw new Error(`logRetentionDays must be a CloudWatch Logs retention value such as 30, 90, 365 (got ${days})`);
  }
  return value;
}
