import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { flagsOf } from "../../cli/args.ts";
import { main } from "../../cli/main.ts";
import { Progress } from "../../cli/output.ts";
import { SETTINGS } from "../../lib/common/settings.ts";
import { captureIo } from "../support/zip.ts";

async function run(argv: string[], env: Record<string, string> = {}) {
  const cap = captureIo();
  const code = await main(argv, env, cap.io);
  return { code, stdout: cap.stdout(), stderr: cap.stderr() };
}

describe("the layer-sync command line", () => {
  it("prints the version of package.json and the overview of commands on stdout with exit 0", async () => {
    const { version } = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
      version: string;
    };
    expect(await run(["--version"])).toEqual({ code: 0, stdout: `layer-sync ${version}\n`, stderr: "" });
    for (const argv of [["--help"], ["-h"], ["help"]]) {
      const help = await run(argv);
      expect(help.code).toBe(0);
      expect(help.stdout).toMatch(/^usage: layer-sync <command> \[flags\]\n\ncommands:\n {2}sync /);
      expect(help.stdout).toMatch(/\n {2}status /);
    }
  });

  it.each(["sync", "publish", "status", "invoke"] as const)(
    "shows %s's flags only, every accepted one, with help, variable and default, for --help, -h and help <command>",
    async (command) => {
      const shown = [await run([command, "--help"]), await run([command, "-h"]), await run(["help", command])];
      for (const r of shown) expect(r).toEqual(shown[0]);
      const text = shown[0]?.stdout ?? "";
      expect(text).toMatch(new RegExp(`^layer-sync ${command}: `));
      const listed = [...text.matchAll(/^ {2}(?:-h, )?--([a-z-]+)/gm)].map((m) => m[1]);
      expect(listed).toEqual(flagsOf(command).map((f) => f.flag));
      for (const s of Object.values(SETTINGS)) {
        const accepted = (s.commands as readonly string[]).includes(command) && s.flag !== undefined;
        expect(text.includes(`--${s.flag} `), `${command} --${s.flag}`).toBe(accepted);
        if (accepted) expect(text).toContain(s.env);
      }
    },
  );

  it("lists every sync setting of the schema in sync --help, with its default", async () => {
    const text = (await run(["sync", "--help"])).stdout;
    expect(text).toMatch(/--retain N +RETAIN_VERSIONS: .*\(default: 10\)/);
    expect(text).toMatch(/--path DIR \.\.\. +SOURCE_PATHS: .*required/);
    expect(text).toMatch(/--out DIR +write each zip/);
  });

  it("refuses a flag of another command with exit 2, naming the commands it belongs to", async () => {
    const r = await run(["sync", "--package", "x"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      "layer-sync: --package is not a flag of sync; it belongs to publish, status, consumers, rollback and promote\nrun layer-sync --help for usage\n",
    );
    expect((await run(["publish", "--out", "dir"])).stderr).toMatch(
      /^layer-sync: --out is not a flag of publish; it belongs to sync\n/,
    );
    expect((await run(["status", "--provider=github"])).code).toBe(2);
  });

  it("exits 2 with usage on stderr when no command is given", async () => {
    const r = await run([]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^usage:/);
  });

  it.each([
    [["deploy"], /unknown command "deploy"/],
    [["sync", "--colour"], /^layer-sync: unknown flag --colour for sync\n/],
    [["sync", "-x"], /^layer-sync: unknown flag -x for sync\n/],
    [["sync", "--retain"], /^layer-sync: Option '--retain <value>' argument missing\n/],
    [["help", "deploy"], /unknown command "deploy"/],
    [["sync", "extra"], /unexpected argument "extra"/],
    [["invoke", "sync"], /invoke takes: invoke sync\|publish EVENT.json/],
  ])("exits 2 for bad usage %j with a reason and a pointer to --help", async (argv, reason) => {
    const r = await run(argv);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(reason);
    expect(r.stderr).toMatch(/run layer-sync --help for usage\n$/);
  });

  it("exits 2 for configuration errors with one line per problem under one headline", async () => {
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
    expect(r.stderr.trim().split("\n")).toEqual([
      "layer-sync: invalid configuration (2 problems):",
      expect.stringMatching(/^ {2}SOURCE_STRATEGY \(--strategy\) must be "auto", "walk" or "archive"/),
      expect.stringMatching(/^ {2}ARTIFACT_BUCKET \(--bucket\) is required/),
    ]);
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

describe("progress on stderr", () => {
  function terminal(isTTY: boolean) {
    const err: string[] = [];
    return { io: { stdout: { write: () => true }, stderr: { write: (t: string) => err.push(t), isTTY } }, err };
  }

  it("rewrites one line per package in place on a terminal, in colour unless NO_COLOR is set", () => {
    for (const env of [{}, { NO_COLOR: "1" }]) {
      const t = terminal(true);
      const p = new Progress(t.io, env);
      p.event({ package: "a", stage: "resolving" });
      p.event({ package: "b", stage: "resolving" });
      p.event({ package: "a", stage: "uploading", bytes: 2500 });
      p.event({ package: "b", stage: "skipped", detail: "unchanged" });
      p.stop();
      const screen = t.err.join("");
      expect(screen).toContain("\x1b[2A\x1b[0J"); // back over the two lines before each redraw
      const last = t.err.at(-1) ?? "";
      // biome-ignore lint/suspicious/noControlCharactersInRegex: removing the escape codes is the point
      const plain = last.replace(/\x1b\[[0-9;]*m/g, "");
      expect(plain).toBe("  a  uploading 2.4 KiB\n  b  skipped unchanged\n");
      expect(last.includes("\x1b[33m")).toBe(!("NO_COLOR" in env));
    }
  });

  it("writes nothing off a terminal", () => {
    const t = terminal(false);
    const p = new Progress(t.io, {});
    p.event({ package: "a", stage: "fetching", readBytes: () => 10 });
    p.logger().warn("careful");
    p.stop();
    expect(t.err).toEqual([]);
  });
});
