/**
 * What a layer version is published with: runtimes, architectures and licence from the environment defaults
 * (`LayerDefaults`) overridden by the folder's `layer.json` (carried in the artifact's metadata), and a
 * Description that identifies the content: `acme/repo@abc1234 layers/py-requests sha256:0123456789ab`.
 *
 * The `sha256:<12 hex>` tag is how layer-sync recognises a version it already published for an artifact, so
 * it always sits at the end of the Description, and a `layer.json` description is put in front of it.
 * Everything is checked against Lambda's limits before any call is made.
 */

import type { ArtifactMetadata } from "../artifacts/store.ts";
import type { LayerDefaults } from "../common/config.ts";
import { describeError, PublishError } from "../common/errors.ts";
import { decodeLayerConfig } from "../common/layer-json.ts";

export const DESCRIPTION_MAX = 256;
export const LICENSE_MAX = 512;
export const RUNTIMES_MAX = 15;
export const ARCHITECTURES_MAX = 2;
export const SHA_TAG_HEX = 12;
export const LAYER_NAME = /^[A-Za-z0-9_-]{1,140}$/;

const TAG = /(?:^|\s)sha256:([0-9a-f]{12})(?=\s|$)/g;

export interface LayerSettings {
  layerName: string;
  runtimes: string[];
  architectures: string[];
  description: string;
  license: string | undefined;
}

/** `sha256:<first 12 hex>` of an artifact's content-sha256. */
export function shaTag(contentSha256: string): string {
  return `sha256:${contentSha256.slice(0, SHA_TAG_HEX).toLowerCase()}`;
}

/** The 12-hex content tag a layer-sync Description ends with (the last one, if a user text has another). */
export function taggedSha(description: string | undefined): string | undefined {
  if (!description) return undefined;
  let last: string | undefined;
  for (const match of description.matchAll(TAG)) last = match[1];
  return last;
}

/** True when `description` carries the tag of `contentSha256`. */
export function carriesContent(description: string | undefined, contentSha256: string): boolean {
  return taggedSha(description) === contentSha256.slice(0, SHA_TAG_HEX).toLowerCase();
}

/** `provider:repository:path` → its parts (the path may itself contain ":"). */
export function parseSource(source: string): { provider: string; repository: string; path: string } | undefined {
  const first = source.indexOf(":");
  const second = first < 0 ? -1 : source.indexOf(":", first + 1);
  if (first <= 0 || second < 0) return undefined;
  return {
    provider: source.slice(0, first),
    repository: source.slice(first + 1, second),
    path: source.slice(second + 1),
  };
}

function clipEnd(text: string, max: number): string {
  if (text.length <= max) return text;
  return max <= 1 ? "" : `${text.slice(0, max - 1)}…`;
}

function clipStart(text: string, max: number): string {
  if (text.length <= max) return text;
  return max <= 1 ? "" : `…${text.slice(text.length - (max - 1))}`;
}

/**
 * The Description of the version for an artifact: `<repository>@<short commit> <path> sha256:<12 hex>`, with a
 * `layer.json` description in front. Never longer than `max`; the short commit and the tag always survive
 * (the path is shortened from the left, then the repository, then the user text).
 */
export function describeArtifact(
  metadata: Pick<ArtifactMetadata, "commit" | "source" | "contentSha256">,
  override?: string,
  max = DESCRIPTION_MAX,
): string {
  const short = metadata.commit.slice(0, 7);
  const tag = shaTag(metadata.contentSha256);
  const parts = parseSource(metadata.source);
  const compose = (repository: string, path: string) => `${repository}@${short}${path ? ` ${path}` : ""} ${tag}`;
  let repository = parts?.repository ?? "";
  let path = parts?.path ?? "";
  if (compose(repository, path).length > max) {
    path = clipStart(path, max - compose(repository, "").length - 1);
  }
  if (compose(repository, path).length > max) {
    path = "";
    repository = clipEnd(repository, max - compose("", "").length);
  }
  const base = compose(repository, path);
  const text = override?.replace(/\s+/g, " ").trim() ?? "";
  const room = max - base.length - 1;
  return text && room >= 2 ? `${clipEnd(text, room)} ${base}` : base;
}

/** Environment defaults overridden by the artifact's layer.json. */
export function resolveLayerSettings(
  layer: LayerDefaults,
  pkg: string,
  metadata: ArtifactMetadata,
  where: string,
): LayerSettings {
  let overrides: ReturnType<typeof decodeLayerConfig>;
  try {
    overrides = decodeLayerConfig(metadata.layerConfig, where);
  } catch (error) {
    throw new PublishError(`${describeError(error)}; fix layer.json in the folder and run the sync again`, {
      cause: error,
    });
  }
  return {
    layerName: `${layer.layerNamePrefix}${pkg}`,
    runtimes: overrides.runtimes ?? layer.runtimes,
    architectures: overrides.architectures ?? layer.architectures,
    description: describeArtifact(metadata, overrides.description),
    license: overrides.license ?? layer.license,
  };
}

/** Lambda's limits, checked before PublishLayerVersion; returns the problems found. */
export function layerSettingsProblems(settings: LayerSettings): string[] {
  const problems: string[] = [];
  if (!LAYER_NAME.test(settings.layerName)) {
    problems.push(
      `layer name "${settings.layerName}" must match [A-Za-z0-9_-]{1,140}; rename the folder or change LAYER_NAME_PREFIX`,
    );
  }
  if (settings.runtimes.length > RUNTIMES_MAX) {
    problems.push(`${settings.runtimes.length} compatible runtimes; Lambda allows at most ${RUNTIMES_MAX}`);
  }
  if (settings.architectures.length > ARCHITECTURES_MAX) {
    problems.push(
      `${settings.architectures.length} compatible architectures; Lambda allows at most ${ARCHITECTURES_MAX}`,
    );
  }
  if (settings.description.length > DESCRIPTION_MAX) {
    problems.push(`description is ${settings.description.length} characters; Lambda allows at most ${DESCRIPTION_MAX}`);
  }
  if (settings.license !== undefined && settings.license.length > LICENSE_MAX) {
    problems.push(`licence is ${settings.license.length} characters; Lambda allows at most ${LICENSE_MAX}`);
  }
  return problems;
}
