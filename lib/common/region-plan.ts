/**
 * PUBLISH_REGIONS and REGION_BUCKETS against the home Region: what is wrong with them, and the Regions a
 * publish run works in, each with the bucket it publishes from. `config.ts` reads the settings.
 */
import type { PublishConfig, RegionTarget } from "./config.ts";
import { ConfigError } from "./errors.ts";
import { settingName } from "./settings.ts";

const REGIONS_NAME = settingName("publishRegions");
const BUCKETS_NAME = settingName("regionBuckets");

/** What is wrong with publishing to `config.regions` from `homeRegion` (empty when nothing is). */
export function regionProblems(config: Pick<PublishConfig, "artifacts" | "regions">, homeRegion: string): string[] {
  const problems: string[] = [];
  const { publishRegions, buckets } = config.regions;
  const regions = publishRegions ?? [homeRegion];
  if (!regions.includes(homeRegion)) {
    problems.push(
      `${REGIONS_NAME} must include the home Region ${homeRegion}, where the artifacts and their artifact-key parameters are (got ${regions.join(",")})`,
    );
  }
  const homeBucket = buckets[homeRegion];
  if (homeBucket !== undefined && homeBucket !== config.artifacts.bucket) {
    problems.push(
      `${BUCKETS_NAME} maps the home Region ${homeRegion} to ${homeBucket}, but the home Region publishes from ARTIFACT_BUCKET (${config.artifacts.bucket ?? "unset"}); remove ${homeRegion} from it`,
    );
  }
  for (const region of regions) {
    if (region === homeRegion) continue;
    const bucket = buckets[region];
    if (bucket === undefined) {
      problems.push(
        `${BUCKETS_NAME} has no bucket for ${region}, which ${REGIONS_NAME} lists; add ${region}=BUCKET with a bucket in ${region} (Lambda publishes a layer only from a bucket in its own Region)`,
      );
    } else if (bucket === config.artifacts.bucket) {
      problems.push(
        `${BUCKETS_NAME} maps ${region} to ARTIFACT_BUCKET (${bucket}), which is in the home Region ${homeRegion}; name a bucket in ${region}`,
      );
    }
  }
  return problems;
}

/**
 * The Regions a publish run works in, in the configured order, each with the bucket the layer is published
 * from there (ARTIFACT_BUCKET at home, REGION_BUCKETS elsewhere). Throws one ConfigError
 * naming every problem.
 */
export function planRegions(config: Pick<PublishConfig, "artifacts" | "regions">, homeRegion: string): RegionTarget[] {
  const problems = regionProblems(config, homeRegion);
  if (problems.length) throw new ConfigError(problems);
  return (config.regions.publishRegions ?? [homeRegion]).map((region) => ({
    region,
    bucket: (region === homeRegion ? config.artifacts.bucket : config.regions.buckets[region]) ?? "",
    home: region === homeRegion,
  }));
}
