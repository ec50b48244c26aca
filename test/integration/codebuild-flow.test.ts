/**
 * The AWS build flow on moto (issue 13's "Done"): the sync handler starts one CodeBuild build per target with
 * the exact overrides, and the build-finished event, with a real output made by the same recipe run locally,
 * moves the pointer. moto ignores StartBuild's overrides, so the requests are captured and asserted as sent.
 */
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BatchGetProjectsCommand, CodeBuildClient } from "@aws-sdk/client-codebuild";
import { GetObjectCommand, HeadObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { GetParameterCommand, PutParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import type { Context } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { handler as buildHandler } from "../../handlers/build.ts";
import { codeBuildClient } from "../../handlers/runtime.ts";
import { handler as syncHandler } from "../../handlers/sync.ts";
import { type GitHubEmulator, startGitHubEmulator } from "../emulators/github.ts";
import { FixtureRepo } from "../fixtures/repo.ts";
import { createBucket, MOTO_ACCOUNT_ID, uniqueName } from "../support/aws.ts";
import {
  buildOutputLocally,
  captureRequests,
  createBuildProjects,
  type Projects,
  putBuildArtifact,
} from "../support/codebuild.ts";
import { cycloneDx15Errors } from "../support/cyclonedx.ts";
import { readZip } from "../support/zip.ts";

const TIMEOUT = 180_000;
const INDEX_TOKEN = "idx-secret-5c2e9a7b1d3f";
const REQUIREMENTS = "# the one dependency\nsix == 1.17.0  # pinned\n";
const s3 = new S3Client({});
const ssm = new SSMClient({});
const context = { functionName: "layer-sync", awsRequestId: "cb" } as unknown as Context;
let gh: GitHubEmulator;
let bucket: string;
let prefix: string;
let projects: Projects;
let dir: string;
const sent = captureRequests(codeBuildClient());

interface Entry {
  name: string;
  key: string | null;
  skipped: boolean;
  reason: string | null;
  error?: string;
  build: { runtime: string; architecture: string; fingerprint: string; builder: string; id: string | null };
}

beforeAll(async () => {
  const repo = new FixtureRepo("acme", "layers");
  repo.commit(
    "main",
    {
      "layers/pydeps/requirements.txt": { kind: "file", content: Buffer.from(REQUIREMENTS) },
      "layers/pydeps/python/mymodule.py": { kind: "file", content: Buffer.from("VALUE = 1\n") },
      "layers/pydeps-python312-arm64/python/other.py": { kind: "file", content: Buffer.from("OTHER = 1\n") },
      "layers/pydeps/layer.json": {
        kind: "file",
        content: Buffer.from(
          JSON.stringify({ build: { runtimes: ["python3.12"], architectures: ["x86_64", "arm64"] } }),
        ),
      },
    },
    "build folder",
  );
  gh = await startGitHubEmulator({ repos: [repo], publicRepos: true });
  bucket = await createBucket(uniqueName("cb"));
  prefix = `/${uniqueName("cb")}`;
  projects = await createBuildProjects(bucket);
  await ssm.send(new PutParameterCommand({ Name: `${prefix}/index-token`, Value: INDEX_TOKEN, Type: "SecureString" }));
  dir = await mkdtemp(join(tmpdir(), "ls-cb-"));
  Object.assign(process.env, {
    SOURCE_PROVIDER: "github",
    SOURCE_REPOSITORY: "acme/layers",
    SOURCE_REF: "main",
    SOURCE_PATHS: "layers/pydeps",
    SOURCE_API_URL: gh.apiUrl,
    ARTIFACT_BUCKET: bucket,
    PARAMETER_PREFIX: prefix,
    BUILD_PROJECT_X86_64: projects.x86_64,
    BUILD_PROJECT_ARM64: projects.arm64,
    BUILD_PIP_INDEX_URL: "https://pypi.org/simple/",
    BUILD_INDEX_TOKEN_PARAMETER: `${prefix}/index-token`,
    POWERTOOLS_DEV: "true",
  });
});
afterAll(async () => {
  await gh.close();
  await rm(dir, { recursive: true, force: true });
});

const sync = async () => (await syncHandler({}, context)) as { packages: Entry[]; requests: { total: number } };

function finishedEvent(id: string, project: string, status: string, artifact?: { location: string; sha256: string }) {
  const arn = `arn:aws:codebuild:eu-west-1:${MOTO_ACCOUNT_ID}:build/${id}`;
  return {
    version: "0",
    id: "c030038d-8c4d-6141-9545-00ff7b7153aa",
    "detail-type": "CodeBuild Build State Change",
    source: "aws.codebuild",
    account: MOTO_ACCOUNT_ID,
    time: "2026-12-01T10:00:00Z",
    region: "eu-west-1",
    resources: [arn],
    detail: {
      "build-status": status,
      "project-name": project,
      "build-id": arn,
      "current-phase": "COMPLETED",
      ...(artifact
        ? { "additional-information": { artifact: { location: artifact.location, sha256sum: artifact.sha256 } } }
        : {}),
    },
  };
}

let started: Entry[] = [];

describe("the sync handler with build folders in Lambda", () => {
  it("starts one CodeBuild build per target with the exact overrides", { timeout: TIMEOUT }, async () => {
    const summary = await sync();
    started = summary.packages;
    expect(started.map((p) => [p.name, p.skipped, p.reason, p.error])).toEqual([
      ["pydeps-python312-x86_64", true, "building", undefined],
      ["pydeps-python312-arm64", true, "building", undefined],
    ]);
    const starts = sent.filter((r) => r.command === "StartBuildCommand");
    expect(starts).toHaveLength(2);
    for (const [i, arch] of (["x86_64", "arm64"] as const).entries()) {
      const p = started[i] as Entry;
      const fp = p.build.fingerprint;
      expect(p.build).toEqual({
        runtime: "python3.12",
        architecture: arch,
        fingerprint: expect.stringMatching(/^[0-9a-f]{64}$/),
        builder: "codebuild",
        id: expect.stringMatching(new RegExp(`^${projects[arch]}:[0-9a-f-]{36}$`)),
      });
      const input = (starts[i] as (typeof starts)[number]).input;
      expect(input).toEqual({
        projectName: projects[arch],
        sourceTypeOverride: "S3",
        sourceLocationOverride: `${bucket}/build-source/${p.name}/${fp}.zip`,
        imageOverride: `public.ecr.aws/sam/build-python3.12:latest-${arch}`,
        imagePullCredentialsTypeOverride: "CODEBUILD",
        buildspecOverride: expect.any(String),
        environmentVariablesOverride: [
          { name: "LAYER_SYNC_RUNTIME", value: "python3.12", type: "PLAINTEXT" },
          { name: "LAYER_SYNC_ARCHITECTURE", value: arch, type: "PLAINTEXT" },
          { name: "LAYER_SYNC_PACKAGE", value: p.name, type: "PLAINTEXT" },
          { name: "LAYER_SYNC_FINGERPRINT", value: fp, type: "PLAINTEXT" },
          { name: "LAYER_SYNC_PIP_INDEX_URL", value: "https://pypi.org/simple/", type: "PLAINTEXT" },
          { name: "LAYER_SYNC_INDEX_TOKEN", value: `${prefix}/index-token`, type: "PARAMETER_STORE" },
        ],
        artifactsOverride: {
          type: "S3",
          location: bucket,
          path: `build-output/${arch}/${p.name}`,
          name: `${fp}.zip`,
          packaging: "ZIP",
          namespaceType: "NONE",
          encryptionDisabled: false,
        },
        timeoutInMinutesOverride: 30,
      });
      const spec = String(input.buildspecOverride);
      expect(spec).toMatch(/^version: 0\.2\n/);
      const script = JSON.parse(spec.split("\n")[6]?.slice("      - ".length) ?? "") as string;
      expect(script).toContain(
        "pip download --no-input --disable-pip-version-check --only-binary=:all: --dest /tmp/layer-sync-build/download/wheels -r /tmp/layer-sync-build/download/requirements.txt",
      );
      expect(script).toContain(
        "pip install --no-input --disable-pip-version-check --no-compile --no-warn-script-location --no-index --find-links /tmp/layer-sync-build/download/wheels --target /tmp/layer-sync-build/layer/python -r /tmp/layer-sync-build/download/requirements.txt",
      );
      expect(spec).toContain('    - ".layer-sync-output.tar.gz"');
      // the source the build reads is the folder's zip
      const src = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: `build-source/${p.name}/${fp}.zip` }));
      const entries = await readZip(Buffer.from(await (src.Body?.transformToByteArray() ?? [])));
      expect(entries.map((e) => e.name)).toEqual(["python/mymodule.py", "requirements.txt"]);
      // with its requirement file sanitized by layer-sync, never the original
      expect(entries.find((e) => e.name === "requirements.txt")?.content.toString()).toBe("six==1.17.0\n");
    }
    expect(JSON.stringify(sent)).not.toContain(INDEX_TOKEN);
    // the projects fix the compute: ARM_CONTAINER for arm64, LINUX_CONTAINER for x86_64
    const cb = new CodeBuildClient({});
    const described = await cb.send(new BatchGetProjectsCommand({ names: [projects.x86_64, projects.arm64] }));
    expect(described.projects?.map((p) => [p.name, p.environment?.type, p.environment?.computeType])).toEqual([
      [projects.x86_64, "LINUX_CONTAINER", "BUILD_GENERAL1_SMALL"],
      [projects.arm64, "ARM_CONTAINER", "BUILD_GENERAL1_SMALL"],
    ]);
    cb.destroy();
  });

  it("moves each target's pointer when its build-finished event arrives", { timeout: TIMEOUT }, async () => {
    for (const [i, arch] of (["x86_64", "arm64"] as const).entries()) {
      const p = started[i] as Entry;
      const archive = await buildOutputLocally({
        files: { "requirements.txt": REQUIREMENTS },
        language: "python",
        runtime: "python3.12",
        architecture: arch,
        dir: join(dir, arch),
      });
      const key = `build-output/${arch}/${p.name}/${p.build.fingerprint}.zip`;
      const sha256 = await putBuildArtifact(s3, bucket, key, archive);
      const event = finishedEvent(p.build.id ?? "", projects[arch], "SUCCEEDED", {
        location: `arn:aws:s3:::${bucket}/${key}`,
        sha256,
      });
      const result = (await buildHandler(event, context)) as {
        packages: (Entry & { sha256: string })[];
      };
      const entry = result.packages[0] as Entry & { sha256: string };
      expect(entry.error).toBeUndefined();
      expect(entry.skipped).toBe(false);
      const pointer = await ssm.send(new GetParameterCommand({ Name: `${prefix}/${p.name}/artifact-key` }));
      expect(pointer.Parameter?.Value).toBe(entry.key);
      const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: entry.key ?? "" }));
      expect(head.Metadata).toMatchObject({
        "build-fingerprint": p.build.fingerprint,
        runtime: "python3.12",
        architecture: arch,
      });
      const obj = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: entry.key ?? "" }));
      const names = (await readZip(Buffer.from(await (obj.Body?.transformToByteArray() ?? [])))).map((e) => e.name);
      expect(names).toContain("python/six.py");
      expect(names).toContain("python/mymodule.py");
      expect(names).not.toContain("requirements.txt");
      // the CycloneDX SBOM beside the artifact, its SHA-256 in the artifact's metadata
      const sbomKey = (entry.key ?? "").replace(/\.zip$/, ".cdx.json");
      expect((entry as { build?: { sbom?: unknown } }).build?.sbom).toEqual({ key: sbomKey, components: 1 });
      const bom = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: sbomKey }));
      const text = (await bom.Body?.transformToString("utf8")) ?? "";
      expect(head.Metadata?.["sbom-sha256"]).toBe(createHash("sha256").update(text).digest("hex"));
      const doc = JSON.parse(text);
      expect(cycloneDx15Errors(doc)).toEqual([]);
      expect(doc.components.map((c: { purl: string }) => c.purl)).toEqual(["pkg:pypi/six@1.17.0"]);
    }
  });

  it("builds nothing on the next run once the artifacts carry the fingerprints", { timeout: TIMEOUT }, async () => {
    const before = sent.filter((r) => r.command === "StartBuildCommand").length;
    const summary = await sync();
    expect(summary.packages.map((p) => [p.skipped, p.reason])).toEqual([
      [true, "unchanged"],
      [true, "unchanged"],
    ]);
    expect(sent.filter((r) => r.command === "StartBuildCommand")).toHaveLength(before);
    expect(summary.requests.total).toBeLessThanOrEqual(3);
  });

  it("refuses a build folder whose target package is another folder's package, naming both", async () => {
    const before = sent.filter((r) => r.command === "StartBuildCommand").length;
    const summary = (await syncHandler({ paths: ["layers/pydeps", "layers/pydeps-python312-arm64"] }, context).catch(
      (error: { summary?: unknown }) => error.summary,
    )) as { packages: Entry[] };
    expect(summary.packages.map((p) => [p.name, p.error ?? null])).toEqual([
      [
        "pydeps",
        'folder "layers/pydeps" builds package "pydeps-python312-arm64" (python3.12 arm64), which is also the package of folder "layers/pydeps-python312-arm64"; rename one of the two folders',
      ],
      ["pydeps-python312-arm64", null],
    ]);
    expect(sent.filter((r) => r.command === "StartBuildCommand")).toHaveLength(before);
  });
});
