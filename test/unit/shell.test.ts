import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { commandLine, settingArguments, shellQuote, wrapCommand, wrapText } from "../../lib/common/shell.ts";

/** The words a POSIX shell reads from `text` (lines joined by `\` continuations included). */
function wordsOf(text: string): string[] {
  const out = execFileSync("sh", ["-c", `set -- ${text}\nprintf '%s\\0' "$@"`], { encoding: "utf8" });
  return out.split("\0").slice(0, -1);
}

describe("commands for people to copy into a shell", () => {
  it("quotes a word only when it needs it, so that the shell reads back the same word", () => {
    expect(shellQuote("eu-west-1")).toBe("eu-west-1");
    expect(shellQuote("us-east-1=my-bucket")).toBe("us-east-1=my-bucket");
    const hard = ["MIT and Apache-2.0", "it's", "$HOME", "a;b", "*", "", "~x", "tab\there"];
    expect(wordsOf(commandLine(hard))).toEqual(hard);
  });

  it("gives a command only the setting flags it reads, in schema order, a list flag once per value", () => {
    const flags = {
      regions: ["eu-west-1,us-east-1", "ap-southeast-2"],
      bucket: "b",
      "share-account": ["111111111111"],
      "layer-prefix": undefined,
    };
    expect(settingArguments("publish", flags)).toEqual([
      "--bucket",
      "b",
      "--share-account",
      "111111111111",
      "--regions",
      "eu-west-1,us-east-1",
      "--regions",
      "ap-southeast-2",
    ]);
    // no flag of sync's own source settings was given, and publish's own are not sync's
    expect(settingArguments("sync", { bucket: "b", "smoke-test": "on" })).toEqual(["--bucket", "b"]);
  });

  it("wraps a long command between words, a flag with its value, with continuations the shell joins into the same words", () => {
    const words = ["layer-sync", "publish", "--package", "p"];
    for (let i = 0; i < 12; i++) words.push("--region-bucket", `region-${i}=bucket-with-a-long-name-${i}`);
    words.push("--license", `a licence text with spaces and a quote ' ${"x".repeat(300)}`);
    const lines = wrapCommand(words, 80, "  → run: ", 6);
    expect(lines.length).toBeGreaterThan(3);
    expect(lines[0]).toMatch(/^ {2}→ run: layer-sync publish --package p/);
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(80);
    // a flag is not left at the end of a line without its value
    expect(lines.filter((line) => / --region-bucket \\$/.test(line))).toEqual([]);
    expect(wordsOf(lines.join("\n").replace("  → run: ", ""))).toEqual(words);
  });

  it("wraps prose between words, indents the later lines and cuts a word longer than a line", () => {
    expect(wrapText("one two three four", 9, "  ")).toEqual(["one two", "  three", "  four"]);
    const lines = wrapText(`x ${"y".repeat(25)}`, 10, "  ");
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(10);
    expect(lines.join("").replace(/ /g, "")).toBe(`x${"y".repeat(25)}`);
  });
});
