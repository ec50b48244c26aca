/**
 * Local builds: pip or npm on the host, pinned to the target so only binaries for the Lambda OS and CPU
 * are installed, and never anything compiled on the host.
 *
 * Python: `pip install --platform manylinux… --implementation cp --python-version 3.x --only-binary=:all:
 * --target OUT/python -r requirements.txt`. AL2023 runtimes (python3.12 and later, glibc 2.34) also accept
 * manylinux_2_28 and manylinux_2_34 wheels; older runtimes (Amazon Linux 2, glibc 2.26) only manylinux2014.
 * A requirement without such a wheel fails, naming it.
 *
 * Node.js: `npm ci --omit=dev --os=linux --cpu=x64|arm64 --libc=glibc --ignore-scripts` in OUT/nodejs.
 * Install scripts never run on the host; a module that must be compiled (binding.gyp, node-gyp …) fails,
 * naming it; other install scripts are reported as warnings.
 */
import { copyFile, lstat, mkdir, readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { BuildError } from "../common/errors.ts";
import { quoteName } from "../common/paths.ts";
import {
  type Builder,
  type BuilderOptions,
  type BuildOutcome,
  type BuildRequest,
  childEnvironment,
  homeFile,
  pipIndexWithCredential,
  publicIndexUrl,
  writeNpmrc,
} from "./builders.ts";
import { type Architecture, PACKAGE_JSON, PACKAGE_LOCK, REQUIREMENTS, runtimeVersion } from "./plan.ts";
import { lastLine, runCommand } from "./process.ts";

const USE_CONTAINER = "use --builder docker, or let CodeBuild build it";

/** pip `--platform` values for a runtime and architecture, best first. */
export function pipPlatforms(runtime: string, architecture: Architecture): string[] {
  const cpu = architecture === "arm64" ? "aarch64" : "x86_64";
  const minor = Number(runtimeVersion(runtime).split(".")[1] ?? "0");
  // python3.12+ run on Amazon Linux 2023 (glibc 2.34); python3.11 and older on Amazon Linux 2 (glibc 2.26)
  const al2023 = minor >= 12;
  return al2023 ? [`manylinux_2_34_${cpu}`, `manylinux_2_28_${cpu}`, `manylinux2014_${cpu}`] : [`manylinux2014_${cpu}`];
}

/** The pip arguments of a local Python build (after `python -m`). */
export function pipArguments(request: BuildRequest, target: string): string[] {
  return [
    "pip",
    "install",
    "--no-input",
    "--disable-pip-version-check",
    "--no-compile",
    "--no-warn-script-location",
    ...pipPlatforms(request.runtime, request.architecture).flatMap((p) => ["--platform", p]),
    "--implementation",
    "cp",
    "--python-version",
    runtimeVersion(request.runtime),
    "--only-binary=:all:",
    "--target",
    target,
    "-r",
    REQUIREMENTS,
  ];
}

/** The npm arguments of a local Node.js build. */
export function npmArguments(architecture: Architecture): string[] {
  return [
    "ci",
    "--omit=dev",
    "--os=linux",
    `--cpu=${architecture === "arm64" ? "arm64" : "x64"}`,
    "--libc=glibc",
    "--ignore-scripts",
    "--no-audit",
    "--no-fund",
    "--loglevel=error",
  ];
}

const NATIVE_SCRIPT = /node-gyp|node-pre-gyp|prebuild-install|cmake-js|napi-build|node-waf/;

interface InstalledPackage {
  name: string;
  dir: string;
}

async function installedPackages(nodeModules: string): Promise<InstalledPackage[]> {
  const out: InstalledPackage[] = [];
  const visit = async (dir: string, depth: number): Promise<void> => {
    if (depth > 64) return;
    let names: string[];
    try {
      names = (await readdir(dir)).sort();
    } catch {
      return;
    }
    for (const name of names) {
      if (name.startsWith(".")) continue;
      const abs = join(dir, name);
      if (!(await lstat(abs)).isDirectory()) continue;
      if (name.startsWith("@")) {
        for (const sub of (await readdir(abs)).sort()) {
          const subAbs = join(abs, sub);
          if (!(await lstat(subAbs)).isDirectory()) continue;
          out.push({ name: `${name}/${sub}`, dir: subAbs });
          await visit(join(subAbs, "node_modules"), depth + 1);
        }
        continue;
      }
      out.push({ name, dir: abs });
      await visit(join(abs, "node_modules"), depth + 1);
    }
  };
  await visit(nodeModules, 0);
  return out;
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** Modules that need compiling, and modules with install scripts that were not run. */
export async function inspectNodeModules(nodeModules: string): Promise<{ native: string[]; scripts: string[] }> {
  const native: string[] = [];
  const scripts: string[] = [];
  for (const p of await installedPackages(nodeModules)) {
    let manifest: { gypfile?: unknown; scripts?: Record<string, unknown> } = {};
    try {
      manifest = JSON.parse(await readFile(join(p.dir, "package.json"), "utf8")) as typeof manifest;
    } catch {
      // a directory without a readable package.json is not a package
    }
    const hooks = ["preinstall", "install", "postinstall"]
      .map((h) => [h, manifest.scripts?.[h]] as const)
      .filter((e): e is readonly [string, string] => typeof e[1] === "string");
    if (
      manifest.gypfile === true ||
      (await exists(join(p.dir, "binding.gyp"))) ||
      hooks.some(([, cmd]) => NATIVE_SCRIPT.test(cmd))
    ) {
      native.push(p.name);
    } else if (hooks.length) scripts.push(`${p.name} (${hooks.map(([h]) => h).join(", ")})`);
  }
  return { native: [...new Set(native)], scripts: [...new Set(scripts)] };
}

export class LocalBuilder implements Builder {
  readonly kind = "local" as const;
  private readonly versions = new Map<string, Promise<string>>();

  constructor(private readonly options: BuilderOptions) {}

  private baseEnv(): Record<string, string> {
    return { ...childEnvironment(this.options.env), HOME: this.options.home, LANG: "C.UTF-8" };
  }

  private async version(command: string, args: string[]): Promise<string> {
    const key = `${command} ${args.join(" ")}`;
    let v = this.versions.get(key);
    if (!v) {
      v = runCommand(command, args, { cwd: this.options.home, env: this.baseEnv(), timeoutMs: 30_000 }).then((r) => {
        if (r.code !== 0) throw new BuildError(`${key} failed: ${lastLine(r.stderr || r.stdout)}`);
        return r.stdout.trim().replace(/ from \S+/, "");
      });
      this.versions.set(key, v);
    }
    return v;
  }

  async identity(request: BuildRequest): Promise<string> {
    if (request.language === "python") {
      return `local ${await this.version(this.options.python ?? "python3", ["-m", "pip", "--version"])}`;
    }
    const npm = await this.version("npm", ["--version"]);
    const node = await this.version("node", ["--version"]);
    return `local npm ${npm} node ${node}`;
  }

  async build(request: BuildRequest): Promise<BuildOutcome> {
    return request.language === "python" ? this.python(request) : this.node(request);
  }

  private async python(request: BuildRequest): Promise<BuildOutcome> {
    const python = this.options.python ?? "python3";
    const target = join(request.outDir, "python");
    await mkdir(target, { recursive: true });
    const env = this.baseEnv();
    env.PIP_CONFIG_FILE = "/dev/null";
    env.PYTHONDONTWRITEBYTECODE = "1";
    if (this.options.cacheDir) env.PIP_CACHE_DIR = join(this.options.cacheDir, "pip");
    else env.PIP_NO_CACHE_DIR = "1";
    const index = this.options.index;
    if (index?.pipIndexUrl) env.PIP_INDEX_URL = pipIndexWithCredential(index.pipIndexUrl, index.token);
    const r = await runCommand(python, ["-m", ...pipArguments(request, target)], {
      cwd: request.sourceDir,
      env,
      timeoutMs: this.options.timeoutMs,
      secrets: [index?.token, env.PIP_INDEX_URL],
    });
    if (r.code === 0) return { warnings: [] };
    const where = `${request.runtime} ${request.architecture}`;
    const missing =
      /No matching distribution found for (\S+)/.exec(r.stderr) ??
      /Could not find a version that satisfies the requirement (\S+)/.exec(r.stderr);
    if (missing) {
      throw new BuildError(
        `requirement ${quoteName(missing[1] ?? "?")} has no wheel for ${where} (${pipPlatforms(request.runtime, request.architecture).join(", ")}), only a source distribution or none at all; a local build never compiles for the target: ${USE_CONTAINER}${index?.pipIndexUrl ? ` (index ${publicIndexUrl(index.pipIndexUrl)})` : ""}`,
      );
    }
    throw new BuildError(`pip install for ${where} failed: ${lastLine(r.stderr || r.stdout)}`);
  }

  private async node(request: BuildRequest): Promise<BuildOutcome> {
    const npmVersion = await this.version("npm", ["--version"]);
    const [major = 0, minor = 0] = npmVersion.split(".").map(Number);
    if (major < 10 || (major === 10 && minor < 3)) {
      throw new BuildError(
        `npm ${npmVersion} cannot install for another platform (--libc needs npm 10.3 or later); upgrade npm or ${USE_CONTAINER}`,
      );
    }
    const dir = join(request.outDir, "nodejs");
    await mkdir(dir, { recursive: true });
    for (const f of [PACKAGE_JSON, PACKAGE_LOCK]) await copyFile(join(request.sourceDir, f), join(dir, f));
    const npmrc = homeFile(this.options, ".npmrc");
    const env = { ...this.baseEnv(), ...(await writeNpmrc(npmrc, this.options.index)) };
    env.npm_config_userconfig = npmrc;
    env.npm_config_update_notifier = "false";
    if (this.options.cacheDir) env.npm_config_cache = join(this.options.cacheDir, "npm");
    const r = await runCommand("npm", npmArguments(request.architecture), {
      cwd: dir,
      env,
      timeoutMs: this.options.timeoutMs,
      secrets: [this.options.index?.token],
    });
    const where = `${request.runtime} ${request.architecture}`;
    if (r.code !== 0) {
      const text = r.stderr || r.stdout;
      const lock = /Missing: (\S+) from lock file|could not be found|do not match|in sync/i.exec(text);
      throw new BuildError(
        `npm ci for ${where} failed${lock ? " (package-lock.json does not match package.json or lacks this platform's packages; regenerate it with npm install and commit it)" : ""}: ${lastLine(text)}`,
      );
    }
    for (const f of [PACKAGE_JSON, PACKAGE_LOCK, "node_modules/.package-lock.json"]) {
      await rm(join(dir, f), { force: true });
    }
    const found = await inspectNodeModules(join(dir, "node_modules"));
    if (found.native.length) {
      throw new BuildError(
        `Node module(s) ${found.native.map((n) => quoteName(n)).join(", ")} must be compiled for ${where}; a local build never compiles on the host: ${USE_CONTAINER}`,
      );
    }
    return {
      warnings: found.scripts.length
        ? [`install scripts were not run by the local build: ${found.scripts.join(", ")}`]
        : [],
    };
  }
}
