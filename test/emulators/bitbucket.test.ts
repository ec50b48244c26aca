import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import { Ajv } from "ajv";
import addFormats from "ajv-formats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FixtureRepo, lfsPointer, standardRepo } from "../fixtures/repo.ts";
import { type BitbucketEmulator, type BitbucketEmulatorOptions, startBitbucketEmulator } from "./bitbucket.ts";
import { tarEntries } from "./tar-entries.ts";

// ---------------------------------------------------------------- the official schema, patched as documented

// vendored in the repository, with its origin and retrieval date: specs/README.md
const specPath = fileURLToPath(new URL("./specs/bitbucket-cloud-openapi.v3.json.gz", import.meta.url));

interface Schema {
  properties?: Record<string, Schema>;
  [key: string]: unknown;
}
interface SpecDocument {
  components: { schemas: Record<string, Schema> };
}

const ATTRIBUTE_VALUES = ["link", "executable", "subrepository", "binary", "lfs"];

function loadSpec(patch: boolean): SpecDocument {
  const spec = JSON.parse(gunzipSync(readFileSync(specPath)).toString("utf8")) as SpecDocument;
  if (!patch) return spec;
  const { schemas } = spec.components;
  const fileProps = schemas.commit_file?.properties;
  const errorProps = schemas.error?.properties?.error?.properties;
  if (!fileProps || !errorProps) throw new Error("the Bitbucket spec no longer has commit_file/error as expected");
  // The live API returns attributes as an array and error.detail as a string or an object (source-apis.md A4).
  fileProps.attributes = { type: "array", items: { type: "string", enum: ATTRIBUTE_VALUES } };
  errorProps.detail = { anyOf: [{ type: "string" }, { type: "object" }] };
  return spec;
}

function validatorFor(spec: SpecDocument) {
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats.default(ajv);
  ajv.addSchema({ $id: "bb", components: spec.components });
  return (schema: string, value: unknown) => {
    const validate = ajv.getSchema(`bb#/components/schemas/${schema}`);
    if (!validate) throw new Error(`no schema ${schema}`);
    const valid = validate(value);
    return { valid, errors: ajv.errorsText(validate.errors) };
  };
}

const check = validatorFor(loadSpec(true));

function expectSchema(schema: string, value: unknown): void {
  const { valid, errors } = check(schema, value);
  expect(valid, `${schema}: ${errors}`).toBe(true);
}

// ---------------------------------------------------------------- helpers

type Json = Record<string, unknown>;
interface Page {
  pagelen: number;
  page?: number;
  size?: number;
  next?: string;
  values: Json[];
}

const ACCESS = "bb-access-token";
const API_EMAIL = "dev@example.com";
const API_TOKEN = "ATATT-api-token";
const SCOPELESS = "bb-scopeless-token";
const bearer = { authorization: `Bearer ${ACCESS}` };
const basic = { authorization: `Basic ${Buffer.from(`${API_EMAIL}:${API_TOKEN}`).toString("base64")}` };

let repo: FixtureRepo;
let bb: BitbucketEmulator;
let head: string;

const started: BitbucketEmulator[] = [];
async function startExtra(options: Partial<BitbucketEmulatorOptions>): Promise<BitbucketEmulator> {
  const emulator = await startBitbucketEmulator({ repos: [repo], accessTokens: [ACCESS], ...options });
  started.push(emulator);
  return emulator;
}

beforeAll(async () => {
  repo = standardRepo({ bigFileBytes: 64 * 1024 });
  head = repo.head().sha;
  bb = await startBitbucketEmulator({
    repos: [repo],
    accessTokens: [ACCESS],
    apiTokens: [{ email: API_EMAIL, token: API_TOKEN }],
    scopelessTokens: [SCOPELESS],
  });
});

afterAll(async () => {
  await Promise.all([bb, ...started].map((e) => e.close()));
});

const repoUrl = () => `${bb.apiUrl}/repositories/acme/layers`;
const srcUrl = (ref: string, p: string, query = "") => `${repoUrl()}/src/${ref}/${p}${query}`;

async function get(url: string, headers: Record<string, string> = bearer, init: RequestInit = {}): Promise<Response> {
  return fetch(url, { headers, redirect: "manual", ...init });
}

async function getJson<T = Json>(url: string, headers: Record<string, string> = bearer): Promise<T> {
  const res = await get(url, headers);
  expect(res.status, url).toBe(200);
  return (await res.json()) as T;
}

/** Follow `next` from `first` to the end, validating every page against paginated_treeentries. */
async function allPages(first: string): Promise<Page[]> {
  const pages: Page[] = [];
  let url: string | undefined = first;
  while (url) {
    const page: Page = await getJson<Page>(url);
    expectSchema("paginated_treeentries", page);
    pages.push(page);
    url = page.next;
  }
  return pages;
}

const paths = (pages: Page[]) => pages.flatMap((p) => p.values.map((v) => v.path as string));
const byPath = (values: Json[], p: string) => values.find((v) => v.path === p) as Json;

// ---------------------------------------------------------------- tests

describe("The Bitbucket emulator's validator", () => {
  it("rejects a page with an extra top-level property, so the schema checks have teeth", () => {
    const { valid } = check("paginated_treeentries", { pagelen: 10, values: [], extra: true });
    expect(valid).toBe(false);
  });

  it("rejects the array attributes Bitbucket really sends unless the spec is patched", () => {
    const raw = validatorFor(loadSpec(false));
    const file = { type: "commit_file", path: "setup.sh", attributes: ["executable"] };
    expect(raw("commit_file", file).valid).toBe(false);
    expect(check("commit_file", file).valid).toBe(true);
  });
});

describe("Bitbucket src listings", () => {
  const many = "layers/py-requests/python/many/";

  it("pages a directory ten entries at a time and ends on a page without next", async () => {
    const pages = await allPages(srcUrl(head, many));
    expect(pages).toHaveLength(12);
    expect(pages.every((p) => p.pagelen === 10)).toBe(true);
    expect(pages.at(-1)?.next).toBeUndefined();
    const expected = Array.from({ length: 120 }, (_, i) => `${many}mod_${String(i).padStart(3, "0")}.py`);
    expect(paths(pages)).toEqual(expected);
  });

  it("puts an absolute next on its own origin with an opaque page token", async () => {
    const first = await getJson<Page>(srcUrl(head, many));
    const next = new URL(first.next as string);
    expect(next.origin).toBe(new URL(bb.apiUrl).origin);
    expect(next.pathname).toBe(new URL(srcUrl(head, many)).pathname);
    expect(next.searchParams.get("page")).not.toMatch(/^\d+$/);
  });

  it("includes page and size on the first page only", async () => {
    const [first, second] = await allPages(srcUrl(head, many));
    expect(first).toMatchObject({ page: 1, size: 120 });
    expect(second).not.toHaveProperty("page");
    expect(second).not.toHaveProperty("size");
  });

  it("serves pagelen=100 and clamps pagelen to between 10 and 100", async () => {
    const big = await allPages(srcUrl(head, many, "?pagelen=100"));
    expect(big.map((p) => p.values.length)).toEqual([100, 20]);
    expect((await getJson<Page>(srcUrl(head, many, "?pagelen=500"))).pagelen).toBe(100);
    expect((await getJson<Page>(srcUrl(head, many, "?pagelen=3"))).values).toHaveLength(10);
  });

  it("refuses page values it did not issue", async () => {
    const res = await get(srcUrl(head, many, "?page=2"));
    expect(res.status).toBe(400);
    expectSchema("error", await res.json());
  });

  it("lists the repository root only with the trailing slash", async () => {
    const root = await getJson<Page>(srcUrl(head, ""));
    expect(root.values.map((v) => v.path)).toEqual(["README.md", "layers"]);
    expect((await get(`${repoUrl()}/src/${head}`)).status).toBe(404);
  });

  it("lists a directory with or without a trailing slash", async () => {
    const withSlash = await getJson<Page>(srcUrl(head, "layers/tools/"));
    const without = await getJson<Page>(srcUrl(head, "layers/tools"));
    expect(without.values).toEqual(withSlash.values);
  });

  it("walks breadth-first with max_depth, listing directories as commit_directory entries", async () => {
    const page = await getJson<Page>(srcUrl(head, "layers/tools/", "?max_depth=3"));
    expectSchema("paginated_treeentries", page);
    expect(page.values.map((v) => [v.type, v.path])).toEqual([
      ["commit_file", "layers/tools/README.md"],
      ["commit_directory", "layers/tools/bin"],
      ["commit_file", "layers/tools/bin/tool"],
      ["commit_file", "layers/tools/bin/tool-latest"],
    ]);
  });

  it("reaches nested files only as deep as max_depth allows", async () => {
    const shallow = paths(await allPages(srcUrl(head, "layers/py-requests/", "?max_depth=5&pagelen=100")));
    const deep = paths(await allPages(srcUrl(head, "layers/py-requests/", "?max_depth=50&pagelen=100")));
    const deepFile = "layers/py-requests/python/d1/d2/d3/d4/d5/d6/d7/d8/d9/d10/d11/d12/deep.txt";
    expect(shallow).not.toContain(deepFile);
    expect(deep).toContain(deepFile);
    expect(deep.indexOf("layers/py-requests/layer.json")).toBeLessThan(deep.indexOf("layers/py-requests/bin/run.sh"));
  });

  it("answers 555 when max_depth exceeds the configured limit", async () => {
    const strict = await startExtra({ maxDepthLimit: 5 });
    const res = await get(`${strict.apiUrl}/repositories/acme/layers/src/${head}/layers/?max_depth=6`);
    expect(res.status).toBe(555);
    expectSchema("error", await res.json());
    const fine = await get(`${strict.apiUrl}/repositories/acme/layers/src/${head}/layers/?max_depth=5`);
    expect(fine.status).toBe(200);
  });

  it("filters with q and projects with fields like the documented file-only walk", async () => {
    const query = '?max_depth=50&pagelen=100&fields=values.path,values.type,next&q=type="commit_file"';
    const pages = await allPages(srcUrl(head, "layers/py-requests/", query));
    const values = pages.flatMap((p) => p.values);
    const files = [...repo.head().entries.keys()].filter((p) => p.startsWith("layers/py-requests/"));
    expect(values.map((v) => v.path).sort()).toEqual(files.sort());
    expect(values.every((v) => v.type === "commit_file" && Object.keys(v).sort().join() === "path,type")).toBe(true);
    expect(pages.every((p) => Object.keys(p).every((k) => k === "values" || k === "next"))).toBe(true);
  });

  it("filters on size and attributes with BBQL", async () => {
    const page = await getJson<Page>(
      srcUrl(head, "layers/py-requests/python/", `?q=${encodeURIComponent('size > 1024 and attributes = "binary"')}`),
    );
    expect(page.values.map((v) => v.path).sort()).toEqual([
      "layers/py-requests/python/big.bin",
      "layers/py-requests/python/binary.bin",
    ]);
  });

  it("describes files with size, mimetype, escaped_path and an attributes array", async () => {
    const python = (await allPages(srcUrl(head, "layers/py-requests/python/"))).flatMap((p) => p.values);
    for (const v of python.filter((e) => e.type === "commit_file")) expectSchema("commit_file", v);
    expect(byPath(python, "layers/py-requests/python/link-to-bin")).toMatchObject({
      attributes: ["link"],
      size: "../bin/run.sh".length,
      mimetype: null,
    });
    expect(byPath(python, "layers/py-requests/python/binary.bin")).toMatchObject({
      attributes: ["binary"],
      size: 4096,
    });
    expect(byPath(python, "layers/py-requests/python/empty.txt")).toMatchObject({
      attributes: [],
      size: 0,
      mimetype: "text/plain",
    });
    const unicode = byPath(python, "layers/py-requests/python/ünïcødé-名前.txt");
    expect(unicode.escaped_path).toMatch(/^"layers\/py-requests\/python\/\\303\\274n/);
    const spaces = byPath(python, "layers/py-requests/python/name with spaces.txt");
    expect(spaces.escaped_path).toBe(spaces.path);
  });

  it("marks executables, submodules and LFS files", async () => {
    const meta = (p: string) => getJson(srcUrl(head, p, "?format=meta"));
    expect(await meta("layers/py-requests/bin/run.sh")).toMatchObject({ attributes: ["executable"] });
    expect(await meta("layers/with-submodule/vendor")).toMatchObject({ attributes: ["subrepository"] });
    const lfs = await meta("layers/with-lfs/model.bin");
    expect(lfs).toMatchObject({ attributes: ["binary", "lfs"], size: 2048 });
    expectSchema("commit_file", lfs);
  });

  it("can list LFS files at their pointer size instead", async () => {
    const pointerSized = await startExtra({ lfsSize: "pointer" });
    const res = await get(
      `${pointerSized.apiUrl}/repositories/acme/layers/src/${head}/layers/with-lfs/model.bin?format=meta`,
    );
    const pointer = lfsPointer(repo.head().entries.get("layers/with-lfs/model.bin")?.content ?? Buffer.alloc(0));
    expect(await res.json()).toMatchObject({ size: pointer.length });
  });

  it("stamps every entry with the resolved commit and links on its own origin", async () => {
    const page = await getJson<Page>(srcUrl("main", "layers/tools/"));
    const file = byPath(page.values, "layers/tools/README.md");
    const dir = byPath(page.values, "layers/tools/bin");
    expect(file.commit).toMatchObject({ type: "commit", hash: head });
    const links = file.links as Record<string, { href: string }>;
    expect(links.self?.href).toBe(srcUrl(head, "layers/tools/README.md"));
    expect(links.meta?.href).toBe(srcUrl(head, "layers/tools/README.md", "?format=meta"));
    expect(links.history?.href).toBe(`${repoUrl()}/filehistory/${head}/layers/tools/README.md`);
    expect((dir.links as Record<string, { href: string }>).self?.href).toBe(srcUrl(head, "layers/tools/bin/"));
  });
});

describe("Bitbucket src file downloads", () => {
  it("serves raw bytes with an extension-based Content-Type and an attachment disposition", async () => {
    const res = await get(srcUrl(head, "layers/py-requests/python/binary.bin"));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/octet-stream");
    expect(res.headers.get("content-disposition")).toBe("attachment");
    const expected = repo.head().entries.get("layers/py-requests/python/binary.bin")?.content;
    expect(Buffer.from(await res.arrayBuffer()).equals(expected ?? Buffer.alloc(1))).toBe(true);
    expect((await get(srcUrl(head, "README.md"))).headers.get("content-type")).toBe("text/markdown");
  });

  it("gives equal content the same ETag wherever it lives and honours If-None-Match", async () => {
    const a = await get(srcUrl(head, "layers/escape/ok.txt"));
    const b = await get(srcUrl(head, "layers/with-lfs/ok.txt"));
    const etag = a.headers.get("etag") ?? "";
    expect(etag).not.toBe("");
    expect(b.headers.get("etag")).toBe(etag);
    const cached = await get(srcUrl(head, "layers/escape/ok.txt"), { ...bearer, "if-none-match": etag });
    expect(cached.status).toBe(304);
  });

  it("serves a symlink's target text and a submodule's commit sha", async () => {
    expect(await (await get(srcUrl(head, "layers/tools/bin/tool-latest"))).text()).toBe("tool");
    expect(await (await get(srcUrl(head, "layers/with-submodule/vendor"))).text()).toBe("a".repeat(40));
  });

  it("redirects LFS files with 301 to the media origin, which serves the object to requests without Authorization", async () => {
    const res = await get(srcUrl(head, "layers/with-lfs/model.bin"));
    expect(res.status).toBe(301);
    const location = res.headers.get("location") ?? "";
    expect(location.startsWith(`${bb.mediaUrl}/`)).toBe(true);
    const content = repo.head().entries.get("layers/with-lfs/model.bin")?.content ?? Buffer.alloc(1);
    const media = await fetch(location);
    expect(media.status).toBe(200);
    expect(Buffer.from(await media.arrayBuffer()).equals(content)).toBe(true);
    expect((await fetch(location, { headers: bearer })).status).toBe(401);
  });

  it("lets a fetch that follows the LFS redirect succeed, since fetch drops Authorization across origins", async () => {
    const res = await fetch(srcUrl(head, "layers/with-lfs/model.bin"), { headers: bearer });
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer())).toHaveLength(2048);
  });

  it("answers format=meta with one commit_file or commit_directory object", async () => {
    const file = await getJson(srcUrl(head, "layers/tools/README.md", "?format=meta"));
    expect(file).toMatchObject({ type: "commit_file", path: "layers/tools/README.md", size: 8 });
    expectSchema("commit_file", file);
    const dir = await getJson(srcUrl(head, "layers/tools/", "?format=meta"));
    expect(dir).toMatchObject({ type: "commit_directory", path: "layers/tools" });
    expect(dir).not.toHaveProperty("values");
    expectSchema("treeentry", dir);
  });

  it("answers 404 'No such file or directory' for an unknown path", async () => {
    const res = await get(srcUrl(head, "layers/nope.txt"));
    expect(res.status).toBe(404);
    const body = await res.json();
    expect(body).toEqual({ type: "error", error: { message: "No such file or directory: layers/nope.txt" } });
    expectSchema("error", body);
  });

  it("answers 404 'Commit not found' for an unknown commit", async () => {
    const res = await get(srcUrl("0".repeat(40), "README.md"));
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ type: "error", error: { message: "Commit not found" } });
  });

  it("rejects a branch whose name has a slash in src/{commit}, raw or percent-encoded", async () => {
    for (const ref of ["feature/slash-name", "feature%2Fslash-name"]) {
      const res = await get(srcUrl(ref, "README.md"));
      expect(res.status, ref).toBe(404);
      expect(await res.json()).toMatchObject({ type: "error", error: { message: "Commit not found" } });
    }
  });

  it("accepts a slash-free branch, a tag and a short hash as the commit", async () => {
    for (const ref of ["main", "v1.0.0", head.slice(0, 12)]) {
      expect(await (await get(srcUrl(ref, "README.md"))).text(), ref).toBe("# acme/layers\n");
    }
  });

  it("redirects src without a commit to the main branch's root listing", async () => {
    const res = await get(`${repoUrl()}/src`);
    expect(res.status).toBe(302);
    expect(res.headers.get("location")).toBe(srcUrl(head, ""));
  });
});

describe("Bitbucket repository, refs and commits", () => {
  it("names the main branch, in full or trimmed with fields=mainbranch.name", async () => {
    expect(await getJson(repoUrl())).toMatchObject({ type: "repository", mainbranch: { name: "main" } });
    expect(await getJson(`${repoUrl()}?fields=mainbranch.name`)).toEqual({ mainbranch: { name: "main" } });
    expectSchema("repository", await getJson(repoUrl()));
  });

  it("resolves a branch with a slash written raw or percent-encoded", async () => {
    const branchHead = repo.branches.get("feature/slash-name");
    for (const name of ["feature/slash-name", "feature%2Fslash-name"]) {
      const branch = await getJson(`${repoUrl()}/refs/branches/${name}`);
      expect(branch).toMatchObject({ type: "branch", name: "feature/slash-name", target: { hash: branchHead } });
      expectSchema("branch", branch);
    }
  });

  it("trims a branch to target.hash with fields", async () => {
    expect(await getJson(`${repoUrl()}/refs/branches/main?fields=target.hash`)).toEqual({ target: { hash: head } });
  });

  it("finds a branch through the BBQL name filter", async () => {
    const q = encodeURIComponent('name="feature/slash-name"');
    const page = await getJson<Page>(`${repoUrl()}/refs/branches?q=${q}`);
    expectSchema("paginated_branches", page);
    expect(page.values.map((v) => v.name)).toEqual(["feature/slash-name"]);
  });

  it("answers 404 with the error shape for an unknown branch", async () => {
    const res = await get(`${repoUrl()}/refs/branches/nope`);
    expect(res.status).toBe(404);
    expectSchema("error", await res.json());
  });

  it("resolves a tag to its target commit", async () => {
    const tag = await getJson(`${repoUrl()}/refs/tags/v1.0.0`);
    expect(tag).toMatchObject({ type: "tag", name: "v1.0.0", target: { hash: repo.tags.get("v1.0.0") } });
    expectSchema("tag", tag);
  });

  it("returns a commit by full or short hash and 404 for an unknown one", async () => {
    const full = await getJson(`${repoUrl()}/commit/${head}`);
    expectSchema("commit", full);
    expect(await getJson(`${repoUrl()}/commit/${head.slice(0, 7)}`)).toMatchObject({ hash: head });
    expect((await get(`${repoUrl()}/commit/${"f".repeat(40)}`)).status).toBe(404);
  });
});

describe("Bitbucket diffstat", () => {
  const branchHead = () => repo.branches.get("feature/slash-name") as string;
  const diffstat = (query: string) => getJson<Page>(`${repoUrl()}/diffstat/${branchHead()}..${head}?${query}`);

  it("lists the paths two commits differ in, as the spec's paginated_diffstats, at pagelen 500", async () => {
    const page = await diffstat("topic=false");
    expectSchema("paginated_diffstats", page);
    expect(page.pagelen).toBe(500);
    expect(page.values).toHaveLength(1);
    expect(page.values[0]).toMatchObject({
      status: "modified",
      old: { path: "layers/tools/README.md" },
      new: { path: "layers/tools/README.md" },
    });
  });

  it("limits the records to each repeated path and what lies under it", async () => {
    expect((await diffstat("topic=false&path=layers/py-requests")).values).toHaveLength(0);
    const both = await diffstat("topic=false&path=layers/py-requests&path=layers/tools");
    expect(both.values.map((v) => (v.new as Json).path)).toEqual(["layers/tools/README.md"]);
    expect((await diffstat("topic=false&path=layers/tool")).values).toHaveLength(0);
  });

  it("diffs against the merge base unless topic is false, so the reverse range is empty then", async () => {
    const reverse = await getJson<Page>(`${repoUrl()}/diffstat/${head}..${branchHead()}`);
    expect(reverse.values).toHaveLength(0);
    const plain = await getJson<Page>(`${repoUrl()}/diffstat/${head}..${branchHead()}?topic=false`);
    expect(plain.values).toHaveLength(1);
  });

  it("trims records with fields and answers 404 for an unknown commit", async () => {
    const page = await diffstat("topic=false&fields=next,values.old.path,values.new.path");
    expect(page).toEqual({
      values: [{ old: { path: "layers/tools/README.md" }, new: { path: "layers/tools/README.md" } }],
    });
    expect((await get(`${repoUrl()}/diffstat/${"f".repeat(40)}..${head}?topic=false`)).status).toBe(404);
  });
});

describe("Bitbucket authentication", () => {
  it("accepts an access token as Bearer and an API token as Basic email:token", async () => {
    expect((await get(repoUrl(), bearer)).status).toBe(200);
    expect((await get(repoUrl(), basic)).status).toBe(200);
  });

  it("rejects an API token sent as Bearer with the exact documented message", async () => {
    const res = await get(repoUrl(), { authorization: `Bearer ${API_TOKEN}` });
    expect(res.status).toBe(401);
    const body = await res.json();
    expect(body).toEqual({
      type: "error",
      error: { message: "Token is invalid, expired, or not supported for this endpoint." },
    });
    expectSchema("error", body);
  });

  it("rejects a wrong Basic password", async () => {
    const wrong = Buffer.from(`${API_EMAIL}:nope`).toString("base64");
    expect((await get(repoUrl(), { authorization: `Basic ${wrong}` })).status).toBe(401);
  });

  it("answers 401 to anonymous calls on private repositories and 200 on public ones", async () => {
    const res = await get(repoUrl(), {});
    expect(res.status).toBe(401);
    expectSchema("error", await res.json());
    const open = await startExtra({ publicRepos: true });
    expect((await get(`${open.apiUrl}/repositories/acme/layers`, {})).status).toBe(200);
  });

  it("answers 403 with a scope detail object to a token without the repository scope", async () => {
    const res = await get(repoUrl(), { authorization: `Bearer ${SCOPELESS}` });
    expect(res.status).toBe(403);
    const body = (await res.json()) as { error: { detail: unknown } };
    expect(body.error.detail).toEqual({ granted: ["account"], required: ["repository"] });
    expectSchema("error", body);
  });

  it("answers 404 'You may not have access…' for an unknown repository", async () => {
    const res = await get(`${bb.apiUrl}/repositories/acme/missing`);
    expect(res.status).toBe(404);
    const body = (await res.json()) as { error: { message: string } };
    expect(body.error.message).toMatch(/^You may not have access to this repository or it no longer exists/);
  });
});

describe("Bitbucket rate limits", () => {
  it("sends X-RateLimit-Limit, -Resource and -NearLimit to access tokens only, never -Remaining", async () => {
    const withToken = await get(repoUrl(), bearer);
    expect(withToken.headers.get("x-ratelimit-limit")).toMatch(/^\d+$/);
    expect(withToken.headers.get("x-ratelimit-resource")).not.toBeNull();
    expect(withToken.headers.get("x-ratelimit-nearlimit")).toMatch(/^(true|false)$/);
    expect(withToken.headers.get("x-ratelimit-remaining")).toBeNull();
    const withApiToken = await get(repoUrl(), basic);
    expect(withApiToken.headers.get("x-ratelimit-limit")).toBeNull();
  });

  it("answers 429 after rateLimitAfter requests, without Retry-After by default", async () => {
    const limited = await startExtra({ rateLimitAfter: 2 });
    const url = `${limited.apiUrl}/repositories/acme/layers`;
    expect((await get(url)).status).toBe(200);
    const second = await get(url);
    expect(second.headers.get("x-ratelimit-nearlimit")).toBe("true");
    const res = await get(url);
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBeNull();
    const body = await res.json();
    expect(body).toEqual({ type: "error", error: { message: "Rate limit for this resource has been exceeded." } });
    expectSchema("error", body);
  });

  it("sends Retry-After on 429 when configured to", async () => {
    const limited = await startExtra({ rateLimitAfter: 0, retryAfterSeconds: 7 });
    const res = await get(`${limited.apiUrl}/repositories/acme/layers`);
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBe("7");
  });
});

describe("Bitbucket archive downloads on the web origin", () => {
  const archiveUrl = (ref: string, base = bb.webUrl) => `${base}/acme/layers/get/${ref}.tar.gz`;

  it("serves a git-archive tarball rooted at <ws>-<repo>-<12 hex> to Bearer and Basic callers", async () => {
    for (const headers of [bearer, basic]) {
      const res = await get(archiveUrl(head), headers);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("application/x-gzip");
      const entries = await tarEntries(Buffer.from(await res.arrayBuffer()));
      const roots = new Set(entries.filter((e) => e.type !== "pax-global-header").map((e) => e.name.split("/")[0]));
      expect([...roots]).toEqual([`acme-layers-${head.slice(0, 12)}`]);
      const readme = entries.find((e) => e.name === `acme-layers-${head.slice(0, 12)}/README.md`);
      expect(readme?.content.toString()).toBe("# acme/layers\n");
    }
  });

  it("accepts a slash-free branch name and refuses a slash branch", async () => {
    expect((await get(archiveUrl("main"))).status).toBe(200);
    expect((await get(archiveUrl("feature%2Fslash-name"))).status).toBe(404);
  });

  it("redirects an anonymous request for a private repository to the login page, which answers HTML", async () => {
    const res = await get(archiveUrl(head), {});
    expect(res.status).toBe(302);
    const location = res.headers.get("location") ?? "";
    expect(location.startsWith(`${bb.webUrl}/account/signin/?next=`)).toBe(true);
    const login = await get(location, {});
    expect(login.status).toBe(200);
    expect(login.headers.get("content-type")).toMatch(/^text\/html/);
  });

  it("always redirects to login in login-redirect mode and answers 403 in forbidden mode", async () => {
    const redirecting = await startExtra({ archiveMode: "login-redirect" });
    const res = await get(archiveUrl(head, redirecting.webUrl));
    expect(res.status).toBe(302);
    expect(res.headers.get("location")).toMatch(/\/account\/signin\//);
    const forbidden = await startExtra({ archiveMode: "forbidden" });
    expect((await get(archiveUrl(head, forbidden.webUrl))).status).toBe(403);
  });

  it("sends the access-token rate-limit headers on archive downloads too", async () => {
    const res = await get(archiveUrl(head));
    expect(res.headers.get("x-ratelimit-limit")).toMatch(/^\d+$/);
  });
});

describe("Bitbucket emulator controls", () => {
  it("records each request with its origin, path, raw query and Authorization", async () => {
    bb.resetRequests();
    await get(srcUrl(head, "layers/with-lfs/model.bin"));
    await get(archiveUrl(), basic);
    const [api, web] = bb.requests;
    expect(api).toMatchObject({ method: "GET", host: "api", origin: new URL(bb.apiUrl).origin });
    expect(api?.authorization).toBe(bearer.authorization);
    expect(api?.path).toBe(`/2.0/repositories/acme/layers/src/${head}/layers/with-lfs/model.bin`);
    expect(web).toMatchObject({ host: "web", origin: bb.webUrl, authorization: basic.authorization });
    function archiveUrl() {
      return `${bb.webUrl}/acme/layers/get/${head}.tar.gz`;
    }
  });

  it("applies an injected fault the given number of times, then answers normally", async () => {
    bb.inject({
      match: (r) => r.path.endsWith("/refs/branches/main"),
      fault: { kind: "status", status: 500, body: { type: "error", error: { message: "boom" } } },
      times: 2,
    });
    const url = `${repoUrl()}/refs/branches/main`;
    expect((await get(url)).status).toBe(500);
    expect((await get(url)).status).toBe(500);
    expect((await get(url)).status).toBe(200);
  });

  it("drops pending faults on clearFaults", async () => {
    bb.inject({ match: () => true, fault: { kind: "status", status: 503 }, times: Number.POSITIVE_INFINITY });
    bb.clearFaults();
    expect((await get(repoUrl())).status).toBe(200);
  });
});
