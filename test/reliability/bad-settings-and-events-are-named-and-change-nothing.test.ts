import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Context } from "aws-lambda";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { handler as publishHandler } from "../../handlers/publish.ts";
import { awsClients, publishClients } from "../../handlers/runtime.ts";
import { handler as syncHandler } from "../../handlers/sync.ts";
import { SETTINGS } from "../../lib/common/config.ts";
import { recordCommands } from "./aws-faults.ts";
import { type CliRun, runCli, sourceEnv, useSources } from "./harness.ts";
import { BITBUCKET_TOKEN, scan, watchSecrets } from "./secrets.ts";

watchSecrets();

const sent: string[][] = [];
const sources = useSources({
  setup: () => {
    // every AWS client the handlers could use records what it sends: a rejected event or setting sends nothing
    sent.push(recordCommands(awsClients().s3), recordCommands(awsClients().ssm), recordCommands(awsClients().events));
    const p = publishClients();
    sent.push(recordCommands(p.lambda), recordCommands(p.ram), recordCommands(p.organizations));
  },
});

function nothingSent(): void {
  expect(sent.flat()).toEqual([]);
  expect(sources.bb.requests).toEqual([]);
}

/**
 * Exit 2 and, on stderr, one line, or a headline and one line per problem; returns the text without
 * `layer-sync: `.
 */
function configError(r: CliRun): string {
  expect(r.code, r.stderr).toBe(2);
  expect(r.stdout).toBe("");
  const lines = r.stderr.split("\n").filter((l) => l !== "");
  expect(lines[0]).toMatch(/^layer-sync: /);
  if (lines.length > 1) {
    expect(lines[0]).toBe(`layer-sync: invalid configuration (${lines.length - 1} problems):`);
    for (const line of lines.slice(1)) expect(line).toMatch(/^ {2}[A-Z_]+ /);
  }
  return lines.join("\n").slice("layer-sync: ".length);
}

/** A valid sync configuration, to which each case adds one bad value. */
function validEnv(): Record<string, string> {
  return {
    ...sourceEnv(sources, "bitbucket"),
    SOURCE_PATHS: "layers/tools",
    ARTIFACT_BUCKET: "layer-sync-artifacts",
    SOURCE_TOKEN: BITBUCKET_TOKEN,
  };
}

type Key = keyof typeof SETTINGS;

/** One bad value per setting, and the message it must give (after the setting's name). */
const BAD: [Key, string, string][] = [
  ["provider", "gitlab", 'must be "bitbucket" or "github" (got "gitlab")'],
  ["repository", "acme", 'must look like workspace/repo or owner/repo (got "acme")'],
  ["ref", "bad..ref", 'is not a valid branch, tag or commit name (got "bad..ref")'],
  ["paths", "layers/../etc", 'has a bad folder "layers/../etc" has an empty, "." or ".." segment'],
  ["apiUrl", "ftp://example.com", 'must be an http(s) URL (got "ftp://example.com")'],
  ["webUrl", "not a url", 'must be an http(s) URL (got "not a url")'],
  ["strategy", "clone", 'must be "auto", "walk" or "archive" (got "clone")'],
  ["tokenParameter", "bad name!", 'is not a valid SSM parameter name (got "bad name!")'],
  ["token", "two words", "contains whitespace or a line break; store the token alone, without spaces or newlines"],
  ["bucket", "Bad_Bucket", 'is not a valid S3 bucket name (got "Bad_Bucket")'],
  ["artifactPrefix", "/layers/", 'must be empty or end with "/" and not start with "/" (got "/layers/")'],
  [
    "parameterPrefix",
    "/aws/layers",
    'must be an SSM path such as /layer-sync: a leading "/", letters, digits, "_.-", not starting with /aws or /ssm (got "/aws/layers")',
  ],
  ["pipelineName", "bad name!", 'is not a valid pipeline name (got "bad name!")'],
  ["layerPrefix", "bad prefix!", 'may contain only letters, digits, "_" and "-" (got "bad prefix!")'],
  ["runtimes", "python2.7", 'has invalid Lambda runtime identifiers (e.g. nodejs24.x, python3.13): "python2.7"'],
  ["architectures", "mips", 'has invalid architectures (use "x86_64" and/or "arm64"): "mips"'],
  ["license", "x".repeat(513), "is 513 characters; Lambda allows at most 512"],
  ["shareOrg", "o-123", 'must be an organization id like o-abcd123456 (got "o-123")'],
  ["shareOu", "ou-bad", 'has invalid OU ids (ou-xxxx-xxxxxxxx): "ou-bad"'],
  ["shareAccount", "12345", 'has invalid 12-digit account ids: "12345"'],
  ["retain", "0", 'must be a whole number from 1 to 10000 (got "0")'],
  ["concurrency", "0", 'must be a whole number from 1 to 64 (got "0")'],
  ["timeout", "soon", 'must be a whole number from 1 to 900 (got "soon")'],
  ["maxRetries", "11", 'must be a whole number from 0 to 10 (got "11")'],
  ["rateLimitWait", "-1", 'must be a whole number from 0 to 900 (got "-1")'],
  ["maxFiles", "0", 'must be a whole number from 1 to 1000000 (got "0")'],
  ["maxBytes", "262144001", 'must be a whole number from 1 to 262144000 (got "262144001")'],
  ["summaryEventBus", "bad bus!", 'is not a valid EventBridge event bus name or ARN (got "bad bus!")'],
  ["publishRegions", "Mars", 'has invalid Region names (e.g. eu-west-1): "Mars"'],
  ["consumerSource", "sometimes", 'must be "none", "roles" or "config" (got "sometimes")'],
  ["aggregator", "bad name!", 'is not an AWS Config aggregator name (got "bad name!")'],
  [
    "aggregatorRole",
    "arn:aws:iam::1:role/x",
    'must be an IAM role ARN like arn:aws:iam::111122223333:role/name (got "arn:aws:iam::1:role/x")',
  ],
  ["readRole", "bad role!", 'must be an IAM role name (1-64 of letters, digits and +=,.@_-) (got "bad role!")'],
  ["regionBuckets", "us-east-1", 'has "us-east-1", which is not REGION=BUCKET (e.g. eu-west-1=my-layers-eu-west-1)'],
  ["pipIndexUrl", "ftp://pypi.example/simple", 'must be an http(s) URL (got "ftp://pypi.example/simple")'],
  [
    "npmRegistry",
    "https://user:pw@npm.example/",
    "must not carry credentials, a query or a fragment; put the credential in BUILD_INDEX_TOKEN_PARAMETER",
  ],
  ["indexTokenParameter", "bad name!", 'is not a valid SSM parameter name (got "bad name!")'],
  ["projectX86", "bad project!", 'is not a CodeBuild project name (got "bad project!")'],
  ["projectArm", "-x", 'is not a CodeBuild project name (got "-x")'],
  [
    "buildSourcePrefix",
    "/abs",
    'must be an S3 key prefix such as "build-source/": ending in "/", not starting with "/" (got "/abs")',
  ],
  [
    "buildOutputPrefix",
    "no-slash",
    'must be an S3 key prefix such as "build-output/": ending in "/", not starting with "/" (got "no-slash")',
  ],
  ["smokeTest", "maybe", 'must be "on" or "off" (got "maybe")'],
  [
    "smokeRole",
    "layer-sync-smoke",
    'is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME) (got "layer-sync-smoke")',
  ],
  ["canaryAccounts", "12345", 'has invalid 12-digit account ids: "12345"'],
  ["promoteAfterHours", "0", 'must be a whole number from 1 to 8760 (got "0")'],
];

/** The command that reads a setting: sync, or publish for the release settings that only publish reads. */
function commandOf(key: Key): string {
  const commands: readonly string[] = SETTINGS[key].commands;
  return commands.length === 0 || commands.includes("sync") ? "sync" : "publish";
}

/** The line names this problem: alone, or among others when the bad value also breaks another setting. */
function expectProblem(line: string, expected: string): void {
  if (line === expected) return;
  expect(line.startsWith("invalid configuration (") && line.includes(`\n  ${expected}`), line).toBe(true);
}

function nameOf(key: Key): string {
  const s = SETTINGS[key];
  return s.flag ? `${s.env} (--${s.flag})` : s.env;
}

describe("every setting in lib/common/config.ts", () => {
  it("has a bad-value case in this table", () => {
    expect(BAD.map(([key]) => key).sort()).toEqual((Object.keys(SETTINGS) as Key[]).sort());
  });

  for (const [key, value, problem] of BAD) {
    const s = SETTINGS[key];
    if (s.flag) {
      it(`${s.env}: a bad --${s.flag} exits 2 with one line naming the setting and the value, and nothing is sent`, async () => {
        const r = await runCli([commandOf(key), `--${s.flag}=${value}`], validEnv());
        expectProblem(configError(r), `${nameOf(key)} ${problem}`);
        nothingSent();
      });
    }
    it(`${s.env}: a bad environment value is refused the same way`, async () => {
      const r = await runCli([commandOf(key)], { ...validEnv(), [s.env]: value });
      const expected = key === "token" ? `SOURCE_TOKEN ${problem}` : `${nameOf(key)} ${problem}`;
      expectProblem(configError(r), expected);
      nothingSent();
    });
  }

  it("a public grant (SHARE_ACCOUNT_IDS=*) is refused, saying why", async () => {
    const r = await runCli(["sync", "--share-account", "*"], validEnv());
    expect(configError(r)).toBe(
      'SHARE_ACCOUNT_IDS (--share-account) contains "*", which would make every layer version public; use SHARE_ORGANIZATION_ID to share with the organization',
    );
  });

  it("several mistakes are reported together, one per line under one headline", async () => {
    const r = await runCli(["sync", "--provider", "gitlab", "--retain", "0"], { ...validEnv(), ARTIFACT_BUCKET: "" });
    expect(configError(r)).toBe(
      [
        "invalid configuration (3 problems):",
        '  RETAIN_VERSIONS (--retain) must be a whole number from 1 to 10000 (got "0")',
        '  SOURCE_PROVIDER (--provider) must be "bitbucket" or "github" (got "gitlab")',
        "  ARTIFACT_BUCKET (--bucket) is required: name the S3 bucket for the zips (or use --out DIR for a local build)",
      ].join("\n"),
    );
  });

  it("a token pasted into a URL setting is not echoed back", async () => {
    const r = await runCli(
      ["sync", "--api-url", `ftp://x-token-auth:${BITBUCKET_TOKEN}@bitbucket.example/2.0`],
      validEnv(),
    );
    expect(configError(r)).toMatch(
      /^SOURCE_API_URL \(--api-url\) must be an http\(s\) URL \(got "ftp:\/\/bitbucket\.example\/2\.0"\)$/,
    );
  });

  it("publish: a bad publish setting exits 2 naming it", async () => {
    const r = await runCli(["publish", "--retain", "0", "--bucket", "layer-sync-artifacts"], {});
    expect(configError(r)).toBe('RETAIN_VERSIONS (--retain) must be a whole number from 1 to 10000 (got "0")');
    nothingSent();
  });

  it("usage mistakes (an unknown flag, an unknown command) exit 2 and point at --help", async () => {
    for (const args of [["sync", "--no-such-flag"], ["deploy"]]) {
      const r = await runCli(args, validEnv());
      expect(r.code).toBe(2);
      expect(r.stderr.trimEnd().split("\n")).toEqual([
        expect.stringMatching(/^layer-sync: /),
        "run layer-sync --help for usage",
      ]);
    }
  });
});

// ------------------------------------------------------------------------------------------------ events

const context = {
  functionName: "layer-sync",
  awsRequestId: "reliability",
  invokedFunctionArn: "arn:aws:lambda:eu-west-1:123456789012:function:layer-sync",
  memoryLimitInMB: "2048",
  getRemainingTimeInMillis: () => 900_000,
} as unknown as Context;

async function rejection(promise: Promise<unknown>): Promise<Error> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  if (!error) throw new Error("the handler accepted the event");
  scan("handler error", error);
  return error;
}

describe("malformed events", () => {
  const saved = { ...process.env };
  beforeAll(() => {
    Object.assign(process.env, {
      ...validEnv(),
      SOURCE_TOKEN: BITBUCKET_TOKEN,
      PARAMETER_PREFIX: "/layer-sync-reliability",
      POWERTOOLS_DEV: "true",
      POWERTOOLS_METRICS_DISABLED: "true",
    });
  });
  afterEach(() => nothingSent());
  afterAll(() => {
    for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
    Object.assign(process.env, saved);
  });

  const syncCases: [string, unknown, string][] = [
    [
      "a string",
      "sync please",
      'the sync event must be a JSON object (a CodePipeline event or {"ref","paths","dryRun","force"}), got a string',
    ],
    [
      "an array",
      [],
      'the sync event must be a JSON object (a CodePipeline event or {"ref","paths","dryRun","force"}), got an array',
    ],
    [
      "an unknown field",
      { refs: "main" },
      'the manual sync payload has unknown field(s) "refs"; allowed: ref, paths, dryRun, force',
    ],
    ["an empty ref", { ref: " " }, '"ref" must be a non-empty string (a branch, tag or commit)'],
    ["paths as a string", { paths: "layers/tools" }, '"paths" must be a non-empty array of folder paths'],
    ["empty paths", { paths: [] }, '"paths" must be a non-empty array of folder paths'],
    [
      "a path that climbs out",
      { paths: ["../etc"] },
      '"paths" has a bad folder "../etc" has an empty, "." or ".." segment',
    ],
    ["a non-boolean dryRun", { dryRun: "yes" }, '"dryRun" must be true or false'],
    [
      "a pipeline event without a state",
      { source: "aws.codepipeline", "detail-type": "CodePipeline Pipeline Execution State Change", detail: {} },
      "the CodePipeline event has no detail.pipeline or detail.state",
    ],
    [
      "a CodePipeline job without an id",
      { "CodePipeline.job": {} },
      'the CodePipeline job event has no "CodePipeline.job".id',
    ],
  ];
  const publishCases: [string, unknown, string][] = [
    [
      "a number",
      42,
      'the publish event must be a JSON object (a Parameter Store Change event, {"package"}, {"packages"} or {}), got a number',
    ],
    ["both package and packages", { package: "a", packages: ["b"] }, 'give either "package" or "packages", not both'],
    ["a package name with a slash", { package: "no/slash" }, '"package" must be a package name such as "py-requests"'],
    ["empty packages", { packages: [] }, '"packages" must be a non-empty array of package names'],
    [
      "an unknown field",
      { pkg: "x" },
      'the manual publish payload has unknown field(s) "pkg"; allowed: package, packages, rollback',
    ],
    [
      "a Parameter Store Change without a name",
      { source: "aws.ssm", "detail-type": "Parameter Store Change", detail: { operation: "Update" } },
      "the Parameter Store Change event has no detail.name or detail.operation",
    ],
  ];
  const byHandler = [
    ["sync", syncHandler, syncCases],
    ["publish", publishHandler, publishCases],
  ] as const;
  for (const [name, handler, cases] of byHandler) {
    for (const [what, event, message] of cases) {
      it(`${name} handler: ${what} is rejected with "${message}" before anything is read or written`, async () => {
        const error = await rejection(handler(event, context));
        expect(error.name).toBe("EventValidationError");
        expect(error.message).toBe(message);
      });
    }
  }

  it("`layer-sync invoke` with a malformed event file exits 2 with the handler's message on one line", async () => {
    const file = join(sources.dir, "bad-event.json");
    await writeFile(file, JSON.stringify({ paths: "layers/tools" }));
    const r = await runCli(["invoke", "sync", file], process.env);
    expect(r.code).toBe(2);
    expect(r.stderr.trimEnd().split("\n").at(-1)).toBe('layer-sync: "paths" must be a non-empty array of folder paths');
  });
});
