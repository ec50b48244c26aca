/**
 * A target's build fingerprint: the SHA-256 of everything a build's result depends on, so an equal
 * fingerprint on the current artifact proves a rebuild would only repeat it.
 *
 * Covered: every file of the folder (manifest and lock bytes included, each with its path and kind), the
 * runtime, the architecture, the builder's identity (the image reference, or the local resolver and its
 * version: `local uv 0.13.9`, `local npm … node …`),
 * the package index (never its credential), `build.bytecode` and `build.slim` (the local builder's identity
 * also says which interpreter compiles the `.pyc`, or that none was found) and `BUILD_RECIPE_VERSION`. The input is serialised with
 * length prefixes, so no two different inputs share a serialisation.
 */
import { createHash } from "node:crypto";

/** Bump when the way layers are built changes (flags, layout, exclusions): every target rebuilds once. */
/**
 * 3: lock families converted, build-only root files never packaged, and an SBOM beside every artifact.
 * 4: `.pyc` for the target (unchecked-hash), portable shebangs and data-scheme libraries in every builder.
 */
export const BUILD_RECIPE_VERSION = "4";

export interface FingerprintFile {
  path: string;
  kind: "file" | "executable" | "symlink";
  /** File bytes, or the link target's bytes. */
  data: Buffer;
}

export interface FingerprintInput {
  files: readonly FingerprintFile[];
  runtime: string;
  architecture: string;
  /** Image reference (`docker`, CodeBuild) or local tool versions (`local`). */
  tool: string;
  /** Index or registry URL without credentials, when one is configured. */
  index?: string | undefined;
  /** `build.bytecode` and `build.slim` of the plan (defaults: true, false). */
  bytecode?: boolean | undefined;
  slim?: boolean | undefined;
}

function field(hash: ReturnType<typeof createHash>, value: string | Buffer): void {
  const bytes = typeof value === "string" ? Buffer.from(value, "utf8") : value;
  hash.update(`${bytes.length}:`);
  hash.update(bytes);
  hash.update("\n");
}

/** 64 lowercase hex digits. */
export function buildFingerprint(input: FingerprintInput): string {
  const hash = createHash("sha256");
  field(hash, "layer-sync build fingerprint");
  field(hash, BUILD_RECIPE_VERSION);
  field(hash, input.runtime);
  field(hash, input.architecture);
  field(hash, input.tool);
  field(hash, input.index ?? "");
  field(hash, `bytecode=${input.bytecode ?? true} slim=${input.slim ?? false}`);
  const files = [...input.files].sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
  field(hash, String(files.length));
  for (const f of files) {
    field(hash, f.kind);
    field(hash, f.path);
    field(hash, createHash("sha256").update(f.data).digest("hex"));
  }
  return hash.digest("hex");
}
