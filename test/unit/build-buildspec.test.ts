/**
 * The CodeBuild buildspec and the StartBuild request: the script is valid bash and, run with stand-ins for
 * pip and npm, packs the install tree as the finished handler expects; the index credential reaches pip in
 * the URL and npm only through `${LAYER_SYNC_INDEX_TOKEN}`; a missing project is a configuration error.
 */
import { execFile } from "node:child_process";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildScript, buildspec, OUTPUT_ARCHIVE } from "../../lib/build/buildspec.ts";
import { parseBuildId, startBuildRequest } from "../../lib/build/codebuild.ts";
import { ConfigError } from "../../lib/common/errors.ts";

const run = promisify(execFile);
/** How .npmrc names the credential: npm expands it from the environment. */
const REF = ["$", "{LAYER_SYNC_INDEX_TOKEN}"].join("");
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "ls-buildspec-"));
  const bin = join(dir, "bin");
  await mkdir(bin);
  // stand-ins that record what they were given and install one file (and a .bin link for npm)
  await writeFile(
    join(bin, "pip"),
    `#!/bin/bash\nprintf '%s' "$PIP_INDEX_URL" > "${dir}/pip-index"\nwhile [ "$1" != "--target" ]; do shift; done\nmkdir -p "$2/six" "$2/empty"\necho x > "$2/six/__init__.py"\n`,
  );
  await writeFile(
    join(bin, "npm"),
    `#!/bin/bash\ncp "$npm_config_userconfig" "${dir}/npmrc"\nprintf '%s' "$LAYER_SYNC_INDEX_TOKEN" > "${dir}/npm-token"\nmkdir -p node_modules/.bin node_modules/cli\necho x > node_modules/cli/cli.js\nln -s ../cli/cli.js node_modules/.bin/cli\n`,
  );
  await chmod(join(bin, "pip"), 0o755);
  await chmod(join(bin, "npm"), 0o755);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function runScript(language: "python" | "nodejs", env: Record<string, string>) {
  const src = join(dir, `src-${language}`);
  await mkdir(src, { recursive: true });
  await writeFile(join(src, "requirements.txt"), "six\n");
  await writeFile(join(src, "package.json"), "{}");
  await writeFile(join(src, "package-lock.json"), "{}");
  await run("bash", ["-c", buildScript(language, join(dir, `work-${language}`))], {
    env: { PATH: `${join(dir, "bin")}:${process.env.PATH}`, CODEBUILD_SRC_DIR: src, ...env },
  });
  const { stdout } = await run("tar", ["-tzvf", join(src, OUTPUT_ARCHIVE)]);
  return stdout;
}

describe("the CodeBuild buildspec", () => {
  it("is bash that YAML quotes as one command and names the output archive", async () => {
    for (const language of ["python", "nodejs"] as const) {
      await run("bash", ["-n", "-c", buildScript(language)]);
      const spec = buildspec(language);
      expect(spec.split("\n").slice(0, 6)).toEqual([
        "version: 0.2",
        "env:",
        "  shell: bash",
        "phases:",
        "  build:",
        "    commands:",
      ]);
      expect(JSON.parse(spec.split("\n")[6]?.slice("      - ".length) ?? "")).toBe(buildScript(language));
    }
  });

  it("packs python/ without empty directories and gives pip the index with the credential", async () => {
    const listing = await runScript("python", {
      LAYER_SYNC_PIP_INDEX_URL: "https://example.com/pypi/simple/",
      LAYER_SYNC_INDEX_TOKEN: "s3cr/t",
    });
    expect(listing).toContain("layer/python/six/__init__.py");
    expect(listing).not.toContain("layer/python/empty");
    expect(await readFile(join(dir, "pip-index"), "utf8")).toBe("https://aws:s3cr%2Ft@example.com/pypi/simple/");
  });

  it("keeps npm's .bin symlinks and names the credential in .npmrc only as a variable", async () => {
    const listing = await runScript("nodejs", {
      LAYER_SYNC_NPM_REGISTRY: "https://npm.example.com/r",
      LAYER_SYNC_INDEX_TOKEN: "npm-bearer-token",
    });
    expect(listing).toMatch(/layer\/nodejs\/node_modules\/\.bin\/cli -> \.\.\/cli\/cli\.js/);
    const npmrc = await readFile(join(dir, "npmrc"), "utf8");
    expect(npmrc).toContain("registry=https://npm.example.com/r\n");
    expect(npmrc).toContain(`//npm.example.com/r/:_authToken=${REF}\n`);
    expect(npmrc).not.toContain("npm-bearer-token");
  });

  it("turns a user:password credential into npm's base64 _auth", async () => {
    await runScript("nodejs", { LAYER_SYNC_NPM_REGISTRY: "https://npm.example.com/", LAYER_SYNC_INDEX_TOKEN: "u:p" });
    expect(await readFile(join(dir, "npmrc"), "utf8")).toContain(`//npm.example.com/:_auth=${REF}`);
    expect(await readFile(join(dir, "npm-token"), "utf8")).toBe(Buffer.from("u:p").toString("base64"));
  });
});

describe("the StartBuild request", () => {
  const settings = {
    projects: { x86_64: "ls-x86", arm64: undefined },
    sourcePrefix: "build-source/",
    outputPrefix: "build-output/",
    pipIndexUrl: undefined,
    npmRegistry: undefined,
    indexTokenParameter: "/ls/token",
  };
  const args = {
    plan: { language: "nodejs" as const },
    target: { runtime: "nodejs22.x", architecture: "x86_64" as const, package: "nd" },
    fingerprint: "a".repeat(64),
    bucket: "b",
    settings,
  };

  it("passes no credential variable when no index is configured", () => {
    expect(startBuildRequest(args).environmentVariablesOverride?.map((v) => v.name)).toEqual([
      "LAYER_SYNC_RUNTIME",
      "LAYER_SYNC_ARCHITECTURE",
      "LAYER_SYNC_PACKAGE",
      "LAYER_SYNC_FINGERPRINT",
    ]);
  });

  it("says which setting is missing for an architecture without a project", () => {
    expect(() => startBuildRequest({ ...args, target: { ...args.target, architecture: "arm64" } })).toThrow(
      new ConfigError("no CodeBuild project builds arm64: set BUILD_PROJECT_ARM64 (the stack's arm64 build project)"),
    );
    expect(() =>
      startBuildRequest({ ...args, settings: { ...settings, projects: { x86_64: undefined, arm64: undefined } } }),
    ).toThrow(/deploy the stack's build projects .*--builder local\|docker/);
  });

  it("splits build ids and ARNs and refuses anything else", () => {
    const uuid = "8745a7a9-c340-456a-9166-edf953571bef";
    expect(parseBuildId(`p1:${uuid}`)).toEqual({ id: `p1:${uuid}`, project: "p1", uuid });
    const arn = `arn:aws:codebuild:us-west-2:123456789012:build/p1:${uuid}`;
    expect(parseBuildId(arn)).toEqual({ id: `p1:${uuid}`, project: "p1", uuid, arn });
    for (const bad of ["p1", `p1:${uuid}/..`, `../p1:${uuid}`, 42, `arn:aws:s3:::b/p1:${uuid}`]) {
      expect(() => parseBuildId(bad)).toThrow(/is not a CodeBuild build id/);
    }
  });
});
