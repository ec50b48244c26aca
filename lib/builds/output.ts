/**
 * Taking a CodeBuild build's output and its source back from S3, treating every byte as hostile. Both
 * land in a `FolderStage`, whose rules are the ones every repository archive meets: names are checked,
 * no path arrives twice, nothing is written through a link, links never leave the layer, sizes and
 * file counts are limited while streaming.
 *
 * - The output is the ZIP CodeBuild made of the build's artifact. It is first proven to be the build's own: its
 *   SHA-256 must equal the one CodeBuild reports for the build (`artifacts.sha256sum`), so an object another
 *   build (or anyone else) wrote at that key is refused. Inside it, the tar the buildspec packed
 *   (`layer/python/…` or `layer/nodejs/…`) is read: only the install root is taken from it; anything else a
 *   build leaves in the archive is ignored.
 * - The source is layer-sync's own zip of the folder (written by the sync, unwritable by the build).
 */
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { type Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { GetObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import yauzl from "yauzl";
import { ArtifactError, BuildError, LimitExceededError, UnsupportedEntryError } from "../common/errors.ts";
import { quoteName } from "../common/paths.ts";
import { readAllText } from "../common/streams.ts";
import { extractFolders, finishExtraction } from "../sources/tarball.ts";
import type { FolderStage } from "../staging/staging.ts";
import { OUTPUT_ARCHIVE, OUTPUT_TOP } from "./buildspec.ts";

/** An output archive larger than this (compressed) is refused before it is read. */
export const OUTPUT_ARCHIVE_MAX_BYTES = 1024 * 1024 * 1024;

async function getObject(s3: S3Client, bucket: string, key: string, what: string): Promise<Readable> {
  try {
    const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    if ((res.ContentLength ?? 0) > OUTPUT_ARCHIVE_MAX_BYTES) {
      throw new LimitExceededError(
        `${what} at s3://${bucket}/${key} is ${res.ContentLength} bytes, over ${OUTPUT_ARCHIVE_MAX_BYTES}; a layer cannot be that large`,
      );
    }
    return res.Body as Readable;
  } catch (error) {
    if (error instanceof LimitExceededError) throw error;
    const name = (error as Error).name;
    const missing = name === "NoSuchKey" || name === "NotFound";
    throw new ArtifactError(
      missing
        ? `${what} s3://${bucket}/${key} does not exist; the build wrote no output where layer-sync asked it to`
        : `reading ${what} s3://${bucket}/${key} failed (${name}): ${(error as Error).message}`,
      { cause: error },
    );
  }
}

/** What proves a build's output: the build, and the SHA-256 CodeBuild reports for its artifact. */
export interface OutputProof {
  buildId: string;
  /** Hex SHA-256 as CodeBuild reports it; undefined when it reports none. */
  sha256: string | undefined;
}

/** Copy an object to `file`, returning the hex SHA-256 of what was written. */
async function download(body: Readable, file: string): Promise<string> {
  const hash = createHash("sha256");
  const tap = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
  await pipeline(body, tap, createWriteStream(file, { flags: "wx" }));
  return hash.digest("hex");
}

function openZip(file: string): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) =>
    // closed by the caller: an entry is opened after the listing ends
    yauzl.open(
      file,
      { lazyEntries: true, autoClose: false, strictFileNames: true, validateEntrySizes: true },
      (err, z) => (err || !z ? reject(err ?? new Error("no zip")) : resolve(z)),
    ),
  );
}

/** The one `OUTPUT_ARCHIVE` entry of a build's ZIP, as a stream (the ZIP stays open until it ends). */
async function archiveEntry(zip: yauzl.ZipFile, where: string): Promise<Readable> {
  const found: yauzl.Entry[] = [];
  await new Promise<void>((resolve, reject) => {
    zip.on("error", reject);
    zip.on("end", () => resolve());
    zip.on("entry", (entry: yauzl.Entry) => {
      if (entry.fileName === OUTPUT_ARCHIVE) found.push(entry);
      zip.readEntry();
    });
    zip.readEntry();
  });
  const entry = found[0];
  if (!entry || found.length > 1) {
    throw new BuildError(
      `the output of ${where} holds ${found.length === 0 ? "no" : `${found.length} copies of`} ${OUTPUT_ARCHIVE}; it was not made by layer-sync's buildspec`,
    );
  }
  if (entry.uncompressedSize > OUTPUT_ARCHIVE_MAX_BYTES) {
    throw new LimitExceededError(
      `${OUTPUT_ARCHIVE} in the output of ${where} is ${entry.uncompressedSize} bytes, over ${OUTPUT_ARCHIVE_MAX_BYTES}; a layer cannot be that large`,
    );
  }
  return new Promise((resolve, reject) =>
    zip.openReadStream(entry, (err, stream) =>
      err || !stream ? reject(err ?? new Error("no stream")) : resolve(stream),
    ),
  );
}

/**
 * Take a build's output: copy its ZIP to `file`, prove it is the build's (`proof`), and extract the install
 * root (`python` or `nodejs`) of the tar inside into `stage`. `where` names the build in messages.
 */
export async function stageBuildOutput(
  s3: S3Client,
  args: { bucket: string; key: string; file: string; root: string; proof: OutputProof },
  stage: FolderStage,
  where: string,
): Promise<void> {
  const { bucket, key, file, root, proof } = args;
  const body = await getObject(s3, bucket, key, `the output of ${where}`);
  let actual: string;
  try {
    actual = await download(body, file);
  } catch (error) {
    throw new ArtifactError(
      `reading the output of ${where} from s3://${bucket}/${key} failed: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  if (proof.sha256 === undefined || !/^[0-9a-f]{64}$/i.test(proof.sha256)) {
    throw new BuildError(
      `CodeBuild reports no SHA-256 for the artifact of build ${proof.buildId} (s3://${bucket}/${key} has ${actual}), so the output cannot be proven to be that build's; nothing was changed`,
    );
  }
  if (proof.sha256.toLowerCase() !== actual) {
    throw new BuildError(
      `the output at s3://${bucket}/${key} is not the artifact of build ${proof.buildId}: CodeBuild reports SHA-256 ${proof.sha256.toLowerCase()}, the object has ${actual}; nothing was changed`,
    );
  }
  let zip: yauzl.ZipFile;
  try {
    zip = await openZip(file);
  } catch (error) {
    throw new BuildError(`the output of ${where} is not a readable ZIP: ${(error as Error).message}`, { cause: error });
  }
  try {
    let tarball: Readable;
    try {
      tarball = await archiveEntry(zip, where);
    } catch (error) {
      if (error instanceof BuildError || error instanceof LimitExceededError) throw error;
      throw new BuildError(`the output of ${where} is not a readable ZIP: ${(error as Error).message}`, {
        cause: error,
      });
    }
    await extractTar(tarball, root, stage, where);
  } finally {
    zip.close();
  }
}

/** Extract the install root of the output tar into `stage`. */
async function extractTar(body: Readable, root: string, stage: FolderStage, where: string): Promise<void> {
  const targets = [{ folder: root, sink: stage }];
  let result: Awaited<ReturnType<typeof extractFolders>>;
  try {
    result = await extractFolders(body, targets, `the output of ${where}`);
  } catch (error) {
    throw new BuildError(`the output of ${where} is not a readable tar.gz: ${(error as Error).message}`, {
      cause: error,
    });
  }
  // an installed file may look like a Git LFS pointer: here it is only a file
  const fetched = await finishExtraction(targets, result, 4, (p) =>
    p.target.sink.file(p.path, p.pointer, { executable: p.executable, size: p.pointer.length }),
  );
  const error = fetched.outcomes[0]?.error;
  if (error) {
    if (error instanceof LimitExceededError) throw error;
    const text = error.message.replace(/folder "[^"]*"/g, `"${OUTPUT_TOP}/${root}"`);
    throw new BuildError(`the output of ${where} was refused: ${text}`, { cause: error });
  }
}

/** S_IFMT of a zip entry's external attributes. */
const TYPE_MASK = 0o170000;

/** Read layer-sync's zip of the folder (the build's source) into `stage`. */
export async function stageSourceZip(
  s3: S3Client,
  bucket: string,
  key: string,
  file: string,
  stage: FolderStage,
  where: string,
): Promise<void> {
  await pipeline(await getObject(s3, bucket, key, `the source of ${where}`), createWriteStream(file, { flags: "wx" }));
  const zip = await openZip(file);
  try {
    await new Promise<void>((resolve, reject) => {
      zip.on("error", reject);
      zip.on("end", () => resolve());
      zip.on("entry", (entry: yauzl.Entry) => {
        const mode = (entry.externalFileAttributes >>> 16) & 0xffff;
        const kind = mode & TYPE_MASK;
        zip.openReadStream(entry, (err, stream) => {
          if (err || !stream) return reject(err ?? new Error("no stream"));
          const done = (async () => {
            if (kind === 0o120000) {
              await stage.symlink(entry.fileName, await readAllText(stream));
            } else if (kind === 0o100000 || kind === 0) {
              await stage.file(entry.fileName, stream, {
                executable: (mode & 0o100) !== 0,
                size: entry.uncompressedSize,
              });
            } else {
              throw new UnsupportedEntryError(`${quoteName(entry.fileName)} in the source of ${where} is not a file`);
            }
          })();
          done.then(() => zip.readEntry(), reject);
        });
      });
      zip.readEntry();
    });
  } catch (error) {
    throw new BuildError(`the source zip of ${where} cannot be read back: ${(error as Error).message}`, {
      cause: error,
    });
  } finally {
    zip.close();
  }
}
