/**
 * A small reference implementation of the seed system's algorithm, the bench's baseline:
 *
 * 1. list the folder through `src/{ref}/{dir}/` with Bitbucket's default page size (no `pagelen`, so 10
 *    entries per page), one directory at a time, depth first, following `next` sequentially;
 * 2. GET every file through `src/{ref}/{path}`, one after the other;
 * 3. zip everything afterwards with jszip, in memory (DEFLATE level 6, the fixed date, UNIX modes).
 *
 * It is deliberately as simple as the seed: no concurrency, no streaming, no retries.
 */
import { writeFile } from "node:fs/promises";
import JSZip from "jszip";
import { Agent, request } from "undici";
import { MODE, ZIP_DATE } from "../lib/zip/folder-zip.ts";
import type { BaselineJob } from "./jobs.ts";

interface SrcEntry {
  type: string;
  path: string;
  attributes?: string[] | string | null;
}

interface SrcPage {
  values: SrcEntry[];
  next?: string;
}

function attributes(e: SrcEntry): string[] {
  if (Array.isArray(e.attributes)) return e.attributes;
  return typeof e.attributes === "string" && e.attributes ? [e.attributes] : [];
}

const encodePath = (p: string) => p.split("/").map(encodeURIComponent).join("/");

export async function runBaseline(job: BaselineJob): Promise<{ requests: number; zipFile: string }> {
  const dispatcher = new Agent({ connections: 1, keepAliveTimeout: 10_000 });
  const headers = { authorization: `Bearer ${job.source.token}`, "user-agent": "layer-sync-bench-baseline" };
  const base = `${job.source.apiUrl}/repositories/${job.source.repository}/src/${encodeURIComponent(job.ref)}`;
  let requests = 0;
  const get = async (url: string): Promise<Buffer> => {
    requests++;
    const res = await request(url, { headers, dispatcher });
    const body = Buffer.from(await res.body.arrayBuffer());
    if (res.statusCode !== 200)
      throw new Error(`GET ${url} answered ${res.statusCode}: ${body.toString().slice(0, 200)}`);
    return body;
  };
  try {
    const files: SrcEntry[] = [];
    const listDir = async (dir: string): Promise<void> => {
      let url: string | undefined = `${base}/${encodePath(dir)}/`;
      while (url) {
        const page = JSON.parse((await get(url)).toString("utf8")) as SrcPage;
        for (const v of page.values) {
          if (v.type === "commit_directory") await listDir(v.path);
          else if (v.type === "commit_file") files.push(v);
        }
        url = page.next;
      }
    };
    await listDir(job.folder);

    const zip = new JSZip();
    for (const f of files) {
      const content = await get(`${base}/${encodePath(f.path)}`);
      const rel = f.path.slice(job.folder.length + 1);
      if (rel === "layer.json") continue;
      const attrs = attributes(f);
      const mode = attrs.includes("link") ? MODE.symlink : attrs.includes("executable") ? MODE.executable : MODE.file;
      zip.file(rel, content, { binary: true, date: ZIP_DATE, unixPermissions: mode, createFolders: false });
    }
    const data = await zip.generateAsync({
      type: "nodebuffer",
      compression: "DEFLATE",
      compressionOptions: { level: 6 },
      platform: "UNIX",
    });
    await writeFile(job.outFile, data);
    return { requests, zipFile: job.outFile };
  } finally {
    await dispatcher.close();
  }
}
