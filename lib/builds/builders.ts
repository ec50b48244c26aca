/**
 * Where a build runs. Every builder takes the same request (language, runtime, architecture, the folder's
 * files in `sourceDir`, an empty `outDir`) and leaves the installed packages in `outDir/python/` or
 * `outDir/nodejs/node_modules/`; assembling and zipping the layer is the caller's (`content.ts`).
 *
 * - `docker`: the AWS SAM build image of the runtime and architecture (`docker.ts`), the same image
 *   CodeBuild uses: the Lambda OS and CPU, compilers included.
 * - `local`: the pinned uv or npm on the host, pinned to the target (`local.ts`); refuses what would need
 *   a build step or compiling.
 * - `auto`: `docker` when a daemon answers, else `local`.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Architecture, Language } from "../common/build-plan.ts";
import { ConfigError } from "../common/errors.ts";
import { runCommand } from "./process.ts";
import type { SanitizedRequirements } from "./requirements.ts";

export type BuilderKind = "auto" | "docker" | "local";
export const BUILDER_KINDS: readonly BuilderKind[] = ["auto", "docker", "local"];

/** A private package index (`BUILD_PIP_INDEX_URL`, `BUILD_NPM_REGISTRY`) and its credential. */
export interface IndexSettings {
  pipIndexUrl?: string | undefined;
  npmRegistry?: string | undefined;
  /**
   * The value of the `BUILD_INDEX_TOKEN_PARAMETER` SecureString, read by the caller. `user:secret` is used
   * as-is; a bare token gets the user `aws` for pip (CodeArtifact's convention) and is npm's `_authToken`.
   */
  token?: string | undefined;
}

export interface BuilderOptions {
  /**
   * The caller's environment. Children get only `CHILD_ENVIRONMENT` from it (PATH, proxies, CA bundles,
   * Docker's connection settings): no user configuration of pip or npm leaks into a build.
   */
  env: Readonly<Record<string, string | undefined>>;
  /** A scratch directory used as the children's HOME (no user configuration leaks into a build). */
  home: string;
  /** Download caches (pip, npm) shared between builds, when given. */
  cacheDir?: string | undefined;
  timeoutMs: number;
  index?: IndexSettings | undefined;
  /**
   * The interpreter uv runs with in local builds (it decides nothing about the target); by default one is
   * picked (`uv.ts` `pickInterpreter`).
   */
  python?: string | undefined;
  /**
   * layer-sync's tool cache: the pinned uv and uv-managed interpreters (the CLI: `$XDG_CACHE_HOME/layer-sync`
   * or `~/.cache/layer-sync`). Default: `tools/` in `cacheDir`.
   */
  toolCache?: string | undefined;
  /** `process.platform`-`process.arch` of this machine, for the uv wheel (default: this process's). */
  host?: string | undefined;
  /** `uid:gid` the docker build runs as, so its output belongs to the caller. */
  user?: string | undefined;
}

export interface BuildRequest {
  language: Language;
  runtime: string;
  architecture: Architecture;
  /** The folder's files (manifests included). Read-only to the build. */
  sourceDir: string;
  /** Empty; receives `python/` or `nodejs/node_modules/`. */
  outDir: string;
  /** The folder (`layers/pydeps`), for messages. */
  folder?: string | undefined;
  /** Python: the checked requirement files (`requirements.ts`); `sourceDir` holds their sanitized text. */
  requirements?: SanitizedRequirements | undefined;
  /** Python: compile `.pyc` for the target (`build.bytecode`, default true). */
  bytecode?: boolean | undefined;
}

export interface BuildOutcome {
  warnings: string[];
}

export interface Builder {
  readonly kind: "local" | "docker";
  /** What the result depends on besides the files: the image reference or the local tool versions. */
  identity(request: BuildRequest): Promise<string>;
  build(request: BuildRequest): Promise<BuildOutcome>;
}

/** The variables a build's child processes take from the caller's environment. */
export const CHILD_ENVIRONMENT: readonly string[] = [
  "PATH",
  "HTTP_PROXY",
  "HTTPS_PROXY",
  "NO_PROXY",
  "http_proxy",
  "https_proxy",
  "no_proxy",
  "NODE_EXTRA_CA_CERTS",
  "SSL_CERT_FILE",
  "SSL_CERT_DIR",
  "REQUESTS_CA_BUNDLE",
  "PIP_CERT",
  "DOCKER_HOST",
  "DOCKER_CONTEXT",
  "DOCKER_CONFIG",
  "DOCKER_CERT_PATH",
  "DOCKER_TLS_VERIFY",
];

/** The part of `env` children may see. */
export function childEnvironment(env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of CHILD_ENVIRONMENT) {
    const v = env[name];
    if (v !== undefined && v !== "") out[name] = v;
  }
  return out;
}

/** The AWS SAM build image of a runtime and architecture, as SAM CLI pulls it. */
export function samBuildImage(runtime: string, architecture: Architecture): string {
  return `public.ecr.aws/sam/build-${runtime}:latest-${architecture}`;
}

/** An index URL for messages and fingerprints: no credentials, no query. */
export function publicIndexUrl(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  try {
    const u = new URL(url);
    u.username = "";
    u.password = "";
    u.search = "";
    u.hash = "";
    return u.toString();
  } catch {
    return "(invalid index URL)";
  }
}

/** `PIP_INDEX_URL` with the credential in its user info. */
export function pipIndexWithCredential(url: string, token: string | undefined): string {
  if (!token) return url;
  const u = new URL(url);
  const colon = token.indexOf(":");
  u.username = encodeURIComponent(colon > 0 ? token.slice(0, colon) : "aws");
  u.password = encodeURIComponent(colon > 0 ? token.slice(colon + 1) : token);
  return u.toString();
}

/** The environment variable that carries the index credential to npm (expanded by npm inside `.npmrc`). */
export const NPM_TOKEN_VARIABLE = "LAYER_SYNC_INDEX_TOKEN";

/**
 * Write an `.npmrc` at `file` for the registry; it names the credential only as `${LAYER_SYNC_INDEX_TOKEN}`,
 * so the file never holds it. Returns the variables the npm process needs.
 */
export async function writeNpmrc(file: string, index: IndexSettings | undefined): Promise<Record<string, string>> {
  const lines: string[] = [];
  const env: Record<string, string> = {};
  if (index?.npmRegistry) {
    const u = new URL(index.npmRegistry);
    lines.push(`registry=${publicIndexUrl(index.npmRegistry)}`);
    if (index.token) {
      const scope = `//${u.host}${u.pathname.endsWith("/") ? u.pathname : `${u.pathname}/`}`;
      const basic = index.token.indexOf(":") > 0;
      lines.push(`${scope}:${basic ? "_auth" : "_authToken"}=\${${NPM_TOKEN_VARIABLE}}`);
      env[NPM_TOKEN_VARIABLE] = basic ? Buffer.from(index.token, "utf8").toString("base64") : index.token;
    }
  }
  lines.push("fund=false", "audit=false", "update-notifier=false");
  await writeFile(file, `${lines.join("\n")}\n`, { mode: 0o600 });
  return env;
}

/** Whether a Docker daemon answers within a few seconds. */
export async function dockerAvailable(
  env: Readonly<Record<string, string | undefined>>,
  cwd: string,
): Promise<boolean> {
  try {
    const r = await runCommand("docker", ["version", "--format", "{{.Server.Version}}"], {
      cwd,
      env: { ...childEnvironment(env), HOME: env.HOME ?? cwd },
      timeoutMs: 10_000,
    });
    return r.code === 0 && r.stdout.trim() !== "";
  } catch {
    return false;
  }
}

/** The builder for `kind`; `auto` asks Docker first. */
export async function createBuilder(kind: BuilderKind, options: BuilderOptions): Promise<Builder> {
  if (!BUILDER_KINDS.includes(kind)) {
    throw new ConfigError(`--builder must be auto, docker or local (got "${String(kind)}")`);
  }
  const { DockerBuilder } = await import("./docker.ts");
  const { LocalBuilder } = await import("./local.ts");
  if (kind === "docker") return new DockerBuilder(options);
  if (kind === "local") return new LocalBuilder(options);
  return (await dockerAvailable(options.env, options.home)) ? new DockerBuilder(options) : new LocalBuilder(options);
}

/** A path inside the scratch HOME. */
export function homeFile(options: BuilderOptions, name: string): string {
  return join(options.home, name);
}
