import { mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HeadObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { PutParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { beforeAll, describe, expect, it } from "vitest";
import {
  type ArtifactCommit,
  commitArtifact,
  currentArtifact,
  dirDestination,
  pointerOf,
  type S3Destination,
  SUPERSEDED_WARNING,
  s3Destination,
} from "../../lib/artifacts/commit.ts";
import { readParameter } from "../../lib/artifacts/pointer.ts";
import {
  ARTIFACT_FORMAT,
  artifactKey,
  type RunInterrupts,
  SINGLE_PUT_LIMIT,
  sbomKey,
} from "../../lib/artifacts/store.ts";
import { ParameterError } from "../../lib/common/errors.ts";
import { pseudoRandomBytes, sha256 } from "../fixtures/repo.ts";
import { createBucket, uniqueName } from "../support/aws.ts";

const ssm = new SSMClient({});
const started = new Date("2026-12-07T10:00:00Z");
const COMMIT = "c".repeat(40);
let bucket: string;

beforeAll(async () => {
  bucket = await createBucket(uniqueName("commit"));
});

function destination(s3: S3Client = new S3Client({}), interrupts?: RunInterrupts): S3Destination {
  return s3Destination({
    s3,
    ssm,
    bucket,
    artifactPrefix: "layers/",
    parameterPrefix: `/${uniqueName("commit")}`,
    interrupts,
  });
}

async function zipFile(bytes: number, seed: number): Promise<{ path: string; sha256: string }> {
  const data = pseudoRandomBytes(bytes, seed);
  const path = join(await mkdtemp(join(tmpdir(), "commit-")), "layer.zip");
  await writeFile(path, data);
  return { path, sha256: sha256(data) };
}

/** A commit of `zip` for package `pkg` made by a run started at `at`. */
function commitOf(
  pkg: string,
  zip: { path: string; sha256: string },
  at: Date,
  more: Partial<ArtifactCommit> = {},
): ArtifactCommit & { warnings: string[] } {
  const warnings: string[] = [];
  return {
    package: pkg,
    key: artifactKey("layers/", pkg, at, COMMIT),
    zip,
    metadata: {
      commit: COMMIT,
      source: `github:acme/layers:${pkg}`,
      contentSha256: zip.sha256,
      files: 1,
      format: ARTIFACT_FORMAT,
    },
    now: at,
    description: `test artifact of ${pkg}`,
    warnings,
    warn: (warning) => warnings.push(warning),
    ...more,
  };
}

async function keysOf(prefix: string): Promise<string[]> {
  const res = await new S3Client({}).send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (res.Contents ?? []).map((o) => o.Key ?? "").sort();
}

describe("commitArtifact to S3", () => {
  it("uploads the zip, points at it, and skips the same content next time as unchanged", async () => {
    const dest = destination();
    const pkg = uniqueName("same");
    const zip = await zipFile(2048, 1);
    const first = await commitArtifact(dest, commitOf(pkg, zip, started));
    expect(first).toMatchObject({ kind: "pointed", pointer: "written" });
    const current = await currentArtifact(dest, pkg);
    expect(current.key).toBe(first.key);

    const later = new Date(started.getTime() + 60_000);
    const again = await commitArtifact(dest, commitOf(pkg, await zipFile(2048, 1), later, { previous: current.head }));
    expect(again).toEqual({ kind: "skipped", reason: "unchanged", key: first.key });
    expect(await keysOf(`layers/${pkg}/`)).toEqual([first.key]);
  });

  it("uploads the same content again when forced", async () => {
    const dest = destination();
    const pkg = uniqueName("force");
    const zip = await zipFile(1024, 2);
    await commitArtifact(dest, commitOf(pkg, zip, started));
    const { head } = await currentArtifact(dest, pkg);
    const later = new Date(started.getTime() + 60_000);
    const forced = await commitArtifact(dest, commitOf(pkg, zip, later, { previous: head, force: true }));
    expect(forced.kind).toBe("pointed");
    expect(await readParameter(ssm, pointerOf(dest, pkg))).toBe(forced.key);
  });

  it("writes nothing on a dry run", async () => {
    const dest = destination();
    const pkg = uniqueName("dry");
    const result = await commitArtifact(dest, commitOf(pkg, await zipFile(1024, 3), started, { dryRun: true }));
    expect(result.kind).toBe("skipped");
    expect(result).toMatchObject({ reason: "dry-run" });
    expect(await keysOf(`layers/${pkg}/`)).toEqual([]);
    expect(await readParameter(ssm, pointerOf(dest, pkg))).toBeUndefined();
  });

  it("uploads the SBOM before the zip and records its SHA-256 in the zip's metadata", async () => {
    const sent: string[] = [];
    const s3 = new S3Client({});
    s3.middlewareStack.add(
      (next, context) => async (args) => {
        sent.push(`${context.commandName} ${(args.input as { Key?: string }).Key ?? ""}`);
        return next(args);
      },
      { step: "initialize" },
    );
    const dest = destination(s3);
    const pkg = uniqueName("sbom");
    const text = JSON.stringify({ bomFormat: "CycloneDX", components: [] });
    const sbom = { text, sha256: sha256(Buffer.from(text)) };
    const result = await commitArtifact(dest, commitOf(pkg, await zipFile(1024, 4), started, { sbom }));
    const puts = sent.filter((s) => s.startsWith("PutObjectCommand"));
    expect(puts).toEqual([`PutObjectCommand ${sbomKey(result.key)}`, `PutObjectCommand ${result.key}`]);
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: result.key }));
    expect(head.Metadata?.["sbom-sha256"]).toBe(sbom.sha256);
  });

  it("leaves a pointer already on a newer artifact, with the superseded warning", async () => {
    const dest = destination();
    const pkg = uniqueName("newer");
    const newer = artifactKey("layers/", pkg, new Date(started.getTime() + 5 * 60_000), COMMIT);
    await ssm.send(new PutParameterCommand({ Name: pointerOf(dest, pkg), Value: newer, Type: "String" }));
    const commit = commitOf(pkg, await zipFile(1024, 5), started);
    const result = await commitArtifact(dest, commit);
    expect(result).toMatchObject({ kind: "pointed", pointer: "superseded" });
    expect(commit.warnings).toEqual([SUPERSEDED_WARNING]);
    expect(await readParameter(ssm, pointerOf(dest, pkg))).toBe(newer);
  });

  it("refuses to point past a key dated beyond the run's clock (a wrong clock) and leaves it", async () => {
    const dest = destination();
    const pkg = uniqueName("clock");
    const future = artifactKey("layers/", pkg, new Date(started.getTime() + 3 * 365 * 86_400_000), COMMIT);
    await ssm.send(new PutParameterCommand({ Name: pointerOf(dest, pkg), Value: future, Type: "String" }));
    await expect(commitArtifact(dest, commitOf(pkg, await zipFile(1024, 6), started))).rejects.toThrow(ParameterError);
    expect(await readParameter(ssm, pointerOf(dest, pkg))).toBe(future);
  });

  it("uploads but leaves the pointer to the caller's point() when asked to point later", async () => {
    const dest = destination();
    const pkg = uniqueName("later");
    const result = await commitArtifact(dest, commitOf(pkg, await zipFile(1024, 7), started, { point: "later" }));
    if (result.kind !== "uploaded") throw new Error(`expected an upload, got ${result.kind}`);
    expect(await readParameter(ssm, pointerOf(dest, pkg))).toBeUndefined();
    expect(await result.point()).toBe("written");
    expect(await readParameter(ssm, pointerOf(dest, pkg))).toBe(result.key);
  });

  it("lets a signal abort a multipart upload under way: nothing stored, nothing pointed at", async () => {
    const interrupts: RunInterrupts = { aborts: new Set() };
    const s3 = new S3Client({});
    let interrupted = false;
    s3.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === "UploadPartCommand") {
          // SIGINT arrives while the parts go up: the CLI's handler runs every registered abort, and the
          // part requests under way are cut
          if (!interrupted) await Promise.all([...interrupts.aborts].map((abort) => abort()));
          interrupted = true;
          throw new Error("interrupted");
        }
        return next(args);
      },
      { step: "initialize" },
    );
    const dest = destination(s3, interrupts);
    const pkg = uniqueName("sigint");
    const zip = await zipFile(SINGLE_PUT_LIMIT + 1024, 8);
    await expect(commitArtifact(dest, commitOf(pkg, zip, started))).rejects.toThrow();
    expect(interrupted).toBe(true);
    expect(interrupts.aborts.size).toBe(0);
    const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: `layers/${pkg}/` }));
    expect(uploads.Uploads ?? []).toEqual([]);
    expect(await keysOf(`layers/${pkg}/`)).toEqual([]);
    expect(await readParameter(ssm, pointerOf(dest, pkg))).toBeUndefined();
  });
});

describe("commitArtifact to a directory (--out)", () => {
  it("writes the zip and its SBOM under the key, then skips an identical zip as unchanged", async () => {
    const outDir = await mkdtemp(join(tmpdir(), "commit-out-"));
    const dest = dirDestination(outDir, "layers/");
    const text = '{"bomFormat":"CycloneDX"}';
    const sbom = { text, sha256: sha256(Buffer.from(text)) };
    const first = await commitArtifact(dest, commitOf("tools", await zipFile(1024, 9), started, { sbom }));
    if (first.kind !== "written") throw new Error(`expected a write, got ${first.kind}`);
    expect(first.file).toBe(join(outDir, ...first.key.split("/")));
    expect(await readFile(join(outDir, ...sbomKey(first.key).split("/")), "utf8")).toBe(text);

    const later = new Date(started.getTime() + 60_000);
    const again = await commitArtifact(dest, commitOf("tools", await zipFile(1024, 9), later, { sbom }));
    expect(again).toEqual({ kind: "skipped", reason: "unchanged", key: first.key });
    expect((await readdir(join(outDir, "layers", "tools"))).filter((n) => n.endsWith(".zip"))).toHaveLength(1);

    const changed = await commitArtifact(dest, commitOf("tools", await zipFile(1024, 10), later));
    expect(changed.kind).toBe("written");
  });
});
