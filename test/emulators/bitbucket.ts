/**
 * A Bitbucket Cloud emulator over loopback, built to the public documentation summarised in
 * shared/docs/source-apis.md (Part A and Part D). Three origins:
 * - `apiUrl`   stands for https://api.bitbucket.org/2.0 (repositories, refs, commit, src);
 * - `webUrl`   stands for https://bitbucket.org (archive downloads `/{ws}/{repo}/get/{ref}.tar.gz`, login page);
 * - `mediaUrl` stands for Atlassian's media platform, where LFS downloads are redirected.
 */
import { createHash } from "node:crypto";
import { type FixtureCommit, type FixtureEntry, type FixtureRepo, lfsPointer, sha256 } from "../fixtures/repo.ts";
import { applyFields, BbqlError, matchesBbql, paginate, paginateUpTo, parseBbql, sortBy } from "./bitbucket-query.ts";
import {
  decodeBasic,
  type EmulatorControls,
  type EmulatorRequest,
  type EmulatorResponse,
  encodePath,
  json,
  parseAuthorization,
  randomToken,
  redirect,
  segmentsOf,
  startHosts,
} from "./server.ts";

export interface BitbucketEmulatorOptions {
  repos: FixtureRepo[];
  /** Repository/project/workspace access tokens and OAuth tokens, valid as `Authorization: Bearer`. */
  accessTokens?: string[];
  /** Atlassian API tokens, valid only as Basic `email:token`. */
  apiTokens?: { email: string; token: string }[];
  /** Bearer tokens that authenticate but lack the repository read scope: repository calls answer 403. */
  scopelessTokens?: string[];
  /** Allow anonymous access (default false: 401 without credentials). */
  publicRepos?: boolean;
  latencyMs?: number;
  /** `max_depth` above this answers 555 (default 50). */
  maxDepthLimit?: number;
  /** How `bitbucket.org/…/get/…` behaves (default "ok"). */
  archiveMode?: "ok" | "login-redirect" | "forbidden";
  /** After this many API or archive requests, answer 429. */
  rateLimitAfter?: number;
  /** Send `Retry-After` with 429s (Bitbucket documents none). */
  retryAfterSeconds?: number;
  /** Size listed for LFS files: the LFS object (default) or the pointer stored in git (unverified upstream). */
  lfsSize?: "object" | "pointer";
}

export interface BitbucketEmulator extends EmulatorControls {
  /** `http://127.0.0.1:P/2.0` */
  apiUrl: string;
  /** A second origin standing for https://bitbucket.org */
  webUrl: string;
  /** A third origin standing for the LFS media platform */
  mediaUrl: string;
  repos: FixtureRepo[];
}

const NO_ACCESS =
  "You may not have access to this repository or it no longer exists in this workspace. If you think this repository exists and you have access, make sure you are authenticated.";
const TOKEN_INVALID = "Token is invalid, expired, or not supported for this endpoint.";
const RATE_LIMITED = "Rate limit for this resource has been exceeded.";
const DEFAULT_RATE_LIMIT = 1000;

type Caller = "anonymous" | "access-token" | "api-token" | "scopeless";

/** A Bitbucket error body: `{"type":"error","error":{"message", "detail"?}}`. */
export function bitbucketError(
  status: number,
  message: string,
  detail?: unknown,
  headers: Record<string, string> = {},
): EmulatorResponse {
  const error = detail === undefined ? { message } : { message, detail };
  return json(status, { type: "error", error }, headers);
}

const html = (status: number, body: string, headers: Record<string, string> = {}): EmulatorResponse => ({
  status,
  headers: { "content-type": "text/html; charset=utf-8", ...headers },
  body: `<!DOCTYPE html><html><head><title>Bitbucket</title></head><body>${body}</body></html>`,
});

// ---------------------------------------------------------------- entry shapes

const MIME_TYPES: Record<string, string> = {
  py: "text/x-python",
  txt: "text/plain",
  md: "text/markdown",
  json: "application/json",
  sh: "application/x-sh",
  bin: "application/octet-stream",
  js: "text/javascript",
  ts: "text/vnd.trolltech.linguist",
  html: "text/html",
  css: "text/css",
  xml: "application/xml",
  yml: "application/x-yaml",
  yaml: "application/x-yaml",
  zip: "application/zip",
  gz: "application/gzip",
  tar: "application/x-tar",
  png: "image/png",
  jpg: "image/jpeg",
  gif: "image/gif",
  svg: "image/svg+xml",
  pdf: "application/pdf",
  csv: "text/csv",
};

/** The mimetype Bitbucket guesses from a path's extension, or null. */
export function mimetypeOf(path: string): string | null {
  const name = path.slice(path.lastIndexOf("/") + 1);
  const dot = name.lastIndexOf(".");
  if (dot <= 0) return null;
  return MIME_TYPES[name.slice(dot + 1).toLowerCase()] ?? null;
}

const C_ESCAPES: Record<number, string> = { 7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r" };

/** A path as git prints it in a diff: C-quoted with octal bytes when it holds non-ASCII or special bytes. */
export function escapedPath(path: string): string {
  let quoted = false;
  let out = "";
  for (const b of Buffer.from(path, "utf8")) {
    if (b === 0x22 || b === 0x5c) {
      out += `\\${String.fromCharCode(b)}`;
      quoted = true;
    } else if (b < 0x20 || b >= 0x7f) {
      out += C_ESCAPES[b] ?? `\\${b.toString(8).padStart(3, "0")}`;
      quoted = true;
    } else {
      out += String.fromCharCode(b);
    }
  }
  return quoted ? `"${out}"` : path;
}

/** git's heuristic: a NUL byte in the first 8000 bytes makes a file binary. */
const looksBinary = (content: Buffer) => content.subarray(0, 8000).includes(0);

/** The `attributes` array Bitbucket lists for an entry. */
/** diffstat's page lengths (its documented example pages at 500). */
const DIFFSTAT_DEFAULT_PAGELEN = 500;
const DIFFSTAT_MAX_PAGELEN = 500;

export function attributesOf(entry: FixtureEntry): string[] {
  switch (entry.kind) {
    case "symlink":
      return ["link"];
    case "submodule":
      return ["subrepository"];
    case "lfs":
      return ["binary", "lfs"];
    case "executable":
      return looksBinary(entry.content) ? ["executable", "binary"] : ["executable"];
    default:
      return looksBinary(entry.content) ? ["binary"] : [];
  }
}

const bitbucketDate = (iso: string) => iso.replace(/Z$/, "+00:00");

function uuidFrom(seed: string): string {
  const h = createHash("sha1").update(seed).digest("hex");
  return `{${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}}`;
}

// ---------------------------------------------------------------- the emulator

interface Located {
  repo: FixtureRepo;
  ws: string;
  slug: string;
}

class BitbucketModel {
  apiOrigin = "";
  webOrigin = "";
  mediaOrigin = "";
  private metered = 0;
  private readonly mediaTokens = new Set<string>();

  constructor(private readonly options: BitbucketEmulatorOptions) {}

  // ------------------------------------------------ auth and limits

  private authenticate(header: string | undefined): Caller | undefined {
    const auth = parseAuthorization(header);
    if (!auth) return "anonymous";
    if (auth.scheme === "bearer") {
      if (this.options.accessTokens?.includes(auth.credentials)) return "access-token";
      if (this.options.scopelessTokens?.includes(auth.credentials)) return "scopeless";
      return undefined;
    }
    if (auth.scheme === "basic") {
      const basic = decodeBasic(auth.credentials);
      const ok = this.options.apiTokens?.some((t) => t.email === basic?.user && t.token === basic?.password);
      return ok ? "api-token" : undefined;
    }
    return undefined;
  }

  /** Count a metered request; the response to send instead when the limit is exhausted. */
  private meter(caller: Caller): { headers: Record<string, string>; limited?: EmulatorResponse } {
    const limit = this.options.rateLimitAfter;
    const exhausted = limit !== undefined && this.metered >= limit;
    if (!exhausted) this.metered += 1;
    const headers = caller === "access-token" ? this.rateLimitHeaders(limit ?? DEFAULT_RATE_LIMIT) : {};
    if (!exhausted) return { headers };
    const retry = this.options.retryAfterSeconds;
    const extra = retry === undefined ? headers : { ...headers, "Retry-After": String(retry) };
    return { headers, limited: bitbucketError(429, RATE_LIMITED, undefined, extra) };
  }

  /** The scaled-rate-limit headers access tokens get; NearLimit once less than 20% of the budget is left. */
  private rateLimitHeaders(budget: number): Record<string, string> {
    return {
      "X-RateLimit-Limit": String(budget),
      "X-RateLimit-Resource": "api",
      "X-RateLimit-NearLimit": String(budget - this.metered < budget * 0.2),
    };
  }

  private locate(ws: string, slug: string): Located | undefined {
    const w = ws.toLowerCase();
    const s = slug.toLowerCase();
    const repo = this.options.repos.find(
      (r) =>
        (r.owner.toLowerCase() === w || uuidFrom(`ws:${r.owner}`) === w) &&
        (r.name.toLowerCase() === s || uuidFrom(`repo:${r.fullName}`) === s),
    );
    return repo ? { repo, ws: repo.owner, slug: repo.name } : undefined;
  }

  // ------------------------------------------------ API host

  async handleApi(req: EmulatorRequest): Promise<EmulatorResponse> {
    const caller = this.authenticate(req.headers.authorization);
    if (caller === undefined) return bitbucketError(401, TOKEN_INVALID);
    const { headers, limited } = this.meter(caller);
    if (limited) return limited;
    const response = this.routeApi(req, caller);
    return { ...response, headers: { ...headers, ...response.headers } };
  }

  private routeApi(req: EmulatorRequest, caller: Caller): EmulatorResponse {
    if (req.method !== "GET" && req.method !== "HEAD") return bitbucketError(405, "Method not allowed");
    const segs = segmentsOf(req.path);
    if (segs?.[0] !== "2.0" || segs[1] !== "repositories" || segs.length < 4) {
      return bitbucketError(404, "Resource not found");
    }
    const [ws, slug, ...rest] = segs.slice(2) as [string, string, ...string[]];
    const located = this.locate(ws, slug);
    if (!located) return bitbucketError(404, NO_ACCESS);
    if (caller === "anonymous" && !this.options.publicRepos) return bitbucketError(401, NO_ACCESS);
    if (caller === "scopeless") {
      return bitbucketError(403, "Your credentials lack one or more required privilege scopes.", {
        granted: ["account"],
        required: ["repository"],
      });
    }
    return this.routeRepo(req, located, rest);
  }

  private routeRepo(req: EmulatorRequest, at: Located, rest: string[]): EmulatorResponse {
    const fields = req.url.searchParams.get("fields");
    const [head, second] = rest;
    if (rest.length === 0 || (rest.length === 1 && head === "")) {
      return json(200, applyFields(this.repositoryJson(at), fields));
    }
    if (head === "refs" && second === "branches") return this.branches(req, at, rest.slice(2));
    if (head === "refs" && second === "tags") return this.tag(req, at, rest.slice(2));
    if (head === "commit" && rest.length === 2) return this.commit(req, at, second ?? "");
    if (head === "commits" && rest.length === 2) return this.commits(req, at, second ?? "");
    if (head === "src") return this.src(req, at, rest.slice(1));
    if (head === "diffstat" && rest.length === 2) return this.diffstat(req, at, second ?? "");
    return bitbucketError(404, "Resource not found");
  }

  // ------------------------------------------------ JSON shapes

  private repoBase(at: Located): string {
    return `${this.apiOrigin}/2.0/repositories/${encodeURIComponent(at.ws)}/${encodeURIComponent(at.slug)}`;
  }

  private webBase(at: Located): string {
    return `${this.webOrigin}/${encodeURIComponent(at.ws)}/${encodeURIComponent(at.slug)}`;
  }

  private repositoryJson(at: Located): Record<string, unknown> {
    const { repo } = at;
    return {
      type: "repository",
      full_name: `${at.ws}/${at.slug}`,
      name: at.slug,
      slug: at.slug,
      uuid: uuidFrom(`repo:${repo.fullName}`),
      is_private: !this.options.publicRepos,
      scm: "git",
      description: "",
      language: "",
      has_issues: false,
      has_wiki: false,
      fork_policy: "no_public_forks",
      size: 0,
      created_on: "2026-11-01T10:00:00.000000+00:00",
      updated_on: bitbucketDate(repo.head().date),
      mainbranch: { type: "branch", name: repo.defaultBranch },
      owner: { type: "team", display_name: at.ws, uuid: uuidFrom(`ws:${at.ws}`), username: at.ws },
      workspace: { type: "workspace", slug: at.ws, name: at.ws, uuid: uuidFrom(`ws:${at.ws}`) },
      links: {
        self: { href: this.repoBase(at) },
        html: { href: this.webBase(at) },
        commits: { href: `${this.repoBase(at)}/commits` },
        clone: [{ name: "https", href: `${this.webBase(at)}.git` }],
      },
    };
  }

  private commitLinks(at: Located, hash: string) {
    return {
      self: { href: `${this.repoBase(at)}/commit/${hash}` },
      html: { href: `${this.webBase(at)}/commits/${hash}` },
    };
  }

  private commitJson(at: Located, commit: FixtureCommit): Record<string, unknown> {
    const base = `${this.repoBase(at)}`;
    return {
      type: "commit",
      hash: commit.sha,
      date: bitbucketDate(commit.date),
      author: { type: "author", raw: "Fixture Bot <fixture-bot@example.invalid>" },
      message: `${commit.message}\n`,
      summary: { raw: `${commit.message}\n`, markup: "markdown", html: `<p>${commit.message}</p>` },
      parents: commit.parent
        ? [{ type: "commit", hash: commit.parent, links: this.commitLinks(at, commit.parent) }]
        : [],
      repository: {
        type: "repository",
        name: at.slug,
        full_name: `${at.ws}/${at.slug}`,
        uuid: uuidFrom(`repo:${at.repo.fullName}`),
        links: { self: { href: base }, html: { href: this.webBase(at) } },
      },
      links: {
        ...this.commitLinks(at, commit.sha),
        diff: { href: `${base}/diff/${commit.sha}` },
        patch: { href: `${base}/patch/${commit.sha}` },
        comments: { href: `${base}/commit/${commit.sha}/comments` },
        statuses: { href: `${base}/commit/${commit.sha}/statuses` },
      },
    };
  }

  private refJson(at: Located, type: "branch" | "tag", name: string, commit: FixtureCommit): Record<string, unknown> {
    const kind = type === "branch" ? "branches" : "tags";
    const ref: Record<string, unknown> = {
      type,
      name,
      target: this.commitJson(at, commit),
      links: {
        self: { href: `${this.repoBase(at)}/refs/${kind}/${encodePath(name)}` },
        commits: { href: `${this.repoBase(at)}/commits/${encodePath(name)}` },
        html: { href: `${this.webBase(at)}/${type}/${encodePath(name)}` },
      },
    };
    if (type === "branch") {
      ref.merge_strategies = ["merge_commit", "squash", "fast_forward"];
      ref.default_merge_strategy = "merge_commit";
    }
    return ref;
  }

  private shortCommit(at: Located, hash: string) {
    return { type: "commit", hash, links: this.commitLinks(at, hash) };
  }

  private fileJson(at: Located, commit: FixtureCommit, entry: FixtureEntry): Record<string, unknown> {
    const src = `${this.repoBase(at)}/src/${commit.sha}/${encodePath(entry.path)}`;
    const stored =
      entry.kind === "lfs" && this.options.lfsSize === "pointer" ? lfsPointer(entry.content) : entry.content;
    return {
      type: "commit_file",
      path: entry.path,
      escaped_path: escapedPath(entry.path),
      size: entry.declaredSize ?? stored.length,
      mimetype: mimetypeOf(entry.path),
      attributes: attributesOf(entry),
      commit: this.shortCommit(at, commit.sha),
      links: {
        self: { href: src },
        meta: { href: `${src}?format=meta` },
        history: { href: `${this.repoBase(at)}/filehistory/${commit.sha}/${encodePath(entry.path)}` },
      },
    };
  }

  private directoryJson(at: Located, commit: FixtureCommit, path: string): Record<string, unknown> {
    const self = `${this.repoBase(at)}/src/${commit.sha}/${path === "" ? "" : `${encodePath(path)}/`}`;
    return {
      type: "commit_directory",
      path,
      commit: this.shortCommit(at, commit.sha),
      links: { self: { href: self }, meta: { href: `${self}?format=meta` } },
    };
  }

  // ------------------------------------------------ refs and commits

  private branches(req: EmulatorRequest, at: Located, nameSegs: string[]): EmulatorResponse {
    const fields = req.url.searchParams.get("fields");
    if (nameSegs.length === 0 || (nameSegs.length === 1 && nameSegs[0] === "")) {
      const all = [...at.repo.branches.entries()]
        .sort(([a], [b]) => a.localeCompare(b, "en", { numeric: true }))
        .map(([name, sha]) => this.refJson(at, "branch", name, at.repo.commits.get(sha) as FixtureCommit));
      return this.collection(req, all);
    }
    const name = nameSegs.join("/");
    const sha = at.repo.branches.get(name);
    const commit = sha ? at.repo.commits.get(sha) : undefined;
    if (!commit) return bitbucketError(404, `Branch "${name}" not found`);
    return json(200, applyFields(this.refJson(at, "branch", name, commit), fields));
  }

  private tag(req: EmulatorRequest, at: Located, nameSegs: string[]): EmulatorResponse {
    if (nameSegs.length === 0 || (nameSegs.length === 1 && nameSegs[0] === "")) {
      const all = [...at.repo.tags.entries()]
        .sort(([a], [b]) => a.localeCompare(b, "en", { numeric: true }))
        .map(([name, sha]) => this.refJson(at, "tag", name, at.repo.commits.get(sha) as FixtureCommit));
      return this.collection(req, all);
    }
    const name = nameSegs.join("/");
    const sha = at.repo.tags.get(name);
    const commit = sha ? at.repo.commits.get(sha) : undefined;
    if (!commit) return bitbucketError(404, `Tag "${name}" not found`);
    return json(200, applyFields(this.refJson(at, "tag", name, commit), req.url.searchParams.get("fields")));
  }

  private commit(req: EmulatorRequest, at: Located, ref: string): EmulatorResponse {
    const commit = ref.includes("/") ? undefined : at.repo.resolve(ref);
    if (!commit) return bitbucketError(404, `Commit not found`);
    return json(200, applyFields(this.commitJson(at, commit), req.url.searchParams.get("fields")));
  }

  /**
   * `commits/{revision}?exclude=…&path=…`: the log of `revision` without what `exclude` reaches, newest
   * first, limited to commits that changed something under `path` (a file, or a directory with a
   * trailing slash), as the Bitbucket docs describe.
   */
  private commits(req: EmulatorRequest, at: Located, rev: string): EmulatorResponse {
    const start = at.repo.resolve(decodeURIComponent(rev));
    if (!start) return bitbucketError(404, `Commit not found`);
    const reach = (sha: string | undefined): string[] => {
      const out: string[] = [];
      for (
        let c = sha ? at.repo.commits.get(sha) : undefined;
        c;
        c = c.parent ? at.repo.commits.get(c.parent) : undefined
      ) {
        out.push(c.sha);
      }
      return out;
    };
    const excluded = new Set(req.url.searchParams.getAll("exclude").flatMap((x) => reach(at.repo.resolve(x)?.sha)));
    const path = req.url.searchParams.get("path")?.replace(/\/+$/, "");
    const snapshot = (sha: string | undefined): string => {
      const c = sha ? at.repo.commits.get(sha) : undefined;
      if (!c || path === undefined) return "";
      const file = c.entries.get(path);
      if (file) return `${file.kind}:${file.content.toString("base64")}`;
      return at.repo.isDir(c, path) ? at.repo.treeSha(c.entries, path) : "";
    };
    const log = reach(start.sha)
      .filter((sha) => !excluded.has(sha))
      .filter((sha) => path === undefined || snapshot(sha) !== snapshot(at.repo.commits.get(sha)?.parent))
      .map((sha) => this.commitJson(at, at.repo.commits.get(sha) as FixtureCommit));
    return this.collection(req, log);
  }

  /**
   * `diffstat/{spec}`: one record per path that differs. `spec` is one commit (against its parent) or
   * `new..old`; with `topic=false` a plain two-dot diff of the two trees, otherwise (the default) a diff of
   * `new` against the merge base of the two (on the fixtures' linear histories: the older of them). Each
   * `path` (repeatable) limits the records to that path or what lies under it. Pages up to 500 records.
   */
  private diffstat(req: EmulatorRequest, at: Located, spec: string): EmulatorResponse {
    const [newRev, oldRev, ...more] = decodeURIComponent(spec).split("..");
    if (more.length || !newRev || oldRev === "") return bitbucketError(400, `Invalid revspec: ${spec}`);
    const to = at.repo.resolve(newRev);
    let from =
      oldRev === undefined ? (to?.parent ? at.repo.commits.get(to.parent) : undefined) : at.repo.resolve(oldRev);
    if (!to || (oldRev !== undefined && !from)) return bitbucketError(404, "Commit not found");
    const params = req.url.searchParams;
    if (params.has("topic") && params.has("merge")) return bitbucketError(400, "merge and topic cannot be both used");
    const topic = params.get("topic") ?? params.get("merge");
    if (oldRev !== undefined && topic !== "false" && from) {
      // merge base on a linear history: whichever of the two the other reaches
      const reaches = (a: FixtureCommit, b: string) => {
        for (let c: FixtureCommit | undefined = a; c; c = c.parent ? at.repo.commits.get(c.parent) : undefined) {
          if (c.sha === b) return true;
        }
        return false;
      };
      if (!reaches(to, from.sha)) from = reaches(from, to.sha) ? to : undefined;
    }
    const filters = params.getAll("path").map((p) => p.replace(/\/+$/, ""));
    const selected = (path: string) =>
      filters.length === 0 || filters.some((f) => path === f || path.startsWith(`${f}/`));
    const before = from?.entries ?? new Map<string, FixtureEntry>();
    const paths = [...new Set([...before.keys(), ...to.entries.keys()])].filter(selected).sort();
    const side = (commit: FixtureCommit, e: FixtureEntry | undefined) =>
      e
        ? {
            path: e.path,
            escaped_path: e.path,
            type: "commit_file",
            links: { self: { href: `${this.repoBase(at)}/src/${commit.sha}/${encodePath(e.path)}` } },
          }
        : null;
    const values: Record<string, unknown>[] = [];
    for (const path of paths) {
      const a = before.get(path);
      const b = to.entries.get(path);
      if (a && b && a.kind === b.kind && a.content.equals(b.content)) continue;
      const lines = (e: FixtureEntry | undefined) => (e ? e.content.toString("latin1").split("\n").length : 0);
      values.push({
        type: "diffstat",
        status: !a ? "added" : !b ? "removed" : "modified",
        lines_added: lines(b),
        lines_removed: lines(a),
        old: from ? side(from, a) : null,
        new: side(to, b),
      });
    }
    const pagelen = params.get("pagelen");
    if (pagelen !== null && !/^\d+$/.test(pagelen)) return bitbucketError(400, "Invalid pagelen");
    const size = Math.min(DIFFSTAT_MAX_PAGELEN, Math.max(1, Number(pagelen ?? DIFFSTAT_DEFAULT_PAGELEN)));
    const url = new URL(req.url.href);
    url.searchParams.set("pagelen", String(size));
    const page = paginateUpTo(values, url, size);
    if (!page.ok) return bitbucketError(400, page.message);
    return json(200, applyFields(page.page, params.get("fields")));
  }

  /** Filter (`q`), sort, paginate and project (`fields`) a collection. */
  private collection(req: EmulatorRequest, values: Record<string, unknown>[]): EmulatorResponse {
    const params = req.url.searchParams;
    let selected = values;
    const q = params.get("q");
    if (q) {
      try {
        const expr = parseBbql(q);
        selected = selected.filter((v) => matchesBbql(expr, v));
      } catch (error) {
        if (error instanceof BbqlError) return bitbucketError(400, `Invalid query: ${error.message}`, q);
        throw error;
      }
    }
    const page = paginate(sortBy(selected, params.get("sort")), req.url);
    if (!page.ok) return bitbucketError(400, page.message);
    return json(200, applyFields(page.page, params.get("fields")));
  }

  // ------------------------------------------------ src

  private src(req: EmulatorRequest, at: Located, rest: string[]): EmulatorResponse {
    const [ref, ...pathSegs] = rest;
    if (ref === undefined || (ref === "" && pathSegs.length === 0)) {
      const head = at.repo.head();
      return redirect(302, `${this.repoBase(at)}/src/${head.sha}/${req.url.search}`);
    }
    // `{commit}` is one raw segment: `feature/x` splits into two, `feature%2Fx` decodes to a slash. Neither works.
    const commit = ref.includes("/") ? undefined : at.repo.resolve(ref);
    if (!commit) return bitbucketError(404, "Commit not found");
    if (pathSegs.length === 0) return bitbucketError(404, "Resource not found");
    const trailingSlash = pathSegs[pathSegs.length - 1] === "";
    const path = (trailingSlash ? pathSegs.slice(0, -1) : pathSegs).join("/");
    const params = req.url.searchParams;
    const format = params.get("format");
    if (format !== null && format !== "meta") return bitbucketError(400, `Unsupported format: ${format}`);
    if (at.repo.isDir(commit, path) && !commit.entries.has(path)) {
      if (format === "meta") return json(200, applyFields(this.directoryJson(at, commit, path), params.get("fields")));
      return this.listing(req, at, commit, path);
    }
    const entry = commit.entries.get(path);
    if (!entry || trailingSlash) return bitbucketError(404, `No such file or directory: ${path}`);
    if (format === "meta") return json(200, applyFields(this.fileJson(at, commit, entry), params.get("fields")));
    return this.raw(req, entry);
  }

  private listing(req: EmulatorRequest, at: Located, commit: FixtureCommit, dir: string): EmulatorResponse {
    const rawDepth = req.url.searchParams.get("max_depth");
    const depth = rawDepth === null ? 1 : Number(rawDepth);
    if (!Number.isInteger(depth) || depth < 1) return bitbucketError(400, `Invalid max_depth: ${rawDepth}`);
    if (depth > (this.options.maxDepthLimit ?? 50)) {
      return bitbucketError(555, "The request timed out; the specified recursion depth may be too large.");
    }
    return this.collection(req, this.walk(at, commit, dir, depth));
  }

  /** Breadth-first listing down to `depth` levels: every file and directory as a Bitbucket entry. */
  private walk(at: Located, commit: FixtureCommit, dir: string, depth: number): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    let level = [dir];
    for (let d = 1; d <= depth && level.length > 0; d++) {
      const next: string[] = [];
      for (const parent of level) {
        for (const child of at.repo.children(commit, parent)) {
          const path = parent === "" ? child.name : `${parent}/${child.name}`;
          if (child.type === "tree") {
            out.push(this.directoryJson(at, commit, path));
            next.push(path);
          } else {
            out.push(this.fileJson(at, commit, commit.entries.get(path) as FixtureEntry));
          }
        }
      }
      level = next;
    }
    return out;
  }

  private raw(req: EmulatorRequest, entry: FixtureEntry): EmulatorResponse {
    if (entry.kind === "lfs") {
      const token = randomToken();
      this.mediaTokens.add(token);
      const name = encodeURIComponent(entry.path.slice(entry.path.lastIndexOf("/") + 1));
      return redirect(301, `${this.mediaOrigin}/file/${sha256(entry.content)}/binary?token=${token}&name=${name}`);
    }
    const attributes = attributesOf(entry).join(",");
    const etag = `"${createHash("sha1").update(attributes).update("\0").update(entry.content).digest("hex").slice(0, 12)}"`;
    const headers = {
      "content-type": mimetypeOf(entry.path) ?? "application/octet-stream",
      "content-disposition": "attachment",
      etag,
    };
    if (req.headers["if-none-match"] === etag) return { status: 304, headers, body: "" };
    return { status: 200, headers, body: entry.content };
  }

  // ------------------------------------------------ web host (bitbucket.org)

  async handleWeb(req: EmulatorRequest): Promise<EmulatorResponse> {
    const segs = segmentsOf(req.path) ?? [];
    if (segs[0] === "account" && segs[1] === "signin") {
      return html(200, `<form action="/account/signin/" method="post"><h1>Log in to continue</h1></form>`);
    }
    const file = segs[3];
    if (segs.length !== 4 || segs[2] !== "get" || !file?.endsWith(".tar.gz")) return html(404, "<h1>Not found</h1>");
    const caller = this.authenticate(req.headers.authorization);
    const login = redirect(302, `${this.webOrigin}/account/signin/?next=${encodeURIComponent(req.path)}`);
    if (this.options.archiveMode === "login-redirect") return login;
    if (this.options.archiveMode === "forbidden") return html(403, "<h1>Forbidden</h1>");
    const authorized = caller === "access-token" || caller === "api-token";
    if (!authorized && !(caller === "anonymous" && this.options.publicRepos)) return login;
    const { headers, limited } = this.meter(caller ?? "anonymous");
    if (limited) return limited;
    const response = await this.archive(segs[0] ?? "", segs[1] ?? "", file.slice(0, -".tar.gz".length));
    return { ...response, headers: { ...headers, ...response.headers } };
  }

  private readonly tarballs = new Map<string, Promise<Buffer>>();

  private async archive(ws: string, slug: string, ref: string): Promise<EmulatorResponse> {
    const at = this.locate(ws, slug);
    const commit = at && !ref.includes("/") ? at.repo.resolve(ref) : undefined;
    if (!at || !commit) return html(404, "<h1>Not found</h1>");
    const root = `${at.ws}-${at.slug}-${commit.sha.slice(0, 12)}`;
    const key = `${at.repo.fullName}@${commit.sha}`;
    let tarball = this.tarballs.get(key);
    if (!tarball) {
      tarball = at.repo.tarball(commit.sha, root);
      this.tarballs.set(key, tarball);
    }
    return {
      status: 200,
      headers: { "content-type": "application/x-gzip", "content-disposition": `attachment; filename="${root}.tar.gz"` },
      body: await tarball,
    };
  }

  // ------------------------------------------------ media host (LFS)

  handleMedia(req: EmulatorRequest): EmulatorResponse {
    if (req.headers.authorization !== undefined) {
      return json(401, { error: { code: "Unauthorized", title: "Authorization header not accepted for this URL" } });
    }
    const segs = segmentsOf(req.path) ?? [];
    const token = req.url.searchParams.get("token");
    if (segs[0] !== "file" || segs[2] !== "binary" || token === null || !this.mediaTokens.has(token)) {
      return json(403, { error: { code: "Forbidden", title: "Missing or invalid token" } });
    }
    const content = this.lfsObject(segs[1] ?? "");
    if (!content) return json(404, { error: { code: "NotFound", title: "File not found" } });
    return { status: 200, headers: { "content-type": "application/octet-stream" }, body: content };
  }

  private lfsObject(oid: string): Buffer | undefined {
    for (const repo of this.options.repos) {
      for (const commit of repo.commits.values()) {
        for (const entry of commit.entries.values()) {
          if (entry.kind === "lfs" && sha256(entry.content) === oid) return entry.content;
        }
      }
    }
    return undefined;
  }
}

/** Start the three Bitbucket origins over loopback. */
export async function startBitbucketEmulator(options: BitbucketEmulatorOptions): Promise<BitbucketEmulator> {
  const model = new BitbucketModel(options);
  const hosts = await startHosts(
    {
      api: (req) => model.handleApi(req),
      web: (req) => model.handleWeb(req),
      media: (req) => model.handleMedia(req),
    },
    { latencyMs: options.latencyMs },
  );
  model.apiOrigin = hosts.origins.api;
  model.webOrigin = hosts.origins.web;
  model.mediaOrigin = hosts.origins.media;
  return {
    apiUrl: `${hosts.origins.api}/2.0`,
    webUrl: hosts.origins.web,
    mediaUrl: hosts.origins.media,
    repos: options.repos,
    requests: hosts.requests,
    resetRequests: hosts.resetRequests,
    inject: hosts.inject,
    clearFaults: hosts.clearFaults,
    close: hosts.close,
  };
}
