import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { startGitHubEmulator } from "../emulators/github.ts";
import type { Fault } from "../emulators/server.ts";
import { blobSha } from "../fixtures/repo.ts";
import { type CoreOptions, on, type Provider, runCore, useSources, zipBytes } from "./harness.ts";
import { GITHUB_TOKEN, watchSecrets } from "./secrets.ts";

watchSecrets();

const baselines = new Map<string, Buffer>();
let run = 0;
const sources = useSources({
  setup: async (started) => {
    for (const provider of ["bitbucket", "github"] as const) {
      for (const strategy of ["walk", "archive"] as const) {
        const outDir = join(started.dir, `baseline-${provider}-${strategy}`);
        const r = await runCore(started, { provider, strategy, paths: ["layers/data"], ref: "main", outDir });
        baselines.set(`${provider}:${strategy}`, await zipBytes(outDir, r));
      }
    }
  },
});

/** The requests that download layers/data/blob.bin, whatever the provider. */
function blobDownload(provider: Provider) {
  if (provider === "bitbucket") return on("api", /\/src\/[0-9a-f]{40}\/layers\/data\/blob\.bin$/);
  const sha = blobSha(sources.repo.head().entries.get("layers/data/blob.bin")?.content ?? Buffer.alloc(0));
  return on("api", new RegExp(`/git/blobs/${sha}$`));
}

function listing(provider: Provider) {
  return provider === "bitbucket" ? on("api", /\/src\/[0-9a-f]{40}\/layers\/data\/$/) : on("api", /\/git\/trees\//);
}

function archiveDownload(provider: Provider) {
  return provider === "bitbucket" ? on("web", /\/get\/[0-9a-f]{40}\.tar\.gz$/) : on("codeload", /legacy\.tar\.gz/);
}

async function faultedRun(
  provider: Provider,
  strategy: "walk" | "archive",
  extra: Partial<CoreOptions> = {},
): Promise<{ bytes: Buffer; waits: number[] }> {
  const outDir = join(sources.dir, `faulted-${++run}`);
  const r = await runCore(sources, { provider, strategy, paths: ["layers/data"], ref: "main", outDir, ...extra });
  return { bytes: await zipBytes(outDir, r), waits: r.waits };
}

describe("a fault-free run", () => {
  it("gives the same bytes under walk and archive, so every faulted run below has one reference", () => {
    expect(baselines.get("bitbucket:walk")?.equals(baselines.get("bitbucket:archive") ?? Buffer.alloc(0))).toBe(true);
    expect(baselines.get("github:walk")?.equals(baselines.get("github:archive") ?? Buffer.alloc(0))).toBe(true);
  });
});

const bodyFaults: [string, Fault][] = [
  ["answers 500 Internal Server Error", { kind: "status", status: 500, body: { message: "boom" } }],
  ["answers 503 Service Unavailable", { kind: "status", status: 503, body: "upstream unavailable" }],
  ["resets the connection halfway through the body", { kind: "reset-mid-body" }],
  ["declares a Content-Length longer than the body it sends", { kind: "length-mismatch" }],
  ["sends half the body with a Content-Length that matches the half", { kind: "truncate-body" }],
];

for (const provider of ["bitbucket", "github"] as const) {
  describe(`${provider}: a file download that fails once`, () => {
    for (const [what, fault] of bodyFaults) {
      it(`is retried when it ${what}, and the zip is byte-identical to a fault-free run`, async () => {
        sources.emulator(provider).inject({ match: blobDownload(provider), fault, times: 1 });
        const before = sources.emulator(provider).requests.length;
        const { bytes, waits } = await faultedRun(provider, "walk");
        expect(bytes.equals(baselines.get(`${provider}:walk`) ?? Buffer.alloc(0))).toBe(true);
        const downloads = sources
          .emulator(provider)
          .requests.slice(before)
          .filter((q) => blobDownload(provider)(q));
        expect(downloads).toHaveLength(2);
        expect(waits).toHaveLength(1);
      });
    }

    it("is retried when it answers slower than --timeout, byte-identical afterwards", async () => {
      sources
        .emulator(provider)
        .inject({ match: blobDownload(provider), fault: { kind: "delay", ms: 1500 }, times: 1 });
      const { bytes, waits } = await faultedRun(provider, "walk", { flags: { timeout: "1" } });
      expect(bytes.equals(baselines.get(`${provider}:walk`) ?? Buffer.alloc(0))).toBe(true);
      expect(waits).toHaveLength(1);
    });
  });

  describe(`${provider}: a listing that fails`, () => {
    it("is retried on 503 twice in a row, within the retry budget", async () => {
      sources.emulator(provider).inject({
        match: listing(provider),
        fault: { kind: "status", status: 503, body: "" },
        times: 2,
      });
      const { bytes, waits } = await faultedRun(provider, "walk");
      expect(bytes.equals(baselines.get(`${provider}:walk`) ?? Buffer.alloc(0))).toBe(true);
      expect(waits).toHaveLength(2);
    });

    it("waits exactly the Retry-After of a 429 before asking again", async () => {
      sources.emulator(provider).inject({
        match: listing(provider),
        fault: {
          kind: "status",
          status: 429,
          headers: { "retry-after": "2" },
          body: { type: "error", error: { message: "Rate limit for this resource has been exceeded." } },
        },
        times: 1,
      });
      const { bytes, waits } = await faultedRun(provider, "walk");
      expect(bytes.equals(baselines.get(`${provider}:walk`) ?? Buffer.alloc(0))).toBe(true);
      expect(waits).toEqual([2000]);
    });
  });

  describe(`${provider}: an archive download that breaks once`, () => {
    const archiveFaults: [string, Fault][] = [
      ["is cut short (truncated gzip)", { kind: "truncate-body" }],
      ["is corrupt (bytes flipped mid-stream)", { kind: "corrupt-body" }],
      ["loses its connection halfway", { kind: "reset-mid-body" }],
      ["answers 502", { kind: "status", status: 502, body: "bad gateway" }],
    ];
    for (const [what, fault] of archiveFaults) {
      it(`is downloaded again when it ${what}, and the zip is byte-identical`, async () => {
        sources.emulator(provider).inject({ match: archiveDownload(provider), fault, times: 1 });
        const { bytes, waits } = await faultedRun(provider, "archive");
        expect(bytes.equals(baselines.get(`${provider}:archive`) ?? Buffer.alloc(0))).toBe(true);
        expect(waits).toHaveLength(1);
      });
    }
  });
}

describe("a body that fails before the stage has opened its file", () => {
  it("never becomes an uncaught exception, which would end the Lambda invocation", async () => {
    const uncaught: unknown[] = [];
    const monitor = (error: unknown) => uncaught.push(error);
    process.on("uncaughtExceptionMonitor", monitor);
    try {
      for (const provider of ["bitbucket", "github"] as const) {
        for (const fault of [{ kind: "reset-mid-body" }, { kind: "length-mismatch" }] as const) {
          sources.emulator(provider).inject({ match: blobDownload(provider), fault, times: 2 });
          const { bytes } = await faultedRun(provider, "walk");
          expect(bytes.equals(baselines.get(`${provider}:walk`) ?? Buffer.alloc(0))).toBe(true);
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    } finally {
      process.off("uncaughtExceptionMonitor", monitor);
    }
    expect(uncaught).toEqual([]);
  });
});

describe("github: a blob that comes back corrupted (same length, bytes flipped)", () => {
  it("fails its git blob id check, is downloaded again, and the zip is byte-identical", async () => {
    sources.gh.inject({ match: blobDownload("github"), fault: { kind: "corrupt-body" }, times: 1 });
    const { bytes, waits } = await faultedRun("github", "walk");
    expect(bytes.equals(baselines.get("github:walk") ?? Buffer.alloc(0))).toBe(true);
    expect(waits).toHaveLength(1);
  });
});

describe("github: rate limits answered with 403", () => {
  it("waits out a secondary rate limit for its retry-after, then gives identical bytes", async () => {
    sources.gh.secondaryRateLimit(1, 3);
    const { bytes, waits } = await faultedRun("github", "walk");
    expect(bytes.equals(baselines.get("github:walk") ?? Buffer.alloc(0))).toBe(true);
    expect(waits).toEqual([3000]);
  });

  it("waits for the primary limit's x-ratelimit-reset when remaining is 0, then gives identical bytes", async () => {
    const now = Date.UTC(2026, 10, 21, 10, 0, 0);
    const reset = now / 1000 + 5;
    sources.gh.inject({
      match: blobDownload("github"),
      fault: {
        kind: "status",
        status: 403,
        headers: { "x-ratelimit-remaining": "0", "x-ratelimit-reset": String(reset) },
        body: { message: "API rate limit exceeded for user ID 1.", documentation_url: "https://docs.github.com/rest" },
      },
      times: 1,
    });
    const { bytes, waits } = await faultedRun("github", "walk", { now: () => now });
    expect(bytes.equals(baselines.get("github:walk") ?? Buffer.alloc(0))).toBe(true);
    // until the reset, plus one second of margin for clocks that disagree
    expect(waits).toEqual([6000]);
  });
});

describe("github: a truncated recursive tree", () => {
  it("is walked one tree at a time with a warning, and the zip is byte-identical", async () => {
    const small = await startGitHubEmulator({ repos: [sources.repo], tokens: [GITHUB_TOKEN], truncateTreesOver: 1 });
    try {
      const outDir = join(sources.dir, "truncated-tree");
      const r = await runCore(sources, {
        provider: "github",
        paths: ["layers/data"],
        ref: "main",
        outDir,
        env: { SOURCE_API_URL: small.apiUrl },
      });
      expect((await zipBytes(outDir, r)).equals(baselines.get("github:walk") ?? Buffer.alloc(0))).toBe(true);
      expect(r.summary?.packages[0]?.warnings).toEqual([
        'GitHub truncated the recursive tree of "layers/data"; walked it one tree at a time instead',
      ]);
    } finally {
      await small.close();
    }
  });
});
