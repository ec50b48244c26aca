/**
 * The inline buildspec of a CodeBuild build. It runs the same two-phase recipe as a Docker build
 * (`downloadScript` and `buildPhaseScript`, on the same AWS SAM build image), with the folder's files as the
 * build's S3 source and the install tree written to `/tmp/layer-sync-build/layer/`, then packs that tree as one
 * tar (modes and symlinks kept, empty directories dropped, hard links stored as files) for layer-sync to take,
 * check and rezip itself. CodeBuild zips that tar as the build's artifact and reports the zip's SHA-256, which
 * the build-finished step checks against what it reads.
 *
 * Everything that differs between targets arrives as environment variables (`LAYER_SYNC_*`), so the
 * buildspec depends on the language only. The index credential, when there is one, is the variable
 * `LAYER_SYNC_INDEX_TOKEN` of type PARAMETER_STORE: CodeBuild reads it and masks it in the log; the script
 * never prints it, and the commands name it only as `$LAYER_SYNC_INDEX_TOKEN`. It exists only in the download
 * phase, which runs no package code; then the script removes it (and the build role's credentials endpoint)
 * from the environment and every file, locks CodeBuild's own directory, and runs the build phase (package
 * code) as `nobody` with an empty environment.
 */

import type { Language } from "../common/build-plan.ts";
import { NPM_TOKEN_VARIABLE } from "./builders.ts";
import { buildPhaseScript, downloadScript, WHEELHOUSE_COMPLETE } from "./docker.ts";

/** The file the build leaves in its artifact: the install tree as a gzip-compressed tar. */
export const OUTPUT_ARCHIVE = ".layer-sync-output.tar.gz";
/** The archive's single top folder. */
export const OUTPUT_TOP = "layer";
/** The folder of the layer the build installs into: `python` or `nodejs`. */
export function installRoot(language: Language): string {
  return language === "python" ? "python" : "nodejs";
}

/** Environment variable names the buildspec reads. */
export const BUILD_VARIABLES = {
  runtime: "LAYER_SYNC_RUNTIME",
  architecture: "LAYER_SYNC_ARCHITECTURE",
  package: "LAYER_SYNC_PACKAGE",
  fingerprint: "LAYER_SYNC_FINGERPRINT",
  pipIndexUrl: "LAYER_SYNC_PIP_INDEX_URL",
  npmRegistry: "LAYER_SYNC_NPM_REGISTRY",
  token: NPM_TOKEN_VARIABLE,
} as const;

/** The build's scratch directory (its own: the script empties it first). */
export const BUILD_WORK = "/tmp/layer-sync-build";

/** `PIP_INDEX_URL` with the credential in its user info (`user:secret` as-is, a bare token as `aws:token`). */
const pipIndex = (): string[] => [
  `if [ -n "\${${BUILD_VARIABLES.pipIndexUrl}:-}" ]; then`,
  `  PIP_INDEX_URL="$(python3 -c 'import os,sys,urllib.parse as u
url=os.environ["${BUILD_VARIABLES.pipIndexUrl}"]; t=os.environ.get("${BUILD_VARIABLES.token}","")
if t:
    p=u.urlsplit(url); user,sep,pw=t.partition(":")
    if not sep or not user: user,pw="aws",t
    url=u.urlunsplit((p.scheme,u.quote(user,safe="")+":"+u.quote(pw,safe="")+"@"+p.netloc,p.path,p.query,p.fragment))
sys.stdout.write(url)')"`,
  "  export PIP_INDEX_URL",
  // the same index without credential, query or fragment, for requirements without a wheel (build phase)
  `  PUBLIC_INDEX_URL="$(python3 -c 'import os,sys,urllib.parse as u
p=u.urlsplit(os.environ["${BUILD_VARIABLES.pipIndexUrl}"])
sys.stdout.write(u.urlunsplit((p.scheme,p.hostname+(":"+str(p.port) if p.port else ""),p.path,"","")))')"`,
  "fi",
];

/** An `.npmrc` naming the registry, and the credential only as `${LAYER_SYNC_INDEX_TOKEN}`. */
const npmrc = (work: string): string[] => [
  `NPMRC=${work}/npmrc`,
  `printf '%s\\n' fund=false audit=false update-notifier=false > "$NPMRC"`,
  `if [ -n "\${${BUILD_VARIABLES.npmRegistry}:-}" ]; then`,
  `  printf 'registry=%s\\n' "$${BUILD_VARIABLES.npmRegistry}" >> "$NPMRC"`,
  `  if [ -n "\${${BUILD_VARIABLES.token}:-}" ]; then`,
  `    SCOPE="$(node -e 'const u=new URL(process.argv[1]);process.stdout.write("//"+u.host+(u.pathname.endsWith("/")?u.pathname:u.pathname+"/"))' "$${BUILD_VARIABLES.npmRegistry}")"`,
  `    case "$${BUILD_VARIABLES.token}" in`,
  `      ?*:*) ${BUILD_VARIABLES.token}="$(printf '%s' "$${BUILD_VARIABLES.token}" | base64 | tr -d '\\n')"; printf '%s:_auth=\${${BUILD_VARIABLES.token}}\\n' "$SCOPE" >> "$NPMRC" ;;`,
  `      *) printf '%s:_authToken=\${${BUILD_VARIABLES.token}}\\n' "$SCOPE" >> "$NPMRC" ;;`,
  "    esac",
  `    export ${BUILD_VARIABLES.token}`,
  "  fi",
  "fi",
  'export npm_config_userconfig="$NPMRC" npm_config_update_notifier=false',
];

/**
 * Every variable that could carry a credential, removed before package code runs: the index credential and
 * pip's URL, npm's config file, and the build role's (the container credentials endpoint's address and any
 * static keys).
 */
export const CREDENTIAL_VARIABLES = [
  BUILD_VARIABLES.token,
  "PIP_INDEX_URL",
  "NPMRC",
  "npm_config_userconfig",
  "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
  "AWS_CONTAINER_CREDENTIALS_FULL_URI",
  "AWS_CONTAINER_AUTHORIZATION_TOKEN",
  "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "AWS_WEB_IDENTITY_TOKEN_FILE",
  "AWS_ROLE_ARN",
] as const;

/** The unprivileged user package code runs as (it cannot read root's `/proc/<pid>/environ`). */
export const BUILD_USER = "nobody";

/**
 * Run a command as `BUILD_USER` with an empty environment but for `PATH`, `HOME` and what is given:
 * `runuser` (util-linux) when present, else `setpriv`; the build fails when neither can drop privileges.
 */
const asBuildUser = (work: string): string[] => [
  "as_build_user() {",
  "  if command -v runuser >/dev/null 2>&1; then",
  `    runuser -u ${BUILD_USER} -- env -i PATH="$PATH" HOME=${work}/home LANG=C.UTF-8 "$@"`,
  "  elif command -v setpriv >/dev/null 2>&1; then",
  `    setpriv --reuid=${BUILD_USER} --regid=${BUILD_USER} --clear-groups -- env -i PATH="$PATH" HOME=${work}/home LANG=C.UTF-8 "$@"`,
  "  else",
  '    echo "layer-sync: the image has neither runuser nor setpriv to run package code without the build\'s credentials" >&2',
  "    return 1",
  "  fi",
  "}",
];

/**
 * The build script (bash) for a language; `work` is the scratch directory (tests run it elsewhere), `lock`
 * the directories package code must not read (CodeBuild's own files, where its agent keeps the build's
 * environment and the source).
 */
export function buildScript(
  language: Language,
  work: string = BUILD_WORK,
  lock: readonly string[] = ["/codebuild"],
): string {
  const dirs = { src: "$CODEBUILD_SRC_DIR", out: `${work}/${OUTPUT_TOP}`, dl: `${work}/download` };
  const python = language === "python";
  return [
    "set -euo pipefail",
    `rm -rf ${work} && mkdir -p ${work}/${OUTPUT_TOP} ${work}/download ${work}/home`,
    ...asBuildUser(work),
    "# phase 1, download: the index credential, no package code",
    ...(python ? pipIndex() : npmrc(work)),
    // a subshell: the phase's `set -eu` and `cd` stay in it (not indented: it holds a here-document)
    `(\n${downloadScript(language, dirs)}\n)`,
    "# the credential leaves the environment and every file before any package code runs",
    ...(python ? [] : ['rm -f "$NPMRC"']),
    `unset ${CREDENTIAL_VARIABLES.join(" ")}`,
    `for d in ${lock.join(" ")}; do if [ -e "$d" ]; then chmod go-rwx "$d"; fi; done`,
    `chown -R ${BUILD_USER}: ${work}`,
    "# phase 2, build: package code runs as an unprivileged user, with no credential in its environment",
    ...(python ? publicIndexWhenIncomplete(`${dirs.dl}/${WHEELHOUSE_COMPLETE}`) : []),
    `as_build_user ${python ? "$BUILD_INDEX " : ""}bash -c ${shellQuote(buildPhaseScript(language, dirs))}`,
    `as_build_user find ${work}/${OUTPUT_TOP} -mindepth 1 -depth -type d -empty -delete`,
    // tar runs as the build user (it reads only what package code could), root only writes its stdout
    `as_build_user tar --hard-dereference --owner=0 --group=0 --numeric-owner --sort=name -C ${work} -czf - ${OUTPUT_TOP} > "$CODEBUILD_SRC_DIR/${OUTPUT_ARCHIVE}"`,
  ].join("\n");
}

/**
 * `BUILD_INDEX`: nothing when the wheelhouse is complete (pip installs from it alone), else pip's index without
 * its credential. The value is a URL without spaces, so it stays one word unquoted.
 */
function publicIndexWhenIncomplete(marker: string): string[] {
  return [
    "BUILD_INDEX=",
    `if [ ! -e "${marker}" ] && [ -n "$\{PUBLIC_INDEX_URL:-}" ]; then BUILD_INDEX="PIP_INDEX_URL=$PUBLIC_INDEX_URL"; fi`,
  ];
}

/** A single-quoted shell word. */
function shellQuote(text: string): string {
  return `'${text.replaceAll("'", "'\\''")}'`;
}

/** The inline buildspec (YAML; every string is JSON-quoted, which YAML reads as a double-quoted scalar). */
export function buildspec(language: Language): string {
  return [
    "version: 0.2",
    "env:",
    "  shell: bash",
    "phases:",
    "  build:",
    "    commands:",
    `      - ${JSON.stringify(buildScript(language))}`,
    "artifacts:",
    "  files:",
    `    - ${JSON.stringify(OUTPUT_ARCHIVE)}`,
    "",
  ].join("\n");
}
