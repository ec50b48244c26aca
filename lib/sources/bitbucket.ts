/**
 * Bitbucket Cloud adapter (REST 2.0 plus the web host's archive download).
 *
 * - Refs resolve to one 40-hex commit through the refs API (`refs/branches?q=name="…"`), so branch names
 *   containing `/` work; every later call uses that hash.
 * - walk: `src/{commit}/{folder}/?max_depth=…&pagelen=100` with trimmed `fields`, following the opaque
 *   absolute `next` (only on the API origin), falling back to one level at a time on HTTP 555; then one
 *   raw GET per file, streamed to the staging area with bounded concurrency. `attributes` decide the mode:
 *   executable, link (content = target), lfs (the raw GET redirects to the media host; the token is not
 *   forwarded there), subrepository (a clear error).
 * - archive: `{web}/{workspace}/{repo}/get/{commit}.tar.gz` streamed through `extractFolders`. A login
 *   redirect, an HTML page or a 401/403/404 means the archive is unavailable with these credentials.
 * - folderChanged: two `commits/{rev}?exclude=…&path=folder/` queries (both directions), one result each.
 * - changedFolders: one `diffstat/{new}..{old}?topic=false` (a plain two-dot diff of the two trees) per
 *   distinct previous commit, with one `path` per folder and `pagelen=500`; the answer is filtered on the
 *   client too (a folder changed when any changed path, old or new, lies in it). When the `path` list would
 *   make the URL longer than `DIFFSTAT_URL_MAX`, the diffstat is asked for without paths and filtered here.
 */

import { mapLimit } from "../common/concurrency.ts";
import {
  ArchiveUnavailableError,
  SourceError,
  SourceNotFoundError,
  SourceProtocolError,
  UnsupportedEntryError,
} from "../common/errors.ts";
import { checkRelativePath, quoteName, relativeTo } from "../common/paths.ts";
import { readAll, readAllText } from "../common/streams.ts";
import { BODY_MAX, bodyCheck, completeFolder, encodePath, lfsGuard, type SourceOptions, through } from "./common.ts";
import type { Headers, HttpClient, HttpRequest } from "./http/client.ts";
import { listedOnce } from "./listing.ts";
import { extractFolders, finishExtraction, type LfsPending } from "./tarball.ts";
import type { ChangeAnswer, ChangeQuery, FetchResult, FolderTarget, RepositorySource, ResolvedRef } from "./types.ts";

interface TreeEntry {
  type: string;
  path: string;
  size?: number;
  attributes?: string[] | string | null;
}

interface DiffStat {
  old?: { path?: unknown } | null;
  new?: { path?: unknown } | null;
}

interface Page<T> {
  values: T[];
  next?: string;
}

const MAX_DEPTH = 30;
/** Longest diffstat URL sent with `path` filters; beyond it the whole diffstat is read and filtered here. */
export const DIFFSTAT_URL_MAX = 4000;
const DIFFSTAT_FIELDS = "next,values.old.path,values.new.path";
const SRC_FIELDS = "next,values.type,values.path,values.size,values.attributes";

/** Error texts and hints for Bitbucket's `{"type":"error","error":{"message":…}}` bodies. */
export const bitbucketHttpOptions = {
  errorMessage(body: string): string | undefined {
    try {
      const parsed = JSON.parse(body) as { error?: { message?: unknown } };
      return typeof parsed.error?.message === "string" ? parsed.error.message : undefined;
    } catch {
      return undefined;
    }
  },
  hints: {
    401: "The Bitbucket token is invalid, expired or of the wrong kind: API tokens must be stored as email:token (sent as Basic), repository/workspace access tokens as the bare token (sent as Bearer)",
    403: "The token is valid but lacks access: it needs read access to the repository (scope repository, or read:repository:bitbucket for API tokens)",
    404: "Check SOURCE_REPOSITORY, SOURCE_REF and the folder paths; a private repository also answers 404 without access",
  },
  rateLimit(status: number, headers: Headers): { waitMs: number | undefined; resetAt: undefined } | undefined {
    if (status !== 429) return undefined;
    const after = headers["retry-after"];
    const v = Array.isArray(after) ? after[0] : after;
    return { waitMs: v && /^\d+$/.test(v) ? Number(v) * 1000 : undefined, resetAt: undefined };
  },
};

function attributesOf(e: TreeEntry): string[] {
  if (Array.isArray(e.attributes)) return e.attributes;
  if (typeof e.attributes === "string" && e.attributes) return [e.attributes];
  return [];
}

export class BitbucketSource implements RepositorySource {
  readonly provider = "bitbucket" as const;
  private readonly http: HttpClient;
  private readonly base: string;
  private readonly apiOrigin: string;
  private readonly options: SourceOptions;

  constructor(options: SourceOptions) {
    this.options = options;
    this.http = options.http;
    const [workspace, repo] = options.repository.split("/") as [string, string];
    this.base = `${options.apiUrl}/repositories/${encodeURIComponent(workspace)}/${encodeURIComponent(repo)}`;
    this.apiOrigin = new URL(options.apiUrl).origin;
  }

  async resolveRef(ref: string | undefined): Promise<ResolvedRef> {
    let name = ref;
    if (name === undefined) {
      const repo = await this.http.json<{ mainbranch?: { name?: string } }>({
        url: `${this.base}?fields=mainbranch.name`,
        what: "read the repository's main branch",
      });
      name = repo.mainbranch?.name;
      if (!name)
        throw new SourceProtocolError(`repository ${this.options.repository} has no main branch; set SOURCE_REF`);
    }
    if (/^[0-9a-f]{40}$/i.test(name)) return { ref: name, commit: await this.commitHash(name) };
    let notFound = 0;
    for (const kind of ["branches", "tags"] as const) {
      const q = encodeURIComponent(`name="${name.replace(/["\\]/g, "\\$&")}"`);
      const res = await this.http.text({
        url: `${this.base}/refs/${kind}?q=${q}&fields=values.name,values.target.hash`,
        what: `resolve ${kind === "branches" ? "branch" : "tag"} "${name}"`,
        accept: [404],
      });
      if (res.status === 404) {
        notFound++;
        continue;
      }
      const page = parseJson<Page<{ name?: string; target?: { hash?: string } }>>(res.text, `resolve ref "${name}"`);
      const hit = page.values?.find((v) => v.name === name);
      const hash = hit?.target?.hash;
      if (hash) {
        if (!/^[0-9a-f]{40}$/i.test(hash)) throw new SourceProtocolError(`ref "${name}" resolved to a malformed hash`);
        return { ref: name, commit: hash.toLowerCase() };
      }
    }
    if (notFound === 2) await this.requireRepository();
    if (/^[0-9a-f]{7,39}$/i.test(name)) return { ref: name, commit: await this.commitHash(name) };
    throw new SourceNotFoundError(
      `ref "${name}" is not a branch, tag or commit of ${this.options.repository}; check SOURCE_REF (branch names are case-sensitive)`,
    );
  }

  private async commitHash(rev: string): Promise<string> {
    const res = await this.http.send(
      {
        url: `${this.base}/commit/${encodeURIComponent(rev)}?fields=hash`,
        what: `look up commit ${rev}`,
        accept: [404],
      },
      async (r) => ({ status: r.status, body: await readAllText(r.body, { limit: BODY_MAX }) }),
    );
    if (res.status === 404) {
      await this.requireRepository();
      throw new SourceNotFoundError(`commit "${rev}" does not exist in ${this.options.repository}; check SOURCE_REF`, {
        status: 404,
      });
    }
    const hash = (JSON.parse(res.body) as { hash?: string }).hash;
    if (!hash || !/^[0-9a-f]{40}$/i.test(hash)) throw new SourceProtocolError(`commit ${rev} came back without a hash`);
    return hash.toLowerCase();
  }

  /** After a 404 that may be the repository's rather than the ref's: fail naming the repository if it is. */
  private async requireRepository(): Promise<void> {
    const req: HttpRequest = { url: `${this.base}?fields=full_name`, what: "check the repository", accept: [404] };
    if ((await this.http.text(req)).status !== 404) return;
    throw new SourceNotFoundError(
      `repository ${this.options.repository} does not exist or the token cannot see it (${this.http.describe(req)} answered 404); ${this.options.token ? "check SOURCE_REPOSITORY and the token's access" : "check SOURCE_REPOSITORY; no token was given: set SOURCE_TOKEN (CLI) or TOKEN_PARAMETER_NAME (an SSM SecureString holding it) for a private repository"}`,
      { status: 404, request: this.http.describe(req) },
    );
  }

  async folderFingerprint(): Promise<string | undefined> {
    return undefined;
  }

  async folderChanged(folder: string, fromCommit: string, toCommit: string): Promise<boolean | undefined> {
    if (fromCommit === toCommit) return false;
    for (const [rev, exclude] of [
      [toCommit, fromCommit],
      [fromCommit, toCommit],
    ] as const) {
      const page = await this.http.json<Page<{ hash?: string }>>({
        url: `${this.base}/commits/${rev}?exclude=${exclude}&path=${encodeURIComponent(`${folder}/`)}&pagelen=1&fields=values.hash`,
        what: `check whether "${folder}" changed`,
      });
      if (!Array.isArray(page.values)) return undefined;
      if (page.values.length > 0) return true;
    }
    return false;
  }

  async changedFolders(commit: string, queries: ChangeQuery[]): Promise<Map<string, ChangeAnswer>> {
    const answers = new Map<string, ChangeAnswer>();
    const bySince = new Map<string, string[]>();
    for (const q of queries) {
      if (q.since === commit) answers.set(q.folder, { changed: false });
      else bySince.set(q.since, [...(bySince.get(q.since) ?? []), q.folder]);
    }
    for (const [since, folders] of bySince) {
      if (!/^[0-9a-f]{40}$/i.test(since)) continue; // recorded metadata goes into a URL: only a full hash
      const base = `${this.base}/diffstat/${commit}..${since}?topic=false&pagelen=500&fields=${DIFFSTAT_FIELDS}`;
      const filtered = `${base}${folders.map((f) => `&path=${encodeURIComponent(f)}`).join("")}`;
      const changed = new Set<string>();
      const inFolder = (path: unknown) => {
        if (typeof path !== "string") return;
        for (const f of folders) if (path === f || path.startsWith(`${f}/`)) changed.add(f);
      };
      await this.paginate<DiffStat>(
        filtered.length <= DIFFSTAT_URL_MAX ? filtered : base,
        `compare ${since.slice(0, 7)} with ${commit.slice(0, 7)}`,
        (values) => {
          for (const v of values) {
            inFolder(v.old?.path);
            inFolder(v.new?.path);
          }
        },
      );
      for (const f of folders) answers.set(f, { changed: changed.has(f) });
    }
    return answers;
  }

  // ---------------------------------------------------------------- walk

  async walk(commit: string, targets: FolderTarget[]): Promise<FetchResult> {
    const outcomes = [];
    for (const target of targets) {
      let failed: Error | undefined;
      try {
        const files = await this.list(commit, target.folder);
        await mapLimit(files, this.options.concurrency, (entry) => this.download(commit, target, entry));
      } catch (error) {
        failed = error as Error;
      }
      // one package at a time: it is finished (and leaves the staging area) before the next is listed
      const error = await completeFolder(target, failed);
      outcomes.push(error ? { folder: target.folder, error } : { folder: target.folder });
    }
    return { outcomes, warnings: [] };
  }

  private srcUrl(commit: string, path: string, query = ""): string {
    return `${this.base}/src/${commit}/${encodePath(path)}${query}`;
  }

  /** Every file entry under `folder`; a path listed twice (as file or directory) is refused, naming it. */
  private async list(commit: string, folder: string): Promise<TreeEntry[]> {
    const files = new Map<string, TreeEntry>();
    let once = listedOnce(folder);
    const collectPage = (values: TreeEntry[]) => {
      for (const v of values) {
        if (typeof v.path === "string") once(relativeTo(folder, v.path) ?? v.path);
        if (v.type === "commit_file") files.set(v.path, v);
        else if (v.type !== "commit_directory") {
          throw new SourceProtocolError(`listing "${folder}" returned an entry of unknown type ${quoteName(v.type)}`);
        }
      }
    };
    try {
      await this.paginate(
        this.srcUrl(commit, folder, `/?max_depth=${MAX_DEPTH}&pagelen=100&fields=${SRC_FIELDS}`),
        `list "${folder}"`,
        collectPage,
        [555],
      );
    } catch (error) {
      if (!(error instanceof DepthTimeout)) throw error;
      // breadth-first, one directory level per request, directories listed concurrently
      files.clear();
      once = listedOnce(folder);
      let level = [folder];
      while (level.length) {
        const nextLevel: string[] = [];
        await mapLimit(level, this.options.concurrency, async (dir) => {
          await this.paginate(
            this.srcUrl(commit, dir, `/?pagelen=100&fields=${SRC_FIELDS}`),
            `list "${dir}"`,
            (values) => {
              for (const v of values) if (v.type === "commit_directory") nextLevel.push(v.path);
              collectPage(values);
            },
          );
        });
        level = nextLevel;
      }
    }
    return [...files.values()];
  }

  private async paginate<T = TreeEntry>(
    first: string,
    what: string,
    onPage: (values: T[]) => void,
    accept: number[] = [],
  ): Promise<void> {
    let url: string | undefined = first;
    for (let pages = 0; url; pages++) {
      if (pages > 10_000) throw new SourceProtocolError(`${what}: more than 10,000 pages; the listing does not end`);
      const req: HttpRequest = { url, what, accept: [...accept] };
      const { status, page } = await this.http.send(req, async (res) => {
        const text = await readAllText(res.body, { limit: BODY_MAX });
        if (res.status === 555) return { status: 555, page: undefined };
        try {
          return { status: res.status, page: JSON.parse(text) as Page<T> };
        } catch (error) {
          throw new SourceProtocolError(`${this.http.describe(req)} answered with a body that is not JSON`, {
            cause: error,
          });
        }
      });
      if (status === 555) throw new DepthTimeout();
      if (!page || !Array.isArray(page.values)) {
        throw new SourceProtocolError(`${this.http.describe(req)} answered without a "values" list`);
      }
      onPage(page.values);
      url = page.next;
      if (url !== undefined) {
        if (typeof url !== "string") throw new SourceProtocolError(`${what}: "next" is not a URL`);
        const origin = new URL(url, first).origin;
        if (origin !== this.apiOrigin) {
          throw new SourceProtocolError(
            `${what}: the next page is on another host (${origin}); refusing to send the token there`,
          );
        }
      }
    }
  }

  private async download(commit: string, target: FolderTarget, entry: TreeEntry): Promise<void> {
    const rel = relativeTo(target.folder, entry.path);
    if (rel === undefined) {
      throw new SourceProtocolError(
        `listing "${target.folder}" returned ${quoteName(entry.path)}, which is outside it`,
      );
    }
    checkRelativePath(rel, target.folder); // before its name goes into a request URL
    const attrs = attributesOf(entry);
    if (attrs.includes("subrepository")) {
      throw new UnsupportedEntryError(
        `folder "${target.folder}" contains a submodule at ${quoteName(rel)}; submodules cannot be packaged — vendor the code into the folder instead`,
      );
    }
    const req: HttpRequest = { url: this.srcUrl(commit, entry.path), what: `download ${quoteName(entry.path)}` };
    if (attrs.includes("link")) {
      const target_ = (await this.http.text(req)).text;
      await target.sink.symlink(rel, target_);
      return;
    }
    const executable = attrs.includes("executable");
    await this.http.send(req, async (res) => {
      const guard = lfsGuard(
        () =>
          new UnsupportedEntryError(
            `folder "${target.folder}": Git LFS file ${quoteName(rel)} came back as a pointer, not its content; check that the LFS object exists and the token may read it`,
          ),
      );
      // the listed size is the file's, except for LFS content served from the media host
      const size = !attrs.includes("lfs") && res.url.origin === this.apiOrigin ? entry.size : undefined;
      const body = size === undefined ? res.body : through(res.body, bodyCheck({ size }, this.http.describe(req)));
      await target.sink.file(rel, through(body, guard), { executable, ...(size === undefined ? {} : { size }) });
    });
  }

  // ---------------------------------------------------------------- archive

  async archive(commit: string, targets: FolderTarget[]): Promise<FetchResult> {
    const [workspace, repo] = this.options.repository.split("/") as [string, string];
    const url = `${this.options.webUrl}/${encodeURIComponent(workspace)}/${encodeURIComponent(repo)}/get/${commit}.tar.gz`;
    const req: HttpRequest = { url, what: "download the repository archive", accept: [401, 403, 404] };
    const resolveLfs = (p: LfsPending) => this.resolveLfs(commit, p);
    const hooks = { early: true, resolveLfs };
    const result = await this.http.send(req, async (res) => {
      const type = String(res.headers["content-type"] ?? "");
      const login = /\/(account\/signin|login|site\/login)/.test(res.url.pathname);
      if (res.status !== 200 || login || type.includes("text/html")) {
        await readAll(res.body, { limit: BODY_MAX }).catch(() => undefined);
        throw new ArchiveUnavailableError(
          `${this.http.describe(req)} was refused (${
            res.status !== 200
              ? `HTTP ${res.status}`
              : login
                ? "redirected to the login page"
                : "an HTML page came back"
          }); Bitbucket serves archives only to some credential types`,
          { status: res.status, request: this.http.describe(req) },
        );
      }
      return extractFolders(res.body, targets, this.http.describe(req), hooks);
    });
    return finishExtraction(targets, result, this.options.concurrency, resolveLfs);
  }

  /** Archives carry LFS pointers: fetch the real content through the API (which redirects to the media host). */
  private async resolveLfs(commit: string, p: LfsPending): Promise<void> {
    try {
      await this.download(commit, p.target, {
        type: "commit_file",
        path: p.repoPath,
        attributes: p.executable ? ["lfs", "executable"] : ["lfs"],
      });
    } catch (error) {
      if (!(error instanceof SourceError || error instanceof UnsupportedEntryError)) throw error;
      throw new UnsupportedEntryError(
        `folder "${p.target.folder}": Git LFS file ${quoteName(p.path)} could not be resolved (${error.message})`,
        { cause: error },
      );
    }
  }
}

class DepthTimeout extends Error {}

function parseJson<T>(text: string, what: string): T {
  try {
    return JSON.parse(text) as T;
  } catch (error) {
    throw new SourceProtocolError(`${what}: the answer is not JSON`, { cause: error });
  }
}
