/**
 * The physical floor for one folder: download the repository archive once (the same bytes layer-sync's
 * archive strategy downloads), take the folder's entries out of it in memory, and zip them in memory with
 * the writer and settings `buildZip` uses. No ref resolution, no staging to disk, no verification, no
 * output file inside the measured time. Compression runs on libuv's thread pool (zlib's `deflateRaw`,
 * same bytes): with nothing else left to do, that is the fastest way to them on a small machine, so the
 * floor is not raised by layer-sync's choice of worker threads (made for overlapping a download).
 */
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import { createGunzip, deflateRaw } from "node:zlib";
import * as tar from "tar-stream";
import { Agent, request } from "undici";
import { readAll as collect } from "../lib/common/streams.ts";
import { LAYER_CONFIG_FILE, MODE, ZIP_DATE } from "../lib/zip/folder-zip.ts";
import { ZIP_LEVEL, type ZipInput, zipToBuffer } from "../lib/zip/writer.ts";

const deflateRawAsync = promisify(deflateRaw);

import type { LowerBoundJob } from "./jobs.ts";

/** The archive's body stream, following the one redirect GitHub answers with (the token stays on the API). */
async function openArchive(job: LowerBoundJob, dispatcher: Agent, count: () => void): Promise<Readable> {
  const { source } = job;
  const auth = { authorization: `Bearer ${source.token}`, "user-agent": "layer-sync-bench-lower-bound" };
  let url =
    source.provider === "bitbucket"
      ? `${source.webUrl}/${source.repository}/get/${job.commit}.tar.gz`
      : `${source.apiUrl}/repos/${source.repository}/tarball/${job.commit}`;
  let headers: Record<string, string> =
    source.provider === "github"
      ? { ...auth, accept: "application/vnd.github+json", "x-github-api-version": "2022-11-28" }
      : auth;
  for (let hops = 0; hops < 3; hops++) {
    count();
    const res = await request(url, { headers, dispatcher });
    const location = res.headers.location;
    if (res.statusCode >= 300 && res.statusCode < 400 && typeof location === "string") {
      await res.body.dump();
      url = new URL(location, url).href;
      headers = { "user-agent": auth["user-agent"] };
      continue;
    }
    if (res.statusCode !== 200) {
      const text = (await collect(res.body)).toString("utf8").slice(0, 200);
      throw new Error(`GET ${url} answered ${res.statusCode}: ${text}`);
    }
    return res.body;
  }
  throw new Error("the archive download redirected too often");
}

/** Zip one folder's entries in memory, in name order, as `buildZip` would. */
async function zipFolder(inputs: ZipInput[]): Promise<Buffer> {
  inputs.sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
  return zipToBuffer(inputs, ZIP_DATE, {
    level: ZIP_LEVEL,
    deflate: (d, level) => deflateRawAsync(d, { level }),
  });
}

/**
 * One download; each folder is zipped as soon as the archive moves past it (git archives emit a folder's
 * entries together), so compression overlaps the rest of the download and memory holds about one folder.
 * Returns the first folder's zip (for the entry comparison) and the total zip bytes.
 */
export async function runLowerBound(job: LowerBoundJob): Promise<{ requests: number; zip: Buffer; zipBytes: number }> {
  const dispatcher = new Agent({ connections: 1 });
  let requests = 0;
  try {
    const body = await openArchive(job, dispatcher, () => {
      requests++;
    });
    const folders = job.folders ?? [job.folder];
    const prefixes = folders.map((f) => `${f}/`);
    const zips: Promise<Buffer>[] = new Array(folders.length);
    let open: { index: number; inputs: ZipInput[] } | undefined;
    const close = () => {
      if (open) zips[open.index] = zipFolder(open.inputs);
      open = undefined;
    };
    const extract = tar.extract();
    const feeding = pipeline(body, createGunzip(), extract);
    for await (const entry of extract) {
      const { header } = entry;
      const name = header.name.replace(/\/+$/, "");
      const repoPath = name.slice(name.indexOf("/") + 1);
      const stream = entry as unknown as AsyncIterable<Buffer>;
      const index = prefixes.findIndex((p) => repoPath.startsWith(p));
      if (index < 0 || header.type === "directory") {
        for await (const _ of stream) {
          // not in a folder
        }
        continue;
      }
      if (open?.index !== index) {
        close();
        open = { index, inputs: [] };
      }
      const { inputs } = open;
      const rel = repoPath.slice((prefixes[index] as string).length);
      if (header.type === "symlink") {
        for await (const _ of stream) {
          // no body
        }
        inputs.push({ name: rel, mode: MODE.symlink, size: 0, content: Buffer.from(header.linkname ?? "") });
        continue;
      }
      const content = await collect(stream);
      if (rel === LAYER_CONFIG_FILE) continue;
      const executable = ((header.mode ?? 0o644) & 0o100) !== 0;
      inputs.push({ name: rel, mode: executable ? MODE.executable : MODE.file, size: content.length, content });
    }
    await feeding;
    close();
    const done = await Promise.all(folders.map((_, i) => zips[i] ?? zipFolder([])));
    return { requests, zip: done[0] as Buffer, zipBytes: done.reduce((a, z) => a + z.length, 0) };
  } finally {
    await dispatcher.close();
  }
}
