/**
 * The gate core (lib/codepipeline/gate-job.ts) on its own, on moto (S3, SSM, Lambda, CodePipeline job results
 * through the launcher's patch) with a fixed clock and the clients passed in, as the sync handler passes
 * them. CodeBuild's answers are injected where moto cannot give them (moto reports every build SUCCEEDED):
 * a `CodeBuildApi` that says a build still runs. The whole handler flow is in sync-gate and codebuild-gate.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CodePipelineClient } from "@aws-sdk/client-codepipeline";
import { EventBridgeClient } from "@aws-sdk/client-eventbridge";
import { LambdaClient } from "@aws-sdk/client-lambda";
import { OrganizationsClient } from "@aws-sdk/client-organizations";
import { RAMClient } from "@aws-sdk/client-ram";
import { S3Client } from "@aws-sdk/client-s3";
import { GetParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CodeBuildApi } from "../../lib/builds/codebuild.ts";
import {
  type GateDependencies,
  type GateJob,
  refuseGateJob,
  refuseJobEvent,
  runGateJob,
} from "../../lib/codepipeline/gate-job.ts";
import { loadPublishConfig, loadSyncConfig } from "../../lib/common/config.ts";
import { ConfigError } from "../../lib/common/errors.ts";
import type { SyncSummary } from "../../lib/common/summary.ts";
import { TokenCache } from "../../lib/common/token.ts";
import { type GitHubEmulator, startGitHubEmulator } from "../emulators/github.ts";
import { FixtureRepo } from "../fixtures/repo.ts";
import { createBucket, uniqueName } from "../support/aws.ts";
import { captureRequests } from "../support/codebuild.ts";

const NOW = new Date("2026-11-30T08:00:00.000Z");
const PROJECT = "layer-sync-build-x86";
const s3 = new S3Client({});
const ssm = new SSMClient({});
const codepipeline = new CodePipelineClient({});
const jobs = captureRequests(codepipeline as never);
let gh: GitHubEmulator;
let env: Record<string, string>;
let prefix: string;
let workDir: string;

/** A CodeBuild that answers every build with `status` and never starts one. */
function codeBuildSaying(status: string): CodeBuildApi {
  return {
    startBuild: () => Promise.reject(new Error("the gate must not start builds here")),
    batchGetBuilds: async (ids) => ids.map((id) => ({ id, status })),
  };
}

interface Recorded {
  synced: SyncSummary[];
  /** How many job results had been reported when each summary was told. */
  resultsWhenSynced: number[];
  logged: { level: string; message: string; extra: Record<string, unknown> | undefined }[];
}

function dependencies(recorded: Recorded, over: Partial<GateDependencies> = {}): GateDependencies {
  const log = (level: string) => (message: string, extra?: Record<string, unknown>) =>
    recorded.logged.push({ level, message, extra });
  return {
    s3,
    ssm,
    codebuild: codeBuildSaying("SUCCEEDED"),
    tokens: new TokenCache(60_000, () => NOW.getTime()),
    clock: () => NOW,
    workDir,
    exclusiveWorkDir: false,
    logger: { info: log("info"), warn: log("warn"), error: log("error") },
    codepipeline,
    logs: { tail: async () => [] },
    events: new EventBridgeClient({}),
    publishing: { lambda: new LambdaClient({}), ram: new RAMClient({}), organizations: new OrganizationsClient({}) },
    consumers: () => {
      throw new Error("no consumer source is configured");
    },
    onSynced: async (summary) => {
      recorded.synced.push(summary);
      recorded.resultsWhenSynced.push(jobs.length);
    },
    ...over,
  };
}

const settings = (more: Record<string, string> = {}) => ({
  sync: loadSyncConfig({ env: { ...env, ...more } }, { requireBucket: true }),
  publish: loadPublishConfig({ env: { ...env, ...more } }),
});

const job = (more: Partial<GateJob> = {}): GateJob => ({ jobId: randomUUID(), userParameters: undefined, ...more });
const recorder = (): Recorded => ({ synced: [], resultsWhenSynced: [], logged: [] });

beforeAll(async () => {
  const repo = new FixtureRepo("acme", "layers");
  repo.commit("main", { "layers/tools/bin/tool.sh": { kind: "file", content: Buffer.from("echo tool\n") } }, "tools");
  gh = await startGitHubEmulator({ repos: [repo], publicRepos: true });
  prefix = `/${uniqueName("gj")}`;
  workDir = await mkdtemp(join(tmpdir(), "ls-gj-"));
  env = {
    SOURCE_PROVIDER: "github",
    SOURCE_REPOSITORY: "acme/layers",
    SOURCE_REF: "main",
    SOURCE_PATHS: "layers/tools",
    SOURCE_API_URL: gh.apiUrl,
    ARTIFACT_BUCKET: await createBucket(uniqueName("gj")),
    PARAMETER_PREFIX: prefix,
    LAYER_NAME_PREFIX: `${uniqueName("j")}-`,
    COMPATIBLE_RUNTIMES: "nodejs24.x",
  };
});

afterAll(async () => {
  await gh.close();
  await rm(workDir, { recursive: true, force: true });
});

describe("runGateJob", () => {
  it("syncs, tells the summary, publishes and reports success under the clock's execution id", async () => {
    const recorded = recorder();
    const before = jobs.length;
    const ran = await runGateJob(job({ userParameters: '{"ref":"main"}' }), settings(), dependencies(recorded));
    expect(ran).toMatchObject({ succeeded: true, sync: { ref: "main" }, publish: { packages: [{ name: "tools" }] } });
    expect(ran.message).toMatch(/^layer-sync at [0-9a-f]{7}: tools synced, layer version 1$/);
    // told once, before the job's result was reported
    expect(recorded.synced).toEqual([ran.sync]);
    expect(recorded.resultsWhenSynced).toEqual([before]);
    expect(jobs.at(-1)).toEqual({
      command: "PutJobSuccessResultCommand",
      input: {
        jobId: ran.jobId,
        executionDetails: { summary: ran.message, externalExecutionId: `layer-sync-${NOW.getTime()}` },
      },
    });
    const arn = await ssm.send(new GetParameterCommand({ Name: `${prefix}/tools/layer-version-arn` }));
    expect(arn.Parameter?.Value).toMatch(/-tools:1$/);
    expect(recorded.logged.at(-1)).toEqual({
      level: "info",
      message: "pipeline gate result",
      extra: { jobId: ran.jobId, succeeded: true, detail: ran.message },
    });
  });

  it("fails a job whose UserParameters are not JSON as a configuration error, before any sync", async () => {
    const recorded = recorder();
    const ran = await runGateJob(job({ userParameters: "{ref" }), settings(), dependencies(recorded));
    expect(ran).toMatchObject({ succeeded: false, sync: undefined, publish: undefined });
    expect(recorded.synced).toEqual([]);
    expect(jobs.at(-1)).toEqual({
      command: "PutJobFailureResultCommand",
      input: {
        jobId: ran.jobId,
        failureDetails: {
          type: "ConfigurationError",
          message: expect.stringMatching(/UserParameters must be JSON/),
          externalExecutionId: `layer-sync-${NOW.getTime()}`,
        },
      },
    });
    expect(recorded.logged.at(-1)).toMatchObject({ level: "error", extra: { succeeded: false } });
  });

  it("continues with the same token while a build runs, without publishing", async () => {
    const recorded = recorder();
    const token = JSON.stringify({ builds: [`${PROJECT}:${randomUUID()}`] });
    const ran = await runGateJob(
      job({ continuationToken: token }),
      settings({ BUILD_PROJECT_X86_64: PROJECT }),
      dependencies(recorded, { codebuild: codeBuildSaying("IN_PROGRESS") }),
    );
    expect(ran).toMatchObject({ succeeded: true, sync: undefined, publish: undefined });
    expect(recorded.synced).toEqual([]);
    expect(jobs.at(-1)).toMatchObject({
      command: "PutJobSuccessResultCommand",
      input: { jobId: ran.jobId, continuationToken: token },
    });
  });

  it("fails a continuation as a configuration error when no build project is set", async () => {
    const token = JSON.stringify({ builds: [`${PROJECT}:${randomUUID()}`] });
    const ran = await runGateJob(job({ continuationToken: token }), settings(), dependencies(recorder()));
    expect(jobs.at(-1)?.input.failureDetails).toMatchObject({
      type: "ConfigurationError",
      message: expect.stringMatching(
        /^layer-sync failed: a continuation token names CodeBuild builds, but no build project is set: set BUILD_PROJECT_X86_64/,
      ),
    });
    expect(ran.succeeded).toBe(false);
  });
});

describe("refuseGateJob", () => {
  it("fails the job with the settings problem as a configuration error", async () => {
    const recorded = recorder();
    const refused = await refuseGateJob(
      job(),
      new ConfigError("PUBLISH_REGIONS: eu-west-9 is not a Region"),
      dependencies(recorded),
    );
    expect(refused).toMatchObject({ succeeded: false, sync: undefined, publish: undefined });
    expect(jobs.at(-1)?.input.failureDetails).toEqual({
      type: "ConfigurationError",
      message: "layer-sync failed: PUBLISH_REGIONS: eu-west-9 is not a Region",
      externalExecutionId: `layer-sync-${NOW.getTime()}`,
    });
  });

  it("throws when the job already has its result, since CodePipeline would wait until the action times out", async () => {
    const once = job();
    await refuseGateJob(once, new ConfigError("first"), dependencies(recorder()));
    await expect(refuseGateJob(once, new ConfigError("again"), dependencies(recorder()))).rejects.toMatchObject({
      name: "GateReportError",
      message: expect.stringMatching(/reporting the result of CodePipeline job .* failed \(InvalidJobStateException\)/),
    });
  });
});

describe("refuseJobEvent", () => {
  const problem = new ConfigError('SOURCE_STRATEGY must be one of auto, walk, archive (got "fastest")');

  it("fails the job of a CodePipeline job event with the settings problem, needing no settings", async () => {
    const jobId = randomUUID();
    const refused = await refuseJobEvent(
      { "CodePipeline.job": { id: jobId, data: {} } },
      problem,
      dependencies(recorder()),
    );
    expect(refused).toMatchObject({ jobId, succeeded: false, sync: undefined, publish: undefined });
    expect(jobs.at(-1)?.input).toEqual({
      jobId,
      failureDetails: {
        type: "ConfigurationError",
        message: `layer-sync failed: ${problem.message}`,
        externalExecutionId: `layer-sync-${NOW.getTime()}`,
      },
    });
  });

  it.each([
    ["a manual payload", { ref: "main" }],
    ["a job event without a job id", { "CodePipeline.job": { data: {} } }],
  ])("throws the settings problem back for %s, reporting nothing", async (_, event) => {
    const reported = jobs.length;
    await expect(refuseJobEvent(event, problem, dependencies(recorder()))).rejects.toBe(problem);
    expect(jobs.length).toBe(reported);
  });
});
