/**
 * Docker builds on the AWS SAM build image of the target (`public.ecr.aws/sam/build-<runtime>:latest-<arch>`,
 * `--platform linux/amd64|arm64`): the Lambda runtime's OS and CPU, with compilers, so source
 * distributions and native Node modules build correctly. The folder is mounted read-only; the output
 * directory is the only writable mount; the build runs as the caller's user. Index credentials reach the
 * container as environment variables named on the command line without their values.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { BuildError } from "../common/errors.ts";
import {
  type Builder,
  type BuilderOptions,
  type BuildOutcome,
  type BuildRequest,
  childEnvironment,
  homeFile,
  NPM_TOKEN_VARIABLE,
  pipIndexWithCredential,
  samBuildImage,
  writeNpmrc,
} from "./builders.ts";
import { PACKAGE_JSON, PACKAGE_LOCK, REQUIREMENTS } from "./plan.ts";
import { lastLine, runCommand } from "./process.ts";

const SRC = "/var/layer-sync/src";
const OUT = "/var/layer-sync/out";

/**
 * The shell script run inside the image: the one build recipe of the SAM image, shared by Docker builds
 * and CodeBuild builds (`buildspec.ts`, with other directories).
 */
export function containerScript(
  request: Pick<BuildRequest, "language">,
  dirs: { src: string; out: string } = { src: SRC, out: OUT },
): string {
  const { src: SRC, out: OUT } = dirs;
  if (request.language === "python") {
    return [
      "set -eu",
      `pip install --no-input --disable-pip-version-check --no-compile --no-warn-script-location --target ${OUT}/python -r ${SRC}/${REQUIREMENTS}`,
    ].join("\n");
  }
  return [
    "set -eu",
    `mkdir -p ${OUT}/nodejs`,
    `cp ${SRC}/${PACKAGE_JSON} ${SRC}/${PACKAGE_LOCK} ${OUT}/nodejs/`,
    `cd ${OUT}/nodejs`,
    "npm ci --omit=dev --no-audit --no-fund --loglevel=error",
    `rm -f ${PACKAGE_JSON} ${PACKAGE_LOCK} node_modules/.package-lock.json`,
  ].join("\n");
}

/** The `docker run` arguments of a build (no credential values: `-e NAME` passes them from the environment). */
export function dockerRunArguments(
  request: BuildRequest,
  options: { user?: string | undefined; env: readonly string[]; npmrc?: string | undefined },
): string[] {
  const args = [
    "run",
    "--rm",
    "--platform",
    request.architecture === "arm64" ? "linux/arm64" : "linux/amd64",
    "--pull",
    "missing",
    "--network",
    "bridge",
    "--security-opt",
    "no-new-privileges",
    "--cap-drop",
    "ALL",
  ];
  if (options.user) args.push("--user", options.user);
  args.push("-e", "HOME=/tmp", "-e", "PIP_CACHE_DIR=/tmp/pip-cache");
  for (const name of options.env) args.push("-e", name);
  args.push("-v", `${request.sourceDir}:${SRC}:ro`, "-v", `${request.outDir}:${OUT}`);
  if (options.npmrc) args.push("-v", `${options.npmrc}:/tmp/.npmrc:ro`);
  args.push(samBuildImage(request.runtime, request.architecture), "bash", "-c", containerScript(request));
  return args;
}

export class DockerBuilder implements Builder {
  readonly kind = "docker" as const;
  constructor(private readonly options: BuilderOptions) {}

  async identity(request: BuildRequest): Promise<string> {
    return `docker ${samBuildImage(request.runtime, request.architecture)}`;
  }

  async build(request: BuildRequest): Promise<BuildOutcome> {
    await mkdir(request.outDir, { recursive: true });
    // docker's own client configuration lives in the caller's HOME (or DOCKER_CONFIG)
    const env: Record<string, string> = {
      ...childEnvironment(this.options.env),
      HOME: this.options.env.HOME ?? this.options.home,
    };
    const passed: string[] = [];
    const index = this.options.index;
    let npmrc: string | undefined;
    if (request.language === "python" && index?.pipIndexUrl) {
      env.PIP_INDEX_URL = pipIndexWithCredential(index.pipIndexUrl, index.token);
      passed.push("PIP_INDEX_URL");
    }
    if (request.language === "nodejs") {
      npmrc = homeFile(this.options, ".npmrc");
      const extra = await writeNpmrc(npmrc, index);
      Object.assign(env, extra);
      if (extra[NPM_TOKEN_VARIABLE] !== undefined) passed.push(NPM_TOKEN_VARIABLE);
    }
    const args = dockerRunArguments(request, { user: this.options.user, env: passed, npmrc });
    const r = await runCommand("docker", args, {
      cwd: join(this.options.home),
      env,
      timeoutMs: this.options.timeoutMs,
      secrets: [index?.token, env.PIP_INDEX_URL],
    });
    if (r.code !== 0) {
      throw new BuildError(
        `docker build on ${samBuildImage(request.runtime, request.architecture)} failed: ${lastLine(r.stderr || r.stdout)}`,
      );
    }
    return { warnings: [] };
  }
}
