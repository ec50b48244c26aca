/**
 * Sizes for people, in one unit family everywhere: binary units (KiB, MiB, GiB). Lambda's limit of "250 MB"
 * for a function and its layers unzipped is 262,144,000 bytes, exactly 250 MiB.
 */

/** Lambda's limit on a function and all its layers, unzipped: 250 MiB. */
export const LAMBDA_UNZIPPED_MAX_BYTES = 262_144_000;

/** A layer past this share of `LAMBDA_UNZIPPED_MAX_BYTES` gets a warning in its summary. */
export const NEAR_LIMIT_SHARE = 0.8;

const UNITS = ["KiB", "MiB", "GiB", "TiB"];

/** `512 B`, `12.3 KiB`, `200.0 MiB`. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)} ${UNITS[u]}`;
}

/**
 * The summary warning for a layer of `unzippedBytes` at or past 80 % of Lambda's 250 MiB (a function and all
 * its layers share that limit, so little room is left for the function itself), or undefined.
 */
export function nearLimitWarning(unzippedBytes: number | null | undefined): string | undefined {
  if (unzippedBytes === null || unzippedBytes === undefined) return undefined;
  if (unzippedBytes < NEAR_LIMIT_SHARE * LAMBDA_UNZIPPED_MAX_BYTES) return undefined;
  const share = Math.floor((unzippedBytes / LAMBDA_UNZIPPED_MAX_BYTES) * 100);
  return `the layer is ${formatBytes(unzippedBytes)} unzipped, ${share} % of Lambda's 250 MiB for a function and all its layers together; split it or drop dependencies before it stops fitting`;
}
