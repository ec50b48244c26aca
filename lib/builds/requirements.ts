/**
 * layer-sync reads a folder's `requirements.txt` before any tool does, and hands builders only a
 * sanitized, canonical copy. The rules (docs/builds.md, "Requirement files"):
 *
 * - Accepted: PEP 508 requirements (name, extras, version specifiers, environment markers) with
 *   `--hash=` options; comments, blank lines and `\` continuations (joined as pip joins them); the options
 *   `--require-hashes`, `--only-binary`, `--prefer-binary`, `--pre`; `-r`/`-c` of another file inside the
 *   folder, parsed with the same rules (at most `MAX_DEPTH` levels, `MAX_FILE_BYTES` per file).
 * - Refused (`ConfigError`, exit 2, naming the file, the line number and the line): options that change
 *   where packages come from (`--index-url`/`-i`, `--extra-index-url`, `--find-links`/`-f`,
 *   `--trusted-host`, `--no-index`), `-r`/`-c` of a file outside the folder (absolute, `..`, a link that
 *   leaves it), `file:` URLs and paths outside the folder, any `$VAR` or `${VAR}` (pip expands them), and
 *   every option not listed here. Indexes come only from layer-sync's settings.
 * - Needs a build step (kept for container builders; the local builder fails the target with
 *   `BuildError`, exit 1): local paths inside the folder, VCS and URL requirements (`git+…`, `https://…`,
 *   `name @ url`), `-e`/`--editable`, `--no-binary`.
 *
 * A file outside the folder is never opened, so its content never reaches a message.
 */
import { posix } from "node:path";
import { BuildError, ConfigError } from "../common/errors.ts";
import { quoteName } from "../common/paths.ts";
import { checkMarker, logicalLines, markerSplit } from "./pep508.ts";

/** Nested `-r`/`-c` levels below the root file. */
export const MAX_DEPTH = 8;
/** Bytes of one requirement file. */
export const MAX_FILE_BYTES = 1024 * 1024;
/** Requirement files reached from the root, the root included. */
export const MAX_FILES = 64;
/** Characters of a line quoted in a message. */
const QUOTED = 120;
/** Symlinks followed while resolving one path. */
const MAX_LINKS = 32;

/** The folder's entries, as far as the parser needs them. */
export interface RequirementEntry {
  path: string;
  kind: "file" | "executable" | "symlink";
  target?: string | undefined;
}

export interface RequirementSource {
  entries: readonly RequirementEntry[];
  /** The bytes of a file of the folder (a path of `entries` that is not a link). */
  read(path: string): Promise<Buffer>;
  /** The folder, for messages (e.g. `layers/pydeps`). */
  folder: string;
}

/** A line only a build step can install: a container builder may, the local builder never does. */
export interface BuildStepLine {
  /** Folder-relative file. */
  file: string;
  line: number;
  /** The line as written, escaped and truncated for messages. */
  quoted: string;
  /** What it is: "a local path", "a VCS requirement" … */
  why: string;
}

export interface SanitizedRequirements {
  /** Folder-relative path → the sanitized text builders receive in its place (the root file first). */
  files: Map<string, string>;
  /** Lines that need a build step, in file and line order. */
  buildSteps: BuildStepLine[];
  /** Requirement lines accepted (over all files). */
  requirements: number;
}

const NAME = "[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?";
const EXTRAS = String.raw`\[\s*(?:${NAME}(?:\s*,\s*${NAME})*)?\s*\]`;
const VERSION_ONE = "(?:~=|===|==|!=|<=|>=|<|>)\\s*[A-Za-z0-9_.*+!-]+";
const VERSIONS = String.raw`${VERSION_ONE}(?:\s*,\s*${VERSION_ONE})*`;
const SPECIFIER = new RegExp(String.raw`^(${NAME})\s*(${EXTRAS})?\s*(\(\s*${VERSIONS}\s*\)|${VERSIONS})?\s*$`);
const URL_REQUIREMENT = new RegExp(String.raw`^(${NAME})\s*(${EXTRAS})?\s*@\s*(\S+)\s*$`);
const ARCHIVE = /\.(whl|zip|tar|tar\.gz|tgz|tar\.bz2|tbz|tar\.xz|txz)$/i;
const VCS = /^(git|hg|svn|bzr)\+/i;
const URL_SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/;
const HASH = /^(sha256|sha384|sha512):[0-9a-fA-F]+$/;
const BINARY_VALUE = /^(:all:|:none:|[A-Za-z0-9._-]+)(,(:all:|:none:|[A-Za-z0-9._-]+))*$/;

/** Options that change where packages come from: refused with the reason. */
const SOURCE_OPTIONS = new Map<string, string>([
  ["-i", "--index-url"],
  ["--index-url", "--index-url"],
  ["--extra-index-url", "--extra-index-url"],
  ["-f", "--find-links"],
  ["--find-links", "--find-links"],
  ["--trusted-host", "--trusted-host"],
  ["--no-index", "--no-index"],
]);
/** Options that take a value (the next token when not given with `=` or glued to a short option). */
const WITH_VALUE = new Set([
  "-i",
  "--index-url",
  "--extra-index-url",
  "-f",
  "--find-links",
  "--trusted-host",
  "-r",
  "--requirement",
  "-c",
  "--constraint",
  "-e",
  "--editable",
  "--only-binary",
  "--no-binary",
  "--hash",
]);

/** A line for messages: escaped control characters, truncated. */
export function quoteLine(line: string): string {
  const short = line.length > QUOTED ? `${line.slice(0, QUOTED)}…` : line;
  return quoteName(short);
}

class Reader {
  readonly files = new Map<string, string>();
  readonly buildSteps: BuildStepLine[] = [];
  requirements = 0;
  private readonly byPath: Map<string, RequirementEntry>;

  constructor(private readonly source: RequirementSource) {
    this.byPath = new Map(source.entries.map((e) => [e.path, e]));
  }

  private at(file: string, line: number): string {
    return `${this.source.folder}/${file} line ${line}`;
  }

  private refuse(file: string, line: number, text: string, why: string): never {
    throw new ConfigError(`${this.at(file, line)}: ${quoteLine(text)} ${why}`);
  }

  /**
   * The folder-relative real path `reference` names from the directory of `from`, following links
   * inside the folder; undefined when it leaves the folder.
   */
  resolve(from: string, reference: string): string | undefined {
    if (reference.startsWith("/") || reference.includes("\\") || URL_SCHEME.test(reference)) return undefined;
    let parts = [
      ...posix
        .dirname(from)
        .split("/")
        .filter((p) => p !== "" && p !== "."),
      ...reference.split("/"),
    ];
    const done: string[] = [];
    let links = 0;
    while (parts.length) {
      const [head, ...rest] = parts;
      parts = rest;
      if (head === undefined || head === "" || head === ".") continue;
      if (head === "..") {
        if (!done.length) return undefined;
        done.pop();
        continue;
      }
      done.push(head);
      const entry = this.byPath.get(done.join("/"));
      if (entry?.kind === "symlink") {
        if (++links > MAX_LINKS) return undefined;
        const target = entry.target ?? "";
        if (target.startsWith("/")) return undefined;
        done.pop();
        parts = [...target.split("/"), ...parts];
      }
    }
    return done.join("/");
  }

  /** Whether a folder-relative path is a directory of the folder (some entry lies under it) or a file. */
  private exists(path: string): boolean {
    if (path === "") return true;
    if (this.byPath.has(path)) return true;
    const prefix = `${path}/`;
    return this.source.entries.some((e) => e.path.startsWith(prefix));
  }

  async parse(file: string, stack: readonly string[]): Promise<void> {
    if (this.files.has(file)) return;
    if (this.files.size >= MAX_FILES) {
      throw new ConfigError(
        `${this.source.folder}/${file}: more than ${MAX_FILES} requirement files are included; merge them`,
      );
    }
    const data = await this.source.read(file);
    if (data.length > MAX_FILE_BYTES) {
      throw new ConfigError(
        `${this.source.folder}/${file} is ${data.length} bytes, over the ${MAX_FILE_BYTES} bytes a requirement file may have`,
      );
    }
    this.files.set(file, "");
    const out: string[] = [];
    for (const [number, raw] of logicalLines(data.toString("utf8").replace(/^\uFEFF/, ""))) {
      const text = raw.replace(/(^|\s+)#.*$/, "").trim();
      if (text === "") continue;
      const canonical = await this.line(file, number, raw.trim(), text, stack);
      if (canonical !== undefined) out.push(canonical);
    }
    this.files.set(file, out.length ? `${out.join("\n")}\n` : "");
  }

  private async line(
    file: string,
    number: number,
    shown: string,
    text: string,
    stack: readonly string[],
  ): Promise<string | undefined> {
    // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
    if (/[\x00-\x08\x0b-\x1f\x7f]/.test(text)) this.refuse(file, number, shown, "contains control characters");
    if (/\$(\{|[A-Za-z_])/.test(text)) {
      this.refuse(
        file,
        number,
        shown,
        // biome-ignore lint/suspicious/noTemplateCurlyInString: the message names pip's syntax
        "uses a variable ($VAR or ${VAR}), which pip would expand from the build's environment; write the value itself",
      );
    }
    const tokens = text.split(/\s+/);
    const first = tokens.findIndex((t) => t.startsWith("-"));
    const args = first < 0 ? tokens : tokens.slice(0, first);
    const options = first < 0 ? [] : tokens.slice(first);
    const parsed = this.options(file, number, shown, options);
    if (args.length === 0) return this.globalOption(file, number, shown, parsed, stack);
    const requirement = args.join(" ");
    const hashes: string[] = [];
    for (const [name, value] of parsed) {
      if (name !== "--hash") {
        this.refuse(file, number, shown, `combines a requirement with ${name}; only --hash= may follow a requirement`);
      }
      if (!HASH.test(value)) {
        this.refuse(file, number, shown, "has a --hash that is not sha256:, sha384: or sha512: and hex digits");
      }
      hashes.push(`--hash=${value.toLowerCase()}`);
    }
    const canonical = this.requirement(file, number, shown, requirement);
    this.requirements++;
    return [canonical, ...hashes].join(" ");
  }

  /** The options of a line as name/value pairs (flags have the value ""). */
  private options(file: string, number: number, shown: string, tokens: readonly string[]): [string, string][] {
    const out: [string, string][] = [];
    for (let i = 0; i < tokens.length; i++) {
      const token = tokens[i] ?? "";
      if (!token.startsWith("-")) this.refuse(file, number, shown, `has ${quoteLine(token)} where an option belongs`);
      let name = token;
      let value: string | undefined;
      const eq = token.indexOf("=");
      if (token.startsWith("--") && eq > 0) {
        name = token.slice(0, eq);
        value = token.slice(eq + 1);
      } else if (!token.startsWith("--") && token.length > 2) {
        name = token.slice(0, 2);
        value = token.slice(2).replace(/^=/, "");
      }
      const source = SOURCE_OPTIONS.get(name);
      if (source !== undefined) {
        this.refuse(
          file,
          number,
          shown,
          `uses ${source}, which changes where packages come from; indexes come only from layer-sync's settings (BUILD_PIP_INDEX_URL), so remove the line`,
        );
      }
      if (WITH_VALUE.has(name)) {
        if (value === undefined) {
          value = tokens[++i];
          if (value === undefined) this.refuse(file, number, shown, `has ${name} without a value`);
        }
      } else if (value !== undefined) {
        this.refuse(file, number, shown, `has the option ${quoteLine(name)} with a value it does not take`);
      }
      out.push([name, value ?? ""]);
    }
    return out;
  }

  private async globalOption(
    file: string,
    number: number,
    shown: string,
    options: readonly [string, string][],
    stack: readonly string[],
  ): Promise<string | undefined> {
    const [option, ...more] = options;
    if (option === undefined) return undefined;
    if (more.length) this.refuse(file, number, shown, "has more than one option; give each on its own line");
    const [name, value] = option;
    switch (name) {
      case "--require-hashes":
      case "--prefer-binary":
      case "--pre":
        return name;
      case "--only-binary":
      case "--no-binary":
        if (!BINARY_VALUE.test(value)) {
          this.refuse(file, number, shown, `has ${name} with a value that is not :all:, :none: or package names`);
        }
        if (name === "--no-binary" && value !== ":none:") {
          this.buildSteps.push({ file, line: number, quoted: quoteLine(shown), why: "--no-binary (source builds)" });
        }
        return `${name}=${value}`;
      case "-r":
      case "--requirement":
      case "-c":
      case "--constraint": {
        const flag = name === "-r" || name === "--requirement" ? "-r" : "-c";
        const target = this.resolve(file, value);
        if (target === undefined) {
          this.refuse(
            file,
            number,
            shown,
            `reads a file outside the folder; ${flag} may only name a file of the folder, by a relative path`,
          );
        }
        const entry = this.byPath.get(target);
        if (entry === undefined || entry.kind === "symlink") {
          this.refuse(file, number, shown, `names a file the folder does not have (${quoteLine(target)})`);
        }
        if (stack.includes(target) || target === file) this.refuse(file, number, shown, "includes itself");
        if (stack.length >= MAX_DEPTH) {
          this.refuse(file, number, shown, `nests requirement files deeper than ${MAX_DEPTH} levels`);
        }
        await this.parse(target, [...stack, file]);
        return `${flag} ${relativeFrom(file, target)}`;
      }
      case "-e":
      case "--editable": {
        this.requirement(file, number, shown, value, "an editable requirement (-e)");
        this.requirements++;
        return `-e ${value}`;
      }
      default:
        return this.refuse(
          file,
          number,
          shown,
          `uses the option ${quoteLine(name)}, which layer-sync does not accept in a requirement file (accepted: --require-hashes, --only-binary, --prefer-binary, --pre, --no-binary, -r, -c, -e, --hash)`,
        );
    }
  }

  /** Check one requirement; returns its canonical text. `forced` marks it as needing a build step whatever it is. */
  private requirement(file: string, number: number, shown: string, text: string, forced?: string): string {
    const semi = markerSplit(text);
    const body = semi.body.trim();
    const marker = semi.marker === undefined ? undefined : checkMarker(semi.marker);
    if (marker === null) this.refuse(file, number, shown, "has an environment marker that is not PEP 508");
    const tail = marker === undefined ? "" : `; ${marker}`;
    const step = (why: string, canonical: string): string => {
      this.buildSteps.push({ file, line: number, quoted: quoteLine(shown), why: forced ?? why });
      return `${canonical}${tail}`;
    };
    const named = URL_REQUIREMENT.exec(body);
    if (named) {
      const url = named[3] ?? "";
      this.checkLocation(file, number, shown, url);
      return step(VCS.test(url) ? "a VCS requirement" : "a URL requirement", `${named[1]}${named[2] ?? ""} @ ${url}`);
    }
    const spec = SPECIFIER.exec(body);
    if (spec && !ARCHIVE.test(body)) {
      if (forced) {
        this.refuse(file, number, shown, "is an editable requirement of a package name; -e takes a path or a VCS URL");
      }
      const extras = (spec[2] ?? "").replace(/\s+/g, "");
      const versions = (spec[3] ?? "").replace(/[\s()]/g, "");
      return `${spec[1]}${extras}${versions}${tail}`;
    }
    if (/\s/.test(body)) this.refuse(file, number, shown, "is not a PEP 508 requirement");
    this.checkLocation(file, number, shown, body);
    if (VCS.test(body)) return step("a VCS requirement", body);
    if (URL_SCHEME.test(body)) return step("a URL requirement", body);
    if (body.includes("/") || body.startsWith(".") || ARCHIVE.test(body)) {
      const target = this.resolve("", body) ?? "";
      if (!this.exists(target)) {
        this.refuse(file, number, shown, `names a path the folder does not have (${quoteLine(target)})`);
      }
      return step("a local path", `./${target}`.replace(/\/$/, ""));
    }
    return this.refuse(file, number, shown, "is not a PEP 508 requirement");
  }

  /** Refuse `file:` URLs and local paths that leave the folder. */
  private checkLocation(file: string, number: number, shown: string, location: string): void {
    if (/^file:/i.test(location)) {
      this.refuse(
        file,
        number,
        shown,
        "names a file: URL, a path on the build machine; name a path inside the folder (./pkg) instead",
      );
    }
    if (URL_SCHEME.test(location)) return;
    if (this.resolve("", location) === undefined) {
      this.refuse(file, number, shown, "names a path outside the folder; a requirement may only name a path inside it");
    }
  }
}

/** The target of `target` as written in `from` (relative to its directory). */
function relativeFrom(from: string, target: string): string {
  const rel = posix.relative(posix.dirname(from), target);
  return rel.startsWith(".") ? rel : `./${rel}`;
}

/** The root requirement file of a Python build folder. */
export const ROOT_REQUIREMENTS = "requirements.txt";

/**
 * Parse a folder's `requirements.txt` (and the files it includes) by the rules above. Throws
 * `ConfigError` naming the first refused line.
 */
export async function sanitizeRequirements(
  source: RequirementSource,
  root: string = ROOT_REQUIREMENTS,
): Promise<SanitizedRequirements> {
  const reader = new Reader(source);
  const entry = source.entries.find((e) => e.path === root);
  if (entry === undefined) throw new ConfigError(`${source.folder} has no ${root}`);
  const real = entry.kind === "symlink" ? reader.resolve("", root) : root;
  const file = real === undefined ? undefined : source.entries.find((e) => e.path === real);
  if (real === undefined || file === undefined || file.kind === "symlink") {
    throw new ConfigError(`${source.folder}/${root} is a link that does not name a file of the folder`);
  }
  await reader.parse(real, []);
  const files = new Map<string, string>();
  // the root's sanitized text goes to the root's own path, whatever the link named
  files.set(root, reader.files.get(real) ?? "");
  for (const [path, text] of reader.files) if (path !== real) files.set(path, text);
  return { files, buildSteps: reader.buildSteps, requirements: reader.requirements };
}

/** `BuildError` for the local builder when a line needs a build step (the first one is named). */
export function refuseBuildSteps(sanitized: SanitizedRequirements, folder: string, where: string): void {
  const [first, ...more] = sanitized.buildSteps;
  if (first === undefined) return;
  throw new BuildError(
    `${folder}/${first.file} line ${first.line}: ${first.quoted} is ${first.why}, which needs a build step; the local builder never runs package or folder code on this machine (${where}): use --builder docker, or let CodeBuild build it${more.length ? ` (${more.length} more such line(s))` : ""}`,
  );
}
