import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import {
  childEnvironment,
  NPM_TOKEN_VARIABLE,
  pipIndexWithCredential,
  publicIndexUrl,
  writeNpmrc,
} from "../../lib/builds/builders.ts";
import { npmArguments, pipPlatforms, uvArguments } from "../../lib/builds/local.ts";
import { lastLine, runCommand } from "../../lib/builds/process.ts";
import { uvPlatform } from "../../lib/builds/uv.ts";
import { BuildError } from "../../lib/common/errors.ts";
import { clearSecrets } from "../../lib/common/redact.ts";
import { python312Arm64Request } from "../support/build-requests.ts";
import { useScratchDir } from "../support/scratch-dir.ts";

const dir = useScratchDir("layer-sync-builders-", clearSecrets);
const request = python312Arm64Request;

describe("local build arguments", () => {
  it("pin the container recipe's pip to the runtime's glibc levels", () => {
    expect(pipPlatforms("python3.11", "x86_64")).toEqual(["manylinux2014_x86_64"]);
    expect(pipPlatforms("python3.12", "arm64")).toEqual([
      "manylinux_2_34_aarch64",
      "manylinux_2_28_aarch64",
      "manylinux2014_aarch64",
    ]);
  });

  it("pin uv to the runtime's Python and OS (AL2023 or AL2) and the CPU, wheels only, no configuration", () => {
    expect(uvPlatform("3.11", "x86_64")).toBe("x86_64-manylinux2014");
    expect(uvPlatform("3.12", "arm64")).toBe("aarch64-manylinux_2_34");
    expect(uvPlatform("3.14", "x86_64")).toBe("x86_64-manylinux_2_34");
    const args = uvArguments(request, "/o/python", "/usr/bin/python3").join(" ");
    expect(args).toMatch(/^pip install --no-config --target \/o\/python /);
    expect(args).toContain("--python-platform aarch64-manylinux_2_34 --python-version 3.12 --python /usr/bin/python3");
    expect(args).toContain("--no-build --no-installer-metadata --no-compile-bytecode --link-mode copy");
    expect(args).toMatch(/ -r requirements\.txt$/);
    expect(args).not.toMatch(/index|http/);
  });

  it("pin npm to Linux, the CPU and glibc, without dev dependencies or install scripts", () => {
    expect(npmArguments("arm64")).toEqual(
      expect.arrayContaining(["ci", "--omit=dev", "--os=linux", "--cpu=arm64", "--libc=glibc", "--ignore-scripts"]),
    );
    expect(npmArguments("x86_64")).toContain("--cpu=x64");
  });
});

describe("private index settings", () => {
  it("put the credential in pip's URL but never in the URL used for messages and fingerprints", () => {
    const url = "https://my-domain-111122223333.d.codeartifact.eu-west-1.amazonaws.com/pypi/repo/simple/";
    expect(pipIndexWithCredential(url, "s3cr3t/tok+en")).toBe(
      "https://aws:s3cr3t%2Ftok%2Ben@my-domain-111122223333.d.codeartifact.eu-west-1.amazonaws.com/pypi/repo/simple/",
    );
    expect(pipIndexWithCredential(url, "me:pw")).toMatch(/^https:\/\/me:pw@/);
    expect(publicIndexUrl("https://u:p@host/simple/?token=x")).toBe("https://host/simple/");
  });

  it("write an .npmrc that names the credential only as a variable", async () => {
    const file = join(dir(), ".npmrc");
    const env = await writeNpmrc(file, { npmRegistry: "https://host.example/npm/repo/", token: "s3cr3t-token" });
    const text = await readFile(file, "utf8");
    expect(text).toContain("registry=https://host.example/npm/repo/");
    expect(text).toContain(`//host.example/npm/repo/:_authToken=\${${NPM_TOKEN_VARIABLE}}`);
    expect(text).not.toContain("s3cr3t");
    expect(env).toEqual({ [NPM_TOKEN_VARIABLE]: "s3cr3t-token" });
  });

  it("pass children only the network and Docker settings of the caller's environment", () => {
    expect(
      childEnvironment({
        PATH: "/bin",
        HTTPS_PROXY: "http://p:3128",
        PIP_FIND_LINKS: "/x",
        NPM_CONFIG_REGISTRY: "r",
        SOURCE_TOKEN: "t",
      }),
    ).toEqual({
      PATH: "/bin",
      HTTPS_PROXY: "http://p:3128",
    });
  });
});

describe("runCommand", () => {
  it("captures the output and exit code", async () => {
    const r = await runCommand("sh", ["-c", "echo out; echo err >&2; exit 3"], {
      cwd: dir(),
      env: { PATH: "/usr/bin:/bin" },
      timeoutMs: 5000,
    });
    expect(r).toEqual({ code: 3, stdout: "out\n", stderr: "err\n" });
  });

  // "Promptly" is the fake clock: the command (which would sleep for ten minutes) is stopped when its deadline's
  // timer fires, and not one millisecond before; a run that waited for the command fails on vitest's timeout.
  it("stops a command and what it started at its deadline with a one-line error", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    try {
      let settled = false;
      const run = runCommand("sh", ["-c", "sleep 600 & wait"], {
        cwd: dir(),
        env: { PATH: "/usr/bin:/bin" },
        timeoutMs: 60_000,
      }).finally(() => {
        settled = true;
      });
      const rejected = expect(run).rejects.toThrow(/sh -c did not finish within 60 s and was stopped/);
      await vi.advanceTimersByTimeAsync(59_999);
      expect(settled).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      await rejected;
    } finally {
      vi.useRealTimers();
    }
  });

  it("says which tool is missing", async () => {
    await expect(runCommand("no-such-tool-xyz", [], { cwd: dir(), env: {}, timeoutMs: 1000 })).rejects.toThrow(
      BuildError,
    );
  });

  it("reports docker's own reason when the daemon cannot be reached, not its pointer to --help", () => {
    const stderr = [
      "docker: Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?",
      "",
      "Run 'docker run --help' for more information",
      "",
    ].join("\n");
    expect(lastLine(stderr)).toBe(
      "docker: Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?",
    );
  });

  it("keeps registered credentials out of the last line it reports", async () => {
    const r = await runCommand(
      "sh",
      ["-c", "echo 'ERROR: 401 for https://aws:hunter2-secret@host/simple' >&2; exit 1"],
      {
        cwd: dir(),
        env: { PATH: "/usr/bin:/bin" },
        timeoutMs: 5000,
        secrets: ["hunter2-secret"],
      },
    );
    expect(lastLine(r.stderr)).toBe("ERROR: 401 for https://aws:***@host/simple");
  });
});
