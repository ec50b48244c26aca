/**
 * The inline buildspec of a CodeBuild build. It runs the same recipe as a Docker build (`containerScript`,
 * on the same AWS SAM build image), with the folder's files as the build's S3 source and the install tree
 * written to `/tmp/layer-sync/layer/`, then packs that tree as one tar (modes and symlinks kept, empty
 * directories dropped, hard links stored as files) for layer-sync to take, check and rezip itself.
 *
 * Everything that differs between targets arrives as environment variables (`LAYER_SYNC_*`), so the
 * buildspec depends on the language only. The index credential, when there is one, is the variable
 * `LAYER_SYNC_INDEX_TOKEN` of type PARAMETER_STORE: CodeBuild reads it and masks it in the log; the script
 * never prints it, and the commands name it only as `$LAYER_SYNC_INDEX_TOKEN`.
 */
import { NPM_TOKEN_VARIABLE } from "./builders.ts";
import { containerScript } from "./docker.ts";
import type { Language } from "./plan.ts";

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

/** The build script (bash) for a language; `work` is the scratch directory (tests run it elsewhere). */
export function buildScript(language: Language, work: string = BUILD_WORK): string {
  return [
    "set -euo pipefail",
    `rm -rf ${work} && mkdir -p ${work}/${OUTPUT_TOP}`,
    ...(language === "python" ? pipIndex() : npmrc(work)),
    containerScript({ language }, { src: "$CODEBUILD_SRC_DIR", out: `${work}/${OUTPUT_TOP}` }),
    `find ${work}/${OUTPUT_TOP} -mindepth 1 -depth -type d -empty -delete`,
    `tar --hard-dereference --owner=0 --group=0 --numeric-owner --sort=name -C ${work} -czf "$CODEBUILD_SRC_DIR/${OUTPUT_ARCHIVE}" ${OUTPUT_TOP}`,
  ].join("\n");
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
