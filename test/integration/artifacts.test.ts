import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HeadObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { GetParameterCommand, PutParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { beforeAll, describe, expect, it } from "vitest";
import {
  type ArtifactMetadata,
  artifactKey,
  headArtifact,
  SINGLE_PUT_LIMIT,
  uploadArtifact,
} from "../../lib/artifacts/store.ts";
import { ArtifactError, ConfigError } from "../../lib/common/errors.ts";
import { redact } from "../../lib/common/redact.ts";
import { TokenCache } from "../../lib/common/token.ts";
import { pseudoRandomBytes, sha256 } from "../fixtures/repo.ts";
import { createBucket, uniqueName } from "../support/aws.ts";

const s3 = new S3Client({});
let bucket: string;

async function file(bytes: number, seed: number): Promise<{ path: string; metadata: ArtifactMetadata }> {
  const data = pseudoRandomBytes(bytes, seed);
  const path = join(tmpdir(), `${uniqueName("artifact")}.zip`);
  await writeFile(path, data);
  return {
    path,
    metadata: {
      commit: "a".repeat(40),
      source: "github:acme/layers:layers/x",
      contentSha256: sha256(data),
      files: 3,
      format: "1",
    },
  };
}

beforeAll(async () => {
  bucket = await createBucket(uniqueName("artifacts"));
});

describe("artifactKey", () => {
  it("follows {prefix}{package}/{package}-{YYYYMMDDTHHMMSSZ}-{short commit}.zip in UTC", () => {
    expect(artifactKey("layers/", "py-requests", new Date("2026-11-21T10:15:00.123Z"), "abc1234def")).toBe(
      "layers/py-requests/py-requests-20261121T101500Z-abc1234.zip",
    );
  });
});

describe("uploadArtifact on moto", () => {
  it("uploads a small zip in one PUT with its SHA-256 checksum and metadata", async () => {
    const { path, metadata } = await file(1024, 1);
    await uploadArtifact(s3, { bucket, key: "small.zip", file: path, metadata });
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: "small.zip", ChecksumMode: "ENABLED" }));
    expect(head.ChecksumSHA256).toBe(Buffer.from(metadata.contentSha256, "hex").toString("base64"));
    expect((await headArtifact(s3, bucket, "small.zip"))?.metadata).toEqual(metadata);
  });

  it("uploads a large zip as multipart and verifies it", async () => {
    const { path, metadata } = await file(SINGLE_PUT_LIMIT + 5 * 1024 * 1024, 2);
    await uploadArtifact(s3, { bucket, key: "large.zip", file: path, metadata });
    const head = await headArtifact(s3, bucket, "large.zip");
    expect(head?.size).toBe(SINGLE_PUT_LIMIT + 5 * 1024 * 1024);
    expect(head?.metadata?.contentSha256).toBe(metadata.contentSha256);
    const raw = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: "large.zip", ChecksumMode: "ENABLED" }));
    expect(raw.ETag).toMatch(/-3"$/); // three 16 MiB parts
  });

  it("never overwrites an existing object with different content", async () => {
    const a = await file(2048, 3);
    const b = await file(2048, 4);
    await uploadArtifact(s3, { bucket, key: "once.zip", file: a.path, metadata: a.metadata });
    await expect(uploadArtifact(s3, { bucket, key: "once.zip", file: b.path, metadata: b.metadata })).rejects.toThrow(
      ArtifactError,
    );
    expect((await headArtifact(s3, bucket, "once.zip"))?.metadata?.contentSha256).toBe(a.metadata.contentSha256);
  });

  it("reuses an existing object that holds exactly the same bytes", async () => {
    const a = await file(2048, 5);
    await uploadArtifact(s3, { bucket, key: "same.zip", file: a.path, metadata: a.metadata });
    await expect(
      uploadArtifact(s3, { bucket, key: "same.zip", file: a.path, metadata: a.metadata }),
    ).resolves.toBeUndefined();
  });

  it("reports a missing artifact as undefined, not an error", async () => {
    expect(await headArtifact(s3, bucket, "nope.zip")).toBeUndefined();
  });
});

describe("TokenCache", () => {
  it("reads the SecureString once per time-to-live and registers it for redaction", async () => {
    const ssm = new SSMClient({});
    const name = `/${uniqueName("tok")}/token`;
    await ssm.send(new PutParameterCommand({ Name: name, Value: "cache-me-token-1234", Type: "SecureString" }));
    let calls = 0;
    ssm.middlewareStack.add(
      (next) => async (args) => {
        calls++;
        return next(args);
      },
      { step: "initialize" },
    );
    let now = 0;
    const cache = new TokenCache(60_000, () => now);
    expect(await cache.get(ssm, name)).toBe("cache-me-token-1234");
    expect(await cache.get(ssm, name)).toBe("cache-me-token-1234");
    expect(calls).toBe(1);
    now = 61_000;
    await cache.get(ssm, name);
    expect(calls).toBe(2);
    expect(redact("x cache-me-token-1234 y")).toBe("x *** y");
  });

  it("refuses a String parameter, naming the fix", async () => {
    const ssm = new SSMClient({});
    const name = `/${uniqueName("tok")}/plain`;
    await ssm.send(new PutParameterCommand({ Name: name, Value: "plain-token-5678", Type: "String" }));
    const error = await new TokenCache(1000).get(ssm, name).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/is a String, not a SecureString; recreate it with --type SecureString/);
    expect((error as Error).message).not.toContain("plain-token-5678");
    expect((await ssm.send(new GetParameterCommand({ Name: name }))).Parameter?.Value).toBe("plain-token-5678");
  });
});
