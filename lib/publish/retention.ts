/**
 * Retention: keep the newest RETAIN_VERSIONS versions of a layer and delete older ones, except versions a
 * parameter still names (the package's `layer-version-arn`, or a pin an operator keeps under the package's
 * parameter path). Every layer version counts against the Region's 75 GB code storage, so a
 * publish-per-change layer must prune. Functions that already use a deleted version keep working; new
 * functions can no longer attach it.
 */
import type { LambdaClient } from "@aws-sdk/client-lambda";
import { deleteLayerVersion, type LayerVersionInfo } from "./layers.ts";

/** The versions to delete (highest first): all beyond the newest `retain`, minus the protected ones. */
export function planRetention(
  versions: readonly LayerVersionInfo[],
  retain: number,
  protectedVersions: ReadonlySet<number>,
): LayerVersionInfo[] {
  const newestFirst = [...versions].sort((a, b) => b.version - a.version);
  return newestFirst.slice(Math.max(0, retain)).filter((v) => !protectedVersions.has(v.version));
}

/** Delete the given versions one by one; returns the version numbers deleted. */
export async function deleteVersions(
  lambda: LambdaClient,
  layerName: string,
  versions: readonly LayerVersionInfo[],
): Promise<number[]> {
  const deleted: number[] = [];
  for (const v of versions) {
    await deleteLayerVersion(lambda, layerName, v.version);
    deleted.push(v.version);
  }
  return deleted;
}
