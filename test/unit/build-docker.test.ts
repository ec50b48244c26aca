/**
 * Docker builds in two `docker run`s: the download phase holds the index credential (named with `-e NAME`,
 * never its value, and an `.npmrc` that names it only as a variable) and sees only the manifests; the build
 * phase, where package code runs, gets no credential variable, no `.npmrc` (deleted from the host before it
 * starts) and not the folder, and no network when the wheelhouse is complete. A stand-in `docker` records
 * each invocation's arguments and environment; the real image runs in test/integration/build-docker.test.ts.
 */

import { existsSync } from "node:fs";
import { chmod, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { samBuildImage } from "../../lib/builds/builders.ts";
import { DockerBuilder, dockerRunArguments } from "../../lib/builds/docker.ts";
import { clearSecrets } from "../../lib/common/redact.ts";
import { python312Arm64Request } from "../support/build-requests.ts";
import { useScratchDir } from "../support/scratch-dir.ts";

const TOKEN = "idx-secret-0b9e4c2f7a";
const dir = useScratchDir("layer-sync-docker-", clearSecrets);
const request = python312Arm64Request;

describe("docker run arguments", () => {
  it("give the download phase the manifests, the wheelhouse and the credential by name only", () => {
    const args = dockerRunArguments(request, {
      user: "1000:1000",
      download: "/d",
      phase: "download",
      env: ["PIP_INDEX_URL"],
    });
    expect(samBuildImage("python3.12", "arm64")).toBe("public.ecr.aws/sam/build-python3.12:latest-arm64");
    expect(args.slice(0, 4)).toEqual(["run", "--rm", "--platform", "linux/arm64"]);
    expect(args.join(" ")).toContain("--network bridge");
    expect(args.join(" ")).toContain("-e PIP_INDEX_URL ");
    expect(args.join(" ")).toContain("--user 1000:1000");
    expect(args).toContain("/s/requirements.txt:/var/layer-sync/src/requirements.txt:ro");
    expect(args).not.toContain("/s:/var/layer-sync/src:ro");
    expect(args).toContain("/d:/var/layer-sync/download");
    expect(args.at(-1)).toContain(
      "pip download --no-input --disable-pip-version-check --only-binary=:all: --dest /var/layer-sync/download/wheels",
    );
    expect(args.at(-1)).not.toContain("pip install");
  });

  it("give the build phase no credential, no .npmrc, not the folder, and no network when the wheelhouse is complete", () => {
    const args = dockerRunArguments(request, { download: "/d", phase: "build", network: "none" });
    expect(args.join(" ")).toContain("--network none");
    expect(args.filter((_a, i) => args[i - 1] === "-e")).toEqual(["HOME=/tmp", "PIP_CACHE_DIR=/tmp/pip-cache"]);
    expect(args.filter((_a, i) => args[i - 1] === "-v")).toEqual([
      "/o:/var/layer-sync/out",
      "/d:/var/layer-sync/download:ro",
    ]);
    expect(args.at(-1)).toContain("--no-index --find-links /var/layer-sync/download/wheels");
    const fallback = dockerRunArguments(request, {
      download: "/d",
      phase: "build",
      network: "bridge",
      pipIndexUrl: "https://host/simple/",
    });
    expect(fallback.join(" ")).toContain("--network bridge");
    expect(fallback.join(" ")).toContain("-e PIP_INDEX_URL=https://host/simple/ ");
    const node = dockerRunArguments(
      { ...request, language: "nodejs", runtime: "nodejs22.x", architecture: "x86_64" },
      { download: "/d", phase: "build", network: "bridge" },
    );
    expect(node).toContain("linux/amd64");
    expect(node.join(" ")).not.toContain(".npmrc");
    expect(node.at(-1)).toContain("npm rebuild");
    expect(node.at(-1)).not.toContain("npm ci");
  });
});

/** A stand-in `docker` that records each call and plays the download phase's outcome. */
async function fakeDocker(noWheel: boolean): Promise<string> {
  const bin = join(dir(), "bin");
  const calls = join(dir(), "calls");
  await mkdir(bin);
  await mkdir(calls);
  await writeFile(
    join(bin, "docker"),
    [
      "#!/bin/bash",
      `C="${calls}"; n=$(ls "$C" | grep -c args)`,
      'printf "%s\\n" "$@" > "$C/$n-args"; env > "$C/$n-env"',
      'for a in "$@"; do',
      '  case "$a" in',
      `    *:/var/layer-sync/download) ${noWheel ? ":" : `: > "$\{a%%:/var/layer-sync/download}/.complete"`} ;;`,
      `    *:/tmp/.npmrc:ro) cp "$\{a%%:/tmp/.npmrc:ro}" "$C/$n-npmrc" ;;`,
      "  esac",
      "done",
      "",
    ].join("\n"),
  );
  await chmod(join(bin, "docker"), 0o755);
  return calls;
}

async function buildWith(language: "python" | "nodejs", noWheel = false) {
  const calls = await fakeDocker(noWheel);
  const home = join(dir(), "home");
  await mkdir(home);
  const builder = new DockerBuilder({
    env: { PATH: `${join(dir(), "bin")}:${process.env.PATH}`, HOME: home },
    home,
    timeoutMs: 30_000,
    index:
      language === "python"
        ? { pipIndexUrl: "https://u:p@index.example/simple/", token: TOKEN }
        : { npmRegistry: "https://npm.example/r/", token: TOKEN },
  });
  await builder.build({
    language,
    runtime: language === "python" ? "python3.12" : "nodejs22.x",
    architecture: "x86_64",
    sourceDir: join(dir(), "src"),
    outDir: join(dir(), "out"),
  });
  const read = (name: string) => readFile(join(calls, name), "utf8");
  expect((await readdir(calls)).filter((f) => f.endsWith("-args"))).toHaveLength(2);
  return {
    home,
    download: { args: await read("0-args"), env: await read("0-env") },
    build: { args: await read("1-args"), env: await read("1-env") },
    calls,
  };
}

describe("a docker build", () => {
  it("hands pip the credential in the download run only and builds offline from a complete wheelhouse", async () => {
    const { download, build, home } = await buildWith("python");
    expect(download.env).toContain(`PIP_INDEX_URL=https://aws:${TOKEN}@index.example/simple/\n`);
    expect(download.args).toContain("-e\nPIP_INDEX_URL\n");
    expect(download.args).not.toContain(TOKEN);
    expect(build.env).not.toContain(TOKEN);
    expect(build.env).not.toContain("PIP_INDEX_URL");
    expect(build.args).not.toContain(TOKEN);
    expect(build.args).toContain("--network\nnone\n");
    expect(build.args).not.toContain("PIP_INDEX_URL");
    // the wheelhouse is the build's own and is gone afterwards
    expect((await readdir(home)).filter((f) => f.startsWith("download-"))).toEqual([]);
  });

  it("gives the build run the index without its credential when some requirement had no wheel", async () => {
    const { build } = await buildWith("python", true);
    expect(build.args).toContain("--network\nbridge\n");
    expect(build.args).toContain("-e\nPIP_INDEX_URL=https://index.example/simple/\n");
    expect(build.args).not.toContain(TOKEN);
    expect(build.env).not.toContain(TOKEN);
  });

  it("mounts the .npmrc and the credential variable in the download run only, and deletes the .npmrc before the build run", async () => {
    const { download, build, home, calls } = await buildWith("nodejs");
    expect(download.args).toContain("-e\nLAYER_SYNC_INDEX_TOKEN\n");
    expect(download.env).toContain(`LAYER_SYNC_INDEX_TOKEN=${TOKEN}\n`);
    expect(await readFile(join(calls, "0-npmrc"), "utf8")).toContain(
      `//npm.example/r/:_authToken=$\{LAYER_SYNC_INDEX_TOKEN}\n`,
    );
    expect(existsSync(join(calls, "1-npmrc"))).toBe(false);
    expect(existsSync(join(home, ".npmrc"))).toBe(false);
    expect(build.args).not.toContain(".npmrc");
    expect(build.args).not.toContain("LAYER_SYNC_INDEX_TOKEN");
    expect(build.env).not.toContain(TOKEN);
  });
});
