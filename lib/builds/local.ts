/**
 * Local builds: the pinned uv (`uv.ts`) or npm on the host, pinned to the target so only binaries for the
 * Lambda OS and CPU are installed, and never anything built or run on the host.
 *
 * Python: `uv pip install --no-config --target OUT/python --python-platform <cpu>-manylinux… --python-version
 * 3.x --no-build …` on the sanitized requirements.txt (`requirements.ts`): uv evaluates markers for the
 * target, not the host. AL2023 runtimes (python3.12 and later, glibc 2.34) take wheels up to
 * manylinux_2_34; older runtimes (Amazon Linux 2, glibc 2.26) manylinux2014. A requirement without such a
 * wheel fails, naming it; a line that needs a build step (a path, a URL, `-e`, `--no-binary`) fails before
 * anything runs. Console scripts get `#!/usr/bin/env python3` and their RECORD rows are recomputed, so
 * the layer does not depend on the interpreter that ran uv.
 *
 * Node.js: `npm ci --omit=dev --os=linux --cpu=x64|arm64 --libc=glibc --ignore-scripts` in OUT/nodejs (a pnpm or
 * Yarn lock arrives converted to package-lock.json, `locks/npm-lock.ts`), then optional packages whose manifest
 * names another platform are removed (`node-prune.ts`).
 * Install scripts never run on the host; a module that must be compiled (binding.gyp, node-gyp …) fails,
 * naming it; other install scripts are reported as warnings.
 */
import { createHash } from "node:crypto";
import { chmod, copyFile, lstat, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join, posix } from "node:path";
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
import { ensureUv, pickInterpreter, UV_VERSION, uvPlatform, uvPythonDir } from "./uv.ts";

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

/** The shebang every console script of a layer gets (Lambda's runtime has python3 on PATH). */
export const SCRIPT_SHEBANG = "#!/usr/bin/env python3";

/** A script's bytes with its interpreter line(s) replaced by `SCRIPT_SHEBANG`, or undefined when unchanged. */
export function normalizeShebang(data: Buffer): Buffer | undefined {
  const text = data.toString("latin1");
  if (!text.startsWith("#!")) return undefined;
  // the long-path form: #!/bin/sh, then '''exec' '/path/python' "$0" "$@", then ' '''
  const trampoline = /^#!\/bin\/sh\n'''exec' .*\n' '''\n/.exec(text);
  const newline = text.indexOf("\n");
  const end = trampoline ? trampoline[0].length - 1 : newline < 0 ? text.length : newline;
  if (!trampoline && !/python/.test(text.slice(0, end))) return undefined;
  const out = Buffer.concat([Buffer.from(SCRIPT_SHEBANG), data.subarray(end)]);
  return out.equals(data) ? undefined : out;
}

function recordHash(data: Buffer): string {
  return `sha256=${createHash("sha256").update(data).digest("base64url")}`;
}

/** One CSV row of a RECORD file (quoted as Python's csv module writes it). */
export function parseCsvRow(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i <= line.length) {
    if (line[i] === '"') {
      let value = "";
      i++;
      while (i < line.length) {
        if (line[i] === '"' && line[i + 1] === '"') {
          value += '"';
          i += 2;
        } else if (line[i] === '"') {
          i++;
          break;
        } else value += line[i++];
      }
      out.push(value);
      i++;
    } else {
      const comma = line.indexOf(",", i);
      const stop = comma < 0 ? line.length : comma;
      out.push(line.slice(i, stop));
      i = stop + 1;
    }
  }
  return out;
}

function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

/**
 * Give every console script under `target/bin` the shebang `#!/usr/bin/env python3` and bring the rows of
 * each `*.dist-info/RECORD` that list a changed file up to date (hash and size). Returns the changed paths.
 */
export async function normalizeScripts(target: string): Promise<string[]> {
  const changed = new Map<string, Buffer>();
  const bin = join(target, "bin");
  for (const name of (await readdir(bin).catch(() => [] as string[])).sort()) {
    const abs = join(bin, name);
    const st = await lstat(abs);
    if (!st.isFile()) continue;
    const fixed = normalizeShebang(await readFile(abs));
    if (!fixed) continue;
    await writeFile(abs, fixed);
    await chmod(abs, st.mode & 0o777);
    changed.set(`bin/${name}`, fixed);
  }
  if (!changed.size) return [];
  for (const dist of (await readdir(target)).filter((n) => n.endsWith(".dist-info")).sort()) {
    const record = join(target, dist, "RECORD");
    let text: string;
    try {
      text = await readFile(record, "utf8");
    } catch {
      continue;
    }
    let touched = false;
    const lines = text.split("\n").map((line) => {
      const clean = line.replace(/\r$/, "");
      if (clean === "") return line;
      const row = parseCsvRow(clean);
      const data = changed.get(posix.normalize(row[0] ?? ""));
      if (!data) return line;
      touched = true;
      return [row[0] ?? "", recordHash(data), String(data.length)].map(csvField).join(",");
    });
    if (touched) await writeFile(record, lines.join("\n"));
  }
  return [...changed.keys()];
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
    if (request.language === "python") return `local uv ${UV_VERSION}`;
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
    if (r.code === 0) {
      await normalizeScripts(target);
      return { warnings: [] };
    }
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
