/**
 * GitHub adapter (REST API on github.com or GitHub Enterprise Server through `SOURCE_API_URL`).
 *
 * - Refs resolve once through `commits/{ref}` with `Accept: application/vnd.github.sha`.
 * - The folder fingerprint is its git tree SHA (`contents/{folder}` as `vnd.github.object+json`): equal
 *   SHAs mean equal content, so an unchanged folder is skipped with two requests and no download.
 * - changedFolders: the tree SHAs of every folder at once: one contents listing of their parent (at most
 *   two distinct parents), else one recursive tree of their deepest common ancestor (the commit's own tree
 *   at the root; a truncated answer leaves the folders it cut to be checked one by one).
 * - walk: `git/trees/{tree}?recursive=1`; when GitHub says `truncated`, the folder is walked again one
 *   tree at a time so nothing is lost. A directory whose own tree is truncated is listed with the contents
 *   API (up to 1,000 entries, proven complete by its tree SHA, see `github-tree.ts`), else the folder is
 *   taken from the archive; only when every route fails does the folder fail, naming them. Blobs come raw (`vnd.github.raw`) and stream to disk. Modes decide
 *   the entry: 100755 executable, 120000 symlink, 160000 submodule (a clear error).
 * - archive: `tarball/{sha}` redirects to codeload on another host; the token is not sent there.
 * - Git LFS pointers (trees and archives hold pointers) are resolved through the contents API's
 *   `download_url` on the media host, or fail naming the file.
 * - Every request sends `X-GitHub-Api-Version: 2022-11-28` and a User-Agent. Primary and secondary rate
 *   limits are waited out within the configured budget, otherwise the error says when the limit resets.
 */

import { mapLimit } from "../common/concurrency.ts";
import {
  ArchiveUnavailableError,
  SourceAuthError,
  SourceError,
  SourceNotFoundError,
  SourceProtocolError,
  UnsupportedEntryError,
} from "../common/errors.ts";
import { checkRelativePath, quoteName } from "../common/paths.ts";
import { readAll, readAllText } from "../common/streams.ts";
import { BODY_MAX, bodyCheck, completeFolder, encodePath, lfsGuard, type SourceOptions, through } from "./common.ts";
import { type GitTreeItem, itemsFromContents, TreeListingError } from "./github-tree.ts";
import type { Headers, HttpClient, RateLimitVerdict } from "./http/client.ts";
import { listedOnce } from "./listing.ts";
import { extractFolders, finishExtraction, type LfsPending } from "./tarball.ts";
import type {
  ChangeAnswer,
  ChangeQuery,
  FetchOutcome,
  FetchResult,
  FolderTarget,
  RepositorySource,
  ResolvedRef,
} from "./types.ts";

interface Tree {
  sha: string;
  tree: GitTreeItem[];
  truncated: boolean;
}

function one(headers: Headers, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export const githubHttpOptions = {
  defaultHeaders: { accept: "application/vnd.github+json", "x-github-api-version": "2022-11-28" },
  errorMessage(body: string): string | undefined {
    try {
      const parsed = JSON.parse(body) as { message?: unknown };
      return typeof parsed.message === "string" ? parsed.message : undefined;
    } catch {
      return undefined;
    }
  },
  hints: {
    401: "GitHub rejected the token (wrong, expired or revoked); store a valid token in the token parameter",
    403: "The token lacks access: fine-grained tokens and GitHub Apps need the Contents: read permission on the repository",
    404: "Check SOURCE_REPOSITORY, SOURCE_REF and the folder paths; GitHub answers 404 for private repositories the token cannot see",
    422: "The ref does not exist; check SOURCE_REF",
  },
  rateLimit(status: number, headers: Headers, body: string, now: number): RateLimitVerdict | undefined {
    const retryAfter = one(headers, "retry-after");
    const remaining = one(headers, "x-ratelimit-remaining");
    const reset = one(headers, "x-ratelimit-reset");
    const resetAt = reset && /^\d+$/.test(reset) ? new Date(Number(reset) * 1000) : undefined;
    const secondary = /secondary rate limit/i.test(body);
    if (retryAfter && /^\d+$/.test(retryAfter)) return { waitMs: Number(retryAfter) * 1000, resetAt };
    if (remaining === "0" && resetAt) return { waitMs: Math.max(0, resetAt.getTime() - now) + 1000, resetAt };
    if (secondary) return { waitMs: 60_000, resetAt };
    if (status === 429) return { waitMs: undefined, resetAt };
    return undefined;
  },
};

/** A tree item's object id, which goes into a URL: 40 hex digits, or the listing is refused. */
function objectId(item: GitTreeItem, folder: string): string {
  if (typeof item.sha !== "string" || !/^[0-9a-f]{40}$/.test(item.sha)) {
    throw new SourceProtocolError(
      `tree entry ${quoteName(String(item.path))} of "${folder}" has a malformed object id ${quoteName(String(item.sha))}`,
    );
  }
  return item.sha;
}

export class GitHubSource implements RepositorySource {
  readonly provider = "github" as const;
  private readonly http: HttpClient;
  private readonly base: string;
  private readonly options: SourceOptions;
  private readonly fingerprints = new Map<string, string>();

  constructor(options: SourceOptions) {
    this.options = options;
    this.http = options.http;
    const [owner, repo] = options.repository.split("/") as [string, string];
    this.base = `${options.apiUrl}/repos/${encodeURIComponent(owner)}/${encodeURIComponent(repo)}`;
  }

  async resolveRef(ref: string | undefined): Promise<ResolvedRef> {
    let name = ref;
    if (name === undefined) {
      const repo = await this.http.json<{ default_branch?: string }>({
        url: this.base,
        what: "read the default branch",
      });
      name = repo.default_branch;
      if (!name)
        throw new SourceProtocolError(`repository ${this.options.repository} has no default branch; set SOURCE_REF`);
    }
    const res = await this.http.text({
      url: `${this.base}/commits/${encodePath(name)}`,
      headers: { accept: "application/vnd.github.sha" },
      what: `resolve ref "${name}"`,
      accept: [404, 422],
    });
    if (res.status === 404 || res.status === 422) {
      if (res.status === 404) await this.requireRepository();
      throw new SourceNotFoundError(
        `ref "${name}" is not a branch, tag or commit of ${this.options.repository}; check SOURCE_REF`,
        { status: res.status },
      );
    }
    const sha = res.text.trim();
    if (!/^[0-9a-f]{40}$/.test(sha))
      throw new SourceProtocolError(`ref "${name}" resolved to something that is not a commit SHA`);
    return { ref: name, commit: sha };
  }

  /** After a 404 that may be the repository's rather than the ref's: fail naming the repository if it is. */
  private async requireRepository(): Promise<void> {
    const req = { url: this.base, what: "check the repository", accept: [404] };
    if ((await this.http.text(req)).status !== 404) return;
    throw new SourceNotFoundError(
      `repository ${this.options.repository} does not exist or the token cannot see it (${this.http.describe(req)} answered 404); ${this.options.token ? "check SOURCE_REPOSITORY and the token's access" : "check SOURCE_REPOSITORY; no token was given: set SOURCE_TOKEN (CLI) or TOKEN_PARAMETER_NAME (an SSM SecureString holding it) for a private repository"}`,
      { status: 404, request: this.http.describe(req) },
    );
  }

  async folderFingerprint(commit: string, folder: string): Promise<string> {
    const cacheKey = `${commit}:${folder}`;
    const cached = this.fingerprints.get(cacheKey);
    if (cached) return cached;
    const req = {
      url: `${this.base}/contents/${encodePath(folder)}?ref=${commit}`,
      headers: { accept: "application/vnd.github.object+json" },
      what: `read the tree of "${folder}"`,
      accept: [404],
    };
    const res = await this.http.send(req, async (r) => ({
      status: r.status,
      body: await readAllText(r.body, { limit: BODY_MAX }),
    }));
    if (res.status === 404) {
      throw new SourceNotFoundError(
        `folder "${folder}" does not exist at commit ${commit.slice(0, 7)} (${this.http.describe(req)} answered 404)`,
        { status: 404, request: this.http.describe(req) },
      );
    }
    const obj = JSON.parse(res.body) as { type?: string; sha?: string };
    if (obj.type !== "dir" || !obj.sha || !/^[0-9a-f]{40}$/.test(obj.sha)) {
      throw new SourceNotFoundError(
        `"${folder}" is not a folder at commit ${commit.slice(0, 7)} (it is a ${obj.type ?? "?"})`,
      );
    }
    this.fingerprints.set(cacheKey, obj.sha);
    return obj.sha;
  }

  async folderChanged(): Promise<boolean | undefined> {
    return undefined;
  }

  async changedFolders(commit: string, queries: ChangeQuery[]): Promise<Map<string, ChangeAnswer>> {
    const trees = await this.folderTrees(
      commit,
      queries.map((q) => q.folder),
    );
    const answers = new Map<string, ChangeAnswer>();
    for (const q of queries) {
      const sha = trees.get(q.folder);
      if (sha === undefined) continue;
      this.fingerprints.set(`${commit}:${q.folder}`, sha);
      if (q.tree !== undefined) answers.set(q.folder, { changed: sha !== q.tree, fingerprint: sha });
    }
    return answers;
  }

  /** Folder → tree SHA at `commit`, for the folders one or two listings can show. */
  private async folderTrees(commit: string, folders: string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    const parentOf = (f: string) => (f.includes("/") ? f.slice(0, f.lastIndexOf("/")) : "");
    const parents = [...new Set(folders.map(parentOf))];
    if (parents.length <= 2) {
      for (const parent of parents) {
        const listing = await this.http.json<unknown>({
          url: `${this.base}/contents/${encodePath(parent)}?ref=${commit}`,
          what: `list "${parent || "/"}" for the folders' tree SHAs`,
        });
        if (!Array.isArray(listing)) throw new SourceProtocolError(`"${parent || "/"}" is not a directory`);
        for (const item of listing as { name?: unknown; type?: unknown; sha?: unknown }[]) {
          if (item.type !== "dir" || typeof item.name !== "string" || typeof item.sha !== "string") continue;
          const path = parent ? `${parent}/${item.name}` : item.name;
          if (folders.includes(path) && /^[0-9a-f]{40}$/.test(item.sha)) out.set(path, item.sha);
        }
      }
      return out;
    }
    // the deepest folder every configured folder lies in
    let ancestor = parents[0] ?? "";
    while (ancestor && !parents.every((p) => p === ancestor || p.startsWith(`${ancestor}/`))) {
      ancestor = parentOf(ancestor);
    }
    const root = ancestor ? await this.folderFingerprint(commit, ancestor) : commit;
    const tree = await this.getTree(root, true, `list "${ancestor || "/"}" for the folders' tree SHAs`);
    for (const item of tree.tree) {
      const path = ancestor ? `${ancestor}/${item.path}` : item.path;
      if (item.type === "tree" && folders.includes(path) && /^[0-9a-f]{40}$/.test(item.sha)) out.set(path, item.sha);
    }
    return out;
  }

  // ---------------------------------------------------------------- walk

  async walk(commit: string, targets: FolderTarget[]): Promise<FetchResult> {
    const outcomes: FetchOutcome[] = [];
    const warnings: string[] = [];
    for (const target of targets) {
      let failed: Error | undefined;
      try {
        const tree = await this.folderFingerprint(commit, target.folder);
        let items: GitTreeItem[] | undefined;
        try {
          items = await this.listTree(commit, tree, target.folder, warnings);
        } catch (error) {
          if (!(error instanceof TreeListingError)) throw error;
          failed = (await this.archiveInstead(commit, target, error, warnings)).error;
        }
        if (items) await mapLimit(items, this.options.concurrency, (item) => this.deliver(commit, target, item));
      } catch (error) {
        failed = error as Error;
      }
      // one package at a time: it is finished (and leaves the staging area) before the next is listed
      const error = await completeFolder(target, failed);
      outcomes.push(error ? { folder: target.folder, error } : { folder: target.folder });
    }
    return { outcomes, warnings };
  }

  /** A folder the API cannot list: fetch it from the archive, or fail naming every route tried. */
  private async archiveInstead(
    commit: string,
    target: FolderTarget,
    listing: TreeListingError,
    warnings: string[],
  ): Promise<FetchOutcome> {
    let why: string;
    try {
      const result = await this.archive(commit, [{ folder: target.folder, sink: target.sink }]);
      const error = result.outcomes.find((o) => o.folder === target.folder)?.error;
      if (!error) {
        warnings.push(`${listing.message}; fetched "${target.folder}" from the archive instead`);
        return { folder: target.folder };
      }
      if (!(error instanceof ArchiveUnavailableError)) return { folder: target.folder, error };
      why = error.message;
    } catch (error) {
      if (!(error instanceof ArchiveUnavailableError)) throw error;
      why = error.message;
    }
    return {
      folder: target.folder,
      error: new TreeListingError(`${listing.message}; and the archive route failed too: ${why}`, { cause: listing }),
    };
  }

  private async getTree(sha: string, recursive: boolean, what: string): Promise<Tree> {
    const tree = await this.http.json<Tree>({
      url: `${this.base}/git/trees/${sha}${recursive ? "?recursive=1" : ""}`,
      what,
    });
    if (!tree || !Array.isArray(tree.tree) || typeof tree.truncated !== "boolean") {
      throw new SourceProtocolError(`${what}: the tree response has no "tree" list or "truncated" flag`);
    }
    return tree;
  }

  /** Every non-tree item under the folder's tree, paths relative to the folder. */
  private async listTree(commit: string, sha: string, folder: string, warnings: string[]): Promise<GitTreeItem[]> {
    const full = await this.getTree(sha, true, `list "${folder}"`);
    if (!full.truncated) {
      const once = listedOnce(folder);
      for (const item of full.tree) once(String(item.path));
      return full.tree.filter((i) => i.type !== "tree");
    }
    const once = listedOnce(folder);
    warnings.push(`GitHub truncated the recursive tree of "${folder}"; walked it one tree at a time instead`);
    const out: GitTreeItem[] = [];
    let level: { sha: string; prefix: string }[] = [{ sha, prefix: "" }];
    while (level.length) {
      const next: { sha: string; prefix: string }[] = [];
      await mapLimit(level, this.options.concurrency, async (t) => {
        const tree = await this.getTree(t.sha, false, `list "${folder}/${t.prefix}"`);
        const items = tree.truncated ? await this.listByContents(commit, folder, t, tree, warnings) : tree.tree;
        for (const item of items) {
          const path = `${t.prefix}${item.path}`;
          once(path);
          if (item.type === "tree") next.push({ sha: objectId(item, folder), prefix: `${path}/` });
          else out.push({ ...item, path });
        }
      });
      level = next;
    }
    return out;
  }

  /** A directory whose own tree is truncated: its contents listing, when it provably rebuilds the tree. */
  private async listByContents(
    commit: string,
    folder: string,
    t: { sha: string; prefix: string },
    partial: Tree,
    warnings: string[],
  ): Promise<GitTreeItem[]> {
    const dir = `${folder}/${t.prefix}`.replace(/\/$/, "");
    const req = { url: `${this.base}/contents/${encodePath(dir)}?ref=${commit}`, what: `list "${dir}"` };
    const tried = `the tree of "${dir}" is too large even without recursion; the contents API (${this.http.describe(req)})`;
    let listing: unknown;
    try {
      listing = await this.http.json<unknown>(req);
    } catch (error) {
      if (!(error instanceof SourceError) || error instanceof SourceAuthError) throw error;
      throw new TreeListingError(`${tried} failed: ${error.message}`, { cause: error });
    }
    const result = itemsFromContents(listing, partial.tree, t.sha);
    if ("reason" in result) throw new TreeListingError(`${tried} cannot list it: ${result.reason}`);
    warnings.push(`GitHub truncated the tree of "${dir}" even without recursion; listed it with the contents API`);
    return result.items;
  }

  private async deliver(commit: string, target: FolderTarget, item: GitTreeItem): Promise<void> {
    // the name and the object id go into request URLs: check them first
    const rel = checkRelativePath(item.path, target.folder);
    if (item.mode === "160000" || item.type === "commit") {
      throw new UnsupportedEntryError(
        `folder "${target.folder}" contains a submodule at ${quoteName(rel)}; submodules cannot be packaged — vendor the code into the folder instead`,
      );
    }
    if (item.type !== "blob")
      throw new SourceProtocolError(`tree entry ${quoteName(rel)} has unknown type ${item.type}`);
    const req = {
      url: `${this.base}/git/blobs/${objectId(item, target.folder)}`,
      headers: { accept: "application/vnd.github.raw" },
      what: `download ${quoteName(`${target.folder}/${rel}`)}`,
    };
    if (item.mode === "120000") {
      await target.sink.symlink(rel, (await this.http.text(req)).text);
      return;
    }
    if (item.mode !== "100644" && item.mode !== "100755") {
      throw new UnsupportedEntryError(
        `folder "${target.folder}": entry ${quoteName(rel)} has unsupported mode ${item.mode}`,
      );
    }
    const executable = item.mode === "100755";
    let pointer = false;
    try {
      await this.http.send(req, async (res) => {
        const guard = lfsGuard(() => {
          pointer = true;
          return new UnsupportedEntryError(`LFS pointer ${quoteName(rel)}`);
        });
        const checked = through(
          res.body,
          bodyCheck({ size: item.size, gitBlobSha: item.sha }, this.http.describe(req)),
        );
        const declared = item.size === undefined ? {} : { size: item.size };
        await target.sink.file(rel, through(checked, guard), { executable, ...declared });
      });
    } catch (error) {
      if (!pointer) throw error;
      await this.downloadLfs(commit, target, { path: rel, repoPath: `${target.folder}/${rel}`, executable });
    }
  }

  /** Fetch an LFS object's content through the contents API's download_url (media host, no token). */
  private async downloadLfs(
    commit: string,
    target: FolderTarget,
    p: { path: string; repoPath: string; executable: boolean },
  ): Promise<void> {
    checkRelativePath(p.path, target.folder); // archives hand over pointers by name: check it before the request
    const failure = (why: string) =>
      new UnsupportedEntryError(
        `folder "${target.folder}": Git LFS file ${quoteName(p.path)} could not be resolved (${why})`,
      );
    const meta = await this.http.json<{ download_url?: string | null }>({
      url: `${this.base}/contents/${encodePath(p.repoPath)}?ref=${commit}`,
      what: `locate LFS content of ${quoteName(p.repoPath)}`,
    });
    if (!meta.download_url) throw failure("GitHub gave no download URL");
    await this.http.send(
      { url: meta.download_url, what: `download LFS content of ${quoteName(p.repoPath)}` },
      async (res) => {
        const guard = lfsGuard(() => failure("the media host returned the pointer again; is the LFS object uploaded?"));
        await target.sink.file(p.path, through(res.body, guard), { executable: p.executable });
      },
    );
  }

  // ---------------------------------------------------------------- archive

  async archive(commit: string, targets: FolderTarget[]): Promise<FetchResult> {
    const req = {
      url: `${this.base}/tarball/${commit}`,
      what: "download the repository tarball",
      accept: [401, 403, 404],
    };
    const resolveLfs = (p: LfsPending) => this.downloadLfs(commit, p.target, p);
    const hooks = { early: true, resolveLfs };
    const result = await this.http.send(req, async (res) => {
      if (res.status !== 200) {
        await readAll(res.body, { limit: BODY_MAX }).catch(() => undefined);
        throw new ArchiveUnavailableError(`${this.http.describe(req)} was refused (HTTP ${res.status})`, {
          status: res.status,
          request: this.http.describe(req),
        });
      }
      return extractFolders(res.body, targets, this.http.describe(req), hooks);
    });
    return finishExtraction(targets, result, this.options.concurrency, resolveLfs);
  }
}
