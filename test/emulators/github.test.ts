import { readFileSync } from "node:fs";
import { request } from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv } from "ajv";
import addFormats from "ajv-formats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FixtureRepo, pseudoRandomBytes, standardRepo } from "../fixtures/repo.ts";
import { type GitHubEmulator, type GitHubEmulatorOptions, startGitHubEmulator } from "./github.ts";
import { tarEntries } from "./tar-entries.ts";

// ---------------------------------------------------------------- the official description, compiled once

const repoRoot = path.resolve(fileURLToPath(new URL("../..", import.meta.url)));
const specPath = path.resolve(repoRoot, "node_modules/@octokit/openapi/generated/api.github.com.json");

interface ResponseObject {
  $ref?: string;
  content?: Record<string, unknown>;
}
interface OpenApiDocument {
  paths: Record<string, { get?: { responses: Record<string, ResponseObject> } }>;
  components: { responses: Record<string, ResponseObject> };
}

/**
 * OpenAPI 3.0 writes "this or null" as `nullable: true` beside a `oneOf`/`allOf` without `type`, which Ajv
 * refuses; rewrite those (and only those) to `anyOf: [{type: "null"}, <the rest>]`.
 */
function normalizeNullable(node: unknown): void {
  if (Array.isArray(node)) {
    for (const item of node) normalizeNullable(item);
    return;
  }
  if (node === null || typeof node !== "object") return;
  const schema = node as Record<string, unknown>;
  for (const value of Object.values(schema)) normalizeNullable(value);
  if (schema.nullable === true && schema.type === undefined) {
    const { nullable: _, ...rest } = schema;
    for (const key of Object.keys(schema)) delete schema[key];
    schema.anyOf = [{ type: "null" }, rest];
  }
}

const spec = JSON.parse(readFileSync(specPath, "utf8")) as OpenApiDocument;
normalizeNullable(spec.components);
const ajv = new Ajv({ strict: false, allErrors: true, validateSchema: false });
addFormats.default(ajv);
ajv.addSchema({ ...spec, $id: "gh" });

const pointer = (...tokens: string[]) =>
  tokens.map((t) => encodeURIComponent(t.replaceAll("~", "~0").replaceAll("/", "~1"))).join("/");

/** The JSON pointer of an operation's response schema, following a `#/components/responses/…` reference. */
function responseSchemaRef(operationPath: string, status: number, mediaType: string): string {
  const response = spec.paths[operationPath]?.get?.responses[String(status)];
  if (!response) throw new Error(`GET ${operationPath} documents no ${status}`);
  const base = response.$ref
    ? `#/${pointer("components", "responses", response.$ref.replace("#/components/responses/", ""))}`
    : `#/${pointer("paths", operationPath, "get", "responses", String(status))}`;
  return `gh${base}/${pointer("content", mediaType, "schema")}`;
}

function validate(ref: string, value: unknown): { valid: boolean; errors: string } {
  const fn = ajv.getSchema(ref);
  if (!fn) throw new Error(`no schema at ${ref}`);
  const valid = fn(value) as boolean;
  return { valid, errors: ajv.errorsText(fn.errors) };
}

/** Validate a body against the documented response of `GET operationPath` with `status`. */
function expectOperation(operationPath: string, status: number, body: unknown, mediaType = "application/json") {
  const { valid, errors } = validate(responseSchemaRef(operationPath, status, mediaType), body);
  expect(valid, `${operationPath} ${status}: ${errors}`).toBe(true);
}

function expectSchema(schema: string, body: unknown) {
  const { valid, errors } = validate(`gh#/components/schemas/${schema}`, body);
  expect(valid, `${schema}: ${errors}`).toBe(true);
}

const OP = {
  repo: "/repos/{owner}/{repo}",
  commit: "/repos/{owner}/{repo}/commits/{ref}",
  branch: "/repos/{owner}/{repo}/branches/{branch}",
  ref: "/repos/{owner}/{repo}/git/ref/{ref}",
  gitCommit: "/repos/{owner}/{repo}/git/commits/{commit_sha}",
  tree: "/repos/{owner}/{repo}/git/trees/{tree_sha}",
  blob: "/repos/{owner}/{repo}/git/blobs/{file_sha}",
  contents: "/repos/{owner}/{repo}/contents/{path}",
};

// ---------------------------------------------------------------- helpers

const TOKEN = "ghs_emulatortoken0000000000000000000000";
type Json = Record<string, unknown>;
interface TreeBody {
  sha: string;
  truncated: boolean;
  tree: { path: string; mode: string; type: string; sha: string; size?: number }[];
}

let repo: FixtureRepo;
let big: FixtureRepo;
let gh: GitHubEmulator;
let head: string;
const started: GitHubEmulator[] = [];

/** A second repository: one directory with more than 1,000 entries and a file over 1 MB. */
function bigRepo(): FixtureRepo {
  const r = new FixtureRepo("acme", "big");
  const changes: Record<string, { kind: "file"; content: Buffer }> = {};
  for (let i = 0; i < 1005; i++)
    changes[`wide/f${String(i).padStart(4, "0")}.txt`] = { kind: "file", content: Buffer.from(`${i}\n`) };
  changes["large.bin"] = { kind: "file", content: pseudoRandomBytes(1024 * 1024 + 10, 9) };
  r.commit("main", changes, "big");
  return r;
}

async function startExtra(options: Partial<GitHubEmulatorOptions>): Promise<GitHubEmulator> {
  const emulator = await startGitHubEmulator({ repos: [repo], tokens: [TOKEN], ...options });
  started.push(emulator);
  return emulator;
}

beforeAll(async () => {
  repo = standardRepo({ bigFileBytes: 64 * 1024 });
  big = bigRepo();
  head = repo.head().sha;
  gh = await startGitHubEmulator({ repos: [repo, big], tokens: [TOKEN] });
});

afterAll(async () => {
  await Promise.all([gh, ...started].map((e) => e.close()));
});

interface Call {
  accept?: string;
  auth?: string | null;
  headers?: Record<string, string>;
}

function headersFor(call: Call): Record<string, string> {
  const headers: Record<string, string> = {
    "user-agent": "layer-sync-emulator-tests",
    accept: call.accept ?? "application/vnd.github+json",
    "x-github-api-version": "2022-11-28",
    ...call.headers,
  };
  const auth = call.auth === undefined ? `Bearer ${TOKEN}` : call.auth;
  if (auth !== null) headers.authorization = auth;
  return headers;
}

const api = (p: string, base = gh.apiUrl) => `${base}/repos/acme/layers/${p}`;
const get = (url: string, call: Call = {}) => fetch(url, { headers: headersFor(call), redirect: "manual" });

async function getJson<T = Json>(url: string, call: Call = {}): Promise<T> {
  const res = await get(url, call);
  expect(res.status, url).toBe(200);
  return (await res.json()) as T;
}

const content = (p: string) => repo.head().entries.get(p)?.content ?? Buffer.alloc(0);
const treeOf = (dir: string) => repo.treeSha(repo.head().entries, dir);

// ---------------------------------------------------------------- tests

describe("The GitHub emulator's validator", () => {
  it("rejects a tree without truncated, so the schema checks have teeth", () => {
    const tree = { sha: "a".repeat(40), tree: [] };
    expect(validate(responseSchemaRef(OP.tree, 200, "application/json"), tree).valid).toBe(false);
    expect(validate(responseSchemaRef(OP.tree, 200, "application/json"), { ...tree, truncated: false }).valid).toBe(
      true,
    );
  });
});

describe("GitHub repository, commits and refs", () => {
  it("describes the repository with its default branch as a full-repository", async () => {
    const body = await getJson(api("").slice(0, -1));
    expect(body).toMatchObject({ full_name: "acme/layers", default_branch: "main", private: true });
    expectOperation(OP.repo, 200, body);
  });

  it("returns a commit with sha and commit.tree.sha", async () => {
    const body = await getJson<{ sha: string; commit: { tree: { sha: string } }; files: unknown[] }>(
      api("commits/main"),
    );
    expect(body.sha).toBe(head);
    expect(body.commit.tree.sha).toBe(treeOf(""));
    expect(body.files.length).toBeGreaterThan(0);
    expectOperation(OP.commit, 200, body);
  });

  it("answers the 40-hex sha as text to Accept: application/vnd.github.sha", async () => {
    const res = await get(api("commits/v1.0.0"), { accept: "application/vnd.github.sha" });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe(repo.tags.get("v1.0.0"));
  });

  it("resolves branch names with slashes, bare or as heads/…", async () => {
    const branchHead = repo.branches.get("feature/slash-name");
    for (const ref of ["feature/slash-name", "heads/feature/slash-name"]) {
      const res = await get(api(`commits/${ref}`), { accept: "application/vnd.github.sha" });
      expect(await res.text(), ref).toBe(branchHead);
    }
  });

  it("answers 422 'No commit found for SHA' for an unknown ref", async () => {
    const res = await get(api("commits/no-such-ref"));
    expect(res.status).toBe(422);
    const body = await res.json();
    expect(body).toMatchObject({ message: "No commit found for SHA: no-such-ref", status: "422" });
    expectOperation(OP.commit, 422, body);
  });

  it("returns a branch with protection details and its commit's tree", async () => {
    const body = await getJson<{ commit: { sha: string; commit: { tree: { sha: string } } } }>(
      api("branches/feature/slash-name"),
    );
    expect(body.commit.sha).toBe(repo.branches.get("feature/slash-name"));
    expectOperation(OP.branch, 200, body);
    const missing = await get(api("branches/nope"));
    expect(missing.status).toBe(404);
    expectOperation(OP.branch, 404, await missing.json());
  });

  it("returns git refs for heads and tags and 404 for an unknown one", async () => {
    const ref = await getJson(api("git/ref/heads/main"));
    expect(ref).toMatchObject({ ref: "refs/heads/main", object: { type: "commit", sha: head } });
    expectOperation(OP.ref, 200, ref);
    expect(await getJson(api("git/ref/tags/v1.0.0"))).toMatchObject({ ref: "refs/tags/v1.0.0" });
    expect((await get(api("git/ref/heads/nope"))).status).toBe(404);
  });

  it("returns a git commit with its tree sha", async () => {
    const body = await getJson(api(`git/commits/${head}`));
    expect(body).toMatchObject({ sha: head, tree: { sha: treeOf("") } });
    expectOperation(OP.gitCommit, 200, body);
  });
});

describe("GitHub trees", () => {
  it("lists one level with modes, types and sizes for blobs only", async () => {
    const body = await getJson<TreeBody>(api(`git/trees/${treeOf("layers/with-submodule")}`));
    expectOperation(OP.tree, 200, body);
    expect(body.truncated).toBe(false);
    expect(body.tree).toEqual([
      expect.objectContaining({ path: "ok.txt", mode: "100644", type: "blob", size: 3 }),
      { path: "vendor", mode: "160000", type: "commit", sha: "a".repeat(40) },
    ]);
  });

  it("recurses with any value of recursive, with paths relative to the requested tree", async () => {
    for (const value of ["1", "0", "false"]) {
      const body = await getJson<TreeBody>(api(`git/trees/${treeOf("layers/tools")}?recursive=${value}`));
      expect(body.tree.map((t) => [t.path, t.mode, t.type])).toEqual([
        ["README.md", "100644", "blob"],
        ["bin", "040000", "tree"],
        ["bin/tool", "100755", "blob"],
        ["bin/tool-latest", "120000", "blob"],
      ]);
    }
  });

  it("accepts a branch name with a slash as the tree", async () => {
    const body = await getJson<TreeBody>(api("git/trees/feature/slash-name"));
    const branchHead = repo.commits.get(repo.branches.get("feature/slash-name") ?? "");
    expect(body.sha).toBe(repo.treeSha(branchHead?.entries ?? new Map(), ""));
  });

  it("truncates recursive trees over the configured size and says so", async () => {
    const small = await startExtra({ truncateTreesOver: 50 });
    const full = await getJson<TreeBody>(api(`git/trees/${head}?recursive=1`));
    const cut = await getJson<TreeBody>(api(`git/trees/${head}?recursive=1`, small.apiUrl));
    expect(full.truncated).toBe(false);
    expect(cut.truncated).toBe(true);
    const ids = (t: TreeBody) => t.tree.map((i) => `${i.path} ${i.sha}`);
    expect(ids(cut)).toEqual(ids(full).slice(0, 50));
    expectOperation(OP.tree, 200, cut);
    expect((await getJson<TreeBody>(api(`git/trees/${head}`, small.apiUrl))).truncated).toBe(false);
  });

  it("truncates one directory's own tree, even without recursion, and every recursive tree holding it", async () => {
    const dir = "layers/py-requests/python/many";
    const small = await startExtra({ truncateDirectoryTrees: { [dir]: 30 } });
    const sha = repo.treeSha(repo.head().entries, dir);
    const full = await getJson<TreeBody>(api(`git/trees/${sha}`));
    const cut = await getJson<TreeBody>(api(`git/trees/${sha}`, small.apiUrl));
    expect(full).toMatchObject({ sha, truncated: false });
    expect(full.tree).toHaveLength(120);
    expect(cut).toMatchObject({ sha, truncated: true });
    const ids = (t: TreeBody) => t.tree.map((i) => `${i.path} ${i.sha}`);
    expect(ids(cut)).toEqual(ids(full).slice(0, 30));
    expectOperation(OP.tree, 200, cut);
    expect((await getJson<TreeBody>(api(`git/trees/${head}?recursive=1`, small.apiUrl))).truncated).toBe(true);
    const parent = repo.treeSha(repo.head().entries, "layers/py-requests/python");
    expect((await getJson<TreeBody>(api(`git/trees/${parent}`, small.apiUrl))).truncated).toBe(false);
  });

  it("answers 404 Not Found for an unknown tree", async () => {
    const res = await get(api(`git/trees/${"0".repeat(40)}`));
    expect(res.status).toBe(404);
    const body = await res.json();
    expect(body).toMatchObject({ message: "Not Found", status: "404" });
    expectOperation(OP.tree, 404, body);
  });
});

describe("GitHub blobs", () => {
  const blobOf = async (file: string) => {
    const tree = await getJson<TreeBody>(api(`git/trees/${head}?recursive=1`));
    return tree.tree.find((t) => t.path === file)?.sha ?? "";
  };

  it("returns base64 wrapped at 60 characters per line", async () => {
    const sha = await blobOf("layers/py-requests/python/binary.bin");
    const body = await getJson<{ content: string; encoding: string; size: number }>(api(`git/blobs/${sha}`));
    expectOperation(OP.blob, 200, body);
    expect(body.encoding).toBe("base64");
    const lines = body.content.split("\n").filter((l) => l !== "");
    expect(lines.slice(0, -1).every((l) => l.length === 60)).toBe(true);
    expect(Buffer.from(body.content, "base64").equals(content("layers/py-requests/python/binary.bin"))).toBe(true);
  });

  it("returns raw bytes for the raw media types", async () => {
    const sha = await blobOf("layers/py-requests/python/binary.bin");
    for (const accept of ["application/vnd.github.raw+json", "application/vnd.github.raw"]) {
      const res = await get(api(`git/blobs/${sha}`), { accept });
      expect(Buffer.from(await res.arrayBuffer()).equals(content("layers/py-requests/python/binary.bin"))).toBe(true);
    }
  });

  it("stores LFS files as their pointer text", async () => {
    const sha = await blobOf("layers/with-lfs/model.bin");
    const res = await get(api(`git/blobs/${sha}`), { accept: "application/vnd.github.raw" });
    expect(await res.text()).toMatch(
      /^version https:\/\/git-lfs\.github\.com\/spec\/v1\noid sha256:[0-9a-f]{64}\nsize 2048\n$/,
    );
  });
});

describe("GitHub contents", () => {
  it("lists a directory as an array, with submodules typed as file", async () => {
    const body = await getJson<Json[]>(api("contents/layers/with-submodule?ref=main"));
    expectOperation(OP.contents, 200, body);
    expect(body.map((e) => [e.name, e.type])).toEqual([
      ["ok.txt", "file"],
      ["vendor", "file"],
    ]);
    const tools = await getJson<Json[]>(api("contents/layers/tools/bin"));
    expect(tools.map((e) => e.type)).toEqual(["file", "symlink"]);
  });

  it("caps a directory listing at 1,000 entries without warning", async () => {
    const body = await getJson<Json[]>(`${gh.apiUrl}/repos/acme/big/contents/wide`);
    expect(body).toHaveLength(1000);
  });

  it("answers a directory as an object with its own sha to application/vnd.github.object+json", async () => {
    const body = await getJson<{ type: string; sha: string; entries: Json[] }>(
      api(`contents/layers/tools?ref=${head}`),
      {
        accept: "application/vnd.github.object+json",
      },
    );
    expect(body).toMatchObject({ type: "dir", sha: treeOf("layers/tools") });
    expect(body.entries.map((e) => e.name)).toEqual(["README.md", "bin"]);
    expectOperation(OP.contents, 200, body, "application/vnd.github.object");
  });

  it("returns a file with base64 content, or raw bytes to a raw Accept", async () => {
    const body = await getJson<{ content: string; encoding: string }>(api("contents/layers/tools/README.md"));
    expectOperation(OP.contents, 200, body);
    expect(Buffer.from(body.content, "base64").toString()).toBe("# tools\n");
    const raw = await get(api("contents/layers/tools/README.md"), { accept: "application/vnd.github.raw+json" });
    expect(await raw.text()).toBe("# tools\n");
  });

  it("returns encoding none and empty content for files over 1 MB, but raw bytes still work", async () => {
    const url = `${gh.apiUrl}/repos/acme/big/contents/large.bin`;
    const body = await getJson<{ content: string; encoding: string; size: number }>(url);
    expect(body).toMatchObject({ encoding: "none", content: "", size: 1024 * 1024 + 10 });
    const raw = await get(url, { accept: "application/vnd.github.raw" });
    expect(Buffer.from(await raw.arrayBuffer())).toHaveLength(1024 * 1024 + 10);
  });

  it("answers a symlink to a file with that file, and any other symlink with its target", async () => {
    const followed = await getJson(api("contents/layers/tools/bin/tool-latest"));
    expect(followed).toMatchObject({ type: "file", path: "layers/tools/bin/tool" });
    const escaping = await getJson(api("contents/layers/escape/evil"));
    expect(escaping).toMatchObject({ type: "symlink", target: "../../etc/passwd" });
    expectOperation(OP.contents, 200, escaping);
  });

  it("answers a submodule path with a submodule object", async () => {
    const body = await getJson(api("contents/layers/with-submodule/vendor"));
    expect(body).toMatchObject({ type: "submodule", sha: "a".repeat(40), download_url: null });
    expectOperation(OP.contents, 200, body);
  });

  it("points download_url at the media origin, serving LFS objects and plain files", async () => {
    const lfs = await getJson<{ download_url: string; content: string }>(api("contents/layers/with-lfs/model.bin"));
    expect(lfs.download_url.startsWith(`${gh.mediaUrl}/media/acme/layers/`)).toBe(true);
    expect(Buffer.from(lfs.content, "base64").toString()).toMatch(/^version https:\/\/git-lfs/);
    const object = await fetch(lfs.download_url);
    expect(Buffer.from(await object.arrayBuffer()).equals(content("layers/with-lfs/model.bin"))).toBe(true);
    const plain = await getJson<{ download_url: string }>(api("contents/layers/tools/README.md"));
    expect(await (await fetch(plain.download_url)).text()).toBe("# tools\n");
  });

  it("answers 404 for an unknown ref or path", async () => {
    const badRef = await get(api("contents/README.md?ref=nope"));
    expect(badRef.status).toBe(404);
    expect(await badRef.json()).toMatchObject({ message: "No commit found for the ref nope" });
    const badPath = await get(api("contents/nope.txt"));
    expect(badPath.status).toBe(404);
    expectOperation(OP.contents, 404, await badPath.json());
  });
});

describe("GitHub archives", () => {
  it("redirects tarball requests to codeload with an expiring token", async () => {
    const res = await get(api("tarball/main"));
    expect(res.status).toBe(302);
    const location = new URL(res.headers.get("location") ?? "");
    expect(location.origin).toBe(gh.codeloadUrl);
    expect(location.pathname).toBe("/acme/layers/legacy.tar.gz/refs/heads/main");
    expect(location.searchParams.get("token")).toMatch(/^[0-9a-f]{20,}$/);
  });

  it("serves the tarball from codeload rooted at <owner>-<repo>-<7 hex>", async () => {
    const location = (await get(api(`tarball/${head}`))).headers.get("location") ?? "";
    const res = await fetch(location);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/x-gzip");
    const root = `acme-layers-${head.slice(0, 7)}`;
    expect(res.headers.get("content-disposition")).toBe(`attachment; filename=${root}.tar.gz`);
    const entries = await tarEntries(Buffer.from(await res.arrayBuffer()));
    const readme = entries.find((e) => e.name === `${root}/README.md`);
    expect(readme?.content.toString()).toBe("# acme/layers\n");
  });

  it("rejects codeload requests that carry Authorization", async () => {
    const location = (await get(api(`tarball/${head}`))).headers.get("location") ?? "";
    expect((await fetch(location, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(401);
  });

  it("lets a fetch that follows the redirect succeed, since fetch drops Authorization across origins", async () => {
    const res = await fetch(api(`tarball/${head}`), { headers: headersFor({}) });
    expect(res.status).toBe(200);
    expect(res.url.startsWith(gh.codeloadUrl)).toBe(true);
  });

  it("expires codeload tokens after five minutes", async () => {
    let now = Date.parse("2026-11-02T00:00:00Z");
    const clocked = await startExtra({ now: () => now });
    const location = (await get(api(`tarball/${head}`, clocked.apiUrl))).headers.get("location") ?? "";
    now += 5 * 60 * 1000 + 1;
    expect((await fetch(location)).status).toBe(404);
  });
});

describe("GitHub authentication, headers and rate limits", () => {
  it("accepts the Bearer and token schemes and rejects bad credentials with 401", async () => {
    expect((await get(api("commits/main"), { auth: `token ${TOKEN}` })).status).toBe(200);
    const res = await get(api("commits/main"), { auth: "Bearer ghp_wrong" });
    expect(res.status).toBe(401);
    const body = await res.json();
    expect(body).toMatchObject({ message: "Bad credentials" });
    expectSchema("basic-error", body);
  });

  it("hides private repositories from anonymous callers with 404 and serves public ones", async () => {
    expect((await get(api("commits/main"), { auth: null })).status).toBe(404);
    const open = await startExtra({ publicRepos: true });
    const res = await get(api("commits/main", open.apiUrl), { auth: null });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-ratelimit-limit")).toBe("60");
  });

  it("refuses requests without a User-Agent with 403", async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(api("commits/main"), { headers: { authorization: `Bearer ${TOKEN}` } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on("error", reject);
      req.end();
    });
    expect(status).toBe(403);
  });

  it("sends the rate-limit and API-version headers on every response", async () => {
    const res = await get(api("commits/main"), { headers: { "x-github-api-version": "2026-03-10" } });
    for (const h of ["limit", "remaining", "used", "reset", "resource"]) {
      expect(res.headers.get(`x-ratelimit-${h}`), h).not.toBeNull();
    }
    expect(res.headers.get("x-ratelimit-resource")).toBe("core");
    expect(Number(res.headers.get("x-ratelimit-reset"))).toBeGreaterThan(Date.now() / 1000);
    expect(res.headers.get("x-github-api-version-selected")).toBe("2026-03-10");
    const missing = await get(api("nope"));
    expect(missing.headers.get("x-ratelimit-remaining")).not.toBeNull();
  });

  it("rejects unsupported API versions", async () => {
    expect((await get(api("commits/main"), { headers: { "x-github-api-version": "2021-01-01" } })).status).toBe(410);
    expect((await get(api("commits/main"), { headers: { "x-github-api-version": "banana" } })).status).toBe(400);
  });

  it("answers 403 with x-ratelimit-remaining 0 once the primary budget is spent, until the reset", async () => {
    let now = Date.parse("2026-11-02T00:00:00Z");
    const reset = now / 1000 + 60;
    const limited = await startExtra({
      rateLimit: { limit: 5, remaining: 2, resetEpochSeconds: reset },
      now: () => now,
    });
    const url = api("commits/main", limited.apiUrl);
    expect((await get(url)).headers.get("x-ratelimit-remaining")).toBe("1");
    expect((await get(url)).headers.get("x-ratelimit-remaining")).toBe("0");
    const res = await get(url);
    expect(res.status).toBe(403);
    expect(res.headers.get("x-ratelimit-remaining")).toBe("0");
    expect(res.headers.get("x-ratelimit-reset")).toBe(String(reset));
    const body = (await res.json()) as { message: string };
    expect(body.message).toMatch(/^API rate limit exceeded for /);
    expectSchema("basic-error", body);
    now = (reset + 1) * 1000;
    expect((await get(url)).status).toBe(200);
  });

  it("answers secondary rate limits with their message and retry-after, then recovers", async () => {
    const throttled = await startExtra({});
    throttled.secondaryRateLimit(1, 30);
    const res = await get(api("commits/main", throttled.apiUrl));
    expect(res.status).toBe(403);
    expect(res.headers.get("retry-after")).toBe("30");
    expect(Number(res.headers.get("x-ratelimit-remaining"))).toBeGreaterThan(0);
    expect(((await res.json()) as { message: string }).message).toMatch(/^You have exceeded a secondary rate limit/);
    throttled.secondaryRateLimit(1, undefined, 429);
    const second = await get(api("commits/main", throttled.apiUrl));
    expect(second.status).toBe(429);
    expect(second.headers.get("retry-after")).toBeNull();
    expect((await get(api("commits/main", throttled.apiUrl))).status).toBe(200);
  });

  it("serves the API under /api/v3 when emulating GitHub Enterprise Server", async () => {
    const ghes = await startExtra({ pathPrefix: "/api/v3" });
    expect(ghes.apiUrl).toMatch(/\/api\/v3$/);
    const res = await get(api("commits/main", ghes.apiUrl), { accept: "application/vnd.github.sha" });
    expect(await res.text()).toBe(head);
    expect((await get(`${new URL(ghes.apiUrl).origin}/repos/acme/layers/commits/main`)).status).toBe(404);
  });

  it("answers a renamed repository with 301 to its /repositories/{id} URL, which works", async () => {
    const moved = await startExtra({ renamedRepos: { "acme/old-layers": "acme/layers" } });
    const res = await get(`${moved.apiUrl}/repos/acme/old-layers/commits/main`);
    expect(res.status).toBe(301);
    const body = (await res.json()) as { message: string; url: string };
    expect(body.message).toBe("Moved Permanently");
    expect(res.headers.get("location")).toBe(body.url);
    const followed = await get(body.url, { accept: "application/vnd.github.sha" });
    expect(await followed.text()).toBe(head);
  });

  it("applies injected faults through the shared server", async () => {
    gh.inject({ match: (r) => r.path.endsWith("/git/ref/heads/main"), fault: { kind: "status", status: 502 } });
    expect((await get(api("git/ref/heads/main"))).status).toBe(502);
    expect((await get(api("git/ref/heads/main"))).status).toBe(200);
  });
});
