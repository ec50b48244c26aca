import { describe, expect, it } from "vitest";
import {
  functionSettings,
  functionVariables,
  SETTINGS,
  type SettingKey,
  settingName,
  validateEnvironment,
  validateSetting,
} from "../../lib/common/settings.ts";

describe("the settings schema", () => {
  it("gives every setting a distinct variable, a distinct flag, help text and at least one reader", () => {
    const specs = Object.values(SETTINGS);
    const envs = specs.map((s) => s.env);
    const flags = specs.flatMap((s) => (s.flag ? [s.flag] : []));
    expect(new Set(envs).size).toBe(envs.length);
    expect(new Set(flags).size).toBe(flags.length);
    for (const s of specs) {
      expect(s.help.length, s.env).toBeGreaterThan(5);
      expect(s.commands.length + s.functions.length, s.env).toBeGreaterThan(0);
      // a flag exists exactly when some command reads the setting
      expect(s.flag !== undefined, s.env).toBe(s.commands.length > 0 && s.env !== "SOURCE_TOKEN");
    }
  });

  it("names a setting as VARIABLE (--flag), or the variable alone when it has no flag", () => {
    expect(settingName("retain")).toBe("RETAIN_VERSIONS (--retain)");
    expect(settingName("pipelineName")).toBe("PIPELINE_NAME");
  });

  it("lists the variables each Lambda function reads", () => {
    const sync = functionSettings("sync").map((s) => s.env);
    const publish = functionSettings("publish").map((s) => s.env);
    expect(sync).toEqual(
      expect.arrayContaining(["SOURCE_PROVIDER", "PIPELINE_NAME", "ARTIFACT_BUCKET", "PUBLISH_REGIONS"]),
    );
    expect(publish).toEqual(
      expect.arrayContaining(["ARTIFACT_BUCKET", "RETAIN_VERSIONS", "REGION_BUCKETS", "SUMMARY_EVENT_BUS"]),
    );
    expect(publish).not.toContain("SOURCE_PROVIDER");
    expect(functionVariables()).toHaveLength(Object.keys(SETTINGS).length);
    expect(functionSettings("publish").find((s) => s.env === "RETAIN_VERSIONS")?.default).toBe("10");
  });

  it("validates one value with the message that follows the setting's name", () => {
    expect(validateSetting("retain", "0")).toEqual(['must be a whole number from 1 to 10000 (got "0")']);
    expect(validateSetting("retain", " 7 ")).toEqual([]);
    expect(validateSetting("architectures", "arm64,mips")).toEqual([
      'has invalid architectures (use "x86_64" and/or "arm64"): "mips"',
    ]);
    expect(validateSetting("regionBuckets", "eu-west-1=a-bucket,eu-west-1=b-bucket")).toEqual([
      "maps eu-west-1 more than once; give one bucket per Region",
    ]);
  });

  it("validates a function's whole environment, naming each variable, and ignores what it does not read", () => {
    const env = { RETAIN_VERSIONS: "x", SOURCE_PROVIDER: "gitlab", SHARE_ACCOUNT_IDS: "*", UNRELATED: "1" };
    expect(validateEnvironment("publish", env)).toEqual([
      expect.stringMatching(/^SHARE_ACCOUNT_IDS contains "\*"/),
      'RETAIN_VERSIONS must be a whole number from 1 to 10000 (got "x")',
    ]);
    expect(validateEnvironment("sync", env)).toContain(
      'SOURCE_PROVIDER must be "bitbucket" or "github" (got "gitlab")',
    );
    expect(validateEnvironment("sync", { SOURCE_REF: " " })).toEqual([]);
  });

  it("gives every setting its own variable and flag, a help text, and a reader", () => {
    const specs = (Object.keys(SETTINGS) as SettingKey[]).map((key) => SETTINGS[key]);
    const envs = specs.map((s) => s.env);
    const flags = specs.flatMap((s) => (s.flag ? [s.flag] : []));
    expect(new Set(envs).size).toBe(envs.length);
    expect(new Set(flags).size).toBe(flags.length);
    for (const s of specs) {
      expect(s.env).toMatch(/^[A-Z][A-Z0-9_]+$/);
      expect(s.help.length).toBeGreaterThan(5);
      expect(s.commands.length + s.functions.length).toBeGreaterThan(0);
    }
  });
});
