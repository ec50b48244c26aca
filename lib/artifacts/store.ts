/**
 * Layer zips in S3. Keys follow `{ARTIFACT_PREFIX}{package}/{package}-{YYYYMMDDTHHMMSSZ}-{short commit}.zip`;
 * an existing object is never overwritten (`If-None-Match: *`). Every object carries the metadata the
 * publish step and skip-unchanged need, is uploaded with a SHA-256 checksum (multipart above 32 MiB, with
 * per-part checksums) and is verified with a HEAD before anyone points at it.
 */
import { createHash } from "node:crypto";
import { open, readFile, stat } from "node:fs/promises";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { errorName } from "../common/aws-errors.ts";
import { mapLimit } from "../common/concurrency.ts";
import { ArtifactError, describeError } from "../common/errors.ts";

/** Bumped whenever the zip format changes, so skip-unchanged never keeps an old-format artifact. */
export const ARTIFACT_FORMAT = "2";
export const SINGLE_PUT_LIMIT = 32 * 1024 * 1024;
export const PART_SIZE = 16 * 1024 * 1024;

export interface ArtifactMetadata {
  commit: string;
  /** `provider:repository:path` */
  source: string;
  contentSha256: string;
  files: number;
  /** The entries' uncompressed sizes added up, when recorded (format 2 on). */
  unzippedBytes?: number;
  /** The provider's content fingerprint of the folder (GitHub tree SHA), when known. */
  tree?: string;
  format: string;
  ref?: string;
  /** base64url JSON of the folder's layer.json overrides. */
  layerConfig?: string;
  /** A layer built from a dependency manifest: S3 metadata `build-fingerprint`, `runtime`, `architecture`. */
  build?: { fingerprint: string; runtime: string; architecture: string };
  /** SHA-256 (hex) of the artifact's CycloneDX SBOM, stored beside it (`sbomKey`): S3 metadata `sbom-sha256`. */
  sbomSha256?: string;
}

export interface ArtifactHead {
  key: string;
  size: number;
  metadata: ArtifactMetadata | undefined;
}

/** `YYYYMMDDTHHMMSSZ` in UTC. */
export function timestamp(date: Date): string {
  return date
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}Z$/, "Z");
}

export function artifactKey(prefix: string, pkg: string, date: Date, commit: string): string {
  return `${prefix}${pkg}/${pkg}-${timestamp(date)}-${commit.slice(0, 7)}.zip`;
}

/** `…/pkg-20261207T000000Z-abc1234.zip` → `…/pkg-20261207T000000Z-abc1234.cdx.json`. */
export function sbomKey(artifactKey: string): string {
  return `${artifactKey.replace(/\.zip$/, "")}.cdx.json`;
}

function toS3Metadata(m: ArtifactMetadata): Record<string, string> {
  const out: Record<string, string> = {
    commit: m.commit,
    source: m.source,
    "content-sha256": m.contentSha256,
    files: String(m.files),
    format: m.format,
  };
  if (m.unzippedBytes !== undefined) out["unzipped-bytes"] = String(m.unzippedBytes);
  if (m.tree) out.tree = m.tree;
  if (m.ref) out.ref = encodeURIComponent(m.ref);
  if (m.layerConfig) out["layer-config"] = m.layerConfig;
  if (m.build) {
    out["build-fingerprint"] = m.build.fingerprint;
    out.runtime = m.build.runtime;
    out.architecture = m.build.architecture;
  }
  if (m.sbomSha256) out["sbom-sha256"] = m.sbomSha256;
  return out;
}

function fromS3Metadata(meta: Record<string, string> | undefined): ArtifactMetadata | undefined {
  if (!meta) return undefined;
  const { commit, source, files, format, tree, ref } = meta;
  const contentSha256 = meta["content-sha256"];
  if (!commit || !source || !contentSha256 || !/^[0-9a-f]{64}$/.test(contentSha256)) return undefined;
  const out: ArtifactMetadata = { commit, source, contentSha256, files: Number(files ?? 0), format: format ?? "" };
  const unzipped = meta["unzipped-bytes"];
  if (unzipped !== undefined && /^\d{1,15}$/.test(unzipped)) out.unzippedBytes = Number(unzipped);
  if (tree) out.tree = tree;
  if (ref) out.ref = decodeURIComponent(ref);
  if (meta["layer-config"]) out.layerConfig = meta["layer-config"];
  const fingerprint = meta["build-fingerprint"];
  if (fingerprint && /^[0-9a-f]{64}$/.test(fingerprint) && meta.runtime && meta.architecture) {
    out.build = { fingerprint, runtime: meta.runtime, architecture: meta.architecture };
  }
  const sbom = meta["sbom-sha256"];
  if (sbom && /^[0-9a-f]{64}$/.test(sbom)) out.sbomSha256 = sbom;
  return out;
}

function statusOf(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

/**
 * Upload an artifact's SBOM (CycloneDX JSON) at `key`, with a SHA-256 checksum, never overwriting: an
 * existing object with the same bytes is kept (a rerun of the same second), any other is an error.
 */
export async function uploadSbom(s3: S3Client, args: { bucket: string; key: string; text: string }): Promise<void> {
  const body = Buffer.from(args.text, "utf8");
  const sha = createHash("sha256").update(body).digest();
  const where = `s3://${args.bucket}/${args.key}`;
  try {
    await s3.send(
      new PutObjectCommand({
        Bucket: args.bucket,
        Key: args.key,
        Body: body,
        ContentLength: body.length,
        ContentType: "application/vnd.cyclonedx+json",
        ChecksumAlgorithm: "SHA256",
        ChecksumSHA256: sha.toString("base64"),
        IfNoneMatch: "*",
      }),
    );
  } catch (error) {
    const exists = statusOf(error) === 412 || errorName(error) === "PreconditionFailed";
    if (exists) {
      const head = await s3.send(
        new HeadObjectCommand({ Bucket: args.bucket, Key: args.key, ChecksumMode: "ENABLED" }),
      );
      if (head.ChecksumSHA256 === sha.toString("base64")) return;
    }
    throw new ArtifactError(
      exists
        ? `${where} already exists with other content; layer-sync never overwrites an SBOM — another run used the same key`
        : `uploading ${where} failed (${errorName(error)}): ${describeError(error)}`,
      { cause: error },
    );
  }
}

/** HEAD an artifact; undefined when it does not exist. */
export async function headArtifact(s3: S3Client, bucket: string, key: string): Promise<ArtifactHead | undefined> {
  try {
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return { key, size: head.ContentLength ?? 0, metadata: fromS3Metadata(head.Metadata) };
  } catch (error) {
    if (statusOf(error) === 404 || errorName(error) === "NotFound") return undefined;
    throw new ArtifactError(`reading s3://${bucket}/${key} failed (${errorName(error)}): ${describeError(error)}`, {
      cause: error,
    });
  }
}

function sha256Base64(hex: string): string {
  return Buffer.from(hex, "hex").toString("base64");
}

async function readPart(file: string, offset: number, length: number): Promise<Buffer> {
  const fh = await open(file, "r");
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await fh.read(buf, 0, length, offset);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/**
 * Upload `file` to a new key. Fails with `ArtifactError` if the key exists, the upload fails, or the
 * stored object does not match (size and SHA-256 metadata) — in which case nothing points at it.
 */
export async function uploadArtifact(
  s3: S3Client,
  args: { bucket: string; key: string; file: string; metadata: ArtifactMetadata },
  interrupts?: RunInterrupts,
): Promise<void> {
  const { bucket, key, file, metadata } = args;
  const { size } = await stat(file);
  const where = `s3://${bucket}/${key}`;
  try {
    if (size <= SINGLE_PUT_LIMIT) {
      await s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          // a Buffer, not a stream: the SDK never retries a request whose body is a stream (SlowDown, 500, reset)
          Body: await readFile(file),
          ContentLength: size,
          ContentType: "application/zip",
          ChecksumAlgorithm: "SHA256",
          ChecksumSHA256: sha256Base64(metadata.contentSha256),
          IfNoneMatch: "*",
          Metadata: toS3Metadata(metadata),
        }),
      );
    } else {
      await multipartUpload(s3, bucket, key, file, size, metadata, interrupts);
    }
  } catch (error) {
    if (error instanceof ArtifactError) throw error;
    const exists = statusOf(error) === 412 || errorName(error) === "PreconditionFailed";
    if (exists) {
      // the same key within the same second for the same commit: reuse it if it holds exactly these bytes
      const existing = await headArtifact(s3, bucket, key);
      if (existing?.size === size && existing.metadata?.contentSha256 === metadata.contentSha256) return;
    }
    throw new ArtifactError(
      exists
        ? `${where} already exists; layer-sync never overwrites an artifact — another run used the same key`
        : `uploading ${where} failed (${errorName(error)}): ${describeError(error)}`,
      { cause: error },
    );
  }
  const head = await headArtifact(s3, bucket, key);
  if (!head || head.size !== size || head.metadata?.contentSha256 !== metadata.contentSha256) {
    throw new ArtifactError(
      `${where} did not verify after upload (expected ${size} bytes with sha256 ${metadata.contentSha256}); the pointer was not changed`,
    );
  }
}

async function multipartUpload(
  s3: S3Client,
  bucket: string,
  key: string,
  file: string,
  size: number,
  metadata: ArtifactMetadata,
  interrupts?: RunInterrupts,
): Promise<void> {
  const created = await s3.send(
    new CreateMultipartUploadCommand({
      Bucket: bucket,
      Key: key,
      ContentType: "application/zip",
      ChecksumAlgorithm: "SHA256",
      Metadata: toS3Metadata(metadata),
    }),
  );
  const uploadId = created.UploadId;
  if (!uploadId) throw new ArtifactError(`S3 returned no upload id for s3://${bucket}/${key}`);
  const abort = () =>
    s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId })).then(() => undefined);
  interrupts?.aborts.add(abort); // a signal aborts it where the process still can
  try {
    const count = Math.ceil(size / PART_SIZE);
    const parts = await mapLimit(
      Array.from({ length: count }, (_, i) => i + 1),
      4,
      async (partNumber) => {
        const body = await readPart(file, (partNumber - 1) * PART_SIZE, PART_SIZE);
        const checksum = createHash("sha256").update(body).digest("base64");
        const res = await s3.send(
          new UploadPartCommand({
            Bucket: bucket,
            Key: key,
            UploadId: uploadId,
            PartNumber: partNumber,
            Body: body,
            ContentLength: body.length,
            ChecksumAlgorithm: "SHA256",
            ChecksumSHA256: checksum,
          }),
        );
        return { PartNumber: partNumber, ETag: res.ETag, ChecksumSHA256: res.ChecksumSHA256 ?? checksum };
      },
    );
    await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: key,
        UploadId: uploadId,
        IfNoneMatch: "*",
        MultipartUpload: { Parts: parts },
      }),
    );
  } catch (error) {
    await abort().catch(() => undefined);
    throw error;
  } finally {
    interrupts?.aborts.delete(abort);
  }
}

/**
 * What an interrupted run (SIGINT, SIGTERM) still has to undo: its staging area and any multipart upload
 * under way. The run fills it in; the CLI's signal handler empties it.
 */
export interface RunInterrupts {
  staging?: { disposeSync(): void };
  aborts: Set<() => Promise<void>>;
}
