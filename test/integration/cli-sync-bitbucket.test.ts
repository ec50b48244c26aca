import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BitbucketEmulator, startBitbucketEmulator } from "../emulators/bitbucket.ts";
import { type FixtureRepo, standardRepo } from "../fixtures/repo.ts";
import { type CliSyncOptions, cliSync, readOutZip, twoFoldersAtMain } from "../support/cli-sync.ts";
import { expectZipMatchesTree, readZip } from "../support/zip.ts";

const TOKEN = "bb-access-token-0123456789abcdef";
let bb: BitbucketEmulator;
let repo: FixtureRepo;
let out: string;

beforeAll(async () => {
  repo = standardRepo();
  bb = await startBitbucketEmulator({ repos: [repo], accessTokens: [TOKEN] });
  out = await mkdtemp(join(tmpdir(), "ls-cli-bb-"));
});
afterAll(async () => {
  await bb.close();
  await rm(out, { recursive: true, force: true });
});

function sync(args: string[], env: Record<string, string> = { SOURCE_TOKEN: TOKEN }, options?: CliSyncOptions) {
  return cliSync({ provider: "bitbucket", apiUrl: bb.apiUrl, webUrl: bb.webUrl }, out, args, env, options);
}

interface Summary {
  commit: string;
  strategy: string;
  packages: { name: string; key: string; files: number; sha256: string; error?: string; warnings: string[] }[];
  requests: { total: number };
}

describe("layer-sync sync --out against the Bitbucket emulator", () => {
  const results = new Map<string, Summary>();

  for (const strategy of ["walk", "archive"] as const) {
    it(`builds zips that match the git tree byte for byte with the ${strategy} strategy`, async () => {
      const dir = join(out, strategy);
      const r = await sync(twoFoldersAtMain(strategy, dir));
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      const summary = JSON.parse(r.stdout) as Summary;
      results.set(strategy, summary);
      expect(summary.commit).toBe(repo.head().sha);
      expect(summary.strategy).toBe(strategy);
      for (const [pkg, folder] of [
        ["py-requests", "layers/py-requests"],
        ["tools", "layers/tools"],
      ] as const) {
        const p = summary.packages.find((x) => x.name === pkg);
        expect(p?.error).toBeUndefined();
        expect(p?.key).toMatch(
          new RegExp(`^layers/${pkg}/${pkg}-\\d{8}T\\d{6}Z-${repo.head().sha.slice(0, 7)}\\.zip$`),
        );
        await expectZipMatchesTree(await readOutZip(dir, p?.key ?? ""), repo.head(), folder);
      }
    });
  }

  it("gives byte-identical zips whichever strategy fetched them", () => {
    const walk = results.get("walk");
    const archive = results.get("archive");
    expect(walk && archive).toBeTruthy();
    for (const p of walk?.packages ?? []) {
      expect(archive?.packages.find((a) => a.name === p.name)?.sha256).toBe(p.sha256);
    }
  });

  it("keeps the archive strategy within a handful of requests", () => {
    expect(results.get("archive")?.requests.total).toBeLessThanOrEqual(3);
  });

  it("skips a package whose newest zip in the --out folder already holds the same bytes, and writes a new one with --force", async () => {
    const dir = join(out, "again");
    const args = ["--ref", "main", "--path", "layers/tools", "--strategy", "archive", "--out", dir];
    const first = await sync(args);
    expect(first.code, first.stderr).toBe(0);
    const [made] = (JSON.parse(first.stdout) as Summary).packages;
    const again = await sync(args);
    expect(again.code, again.stderr).toBe(0);
    const [kept] = (JSON.parse(again.stdout) as Summary & { packages: { skipped: boolean; reason: string }[] })
      .packages;
    expect(kept).toMatchObject({ key: made?.key, skipped: true, reason: "unchanged", sha256: made?.sha256 });
    expect(await readdir(join(dir, "layers", "tools"))).toHaveLength(1);
    const forced = await sync([...args, "--force"]);
    expect(forced.code, forced.stderr).toBe(0);
    const [written] = (JSON.parse(forced.stdout) as Summary & { packages: { skipped: boolean }[] }).packages;
    expect(written?.skipped).toBe(false);
    expect(await readOutZip(dir, written?.key ?? "")).toEqual(await readOutZip(dir, made?.key ?? ""));
  });

  it("resolves a branch whose name contains a slash to its commit", async () => {
    const r = await sync([
      "--ref",
      "feature/slash-name",
      "--path",
      "layers/tools",
      "--strategy",
      "walk",
      "--out",
      join(out, "slash"),
    ]);
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as Summary).commit).toBe(repo.branches.get("feature/slash-name"));
  });

  it("fetches Git LFS content instead of packaging the pointer, under both strategies", async () => {
    for (const strategy of ["walk", "archive"]) {
      const dir = join(out, `lfs-${strategy}`);
      const r = await sync(["--path", "layers/with-lfs", "--strategy", strategy, "--out", dir]);
      expect(r.code, r.stderr).toBe(0);
      const key = (JSON.parse(r.stdout) as Summary).packages[0]?.key ?? "";
      const entries = await readZip(await readOutZip(dir, key));
      const model = entries.find((e) => e.name === "model.bin");
      expect(
        model?.content.equals(repo.head().entries.get("layers/with-lfs/model.bin")?.content ?? Buffer.alloc(0)),
      ).toBe(true);
    }
    // the media host never saw the token
    expect(bb.requests.filter((q) => q.host === "media" && q.authorization !== undefined)).toEqual([]);
  });

  it("fails a folder whose symlink leaves it, naming the link, and still builds the others (exit 1)", async () => {
    for (const strategy of ["walk", "archive"]) {
      const r = await sync([
        "--path",
        "layers/escape",
        "--path",
        "layers/tools",
        "--strategy",
        strategy,
        "--out",
        join(out, `esc-${strategy}`),
      ]);
      expect(r.code).toBe(1);
      const summary = JSON.parse(r.stdout) as Summary;
      expect(summary.packages.find((p) => p.name === "escape")?.error).toMatch(/symlink "evil".*leaves the folder/);
      expect(summary.packages.find((p) => p.name === "tools")?.error).toBeUndefined();
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toMatch(/escape/);
    }
  });

  it("fails a folder that contains a submodule with a clear error under both strategies", async () => {
    for (const strategy of ["walk", "archive"]) {
      const r = await sync([
        "--path",
        "layers/with-submodule",
        "--strategy",
        strategy,
        "--out",
        join(out, `sub-${strategy}`),
      ]);
      expect(r.code).toBe(1);
      expect((JSON.parse(r.stdout) as Summary).packages[0]?.error).toMatch(/submodule.*vendor/);
    }
  });

  it("falls back from a refused archive to walking, with a warning, under auto", async () => {
    const refusing = await startBitbucketEmulator({
      repos: [repo],
      accessTokens: [TOKEN],
      archiveMode: "login-redirect",
    });
    try {
      const source = { provider: "bitbucket", apiUrl: refusing.apiUrl, webUrl: refusing.webUrl } as const;
      const json = await cliSync(source, out, ["--path", "layers/tools", "--out", join(out, "fallback")], {
        SOURCE_TOKEN: TOKEN,
      });
      expect(json.code).toBe(0);
      const summary = JSON.parse(json.stdout) as Summary;
      expect(summary.strategy).toBe("walk");
      expect(summary.packages[0]?.warnings.join(" ")).toMatch(/archive download unavailable.*login page/);
      expect(json.stderr).toBe(""); // with --json the summary carries the warning

      // without --json a person sees it on stderr, terminal or not
      const human = await cliSync(
        source,
        out,
        ["--path", "layers/tools", "--out", join(out, "fallback-human")],
        { SOURCE_TOKEN: TOKEN },
        { json: false },
      );
      expect(human.code).toBe(0);
      expect(human.stderr).toMatch(/^layer-sync: warning: tools: .*archive download unavailable.*login page.*\n$/);
    } finally {
      await refusing.close();
    }
  });

  it("names a missing folder and an unknown ref plainly", async () => {
    const missing = await sync(["--path", "layers/nope", "--strategy", "archive", "--out", join(out, "missing")]);
    expect(missing.code).toBe(1);
    expect((JSON.parse(missing.stdout) as Summary).packages[0]?.error).toMatch(/folder "layers\/nope" does not exist/);
    const ref = await sync(["--ref", "no-such-branch", "--path", "layers/tools", "--out", join(out, "ref")]);
    expect(ref.code).toBe(1);
    expect(ref.stderr).toMatch(/ref "no-such-branch" is not a branch, tag or commit/);
  });

  it("shows progress on stderr only when stderr is a terminal", async () => {
    const args = ["--path", "layers/tools", "--out", join(out, "tty")];
    const tty = await sync(args, { SOURCE_TOKEN: TOKEN }, { json: false, tty: true });
    expect(tty.code).toBe(0);
    expect(tty.stderr).toMatch(/resolved ref/);
    expect(tty.stdout).toMatch(/^commit [0-9a-f]{40} \(main\) via archive/);
    const pipe = await sync(args, { SOURCE_TOKEN: TOKEN }, { json: false, tty: false });
    expect(pipe.code).toBe(0);
    expect(pipe.stderr).toBe("");
  });

  it("tells a wrong token apart from a missing one, and never prints the token", async () => {
    const bad = await sync(["--path", "layers/tools", "--out", join(out, "bad")], {
      SOURCE_TOKEN: "wrong-token-value-123",
    });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/401.*Token is invalid/);
    expect(bad.stderr).not.toContain("wrong-token-value-123");
    const all = [...results.values()].map((s) => JSON.stringify(s)).join("") + bad.stdout + bad.stderr;
    expect(all).not.toContain(TOKEN);
  });
});
