/**
 * `layer-sync sync --builder local` on a repository with build folders (GitHub emulator, real uv and npm,
 * moto for S3 and SSM): one zip per target, the build metadata on the artifact, and a second run that
 * builds and uploads nothing.
 */

import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../cli/main.ts";
import { type GitHubEmulator, startGitHubEmulator } from "../emulators/github.ts";
import { FixtureRepo } from "../fixtures/repo.ts";
import { createBucket, uniqueName } from "../support/aws.ts";
import { cycloneDx15Errors } from "../support/cyclonedx.ts";
import { captureIo } from "../support/zip.ts";

const FIXTURES = resolve(import.meta.dirname, "../fixtures/build");
const LOCKS = resolve(import.meta.dirname, "../fixtures/locks");
const TIMEOUT = 180_000;
let gh: GitHubEmulator;
let out: string;

interface Summary {
  packages: {
    name: string;
    path: string;
    key: string;
    sha256: string;
    skipped: boolean;
    reason: string | null;
    error?: string;
    build?: {
      runtime: string;
      architecture: string;
      fingerprint: string;
      builder: string;
      id: string | null;
      sbom?: { key: string; components: number };
    };
  }[];
}

beforeAll(async () => {
  const repo = new FixtureRepo("acme", "layers");
  const file = async (p: string) => ({ kind: "file" as const, content: await readFile(join(FIXTURES, p)) });
  repo.commit(
    "main",
    {
      "layers/pydeps/requirements.txt": { kind: "file", content: Buffer.from("PyYAML==6.0.2\nsix==1.17.0\n") },
      "layers/pydeps/layer.json": {
        kind: "file",
        content: Buffer.from(
          JSON.stringify({
            description: "yaml",
            build: { runtimes: ["python3.12"], architectures: ["x86_64", "arm64"] },
          }),
        ),
      },
      "layers/nodedeps/package.json": await file("node-bin/package.json"),
      "layers/nodedeps/package-lock.json": await file("node-bin/package-lock.json"),
      "layers/uvdeps/pyproject.toml": { kind: "file", content: await readFile(join(LOCKS, "uv/pyproject.toml")) },
      "layers/uvdeps/uv.lock": { kind: "file", content: await readFile(join(LOCKS, "uv/uv.lock")) },
      "layers/uvdeps/layer.json": {
        kind: "file",
        content: Buffer.from(JSON.stringify({ build: { runtimes: ["python3.12"] } })),
      },
      "layers/stale/pyproject.toml": {
        kind: "file",
        content: Buffer.from(
          (await readFile(join(LOCKS, "uv/pyproject.toml"), "utf8")).replace('"tqdm"]', '"tqdm", "attrs>=23"]'),
        ),
      },
      "layers/stale/uv.lock": { kind: "file", content: await readFile(join(LOCKS, "uv/uv.lock")) },
      "layers/nodedeps/nodejs/node_modules/local-helper/index.js": {
        kind: "file",
        content: Buffer.from("module.exports = 42;\n"),
      },
    },
    "build folders",
  );
  gh = await startGitHubEmulator({ repos: [repo], publicRepos: true });
  out = await mkdtemp(join(tmpdir(), "ls-cli-build-"));
});
afterAll(async () => {
  await gh.close();
  await rm(out, { recursive: true, force: true });
});

async function sync(args: string[], paths = ["layers/pydeps", "layers/nodedeps"]) {
  const cap = captureIo();
  const code = await main(
    [
      "sync",
      "--provider",
      "github",
      "--repository",
      "acme/layers",
      "--api-url",
      gh.apiUrl,
      ...paths.flatMap((p) => ["--path", p]),
      "--runtimes",
      "nodejs22.x",
      "--builder",
      "local",
      "--json",
      "--work-dir",
      join(out, "work"),
      ...args,
    ],
    {
      PATH: process.env.PATH,
      NODE_EXTRA_CA_CERTS: process.env.NODE_EXTRA_CA_CERTS,
      HTTPS_PROXY: process.env.HTTPS_PROXY,
      SSL_CERT_FILE: process.env.SSL_CERT_FILE,
      // layer-sync's tool cache (the pinned uv) in the project's ignored .cache
      XDG_CACHE_HOME: resolve(import.meta.dirname, "../../.cache"),
    },
    cap.io,
  );
  return { code, stderr: cap.stderr(), summary: () => JSON.parse(cap.stdout()) as Summary };
}

describe("layer-sync sync with build folders", () => {
  it("writes one zip per target with --out and reports each build", { timeout: TIMEOUT }, async () => {
    const dir = join(out, "dist");
    const r = await sync(["--out", dir], ["layers/pydeps", "layers/nodedeps", "layers/uvdeps"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const s = r.summary();
    expect(s.packages.map((p) => [p.name, p.path, p.build?.runtime, p.build?.architecture, p.build?.builder])).toEqual([
      ["pydeps-python312-x86_64", "layers/pydeps", "python3.12", "x86_64", "local"],
      ["pydeps-python312-arm64", "layers/pydeps", "python3.12", "arm64", "local"],
      ["nodedeps", "layers/nodedeps", "nodejs22.x", "x86_64", "local"],
      ["uvdeps", "layers/uvdeps", "python3.12", "x86_64", "local"],
    ]);
    for (const p of s.packages) {
      expect(p.build?.fingerprint).toMatch(/^[0-9a-f]{64}$/);
      expect(p.build?.id).toBeNull();
      expect(p.key).toMatch(new RegExp(`^layers/${p.name}/${p.name}-\\d{8}T\\d{6}Z-[0-9a-f]{7}\\.zip$`));
      // the zip and its SBOM beside it
      expect(p.build?.sbom?.key).toBe(p.key.replace(/\.zip$/, ".cdx.json"));
      expect((await readdir(join(dir, "layers", p.name))).sort()).toEqual(
        [p.key, p.build?.sbom?.key].map((k) => k?.split("/").pop()).sort(),
      );
      const bom = JSON.parse(await readFile(join(dir, ...(p.build?.sbom?.key ?? "").split("/")), "utf8"));
      expect(cycloneDx15Errors(bom)).toEqual([]);
      expect(bom.components).toHaveLength(p.build?.sbom?.components ?? -1);
    }
    const purls = async (name: string) => {
      const p = s.packages.find((x) => x.name === name);
      const bom = JSON.parse(await readFile(join(dir, ...(p?.build?.sbom?.key ?? "").split("/")), "utf8"));
      return bom.components.map((c: { purl: string }) => c.purl);
    };
    expect(await purls("pydeps-python312-x86_64")).toEqual(["pkg:pypi/pyyaml@6.0.2", "pkg:pypi/six@1.17.0"]);
    expect(await purls("uvdeps")).toContain("pkg:pypi/requests@2.34.2");
    expect(await purls("uvdeps")).not.toContain(expect.stringMatching(/pytest/));
  });

  it("fails the targets of a folder whose lock is out of date, naming the file and the command", {
    timeout: TIMEOUT,
  }, async () => {
    const r = await sync(["--out", join(out, "stale")], ["layers/stale"]);
    expect(r.code).toBe(1);
    const [only] = r.summary().packages;
    expect(only?.error).toMatch(
      /layers\/stale\/uv\.lock is out of date with pyproject\.toml .*run `uv lock` and commit uv\.lock/,
    );
  });

  it("uploads with build metadata once, and a second run builds and uploads nothing", {
    timeout: TIMEOUT,
  }, async () => {
    const bucket = await createBucket(uniqueName("build"));
    const prefix = `/${uniqueName("ls")}`;
    const first = await sync(["--bucket", bucket, "--parameter-prefix", prefix]);
    expect(first.stderr).toBe("");
    const s1 = first.summary();
    expect(s1.packages.every((p) => !p.skipped && !p.error)).toBe(true);
    const s3 = new S3Client({});
    const arm = s1.packages.find((p) => p.name === "pydeps-python312-arm64");
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: arm?.key }));
    expect(head.Metadata).toMatchObject({
      "build-fingerprint": arm?.build?.fingerprint,
      runtime: "python3.12",
      architecture: "arm64",
      source: "github:acme/layers:layers/pydeps",
    });
    const config = JSON.parse(Buffer.from(head.Metadata?.["layer-config"] ?? "", "base64url").toString("utf8"));
    expect(config).toEqual({ description: "yaml", runtimes: ["python3.12"], architectures: ["arm64"] });
    // the SBOM beside the artifact, its SHA-256 in the artifact's metadata
    const bom = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: arm?.build?.sbom?.key }));
    const text = (await bom.Body?.transformToString("utf8")) ?? "";
    expect(arm?.build?.sbom?.key).toBe(arm?.key.replace(/\.zip$/, ".cdx.json"));
    expect(head.Metadata?.["sbom-sha256"]).toBe(createHash("sha256").update(text).digest("hex"));
    expect(cycloneDx15Errors(JSON.parse(text))).toEqual([]);

    const second = await sync(["--bucket", bucket, "--parameter-prefix", prefix]);
    const s2 = second.summary();
    expect(s2.packages.map((p) => [p.name, p.skipped, p.reason])).toEqual(
      s1.packages.map((p) => [p.name, true, "unchanged"]),
    );
    expect(s2.packages.map((p) => p.key)).toEqual(s1.packages.map((p) => p.key));
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
    expect(listed.KeyCount).toBe(6); // three zips, three SBOMs
  });
});
