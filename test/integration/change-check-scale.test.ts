/**
 * Deciding which of N packages changed on a new commit costs a few source requests whatever N is: the
 * requests are counted where they arrive, at the emulators.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../cli/main.ts";
import { type BitbucketEmulator, startBitbucketEmulator } from "../emulators/bitbucket.ts";
import { type GitHubEmulator, startGitHubEmulator } from "../emulators/github.ts";
import { type FixtureEntry, FixtureRepo } from "../fixtures/repo.ts";
import { createBucket, uniqueName } from "../support/aws.ts";
import { captureIo } from "../support/zip.ts";

const TOKEN = "scale-check-token-0123456789abcdef";
const file = (text: string): Omit<FixtureEntry, "path"> => ({ kind: "file", content: Buffer.from(text) });
const folder = (i: number) => `layers/pkg-${String(i).padStart(2, "0")}`;

let repo: FixtureRepo;
let bb: BitbucketEmulator;
let gh: GitHubEmulator;
let work: string;

interface Summary {
  packages: { name: string; skipped: boolean; reason: string | null; warnings: string[] }[];
  requests: { total: number };
}

beforeAll(async () => {
  repo = new FixtureRepo("acme", "layers");
  const files: Record<string, Omit<FixtureEntry, "path">> = { "README.md": file("# many\n") };
  for (let i = 0; i < 50; i++) {
    files[`${folder(i)}/python/mod.py`] = file(`x = ${i}\n`);
    files[`${folder(i)}/README.md`] = file(`# ${i}\n`);
  }
  repo.commit("main", files, "fifty packages");
  bb = await startBitbucketEmulator({ repos: [repo], accessTokens: [TOKEN] });
  gh = await startGitHubEmulator({ repos: [repo], tokens: [TOKEN] });
  work = await mkdtemp(join(tmpdir(), "ls-check-scale-"));
});
afterAll(async () => {
  await bb.close();
  await gh.close();
  await rm(work, { recursive: true, force: true });
});

async function sync(provider: "bitbucket" | "github", count: number, args: string[]): Promise<Summary> {
  const urls = provider === "bitbucket" ? ["--api-url", bb.apiUrl, "--web-url", bb.webUrl] : ["--api-url", gh.apiUrl];
  const paths = Array.from({ length: count }, (_, i) => ["--path", folder(i)]).flat();
  const cap = captureIo();
  const code = await main(
    [
      ...["sync", "--provider", provider, "--repository", "acme/layers", ...urls, ...paths],
      ...["--work-dir", join(work, "w"), "--json", "--strategy", "archive", ...args],
    ],
    { SOURCE_TOKEN: TOKEN },
    cap.io,
  );
  expect(code, cap.stderr()).toBe(0);
  return JSON.parse(cap.stdout()) as Summary;
}

describe.each([
  { provider: "bitbucket" as const, emulator: () => bb },
  { provider: "github" as const, emulator: () => gh },
])("an unchanged check on $provider", ({ provider, emulator }) => {
  for (const count of [1, 5, 50]) {
    it(`takes at most 3 requests for ${count} unchanged packages on a new commit, and fetches only the changed one`, async () => {
      const bucket = await createBucket(uniqueName(`scale-${provider}-${count}`));
      const args = ["--bucket", bucket, "--parameter-prefix", `/${uniqueName("ls")}`];
      const first = await sync(provider, count, args);
      expect(first.packages.every((p) => !p.skipped)).toBe(true);
      // a commit outside every folder: nothing changed
      repo.commit("main", { "README.md": file(`# ${provider} ${count}\n`) });
      emulator().resetRequests();
      const unchanged = await sync(provider, count, args);
      expect(unchanged.packages.every((p) => p.skipped && p.reason === "unchanged")).toBe(true);
      expect(emulator().requests.length).toBeLessThanOrEqual(3);
      expect(unchanged.requests.total).toBe(emulator().requests.length);
      expect(unchanged.packages.flatMap((p) => p.warnings)).toEqual([]);
      // one folder changed: the check still costs the same, then one archive
      repo.commit("main", { [`${folder(count - 1)}/README.md`]: file(`# changed ${provider}\n`) });
      emulator().resetRequests();
      const one = await sync(provider, count, args);
      expect(one.packages.filter((p) => !p.skipped).map((p) => p.name)).toEqual([
        `pkg-${String(count - 1).padStart(2, "0")}`,
      ]);
      const archives = emulator().requests.filter((r) => /tarball|\/get\//.test(r.url.pathname)).length;
      expect(emulator().requests.length - archives).toBeLessThanOrEqual(3 + (provider === "github" ? 1 : 0));
      expect(one.requests.total).toBe(emulator().requests.length);
    });
  }
});
