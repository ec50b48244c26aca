/**
 * The "did this folder change?" check is an optimisation: Bitbucket's batched `diffstat` and per-folder
 * `commits/{rev}?exclude=…&path=…`, and GitHub's tree SHA lookups, may answer 404, 403 or 5xx behind proxies,
 * on other hosts or with narrower permissions. When the batched check fails, each folder is checked on its
 * own; when that fails too, the sync fetches the folder and lets the zip's SHA-256 decide, with a warning.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../cli/main.ts";
import { type BitbucketEmulator, startBitbucketEmulator } from "../emulators/bitbucket.ts";
import { type GitHubEmulator, startGitHubEmulator } from "../emulators/github.ts";
import { type FixtureRepo, standardRepo } from "../fixtures/repo.ts";
import { createBucket, uniqueName } from "../support/aws.ts";
import { captureIo } from "../support/zip.ts";

const TOKEN = "change-check-token-0123456789abcdef";
let repo: FixtureRepo;
let bb: BitbucketEmulator;
let gh: GitHubEmulator;
let work: string;

interface Summary {
  packages: { name: string; key: string; skipped: boolean; reason: string | null; warnings: string[] }[];
}

beforeAll(async () => {
  repo = standardRepo({ bigFileBytes: 64 * 1024 });
  bb = await startBitbucketEmulator({ repos: [repo], accessTokens: [TOKEN] });
  gh = await startGitHubEmulator({ repos: [repo], tokens: [TOKEN] });
  work = await mkdtemp(join(tmpdir(), "ls-change-check-"));
});
afterAll(async () => {
  await bb.close();
  await gh.close();
  await rm(work, { recursive: true, force: true });
});

async function sync(provider: "bitbucket" | "github", args: string[]) {
  const urls = provider === "bitbucket" ? ["--api-url", bb.apiUrl, "--web-url", bb.webUrl] : ["--api-url", gh.apiUrl];
  const cap = captureIo();
  const code = await main(
    [
      ...["sync", "--provider", provider, "--repository", "acme/layers", ...urls],
      ...["--path", "layers/py-requests", "--path", "layers/tools", "--work-dir", join(work, "w"), "--json"],
      ...args,
    ],
    { SOURCE_TOKEN: TOKEN },
    cap.io,
  );
  expect(code, cap.stderr()).toBe(0);
  return JSON.parse(cap.stdout()) as Summary;
}

describe.each([
  {
    provider: "bitbucket" as const,
    check: "diffstat and commits/{rev}?exclude=…&path=…",
    emulator: () => bb,
    isCheck: (url: URL) =>
      url.pathname.includes("/diffstat/") || (url.pathname.includes("/commits/") && url.searchParams.has("exclude")),
  },
  {
    provider: "github" as const,
    check: "the tree SHA lookup",
    emulator: () => gh,
    isCheck: (url: URL) => url.pathname.includes("/contents/"),
  },
])("a $provider host that fails $check", ({ provider, emulator, isCheck }) => {
  for (const status of [404, 503]) {
    it(`still syncs a new commit when the check answers ${status}, with a warning, skipping by SHA-256`, async () => {
      const bucket = await createBucket(uniqueName(`cc-${provider}-${status}`));
      const args = ["--bucket", bucket, "--parameter-prefix", `/${uniqueName("ls")}`, "--strategy", "archive"];
      const first = await sync(provider, args);
      expect(first.packages.map((p) => p.skipped)).toEqual([false, false]);
      repo.commit("main", {
        "layers/tools/README.md": { kind: "file", content: Buffer.from(`# tools ${provider} ${status}\n`) },
      });
      emulator().inject({
        match: (r) => isCheck(r.url),
        fault: { kind: "status", status, headers: { "retry-after": "0" }, body: { message: "not here" } },
        times: Number.POSITIVE_INFINITY,
      });
      try {
        const second = await sync(provider, args);
        const [py, tools] = second.packages;
        expect(py).toMatchObject({ skipped: true, reason: "unchanged", key: first.packages[0]?.key });
        expect(tools?.skipped).toBe(false);
        expect(tools?.key).not.toBe(first.packages[1]?.key);
        for (const p of second.packages) {
          expect(p.warnings.join("\n")).toMatch(
            new RegExp(
              `could not tell cheaply whether "${p.name === "tools" ? "layers/tools" : "layers/py-requests"}" changed since [0-9a-f]{7} \\(.*${status}.*\\); fetched it and compared the zip's SHA-256 with the current artifact instead`,
            ),
          );
        }
      } finally {
        emulator().clearFaults();
      }
    });
  }
});

describe("a bitbucket host that fails only the batched diffstat", () => {
  it("checks each folder on its own with a warning, and still skips the unchanged one before downloading", async () => {
    const bucket = await createBucket(uniqueName("cc-batch"));
    const args = ["--bucket", bucket, "--parameter-prefix", `/${uniqueName("ls")}`, "--strategy", "archive"];
    const first = await sync("bitbucket", args);
    repo.commit("main", { "layers/tools/README.md": { kind: "file", content: Buffer.from("# tools batch\n") } });
    bb.inject({
      match: (r) => r.url.pathname.includes("/diffstat/"),
      fault: { kind: "status", status: 500, body: { type: "error", error: { message: "boom" } } },
      times: Number.POSITIVE_INFINITY,
    });
    try {
      const second = await sync("bitbucket", args);
      const [py, tools] = second.packages;
      expect(py).toMatchObject({ skipped: true, reason: "unchanged", key: first.packages[0]?.key });
      expect(tools?.skipped).toBe(false);
      for (const p of second.packages) {
        expect(p.warnings.join("\n")).toMatch(
          /could not check the 2 folders for changes in one go \(.*500.*\); checked them one by one/,
        );
        expect(p.warnings.join("\n")).not.toMatch(/could not tell cheaply/);
      }
    } finally {
      bb.clearFaults();
    }
  });
});
