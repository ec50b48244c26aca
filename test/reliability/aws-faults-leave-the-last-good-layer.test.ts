import { LambdaClient } from "@aws-sdk/client-lambda";
import { GetObjectCommand, HeadObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { GetParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { describe, expect, it } from "vitest";
import { type PublishRequest, type PublishSummary, runPublish } from "../../lib/publish/publish.ts";
import { uniqueName } from "../support/aws.ts";
import {
  parameterOf,
  publishConfig,
  putArtifact,
  type RecordedClients,
  recordedClients,
  sharesNamed,
  statementsOf,
  versionsOf,
} from "../support/publish-fixtures.ts";
import { expectZipMatchesTree } from "../support/zip.ts";
import { injectFault, recordAttempts, recordCommands, serviceError, type WithStack } from "./aws-faults.ts";
import {
  type AwsScope,
  branch,
  keysUnder,
  minute,
  onlyPackage,
  pointerOf,
  runCore,
  touch,
  useSources,
} from "./harness.ts";
import { scan, watchSecrets } from "./secrets.ts";

watchSecrets();

const sources = useSources({ bucket: "rel-aws" });
const admin = { s3: sources.s3, ssm: sources.ssm, lambda: sources.own(new LambdaClient({})) };
const OUTSIDE_ACCOUNT = "111122223333";

/** Fresh S3 and SSM clients for one run, so faults injected into them affect that run only. */
function syncClients(): { s3: S3Client; ssm: SSMClient } {
  return { s3: sources.perTest(new S3Client({})), ssm: sources.perTest(new SSMClient({})) };
}

function scoped(scope: AwsScope, clients: { s3: S3Client; ssm: SSMClient }): AwsScope {
  return { ...scope, ...clients };
}

/** One bitbucket sync of `layers/tools` at `ref` into `aws` (at `clock`, default now). */
function syncTools(ref: string, aws: AwsScope, clock?: Date) {
  return runCore(sources, { provider: "bitbucket", paths: ["layers/tools"], ref, aws, clock });
}

/** The client's next `command` fails once with a service error (a throttle the SDK retries). */
function failsOnce(client: WithStack, command: string, ...error: Parameters<typeof serviceError>): void {
  injectFault(client, { command, error: () => serviceError(...error), times: 1 });
}

/** The artifact at `key` holds exactly `layers/tools` at the head of `ref`, read back by independent readers. */
async function expectToolsAt(key: string, ref: string): Promise<void> {
  const body = await admin.s3.send(new GetObjectCommand({ Bucket: sources.bucket, Key: key }));
  const zip = Buffer.from((await body.Body?.transformToByteArray()) ?? new Uint8Array());
  await expectZipMatchesTree(zip, sources.repo.head(ref), "layers/tools");
}

/** `layers/tools` synced at minute 0 with healthy clients, then changed by a new commit on its branch. */
async function lastGood(): Promise<{ scope: AwsScope; ref: string; goodKey: string; keysBefore: string[] }> {
  const scope = sources.scope();
  const ref = branch(sources.repo, "aws");
  const first = await syncTools(ref, scope, minute(0));
  const good = onlyPackage(first);
  expect(good.error).toBeUndefined();
  await expectToolsAt(good.key ?? "", ref);
  touch(sources.repo, ref, "layers/tools");
  return {
    scope,
    ref,
    goodKey: good.key ?? "",
    keysBefore: await keysUnder(admin.s3, sources.bucket, scope.artifactPrefix),
  };
}

describe("sync: an S3 upload that fails", () => {
  it("writes no pointer: the package fails naming the object and the error, and the pointer keeps the last good artifact", async () => {
    const s = await lastGood();
    const clients = syncClients();
    injectFault(clients.s3, {
      command: "PutObjectCommand",
      error: () => serviceError("AccessDenied", "Access Denied", 403),
    });
    const ssmCommands = recordCommands(clients.ssm);
    const run = await syncTools(s.ref, scoped(s.scope, clients), minute(1));
    const p = onlyPackage(run);
    expect(p.error).toMatch(
      new RegExp(
        `^uploading s3://${sources.bucket}/${s.scope.artifactPrefix}tools/tools-20261121T100100Z-[0-9a-f]{7}\\.zip failed \\(AccessDenied\\): Access Denied$`,
      ),
    );
    expect(ssmCommands).not.toContain("PutParameterCommand");
    expect(await pointerOf(admin.ssm, s.scope.prefix, "tools")).toBe(s.goodKey);
    expect(await keysUnder(admin.s3, sources.bucket, s.scope.artifactPrefix)).toEqual(s.keysBefore);
  });

  it("creates no pointer at all for a package that never had one", async () => {
    const scope = sources.scope();
    const clients = syncClients();
    const attempts = recordAttempts(clients.s3);
    injectFault(clients.s3, {
      command: "PutObjectCommand",
      error: () => serviceError("InternalError", "We encountered an internal error. Please try again.", 500),
    });
    const run = await syncTools("main", scoped(scope, clients));
    expect(onlyPackage(run).error).toMatch(/^uploading s3:\/\/\S+ failed \(InternalError\): We encountered/);
    // the SDK retried the 500 (three attempts in all) before giving up
    expect(attempts.filter((c) => c === "PutObjectCommand")).toHaveLength(3);
    expect(await pointerOf(admin.ssm, scope.prefix, "tools")).toBeUndefined();
    expect(await keysUnder(admin.s3, sources.bucket, scope.artifactPrefix)).toEqual([]);
  });
});

describe("sync: an SSM pointer write that fails", () => {
  it("leaves the uploaded object unreferenced and reports the error; the next run moves the pointer to a new artifact", async () => {
    const s = await lastGood();
    const failing = syncClients();
    injectFault(failing.ssm, {
      command: "PutParameterCommand",
      error: () => serviceError("AccessDeniedException", "User is not authorized to perform ssm:PutParameter", 400),
    });
    const run = await syncTools(s.ref, scoped(s.scope, failing), minute(1));
    const p = onlyPackage(run);
    expect(p.error).toBe(
      `writing SSM parameter ${s.scope.prefix}/tools/artifact-key failed (AccessDeniedException): User is not authorized to perform ssm:PutParameter`,
    );
    expect(await pointerOf(admin.ssm, s.scope.prefix, "tools")).toBe(s.goodKey);
    const orphan = p.key ?? "";
    expect(await keysUnder(admin.s3, sources.bucket, s.scope.artifactPrefix)).toEqual([...s.keysBefore, orphan].sort());
    const head = await admin.s3.send(new HeadObjectCommand({ Bucket: sources.bucket, Key: orphan }));
    expect(head.Metadata?.["content-sha256"]).toBe(p.sha256);
    await expectToolsAt(orphan, s.ref);

    const next = await syncTools(s.ref, s.scope, minute(2));
    const fixed = onlyPackage(next);
    expect(fixed.error).toBeUndefined();
    expect(fixed.key).toMatch(/tools-20261121T100200Z-/);
    expect(await pointerOf(admin.ssm, s.scope.prefix, "tools")).toBe(fixed.key);
    await expectToolsAt(fixed.key ?? "", s.ref);
  });
});

describe("sync: AWS throttling", () => {
  it("is retried (S3 SlowDown on the upload, SSM ThrottlingException on reads and writes, TooManyUpdates on the pointer) and the run succeeds", async () => {
    const s = await lastGood();
    const clients = syncClients();
    const s3Attempts = recordAttempts(clients.s3);
    const ssmAttempts = recordAttempts(clients.ssm);
    failsOnce(clients.s3, "PutObjectCommand", "SlowDown", "Please reduce your request rate.", 503);
    failsOnce(clients.ssm, "GetParameterCommand", "ThrottlingException", "Rate exceeded", 400);
    failsOnce(clients.ssm, "PutParameterCommand", "ThrottlingException", "Rate exceeded", 400);
    failsOnce(clients.ssm, "PutParameterCommand", "TooManyUpdates", "Too many updates to the parameter", 400);
    const run = await syncTools(s.ref, scoped(s.scope, clients), minute(1));
    const p = onlyPackage(run);
    expect(p.error).toBeUndefined();
    expect(await pointerOf(admin.ssm, s.scope.prefix, "tools")).toBe(p.key);
    expect(s3Attempts.filter((c) => c === "PutObjectCommand")).toHaveLength(2);
    expect(ssmAttempts.filter((c) => c === "PutParameterCommand").length).toBeGreaterThanOrEqual(3);
  });
});

// ------------------------------------------------------------------------------------------------ publish

const request = (pkg: string): PublishRequest => ({ kind: "packages", packages: [pkg], trigger: "manual" });

function publishClients(): RecordedClients {
  return sources.perTest(recordedClients());
}

async function publishScenario(content: string) {
  const prefix = `/${uniqueName("relpub")}`;
  const pkg = uniqueName("py");
  const artifact = await putArtifact(admin, { bucket: sources.bucket, parameterPrefix: prefix, pkg, content });
  const config = publishConfig({
    ARTIFACT_BUCKET: sources.bucket,
    PARAMETER_PREFIX: prefix,
    SHARE_ACCOUNT_IDS: OUTSIDE_ACCOUNT,
  });
  return { prefix, pkg, artifact, config, arnParameter: `${prefix}/${pkg}/layer-version-arn` };
}

async function publish(
  config: ReturnType<typeof publishConfig>,
  pkg: string,
  c: RecordedClients,
): Promise<PublishSummary["packages"][number]> {
  const summary = await runPublish(config, request(pkg), c.deps());
  scan("publish summary", summary);
  const p = summary.packages[0];
  if (!p) throw new Error("no package in the publish summary");
  return p;
}

async function arnParameterVersion(name: string): Promise<number | undefined> {
  try {
    return (await admin.ssm.send(new GetParameterCommand({ Name: name }))).Parameter?.Version;
  } catch {
    return undefined;
  }
}

describe("publish: a PublishLayerVersion that fails", () => {
  it("leaves no version and no ARN parameter, names the call and says to run again; the retry publishes exactly one version", async () => {
    const n = await publishScenario("publish-fails");
    const failing = publishClients();
    injectFault(failing.lambda, {
      command: "PublishLayerVersionCommand",
      error: () => serviceError("ServiceException", "Lambda was unable to complete the request", 500),
    });
    const broken = await publish(n.config, n.pkg, failing);
    expect(broken.error).toBe(
      `lambda:PublishLayerVersion on layer ${n.pkg} from s3://${sources.bucket}/${n.artifact.key} failed (ServiceException: Lambda was unable to complete the request); run again (a run resumes where the last one stopped)`,
    );
    expect(await versionsOf(failing.lambda, n.pkg)).toEqual([]);
    expect(await parameterOf(failing.ssm, n.arnParameter)).toBeUndefined();

    const healthy = publishClients();
    const retried = await publish(n.config, n.pkg, healthy);
    expect(retried.error).toBeUndefined();
    const versions = await versionsOf(healthy.lambda, n.pkg);
    expect(versions.map((v) => v.version)).toEqual([1]);
    expect((await parameterOf(healthy.ssm, n.arnParameter))?.value).toBe(versions[0]?.arn);
  });

  it("that succeeded on the server but lost its response, retried by the SDK, still leaves exactly one version", async () => {
    const n = await publishScenario("lost-and-retried");
    const c = publishClients();
    const fault = injectFault(c.lambda, {
      command: "PublishLayerVersionCommand",
      error: () => serviceError("ServiceException", "the response was lost", 502),
      times: 1,
      after: true,
    });
    const p = await publish(n.config, n.pkg, c);
    expect(fault.calls).toBe(2); // the lost call reached moto and created a version; the SDK's retry created another
    expect(p.error).toBeUndefined();
    const versions = await versionsOf(c.lambda, n.pkg);
    expect(versions.map((v) => v.version)).toEqual([1]);
    expect(p.deleted).toEqual([2]);
    expect(p.layerVersionArn).toBe(versions[0]?.arn);
    expect((await parameterOf(c.ssm, n.arnParameter))?.value).toBe(versions[0]?.arn);
    expect((await statementsOf(c.lambda, n.pkg, 1)).map((s) => s.sid)).toEqual([
      `layer-sync-account-${OUTSIDE_ACCOUNT}`,
    ]);
  });

  it("that succeeded on the server but lost its response in a run that then failed, is found by the next run, which publishes nothing", async () => {
    const n = await publishScenario("lost-then-failed");
    const failing = publishClients();
    injectFault(failing.lambda, {
      command: "PublishLayerVersionCommand",
      error: () => serviceError("RequestAborted", "the connection was closed before the response", 400),
      times: 1,
      after: true,
    });
    // the first listing (before publishing) works; the one that would find the landed version fails
    injectFault(failing.lambda, {
      command: "ListLayerVersionsCommand",
      error: () => serviceError("AccessDeniedException", "not allowed to list", 403),
      skip: 1,
    });
    const broken = await publish(n.config, n.pkg, failing);
    expect(broken.error).toBe(
      `lambda:PublishLayerVersion on layer ${n.pkg} from s3://${sources.bucket}/${n.artifact.key} failed (RequestAborted: the connection was closed before the response); run again (a run resumes where the last one stopped)`,
    );
    expect(await parameterOf(admin.ssm, n.arnParameter)).toBeUndefined();
    expect((await versionsOf(admin.lambda, n.pkg)).map((v) => v.version)).toEqual([1]); // it did land

    const healthy = publishClients();
    const resumed = await publish(n.config, n.pkg, healthy);
    expect(resumed.error).toBeUndefined();
    expect(healthy.inputs("PublishLayerVersionCommand")).toEqual([]);
    const versions = await versionsOf(healthy.lambda, n.pkg);
    expect(versions.map((v) => v.version)).toEqual([1]);
    expect(resumed).toMatchObject({ version: 1, published: false, reason: "resumed" });
    expect((await parameterOf(healthy.ssm, n.arnParameter))?.value).toBe(versions[0]?.arn);
  });
});

describe("publish: a sharing failure", () => {
  it("does not touch the ARN parameter, which already names a version with its permissions in place; the next run completes the share without publishing or rewriting it", async () => {
    const n = await publishScenario("share-fails");
    const failing = publishClients();
    injectFault(failing.ram, {
      command: "CreateResourceShareCommand",
      error: () => serviceError("ServiceUnavailableException", "RAM is unavailable", 503),
    });
    const broken = await publish(n.config, n.pkg, failing);
    expect(broken.error).toMatch(
      new RegExp(
        `^ram:CreateResourceShare on resource share layer-sync-${n.pkg} for arn:aws:ssm:\\S+:parameter${n.prefix}/${n.pkg}/layer-version-arn failed \\(ServiceUnavailableException: RAM is unavailable\\); run again`,
      ),
    );
    const arn = broken.layerVersionArn;
    expect((await parameterOf(admin.ssm, n.arnParameter))?.value).toBe(arn);
    expect((await statementsOf(failing.lambda, n.pkg, 1)).map((s) => s.sid)).toEqual([
      `layer-sync-account-${OUTSIDE_ACCOUNT}`,
    ]);
    const parameterVersion = await arnParameterVersion(n.arnParameter);

    const healthy = publishClients();
    const resumed = await publish(n.config, n.pkg, healthy);
    expect(resumed.error).toBeUndefined();
    expect(resumed).toMatchObject({ version: 1, reason: "resumed", parameter: { written: false } });
    expect(resumed.share?.created).toBe(true);
    expect(healthy.inputs("PublishLayerVersionCommand")).toEqual([]);
    expect(healthy.inputs("PutParameterCommand")).toEqual([]);
    expect(await arnParameterVersion(n.arnParameter)).toBe(parameterVersion);
    expect(await sharesNamed(healthy.ram, `layer-sync-${n.pkg}`)).toHaveLength(1);
  });
});

describe("publish: AWS throttling", () => {
  it("is retried (Lambda TooManyRequestsException, SSM ThrottlingException, RAM ThrottlingException) and ends with one version, shared", async () => {
    const n = await publishScenario("throttled");
    const c = publishClients();
    const lambdaAttempts = recordAttempts(c.lambda);
    const ramAttempts = recordAttempts(c.ram);
    failsOnce(c.lambda, "PublishLayerVersionCommand", "TooManyRequestsException", "Rate exceeded", 429);
    failsOnce(c.ssm, "PutParameterCommand", "ThrottlingException", "Rate exceeded", 400);
    failsOnce(c.ram, "CreateResourceShareCommand", "ThrottlingException", "Rate exceeded", 400);
    const p = await publish(n.config, n.pkg, c);
    expect(p.error).toBeUndefined();
    expect(p).toMatchObject({ version: 1, published: true, share: { created: true } });
    expect((await versionsOf(c.lambda, n.pkg)).map((v) => v.version)).toEqual([1]);
    expect(lambdaAttempts.filter((x) => x === "PublishLayerVersionCommand")).toHaveLength(2);
    expect(ramAttempts.filter((x) => x === "CreateResourceShareCommand")).toHaveLength(2);
    expect((await parameterOf(c.ssm, n.arnParameter))?.value).toBe(p.layerVersionArn);
  });
});
