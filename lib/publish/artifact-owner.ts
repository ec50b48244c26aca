/**
 * Reading the artifact a pointer names, and refusing one that belongs to another package (step 1 of
 * `publish.ts`).
 */
import type { S3Client } from "@aws-sdk/client-s3";
import { type ArtifactHead, type ArtifactMetadata, headArtifact } from "../artifacts/store.ts";
import { callFailed } from "../common/aws-errors.ts";
import { targetPackage } from "../common/build-plan.ts";
import { PublishError } from "../common/errors.ts";
import { quoteName } from "../common/paths.ts";

export async function readArtifact(s3: S3Client, bucket: string, key: string): Promise<ArtifactHead | undefined> {
  try {
    return await headArtifact(s3, bucket, key);
  } catch (error) {
    const cause = error instanceof Error && error.cause !== undefined ? error.cause : error;
    throw callFailed(
      PublishError,
      { call: "s3:GetObject", resource: `s3://${bucket}/${key} (HeadObject)`, hint: "check ARTIFACT_BUCKET" },
      cause,
    );
  }
}

/**
 * The package an artifact belongs to must be `pkg`, by its key (`…{package}/{package}-{timestamp}….zip`) and
 * by its metadata `source` (`provider:repository:path`, the folder's last segment; for a built target with
 * several targets, `{name}-{runtime without dots}-{architecture}` from its `runtime`/`architecture` metadata):
 * a pointer that names another package's artifact is refused, naming both, before anything is published.
 */
export function checkArtifactOwner(
  pkg: string,
  key: string,
  meta: Pick<ArtifactMetadata, "source" | "build">,
  pointerName: string,
): void {
  const refuse = (what: string, other: string) =>
    new PublishError(
      `${pointerName} names ${quoteName(key)}, whose ${what} is package ${quoteName(other)}, not ${quoteName(pkg)}; refusing to publish another package's artifact — run \`layer-sync sync\` for ${pkg} to point it at its own`,
    );
  const segments = key.split("/");
  const file = segments.at(-1) ?? "";
  const dir = segments.at(-2) ?? "";
  const stamp = /^(.+)-\d{8}T\d{6}Z(?:-[^/]*)?\.zip$/.exec(file)?.[1];
  if (dir !== pkg) throw refuse("key's package segment", dir);
  if (stamp !== pkg) throw refuse("key's file name", stamp ?? file);
  const first = meta.source.indexOf(":");
  const second = meta.source.indexOf(":", first + 1);
  const folder = first > 0 && second > first ? meta.source.slice(second + 1) : "";
  const name = folder.split("/").at(-1) ?? "";
  const owners = [name];
  if (meta.build?.runtime && (meta.build.architecture === "x86_64" || meta.build.architecture === "arm64")) {
    owners.push(targetPackage(name, meta.build.runtime, meta.build.architecture, false));
  }
  if (!name || !owners.includes(pkg)) {
    throw refuse(`metadata source ${quoteName(meta.source)}`, owners.at(-1) || meta.source);
  }
}
