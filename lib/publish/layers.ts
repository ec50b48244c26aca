/**
 * Lambda layer versions: list (all pages, newest first), publish from S3, delete, and find the versions that
 * already carry an artifact's content.
 *
 * PublishLayerVersion has no idempotency token: every call that reaches Lambda creates a version, including
 * a call that then fails on the client (timeout, lost connection) and an SDK retry. So a version is never
 * identified by the call's response alone but by the content tag in its Description (`layer-settings.ts`),
 * and duplicates are resolved by `contentRun` / `convergeVersions`: the lowest version of the newest run of
 * versions carrying the content wins, which every racing run computes the same way.
 */
import {
  type Architecture,
  DeleteLayerVersionCommand,
  type LambdaClient,
  ListLayerVersionsCommand,
  PublishLayerVersionCommand,
  type Runtime,
} from "@aws-sdk/client-lambda";
import { attempt, callFailed, errorMessage, errorName, isNotFound } from "../common/aws-errors.ts";
import { PublishError } from "../common/errors.ts";
import { carriesContent, type LayerSettings } from "./layer-settings.ts";

export interface LayerVersionInfo {
  version: number;
  arn: string;
  description: string;
  createdDate: string | undefined;
  /** CompatibleRuntimes and CompatibleArchitectures, as listed (absent where a version was not listed). */
  runtimes?: string[];
  architectures?: string[];
}

export interface LayerArnParts {
  partition: string;
  region: string;
  account: string;
  layerName: string;
  version: number | undefined;
}

const LAYER_ARN = /^arn:(aws[a-z-]*):lambda:([a-z0-9-]+):(\d{12}):layer:([A-Za-z0-9_-]+)(?::(\d+))?$/;

/** `arn:<partition>:lambda:<region>:<account>:layer:<name>[:<version>]` → parts. */
export function parseLayerArn(arn: string): LayerArnParts | undefined {
  const m = LAYER_ARN.exec(arn);
  if (!m?.[1] || !m[2] || !m[3] || !m[4]) return undefined;
  return { partition: m[1], region: m[2], account: m[3], layerName: m[4], version: m[5] ? Number(m[5]) : undefined };
}

/** Every version of a layer, newest (highest number) first; empty when the layer does not exist. */
export async function listLayerVersions(lambda: LambdaClient, layerName: string): Promise<LayerVersionInfo[]> {
  const out: LayerVersionInfo[] = [];
  let marker: string | undefined;
  do {
    const page = await attempt(PublishError, { call: "lambda:ListLayerVersions", resource: `layer ${layerName}` }, () =>
      lambda.send(new ListLayerVersionsCommand({ LayerName: layerName, Marker: marker, MaxItems: 50 })),
    );
    for (const v of page.LayerVersions ?? []) {
      if (v.Version === undefined || !v.LayerVersionArn) continue;
      out.push({
        version: v.Version,
        arn: v.LayerVersionArn,
        description: v.Description ?? "",
        createdDate: v.CreatedDate,
        runtimes: [...(v.CompatibleRuntimes ?? [])],
        architectures: [...(v.CompatibleArchitectures ?? [])],
      });
    }
    marker = page.NextMarker || undefined;
  } while (marker);
  return out.sort((a, b) => b.version - a.version);
}

/** PublishLayerVersion from S3 with the given settings. */
export async function publishLayerVersion(
  lambda: LambdaClient,
  args: { settings: LayerSettings; bucket: string; key: string },
): Promise<LayerVersionInfo> {
  const { settings, bucket, key } = args;
  const where = `s3://${bucket}/${key}`;
  try {
    const res = await lambda.send(
      new PublishLayerVersionCommand({
        LayerName: settings.layerName,
        Content: { S3Bucket: bucket, S3Key: key },
        Description: settings.description,
        ...(settings.runtimes.length ? { CompatibleRuntimes: settings.runtimes as Runtime[] } : {}),
        ...(settings.architectures.length ? { CompatibleArchitectures: settings.architectures as Architecture[] } : {}),
        ...(settings.license !== undefined ? { LicenseInfo: settings.license } : {}),
      }),
    );
    if (res.Version === undefined || !res.LayerVersionArn) {
      throw new PublishError(`lambda:PublishLayerVersion for ${settings.layerName} answered without a version or ARN`);
    }
    return {
      version: res.Version,
      arn: res.LayerVersionArn,
      description: res.Description ?? settings.description,
      createdDate: res.CreatedDate,
    };
  } catch (error) {
    if (error instanceof PublishError) throw error;
    const deniedByS3 = /denied by S3/i.test(errorMessage(error));
    throw callFailed(
      PublishError,
      {
        call: "lambda:PublishLayerVersion",
        resource: `layer ${settings.layerName} from ${where}`,
        advice: {
          CodeStorageExceededException:
            "the Region's Lambda code storage is full; lower RETAIN_VERSIONS, delete unused layer versions or functions, or ask AWS for a higher quota",
          InvalidParameterValueException: `Lambda refused the request; check that ${where} exists, is a zip in the same Region, and that the runtimes and architectures are valid`,
          ...(deniedByS3
            ? {
                [errorName(error)]:
                  `grant s3:GetObject on ${where} (and kms:Decrypt if the bucket uses SSE-KMS) to the role that runs layer-sync`,
              }
            : {}),
        },
      },
      error,
    );
  }
}

/** DeleteLayerVersion; a version that is already gone counts as deleted. */
export async function deleteLayerVersion(lambda: LambdaClient, layerName: string, version: number): Promise<void> {
  try {
    await lambda.send(new DeleteLayerVersionCommand({ LayerName: layerName, VersionNumber: version }));
  } catch (error) {
    if (isNotFound(error)) return;
    throw callFailed(
      PublishError,
      { call: "lambda:DeleteLayerVersion", resource: `layer ${layerName} version ${version}` },
      error,
    );
  }
}

/**
 * The newest consecutive versions that carry the content (versions sorted newest first). Empty when the newest
 * version carries other content. An older, separate run (content published, replaced, then restored) is not
 * included: restoring content publishes a new version on purpose.
 */
export function contentRun(versions: readonly LayerVersionInfo[], contentSha256: string): LayerVersionInfo[] {
  const run: LayerVersionInfo[] = [];
  for (const v of versions) {
    if (!carriesContent(v.description, contentSha256)) break;
    run.push(v);
  }
  return run;
}

/**
 * Which version of the content run is kept (the lowest number: every racing run picks the same one) and
 * which duplicates are deleted (all others, except versions a parameter names).
 */
export function convergeVersions(
  versions: readonly LayerVersionInfo[],
  contentSha256: string,
  protectedVersions: ReadonlySet<number>,
): { keep: LayerVersionInfo | undefined; duplicates: LayerVersionInfo[] } {
  const run = contentRun(versions, contentSha256);
  const keep = run.at(-1);
  return { keep, duplicates: run.filter((v) => v !== keep && !protectedVersions.has(v.version)) };
}
