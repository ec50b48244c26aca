/** Read a .tar.gz into its entries (test helper for the emulators' archive endpoints). */
import { gunzipSync } from "node:zlib";
import * as tar from "tar-stream";

export interface TarEntry {
  name: string;
  type: string;
  linkname: string | undefined;
  mode: number | undefined;
  content: Buffer;
}

export async function tarEntries(gzipped: Buffer): Promise<TarEntry[]> {
  const extract = tar.extract();
  const entries: TarEntry[] = [];
  const done = new Promise<void>((resolve, reject) => {
    extract.on("entry", (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on("data", (c: unknown) => chunks.push(c as Buffer));
      stream.on("end", () => {
        entries.push({
          name: header.name,
          type: header.type ?? "file",
          linkname: header.linkname ?? undefined,
          mode: header.mode,
          content: Buffer.concat(chunks),
        });
        next();
      });
      stream.resume();
    });
    extract.on("finish", resolve);
    extract.on("error", reject);
  });
  extract.end(gunzipSync(gzipped));
  await done;
  return entries;
}
