import { describe, expect, it } from "vitest";
import type { Fault, FaultRule } from "../emulators/server.ts";
import { blobSha } from "../fixtures/repo.ts";
import {
  type AwsScope,
  branch,
  type CoreOptions,
  type CoreRun,
  keysUnder,
  minute,
  on,
  onlyPackage,
  type Provider,
  pointerOf,
  runCore,
  touch,
  useSources,
} from "./harness.ts";
import { watchSecrets } from "./secrets.ts";

watchSecrets();

const sources = useSources({ bucket: "rel-budget" });
const { s3, ssm } = sources;

const HOST = String.raw`http://127\.0\.0\.1:\d+`;

/** The download of layers/data/blob.bin at any commit. */
function blobDownload(provider: Provider): FaultRule["match"] {
  if (provider === "bitbucket") return on("api", /\/src\/[0-9a-f]{40}\/layers\/data\/blob\.bin$/);
  const sha = blobSha(sources.repo.head().entries.get("layers/data/blob.bin")?.content ?? Buffer.alloc(0));
  return on("api", new RegExp(`/git/blobs/${sha}$`));
}

interface Scenario {
  scope: AwsScope;
  ref: string;
  goodKey: string;
  keysBefore: string[];
}

/**
 * A package with a good artifact behind its pointer (synced at minute 0), then a new commit that changes
 * the folder, so the next run must download it again.
 */
async function lastGood(provider: Provider, strategy: "walk" | "archive"): Promise<Scenario> {
  const scope = sources.scope();
  const ref = branch(sources.repo, provider);
  const first = await runCore(sources, {
    provider,
    strategy,
    paths: ["layers/data"],
    ref,
    aws: scope,
    clock: minute(0),
  });
  const good = onlyPackage(first);
  expect(good.error).toBeUndefined();
  expect(good.key).toBeTruthy();
  touch(sources.repo, ref, "layers/data");
  return { scope, ref, goodKey: good.key ?? "", keysBefore: await keysUnder(s3, sources.bucket, scope.artifactPrefix) };
}

async function faultedRun(
  provider: Provider,
  strategy: "walk" | "archive",
  s: Scenario,
  rule: { match: FaultRule["match"]; fault: Fault },
  extra: Partial<CoreOptions> = {},
): Promise<{ run: CoreRun; attempts: number }> {
  sources.emulator(provider).inject({ ...rule, times: Number.POSITIVE_INFINITY });
  const before = sources.emulator(provider).requests.length;
  const run = await runCore(sources, {
    provider,
    strategy,
    paths: ["layers/data"],
    ref: s.ref,
    aws: s.scope,
    clock: minute(1),
    env: { SOURCE_MAX_RETRIES: "2" },
    ...extra,
  });
  const attempts = sources
    .emulator(provider)
    .requests.slice(before)
    .filter((q) => rule.match(q)).length;
  return { run, attempts };
}

async function expectLastGoodKept(s: Scenario): Promise<void> {
  expect(await pointerOf(ssm, s.scope.prefix, "data")).toBe(s.goodKey);
  expect(await keysUnder(s3, sources.bucket, s.scope.artifactPrefix)).toEqual(s.keysBefore);
}

/**
 * An archive finishes each package as soon as the stream leaves its folder, before the gzip trailer has
 * vouched for the bytes, so a package may already have been uploaded when the download fails for good. That
 * object is never pointed to and stays unreferenced (docs/operations.md, Known limits): the pointer keeps
 * the last good artifact, which is still there, and nothing else is pointed to.
 */
async function expectLastGoodPointed(s: Scenario): Promise<void> {
  expect(await pointerOf(ssm, s.scope.prefix, "data")).toBe(s.goodKey);
  const after = await keysUnder(s3, sources.bucket, s.scope.artifactPrefix);
  expect(after).toEqual(expect.arrayContaining(s.keysBefore));
  expect(after.length).toBeLessThanOrEqual(s.keysBefore.length + 1);
}

function packageError(run: CoreRun): string {
  const p = onlyPackage(run);
  expect(p.skipped).toBe(false);
  expect(p.error).toBeDefined();
  return p.error ?? "";
}

describe("a file download that keeps failing past --max-retries", () => {
  it("fails the package naming the request and its 503, after 1 + 2 attempts; the pointer keeps the last good artifact and no object is added", async () => {
    const s = await lastGood("bitbucket", "walk");
    const { run, attempts } = await faultedRun("bitbucket", "walk", s, {
      match: blobDownload("bitbucket"),
      fault: { kind: "status", status: 503, body: { type: "error", error: { message: "Service unavailable" } } },
    });
    expect(attempts).toBe(3);
    expect(run.waits).toHaveLength(2);
    expect(packageError(run)).toMatch(
      new RegExp(
        `^GET ${HOST}/2\\.0/repositories/acme/layers/src/[0-9a-f]{40}/layers/data/blob\\.bin \\(download "layers/data/blob\\.bin"\\) answered 503 Service Unavailable: Service unavailable`,
      ),
    );
    await expectLastGoodKept(s);
  });

  it("fails the package naming the request and GitHub's 500 message; the pointer keeps the last good artifact", async () => {
    const s = await lastGood("github", "walk");
    const { run, attempts } = await faultedRun("github", "walk", s, {
      match: blobDownload("github"),
      fault: { kind: "status", status: 500, body: { message: "Server Error" } },
    });
    expect(attempts).toBe(3);
    expect(packageError(run)).toMatch(
      new RegExp(
        `^GET ${HOST}/repos/acme/layers/git/blobs/[0-9a-f]{40} \\(download "layers/data/blob\\.bin"\\) answered 500 Internal Server Error: Server Error`,
      ),
    );
    await expectLastGoodKept(s);
  });

  it("fails the package naming the request and the reset connection", async () => {
    const s = await lastGood("bitbucket", "walk");
    const { run, attempts } = await faultedRun("bitbucket", "walk", s, {
      match: blobDownload("bitbucket"),
      fault: { kind: "reset-mid-body" },
    });
    expect(attempts).toBe(3);
    expect(packageError(run)).toMatch(
      /^GET \S+\/layers\/data\/blob\.bin \(download "layers\/data\/blob\.bin"\) failed after 3 attempts: (UND_ERR_SOCKET|ECONNRESET)/,
    );
    await expectLastGoodKept(s);
  });

  it("fails the package naming the request and the Content-Length mismatch", async () => {
    const s = await lastGood("github", "walk");
    const { run } = await faultedRun("github", "walk", s, {
      match: blobDownload("github"),
      fault: { kind: "length-mismatch" },
    });
    expect(packageError(run)).toMatch(
      /^GET \S+\/git\/blobs\/[0-9a-f]{40} \(download "layers\/data\/blob\.bin"\) failed after 3 attempts: \S+ (other side closed|.*[Cc]ontent-[Ll]ength)/,
    );
    await expectLastGoodKept(s);
  });

  it("fails the package naming the request and how short the body was", async () => {
    const s = await lastGood("bitbucket", "walk");
    const { run } = await faultedRun("bitbucket", "walk", s, {
      match: blobDownload("bitbucket"),
      fault: { kind: "truncate-body" },
    });
    expect(packageError(run)).toMatch(
      /failed after 3 attempts: .*\(download "layers\/data\/blob\.bin"\): the body was 49152 bytes, the listing says 98304$/,
    );
    await expectLastGoodKept(s);
  });

  it("fails the package naming the request and the timeout when every answer is slower than --timeout", async () => {
    const s = await lastGood("github", "walk");
    const { run, attempts } = await faultedRun(
      "github",
      "walk",
      s,
      { match: blobDownload("github"), fault: { kind: "delay", ms: 1500 } },
      { env: { SOURCE_MAX_RETRIES: "0" }, flags: { timeout: "1" } },
    );
    expect(attempts).toBe(1);
    expect(packageError(run)).toMatch(
      /^GET \S+\/git\/blobs\/[0-9a-f]{40} \(download "layers\/data\/blob\.bin"\) failed after 1 attempt: UND_ERR_HEADERS_TIMEOUT/,
    );
    await expectLastGoodKept(s);
  });
});

describe("a rate limit that does not clear within the wait budget", () => {
  it("fails on a 429 that keeps asking to wait, saying the limit did not clear and what the server asked", async () => {
    const s = await lastGood("bitbucket", "walk");
    const { run } = await faultedRun(
      "bitbucket",
      "walk",
      s,
      {
        match: on("api", /\/src\/[0-9a-f]{40}\/layers\/data\/$/),
        fault: {
          kind: "status",
          status: 429,
          headers: { "retry-after": "1" },
          body: { type: "error", error: { message: "Rate limit for this resource has been exceeded." } },
        },
      },
      { env: { SOURCE_MAX_RETRIES: "2", SOURCE_RATE_LIMIT_WAIT_SECONDS: "2" } },
    );
    expect(run.waits).toEqual([1000, 1000]);
    expect(packageError(run)).toMatch(
      /^GET \S+\/layers\/data\/\?\S* \(list "layers\/data"\) hit the provider's rate limit \(HTTP 429\) and it did not clear within 2 s; the server asked to wait 1 s\. Retry later/,
    );
    await expectLastGoodKept(s);
  });

  it("fails on GitHub's 403 primary limit at once, saying when it resets", async () => {
    const s = await lastGood("github", "walk");
    const reset = Math.floor(Date.now() / 1000) + 3600;
    const { run, attempts } = await faultedRun("github", "walk", s, {
      match: blobDownload("github"),
      fault: {
        kind: "status",
        status: 403,
        headers: { "x-ratelimit-remaining": "0", "x-ratelimit-reset": String(reset) },
        body: { message: "API rate limit exceeded for user ID 1." },
      },
    });
    expect(attempts).toBe(1);
    expect(run.waits).toEqual([]);
    expect(packageError(run)).toContain(
      `hit the provider's rate limit (HTTP 403) and it did not clear within 60 s; it resets at ${new Date(reset * 1000).toISOString()}`,
    );
    await expectLastGoodKept(s);
  });
});

describe("an archive that is corrupt or cut short on every download", () => {
  for (const [provider, match] of [
    ["bitbucket", on("web", /\/get\/[0-9a-f]{40}\.tar\.gz$/)],
    ["github", on("codeload", /legacy\.tar\.gz/)],
  ] as const) {
    for (const fault of [{ kind: "corrupt-body" }, { kind: "truncate-body" }] as const) {
      it(`${provider}: fails the run (${fault.kind}) naming the download and that the archive is corrupt or cut short; nothing new is pointed to`, async () => {
        const s = await lastGood(provider, "archive");
        const { run, attempts } = await faultedRun(provider, "archive", s, { match, fault });
        expect(attempts).toBe(3);
        expect(run.summary).toBeUndefined();
        expect(run.error?.message).toMatch(
          /^GET \S+ \(download the repository (archive|tarball)\) failed after 3 attempts: .*the archive is corrupt or was cut short \(.+\)$/,
        );
        await expectLastGoodPointed(s);
      });
    }
  }
});
