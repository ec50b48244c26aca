/**
 * Hostile-archive fuzzing (see docs/operations.md, "Failure behaviour"): generates tar archives and walk deliveries with
 * random symlink chains, duplicate names, ".." segments and file/directory/link swaps, runs each through
 * staging, extraction, the chain check, the zip build and verification inside a sandbox, and fails on the
 * first case that writes outside the sandbox, leaves a symlink on disk, fails without naming an entry or
 * builds anything but the intended tree.
 *
 *   npx tsx scripts/fuzz-hostile-archives.ts [cases=2000] [first-seed=1]
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fuzz } from "../test/support/hostile.ts";

const cases = Number(process.argv[2] ?? 2000);
const first = Number(process.argv[3] ?? 1);
const parent = await mkdtemp(join(tmpdir(), "ls-fuzz-"));
const started = Date.now();
try {
  const report = await fuzz(join(parent, "fuzz"), first, cases);
  console.log(
    `${report.cases} hostile cases (seeds ${first}-${first + cases - 1}): ${report.built} built exactly as intended, ${report.failed} refused naming an entry, nothing written outside the sandbox (${Math.round((Date.now() - started) / 1000)} s)`,
  );
} catch (error) {
  console.error(`fuzz: ${(error as Error).message}`);
  process.exitCode = 1;
} finally {
  await rm(parent, { recursive: true, force: true });
}
