/**
 * Fixtures for the publish tests on moto: real SDK clients whose requests are recorded (moto accepts input
 * AWS would refuse, so the tests also check what was sent), fault injection for faults a server cannot
 * produce, artifacts uploaded with layer-sync's own `uploadArtifact`, and readers for the resulting state.
 */
import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GetLayerVersionPolicyCommand, LambdaClient, ListLayerVersionsCommand } from "@aws-sdk/client-lambda";
import { OrganizationsClient } from "@aws-sdk/client-organizations";
import { GetResourceShareAssociationsCommand, GetResourceSharesCommand, RAMClient } from "@aws-sdk/client-ram";
import { S3Client } from "@aws-sdk/client-s3";
import { DescribeParametersCommand, GetParameterCommand, PutParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { ARTIFACT_FORMAT, artifactKey, uploadArtifact } from "../../lib/artifacts/store.ts";
import { artifactKeyParameter, loadPublishConfig, type PublishConfig } from "../../lib/common/config.ts";
import { encodeLayerConfig, type LayerOverrides } from "../../lib/common/layer-json.ts";
import { type ExistingStatement, parsePolicy } from "../../lib/publish/permissions.ts";
import type { PublishClients, PublishDependencies } from "../../lib/publish/publish.ts";
import { MODE, ZIP_DATE } from "../../lib/zip/folder-zip.ts";
import { zipToBuffer } from "../../lib/zip/writer.ts";

export interface SentCommand {
  service: "lambda" | "s3" | "ssm" | "ram" | "organizations";
  command: string;
  input: Record<string, unknown>;
  /** The Region of the request's SigV4 credential scope (where AWS, and moto, route it); set once it is signed. */
  signedRegion?: string;
}

export interface RecordedClients extends PublishClients {
  /** Every command sent through these clients, in order, as the caller built it. */
  sent: SentCommand[];
  /** The inputs of one command. */
  inputs(command: string): Record<string, unknown>[];
  /** Commands that change state (everything but reads). */
  writes(): SentCommand[];
  deps(extra?: Partial<PublishDependencies>): PublishDependencies;
  destroy(): void;
}

const READ = /^(Get|List|Describe|Head)/;

const SCOPE = /Credential=[^/]+\/\d{8}\/([a-z0-9-]+)\//;

interface Recordable {
  middlewareStack: {
    add(
      middleware: (
        next: (args: { input: object; request?: unknown }) => Promise<unknown>,
        context: { commandName?: string; [key: string]: unknown },
      ) => (args: { input: object; request?: unknown }) => Promise<unknown>,
      options: { step: "initialize" | "deserialize" },
    ): void;
  };
}

function record(client: Recordable, service: SentCommand["service"], sent: SentCommand[]): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const entry: SentCommand = { service, command: context.commandName ?? "?", input: { ...args.input } };
      sent.push(entry);
      context.layerSyncSent = entry;
      return next(args);
    },
    { step: "initialize" },
  );
  // after signing: the credential scope says which Region the request was sent to
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const headers = (args.request as { headers?: Record<string, string> } | undefined)?.headers ?? {};
      const region = SCOPE.exec(headers.authorization ?? "")?.[1];
      const entry = context.layerSyncSent as SentCommand | undefined;
      if (entry && region) entry.signedRegion = region;
      return next(args);
    },
    { step: "deserialize" },
  );
}

/** New clients for one test (in the test Region, or in `region`), each recording what it sends. */
export function recordedClients(region?: string): RecordedClients {
  const sent: SentCommand[] = [];
  const options = region ? { region } : {};
  const lambda = new LambdaClient(options);
  const s3 = new S3Client(options);
  const ssm = new SSMClient(options);
  const ram = new RAMClient(options);
  const organizations = new OrganizationsClient(options);
  record(lambda as unknown as Recordable, "lambda", sent);
  record(s3 as unknown as Recordable, "s3", sent);
  record(ssm as unknown as Recordable, "ssm", sent);
  record(ram as unknown as Recordable, "ram", sent);
  record(organizations as unknown as Recordable, "organizations", sent);
  const clients = { lambda, s3, ssm, ram, organizations };
  return {
    ...clients,
    sent,
    inputs: (command) => sent.filter((c) => c.command === command).map((c) => c.input),
    writes: () => sent.filter((c) => !READ.test(c.command.replace(/Command$/, ""))),
    deps: (extra) => ({ ...clients, clock: () => new Date(), sleep: async () => {}, ...extra }),
    destroy: () => {
      for (const c of Object.values(clients)) c.destroy();
    },
  };
}

/** An SDK-shaped service error, as a fault a test injects. */
export function awsFault(name: string, message: string, status: number): Error {
  return Object.assign(new Error(message), { name, $metadata: { httpStatusCode: status } });
}

/** Settings through the real config loader. */
export function publishConfig(env: Record<string, string | undefined>): PublishConfig {
  return loadPublishConfig({ env });
}

export interface ArtifactSpec {
  bucket: string;
  parameterPrefix: string;
  pkg: string;
  /** Distinct content gives a distinct content-sha256. */
  content: string;
  commit?: string;
  /** Seconds added to a fixed time, so keys sort in upload order. */
  second?: number;
  layerConfig?: LayerOverrides;
  /** Write the artifact-key pointer (default true). */
  pointer?: boolean;
  /** The metadata `source` (default `github:acme/layers:layers/{pkg}`). */
  source?: string;
  /** Build metadata (a built target's runtime and architecture). */
  build?: { runtime: string; architecture: string };
}

export interface UploadedArtifact {
  key: string;
  sha256: string;
  commit: string;
}

/** A layer zip uploaded with layer-sync's `uploadArtifact` (metadata and checksum included), plus its pointer. */
export async function putArtifact(
  clients: { s3: S3Client; ssm: SSMClient },
  spec: ArtifactSpec,
): Promise<UploadedArtifact> {
  const content = Buffer.from(spec.content);
  const name = `python/${spec.pkg.replace(/-/g, "_")}.py`;
  const bytes = await zipToBuffer([{ name, mode: MODE.file, size: content.length, content }], ZIP_DATE);
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  const commit = spec.commit ?? createHash("sha1").update(spec.content).digest("hex");
  const key = artifactKey("layers/", spec.pkg, new Date(Date.UTC(2026, 10, 21, 10, 0, spec.second ?? 0)), commit);
  const dir = await mkdtemp(join(tmpdir(), "layer-sync-publish-test-"));
  try {
    const file = join(dir, "layer.zip");
    await writeFile(file, bytes);
    await uploadArtifact(clients.s3, {
      bucket: spec.bucket,
      key,
      file,
      metadata: {
        commit,
        source: spec.source ?? `github:acme/layers:layers/${spec.pkg}`,
        contentSha256: sha256,
        files: 1,
        format: ARTIFACT_FORMAT,
        ...(spec.build ? { build: { fingerprint: "f".repeat(64), ...spec.build } } : {}),
        ...(spec.layerConfig ? { layerConfig: encodeLayerConfig(spec.layerConfig) } : {}),
      },
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  if (spec.pointer !== false) await setPointer(clients.ssm, spec.parameterPrefix, spec.pkg, key);
  return { key, sha256, commit };
}

export async function setPointer(ssm: SSMClient, parameterPrefix: string, pkg: string, key: string): Promise<void> {
  await ssm.send(
    new PutParameterCommand({
      Name: artifactKeyParameter(parameterPrefix, pkg),
      Value: key,
      Type: "String",
      Overwrite: true,
    }),
  );
}

export interface VersionView {
  version: number;
  arn: string;
  description: string;
}

/** The layer's versions, newest first. */
export async function versionsOf(lambda: LambdaClient, layerName: string): Promise<VersionView[]> {
  const out: VersionView[] = [];
  let marker: string | undefined;
  do {
    const page = await lambda.send(new ListLayerVersionsCommand({ LayerName: layerName, Marker: marker }));
    for (const v of page.LayerVersions ?? []) {
      out.push({ version: v.Version ?? 0, arn: v.LayerVersionArn ?? "", description: v.Description ?? "" });
    }
    marker = page.NextMarker;
  } while (marker);
  return out.sort((a, b) => b.version - a.version);
}

export async function statementsOf(
  lambda: LambdaClient,
  layerName: string,
  version: number,
): Promise<ExistingStatement[]> {
  try {
    const res = await lambda.send(new GetLayerVersionPolicyCommand({ LayerName: layerName, VersionNumber: version }));
    return parsePolicy(res.Policy);
  } catch (error) {
    if ((error as Error).name === "ResourceNotFoundException") return [];
    throw error;
  }
}

export async function parameterOf(
  ssm: SSMClient,
  name: string,
): Promise<{ value: string; tier: string | undefined } | undefined> {
  try {
    const got = await ssm.send(new GetParameterCommand({ Name: name }));
    const described = await ssm.send(
      new DescribeParametersCommand({ ParameterFilters: [{ Key: "Name", Option: "Equals", Values: [name] }] }),
    );
    return { value: got.Parameter?.Value ?? "", tier: described.Parameters?.[0]?.Tier };
  } catch (error) {
    if ((error as Error).name === "ParameterNotFound") return undefined;
    throw error;
  }
}

/** ACTIVE shares owned by the caller with this exact name (moto ignores the name and status filters). */
export async function sharesNamed(ram: RAMClient, name: string): Promise<string[]> {
  const out: string[] = [];
  let token: string | undefined;
  do {
    const page = await ram.send(
      new GetResourceSharesCommand({ resourceOwner: "SELF", name, resourceShareStatus: "ACTIVE", nextToken: token }),
    );
    for (const s of page.resourceShares ?? []) {
      if (s.name === name && s.status === "ACTIVE" && s.resourceShareArn) out.push(s.resourceShareArn);
    }
    token = page.nextToken;
  } while (token);
  return out;
}

/** The ASSOCIATED/ASSOCIATING entities of a share, sorted. */
export async function associationsOf(
  ram: RAMClient,
  shareArn: string,
  type: "RESOURCE" | "PRINCIPAL",
): Promise<string[]> {
  const res = await ram.send(
    new GetResourceShareAssociationsCommand({ associationType: type, resourceShareArns: [shareArn] }),
  );
  return (res.resourceShareAssociations ?? [])
    .filter((a) => a.status === "ASSOCIATED" || a.status === "ASSOCIATING")
    .map((a) => a.associatedEntity ?? "")
    .sort();
}

/**
 * Recorded clients for a home Region and other Regions, registered in `open` (destroyed by the caller's
 * afterEach): `of(region)` for a Region's requests, `deps(extra)` for the publish core with every Region's clients.
 */
export function regionWorld<R extends string>(home: R, others: readonly R[], open: RecordedClients[]) {
  const byRegion = Object.fromEntries([
    [home, recordedClients()],
    ...others.map((r) => [r, recordedClients(r)] as const),
  ]) as Record<R, RecordedClients>;
  open.push(...Object.values<RecordedClients>(byRegion));
  return {
    of: (region: R) => byRegion[region],
    deps: (extra: Partial<PublishDependencies> = {}) =>
      byRegion[home].deps({ regionClients: (region) => byRegion[region as R], ...extra }),
  };
}
