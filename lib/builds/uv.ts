/**
 * The pinned uv that local Python builds run (`UV_VERSION`). layer-sync installs it itself into its tool
 * cache when that version is not there yet: the wheel of this machine's OS and CPU from PyPI, checked
 * against the SHA-256 pinned below, its `uv` binary extracted to a temporary file and renamed into place
 * (atomic, so concurrent runs at worst both install the same bytes). uv needs an interpreter only to run
 * (`pickInterpreter`); markers and wheels are chosen for the target by `--python-platform` and
 * `--python-version`, so the host's Python changes nothing.
 */
import { createHash, randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { chmod, mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { rootCertificates } from "node:tls";
import { Agent, type Dispatcher, EnvHttpProxyAgent, request } from "undici";
import yauzl from "yauzl";
import { BuildError, describeError } from "../common/errors.ts";
import { lastLine, runCommand } from "./process.ts";

export const UV_VERSION = "0.13.9";

export interface UvWheel {
  file: string;
  sha256: string;
  url: string;
}

/** The wheel of each supported host (`process.platform`-`process.arch`), checked on PyPI. */
export const UV_WHEELS: Readonly<Record<string, UvWheel>> = {
  "linux-x64": {
    file: "uv-0.13.9-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    sha256: "d7f459fe4fd247d830351c75686d3996ace3c6f3f728eb0e85a30b7ada0cef19",
    url: "https://files.pythonhosted.org/packages/3d/aa/26d64642d808de4a652579ef950d7cd2d37f080a8babf9c67c6b75fc4c3f/uv-0.13.9-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
  },
  "linux-arm64": {
    file: "uv-0.13.9-py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64.musllinux_1_1_aarch64.whl",
    sha256: "5435c5ce14a56431208ca0996416d310f1598e8c2c8ba707688985a16bb82dbe",
    url: "https://files.pythonhosted.org/packages/57/15/94b6cd62ac3ff6550288328e8035288875197cbc183f51554b266a69877b/uv-0.13.9-py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64.musllinux_1_1_aarch64.whl",
  },
  "darwin-x64": {
    file: "uv-0.13.9-py3-none-macosx_10_12_x86_64.whl",
    sha256: "c16ed11e013557536b3e60065f1b912f6407bd6518e041b961e23ef9e6b4fbf5",
    url: "https://files.pythonhosted.org/packages/1e/db/08e9ef4879bd667e6d7b4705e594e5bd3e4585f10fc63cb16b9fa2fac63e/uv-0.13.9-py3-none-macosx_10_12_x86_64.whl",
  },
  "darwin-arm64": {
    file: "uv-0.13.9-py3-none-macosx_11_0_arm64.whl",
    sha256: "66c512266d633bef48384a1f53003f41f2a8e7b36fe6e7fbfd3e0fd52d96fa63",
    url: "https://files.pythonhosted.org/packages/f3/a7/a8d7b074798c7fb3b26b37584b8fe2e29df2ccdc24ce7902caab2a53edbf/uv-0.13.9-py3-none-macosx_11_0_arm64.whl",
  },
};

/** The binary's path inside the wheel. */
export const UV_WHEEL_BINARY = `uv-${UV_VERSION}.data/scripts/uv`;
/** The wheel is about 20 MB; anything far larger is not it. */
const MAX_WHEEL_BYTES = 200 * 1024 * 1024;

/** Where the pinned uv lives in layer-sync's tool cache. */
export function uvPath(toolCache: string): string {
  return join(toolCache, `uv-${UV_VERSION}`, "uv");
}

/** uv-managed interpreters (`UV_PYTHON_INSTALL_DIR`) in the tool cache. */
export function uvPythonDir(toolCache: string): string {
  return join(toolCache, "python");
}

export interface UvInstallOptions {
  toolCache: string;
  /** The caller's environment: only its proxy and CA settings are used. */
  env: Readonly<Record<string, string | undefined>>;
  /** `process.platform`-`process.arch` of this machine. */
  host: string;
  /** Where the wheel comes from (tests); the pinned PyPI URL by default. */
  url?: string | undefined;
}

function dispatcher(env: Readonly<Record<string, string | undefined>>): Dispatcher {
  const caFiles = [env.NODE_EXTRA_CA_CERTS, env.SSL_CERT_FILE].filter(
    (f): f is string => f !== undefined && f !== "" && existsSync(f),
  );
  const connect = caFiles.length
    ? { ca: [...rootCertificates, ...caFiles.map((f) => readFileSync(f, "utf8"))] }
    : undefined;
  const httpsProxy = env.HTTPS_PROXY ?? env.https_proxy;
  const httpProxy = env.HTTP_PROXY ?? env.http_proxy;
  if (httpsProxy || httpProxy) {
    return new EnvHttpProxyAgent({
      httpProxy,
      httpsProxy,
      noProxy: env.NO_PROXY ?? env.no_proxy,
      ...(connect ? { connect } : {}),
    });
  }
  return new Agent(connect ? { connect } : {});
}

async function download(url: string, env: UvInstallOptions["env"]): Promise<Buffer> {
  const agent = dispatcher(env);
  try {
    const response = await request(url, { dispatcher: agent, headersTimeout: 60_000, bodyTimeout: 60_000 });
    if (response.statusCode !== 200) {
      await response.body.dump();
      throw new Error(`HTTP ${response.statusCode}`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of response.body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_WHEEL_BYTES) throw new Error(`more than ${MAX_WHEEL_BYTES} bytes`);
      chunks.push(chunk);
    }
    return Buffer.concat(chunks);
  } finally {
    await agent.close().catch(() => undefined);
  }
}

/** The bytes of one entry of a zip held in memory. */
export function zipEntry(zip: Buffer, name: string): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(zip, { lazyEntries: true }, (error, file) => {
      if (error || !file) {
        reject(error ?? new Error("unreadable zip"));
        return;
      }
      file.on("error", reject);
      file.on("end", () => resolve(undefined));
      file.on("entry", (entry: yauzl.Entry) => {
        if (entry.fileName !== name) {
          file.readEntry();
          return;
        }
        file.openReadStream(entry, (err, stream) => {
          if (err || !stream) {
            reject(err ?? new Error("unreadable entry"));
            return;
          }
          const chunks: Buffer[] = [];
          stream.on("data", (c: Buffer) => chunks.push(c));
          stream.on("error", reject);
          stream.on("end", () => {
            file.close();
            resolve(Buffer.concat(chunks));
          });
        });
      });
      file.readEntry();
    });
  });
}

/** Whether `path` is the pinned uv (it runs and says its version). */
async function isPinnedUv(path: string, cwd: string): Promise<boolean> {
  if (!existsSync(path)) return false;
  try {
    const r = await runCommand(path, ["--version"], { cwd, env: {}, timeoutMs: 30_000 });
    return r.code === 0 && r.stdout.trim().split(/\s+/)[1] === UV_VERSION;
  } catch {
    return false;
  }
}

const installs = new Map<string, Promise<string>>();

/**
 * The path of the pinned uv, installed into the tool cache first when it is not there. Throws a
 * one-line `BuildError` when it cannot be installed.
 */
export function ensureUv(options: UvInstallOptions): Promise<string> {
  const target = uvPath(options.toolCache);
  let pending = installs.get(target);
  if (!pending) {
    pending = install(options, target);
    installs.set(target, pending);
    pending.catch(() => installs.delete(target));
  }
  return pending;
}

async function install(options: UvInstallOptions, target: string): Promise<string> {
  const dir = join(target, "..");
  await mkdir(dir, { recursive: true });
  if (await isPinnedUv(target, dir)) return target;
  const wheel = UV_WHEELS[options.host];
  if (!wheel) {
    throw new BuildError(
      `local Python builds need uv ${UV_VERSION}, which layer-sync installs only on Linux and macOS (x86_64, arm64), not on ${options.host}; use --builder docker`,
    );
  }
  const url = options.url ?? wheel.url;
  const failed = (why: string, cause?: unknown) =>
    new BuildError(
      `installing uv ${UV_VERSION} from ${url} into ${dir} failed: ${why}; check the network to PyPI (or its proxy and CA settings), or use --builder docker`,
      { cause },
    );
  let bytes: Buffer;
  try {
    bytes = await download(url, options.env);
  } catch (error) {
    throw failed(describeError(error), error);
  }
  const sha = createHash("sha256").update(bytes).digest("hex");
  if (sha !== wheel.sha256) throw failed(`the wheel's SHA-256 is ${sha}, not the pinned ${wheel.sha256}`);
  let binary: Buffer | undefined;
  try {
    binary = await zipEntry(bytes, UV_WHEEL_BINARY);
  } catch (error) {
    throw failed(`the wheel cannot be read: ${describeError(error)}`, error);
  }
  if (!binary) throw failed(`the wheel has no ${UV_WHEEL_BINARY}`);
  const temp = join(dir, `.uv-${process.pid}-${randomBytes(4).toString("hex")}`);
  try {
    await writeFile(temp, binary, { mode: 0o755 });
    await chmod(temp, 0o755);
    await rename(temp, target);
  } catch (error) {
    await rm(temp, { force: true });
    throw failed(describeError(error), error);
  }
  if (!(await isPinnedUv(target, dir))) throw failed(`${target} does not run or is not version ${UV_VERSION}`);
  return target;
}

/** The `--python-platform` of a Lambda runtime and architecture (AL2023 for python3.12+, else AL2). */
export function uvPlatform(runtimeVersion: string, architecture: "x86_64" | "arm64"): string {
  const cpu = architecture === "arm64" ? "aarch64" : "x86_64";
  const minor = Number(runtimeVersion.split(".")[1] ?? "0");
  return minor >= 12 ? `${cpu}-manylinux_2_34` : `${cpu}-manylinux2014`;
}

export interface InterpreterSearch {
  uv: string;
  toolCache: string;
  /** `3.12`. */
  version: string;
  /** The environment uv runs with (PATH decides what it finds). */
  env: Readonly<Record<string, string>>;
  cwd: string;
  timeoutMs: number;
  /** The clock (ms) that ages a failed `uv python install` (see `findTargetInterpreter`). */
  now?: () => number;
}

/** How long a failed `uv python install` of one version is not tried again (per tool cache). */
export const PYTHON_INSTALL_RETRY_MS = 6 * 3600_000;

function installFailedMarker(search: InterpreterSearch): string {
  return join(uvPythonDir(search.toolCache), `.install-failed-${search.version}`);
}

/** Whether an install of this version failed within `PYTHON_INSTALL_RETRY_MS` (its marker's content). */
async function installFailedRecently(search: InterpreterSearch): Promise<boolean> {
  const at = Number(await readFile(installFailedMarker(search), "utf8").catch(() => ""));
  const now = (search.now ?? Date.now)();
  return Number.isFinite(at) && at > 0 && at <= now && now - at < PYTHON_INSTALL_RETRY_MS;
}

/** `[major, minor]` of an interpreter that runs, or undefined. */
async function pythonVersion(path: string, search: InterpreterSearch): Promise<[number, number] | undefined> {
  try {
    const r = await runCommand(path, ["-I", "-c", "import sys; print(sys.version_info[0], sys.version_info[1])"], {
      cwd: search.cwd,
      env: search.env,
      timeoutMs: 30_000,
    });
    const [major, minor] = r.stdout.trim().split(" ").map(Number);
    return r.code === 0 && major !== undefined && minor !== undefined ? [major, minor] : undefined;
  } catch {
    return undefined;
  }
}

/** Executables named `name` on the search's PATH, in PATH order. */
function onPath(search: InterpreterSearch, name: string): string[] {
  return (search.env.PATH ?? "")
    .split(":")
    .filter((d) => d.startsWith("/"))
    .map((d) => join(d, name))
    .filter((p) => existsSync(p));
}

/** uv-managed interpreters of `version` in the tool cache (`cpython-3.12.x-<os>-<arch>-<libc>/bin/python3.12`). */
async function managed(search: InterpreterSearch): Promise<string[]> {
  const dir = uvPythonDir(search.toolCache);
  const names = await readdir(dir).catch(() => [] as string[]);
  return names
    .filter((n) => n.startsWith(`cpython-${search.version}.`) || n.startsWith(`cpython-${search.version}-`))
    .sort()
    .reverse()
    .map((n) => join(dir, n, "bin", `python${search.version}`))
    .filter((p) => existsSync(p));
}

/** The first candidate that runs and satisfies `accept`. */
async function firstWorking(
  search: InterpreterSearch,
  candidates: readonly string[],
  accept: (v: [number, number]) => boolean,
): Promise<string | undefined> {
  for (const c of candidates) {
    const v = await pythonVersion(c, search);
    if (v && accept(v)) return c;
  }
  return undefined;
}

/**
 * An interpreter for uv to run with (it does not decide markers or wheels): one of the target's minor
 * version (on PATH or uv-managed in the tool cache), else any Python 3.8+ on PATH, else one that uv
 * installs into the tool cache. A candidate that does not run (a pyenv shim of an inactive version) is
 * passed over. Throws a one-line `BuildError` when there is none.
 */
export async function pickInterpreter(search: InterpreterSearch): Promise<string> {
  const [major, minor] = search.version.split(".").map(Number);
  const exact = (v: [number, number]) => v[0] === major && v[1] === minor;
  const any = (v: [number, number]) => v[0] === 3 && v[1] >= 8;
  const found =
    (await firstWorking(search, [...onPath(search, `python${search.version}`), ...(await managed(search))], exact)) ??
    (await firstWorking(
      search,
      ["python3", ...Array.from({ length: 12 }, (_, i) => `python3.${19 - i}`)].flatMap((n) => onPath(search, n)),
      any,
    ));
  if (found) return found;
  const r = await runCommand(search.uv, ["python", "install", "--no-config", search.version], {
    cwd: search.cwd,
    env: { ...search.env, UV_PYTHON_INSTALL_DIR: uvPythonDir(search.toolCache) },
    timeoutMs: search.timeoutMs,
  });
  const installed = r.code === 0 ? await firstWorking(search, await managed(search), exact) : undefined;
  if (installed) return installed;
  throw new BuildError(
    `uv needs a Python interpreter to run and found none (no python3 3.8 or later on PATH), and installing Python ${search.version} into ${uvPythonDir(search.toolCache)} failed (${lastLine(r.stderr || r.stdout)}); install python3 or use --builder docker`,
  );
}

/**
 * An interpreter of exactly the target's minor version, to compile the layer's `.pyc` with: `python3.X` on
 * PATH or uv-managed in the tool cache, else one `uv python install` provisions there. Undefined when there is
 * none: an install that fails (uv's Python downloads unreachable, say) counts as not found, never as an error.
 */
export async function findTargetInterpreter(search: InterpreterSearch): Promise<string | undefined> {
  const [major, minor] = search.version.split(".").map(Number);
  const exact = (v: [number, number]) => v[0] === major && v[1] === minor;
  const found = await firstWorking(
    search,
    [...onPath(search, `python${search.version}`), ...(await managed(search))],
    exact,
  );
  if (found) return found;
  // an unreachable download (CI without GitHub, say) costs its timeout once per tool cache, not every run
  if (await installFailedRecently(search)) return undefined;
  const r = await runCommand(search.uv, ["python", "install", "--no-config", search.version], {
    cwd: search.cwd,
    env: { ...search.env, UV_PYTHON_INSTALL_DIR: uvPythonDir(search.toolCache) },
    timeoutMs: Math.min(search.timeoutMs, 300_000),
  }).catch(() => undefined);
  const installed = r?.code === 0 ? await firstWorking(search, await managed(search), exact) : undefined;
  if (!installed) {
    const marker = installFailedMarker(search);
    await mkdir(dirname(marker), { recursive: true }).catch(() => undefined);
    await writeFile(marker, String((search.now ?? Date.now)())).catch(() => undefined);
  }
  return installed;
}
