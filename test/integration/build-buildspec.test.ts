/**
 * The CodeBuild buildspec and the StartBuild request. The script is valid bash and, run here with stand-ins
 * for pip and npm that record what they see, proves the two phases: the download phase holds the index
 * credential (pip's URL, npm's `${LAYER_SYNC_INDEX_TOKEN}`) and runs no package code; the build phase, where
 * install scripts run, sees no credential in its environment, no `.npmrc`, nothing of CodeBuild's own
 * directory and (run as root, as CodeBuild runs it) runs as `nobody`, so a canary install script reading every
 * `/proc/<pid>/environ` finds nothing. It packs the install tree as the finished handler expects.
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildScript, buildspec, CREDENTIAL_VARIABLES, OUTPUT_ARCHIVE } from "../../lib/builds/buildspec.ts";
import { parseBuildId, startBuildRequest } from "../../lib/builds/codebuild.ts";
import { ConfigError } from "../../lib/common/errors.ts";

const run = promisify(execFile);
/** How .npmrc names the credential: npm expands it from the environment. */
const REF = ["$", "{LAYER_SYNC_INDEX_TOKEN}"].join("");
const TOKEN = "idx-secret-7e1f0c9a3b";
const ROLE = "role-secret-4d2a8b6c1e";
/** Root with runuser: the privilege drop is real here, as in CodeBuild; else stand-ins pass the command on. */
const REAL_DROP = process.getuid?.() === 0 && existsSync("/usr/sbin/runuser");
let dir: string;
let runs = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "ls-buildspec-"));
  // `nobody` must reach the stand-ins and write its reports
  await chmod(dir, 0o755);
  const bin = join(dir, "bin");
  await mkdir(bin);
  // the canary: what any install script of the build phase could read, written to the report folder
  const canary = [
    'env > "$R/build-env"',
    'id -u > "$R/build-uid"',
    'for f in /proc/[0-9]*/environ; do tr "\\0" "\\n" < "$f" 2>/dev/null || true; done > "$R/build-proc"',
    'cat "$L/env.sh" > "$R/build-locked" 2>&1 || true',
    'cat "$W/npmrc" > "$R/build-npmrc" 2>&1 || true',
  ];
  await writeFile(
    join(bin, "pip"),
    [
      "#!/bin/bash",
      `R="$(cat ${dir}/current-report)"; L="${dir}/codebuild"; W="$(cat ${dir}/current-work)"`,
      'case "$1" in',
      "download)",
      '  env > "$R/download-env"',
      '  if [ -e "$R/no-wheel" ]; then echo "ERROR: No matching distribution found for private-pkg" >&2; exit 1; fi',
      '  while [ "$1" != "--dest" ]; do shift; done; echo w > "$2/six-1.17.0-py2.py3-none-any.whl" ;;',
      "install)",
      '  printf "%s\\n" "$@" > "$R/install-args"',
      ...canary.map((l) => `  ${l}`),
      '  if [ -e "$R/install-fails" ]; then echo "ERROR: private-pkg needs a build" >&2; exit 1; fi',
      '  while [ "$1" != "--target" ]; do shift; done',
      '  mkdir -p "$2/six" "$2/empty"; echo x > "$2/six/__init__.py" ;;',
      "esac",
      "",
    ].join("\n"),
  );
  await writeFile(
    join(bin, "npm"),
    [
      "#!/bin/bash",
      `R="$(cat ${dir}/current-report)"; L="${dir}/codebuild"; W="$(cat ${dir}/current-work)"`,
      'case "$1" in',
      "ci)",
      '  printf "%s\\n" "$@" > "$R/ci-args"',
      '  cp "$npm_config_userconfig" "$R/npmrc"; env > "$R/download-env"',
      "  mkdir -p node_modules/.bin node_modules/cli; echo x > node_modules/cli/cli.js",
      "  ln -s ../cli/cli.js node_modules/.bin/cli ;;",
      "rebuild)",
      ...canary.map((l) => `  ${l}`),
      "  echo built > node_modules/cli/built.txt ;;",
      "esac",
      "",
    ].join("\n"),
  );
  const stand = ["pip", "npm"];
  if (!REAL_DROP) {
    // without root, `runuser` and `chown` cannot work: stand-ins pass the command on unchanged
    await writeFile(join(bin, "runuser"), '#!/bin/bash\nwhile [ "$1" != "--" ]; do shift; done\nshift\nexec "$@"\n');
    await writeFile(join(bin, "chown"), "#!/bin/bash\nexit 0\n");
    stand.push("runuser", "chown");
  }
  for (const name of stand) await chmod(join(bin, name), 0o755);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Run {
  code: number;
  stderr: string;
  listing: string;
  work: string;
  report(name: string): string;
  has(name: string): boolean;
}

/** Run the build script as CodeBuild would, with the source under a CodeBuild-like directory that it locks. */
async function runScript(
  language: "python" | "nodejs",
  env: Record<string, string>,
  options: { requirements?: string; lock?: unknown; noWheel?: boolean; installFails?: boolean } = {},
): Promise<Run> {
  runs += 1;
  const report = join(dir, `report-${runs}`);
  const work = join(dir, `work-${runs}`);
  const codebuild = join(dir, "codebuild");
  const src = join(codebuild, `src-${runs}`);
  await mkdir(report);
  await chmod(report, 0o777);
  await mkdir(src, { recursive: true });
  await chmod(codebuild, 0o755);
  // where CodeBuild's agent keeps the build's environment: readable to anyone who can reach it
  await writeFile(join(codebuild, "env.sh"), `export AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=/v2/${ROLE}\n`);
  await chmod(join(codebuild, "env.sh"), 0o644);
  await writeFile(join(dir, "current-report"), report);
  await writeFile(join(dir, "current-work"), work);
  if (options.noWheel) await writeFile(join(report, "no-wheel"), "");
  if (options.installFails) await writeFile(join(report, "install-fails"), "");
  await writeFile(join(src, "requirements.txt"), options.requirements ?? "six==1.17.0\n");
  await writeFile(join(src, "package.json"), "{}");
  await writeFile(join(src, "package-lock.json"), JSON.stringify(options.lock ?? {}));
  let code = 0;
  let stderr = "";
  try {
    await run("bash", ["-c", buildScript(language, work, [codebuild])], {
      env: {
        PATH: `${join(dir, "bin")}:${process.env.PATH}`,
        CODEBUILD_SRC_DIR: src,
        AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: `/v2/${ROLE}`,
        AWS_ACCESS_KEY_ID: "AKIAEXAMPLE",
        AWS_SECRET_ACCESS_KEY: ROLE,
        ...env,
      },
    });
  } catch (error) {
    code = (error as { code: number }).code;
    stderr = (error as { stderr: string }).stderr;
  }
  const archive = join(src, OUTPUT_ARCHIVE);
  const listing = code === 0 ? (await run("tar", ["-tzvf", archive])).stdout : "";
  const read = (name: string) => (existsSync(join(report, name)) ? readFileSync(join(report, name), "utf8") : "");
  return { code, stderr, listing, work, report: read, has: (name) => existsSync(join(report, name)) };
}

const PIP_ENV = { LAYER_SYNC_PIP_INDEX_URL: "https://example.com/pypi/simple/", LAYER_SYNC_INDEX_TOKEN: TOKEN };
const NPM_ENV = { LAYER_SYNC_NPM_REGISTRY: "https://npm.example.com/r", LAYER_SYNC_INDEX_TOKEN: TOKEN };

/** No credential of any kind in what the build phase could read. */
function expectNothingSecret(r: Run): void {
  for (const name of ["build-env", "build-locked", "build-npmrc"]) {
    expect(r.has(name)).toBe(true);
    expect(r.report(name)).not.toContain(TOKEN);
    expect(r.report(name)).not.toContain(ROLE);
  }
  expect(r.report("build-env")).not.toMatch(
    /^(AWS_|PIP_INDEX_URL=https:\/\/aws|LAYER_SYNC_INDEX_TOKEN|npm_config_userconfig)/m,
  );
  expect(r.report("build-locked")).toMatch(/Permission denied|No such file/);
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

  it("removes every credential, locks CodeBuild's directory and drops to nobody before the build phase", () => {
    for (const language of ["python", "nodejs"] as const) {
      const lines = buildScript(language).split("\n");
      const at = (pattern: RegExp) => lines.findIndex((l) => pattern.test(l));
      const download = at(
        language === "python" ? /^if pip download .*--only-binary=:all:/ : /^npm ci .*--ignore-scripts/,
      );
      const unset = at(/^unset /);
      const lock = at(/^for d in \/codebuild; do .*chmod go-rwx/);
      const build = at(/^as_build_user .*bash -c /);
      expect(download).toBeGreaterThan(0);
      expect(download).toBeLessThan(unset);
      expect(unset).toBeLessThan(lock);
      expect(lock).toBeLessThan(build);
      expect(lines[unset]?.split(" ").slice(1)).toEqual([...CREDENTIAL_VARIABLES]);
      expect(CREDENTIAL_VARIABLES).toEqual(
        expect.arrayContaining([
          "LAYER_SYNC_INDEX_TOKEN",
          "PIP_INDEX_URL",
          "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
          "AWS_CONTAINER_CREDENTIALS_FULL_URI",
          "AWS_ACCESS_KEY_ID",
          "AWS_SECRET_ACCESS_KEY",
          "AWS_SESSION_TOKEN",
        ]),
      );
      expect(lines).toContain(
        '    runuser -u nobody -- env -i PATH="$PATH" HOME=/tmp/layer-sync-build/home LANG=C.UTF-8 "$@"',
      );
      if (language === "nodejs") expect(at(/^rm -f "\$NPMRC"$/)).toBeLessThan(unset);
      // nothing after the download phase may name the credential
      expect(lines.slice(unset + 1).join("\n")).not.toMatch(/LAYER_SYNC_INDEX_TOKEN|npmrc/i);
    }
  });

  it("gives pip the credential only to download wheels; the build phase installs from them with nothing secret in reach", async () => {
    const r = await runScript("python", PIP_ENV);
    expect(r.code).toBe(0);
    expect(r.report("download-env")).toContain(`PIP_INDEX_URL=https://aws:${TOKEN}@example.com/pypi/simple/\n`);
    expect(r.report("download-env")).toContain("PIP_CONFIG_FILE=/dev/null\n");
    const args = r.report("install-args").split("\n");
    expect(args).toContain("--no-index");
    expect(r.report("build-env")).not.toContain("PIP_INDEX_URL");
    expectNothingSecret(r);
    expect(r.listing).toContain("layer/python/six/__init__.py");
    expect(r.listing).not.toContain("layer/python/empty");
  });

  it.skipIf(!REAL_DROP)(
    "runs the build phase as nobody, whose canary reads no process environment holding a secret",
    async () => {
      for (const language of ["python", "nodejs"] as const) {
        const r = await runScript(language, language === "python" ? PIP_ENV : NPM_ENV);
        expect(r.code).toBe(0);
        expect(r.report("build-uid").trim()).toBe("65534");
        expect(r.report("build-proc")).not.toContain(TOKEN);
        expect(r.report("build-proc")).not.toContain(ROLE);
      }
    },
  );

  it("fetches what has no wheel from the index without its credential", async () => {
    const r = await runScript("python", PIP_ENV, { noWheel: true });
    expect(r.code).toBe(0);
    expect(r.report("build-env")).toContain("PIP_INDEX_URL=https://example.com/pypi/simple/\n");
    expect(r.report("install-args").split("\n")).not.toContain("--no-index");
    expectNothingSecret(r);
  });

  it("fails in one line saying sdists build without the credential when the index refuses the rest", async () => {
    const r = await runScript("python", PIP_ENV, { noWheel: true, installFails: true });
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split("\n").at(-1)).toBe(
      "layer-sync: some requirement has no wheel on the index, and source distributions are built without the index credential: publish a wheel of every private package",
    );
  });

  it("refuses a requirement line pip would build even to download it, before pip runs", async () => {
    for (const line of [
      "./evilpkg",
      "--no-binary=:all:",
      "--require-hashes --no-binary=:all:",
      "git+https://example.com/evil.git",
      "evil @ https://example.com/evil-1.0.tar.gz",
      `x==1 --hash=sha256:${REF.replace("LAYER_SYNC_INDEX_TOKEN", "PIP_INDEX_URL")}`,
    ]) {
      const r = await runScript("python", PIP_ENV, { requirements: `six==1.17.0\n${line}\n` });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain("layer-sync: line 2 of requirements.txt is not a package requirement");
      expect(r.has("download-env")).toBe(false);
    }
    const ok = await runScript("python", PIP_ENV, {
      requirements: `--require-hashes\nsix==1.17.0 \\\n    --hash=sha256:${"a".repeat(64)}  # pinned\nwheel @ https://example.com/w-1.0-py3-none-any.whl ; python_version >= "3.8"\n`,
    });
    expect(ok.code).toBe(0);
  });

  it("gives npm the credential only as a variable in .npmrc without scripts, then rebuilds with no .npmrc", async () => {
    const r = await runScript("nodejs", NPM_ENV);
    expect(r.code).toBe(0);
    expect(r.report("ci-args").split("\n")).toEqual(expect.arrayContaining(["ci", "--omit=dev", "--ignore-scripts"]));
    const npmrc = r.report("npmrc");
    expect(npmrc).toContain("registry=https://npm.example.com/r\n");
    expect(npmrc).toContain(`//npm.example.com/r/:_authToken=${REF}\n`);
    expect(npmrc).not.toContain(TOKEN);
    expect(r.report("download-env")).toContain(`LAYER_SYNC_INDEX_TOKEN=${TOKEN}\n`);
    expect(existsSync(join(r.work, "npmrc"))).toBe(false);
    expect(r.report("build-npmrc")).toMatch(/No such file/);
    expectNothingSecret(r);
    expect(r.listing).toMatch(/layer\/nodejs\/node_modules\/\.bin\/cli -> \.\.\/cli\/cli\.js/);
    expect(r.listing).toContain("layer/nodejs/node_modules/cli/built.txt");
    expect(r.listing).not.toContain("layer/nodejs/package.json");
  });

  it("refuses a lock file naming a git, local or linked dependency before npm runs", async () => {
    const registry = { version: "1.0.0", resolved: "https://registry.npmjs.org/a/-/a-1.0.0.tgz" };
    for (const evil of [
      { resolved: "git+ssh://git@github.com/evil/evil.git#0123456" },
      { resolved: "file:../evil" },
      { link: true, resolved: "../evil" },
    ]) {
      const lock = { lockfileVersion: 3, packages: { "": {}, "node_modules/a": registry, "node_modules/evil": evil } };
      const r = await runScript("nodejs", NPM_ENV, { lock });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain("layer-sync: node_modules/evil in package-lock.json is not a registry package");
      expect(r.has("ci-args")).toBe(false);
    }
    const v1 = { lockfileVersion: 1, dependencies: { a: registry, evil: { version: "github:evil/evil#0123456" } } };
    expect((await runScript("nodejs", NPM_ENV, { lock: v1 })).stderr).toContain(
      "layer-sync: evil in package-lock.json",
    );
    const ok = await runScript("nodejs", NPM_ENV, {
      lock: { lockfileVersion: 3, packages: { "": {}, "node_modules/a": registry } },
    });
    expect(ok.code).toBe(0);
  });

  it("turns a user:password credential into npm's base64 _auth", async () => {
    const r = await runScript("nodejs", {
      LAYER_SYNC_NPM_REGISTRY: "https://npm.example.com/",
      LAYER_SYNC_INDEX_TOKEN: "u:p",
    });
    expect(r.report("npmrc")).toContain(`//npm.example.com/:_auth=${REF}`);
    expect(r.report("download-env")).toContain(`LAYER_SYNC_INDEX_TOKEN=${Buffer.from("u:p").toString("base64")}\n`);
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
