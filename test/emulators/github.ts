/**
 * A GitHub REST API emulator over loopback, built to the public documentation summarised in
 * shared/docs/source-apis.md (Part B and Part D). Three origins:
 * - `apiUrl`      stands for https://api.github.com (or `{host}/api/v3` on GitHub Enterprise Server with
 *                 `pathPrefix: "/api/v3"`); `html_url`s point at the same origin's root and answer 404;
 * - `codeloadUrl` stands for https://codeload.github.com (archive downloads behind a 302);
 * - `mediaUrl`    stands for raw.githubusercontent.com (`/{o}/{r}/{ref}/{path}`) and
 *                 media.githubusercontent.com (`/media/{o}/{r}/{ref}/{path}`, the LFS objects).
 */
import { createHash } from "node:crypto";
import { posix } from "node:path";
import {
  blobSha,
  type FixtureCommit,
  type FixtureEntry,
  type FixtureRepo,
  storedBlob,
  type TreeItem,
} from "../fixtures/repo.ts";
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

export interface GitHubEmulatorOptions {
  repos: FixtureRepo[];
  /** Valid tokens, sent as `Bearer`, `token` or as the Basic password. */
  tokens?: string[];
  /** Allow anonymous access (default false: private repositories answer 404 without a token). */
  publicRepos?: boolean;
  latencyMs?: number;
  /** Recursive trees with more entries than this come back partial with `truncated: true`. */
  truncateTreesOver?: number;
  /**
   * Directory (repository path) → how many of its own entries any tree returns: its tree, even without
   * recursion, comes back partial with `truncated: true`, and so does every recursive tree that holds it.
   */
  truncateDirectoryTrees?: Record<string, number>;
  /** "/api/v3" emulates GitHub Enterprise Server. */
  pathPrefix?: string;
  /** The primary budget of every caller; when `remaining` reaches 0, requests answer 403 (or `status`). */
  rateLimit?: { limit: number; remaining: number; resetEpochSeconds?: number; status?: 403 | 429 };
  /** Old `owner/name` → current `owner/name`: the old name answers 301 to `/repositories/{id}`. */
  renamedRepos?: Record<string, string>;
  /** The clock (ms) used for rate-limit resets and codeload token expiry. */
  now?: () => number;
}

export interface GitHubEmulator extends EmulatorControls {
  apiUrl: string;
  codeloadUrl: string;
  mediaUrl: string;
  repos: FixtureRepo[];
  /** The next `times` API requests answer a secondary rate limit (403 by default), with `retry-after` if given. */
  secondaryRateLimit(times: number, retryAfterSeconds?: number, status?: 403 | 429): void;
}

const DOCS = "https://docs.github.com/rest";
const API_VERSIONS = ["2022-11-28", "2026-03-10"];
const CONTENTS_CAP = 1000;
const CONTENTS_JSON_MAX = 1024 * 1024;
const CODELOAD_TOKEN_TTL_MS = 5 * 60 * 1000;
const NO_USER_AGENT =
  "Request forbidden by administrative rules. Please make sure your request has a User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required). Check https://developer.github.com for other possible causes.\n";
const SECONDARY =
  "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID";

/** A GitHub error body: `{message, documentation_url, status}` (status as a string, as recent responses do). */
export function gitHubError(
  status: number,
  message: string,
  documentationUrl = DOCS,
  headers: Record<string, string> = {},
): EmulatorResponse {
  return json(status, { message, documentation_url: documentationUrl, status: String(status) }, headers);
}

const notFound = (doc = DOCS) => gitHubError(404, "Not Found", doc);
const text = (status: number, body: string): EmulatorResponse => ({
  status,
  headers: { "content-type": "text/plain; charset=utf-8" },
  body,
});

/** base64 wrapped at 60 characters per line with `\n`, as in GitHub's contents example. */
export function wrappedBase64(content: Buffer): string {
  const b64 = content.toString("base64");
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 60) lines.push(b64.slice(i, i + 60));
  return lines.length === 0 ? "" : `${lines.join("\n")}\n`;
}

const numericId = (seed: string) => Number.parseInt(createHash("sha1").update(seed).digest("hex").slice(0, 8), 16);
const nodeId = (kind: string, seed: string) => Buffer.from(`0:${kind}${seed}`).toString("base64");

/** git's tree order: by name bytes, directories compared as if they ended in "/". */
function gitOrder(items: TreeItem[]): TreeItem[] {
  const key = (i: TreeItem) => Buffer.from(i.type === "tree" ? `${i.name}/` : i.name);
  return [...items].sort((a, b) => Buffer.compare(key(a), key(b)));
}

/** A branch (`heads/x`, `refs/heads/x`, `x`), tag, full SHA or unique SHA prefix. */
function resolveRef(repo: FixtureRepo, ref: string): FixtureCommit | undefined {
  const qualified = /^(?:refs\/)?(heads|tags)\/(.+)$/.exec(ref);
  if (qualified) {
    const sha = (qualified[1] === "heads" ? repo.branches : repo.tags).get(qualified[2] ?? "");
    return sha ? repo.commits.get(sha) : undefined;
  }
  return repo.resolve(ref);
}

type Json = Record<string, unknown>;

/** The token in an Authorization header: `Bearer x`, `token x`, or the password of Basic credentials. */
function presentedToken(auth: { scheme: string; credentials: string }): string | undefined {
  if (auth.scheme === "bearer" || auth.scheme === "token") return auth.credentials;
  if (auth.scheme === "basic") return decodeBasic(auth.credentials)?.password;
  return undefined;
}

/** A branch or tag name as codeload URLs spell it (`refs/heads/main`); anything else unchanged. */
function qualifiedRef(repo: FixtureRepo, name: string): string {
  if (repo.branches.has(name)) return `refs/heads/${name}`;
  if (repo.tags.has(name)) return `refs/tags/${name}`;
  return name;
}

/** What the contents API calls an item. */
function contentKind(item: TreeItem, entry: FixtureEntry | undefined): "dir" | "file" | "symlink" | "submodule" {
  if (item.type === "tree") return "dir";
  if (item.type === "commit") return "submodule";
  return entry?.kind === "symlink" ? "symlink" : "file";
}

function acceptOf(req: EmulatorRequest): "raw" | "object" | "sha" | "json" {
  const accept = req.headers.accept ?? "";
  if (/application\/vnd\.github(\.v3)?\.raw/.test(accept)) return "raw";
  if (/application\/vnd\.github(\.v3)?\.object/.test(accept)) return "object";
  if (/application\/vnd\.github(\.v3)?\.sha/.test(accept)) return "sha";
  return "json";
}

function rawMediaType(req: EmulatorRequest): string {
  const match = /application\/vnd\.github(\.v3)?\.raw(\+json)?/.exec(req.headers.accept ?? "");
  return `${match?.[0] ?? "application/vnd.github.raw"}; charset=utf-8`;
}

interface Located {
  repo: FixtureRepo;
  owner: string;
  name: string;
}

interface Bucket {
  limit: number;
  remaining: number;
  reset: number;
}

class GitHubModel {
  apiOrigin = "";
  codeloadOrigin = "";
  mediaOrigin = "";
  private readonly buckets = new Map<string, Bucket>();
  private secondary = { left: 0, retryAfter: undefined as number | undefined, status: 403 };
  private readonly codeloadTokens = new Map<string, { fullName: string; expires: number }>();
  private readonly downloadTokens = new Set<string>();
  private readonly treeIndex = new Map<string, Map<string, string>>();
  private readonly blobIndex = new Map<string, Map<string, Buffer>>();
  private readonly tarballs = new Map<string, Promise<Buffer>>();

  constructor(private readonly options: GitHubEmulatorOptions) {}

  private now(): number {
    return this.options.now?.() ?? Date.now();
  }

  private get prefix(): string {
    return this.options.pathPrefix ?? "";
  }

  get apiBase(): string {
    return `${this.apiOrigin}${this.prefix}`;
  }

  setSecondary(times: number, retryAfter: number | undefined, status: number): void {
    this.secondary = { left: times, retryAfter, status };
  }

  // ------------------------------------------------ auth, version, limits

  /** The caller's token, "" for anonymous, undefined for bad credentials. */
  private authenticate(header: string | undefined): string | undefined {
    const auth = parseAuthorization(header);
    if (!auth) return "";
    const token = presentedToken(auth);
    return token !== undefined && this.options.tokens?.includes(token) ? token : undefined;
  }

  private bucket(caller: string): Bucket {
    const nowSeconds = Math.floor(this.now() / 1000);
    let bucket = this.buckets.get(caller);
    if (!bucket) {
      const configured = this.options.rateLimit;
      const limit = configured?.limit ?? (caller === "" ? 60 : 5000);
      const reset = configured?.resetEpochSeconds ?? nowSeconds + 3600;
      bucket = { limit, remaining: configured?.remaining ?? limit, reset };
      this.buckets.set(caller, bucket);
    }
    if (nowSeconds >= bucket.reset) {
      bucket.remaining = bucket.limit;
      bucket.reset = nowSeconds + 3600;
    }
    return bucket;
  }

  private static rateHeaders(bucket: Bucket): Record<string, string> {
    return {
      "x-ratelimit-limit": String(bucket.limit),
      "x-ratelimit-remaining": String(bucket.remaining),
      "x-ratelimit-used": String(bucket.limit - bucket.remaining),
      "x-ratelimit-reset": String(bucket.reset),
      "x-ratelimit-resource": "core",
    };
  }

  private versionProblem(requested: string | string[] | undefined): EmulatorResponse | undefined {
    const version = typeof requested === "string" ? requested : API_VERSIONS[0];
    if (version === undefined || API_VERSIONS.includes(version)) return undefined;
    const doc = `${DOCS}/about-the-rest-api/api-versions`;
    if (/^\d{4}-\d{2}-\d{2}$/.test(version) && version < (API_VERSIONS[0] ?? "")) {
      return gitHubError(410, `API version ${version} is no longer supported.`, doc);
    }
    return gitHubError(400, `Invalid API version provided: ${version}.`, doc);
  }

  /** Throttling that happens before routing: secondary limits, then the primary budget. */
  private throttle(caller: string, bucket: Bucket): EmulatorResponse | undefined {
    if (this.secondary.left > 0) {
      this.secondary.left -= 1;
      const retry = this.secondary.retryAfter;
      const headers: Record<string, string> = retry === undefined ? {} : { "retry-after": String(retry) };
      const message = `${SECONDARY} ${randomToken(4).toUpperCase()}.`;
      return gitHubError(
        this.secondary.status,
        message,
        `${DOCS}/using-the-rest-api/rate-limits-for-the-rest-api#about-secondary-rate-limits`,
        headers,
      );
    }
    if (bucket.remaining > 0) {
      bucket.remaining -= 1;
      return undefined;
    }
    const who =
      caller === ""
        ? "127.0.0.1. (But here's the good news: Authenticated requests get a higher rate limit. Check out the documentation for more details.)"
        : `user ID ${numericId(caller)}.`;
    const doc = `${DOCS}/using-the-rest-api/rate-limits-for-the-rest-api#about-the-primary-rate-limit`;
    return gitHubError(this.options.rateLimit?.status ?? 403, `API rate limit exceeded for ${who}`, doc);
  }

  // ------------------------------------------------ API host

  handleApi(req: EmulatorRequest): EmulatorResponse {
    const ua = req.headers["user-agent"];
    if (ua === undefined || ua.trim() === "") return text(403, NO_USER_AGENT);
    const badVersion = this.versionProblem(req.headers["x-github-api-version"]);
    if (badVersion) return badVersion;
    const caller = this.authenticate(req.headers.authorization);
    const bucket = this.bucket(caller ?? "");
    if (caller === undefined) {
      return this.decorate(req, gitHubError(401, "Bad credentials"), bucket);
    }
    const isRateLimit = req.path === `${this.prefix}/rate_limit`;
    const throttled = isRateLimit ? undefined : this.throttle(caller, bucket);
    const response = throttled ?? (isRateLimit ? this.rateLimitJson(bucket) : this.route(req, caller));
    return this.decorate(req, response, bucket);
  }

  private decorate(req: EmulatorRequest, response: EmulatorResponse, bucket: Bucket): EmulatorResponse {
    const accept = acceptOf(req);
    const version = req.headers["x-github-api-version"];
    return {
      ...response,
      headers: {
        ...GitHubModel.rateHeaders(bucket),
        "x-github-api-version-selected": typeof version === "string" ? version : "2022-11-28",
        "x-github-media-type": accept === "json" ? "github.v3; format=json" : `github.v3; param=${accept}`,
        "x-github-request-id": randomToken(8).toUpperCase(),
        ...response.headers,
      },
    };
  }

  private rateLimitJson(bucket: Bucket): EmulatorResponse {
    const core = {
      limit: bucket.limit,
      remaining: bucket.remaining,
      reset: bucket.reset,
      used: bucket.limit - bucket.remaining,
    };
    const search = { limit: 30, remaining: 30, reset: bucket.reset, used: 0 };
    return json(200, { resources: { core, search }, rate: core });
  }

  private route(req: EmulatorRequest, caller: string): EmulatorResponse {
    if (req.method !== "GET" && req.method !== "HEAD") return notFound();
    if (!req.path.startsWith(`${this.prefix}/`)) return notFound();
    const segs = segmentsOf(req.path.slice(this.prefix.length));
    if (!segs) return notFound();
    const [kind, ...rest] = segs;
    let located: Located | undefined;
    let tail: string[];
    if (kind === "repos" && rest.length >= 2) {
      const renamed = this.renamed(`${rest[0]}/${rest[1]}`, rest.slice(2));
      if (renamed) return renamed;
      located = this.locate(`${rest[0]}/${rest[1]}`);
      tail = rest.slice(2);
    } else if (kind === "repositories" && rest.length >= 1) {
      located = this.locateById(rest[0] ?? "");
      tail = rest.slice(1);
    } else {
      return notFound();
    }
    if (!located || (caller === "" && !this.options.publicRepos)) return notFound();
    return this.routeRepo(req, located, tail);
  }

  private routeRepo(req: EmulatorRequest, at: Located, tail: string[]): EmulatorResponse {
    const [head, second, ...more] = tail;
    const after = (n: number) => tail.slice(n).join("/");
    if (tail.length === 0 || (tail.length === 1 && head === "")) return json(200, this.repositoryJson(at));
    if (head === "commits" && tail.length > 1) return this.commit(req, at, after(1));
    if (head === "branches" && tail.length > 1) return this.branch(at, after(1));
    if (head === "git" && second === "ref" && more.length > 0) return this.gitRef(at, after(2));
    if (head === "git" && second === "commits" && more.length === 1) return this.gitCommit(at, more[0] ?? "");
    if (head === "git" && second === "trees" && more.length > 0) return this.tree(req, at, after(2));
    if (head === "git" && second === "blobs" && more.length === 1) return this.blob(req, at, more[0] ?? "");
    if (head === "contents")
      return this.contents(
        req,
        at,
        tail
          .slice(1)
          .filter((s) => s !== "")
          .join("/"),
      );
    if (head === "tarball") return this.tarballRedirect(at, after(1));
    return notFound();
  }

  private locate(fullName: string): Located | undefined {
    const repo = this.options.repos.find((r) => r.fullName.toLowerCase() === fullName.toLowerCase());
    return repo ? { repo, owner: repo.owner, name: repo.name } : undefined;
  }

  private locateById(id: string): Located | undefined {
    const repo = this.options.repos.find((r) => String(numericId(`repo:${r.fullName}`)) === id);
    return repo ? { repo, owner: repo.owner, name: repo.name } : undefined;
  }

  private renamed(oldName: string, tail: string[]): EmulatorResponse | undefined {
    const entry = Object.entries(this.options.renamedRepos ?? {}).find(
      ([old]) => old.toLowerCase() === oldName.toLowerCase(),
    );
    const target = entry ? this.locate(entry[1]) : undefined;
    if (!target) return undefined;
    const id = numericId(`repo:${target.repo.fullName}`);
    const url = `${this.apiBase}/repositories/${id}${tail.length > 0 ? `/${tail.map(encodeURIComponent).join("/")}` : ""}`;
    const body = { message: "Moved Permanently", url, documentation_url: `${DOCS}/repos/repos#get-a-repository` };
    return json(301, body, { location: url });
  }

  // ------------------------------------------------ URLs and shapes

  private repoApi(at: Located): string {
    return `${this.apiBase}/repos/${at.owner}/${at.name}`;
  }

  private repoHtml(at: Located): string {
    return `${this.apiOrigin}/${at.owner}/${at.name}`;
  }

  private ownerJson(login: string): Record<string, unknown> {
    const api = `${this.apiBase}/users/${login}`;
    return {
      login,
      id: numericId(`owner:${login}`),
      node_id: nodeId("Organization", login),
      avatar_url: `${this.apiOrigin}/avatars/${login}`,
      gravatar_id: "",
      url: api,
      html_url: `${this.apiOrigin}/${login}`,
      followers_url: `${api}/followers`,
      following_url: `${api}/following{/other_user}`,
      gists_url: `${api}/gists{/gist_id}`,
      starred_url: `${api}/starred{/owner}{/repo}`,
      subscriptions_url: `${api}/subscriptions`,
      organizations_url: `${api}/orgs`,
      repos_url: `${api}/repos`,
      events_url: `${api}/events{/privacy}`,
      received_events_url: `${api}/received_events`,
      type: "Organization",
      site_admin: false,
    };
  }

  /** The hypermedia URLs of a repository (templated ones in RFC 6570 form, as GitHub sends them). */
  private repositoryUrls(at: Located): Record<string, string> {
    const api = this.repoApi(at);
    const paths: Record<string, string> = {
      archive_url: "/{archive_format}{/ref}",
      assignees_url: "/assignees{/user}",
      blobs_url: "/git/blobs{/sha}",
      branches_url: "/branches{/branch}",
      collaborators_url: "/collaborators{/collaborator}",
      comments_url: "/comments{/number}",
      commits_url: "/commits{/sha}",
      compare_url: "/compare/{base}...{head}",
      contents_url: "/contents/{+path}",
      contributors_url: "/contributors",
      deployments_url: "/deployments",
      downloads_url: "/downloads",
      events_url: "/events",
      forks_url: "/forks",
      git_commits_url: "/git/commits{/sha}",
      git_refs_url: "/git/refs{/sha}",
      git_tags_url: "/git/tags{/sha}",
      hooks_url: "/hooks",
      issue_comment_url: "/issues/comments{/number}",
      issue_events_url: "/issues/events{/number}",
      issues_url: "/issues{/number}",
      keys_url: "/keys{/key_id}",
      labels_url: "/labels{/name}",
      languages_url: "/languages",
      merges_url: "/merges",
      milestones_url: "/milestones{/number}",
      notifications_url: "/notifications{?since,all,participating}",
      pulls_url: "/pulls{/number}",
      releases_url: "/releases{/id}",
      stargazers_url: "/stargazers",
      statuses_url: "/statuses/{sha}",
      subscribers_url: "/subscribers",
      subscription_url: "/subscription",
      tags_url: "/tags",
      teams_url: "/teams",
      trees_url: "/git/trees{/sha}",
    };
    return Object.fromEntries(Object.entries(paths).map(([key, path]) => [key, `${api}${path}`]));
  }

  private repositoryJson(at: Located): Record<string, unknown> {
    const html = this.repoHtml(at);
    const host = new URL(this.apiOrigin);
    const pushedAt = at.repo.head().date;
    return {
      id: numericId(`repo:${at.repo.fullName}`),
      node_id: nodeId("Repository", at.repo.fullName),
      name: at.name,
      full_name: `${at.owner}/${at.name}`,
      owner: this.ownerJson(at.owner),
      private: !this.options.publicRepos,
      visibility: this.options.publicRepos ? "public" : "private",
      html_url: html,
      description: null,
      fork: false,
      url: this.repoApi(at),
      ...this.repositoryUrls(at),
      git_url: `git://${host.host}/${at.owner}/${at.name}.git`,
      ssh_url: `git@${host.hostname}:${at.owner}/${at.name}.git`,
      clone_url: `${html}.git`,
      svn_url: html,
      mirror_url: null,
      homepage: null,
      language: null,
      ...Object.fromEntries(
        [
          "forks",
          "forks_count",
          "stargazers_count",
          "watchers",
          "watchers_count",
          "size",
          "open_issues",
          "open_issues_count",
        ].map((k) => [k, 0]),
      ),
      default_branch: at.repo.defaultBranch,
      ...Object.fromEntries(
        ["has_issues", "has_projects", "has_wiki", "has_pages", "has_discussions", "archived", "disabled"].map((k) => [
          k,
          false,
        ]),
      ),
      license: null,
      pushed_at: pushedAt,
      created_at: "2026-11-01T10:00:00Z",
      updated_at: pushedAt,
      permissions: { admin: false, maintain: false, push: false, triage: false, pull: true },
      network_count: 0,
      subscribers_count: 0,
    };
  }

  private gitUser(commit: FixtureCommit) {
    return { name: "Fixture Bot", email: "fixture-bot@example.invalid", date: commit.date };
  }

  private static verification() {
    return { verified: false, reason: "unsigned", signature: null, payload: null, verified_at: null };
  }

  private parentsJson(at: Located, commit: FixtureCommit, kind: "commits" | "git/commits") {
    if (!commit.parent) return [];
    return [
      {
        sha: commit.parent,
        url: `${this.repoApi(at)}/${kind}/${commit.parent}`,
        html_url: `${this.repoHtml(at)}/commit/${commit.parent}`,
      },
    ];
  }

  private commitJson(at: Located, commit: FixtureCommit, withFiles: boolean): Record<string, unknown> {
    const api = this.repoApi(at);
    const tree = at.repo.treeSha(commit.entries, "");
    const body: Record<string, unknown> = {
      url: `${api}/commits/${commit.sha}`,
      sha: commit.sha,
      node_id: nodeId("Commit", commit.sha),
      html_url: `${this.repoHtml(at)}/commit/${commit.sha}`,
      comments_url: `${api}/commits/${commit.sha}/comments`,
      commit: {
        url: `${api}/git/commits/${commit.sha}`,
        author: this.gitUser(commit),
        committer: this.gitUser(commit),
        message: commit.message,
        comment_count: 0,
        tree: { sha: tree, url: `${api}/git/trees/${tree}` },
        verification: GitHubModel.verification(),
      },
      author: null,
      committer: null,
      parents: this.parentsJson(at, commit, "commits"),
    };
    if (withFiles) {
      const files = this.diffEntries(at, commit);
      const additions = files.reduce((n, f) => n + f.additions, 0);
      const deletions = files.reduce((n, f) => n + f.deletions, 0);
      body.stats = { total: additions + deletions, additions, deletions };
      body.files = files.slice(0, 300);
    }
    return body;
  }

  /** The `files` of a commit: what changed against its parent, with line counts. */
  private diffEntries(at: Located, commit: FixtureCommit) {
    const parent = commit.parent ? at.repo.commits.get(commit.parent) : undefined;
    const before = parent?.entries ?? new Map<string, FixtureEntry>();
    const lines = (e: FixtureEntry | undefined) => (e ? storedBlob(e).toString("latin1").split("\n").length - 1 : 0);
    const paths = [...new Set([...before.keys(), ...commit.entries.keys()])].sort();
    const api = this.repoApi(at);
    return paths.flatMap((path) => {
      const old = before.get(path);
      const now = commit.entries.get(path);
      const oldSha = old ? blobSha(storedBlob(old)) : undefined;
      const newSha = now ? blobSha(storedBlob(now)) : undefined;
      if (oldSha === newSha) return [];
      const status = !old ? "added" : !now ? "removed" : "modified";
      const [additions, deletions] = [lines(now), lines(old)];
      return [
        {
          sha: newSha ?? oldSha ?? "",
          filename: path,
          status,
          additions,
          deletions,
          changes: additions + deletions,
          blob_url: `${this.repoHtml(at)}/blob/${commit.sha}/${encodePath(path)}`,
          raw_url: `${this.repoHtml(at)}/raw/${commit.sha}/${encodePath(path)}`,
          contents_url: `${api}/contents/${encodePath(path)}?ref=${commit.sha}`,
        },
      ];
    });
  }

  // ------------------------------------------------ refs and commits

  private commit(req: EmulatorRequest, at: Located, ref: string): EmulatorResponse {
    const commit = resolveRef(at.repo, ref);
    if (!commit) {
      return json(422, {
        message: `No commit found for SHA: ${ref}`,
        documentation_url: `${DOCS}/commits/commits#get-a-commit`,
        status: "422",
      });
    }
    if (acceptOf(req) === "sha") {
      return {
        status: 200,
        headers: { "content-type": "application/vnd.github.sha; charset=utf-8" },
        body: commit.sha,
      };
    }
    return json(200, this.commitJson(at, commit, true));
  }

  private branch(at: Located, name: string): EmulatorResponse {
    const sha = at.repo.branches.get(name);
    const commit = sha ? at.repo.commits.get(sha) : undefined;
    if (!commit) return gitHubError(404, "Branch not found", `${DOCS}/branches/branches#get-a-branch`);
    const self = `${this.repoApi(at)}/branches/${encodePath(name)}`;
    return json(200, {
      name,
      commit: this.commitJson(at, commit, false),
      _links: { self, html: `${this.repoHtml(at)}/tree/${encodePath(name)}` },
      protected: false,
      protection: { enabled: false, required_status_checks: { enforcement_level: "off", contexts: [], checks: [] } },
      protection_url: `${self}/protection`,
    });
  }

  private gitRef(at: Located, ref: string): EmulatorResponse {
    const match = /^(heads|tags)\/(.+)$/.exec(ref);
    const sha = match ? (match[1] === "heads" ? at.repo.branches : at.repo.tags).get(match[2] ?? "") : undefined;
    if (!sha) return notFound(`${DOCS}/git/refs#get-a-reference`);
    return json(200, {
      ref: `refs/${ref}`,
      node_id: nodeId("Ref", `${at.repo.fullName}:refs/${ref}`),
      url: `${this.repoApi(at)}/git/refs/${encodePath(ref)}`,
      object: { type: "commit", sha, url: `${this.repoApi(at)}/git/commits/${sha}` },
    });
  }

  private gitCommit(at: Located, sha: string): EmulatorResponse {
    const commit = at.repo.commits.get(sha);
    if (!commit) return notFound(`${DOCS}/git/commits#get-a-commit-object`);
    const tree = at.repo.treeSha(commit.entries, "");
    return json(200, {
      sha: commit.sha,
      node_id: nodeId("Commit", commit.sha),
      url: `${this.repoApi(at)}/git/commits/${commit.sha}`,
      html_url: `${this.repoHtml(at)}/commit/${commit.sha}`,
      author: this.gitUser(commit),
      committer: this.gitUser(commit),
      tree: { sha: tree, url: `${this.repoApi(at)}/git/trees/${tree}` },
      message: commit.message,
      parents: this.parentsJson(at, commit, "git/commits"),
      verification: GitHubModel.verification(),
    });
  }

  // ------------------------------------------------ trees and blobs

  /** Tree id → directory at one commit (commits are immutable, so this is cached per commit). */
  private treesOf(repo: FixtureRepo, commit: FixtureCommit): Map<string, string> {
    let index = this.treeIndex.get(commit.sha);
    if (!index) {
      const dirs = new Set<string>([""]);
      for (const p of commit.entries.keys()) {
        const segs = p.split("/");
        for (let i = 1; i < segs.length; i++) dirs.add(segs.slice(0, i).join("/"));
      }
      index = new Map([...dirs].map((d) => [repo.treeSha(commit.entries, d), d]));
      this.treeIndex.set(commit.sha, index);
    }
    return index;
  }

  private findTree(repo: FixtureRepo, ref: string): { commit: FixtureCommit; dir: string } | undefined {
    if (/^[0-9a-f]{40}$/.test(ref)) {
      for (const commit of repo.commits.values()) {
        const dir = this.treesOf(repo, commit).get(ref);
        if (dir !== undefined) return { commit, dir };
      }
    }
    const commit = resolveRef(repo, ref);
    return commit ? { commit, dir: "" } : undefined;
  }

  private treeItemJson(at: Located, item: TreeItem, path: string): Record<string, unknown> {
    const base = { path, mode: item.mode, type: item.type, sha: item.sha };
    if (item.type === "commit") return base;
    if (item.type === "tree") return { ...base, url: `${this.repoApi(at)}/git/trees/${item.sha}` };
    return { ...base, size: item.size, url: `${this.repoApi(at)}/git/blobs/${item.sha}` };
  }

  private tree(req: EmulatorRequest, at: Located, ref: string): EmulatorResponse {
    const found = this.findTree(at.repo, ref);
    if (!found) return notFound(`${DOCS}/git/trees#get-a-tree`);
    const recursive = req.url.searchParams.has("recursive");
    const items: Record<string, unknown>[] = [];
    const caps = this.options.truncateDirectoryTrees ?? {};
    let truncated = false;
    const visit = (dir: string, prefix: string) => {
      let children = gitOrder(at.repo.children(found.commit, dir));
      const own = caps[dir];
      if (own !== undefined && children.length > own) {
        children = children.slice(0, own);
        truncated = true;
      }
      for (const item of children) {
        items.push(this.treeItemJson(at, item, `${prefix}${item.name}`));
        if (recursive && item.type === "tree")
          visit(dir === "" ? item.name : `${dir}/${item.name}`, `${prefix}${item.name}/`);
      }
    };
    visit(found.dir, "");
    const cap = this.options.truncateTreesOver;
    if (recursive && cap !== undefined && items.length > cap) {
      items.length = cap;
      truncated = true;
    }
    const sha = at.repo.treeSha(found.commit.entries, found.dir);
    return json(200, {
      sha,
      url: `${this.repoApi(at)}/git/trees/${sha}`,
      tree: items,
      truncated,
    });
  }

  private findBlob(repo: FixtureRepo, sha: string): Buffer | undefined {
    for (const commit of repo.commits.values()) {
      let index = this.blobIndex.get(commit.sha);
      if (!index) {
        index = new Map();
        for (const e of commit.entries.values()) {
          if (e.kind === "submodule") continue;
          const blob = storedBlob(e);
          index.set(blobSha(blob), blob);
        }
        this.blobIndex.set(commit.sha, index);
      }
      const hit = index.get(sha);
      if (hit) return hit;
    }
    return undefined;
  }

  private blob(req: EmulatorRequest, at: Located, sha: string): EmulatorResponse {
    const content = this.findBlob(at.repo, sha);
    if (!content) return notFound(`${DOCS}/git/blobs#get-a-blob`);
    if (acceptOf(req) === "raw") return { status: 200, headers: { "content-type": rawMediaType(req) }, body: content };
    return json(200, {
      sha,
      node_id: nodeId("Blob", `${at.repo.fullName}:${sha}`),
      size: content.length,
      url: `${this.repoApi(at)}/git/blobs/${sha}`,
      content: wrappedBase64(content),
      encoding: "base64",
    });
  }

  // ------------------------------------------------ contents

  private downloadUrl(at: Located, ref: string, path: string, lfs: boolean): string {
    const token = this.options.publicRepos ? "" : `?token=${this.issueDownloadToken()}`;
    const where = `${at.owner}/${at.name}/${encodePath(ref)}/${encodePath(path)}`;
    return `${this.mediaOrigin}/${lfs ? "media/" : ""}${where}${token}`;
  }

  private issueDownloadToken(): string {
    const token = randomToken(10);
    this.downloadTokens.add(token);
    return token;
  }

  /** One contents entry (as listed in a directory) for a tree item at `path`. */
  private contentEntry(at: Located, commit: FixtureCommit, ref: string, path: string, item: TreeItem): Json {
    const url = `${this.repoApi(at)}/contents/${encodePath(path)}?ref=${encodeURIComponent(ref)}`;
    const entry = commit.entries.get(path);
    const kind = contentKind(item, entry);
    const where = `${encodePath(ref)}/${encodePath(path)}`;
    let gitUrl: string | null = null;
    let htmlUrl: string | null = null;
    let download: string | null = null;
    if (kind === "dir") {
      gitUrl = `${this.repoApi(at)}/git/trees/${item.sha}`;
      htmlUrl = `${this.repoHtml(at)}/tree/${where}`;
    } else if (kind !== "submodule") {
      gitUrl = `${this.repoApi(at)}/git/blobs/${item.sha}`;
      htmlUrl = `${this.repoHtml(at)}/blob/${where}`;
      download = this.downloadUrl(at, ref, path, entry?.kind === "lfs");
    }
    return {
      name: item.name,
      path,
      sha: item.sha,
      size: item.size ?? 0,
      url,
      html_url: htmlUrl,
      git_url: gitUrl,
      download_url: download,
      // submodules are listed as "file" in directory listings, for backward compatibility
      type: kind === "submodule" ? "file" : kind,
      _links: { self: url, git: gitUrl, html: htmlUrl },
    };
  }

  private itemAt(at: Located, commit: FixtureCommit, path: string): TreeItem | undefined {
    const dir = posix.dirname(path) === "." ? "" : posix.dirname(path);
    return at.repo.children(commit, dir).find((i) => i.name === posix.basename(path));
  }

  private contents(req: EmulatorRequest, at: Located, path: string): EmulatorResponse {
    const ref = req.url.searchParams.get("ref") ?? at.repo.defaultBranch;
    const commit = resolveRef(at.repo, ref);
    const doc = `${DOCS}/repos/contents#get-repository-content`;
    if (!commit) return gitHubError(404, `No commit found for the ref ${ref}`, doc);
    if (at.repo.isDir(commit, path) && !commit.entries.has(path)) return this.directory(req, at, commit, ref, path);
    const item = this.itemAt(at, commit, path);
    const entry = commit.entries.get(path);
    if (!item || !entry) return notFound(doc);
    if (entry.kind === "submodule") {
      const base = this.contentEntry(at, commit, ref, path, item);
      return json(200, { ...base, type: "submodule", submodule_git_url: `https://git.example.invalid/${path}.git` });
    }
    if (entry.kind === "symlink") return this.symlink(req, at, commit, ref, entry, item);
    return this.file(req, at, commit, ref, entry, item);
  }

  private directory(
    req: EmulatorRequest,
    at: Located,
    commit: FixtureCommit,
    ref: string,
    dir: string,
  ): EmulatorResponse {
    const entries = at.repo
      .children(commit, dir)
      .slice(0, CONTENTS_CAP)
      .map((item) => this.contentEntry(at, commit, ref, dir === "" ? item.name : `${dir}/${item.name}`, item));
    if (acceptOf(req) !== "object") return json(200, entries);
    const sha = at.repo.treeSha(commit.entries, dir);
    const self = this.contentEntry(at, commit, ref, dir, {
      name: posix.basename(dir),
      mode: "040000",
      type: "tree",
      sha,
    });
    return json(200, { ...self, entries });
  }

  private file(
    req: EmulatorRequest,
    at: Located,
    commit: FixtureCommit,
    ref: string,
    entry: FixtureEntry,
    item: TreeItem,
  ): EmulatorResponse {
    const blob = storedBlob(entry);
    if (acceptOf(req) === "raw") return { status: 200, headers: { "content-type": rawMediaType(req) }, body: blob };
    const base = this.contentEntry(at, commit, ref, entry.path, item);
    const small = blob.length <= CONTENTS_JSON_MAX;
    return json(200, { ...base, content: small ? wrappedBase64(blob) : "", encoding: small ? "base64" : "none" });
  }

  /** A symlink to a regular file in the repository answers with that file; otherwise with the link itself. */
  private symlink(
    req: EmulatorRequest,
    at: Located,
    commit: FixtureCommit,
    ref: string,
    entry: FixtureEntry,
    item: TreeItem,
  ): EmulatorResponse {
    const target = entry.content.toString();
    const resolved = posix.normalize(posix.join(posix.dirname(entry.path), target));
    const targetEntry = commit.entries.get(resolved);
    const targetItem = this.itemAt(at, commit, resolved);
    if (targetEntry && targetItem && !["symlink", "submodule"].includes(targetEntry.kind)) {
      return this.file(req, at, commit, ref, targetEntry, targetItem);
    }
    if (acceptOf(req) === "raw")
      return { status: 200, headers: { "content-type": rawMediaType(req) }, body: entry.content };
    const base = this.contentEntry(at, commit, ref, entry.path, item);
    return json(200, { ...base, type: "symlink", target });
  }

  // ------------------------------------------------ archives

  private tarballRedirect(at: Located, ref: string): EmulatorResponse {
    const name = ref === "" ? at.repo.defaultBranch : ref;
    const commit = resolveRef(at.repo, name);
    if (!commit) return notFound(`${DOCS}/repos/contents#download-a-repository-archive-tar`);
    let location = `${this.codeloadOrigin}/${at.owner}/${at.name}/legacy.tar.gz/${encodePath(qualifiedRef(at.repo, name))}`;
    if (!this.options.publicRepos) {
      const token = randomToken(20);
      this.codeloadTokens.set(token, { fullName: at.repo.fullName, expires: this.now() + CODELOAD_TOKEN_TTL_MS });
      location += `?token=${token}`;
    }
    return redirect(302, location);
  }

  async handleCodeload(req: EmulatorRequest): Promise<EmulatorResponse> {
    if (req.headers.authorization !== undefined) return text(401, "Authorization headers are not accepted here.\n");
    const segs = segmentsOf(req.path) ?? [];
    const at = this.locate(`${segs[0]}/${segs[1]}`);
    if (!at || segs[2] !== "legacy.tar.gz") return text(404, "404: Not Found");
    if (!this.options.publicRepos) {
      const grant = this.codeloadTokens.get(req.url.searchParams.get("token") ?? "");
      if (!grant || grant.fullName !== at.repo.fullName || grant.expires <= this.now())
        return text(404, "404: Not Found");
    }
    const commit = resolveRef(at.repo, segs.slice(3).join("/"));
    if (!commit) return text(404, "404: Not Found");
    const root = `${at.owner}-${at.name}-${commit.sha.slice(0, 7)}`;
    let tarball = this.tarballs.get(`${at.repo.fullName}@${commit.sha}`);
    if (!tarball) {
      tarball = at.repo.tarball(commit.sha, root);
      this.tarballs.set(`${at.repo.fullName}@${commit.sha}`, tarball);
    }
    return {
      status: 200,
      headers: { "content-type": "application/x-gzip", "content-disposition": `attachment; filename=${root}.tar.gz` },
      body: await tarball,
    };
  }

  // ------------------------------------------------ raw and media downloads

  handleMedia(req: EmulatorRequest): EmulatorResponse {
    const segs = segmentsOf(req.path) ?? [];
    const lfs = segs[0] === "media";
    const [owner, name, ...rest] = lfs ? segs.slice(1) : segs;
    const at = this.locate(`${owner}/${name}`);
    if (!at || !this.mayDownload(req)) return text(404, "404: Not Found");
    for (let i = 1; i < rest.length; i++) {
      const commit = resolveRef(at.repo, rest.slice(0, i).join("/"));
      const entry = commit?.entries.get(rest.slice(i).join("/"));
      if (!entry || entry.kind === "submodule") continue;
      const body = lfs && entry.kind === "lfs" ? entry.content : storedBlob(entry);
      return { status: 200, headers: { "content-type": "application/octet-stream" }, body };
    }
    return text(404, "404: Not Found");
  }

  private mayDownload(req: EmulatorRequest): boolean {
    if (this.options.publicRepos) return true;
    if (this.downloadTokens.has(req.url.searchParams.get("token") ?? "")) return true;
    const caller = this.authenticate(req.headers.authorization);
    return caller !== undefined && caller !== "";
  }
}

/** Start the three GitHub origins over loopback. */
export async function startGitHubEmulator(options: GitHubEmulatorOptions): Promise<GitHubEmulator> {
  const model = new GitHubModel(options);
  const hosts = await startHosts(
    {
      api: (req) => model.handleApi(req),
      codeload: (req) => model.handleCodeload(req),
      media: (req) => model.handleMedia(req),
    },
    { latencyMs: options.latencyMs },
  );
  model.apiOrigin = hosts.origins.api;
  model.codeloadOrigin = hosts.origins.codeload;
  model.mediaOrigin = hosts.origins.media;
  return {
    apiUrl: model.apiBase,
    codeloadUrl: hosts.origins.codeload,
    mediaUrl: hosts.origins.media,
    repos: options.repos,
    requests: hosts.requests,
    resetRequests: hosts.resetRequests,
    inject: hosts.inject,
    clearFaults: hosts.clearFaults,
    close: hosts.close,
    secondaryRateLimit: (times, retryAfterSeconds, status = 403) =>
      model.setSecondary(times, retryAfterSeconds, status),
  };
}
