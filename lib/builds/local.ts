/**
 * Local builds: the pinned uv (`uv.ts`) or npm on the host, pinned to the target so only binaries for the
 * Lambda OS and CPU are installed, and never anything built or run on the host.
 *
 * Python: `uv pip install --no-config --target OUT/python --python-platform <cpu>-manylinux… --python-version
 * 3.x --no-build …` on the sanitized requirements.txt (`requirements.ts`): uv evaluates markers for the
 * target, not the host. AL2023 runtimes (python3.12 and later, glibc 2.34) take wheels up to
 * manylinux_2_34; older runtimes (Amazon Linux 2, glibc 2.26) manylinux2014. A requirement without such a
 * wheel fails, naming it; a line that needs a build step (a path, a URL, `-e`, `--no-binary`) fails before
 * anything runs. Then, unless `build.bytecode` is false, an interpreter of the target's minor version
 * (`findTargetInterpreter`: on PATH, uv-managed, or installed by uv) compiles every module to
 * `__pycache__/*.cpython-3XY.pyc` (`compileArguments`: unchecked-hash, `/opt/python/…` paths, one process
 * in sorted order with PYTHONHASHSEED=0, so the bytes repeat); without one the layer ships no `.pyc` and the
 * summary says so. Compiling runs no package code. Shebangs, data files and the `.pyc` filter are the
 * shared step of every builder (`python-tree.ts`).
 *
 * Node.js: `npm ci --omit=dev --os=linux --cpu=x64|arm64 --libc=glibc --ignore-scripts` in OUT/nodejs (a pnpm or
 * Yarn lock arrives converted to package-lock.json, `locks/npm-lock.ts`), then optional packages whose manifest
 * names another platform are removed (`node-prune.ts`).
 * Install scripts never run on the host; a module that must be compiled (binding.gyp, node-gyp …) fails,
 * naming it; other install scripts are reported as warnings.
 */
import { copyFile, lstat, mkdir, readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { type Architecture, PACKAGE_JSON, PACKAGE_LOCK, REQUIREMENTS, runtimeVersion } from "../common/build-plan.ts";
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
import { npmCpu, PRUNE_OPTIONAL_SCRIPT } from "./node-prune.ts";
import { lastLine, runCommand } from "./process.ts";
import { refuseBuildSteps } from "./requirements.ts";
import { ensureUv, findTargetInterpreter, pickInterpreter, UV_VERSION, uvPlatform, uvPythonDir } from "./uv.ts";

/** This machine, as the uv wheels are named (`linux-x64` …). */
const HOST = `${process.platform}-${process.arch}`;

const USE_CONTAINER = "use --builder docker, or let CodeBuild build it";

/** pip `--platform` values for a runtime and architecture, best first (the container recipe's). */
export function pipPlatforms(runtime: string, architecture: Architecture): string[] {
  const cpu = architecture === "arm64" ? "aarch64" : "x86_64";
  const minor = Number(runtimeVersion(runtime).split(".")[1] ?? "0");
  // python3.12+ run on Amazon Linux 2023 (glibc 2.34); python3.11 and older on Amazon Linux 2 (glibc 2.26)
  const al2023 = minor >= 12;
  return al2023 ? [`manylinux_2_34_${cpu}`, `manylinux_2_28_${cpu}`, `manylinux2014_${cpu}`] : [`manylinux2014_${cpu}`];
}

/** The uv arguments of a local Python build. */
export function uvArguments(request: BuildRequest, target: string, python: string): string[] {
  return [
    "pip",
    "install",
    "--no-config",
    "--target",
    target,
    "--python-platform",
    uvPlatform(runtimeVersion(request.runtime), request.architecture),
    "--python-version",
    runtimeVersion(request.runtime),
    "--python",
    python,
    "--no-build",
    "--no-installer-metadata",
    "--no-compile-bytecode",
    "--link-mode",
    "copy",
    "--color",
    "never",
    "-r",
    REQUIREMENTS,
  ];
}

/** Where Lambda mounts a layer's Python packages: the file names compiled into the `.pyc`. */
export const LAYER_PYTHON_DIR = "/opt/python";

/**
 * The interpreter arguments that compile every module under `target` for its own version: deterministic
 * (unchecked-hash, PEP 552: no mtime; one process in compileall's sorted order; run with PYTHONHASHSEED=0),
 * `-f` so `.pyc` a wheel brought are replaced, and `-d` so tracebacks name `/opt/python/…`.
 */
export function compileArguments(target: string): string[] {
  return [
    "-s",
    "-m",
    "compileall",
    "-q",
    "-f",
    "-d",
    LAYER_PYTHON_DIR,
    "--invalidation-mode",
    "unchecked-hash",
    target,
  ];
}

/** The summary warning of a layer built without `.pyc` because no interpreter of the target was found. */
export function noBytecodeWarning(runtime: string): string {
  return `no ${runtime} interpreter found: layer ships without .pyc; cold starts recompile every module (imports 2-5x slower); install ${runtime} (or let uv install it) or build with --builder docker`;
}

/** Interpreters found per tool cache, version and PATH, for this process (a failed search costs seconds). */
const targetInterpreters = new Map<string, Promise<string | undefined>>();

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
      if (request.bytecode === false) return `local uv ${UV_VERSION}`;
      const compiler = await this.compiler(request);
      return `local uv ${UV_VERSION} bytecode ${compiler ? request.runtime : "none"}`;
    }
    const npm = await this.version("npm", ["--version"]);
    const node = await this.version("node", ["--version"]);
    return `local npm ${npm} node ${node}`;
  }

  async build(request: BuildRequest): Promise<BuildOutcome> {
    return request.language === "python" ? this.python(request) : this.node(request);
  }

  /** layer-sync's tool cache (uv, uv-managed interpreters). */
  private toolCache(): string {
    return this.options.toolCache ?? join(this.options.cacheDir ?? this.options.home, "tools");
  }

  /** The environment of uv: the scrubbed one, the CA bundle as SSL_CERT_FILE, no user configuration. */
  private uvEnv(): Record<string, string> {
    const env = this.baseEnv();
    const ca = env.SSL_CERT_FILE ?? env.PIP_CERT ?? env.REQUESTS_CA_BUNDLE;
    if (ca) env.SSL_CERT_FILE = ca;
    delete env.PIP_CERT;
    delete env.REQUESTS_CA_BUNDLE;
    env.UV_NO_CONFIG = "1";
    env.UV_PYTHON_DOWNLOADS = "never";
    env.UV_NO_PROGRESS = "1";
    env.PYTHONDONTWRITEBYTECODE = "1";
    env.UV_PYTHON_INSTALL_DIR = uvPythonDir(this.toolCache());
    if (this.options.cacheDir) env.UV_CACHE_DIR = join(this.options.cacheDir, "uv");
    else env.UV_NO_CACHE = "1";
    return env;
  }

  /** The interpreter that compiles the target's `.pyc`, or undefined when there is none on this machine. */
  private async compiler(request: BuildRequest): Promise<string | undefined> {
    const uv = await ensureUv({ toolCache: this.toolCache(), env: this.options.env, host: this.options.host ?? HOST });
    const env = this.uvEnv();
    const version = runtimeVersion(request.runtime);
    const key = `${this.toolCache()}\0${version}\0${env.PATH ?? ""}`;
    let found = targetInterpreters.get(key);
    if (!found) {
      const search = { uv, toolCache: this.toolCache(), version, env, cwd: this.options.home };
      found = findTargetInterpreter({ ...search, timeoutMs: this.options.timeoutMs });
      targetInterpreters.set(key, found);
    }
    return found;
  }

  /** Compile the install tree's modules with the target's interpreter; warnings for what was not compiled. */
  private async compile(request: BuildRequest, target: string): Promise<string[]> {
    if (request.bytecode === false) return [];
    const python = await this.compiler(request);
    if (!python) return [noBytecodeWarning(request.runtime)];
    const env = { ...this.baseEnv(), PYTHONHASHSEED: "0", PYTHONNOUSERSITE: "1" };
    const r = await runCommand(python, compileArguments(target), {
      cwd: this.options.home,
      env,
      timeoutMs: this.options.timeoutMs,
    });
    if (r.code === 0) return [];
    const failed = (r.stdout.match(/^\*\*\* Error compiling/gm) ?? []).length;
    return [
      `${failed || "some"} module(s) did not compile for ${request.runtime} and ship as source only: ${lastLine(r.stdout || r.stderr)}`,
    ];
  }

  private async python(request: BuildRequest): Promise<BuildOutcome> {
    const where = `${request.runtime} ${request.architecture}`;
    if (!request.requirements) {
      throw new BuildError(`the requirement files of ${where} were not checked before the build; nothing was run`);
    }
    refuseBuildSteps(request.requirements, request.folder ?? "the folder", `${where}`);
    const uv = await ensureUv({ toolCache: this.toolCache(), env: this.options.env, host: this.options.host ?? HOST });
    const env = this.uvEnv();
    const python =
      this.options.python ??
      (await pickInterpreter({
        uv,
        toolCache: this.toolCache(),
        version: runtimeVersion(request.runtime),
        env,
        cwd: this.options.home,
        timeoutMs: this.options.timeoutMs,
      }));
    const target = join(request.outDir, "python");
    await mkdir(target, { recursive: true });
    const index = this.options.index;
    // the credential reaches uv only in its environment, never on its command line
    if (index?.pipIndexUrl) env.UV_DEFAULT_INDEX = pipIndexWithCredential(index.pipIndexUrl, index.token);
    const r = await runCommand(uv, uvArguments(request, target, python), {
      cwd: request.sourceDir,
      env,
      timeoutMs: this.options.timeoutMs,
      secrets: [index?.token, env.UV_DEFAULT_INDEX],
    });
    if (r.code === 0) return { warnings: await this.compile(request, target) };
    const text = r.stderr || r.stdout;
    const missing =
      /Because (?:only )?(\S+?)(?:[<>=!~]=?\S*)? has no (?:usable )?wheels/.exec(text) ??
      /Because (\S+?)(?:[<>=!~]=?\S*)? was not found in the package registry/.exec(text) ??
      /has no wheels? with a matching (?:Python|platform)[^\n]*?\b(\S+)$/m.exec(text);
    if (missing) {
      const spec =
        /you require ([^\s,]+)/.exec(text)?.[1] ??
        /Because ((?:only )?\S+)/.exec(text)?.[1]?.replace(/^only /, "") ??
        missing[1] ??
        "?";
      throw new BuildError(
        `requirement ${quoteName(spec)} has no wheel for ${where} (${uvPlatform(runtimeVersion(request.runtime), request.architecture)}), only a source distribution or none at all; a local build never compiles for the target: ${USE_CONTAINER}${index?.pipIndexUrl ? ` (index ${publicIndexUrl(index.pipIndexUrl)})` : ""}`,
      );
    }
    throw new BuildError(`uv pip install for ${where} failed: ${lastLine(text)}`);
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
    // optional packages of another platform that npm could not tell apart (a converted Yarn 1 lock)
    const pruned = await runCommand(
      "node",
      ["-e", PRUNE_OPTIONAL_SCRIPT, dir, "linux", npmCpu(request.architecture), "glibc"],
      {
        cwd: dir,
        env: this.baseEnv(),
        timeoutMs: this.options.timeoutMs,
      },
    );
    if (pruned.code !== 0)
      throw new BuildError(`pruning optional packages for ${where} failed: ${lastLine(pruned.stderr)}`);
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
