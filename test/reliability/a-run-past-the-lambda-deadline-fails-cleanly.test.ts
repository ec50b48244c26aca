import type { Context } from "aws-lambda";
import { afterEach, describe, expect, it } from "vitest";
import { handler } from "../../handlers/sync.ts";
import { RunDeadline } from "../../lib/common/deadline.ts";
import { blobSha } from "../fixtures/repo.ts";
import { uniqueName } from "../support/aws.ts";
import {
  branch,
  keysUnder,
  onlyPackage,
  type Provider,
  pointerOf,
  runCore,
  sourceEnv,
  tokenFor,
  touch,
  useSources,
} from "./harness.ts";
import { scan, watchSecrets } from "./secrets.ts";

watchSecrets();

const sources = useSources({ bucket: "rel-deadline" });
const { s3, ssm } = sources;

/** A fake Lambda context whose remaining time is `ms` when the handler asks. */
function contextWith(ms: number): Context {
  const end = Date.now() + ms;
  return {
    functionName: "layer-sync-sync",
    awsRequestId: `deadline-${ms}`,
    invokedFunctionArn: "arn:aws:lambda:eu-west-1:123456789012:function:layer-sync-sync",
    memoryLimitInMB: "2048",
    getRemainingTimeInMillis: () => end - Date.now(),
  } as unknown as Context;
}

const saved = { ...process.env };
afterEach(() => {
  for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
  Object.assign(process.env, saved);
});

describe("a sync handler run that cannot finish before the function's remaining time", () => {
  for (const provider of ["bitbucket", "github"] as const satisfies readonly Provider[]) {
    it(`${provider}: aborts the trickling download at the deadline, throws naming the package and the deadline, and leaves the pointer`, async () => {
      const prefix = `/${uniqueName("reldl")}`;
      const artifactPrefix = `${uniqueName("art")}/`;
      const ref = branch(sources.repo, "deadline");
      Object.assign(process.env, {
        ...sourceEnv(sources, provider),
        SOURCE_TOKEN: tokenFor(provider),
        SOURCE_REF: ref,
        SOURCE_PATHS: "layers/data",
        SOURCE_STRATEGY: "walk",
        SOURCE_MAX_RETRIES: "0",
        ARTIFACT_BUCKET: sources.bucket,
        ARTIFACT_PREFIX: artifactPrefix,
        PARAMETER_PREFIX: prefix,
        POWERTOOLS_DEV: "true",
      });
      // a first run with time to spare points at an artifact
      await handler({}, contextWith(900_000));
      const before = await pointerOf(ssm, prefix, "data");
      expect(before).toMatch(/data-\d{8}T\d{6}Z-[0-9a-f]{7}\.zip$/);
      const objects = await keysUnder(s3, sources.bucket, artifactPrefix);

      // a new commit, whose 96 KiB file the source sends one byte every 50 ms (never idle, so no timeout)
      touch(sources.repo, ref, "layers/data");
      const blob = blobSha(sources.repo.head().entries.get("layers/data/blob.bin")?.content ?? Buffer.alloc(0));
      const emulator = provider === "github" ? sources.gh : sources.bb;
      emulator.inject({
        match: (t) =>
          t.host === "api" &&
          (decodeURIComponent(t.path).endsWith("/layers/data/blob.bin") || t.path.endsWith(`/git/blobs/${blob}`)),
        fault: { kind: "trickle", intervalMs: 50 },
        times: Number.POSITIVE_INFINITY,
      });
      // the deadline: 3 s less a margin of a tenth, 2.7 s from now. "Promptly" is not a measured time (the
      // machine may be busy): the 96 KiB body would take 80 minutes at this rate, so a run that waited for it
      // fails on vitest's test timeout; the message says the download was cut at the deadline, which the run
      // derived from the context, and the trickle was never retried.
      const remaining = 3000;
      emulator.resetRequests();
      type Failure = Error & { summary?: { packages: { name: string; error?: string }[] } };
      const error: Failure = await handler({}, contextWith(remaining)).then(
        () => new Error("the handler returned"),
        (e: unknown) => e as Failure,
      );
      scan("deadline error", error);
      expect(
        emulator.requests.filter((r) => r.path.endsWith("/layers/data/blob.bin") || r.path.endsWith(blob)),
      ).toHaveLength(1);
      expect(error.name).toBe("SyncFailedError");
      expect(error.message).not.toContain("\n");
      expect(error.message).toMatch(
        /^1 of 1 package\(s\) failed at [0-9a-f]{7}: data: GET \S+ \(download "layers\/data\/blob\.bin"\) was cut at the run's deadline \d{4}-\d\d-\d\dT[\d:.]+Z \(the Lambda function had 3\.0 s left when the run started, and the run keeps 0\.3 s before its timeout\); nothing was uploaded or pointed to after it and the previous pointer stays/,
      );
      // the summary (which the summary event carries) says the same for the package
      expect(error.summary?.packages).toEqual([
        expect.objectContaining({ name: "data", error: expect.stringMatching(/was cut at the run's deadline/) }),
      ]);
      expect(await pointerOf(ssm, prefix, "data")).toBe(before);
      expect(await keysUnder(s3, sources.bucket, artifactPrefix)).toEqual(objects);
    });
  }
});

/** A deadline that passes at the first check whose description matches `at` (and stays passed). */
class DeadlineAt extends RunDeadline {
  private hit = false;
  constructor(private readonly at_: RegExp) {
    super(Date.now() + 3_600_000, "a test deadline");
  }
  override get passed(): boolean {
    return this.hit;
  }
  override check(doing: string): void {
    if (this.at_.test(doing)) this.hit = true;
    super.check(doing);
  }
}

describe("the sync core at its deadline", () => {
  it("starts no upload once the deadline has passed, and says which package was cut", async () => {
    const aws = sources.scope();
    const run = await runCore(sources, {
      provider: "bitbucket",
      paths: ["layers/data"],
      aws,
      deadline: new DeadlineAt(/^uploading/),
    });
    expect(onlyPackage(run).error).toMatch(
      /^uploading package "data" was cut at the run's deadline .* \(a test deadline\)/,
    );
    expect(await keysUnder(s3, sources.bucket, aws.artifactPrefix)).toEqual([]);
    expect(await pointerOf(ssm, aws.prefix, "data")).toBeUndefined();
  });

  it("writes no pointer once the deadline has passed, even for an artifact it uploaded", async () => {
    const aws = sources.scope();
    const run = await runCore(sources, {
      provider: "bitbucket",
      paths: ["layers/data"],
      aws,
      deadline: new DeadlineAt(/^pointing/),
    });
    expect(onlyPackage(run).error).toMatch(/^pointing package "data" at \S+\.zip was cut at the run's deadline/);
    expect(await keysUnder(s3, sources.bucket, aws.artifactPrefix)).toHaveLength(1);
    expect(await pointerOf(ssm, aws.prefix, "data")).toBeUndefined();
  });
});
