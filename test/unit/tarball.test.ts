import { Readable } from "node:stream";
import { gunzipSync, gzipSync } from "node:zlib";
import * as tar from "tar-stream";
import { describe, expect, it } from "vitest";
import { extractFolders } from "../../lib/sources/tarball.ts";
import type { EntrySink, FolderTarget } from "../../lib/sources/types.ts";

async function archive(entries: { name: string; content?: string; type?: "directory" }[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on("data", (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const ended = new Promise<void>((resolve) => pack.on("end", () => resolve()));
  for (const e of entries) {
    if (e.type === "directory") pack.entry({ name: e.name, type: "directory" });
    else pack.entry({ name: e.name }, e.content ?? "");
  }
  pack.finalize();
  await ended;
  return gzipSync(Buffer.concat(chunks));
}

/** A sink that records what arrives, and a target that records when (and how) it was completed. */
function target(folder: string, events: string[]): FolderTarget {
  const sink: EntrySink = {
    folder,
    async file(path, body) {
      if (!Buffer.isBuffer(body)) for await (const _ of body) void _;
      events.push(`${folder}: ${path}`);
    },
    async symlink(path) {
      events.push(`${folder}: link ${path}`);
    },
  };
  return {
    folder,
    sink,
    complete: async (error) => {
      events.push(`${folder} complete${error ? ` (${error.message})` : ""}`);
    },
  };
}

describe("extractFolders", () => {
  it("finishes every folder only once the whole archive has arrived unless asked to finish early", async () => {
    const events: string[] = [];
    const body = await archive([
      { name: "top/a/x.txt", content: "x" },
      { name: "top/b/y.txt", content: "y" },
    ]);
    await extractFolders(Readable.from([body]), [target("a", events), target("b", events)], "test");
    expect(events).toEqual(["a: x.txt", "b: y.txt", "a complete", "b complete"]);
  });

  it("completes each folder as soon as the stream leaves it, before the next folder's entries arrive", async () => {
    const events: string[] = [];
    const body = await archive([
      { name: "top/", type: "directory" },
      { name: "top/a/", type: "directory" },
      { name: "top/a/x.txt", content: "x" },
      { name: "top/b/", type: "directory" },
      { name: "top/b/y.txt", content: "y" },
      { name: "top/c.txt", content: "c" },
    ]);
    const early = { early: true };
    const result = await extractFolders(
      Readable.from([body]),
      [target("a", events), target("b", events)],
      "test",
      early,
    );
    expect(result.errors.size).toBe(0);
    expect(events).toEqual(["a: x.txt", "a complete", "b: y.txt", "b complete"]);
  });

  it("fails a completed folder whose paths come again later in the archive", async () => {
    const events: string[] = [];
    const body = await archive([
      { name: "top/a/x.txt", content: "x" },
      { name: "top/b/y.txt", content: "y" },
      { name: "top/a/z.txt", content: "z" },
    ]);
    const targets = [target("a", events), target("b", events)];
    const result = await extractFolders(Readable.from([body]), targets, "test", { early: true });
    expect(events).toEqual(["a: x.txt", "a complete", "b: y.txt", "b complete"]);
    expect(result.errors.get("a")?.message).toMatch(/"z.txt" in folder "a" arrives after the folder ended/);
    expect(result.errors.has("b")).toBe(false);
  });

  it("completes a folder that does not exist with its error", async () => {
    const events: string[] = [];
    const body = await archive([{ name: "top/b/y.txt", content: "y" }]);
    const result = await extractFolders(
      Readable.from([body]),
      [target("b", events), target("missing", events)],
      "test",
      {
        early: true,
      },
    );
    expect(events).toEqual([
      "b: y.txt",
      "b complete",
      expect.stringMatching(/^missing complete \(folder "missing" does not exist/),
    ]);
    expect(result.errors.has("b")).toBe(false);
  });

  it("resets and completes again every folder, finished ones included, when the download is retried", async () => {
    const events: string[] = [];
    const targets = [target("a", events), target("b", events)];
    for (const t of targets) t.sink.reset = async () => void events.push(`${t.folder} reset`);
    const good = await archive([
      { name: "top/a/x.txt", content: "x" },
      { name: "top/b/y.txt", content: "y" },
    ]);
    // the first attempt is cut short after folder a has ended in the stream
    const cut = gzipSync(gunzipSync(good).subarray(0, 1536)).subarray(0, -8);
    await expect(extractFolders(Readable.from([cut]), targets, "test", { early: true })).rejects.toThrow(
      /corrupt or was cut short/,
    );
    const result = await extractFolders(Readable.from([good]), targets, "test", { early: true });
    expect(result.errors.size).toBe(0);
    expect(events).toEqual([
      "a reset",
      "b reset",
      "a: x.txt",
      "a complete",
      "a reset",
      "b reset",
      "a: x.txt",
      "a complete",
      "b: y.txt",
      "b complete",
    ]);
  });

  it("hands two nested folders the same bytes of a file, since a sink keeps nothing it is given", async () => {
    const content = "0123456789abcdef".repeat(8192); // 128 KiB: delivered as bytes
    const body = await archive([{ name: "top/a/b/f.bin", content }]);
    const got: Record<string, string> = {};
    const given: Buffer[] = [];
    const reading = (folder: string): FolderTarget => ({
      folder,
      sink: {
        folder,
        async file(path, data) {
          expect(Buffer.isBuffer(data)).toBe(true);
          given.push(data as Buffer);
          got[`${folder}: ${path}`] = (data as Buffer).toString("latin1");
        },
        async symlink() {},
      },
      complete: async () => undefined,
    });
    await extractFolders(Readable.from([body]), [reading("a"), reading("a/b")], "test");
    expect(Object.keys(got).sort()).toEqual(["a/b: f.bin", "a: b/f.bin"]);
    expect(Object.values(got).map((v) => v === content)).toEqual([true, true]);
    expect(given[0]).toBe(given[1]); // no copy per folder
  });

  it("hands a file over 1 MiB to its sink as a stream with its declared size, so a sink that refuses the size reads none of it", async () => {
    const size = 3 * 1024 * 1024;
    const body = await archive([
      { name: "top/a/big.bin", content: "a".repeat(size) },
      { name: "top/b/small.txt", content: "after" },
    ]);
    let buffered = 0;
    const declared: (number | undefined)[] = [];
    const delivered: string[] = [];
    const refusing = (folder: string): FolderTarget => ({
      folder,
      sink: {
        folder,
        async file(path, data, options) {
          if (Buffer.isBuffer(data)) {
            buffered += data.length;
            delivered.push(path);
            return;
          }
          declared.push(options.size);
          data.destroy();
          throw new Error(`${path} is over the budget`);
        },
        async symlink() {},
      },
    });
    const result = await extractFolders(Readable.from([body]), [refusing("a"), refusing("b")], "test");
    expect(result.errors.get("a")?.message).toBe("big.bin is over the budget");
    expect(declared).toEqual([size]);
    // the big entry was skipped, never held in memory whole; the extraction went on past it
    expect(result.errors.has("b")).toBe(false);
    expect(buffered).toBe("after".length);
    expect(delivered).toEqual(["small.txt"]);
  });
});
