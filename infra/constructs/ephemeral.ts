/**
 * The sync function's /tmp, sized from SOURCE_MAX_BYTES (the largest package a run accepts), not from the
 * package count: the sync core holds at most one package's staged bytes plus its zip at a time.
 *
 *   MiB = ceil(2 × SOURCE_MAX_BYTES × 1.3 / 2^20) + 512, clamped to 512 … 10240
 *
 * - 2 × SOURCE_MAX_BYTES: the staged files plus a zip no larger than them (DEFLATE falls back to STORE);
 * - × 1.3: the margin of the sync core's bound (file-system blocks, the zip's headers and directory);
 * - + 512 MiB: fixed headroom (the run directory's bookkeeping, the CLI/runtime's own temporary files).
 *
 * The default SOURCE_MAX_BYTES (250 MiB, Lambda's unzipped limit) gives 1162 MiB.
 */
import { DEFAULTS } from "../../lib/common/settings.ts";

const MIB = 1024 * 1024;
export const EPHEMERAL_MARGIN = 1.3;
export const EPHEMERAL_HEADROOM_MIB = 512;

/** The ephemeral storage, in MiB, for a largest package of `maxBytes`. */
export function ephemeralStorageMiB(maxBytes: number = DEFAULTS.maxBytes): number {
  const needed = Math.ceil((2 * maxBytes * EPHEMERAL_MARGIN) / MIB) + EPHEMERAL_HEADROOM_MIB;
  return Math.min(10_240, Math.max(512, needed));
}

/** SOURCE_MAX_BYTES as the functions will read it (a concrete, validated value), or the default. */
export function maxBytesOf(env: Readonly<Record<string, string>>): number {
  const text = env.SOURCE_MAX_BYTES;
  return text !== undefined && /^\d+$/.test(text.trim()) ? Number(text.trim()) : DEFAULTS.maxBytes;
}
