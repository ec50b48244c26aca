import { readdir } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { DEFAULTS } from "../../lib/common/config.ts";
import type { FaultRule } from "../emulators/server.ts";
import { blobSha, lfsPointer } from "../fixtures/repo.ts";
import {
  branch,
  type CoreOptions,
  type CoreRun,
  keysUnder,
  on,
  type Provider,
  pointerOf,
  runCore,
  type TarSpec,
  tarball,
  useSources,
} from "./harness.ts";
import { watchSecrets } from "./secrets.ts";

watchSecrets();

let chainRef: string;
const sources = useSources({
  bucket: "rel-hostile",
  setup: ({ repo }) => {
    chainRef = branch(repo, "links");
    const link = (target: string) => ({ kind: "symlink" as const, content: Buffer.from(target) });
    repo.commit(chainRef, {
      "layers/chain/ok.txt": { kind: "file", content: Buffer.from("ok\n") },
      "layers/chain/sub/up": link(".."),
      "layers/chain/escape": link("sub/up/.."),
      "layers/absolute/ok.txt": { kind: "file", content: Buffer.from("ok\n") },
      "layers/absolute/passwd": link("/etc/passwd"),
    });
  },
});
const { s3, ssm } = sources;

async function filesNamed(dir: string, pattern: RegExp): Promise<string[]> {
  const all = await readdir(dir, { recursive: true });
  return all.filter((f) => pattern.test(f));
}

interface Rejection {
  run: CoreRun;
  /** The package's error, or the run's when the whole run failed. */
  message: string;
}

/**
 * Run one folder into a fresh S3/SSM scope and check that nothing was written: no object, no pointer, and no
 * file named like the hostile entry anywhere in the scratch directory.
 */
async function rejected(o: Omit<CoreOptions, "aws" | "paths">, folder: string): Promise<Rejection> {
  const scope = sources.scope();
  const run = await runCore(sources, { ...o, paths: [folder], aws: scope });
  const pkg = folder.split("/").pop() ?? "";
  const message = run.error?.message ?? run.summary?.packages[0]?.error ?? "";
  expect(message, "the run should have been refused").not.toBe("");
  expect(run.summary?.packages[0]?.skipped ?? false).toBe(false);
  expect(await keysUnder(s3, sources.bucket, scope.artifactPrefix)).toEqual([]);
  expect(await pointerOf(ssm, scope.prefix, pkg)).toBeUndefined();
  expect(await filesNamed(sources.dir, /evil|passwd/)).toEqual([]);
  return { run, message };
}

// ------------------------------------------------------------------------------------------------ archives

const ROOT = "acme-layers-0123456";
const base: TarSpec[] = [
  { name: `${ROOT}/`, type: "directory" },
  { name: `${ROOT}/layers/`, type: "directory" },
  { name: `${ROOT}/layers/tools/`, type: "directory" },
  { name: `${ROOT}/layers/tools/ok.txt`, content: "ok\n" },
];

function archiveRoute(provider: Provider): FaultRule["match"] {
  return provider === "bitbucket" ? on("web", /\/get\/[0-9a-f]{40}\.tar\.gz$/) : on("api", /\/tarball\/[0-9a-f]{40}$/);
}

async function serveArchive(provider: Provider, extra: TarSpec[]): Promise<void> {
  sources.emulator(provider).inject({
    match: archiveRoute(provider),
    fault: {
      kind: "status",
      status: 200,
      headers: { "content-type": "application/x-gzip" },
      body: await tarball([...base, ...extra]),
    },
    times: Number.POSITIVE_INFINITY,
  });
}

const hostileArchives: [string, TarSpec[], RegExp][] = [
  [
    "an entry with `..` segments",
    [{ name: `${ROOT}/layers/tools/../../../evil.txt`, content: "x" }],
    /^entry "\.\.\/\.\.\/\.\.\/evil\.txt" in folder "layers\/tools" has a "\.\." segment and would leave the folder$/,
  ],
  [
    "an absolute entry inside the folder",
    [{ name: `${ROOT}/layers/tools//etc/passwd`, content: "x" }],
    /^entry "\/etc\/passwd" in folder "layers\/tools" is an absolute path$/,
  ],
  [
    "an entry whose name holds a NUL byte",
    [{ name: `${ROOT}/layers/tools/x.txt`, content: "x", pax: { path: `${ROOT}/layers/tools/evil\u0000.txt` } }],
    /^entry "evil\\\\x00\.txt" in folder "layers\/tools" contains a NUL byte$/,
  ],
  [
    "an entry whose name holds backslashes",
    [{ name: `${ROOT}/layers/tools/..\\..\\evil.txt`, content: "x" }],
    /^entry "\.\.\\\\\.\.\\\\evil\.txt" in folder "layers\/tools" contains a backslash$/,
  ],
  [
    "a symlink to an absolute path",
    [{ name: `${ROOT}/layers/tools/passwd`, type: "symlink", linkname: "/etc/passwd" }],
    /^symlink "passwd" in folder "layers\/tools" points to absolute path "\/etc\/passwd", which leaves the folder$/,
  ],
  [
    "a hard link",
    [{ name: `${ROOT}/layers/tools/evil-link`, type: "link", linkname: `${ROOT}/README.md` }],
    /^folder "layers\/tools" contains "evil-link" of type link, which a layer cannot hold$/,
  ],
];

for (const provider of ["bitbucket", "github"] as const) {
  describe(`${provider}: a hand-made archive holding`, () => {
    for (const [what, extra, message] of hostileArchives) {
      it(`${what} is refused with an error naming the entry, and nothing is written`, async () => {
        await serveArchive(provider, extra);
        const { message: got } = await rejected({ provider, strategy: "archive", ref: "main" }, "layers/tools");
        expect(got).toMatch(message);
      });
    }

    it("an absolute entry outside the top folder fails the whole run, naming both folders, and nothing is written", async () => {
      await serveArchive(provider, [{ name: "/etc/passwd", content: "x" }]);
      const { run } = await rejected({ provider, strategy: "archive", ref: "main" }, "layers/tools");
      expect(run.error?.message).toMatch(/the archive has more than one top folder \("acme-layers-0123456" and ""\)$/);
    });
  });
}

// ------------------------------------------------------------------------------------------------ listings

const bitbucketListing = (paths: string[]) => ({
  kind: "status" as const,
  status: 200,
  body: { values: paths.map((path) => ({ type: "commit_file", path, size: 3, attributes: [] })) },
});

describe("bitbucket: a hand-made listing holding", () => {
  const cases: [string, string, RegExp][] = [
    [
      "an entry with `..` segments",
      "layers/tools/../../../../../2.0/user",
      /^entry "\.\.\/\.\.\/\.\.\/\.\.\/\.\.\/2\.0\/user" in folder "layers\/tools" has a "\.\." segment and would leave the folder$/,
    ],
    ["an absolute path", "/etc/passwd", /^listing "layers\/tools" returned "\/etc\/passwd", which is outside it$/],
    [
      "a NUL byte",
      "layers/tools/evil\u0000.txt",
      /^entry "evil\\\\x00\.txt" in folder "layers\/tools" contains a NUL byte$/,
    ],
    [
      "a backslash",
      "layers/tools/..\\evil.txt",
      /^entry "\.\.\\\\evil\.txt" in folder "layers\/tools" contains a backslash$/,
    ],
  ];
  for (const [what, path, message] of cases) {
    it(`${what} is refused before anything is downloaded for it, and nothing is written`, async () => {
      sources.bb.inject({
        match: on("api", /\/src\/[0-9a-f]{40}\/layers\/tools\/$/),
        fault: bitbucketListing([path]),
        times: Number.POSITIVE_INFINITY,
      });
      const before = sources.bb.requests.length;
      const { message: got } = await rejected({ provider: "bitbucket", strategy: "walk", ref: "main" }, "layers/tools");
      expect(got).toMatch(message);
      const downloads = sources.bb.requests
        .slice(before)
        .filter((q) => q.path.includes("/src/") && !q.path.endsWith("/"));
      expect(downloads.map((q) => q.path)).toEqual([]);
    });
  }
});

describe("a walk listing that names one path twice", () => {
  const twice =
    /^entry "a\.txt" in folder "layers\/tools" is listed twice; a git tree cannot hold that, so the source is corrupt or hostile$/;

  it("bitbucket: as two files, is refused naming it before anything is downloaded, and nothing is written", async () => {
    sources.bb.inject({
      match: on("api", /\/src\/[0-9a-f]{40}\/layers\/tools\/$/),
      fault: bitbucketListing(["layers/tools/a.txt", "layers/tools/a.txt"]),
      times: Number.POSITIVE_INFINITY,
    });
    const before = sources.bb.requests.length;
    const { message } = await rejected({ provider: "bitbucket", strategy: "walk", ref: "main" }, "layers/tools");
    expect(message).toMatch(twice);
    const downloads = sources.bb.requests
      .slice(before)
      .filter((q) => q.path.includes("/src/") && !q.path.endsWith("/"));
    expect(downloads.map((q) => q.path)).toEqual([]);
  });

  it("bitbucket: as a directory and a file, is refused naming it", async () => {
    sources.bb.inject({
      match: on("api", /\/src\/[0-9a-f]{40}\/layers\/tools\/$/),
      fault: {
        kind: "status",
        status: 200,
        body: {
          values: [
            { type: "commit_directory", path: "layers/tools/a.txt" },
            { type: "commit_file", path: "layers/tools/a.txt", size: 3, attributes: [] },
          ],
        },
      },
      times: Number.POSITIVE_INFINITY,
    });
    const { message } = await rejected({ provider: "bitbucket", strategy: "walk", ref: "main" }, "layers/tools");
    expect(message).toMatch(twice);
  });

  it("github: as two blobs, is refused naming it before anything is downloaded, and nothing is written", async () => {
    const readme = sources.repo.head().entries.get("layers/tools/README.md")?.content ?? Buffer.alloc(0);
    const blob = { path: "a.txt", mode: "100644", type: "blob", sha: blobSha(readme), size: readme.length };
    sources.gh.inject({
      match: on("api", /\/git\/trees\//),
      fault: { kind: "status", status: 200, body: { sha: "0".repeat(40), truncated: false, tree: [blob, blob] } },
      times: Number.POSITIVE_INFINITY,
    });
    const before = sources.gh.requests.length;
    const { message } = await rejected({ provider: "github", strategy: "walk", ref: "main" }, "layers/tools");
    expect(message).toMatch(twice);
    const downloads = sources.gh.requests
      .slice(before)
      .filter((q) => !/\/(commits|contents|git\/trees)\//.test(q.path));
    expect(downloads.map((q) => q.path)).toEqual([]);
  });
});

describe("github: a hand-made tree holding", () => {
  const readme = () => sources.repo.head().entries.get("layers/tools/README.md")?.content ?? Buffer.alloc(0);
  const tree = (items: { path: string; sha?: string; mode?: string }[]) => ({
    kind: "status" as const,
    status: 200,
    body: {
      sha: "0".repeat(40),
      truncated: false,
      tree: items.map((i) => ({
        path: i.path,
        mode: i.mode ?? "100644",
        type: "blob",
        sha: i.sha ?? blobSha(readme()),
        size: readme().length,
      })),
    },
  });
  const cases: [string, { path: string; sha?: string }, RegExp][] = [
    [
      "an entry with `..` segments",
      { path: "../../evil.txt" },
      /^entry "\.\.\/\.\.\/evil\.txt" in folder "layers\/tools" has a "\.\." segment and would leave the folder$/,
    ],
    [
      "an absolute path",
      { path: "/etc/passwd" },
      /^entry "\/etc\/passwd" in folder "layers\/tools" is an absolute path$/,
    ],
    [
      "a NUL byte",
      { path: "evil\u0000.txt" },
      /^entry "evil\\\\x00\.txt" in folder "layers\/tools" contains a NUL byte$/,
    ],
    [
      "a backslash",
      { path: "..\\evil.txt" },
      /^entry "\.\.\\\\evil\.txt" in folder "layers\/tools" contains a backslash$/,
    ],
    [
      "a blob id that is not a SHA",
      { path: "fine.txt", sha: "../../../../user" },
      /^tree entry "fine\.txt" of "layers\/tools" has a malformed object id "\.\.\/\.\.\/\.\.\/\.\.\/user"$/,
    ],
  ];
  for (const [what, item, message] of cases) {
    it(`${what} is refused before anything is downloaded for it, and nothing is written`, async () => {
      sources.gh.inject({ match: on("api", /\/git\/trees\//), fault: tree([item]), times: Number.POSITIVE_INFINITY });
      const before = sources.gh.requests.length;
      const { message: got } = await rejected({ provider: "github", strategy: "walk", ref: "main" }, "layers/tools");
      expect(got).toMatch(message);
      const downloads = sources.gh.requests
        .slice(before)
        .filter((q) => !/\/(commits|contents|git\/trees)\//.test(q.path));
      expect(downloads.map((q) => q.path)).toEqual([]);
    });
  }
});

describe("github: a tree that stays truncated", () => {
  it("with the contents API and the archive failing too, fails the package naming every route, and nothing is written", async () => {
    const truncated = (recursive: boolean) => ({
      match: (t: { host: string; path: string; url: URL }) =>
        t.host === "api" && t.path.includes("/git/trees/") && t.url.searchParams.has("recursive") === recursive,
      fault: {
        kind: "status" as const,
        status: 200,
        body: { sha: "0".repeat(40), truncated: true, tree: [] },
      },
      times: Number.POSITIVE_INFINITY,
    });
    sources.gh.inject(truncated(true));
    sources.gh.inject(truncated(false));
    // the first contents request is the folder's tree SHA; the listing after it answers an empty directory
    let contents = 0;
    sources.gh.inject({
      match: (t) => t.host === "api" && t.path.endsWith("/contents/layers/data") && ++contents > 1,
      fault: { kind: "status", status: 200, body: [] },
      times: Number.POSITIVE_INFINITY,
    });
    sources.gh.inject({
      match: (t) => t.host === "api" && t.path.includes("/tarball/"),
      fault: { kind: "status", status: 403, body: { message: "Resource not accessible" } },
      times: Number.POSITIVE_INFINITY,
    });
    const { message, run } = await rejected({ provider: "github", strategy: "walk", ref: "main" }, "layers/data");
    expect(message).toMatch(
      /^the tree of "layers\/data" is too large even without recursion; the contents API \(GET \S+\/contents\/layers\/data\?ref=[0-9a-f]{40} \(list "layers\/data"\)\) cannot list it: its listing does not rebuild the tree \(an executable or submodule it cannot show\); and the archive route failed too: GET \S+\/tarball\/[0-9a-f]{40} \(download the repository tarball\) was refused \(HTTP 403\)$/,
    );
    expect(run.summary?.packages[0]?.warnings).toEqual([
      'GitHub truncated the recursive tree of "layers/data"; walked it one tree at a time instead',
    ]);
  });
});

// ------------------------------------------------------------------------------------------------ symlinks

for (const provider of ["bitbucket", "github"] as const) {
  for (const strategy of ["walk", "archive"] as const) {
    describe(`${provider} ${strategy}: a symlink`, () => {
      it("that escapes through another symlink (escape -> sub/up/.., sub/up -> ..) is refused, naming both", async () => {
        const { message } = await rejected({ provider, strategy, ref: chainRef }, "layers/chain");
        expect(message).toBe(
          'symlink "escape" in folder "layers/chain" points to "sub/up/..", which leaves the folder through symlink "sub/up"',
        );
      });

      it("to an absolute path is refused, naming it", async () => {
        const { message } = await rejected({ provider, strategy, ref: chainRef }, "layers/absolute");
        expect(message).toBe(
          'symlink "passwd" in folder "layers/absolute" points to absolute path "/etc/passwd", which leaves the folder',
        );
      });
    });
  }
}

// ------------------------------------------------------------------------------------------------ limits

for (const provider of ["bitbucket", "github"] as const) {
  for (const strategy of ["walk", "archive"] as const) {
    describe(`${provider} ${strategy}: a folder over the limits`, () => {
      it("over --max-bytes is refused, naming the folder, the limit and the entry that crossed it", async () => {
        const { message } = await rejected(
          { provider, strategy, ref: "main", flags: { "max-bytes": "50000" } },
          "layers/data",
        );
        expect(message).toMatch(
          /^folder "layers\/data" is over 50000 bytes unzipped \(reached \d+ at "blob\.bin"\); that is the limit SOURCE_MAX_BYTES sets — raise it \(up to 262144000, Lambda's 250 MiB for a function and its layers\) or split the folder$/,
        );
        expect(message).not.toMatch(/lower/);
      });

      it("with more files than --max-files is refused, naming the folder and the limit", async () => {
        const { message } = await rejected(
          { provider, strategy, ref: "main", flags: { "max-files": "10" } },
          "layers/py-requests",
        );
        expect(message).toBe(
          'folder "layers/py-requests" has more than 10 files (limit SOURCE_MAX_FILES); split the folder or raise the limit',
        );
      });
    });
  }
}

describe("the default size limit", () => {
  it("is Lambda's 250 MiB, unzipped", () => {
    expect(DEFAULTS.maxBytes).toBe(250 * 1024 * 1024);
  });

  for (const provider of ["bitbucket", "github"] as const) {
    it(`${provider}: refuses a file whose listed size alone is over it, before reading its body`, async () => {
      const declared = DEFAULTS.maxBytes + 1;
      const content = sources.repo.head().entries.get("layers/data/blob.bin")?.content ?? Buffer.alloc(0);
      if (provider === "bitbucket") {
        sources.bb.inject({
          match: on("api", /\/src\/[0-9a-f]{40}\/layers\/data\/$/),
          fault: {
            kind: "status",
            status: 200,
            body: { values: [{ type: "commit_file", path: "layers/data/blob.bin", size: declared, attributes: [] }] },
          },
          times: Number.POSITIVE_INFINITY,
        });
      } else {
        sources.gh.inject({
          match: on("api", /\/git\/trees\//),
          fault: {
            kind: "status",
            status: 200,
            body: {
              sha: "0".repeat(40),
              truncated: false,
              tree: [{ path: "blob.bin", mode: "100644", type: "blob", sha: blobSha(content), size: declared }],
            },
          },
          times: Number.POSITIVE_INFINITY,
        });
      }
      const { message, run } = await rejected({ provider, strategy: "walk", ref: "main" }, "layers/data");
      expect(message).toMatch(
        new RegExp(
          `^folder "layers/data" is over ${DEFAULTS.maxBytes} bytes unzipped \\(reached ${declared} at "blob\\.bin"\\); Lambda allows 250 MiB unzipped for a function and its layers together — split the folder into smaller layers$`,
        ),
      );
      expect(run.waits).toEqual([]); // refused, not retried
    });
  }
});

// ------------------------------------------------------------------------------------------------ LFS and submodules

describe("Git LFS files that cannot be resolved", () => {
  const model = () => sources.repo.head().entries.get("layers/with-lfs/model.bin")?.content ?? Buffer.alloc(0);

  for (const strategy of ["walk", "archive"] as const) {
    it(`bitbucket ${strategy}: fail the package naming the file when the media host has no object`, async () => {
      sources.bb.inject({
        match: (t) => t.host === "media",
        fault: { kind: "status", status: 404, body: { error: { code: "NotFound", title: "File not found" } } },
        times: Number.POSITIVE_INFINITY,
      });
      const { message } = await rejected({ provider: "bitbucket", strategy, ref: "main" }, "layers/with-lfs");
      expect(message).toMatch(/"(layers\/with-lfs\/)?model\.bin"/);
      expect(message).toMatch(/404/);
    });

    it(`github ${strategy}: fail the package naming the file when the media host serves the pointer again`, async () => {
      sources.gh.inject({
        match: (t) => t.host === "media",
        fault: { kind: "status", status: 200, body: lfsPointer(model()) },
        times: Number.POSITIVE_INFINITY,
      });
      const { message } = await rejected({ provider: "github", strategy, ref: "main" }, "layers/with-lfs");
      expect(message).toBe(
        'folder "layers/with-lfs": Git LFS file "model.bin" could not be resolved (the media host returned the pointer again; is the LFS object uploaded?)',
      );
    });
  }

  it("github: fail the package naming the file when GitHub gives no download URL", async () => {
    sources.gh.inject({
      match: on("api", /\/contents\/layers\/with-lfs\/model\.bin$/),
      fault: { kind: "status", status: 200, body: { type: "file", download_url: null } },
      times: Number.POSITIVE_INFINITY,
    });
    const { message } = await rejected({ provider: "github", strategy: "walk", ref: "main" }, "layers/with-lfs");
    expect(message).toBe(
      'folder "layers/with-lfs": Git LFS file "model.bin" could not be resolved (GitHub gave no download URL)',
    );
  });
});

describe("a submodule", () => {
  for (const provider of ["bitbucket", "github"] as const) {
    for (const strategy of ["walk", "archive"] as const) {
      it(`${provider} ${strategy}: fails the package naming it, and nothing is written`, async () => {
        const { message } = await rejected({ provider, strategy, ref: "main" }, "layers/with-submodule");
        expect(message).toMatch(
          /^folder "layers\/with-submodule" contains a submodule (\(or an empty directory\) )?at "vendor"; submodules cannot be packaged — vendor the code into the folder instead$/,
        );
      });
    }
  }
});
