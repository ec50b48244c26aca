/**
 * The fifty-packages fixture: one repository with 50 folders `layers/pkg00` … `layers/pkg49` of mixed sizes,
 * about 300 MB in all (2 × 30 MB, 3 × 20 MB, 5 × 10 MB, 10 × 5 MB and 30 × 2.7 MB, in a fixed shuffled
 * order), every byte from `pseudoRandomBytes` with fixed seeds. Files are 32-480 KiB (even-numbered ones
 * text-like, odd ones random), ten to a directory; folders of 10 MB and more also hold one file of a
 * quarter of their size. `scale` shrinks every size (0.1 for `--quick`: about 30 MB).
 *
 * Two commits: `first` holds the folders; `second` changes only the root README, so syncing it after
 * `first` finds every folder unchanged (the case whose cost must not grow with the package count).
 */
import { type FixtureEntry, pseudoRandomBytes } from "../test/fixtures/repo.ts";
import { BENCH_OWNER, BenchRepo, textBytes } from "./fixtures.ts";

export const PACKAGE_COUNT = 50;
const MB = 1_000_000;
const SIZE_CLASSES: [count: number, bytes: number][] = [
  [2, 30 * MB],
  [3, 20 * MB],
  [5, 10 * MB],
  [10, 5 * MB],
  [30, Math.round(2.667 * MB)],
];

export interface PackageStats {
  name: string;
  folder: string;
  files: number;
  /** Unzipped bytes: what staging holds for the package. */
  bytes: number;
}

export interface PackagesFixture {
  repo: BenchRepo;
  repository: string;
  /** The commit with the folders. */
  first: string;
  /** A later commit that changes none of them. */
  second: string;
  packages: PackageStats[];
  bytes: number;
  scale: number;
}

/** A deterministic shuffle (Fisher-Yates over a seeded byte stream). */
function shuffled<T>(items: T[], seed: number): T[] {
  const out = [...items];
  const r = pseudoRandomBytes(out.length * 4, seed);
  for (let i = out.length - 1; i > 0; i--) {
    const j = r.readUInt32LE(i * 4) % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

export function buildPackagesFixture(scale = 1): PackagesFixture {
  if (!(scale > 0 && scale <= 1)) throw new Error(`the packages fixture's scale must be in (0, 1] (got ${scale})`);
  const sizes = shuffled(
    SIZE_CLASSES.flatMap(([count, bytes]) =>
      Array.from({ length: count }, () => Math.max(1024, Math.round(bytes * scale))),
    ),
    5050,
  );
  const changes: Record<string, Omit<FixtureEntry, "path">> = {};
  const packages: PackageStats[] = [];
  for (const [p, size] of sizes.entries()) {
    const name = `pkg${String(p).padStart(2, "0")}`;
    const folder = `layers/${name}`;
    const stats: PackageStats = { name, folder, files: 0, bytes: 0 };
    const put = (rel: string, content: Buffer) => {
      changes[`${folder}/${rel}`] = { kind: "file", content };
      stats.files += 1;
      stats.bytes += content.length;
    };
    const seed = 60_000 + p * 1000;
    if (size >= 10 * MB * scale && size >= 64 * 1024) {
      put("data/big.bin", pseudoRandomBytes(Math.floor(size / 4), seed));
    }
    const sizer = pseudoRandomBytes(4096, seed + 1);
    for (let f = 0; stats.bytes < size; f++) {
      const want = 32 * 1024 + (sizer.readUInt16LE((f * 2) % 4094) % (448 * 1024));
      const length = Math.max(1, Math.min(want, size - stats.bytes));
      const dir = `lib/mod${String(Math.floor(f / 10)).padStart(2, "0")}`;
      const text = f % 2 === 0;
      put(
        `${dir}/file${String(f % 10)}.${text ? "py" : "bin"}`,
        text ? textBytes(length, seed + 2 + f) : pseudoRandomBytes(length, seed + 2 + f),
      );
    }
    packages.push(stats);
  }
  const repo = new BenchRepo(BENCH_OWNER, "packages");
  changes["README.md"] = { kind: "file", content: Buffer.from("# acme/packages\n\nFifty-packages fixture.\n") };
  const first = repo.commit("main", changes, "fifty packages");
  const second = repo.commit(
    "main",
    { "README.md": { kind: "file", content: Buffer.from("# acme/packages\n\nA commit that changes no package.\n") } },
    "readme only",
  );
  return {
    repo,
    repository: `${BENCH_OWNER}/packages`,
    first,
    second,
    packages,
    bytes: packages.reduce((a, p) => a + p.bytes, 0),
    scale,
  };
}
