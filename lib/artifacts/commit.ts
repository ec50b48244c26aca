/**
 * Committing an artifact: the one sequence every producer (the folder sync, local builds, CodeBuild results)
 * runs once it holds a verified zip.
 *
 * 1. Skip: a zip whose SHA-256 equals the current artifact's (`previous`) is `skipped: unchanged` and nothing
 *    is written (`force` disables it). With a `dir` destination the current artifact is the newest zip of
 *    the package in the directory.
 * 2. `--out DIR` (`dir`): the zip moves to `DIR/<key>`, its SBOM beside it.
 * 3. Dry run (`s3` only): reported as `skipped: dry-run`.
 * 4. Upload (`s3`): the SBOM first (an artifact whose metadata names an SBOM always has it beside it), then
 *    the zip under a new key, never overwriting, verified by a HEAD; a signal aborts a multipart upload
 *    (`interrupts`) and a passed deadline stops it.
 * 5. Point forward, now or when the caller runs the returned `point()` (the folder sync points only after
 *    the fetch confirmed the folder): never back over a newer key, refused over a key from a wrong clock
 *    (`advancePointer` with `now`), with a warning when a newer run already pointed further.
 *
 * The destination is resolved once where the clients are known (`s3Destination`, `dirDestination`), so an
 * upload without a client or bucket cannot be written down.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { S3Client } from "@aws-sdk/client-s3";
import type { SSMClient } from "@aws-sdk/client-ssm";
import { artifactKeyParameter } from "../common/config.ts";
import type { RunDeadline } from "../common/deadline.ts";
import { moveFile } from "../common/files.ts";
import { type Logger, silentLogger } from "../common/log.ts";
import { newestOutZip } from "./out-dir.ts";
import { advancePointer, type PointerWrite, readParameter } from "./pointer.ts";
import {
  type ArtifactHead,
  type ArtifactMetadata,
  headArtifact,
  type RunInterrupts,
  sbomKey,
  uploadArtifact,
  uploadSbom,
} from "./store.ts";

/** Artifacts in S3, their pointers in Parameter Store. */
export interface S3Destination {
  kind: "s3";
  s3: S3Client;
  ssm: SSMClient;
  bucket: string;
  /** `ARTIFACT_PREFIX`: keys are `{artifactPrefix}{package}/…`. */
  artifactPrefix: string;
  /** `PARAMETER_PREFIX`: pointers are `{parameterPrefix}/{package}/artifact-key`. */
  parameterPrefix: string;
  /** A signal aborts the multipart upload under way (the CLI's handler runs what is registered here). */
  interrupts?: RunInterrupts | undefined;
  /** Past it, no upload starts and no pointer is written. */
  deadline?: RunDeadline | undefined;
  logger?: Logger | undefined;
}

/** `--out DIR`: zips written to `DIR/<key>`; no AWS call. */
export interface DirDestination {
  kind: "dir";
  outDir: string;
  artifactPrefix: string;
}

export type ArtifactDestination = S3Destination | DirDestination;

export function s3Destination(fields: Omit<S3Destination, "kind">): S3Destination {
  return { kind: "s3", ...fields };
}

export function dirDestination(outDir: string, artifactPrefix: string): DirDestination {
  return { kind: "dir", outDir, artifactPrefix };
}

/** The SSM parameter naming a package's current artifact. */
export function pointerOf(destination: S3Destination, pkg: string): string {
  return artifactKeyParameter(destination.parameterPrefix, pkg);
}

/** The key the package's pointer names and that artifact's HEAD (undefined when either is missing). */
export async function currentArtifact(
  destination: S3Destination,
  pkg: string,
): Promise<{ key: string | undefined; head: ArtifactHead | undefined }> {
  const key = await readParameter(destination.ssm, pointerOf(destination, pkg));
  const head = key ? await headArtifact(destination.s3, destination.bucket, key) : undefined;
  return { key, head };
}

export interface ArtifactCommit {
  package: string;
  /** The key to write, unless the commit is skipped. */
  key: string;
  /** The verified zip (moved away with a `dir` destination). */
  zip: { path: string; sha256: string };
  /** Everything but `sbomSha256`, which the commit adds from `sbom`. */
  metadata: ArtifactMetadata;
  /** The artifact's CycloneDX SBOM, stored at `sbomKey(key)` before the zip. */
  sbom?: { text: string; sha256: string } | undefined;
  /** The artifact the pointer named when the run looked (`s3`): equal content ⇒ skipped. */
  previous?: ArtifactHead | undefined;
  /** The run's clock: a pointer dated beyond it (a wrong clock) is refused rather than left frozen. */
  now: Date;
  /** The pointer's description. */
  description: string;
  force?: boolean | undefined;
  dryRun?: boolean | undefined;
  /** `later`: upload only and return `point()` for the caller to run once it may. */
  point?: "now" | "later";
  /** Records a warning of the package (the superseded warning). */
  warn: (warning: string) => void;
  /** Called once the commit has decided to upload, before it does: may add metadata (a fingerprint). */
  beforeUpload?: () => Promise<Partial<ArtifactMetadata> | undefined> | Partial<ArtifactMetadata> | undefined;
}

export type CommitResult =
  | { kind: "skipped"; reason: "unchanged" | "dry-run"; key: string }
  | { kind: "written"; key: string; file: string }
  | { kind: "uploaded"; key: string; point: () => Promise<PointerWrite> }
  | { kind: "pointed"; key: string; pointer: PointerWrite };

export const SUPERSEDED_WARNING = "a newer run already pointed at a newer artifact; the pointer was left on it";

/** Commit one verified zip to `destination` (see the module comment). */
export async function commitArtifact(destination: ArtifactDestination, commit: ArtifactCommit): Promise<CommitResult> {
  if (destination.kind === "dir") return writeToDir(destination, commit);
  const prev = commit.previous;
  if (!commit.force && prev?.metadata && prev.metadata.contentSha256 === commit.zip.sha256) {
    return { kind: "skipped", reason: "unchanged", key: prev.key };
  }
  if (commit.dryRun) return { kind: "skipped", reason: "dry-run", key: commit.key };
  const { s3, bucket, deadline } = destination;
  const metadata: ArtifactMetadata = { ...commit.metadata, ...(await commit.beforeUpload?.()) };
  const doing = `uploading package "${commit.package}"`;
  deadline?.check(doing);
  try {
    if (commit.sbom) {
      await uploadSbom(s3, { bucket, key: sbomKey(commit.key), text: commit.sbom.text });
      metadata.sbomSha256 = commit.sbom.sha256;
    }
    await uploadArtifact(s3, { bucket, key: commit.key, file: commit.zip.path, metadata }, destination.interrupts);
  } catch (error) {
    throw deadline?.passed ? deadline.error(doing, error) : error;
  }
  const point = () => pointForward(destination, commit);
  if (commit.point === "later") return { kind: "uploaded", key: commit.key, point };
  return { kind: "pointed", key: commit.key, pointer: await point() };
}

async function pointForward(destination: S3Destination, commit: ArtifactCommit): Promise<PointerWrite> {
  destination.deadline?.check(`pointing package "${commit.package}" at ${commit.key}`);
  const outcome = await advancePointer(
    destination.ssm,
    pointerOf(destination, commit.package),
    commit.key,
    commit.description,
    commit.now,
  );
  if (outcome === "superseded") {
    commit.warn(SUPERSEDED_WARNING);
    (destination.logger ?? silentLogger).warn("pointer superseded", { package: commit.package, key: commit.key });
  }
  return outcome;
}

async function writeToDir(destination: DirDestination, commit: ArtifactCommit): Promise<CommitResult> {
  const { outDir, artifactPrefix } = destination;
  const existing = commit.force ? undefined : await newestOutZip(outDir, artifactPrefix, commit.package);
  if (existing?.sha256 === commit.zip.sha256) return { kind: "skipped", reason: "unchanged", key: existing.key };
  const file = join(outDir, ...commit.key.split("/"));
  await mkdir(dirname(file), { recursive: true });
  if (commit.sbom) await writeFile(join(outDir, ...sbomKey(commit.key).split("/")), commit.sbom.text);
  await moveFile(commit.zip.path, file); // verified by the producer; it is done with it
  return { kind: "written", key: commit.key, file };
}
