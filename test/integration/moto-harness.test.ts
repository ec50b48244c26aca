import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { GetLayerVersionCommand, LambdaClient, PublishLayerVersionCommand } from "@aws-sdk/client-lambda";
import { OrganizationsClient } from "@aws-sdk/client-organizations";
import {
  AssociateResourceShareCommand,
  CreateResourceShareCommand,
  DisassociateResourceShareCommand,
  EnableSharingWithAwsOrganizationCommand,
  GetResourceShareAssociationsCommand,
  MalformedArnException,
  RAMClient,
  type ResourceShareAssociation,
  UnknownResourceException,
} from "@aws-sdk/client-ram";
import { GetObjectCommand, PutObjectCommand, S3Client, S3ServiceException } from "@aws-sdk/client-s3";
import { GetParameterCommand, PutParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import JSZip from "jszip";
import { afterAll, describe, expect, inject, it } from "vitest";
import { createBucket, MOTO_ACCOUNT_ID, organizationsFixture, uniqueName } from "../support/aws.ts";

const s3 = new S3Client({});
const ssm = new SSMClient({});
const lambda = new LambdaClient({});
const ram = new RAMClient({});
const organizations = new OrganizationsClient({});

afterAll(() => {
  for (const client of [s3, ssm, lambda, ram, organizations]) client.destroy();
});

const region = "eu-west-1";
const sha256Base64 = (body: Uint8Array | string): string => createHash("sha256").update(body).digest("base64");

function parameterArn(name: string): string {
  return `arn:aws:ssm:${region}:${MOTO_ACCOUNT_ID}:parameter/${name.replace(/^\//, "")}`;
}

async function putAdvancedParameter(name: string, value: string): Promise<number | undefined> {
  const put = await ssm.send(
    new PutParameterCommand({ Name: name, Value: value, Type: "String", Tier: "Advanced", Overwrite: true }),
  );
  return put.Version;
}

/**
 * moto's dump of its whole state. Building it walks every backend, and other test files change those
 * backends at the same time, so a dump can fail mid-walk: try a few times.
 */
async function motoState(): Promise<Record<string, unknown>> {
  let status = 0;
  for (let attempt = 0; attempt < 8; attempt++) {
    const response = await fetch(`${inject("motoEndpoint")}/moto-api/data.json`);
    status = response.status;
    if (response.ok) return (await response.json()) as Record<string, unknown>;
    await response.arrayBuffer();
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`moto's state dump kept failing (HTTP ${status})`);
}

async function layerZip(): Promise<Uint8Array> {
  const zip = new JSZip();
  zip.file("nodejs/node_modules/harness/index.js", "export const ok = true;\n");
  return zip.generateAsync({ type: "uint8array" });
}

describe("the moto test harness", () => {
  it("points the SDK clients at this run's moto server on loopback through AWS_ENDPOINT_URL", async () => {
    const endpoint = inject("motoEndpoint");
    expect(process.env.AWS_ENDPOINT_URL).toBe(endpoint);
    expect(new URL(endpoint).hostname).toBe("127.0.0.1");

    const name = uniqueName("reach");
    await createBucket(name);
    await putAdvancedParameter(`/${name}/p`, "v");
    await lambda.send(new PublishLayerVersionCommand({ LayerName: name, Content: { ZipFile: await layerZip() } }));
    await ram.send(new CreateResourceShareCommand({ name }));
    const org = await organizationsFixture();

    // moto's own view of its state holds what each client created, so every request reached this server.
    const state = await motoState();
    for (const service of ["s3", "ssm", "awslambda", "ram"]) {
      expect(JSON.stringify(state[service]), service).toContain(name);
    }
    expect(JSON.stringify(state.organizations)).toContain(org.nestedOu.id);
  });
});

describe("S3 on moto", () => {
  it("stores a PutObject sent with a SHA-256 checksum and If-None-Match '*' and returns that checksum", async () => {
    const bucket = await createBucket(uniqueName("checksum"));
    const body = "layer zip bytes";

    const put = await s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: "a.zip", Body: body, ChecksumAlgorithm: "SHA256", IfNoneMatch: "*" }),
    );
    expect(put.ChecksumSHA256).toBe(sha256Base64(body));

    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "a.zip", ChecksumMode: "ENABLED" }));
    expect(got.ChecksumSHA256).toBe(sha256Base64(body));
    expect(await got.Body?.transformToString()).toBe(body);
  });

  it("stores a streamed SHA-256 upload (aws-chunked with a trailing checksum) byte for byte", async () => {
    const bucket = await createBucket(uniqueName("stream"));
    const body = Buffer.alloc(200_000, "z");

    const put = await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: "big.zip",
        Body: Readable.from([body.subarray(0, 70_000), body.subarray(70_000)]),
        ContentLength: body.length,
        ChecksumAlgorithm: "SHA256",
      }),
    );
    expect(put.ChecksumSHA256).toBe(sha256Base64(body));

    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "big.zip" }));
    const stored = await got.Body?.transformToByteArray();
    expect(stored && Buffer.from(stored).equals(body)).toBe(true);
  });

  it("accepts the SDK's default CRC32 checksum on a plain PutObject", async () => {
    const bucket = await createBucket(uniqueName("crc"));
    const put = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: "k", Body: "x" }));
    expect(put.ChecksumCRC32).toMatch(/^[A-Za-z0-9+/]{6}==$/);
  });

  it("refuses a second PutObject with If-None-Match '*' on the same key with 412 and keeps the first object", async () => {
    const bucket = await createBucket(uniqueName("ifnonematch"));
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: "k", Body: "first", IfNoneMatch: "*" }));

    const second = s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: "k", Body: "second", ChecksumAlgorithm: "SHA256", IfNoneMatch: "*" }),
    );
    const error = await second.then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(S3ServiceException);
    expect(error).toMatchObject({ name: "PreconditionFailed", $metadata: { httpStatusCode: 412 } });

    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "k" }));
    expect(await got.Body?.transformToString()).toBe("first");
  });
});

describe("SSM Parameter Store on moto", () => {
  it("keeps every version of an Advanced parameter readable by 'name:version' and by ARN", async () => {
    const name = `/${uniqueName("param")}/layer-arn`;
    expect(await putAdvancedParameter(name, "arn:one")).toBe(1);
    expect(await putAdvancedParameter(name, "arn:two")).toBe(2);

    const v1 = await ssm.send(new GetParameterCommand({ Name: `${name}:1` }));
    expect(v1.Parameter).toMatchObject({ Value: "arn:one", Version: 1 });
    const v2 = await ssm.send(new GetParameterCommand({ Name: `${name}:2` }));
    expect(v2.Parameter).toMatchObject({ Value: "arn:two", Version: 2 });
    const latestByArn = await ssm.send(new GetParameterCommand({ Name: parameterArn(name) }));
    expect(latestByArn.Parameter).toMatchObject({ Value: "arn:two", Version: 2, ARN: parameterArn(name) });
  });
});

describe("RAM on moto (with the launcher's patches)", () => {
  const associations = async (shareArn: string, type: "RESOURCE" | "PRINCIPAL"): Promise<ResourceShareAssociation[]> =>
    (await ram.send(new GetResourceShareAssociationsCommand({ associationType: type, resourceShareArns: [shareArn] })))
      .resourceShareAssociations ?? [];
  const entities = (list: ResourceShareAssociation[]): (string | undefined)[] =>
    list.map((association) => association.associatedEntity).sort();

  it("shares an SSM parameter with the organization and adds a second one with AssociateResourceShare", async () => {
    const org = await organizationsFixture();
    await ram.send(new EnableSharingWithAwsOrganizationCommand({}));
    const prefix = uniqueName("share");
    const first = `/${prefix}/first`;
    const second = `/${prefix}/second`;
    await putAdvancedParameter(first, "1");
    await putAdvancedParameter(second, "2");

    const created = await ram.send(
      new CreateResourceShareCommand({
        name: prefix,
        resourceArns: [parameterArn(first)],
        principals: [org.organizationArn],
        allowExternalPrincipals: false,
      }),
    );
    const shareArn = created.resourceShare?.resourceShareArn ?? "";
    expect(shareArn).toMatch(new RegExp(`^arn:aws:ram:${region}:${MOTO_ACCOUNT_ID}:resource-share/`));

    const associated = await ram.send(
      new AssociateResourceShareCommand({
        resourceShareArn: shareArn,
        resourceArns: [parameterArn(second)],
        clientToken: prefix,
      }),
    );
    expect(associated.clientToken).toBe(prefix);
    expect(associated.resourceShareAssociations).toEqual([
      expect.objectContaining({
        resourceShareArn: shareArn,
        associatedEntity: parameterArn(second),
        associationType: "RESOURCE",
        status: expect.stringMatching(/^ASSOCIAT(ING|ED)$/),
      }),
    ]);

    const resources = await associations(shareArn, "RESOURCE");
    expect(entities(resources)).toEqual([parameterArn(first), parameterArn(second)].sort());
    expect(resources.every((association) => association.status === "ASSOCIATED")).toBe(true);
    expect(entities(await associations(shareArn, "PRINCIPAL"))).toEqual([org.organizationArn]);
  });

  it("adds a nested OU as principal and removes a resource with DisassociateResourceShare", async () => {
    const org = await organizationsFixture();
    const name = `/${uniqueName("nested")}/p`;
    await putAdvancedParameter(name, "1");
    const created = await ram.send(
      new CreateResourceShareCommand({ name: uniqueName("nested"), resourceArns: [parameterArn(name)] }),
    );
    const shareArn = created.resourceShare?.resourceShareArn ?? "";

    await ram.send(new AssociateResourceShareCommand({ resourceShareArn: shareArn, principals: [org.nestedOu.arn] }));
    expect(entities(await associations(shareArn, "PRINCIPAL"))).toEqual([org.nestedOu.arn]);

    const removed = await ram.send(
      new DisassociateResourceShareCommand({ resourceShareArn: shareArn, resourceArns: [parameterArn(name)] }),
    );
    expect(removed.resourceShareAssociations?.[0]).toMatchObject({
      associatedEntity: parameterArn(name),
      status: "DISASSOCIATING",
    });
    expect(await associations(shareArn, "RESOURCE")).toEqual([]);
  });

  it("still refuses resource types AWS cannot share, such as Lambda layers, and unknown shares", async () => {
    const layerArn = `arn:aws:lambda:${region}:${MOTO_ACCOUNT_ID}:layer:${uniqueName("layer")}:1`;
    await expect(
      ram.send(new CreateResourceShareCommand({ name: uniqueName("layer"), resourceArns: [layerArn] })),
    ).rejects.toBeInstanceOf(MalformedArnException);

    const unknown = `arn:aws:ram:${region}:${MOTO_ACCOUNT_ID}:resource-share/00000000-0000-0000-0000-000000000000`;
    await expect(
      ram.send(new AssociateResourceShareCommand({ resourceShareArn: unknown, principals: ["111122223333"] })),
    ).rejects.toBeInstanceOf(UnknownResourceException);
  });
});

describe("Lambda layers on moto", () => {
  it("publishes a layer version from a zip in S3", async () => {
    const bucket = await createBucket(uniqueName("layers"));
    const zip = await layerZip();
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: "layer.zip", Body: zip, ChecksumAlgorithm: "SHA256" }));
    const layerName = uniqueName("layer");

    const published = await lambda.send(
      new PublishLayerVersionCommand({
        LayerName: layerName,
        Content: { S3Bucket: bucket, S3Key: "layer.zip" },
        CompatibleRuntimes: ["nodejs22.x", "nodejs24.x"],
        Description: "harness",
      }),
    );
    expect(published.Version).toBe(1);
    expect(published.LayerVersionArn).toBe(`arn:aws:lambda:${region}:${MOTO_ACCOUNT_ID}:layer:${layerName}:1`);
    expect(published.Content?.CodeSize).toBe(zip.length);
    expect(published.CompatibleRuntimes).toEqual(["nodejs22.x", "nodejs24.x"]);

    const fetched = await lambda.send(new GetLayerVersionCommand({ LayerName: layerName, VersionNumber: 1 }));
    expect(fetched.LayerVersionArn).toBe(published.LayerVersionArn);
  });
});
