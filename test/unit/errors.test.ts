import { describe, expect, it } from "vitest";
import { main } from "../../cli/main.ts";
import { parseFolders } from "../../lib/common/config.ts";
import { ConfigError, describeError, EventValidationError, SourceError, summarise } from "../../lib/common/errors.ts";
import { captureIo } from "../support/zip.ts";

async function run(argv: string[], env: Record<string, string> = {}) {
  const cap = captureIo();
  const code = await main(argv, env, cap.io);
  return { code, stdout: cap.stdout(), stderr: cap.stderr() };
}
const base = ["sync", "--provider", "github", "--repository", "acme/x", "--path", "a/b", "--out", "dist"];

describe("one-line errors", () => {
  it("summarise a long list as its first few items and a count", () => {
    expect(summarise(["a", "b"])).toBe("a; b");
    expect(summarise(["a", "b", "c", "d", "e", "f", "g"], 2)).toBe("a; b; and 5 more");
  });

  it("stay under 1,000 characters, whatever they are built from", () => {
    expect(new SourceError(`x${"y".repeat(100_000)}`).message.length).toBeLessThan(1000);
    expect(describeError(new Error("z".repeat(100_000))).length).toBeLessThan(1000);
  });

  it("report 100,000 duplicate paths in an event as the first few and a count", () => {
    const paths = Array.from({ length: 100_001 }, () => "layers/dup");
    const { problems } = parseFolders(paths, "");
    const error = new EventValidationError(`"paths" ${summarise(problems)}`);
    expect(error.message).toMatch(/lists folder "layers\/dup" more than once; .* and \d+ more$/);
    expect(error.message.length).toBeLessThan(1000);
    const config = new ConfigError(problems);
    expect(config.message.length).toBeLessThan(1000);
    expect(config.problems.length).toBeLessThanOrEqual(21);
    expect(config.problems.at(-1)).toMatch(/^and \d+ more$/);
  });
});

describe("a blank token", () => {
  it.each([
    ["empty", ""],
    ["whitespace only", "  \t\n "],
  ])("in SOURCE_TOKEN (%s) is a configuration error (exit 2) naming the setting", async (_what, value) => {
    const r = await run(base, { SOURCE_TOKEN: value });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^layer-sync: SOURCE_TOKEN is set but empty or only whitespace/);
  });

  it("in the token parameter name is a configuration error naming the setting", async () => {
    const r = await run([...base.slice(0, -2), "--bucket", "b"], { TOKEN_PARAMETER_NAME: "   " });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/TOKEN_PARAMETER_NAME \(--token-parameter\) is set but empty or only whitespace/);
  });
});
