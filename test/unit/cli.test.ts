import { describe, expect, it } from "vitest";
import { main } from "../../cli/main.ts";
import { captureIo } from "../support/zip.ts";

async function run(argv: string[], env: Record<string, string> = {}) {
  const cap = captureIo();
  const code = await main(argv, env, cap.io);
  return { code, stdout: cap.stdout(), stderr: cap.stderr() };
}

describe("the layer-sync command line", () => {
  it("prints its version and help on stdout with exit 0", async () => {
    expect(await run(["--version"])).toEqual({ code: 0, stdout: "layer-sync 0.1.0\n", stderr: "" });
    const help = await run(["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^usage:\n {2}layer-sync sync/);
  });

  it("exits 2 with usage on stderr when no command is given", async () => {
    const r = await run([]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^usage:/);
  });

  it.each([
    [["deploy"], /unknown command "deploy"/],
    [["sync", "--colour"], /Unknown option '--colour'/],
    [["sync", "extra"], /unexpected argument "extra"/],
    [["invoke", "sync"], /invoke takes: invoke sync\|publish EVENT.json/],
  ])("exits 2 for bad usage %j with a reason and a pointer to --help", async (argv, reason) => {
    const r = await run(argv);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(reason);
    expect(r.stderr).toMatch(/run layer-sync --help for usage\n$/);
  });

  it("exits 2 for configuration errors with one line naming each setting", async () => {
    const r = await run([
      "sync",
      "--provider",
      "github",
      "--repository",
      "acme/x",
      "--path",
      "a/b",
      "--strategy",
      "fast",
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(
      /SOURCE_STRATEGY \(--strategy\) must be "auto", "walk" or "archive".*ARTIFACT_BUCKET \(--bucket\) is required/,
    );
  });

  it("refuses to read a token parameter for --out, which calls no AWS API", async () => {
    const r = await run(["sync", "--provider", "github", "--repository", "acme/x", "--path", "a/b", "--out", "dist"], {
      TOKEN_PARAMETER_NAME: "/layer-sync/token",
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /--out calls no AWS API, so the token parameter cannot be read; give the token in SOURCE_TOKEN/,
    );
  });

  it("rejects a token with whitespace without echoing it", async () => {
    const r = await run(["sync", "--provider", "github", "--repository", "acme/x", "--path", "a/b", "--out", "dist"], {
      SOURCE_TOKEN: "ghp_secret value",
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/SOURCE_TOKEN contains whitespace/);
    expect(r.stderr).not.toContain("ghp_secret");
  });
});
