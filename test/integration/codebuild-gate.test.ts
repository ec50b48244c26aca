/**
 * Pipeline-gate mode with CodeBuild builds, on moto (CodePipeline job results through the launcher's
 * patch, CodeBuild, S3, SSM, Lambda): the job that starts builds succeeds only with a continuation token
 * naming them; a later invocation with that token continues while a build runs, takes the output and
 * publishes once all succeeded, and fails the job naming the build when one failed. moto marks every build
 * SUCCEEDED on BatchGetBuilds and reports no artifact SHA-256, so running and failed builds and the artifact's
 * SHA-256 are injected into that one response (without the SHA-256 CodeBuild reports, the output is refused:
 * test/integration/build-finished.test.ts).
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { S3Client } from "@aws-sdk/client-s3";
import { GetParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import type { Context } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { codeBuildClient } from "../../handlers/runtime.ts";
import { codePipelineClient, handler } from "../../handlers/sync.ts";
import { type GitHubEmulator, startGitHubEmulator } from "../emulators/github.ts";
import { FixtureRepo } from "../fixtures/repo.ts";
import { createBucket, uniqueName } from "../support/aws.ts";
import {
  buildOutputLocally,
  captureRequests,
  createBuildProjects,
  fakeBuildReports,
  type Projects,
  putBuildArtifact,
} from "../support/codebuild.ts";

const TIMEOUT = 180_000;
const PKG = "pygate";
const s3 = new S3Client({});
const ssm = new SSMClient({});
const context = { functionName: "layer-sync-sync", awsRequestId: "gate-cb" } as unknown as Context;
let gh: GitHubEmulator;
let bucket: string;
let prefix: string;
let projects: Projects;
let dir: string;
const jobs = captureRequests(codePipelineClient() as never);
/** What BatchGetBuilds answers instead of moto: a status while set, the artifact SHA-256 of a build. */
const reports = fakeBuildReports(codeBuildClient());

beforeAll(async () => {
  const repo = new FixtureRepo("acme", "layers");
  repo.commit(
    "main",
    {
      [`layers/${PKG}/requirements.txt`]: { kind: "file", content: Buffer.from("six==1.17.0\n") },
      [`layers/${PKG}/layer.json`]: {
        kind: "file",
        content: Buffer.from(JSON.stringify({ build: { runtimes: ["python3.12"], architectures: ["x86_64"] } })),
      },
    },
    "gate build",
  );
  gh = await startGitHubEmulator({ repos: [repo], publicRepos: true });
  bucket = await createBucket(uniqueName("gcb"));
  prefix = `/${uniqueName("gcb")}`;
  projects = await createBuildProjects(bucket);
  dir = await mkdtemp(join(tmpdir(), "ls-gcb-"));
  Object.assign(process.env, {
    SOURCE_PROVIDER: "github",
    SOURCE_REPOSITORY: "acme/layers",
    SOURCE_REF: "main",
    SOURCE_PATHS: `layers/${PKG}`,
    SOURCE_API_URL: gh.apiUrl,
    ARTIFACT_BUCKET: bucket,
    PARAMETER_PREFIX: prefix,
    LAYER_NAME_PREFIX: `${uniqueName("g")}-`,
    BUILD_PROJECT_X86_64: projects.x86_64,
    BUILD_PROJECT_ARM64: projects.arm64,
    POWERTOOLS_DEV: "true",
  });
});
afterAll(async () => {
  await gh.close();
  await rm(dir, { recursive: true, force: true });
});

function jobEvent(data: Record<string, unknown> = {}) {
  return {
    "CodePipeline.job": {
      id: randomUUID(),
      accountId: "123456789012",
      data: { actionConfiguration: { configuration: { FunctionName: "layer-sync-sync" } }, ...data },
    },
  };
}

async function startBuild(userParameters?: string): Promise<{ token: string; id: string; fingerprint: string }> {
  const event = jobEvent(
    userParameters ? { actionConfiguration: { configuration: { UserParameters: userParameters } } } : {},
  );
  const result = (await handler(event, context)) as {
    succeeded: boolean;
    sync: { packages: { build: { id: string; fingerprint: string } }[] };
  };
  expect(result.succeeded).toBe(true);
  const build = result.sync.packages[0]?.build as { id: string; fingerprint: string };
  const token = JSON.stringify({ builds: [build.id] });
  expect(jobs.at(-1)).toEqual({
    command: "PutJobSuccessResultCommand",
    input: {
      jobId: event["CodePipeline.job"].id,
      continuationToken: token,
      executionDetails: {
        summary: expect.stringMatching(new RegExp(`is waiting for 1 CodeBuild build\\(s\\): ${build.id}$`)),
        externalExecutionId: expect.any(String),
      },
    },
  });
  return { token, ...build };
}

describe("pipeline-gate mode with CodeBuild builds", () => {
  let first: { token: string; id: string; fingerprint: string };

  it("reports success with a continuation token naming the started builds", { timeout: TIMEOUT }, async () => {
    first = await startBuild();
  });

  it("continues with the same token while a build runs", { timeout: TIMEOUT }, async () => {
    reports.status = "IN_PROGRESS";
    try {
      const event = jobEvent({ continuationToken: first.token });
      await handler(event, context);
      expect(jobs.at(-1)).toMatchObject({
        command: "PutJobSuccessResultCommand",
        input: { jobId: event["CodePipeline.job"].id, continuationToken: first.token },
      });
    } finally {
      reports.status = undefined;
    }
  });

  it("takes the output, publishes and finishes the job once every build succeeded", { timeout: TIMEOUT }, async () => {
    const archive = await buildOutputLocally({
      files: { "requirements.txt": "six==1.17.0\n" },
      language: "python",
      runtime: "python3.12",
      architecture: "x86_64",
      dir: join(dir, "out"),
    });
    const key = `build-output/x86_64/${PKG}/${first.fingerprint}.zip`;
    reports.sha256.set(first.id, await putBuildArtifact(s3, bucket, key, archive));
    const event = jobEvent({ continuationToken: first.token });
    await handler(event, context);
    expect(jobs.at(-1)).toEqual({
      command: "PutJobSuccessResultCommand",
      input: {
        jobId: event["CodePipeline.job"].id,
        executionDetails: {
          summary: expect.stringMatching(new RegExp(`^layer-sync at [0-9a-f]{7}: ${PKG} synced, layer version 1$`)),
          externalExecutionId: expect.any(String),
        },
      },
    });
    const arn = await ssm.send(new GetParameterCommand({ Name: `${prefix}/${PKG}/layer-version-arn` }));
    expect(arn.Parameter?.Value).toMatch(new RegExp(`-${PKG}:1$`));
  });

  it("shows a single-target folder skipped by the folder check with its build", async () => {
    const summary = (await handler({}, context)) as unknown as {
      packages: { name: string; reason: string; build: Record<string, unknown> }[];
    };
    expect(summary.packages).toMatchObject([
      {
        name: PKG,
        reason: "unchanged",
        build: {
          runtime: "python3.12",
          architecture: "x86_64",
          fingerprint: first.fingerprint,
          builder: "codebuild",
          id: null,
        },
      },
    ]);
  });

  it("fails the job naming the package and the build when a build failed", { timeout: TIMEOUT }, async () => {
    const again = await startBuild('{"force":true}');
    const pointer = await ssm.send(new GetParameterCommand({ Name: `${prefix}/${PKG}/artifact-key` }));
    reports.status = "FAILED";
    try {
      const event = jobEvent({ continuationToken: again.token });
      await handler(event, context);
      expect(jobs.at(-1)).toEqual({
        command: "PutJobFailureResultCommand",
        input: {
          jobId: event["CodePipeline.job"].id,
          failureDetails: {
            type: "JobFailed",
            message: expect.stringMatching(
              new RegExp(
                `${PKG} \\(sync\\): CodeBuild build ${again.id} of ${PKG} \\(python3\\.12 x86_64\\) ended FAILED`,
              ),
            ),
            externalExecutionId: expect.any(String),
          },
        },
      });
    } finally {
      reports.status = undefined;
    }
    const after = await ssm.send(new GetParameterCommand({ Name: `${prefix}/${PKG}/artifact-key` }));
    expect(after.Parameter?.Value).toBe(pointer.Parameter?.Value);
  });

  it("fails the job as a configuration error for a token naming builds of other projects", async () => {
    const event = jobEvent({ continuationToken: JSON.stringify({ builds: [`other:${randomUUID()}`] }) });
    await handler(event, context);
    expect(jobs.at(-1)?.input.failureDetails).toMatchObject({
      type: "ConfigurationError",
      message: expect.stringMatching(/names a build of "other", not of ours/),
    });
  });
});
