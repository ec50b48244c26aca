/**
 * Docker builds on the AWS SAM build image of the target (`public.ecr.aws/sam/build-<runtime>:latest-<arch>`,
 * `--platform linux/amd64|arm64`): the Lambda runtime's OS and CPU, with compilers, so source
 * distributions and native Node modules build correctly. Every build is two `docker run`s of that image:
 *
 * 1. **download**: holds the index credential and runs no package code. Python: `pip download
 *    --only-binary=:all:` into a wheelhouse (pip runs no build backend for a wheel); Node.js: `npm ci
 *    --ignore-scripts`. It sees only the manifests (not the folder), and the credential arrives as an
 *    environment variable named on the command line without its value (and, for npm, an `.npmrc` that names
 *    it only as `${LAYER_SYNC_INDEX_TOKEN}`).
 * 2. **build**: no credential at all (no `-e` of it, no `.npmrc` mount, the host's `.npmrc` already deleted).
 *    Python: `pip install` from the wheelhouse, with `--network none` when the download got every wheel, else
 *    with the index URL stripped of its credential; Node.js: `npm rebuild` (install scripts, node-gyp) in the
 *    installed tree.
 *
 * The output directory and the wheelhouse are the only writable mounts; both runs run as the caller's user.
 */
import { mkdtemp, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { type Language, PACKAGE_JSON, PACKAGE_LOCK, REQUIREMENTS } from "../common/build-plan.ts";
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
  publicIndexUrl,
  samBuildImage,
  writeNpmrc,
} from "./builders.ts";
import { PRUNE_OPTIONAL_SCRIPT } from "./node-prune.ts";
import { lastLine, runCommand } from "./process.ts";

const SRC = "/var/layer-sync/src";
const OUT = "/var/layer-sync/out";
const DL = "/var/layer-sync/download";

/** The file the download phase leaves in the wheelhouse when every requirement had a wheel. */
export const WHEELHOUSE_COMPLETE = ".complete";
/** The first words of the build phase's error when the download phase could not get every wheel. */
export const SDIST_WITHOUT_CREDENTIAL =
  "some requirement has no wheel on the index, and source distributions are built without the index credential";

/** Where the recipe reads and writes: the folder's manifests, the install tree, the download area. */
export interface RecipeDirs {
  src: string;
  out: string;
  dl: string;
}

/**
 * Refuse, before pip sees the file, any requirement line that could make `pip download` run code: a local
 * path or archive, a VCS or non-wheel URL, an editable, any option but `--hash` (and the option lines
 * `--require-hashes`, `--prefer-binary`, `--pre`, which a converted lock or the sanitizer keeps), an
 * environment variable.
 * layer-sync writes the file itself from a checked one; this is the second line of defence. It uses the
 * `packaging` that pip vendors, so it parses exactly what pip would.
 */
const requirementGuard = (file: string): string[] => [
  `python3 - "${file}" <<'LAYER_SYNC_GUARD'`,
  "import re, sys",
  "from urllib.parse import urlsplit",
  "from pip._vendor.packaging.requirements import Requirement",
  "text = open(sys.argv[1], encoding='utf-8').read().replace('\\\\\\n', ' ')",
  "for n, line in enumerate(text.splitlines(), 1):",
  "    line = re.split(r'(?:^|\\s)#', line, maxsplit=1)[0].strip()",
  "    if not line or line in ('--require-hashes', '--prefer-binary', '--pre'):",
  "        continue",
  "    req = re.split(r'\\s+--hash[=\\s]', line, maxsplit=1)[0].strip()",
  "    ok = '$' not in line and not req.startswith('-')",
  "    if ok:",
  "        try:",
  "            r = Requirement(req)",
  "            u = urlsplit(r.url) if r.url else None",
  "            ok = u is None or (u.scheme == 'https' and u.path.endswith('.whl'))",
  "        except Exception:",
  "            ok = False",
  "    if not ok:",
  "        sys.exit(f'layer-sync: line {n} of requirements.txt is not a package requirement layer-sync downloads with the index credential; nothing was run')",
  "LAYER_SYNC_GUARD",
];

/**
 * Refuse, before npm sees it, a lock file naming a git, local or linked dependency: npm prepares a git
 * dependency by installing it and running its `prepare` script, which some npm versions do even with
 * `--ignore-scripts`. Only registry tarballs are downloaded with the credential. Both lock formats are walked
 * (v1's nested `dependencies`, v2/v3's `packages`).
 */
const lockGuard = (file: string): string[] => [
  `node - "${file}" <<'LAYER_SYNC_GUARD'`,
  "const lock = JSON.parse(require('fs').readFileSync(process.argv[2], 'utf8'));",
  "const bad = /^(git[+:]|github:|gitlab:|bitbucket:|gist:|file:|link:|[.~/])/;",
  "const walk = (node, where) => {",
  "  if (!node || typeof node !== 'object') return;",
  "  for (const key of ['resolved', 'version']) {",
  "    const v = node[key];",
  "    if (node.link === true || (typeof v === 'string' && bad.test(v))) {",
  "      console.error('layer-sync: ' + (where || 'the root') + ' in package-lock.json is not a registry package; git, local and linked dependencies are refused (npm would run their scripts); nothing was run');",
  "      process.exit(1);",
  "    }",
  "  }",
  "  for (const [name, child] of Object.entries(node.packages ?? {})) if (name !== '') walk(child, name);",
  "  for (const [name, child] of Object.entries(node.dependencies ?? {})) if (child && typeof child === 'object') walk(child, name);",
  "};",
  "walk(lock, '');",
  "LAYER_SYNC_GUARD",
];

/**
 * The download phase (bash): credential in reach, no package code. Python leaves the wheels, a copy of
 * `requirements.txt` and, when every requirement had a wheel, `WHEELHOUSE_COMPLETE` in `dl`; Node.js leaves
 * `out/nodejs/node_modules` installed without running any script.
 */
export function downloadScript(language: Language, dirs: RecipeDirs): string {
  const { src, out, dl } = dirs;
  if (language === "python") {
    return [
      "set -eu",
      "export PIP_CONFIG_FILE=/dev/null PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1",
      `mkdir -p ${dl}/wheels ${dl}/empty`,
      `cp ${src}/${REQUIREMENTS} ${dl}/${REQUIREMENTS}`,
      ...requirementGuard(`${dl}/${REQUIREMENTS}`),
      // an empty working directory: a relative path in the file names nothing
      `cd ${dl}/empty`,
      `if pip download --no-input --disable-pip-version-check --only-binary=:all: --dest ${dl}/wheels -r ${dl}/${REQUIREMENTS}; then`,
      `  : > ${dl}/${WHEELHOUSE_COMPLETE}`,
      "else",
      `  echo "layer-sync: not every requirement has a wheel on the index; the build phase fetches the rest without the index credential" >&2`,
      "fi",
    ].join("\n");
  }
  return [
    "set -eu",
    `mkdir -p ${out}/nodejs`,
    `cp ${src}/${PACKAGE_JSON} ${src}/${PACKAGE_LOCK} ${out}/nodejs/`,
    ...lockGuard(`${out}/nodejs/${PACKAGE_LOCK}`),
    `cd ${out}/nodejs`,
    "npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error",
    // optional packages of another platform that npm could not tell apart (a converted Yarn 1 lock)
    `node - ${out}/nodejs linux "$(node -p process.arch)" glibc <<'LAYER_SYNC_PRUNE'`,
    PRUNE_OPTIONAL_SCRIPT.trim(),
    "LAYER_SYNC_PRUNE",
  ].join("\n");
}

/**
 * Data-scheme shared libraries (`*.data/data/lib/*.so*`, e.g. tbb's), which `pip install --target` drops:
 * extracted from the wheelhouse's wheels into the layer's `lib/` (`/opt/lib`, on LD_LIBRARY_PATH). Only a
 * file name matching a shared library is written, so no entry can leave `lib/`.
 */
const dataLibraries = (wheels: string, lib: string): string[] => [
  `python3 - "${wheels}" "${lib}" <<'LAYER_SYNC_DATA'`,
  "import os, re, sys, zipfile",
  "src, dest = sys.argv[1], sys.argv[2]",
  "lib = re.compile(r'^[^/]+[.]data/data/lib/([^/]+[.]so(?:[.][0-9]+)*)$')",
  "for name in sorted(os.listdir(src)):",
  "    if not name.endswith('.whl') or not zipfile.is_zipfile(os.path.join(src, name)):",
  "        continue",
  "    with zipfile.ZipFile(os.path.join(src, name)) as whl:",
  "        for info in whl.infolist():",
  "            m = lib.match(info.filename)",
  "            if m:",
  "                os.makedirs(dest, exist_ok=True)",
  "                with whl.open(info) as f, open(os.path.join(dest, m.group(1)), 'wb') as out:",
  "                    out.write(f.read())",
  "LAYER_SYNC_DATA",
];

/**
 * Compile every module with the image's Python (the target's) to `__pycache__/*.cpython-3XY.pyc`:
 * unchecked-hash (PEP 552, no mtime), one process in sorted order with PYTHONHASHSEED=0 so the bytes repeat,
 * file names as `/opt/python/…`. A module that does not compile stays source-only (a warning, not a failure).
 * The shared step (`python-tree.ts`) drops the `.pyc` again when `build.bytecode` is false.
 */
export const compileCommand = (python: string): string =>
  `PYTHONHASHSEED=0 python3 -s -m compileall -q -f -d /opt/python --invalidation-mode unchecked-hash ${python} >&2 || echo "layer-sync: some modules did not compile and ship as source only" >&2`;

/**
 * The build phase (bash): no credential, package code runs. Python installs from the wheelhouse only (when
 * complete) or from it and the index without credential, places data-scheme shared libraries in `lib/` and
 * compiles the `.pyc`; Node.js runs the install scripts of the tree.
 */
export function buildPhaseScript(language: Language, dirs: Omit<RecipeDirs, "src">): string {
  const { out, dl } = dirs;
  if (language === "python") {
    const install = `pip install --no-input --disable-pip-version-check --no-compile --no-warn-script-location --find-links ${dl}/wheels --target ${out}/python -r ${dl}/${REQUIREMENTS}`;
    return [
      "set -eu",
      "export PIP_CONFIG_FILE=/dev/null PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1",
      `cd ${dl}/empty`,
      `if [ -e ${dl}/${WHEELHOUSE_COMPLETE} ]; then`,
      `  ${install.replace("--find-links", "--no-index --find-links")}`,
      `elif ! ${install}; then`,
      `  echo "layer-sync: ${SDIST_WITHOUT_CREDENTIAL}: publish a wheel of every private package" >&2`,
      "  exit 1",
      "fi",
      ...dataLibraries(`${dl}/wheels`, `${out}/lib`),
      compileCommand(`${out}/python`),
    ].join("\n");
  }
  return [
    "set -eu",
    "export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false npm_config_ignore_scripts=false",
    `cd ${out}/nodejs`,
    "npm rebuild --no-audit --no-fund --loglevel=error",
    `rm -f ${PACKAGE_JSON} ${PACKAGE_LOCK} node_modules/.package-lock.json`,
  ].join("\n");
}

export type DockerPhase =
  | { phase: "download"; env: readonly string[]; npmrc?: string | undefined }
  | { phase: "build"; network: "none" | "bridge"; pipIndexUrl?: string | undefined };

/**
 * The `docker run` arguments of one phase. The download phase names its credential variables without values
 * (`-e NAME`) and mounts only the manifests; the build phase gets no credential, no `.npmrc` and not the
 * folder, and no network when the wheelhouse is complete.
 */
export function dockerRunArguments(
  request: BuildRequest,
  options: { user?: string | undefined; download: string } & DockerPhase,
): string[] {
  const args = [
    "run",
    "--rm",
    "--platform",
    request.architecture === "arm64" ? "linux/arm64" : "linux/amd64",
    "--pull",
    "missing",
    "--network",
    options.phase === "build" ? options.network : "bridge",
    "--security-opt",
    "no-new-privileges",
    "--cap-drop",
    "ALL",
  ];
  if (options.user) args.push("--user", options.user);
  args.push("-e", "HOME=/tmp", "-e", "PIP_CACHE_DIR=/tmp/pip-cache");
  if (options.phase === "download") {
    for (const name of options.env) args.push("-e", name);
    const manifests = request.language === "python" ? [REQUIREMENTS] : [PACKAGE_JSON, PACKAGE_LOCK];
    for (const m of manifests) args.push("-v", `${join(request.sourceDir, m)}:${SRC}/${m}:ro`);
    args.push("-v", `${request.outDir}:${OUT}`, "-v", `${options.download}:${DL}`);
    if (options.npmrc) args.push("-v", `${options.npmrc}:/tmp/.npmrc:ro`);
    args.push(
      samBuildImage(request.runtime, request.architecture),
      "bash",
      "-c",
      downloadScript(request.language, { src: SRC, out: OUT, dl: DL }),
    );
    return args;
  }
  if (options.pipIndexUrl) args.push("-e", `PIP_INDEX_URL=${options.pipIndexUrl}`);
  args.push("-v", `${request.outDir}:${OUT}`, "-v", `${options.download}:${DL}:ro`);
  args.push(
    samBuildImage(request.runtime, request.architecture),
    "bash",
    "-c",
    buildPhaseScript(request.language, { out: OUT, dl: DL }),
  );
  return args;
}

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

export class DockerBuilder implements Builder {
  readonly kind = "docker" as const;
  constructor(private readonly options: BuilderOptions) {}

  async identity(request: BuildRequest): Promise<string> {
    return `docker ${samBuildImage(request.runtime, request.architecture)}`;
  }

  async build(request: BuildRequest): Promise<BuildOutcome> {
    const image = samBuildImage(request.runtime, request.architecture);
    const download = await mkdtemp(join(this.options.home, "download-"));
    // docker's own client configuration lives in the caller's HOME (or DOCKER_CONFIG)
    const base = (): Record<string, string> => ({
      ...childEnvironment(this.options.env),
      HOME: this.options.env.HOME ?? this.options.home,
    });
    const index = this.options.index;
    try {
      // phase 1: the credential, no package code
      const env = base();
      const passed: string[] = [];
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
      const secrets = [index?.token, env.PIP_INDEX_URL, env[NPM_TOKEN_VARIABLE]];
      let r: Awaited<ReturnType<typeof runCommand>>;
      try {
        r = await runCommand(
          "docker",
          dockerRunArguments(request, { user: this.options.user, download, phase: "download", env: passed, npmrc }),
          { cwd: this.options.home, env, timeoutMs: this.options.timeoutMs, secrets },
        );
      } finally {
        if (npmrc) await rm(npmrc, { force: true });
      }
      if (r.code !== 0) {
        throw new BuildError(`docker build on ${image} failed downloading packages: ${lastLine(r.stderr || r.stdout)}`);
      }
      // phase 2: package code, no credential
      const complete = request.language === "nodejs" || (await exists(join(download, WHEELHOUSE_COMPLETE)));
      const b = await runCommand(
        "docker",
        dockerRunArguments(request, {
          user: this.options.user,
          download,
          phase: "build",
          network: complete && request.language === "python" ? "none" : "bridge",
          pipIndexUrl: complete ? undefined : publicIndexUrl(index?.pipIndexUrl),
        }),
        { cwd: this.options.home, env: base(), timeoutMs: this.options.timeoutMs, secrets },
      );
      if (b.code !== 0) throw new BuildError(`docker build on ${image} failed: ${lastLine(b.stderr || b.stdout)}`);
      return { warnings: [] };
    } finally {
      await rm(download, { recursive: true, force: true });
    }
  }
}
