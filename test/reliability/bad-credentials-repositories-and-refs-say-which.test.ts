import { join } from "node:path";
import { PutParameterCommand } from "@aws-sdk/client-ssm";
import type { Context } from "aws-lambda";
import { afterEach, describe, expect, it } from "vitest";
import { awsClients } from "../../handlers/runtime.ts";
import { handler as syncHandler } from "../../handlers/sync.ts";
import { uniqueName } from "../support/aws.ts";
import { recordCommands } from "./aws-faults.ts";
import { type CliRun, keysUnder, on, type Provider, runCli, sourceEnv, useSources } from "./harness.ts";
import {
  BITBUCKET_API_USER,
  BITBUCKET_BASIC_TOKEN,
  BITBUCKET_TOKEN,
  GITHUB_TOKEN,
  scan,
  watchSecrets,
  watchToken,
} from "./secrets.ts";

watchSecrets();

const sources = useSources({ bucket: "rel-creds" });
const { s3, ssm } = sources;
let run = 0;

const tokenOf = (p: Provider) => (p === "github" ? GITHUB_TOKEN : BITBUCKET_TOKEN);

/** `layer-sync sync --out …` against one emulator; env settings from `sourceEnv`, flags after. */
function sync(provider: Provider, flags: string[], env: Record<string, string | undefined> = {}): Promise<CliRun> {
  return runCli(
    [
      "sync",
      "--strategy",
      "walk",
      "--out",
      join(sources.dir, `out-${++run}`),
      "--work-dir",
      join(sources.dir, "work"),
      "--max-retries",
      "0",
      ...flags,
    ],
    { ...sourceEnv(sources, provider), SOURCE_PATHS: "layers/tools", SOURCE_TOKEN: tokenOf(provider), ...env },
  );
}

/** A job failure: exit 1 and exactly one line on stderr, returned without the `layer-sync: ` prefix. */
function failure(r: CliRun): string {
  expect(r.code).toBe(1);
  const lines = r.stderr.split("\n").filter((l) => l !== "");
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^layer-sync: /);
  return (lines[0] ?? "").replace(/^layer-sync: (\d+ package\(s\) failed: [\w-]+: )?/, "");
}

function usage(r: CliRun): string {
  expect(r.code).toBe(2);
  const lines = r.stderr.split("\n").filter((l) => l !== "");
  expect(lines).toHaveLength(1);
  return (lines[0] ?? "").replace(/^layer-sync: /, "");
}

describe("401 from the source: a bad token", () => {
  it("bitbucket: says the token is invalid, expired or of the wrong kind, and how each kind is sent", async () => {
    const wrong = "bb-wrong-token/+=value";
    watchToken(wrong);
    const message = failure(await sync("bitbucket", ["--ref", "main"], { SOURCE_TOKEN: wrong }));
    expect(message).toMatch(
      /^GET \S+ \(resolve branch "main"\) answered 401 Unauthorized: Token is invalid, expired, or not supported for this endpoint\. The Bitbucket token is invalid, expired or of the wrong kind: API tokens must be stored as email:token \(sent as Basic\), repository\/workspace access tokens as the bare token \(sent as Bearer\)$/,
    );
  });

  it("bitbucket: the same for an API token whose secret is wrong (sent as Basic)", async () => {
    const wrong = `${BITBUCKET_API_USER}:not-the-secret/+%`;
    watchToken(wrong);
    const message = failure(await sync("bitbucket", ["--ref", "main"], { SOURCE_TOKEN: wrong }));
    expect(message).toContain("answered 401 Unauthorized");
    expect(message).toContain("The Bitbucket token is invalid, expired or of the wrong kind");
  });

  it("bitbucket: a correct API token (email:secret) works, sent as Basic", async () => {
    const r = await sync("bitbucket", ["--ref", "main"], { SOURCE_TOKEN: BITBUCKET_BASIC_TOKEN });
    expect(r.code, r.stderr).toBe(0);
  });

  it("github: says GitHub rejected the token", async () => {
    const wrong = "ghp_wrong/+=token";
    watchToken(wrong);
    const message = failure(await sync("github", ["--ref", "main"], { SOURCE_TOKEN: wrong }));
    expect(message).toMatch(
      /^GET \S+ \(resolve ref "main"\) answered 401 Unauthorized: Bad credentials\. GitHub rejected the token \(wrong, expired or revoked\); store a valid token in the token parameter$/,
    );
  });
});

describe("a private repository and no token at all", () => {
  it.each(["bitbucket", "github"] as const)(
    "%s: says no token was given and where to give one, not that a token is invalid",
    async (provider) => {
      const message = failure(await sync(provider, ["--ref", "main"], { SOURCE_TOKEN: undefined }));
      expect(message).toContain("no token was given: set SOURCE_TOKEN (CLI) or TOKEN_PARAMETER_NAME");
      expect(message).not.toMatch(/token is invalid|rejected the token/i);
    },
  );
});

describe("403 from the source: no access", () => {
  it("bitbucket: says the token is valid but lacks access, and which scope it needs", async () => {
    watchToken("bb-scopeless-token");
    const message = failure(await sync("bitbucket", ["--ref", "main"], { SOURCE_TOKEN: "bb-scopeless-token" }));
    expect(message).toMatch(
      /answered 403 Forbidden: Your credentials lack one or more required privilege scopes\. The token is valid but lacks access: it needs read access to the repository \(scope repository, or read:repository:bitbucket for API tokens\)$/,
    );
  });

  it("github: says the token lacks the Contents: read permission (a 403 that is not a rate limit)", async () => {
    sources.gh.inject({
      match: on("api", /\/commits\//),
      fault: { kind: "status", status: 403, body: { message: "Resource not accessible by personal access token" } },
    });
    const message = failure(await sync("github", ["--ref", "main"]));
    expect(message).toMatch(
      /answered 403 Forbidden: Resource not accessible by personal access token\. The token lacks access: fine-grained tokens and GitHub Apps need the Contents: read permission on the repository$/,
    );
  });
});

describe("404 from the source: a wrong repository or folder", () => {
  for (const provider of ["bitbucket", "github"] as const) {
    for (const ref of [["--ref", "main"], []]) {
      it(`${provider}${ref.length ? " with SOURCE_REF" : ""}: a repository that does not exist is named as such, not blamed on the ref`, async () => {
        const message = failure(await sync(provider, ["--repository", "acme/no-such-repo", ...ref]));
        expect(message).toMatch(
          /^(repository acme\/no-such-repo does not exist or the token cannot see it|GET .+ answered 404)/,
        );
        expect(message).toContain("acme/no-such-repo");
        expect(message).toContain("SOURCE_REPOSITORY");
        expect(message).not.toMatch(/is not a branch, tag or commit/);
      });
    }

    for (const strategy of ["walk", "archive"]) {
      it(`${provider} ${strategy}: a folder that does not exist is named`, async () => {
        const message = failure(
          await sync(provider, ["--ref", "main", "--strategy", strategy], { SOURCE_PATHS: "layers/no-such-folder" }),
        );
        expect(message).toMatch(/"layers\/no-such-folder"/);
        expect(message).toMatch(/does not exist|answered 404 Not Found/);
      });
    }
  }
});

describe("an unknown ref", () => {
  for (const provider of ["bitbucket", "github"] as const) {
    it(`${provider}: a branch or tag name that does not exist says so and points at SOURCE_REF`, async () => {
      const message = failure(await sync(provider, ["--ref", "release/no-such-branch"]));
      expect(message).toMatch(
        /^ref "release\/no-such-branch" is not a branch, tag or commit of acme\/layers; check SOURCE_REF( \(branch names are case-sensitive\))?$/,
      );
    });

    it(`${provider}: a commit id that does not exist says so and points at SOURCE_REF`, async () => {
      const message = failure(await sync(provider, ["--ref", "0123456789abcdef0123456789abcdef01234567"]));
      expect(message).toMatch(
        /"0123456789abcdef0123456789abcdef01234567" (is not a branch, tag or commit|does not exist)/,
      );
      expect(message).toMatch(/check SOURCE_REF$/);
    });
  }
});

describe("the token parameter", () => {
  async function withParameter(value: string | undefined, type: "SecureString" | "String" = "SecureString") {
    const name = `/${uniqueName("reltok")}/token`;
    if (value !== undefined) {
      await ssm.send(new PutParameterCommand({ Name: name, Value: value, Type: type }));
    }
    const prefix = `/${uniqueName("reltokp")}`;
    const artifactPrefix = `${uniqueName("art")}/`;
    const r = await runCli(
      [
        "sync",
        "--token-parameter",
        name,
        "--bucket",
        sources.bucket,
        "--prefix",
        artifactPrefix,
        "--parameter-prefix",
        prefix,
      ],
      { ...sourceEnv(sources, "bitbucket"), SOURCE_PATHS: "layers/tools", SOURCE_REF: "main" },
    );
    expect(await keysUnder(s3, sources.bucket, artifactPrefix)).toEqual([]);
    return { name, r };
  }

  it("that does not exist is a configuration error (exit 2) saying how to create it", async () => {
    const { name, r } = await withParameter(undefined);
    expect(usage(r)).toBe(
      `TOKEN_PARAMETER_NAME: SSM parameter ${name} does not exist; create it with aws ssm put-parameter --type SecureString`,
    );
  });

  it("that is a String, not a SecureString, is refused (exit 2) without showing its value", async () => {
    const plain = "plain/String+token=value";
    watchToken(plain);
    const { name, r } = await withParameter(plain, "String");
    expect(usage(r)).toBe(
      `TOKEN_PARAMETER_NAME: ${name} is a String, not a SecureString; recreate it with --type SecureString so the token is encrypted`,
    );
  });

  it("that holds only whitespace is refused as empty (exit 2)", async () => {
    const { name, r } = await withParameter("   ");
    expect(usage(r)).toBe(`token parameter ${name} is empty; store the repository token in it`);
  });

  it("that holds a token with a line break is refused (exit 2) without showing it", async () => {
    const broken = "line1/secret\nline2+secret";
    watchToken("line1/secret");
    const { name, r } = await withParameter(broken);
    expect(usage(r)).toBe(
      `token parameter ${name} contains whitespace or a line break; store the token alone, without spaces or newlines`,
    );
  });
});

describe("the sync handler with a bad token parameter", () => {
  const context = { functionName: "layer-sync-sync", awsRequestId: "rel" } as unknown as Context;
  const saved = { ...process.env };
  afterEach(() => {
    for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
    Object.assign(process.env, saved);
  });

  it("throws the same actionable message, having written nothing", async () => {
    const name = `/${uniqueName("relhtok")}/token`;
    Object.assign(process.env, {
      ...sourceEnv(sources, "bitbucket"),
      SOURCE_PATHS: "layers/tools",
      TOKEN_PARAMETER_NAME: name,
      ARTIFACT_BUCKET: sources.bucket,
      PARAMETER_PREFIX: `/${uniqueName("relh")}`,
      POWERTOOLS_DEV: "true",
    });
    const sent = recordCommands(awsClients().s3);
    const error = await syncHandler({}, context).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    scan("handler error", error);
    expect(error?.message).toBe(
      `TOKEN_PARAMETER_NAME: SSM parameter ${name} does not exist; create it with aws ssm put-parameter --type SecureString`,
    );
    expect(sent).toEqual([]);
  });
});
