import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BuildOptions } from "esbuild";
import { afterEach, describe, expect, it } from "vitest";
import { type CachedBundleOptions, cachedBundle } from "./worker-bundle.ts";

const made: string[] = [];

afterEach(async () => {
  for (const dir of made.splice(0)) await rm(dir, { recursive: true, force: true });
});

/** A tiny project (an entry importing a helper, and an options file) and its bundle cache. */
async function project(): Promise<CachedBundleOptions & { write(file: string, text: string): Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), "layer-sync-worker-bundle-"));
  made.push(root);
  const write = (file: string, text: string) => writeFile(join(root, file), text);
  await write("entry.ts", 'import { greeting } from "./helper.ts";\nconsole.log(greeting);\n');
  await write("helper.ts", 'export const greeting: string = "hello";\n');
  await write("options.txt", "one\n");
  return {
    root,
    cacheDir: join(root, ".cache", "worker-bundle"),
    keyFiles: ["options.txt"],
    options: (outdir): BuildOptions => ({
      entryPoints: { worker: join(root, "entry.ts") },
      outdir,
      outExtension: { ".js": ".mjs" },
      bundle: true,
      platform: "node",
      format: "esm",
      logLevel: "warning",
      absWorkingDir: root,
    }),
    write,
  };
}

describe("the bench's cached worker bundle", () => {
  it("is built once and reused, unchanged, while no input changed", async () => {
    const p = await project();
    const first = await cachedBundle(p);
    expect(first.built).toBe(true);
    const before = await stat(join(first.dir, "worker.mjs"));

    const second = await cachedBundle(p);

    expect(second).toEqual({ dir: first.dir, key: first.key, built: false });
    expect((await stat(join(second.dir, "worker.mjs"))).mtimeMs).toBe(before.mtimeMs);
    expect(await readdir(p.cacheDir)).toEqual([first.key]);
  });

  it("is rebuilt under a new key when an imported source or a key file changed, and the stale one removed", async () => {
    const p = await project();
    const first = await cachedBundle(p);

    await p.write("helper.ts", 'export const greeting: string = "changed";\n');
    const afterSource = await cachedBundle(p);
    expect(afterSource.built).toBe(true);
    expect(afterSource.key).not.toBe(first.key);
    expect(await readdir(p.cacheDir)).toEqual([afterSource.key]);

    await p.write("options.txt", "two\n");
    const afterOptions = await cachedBundle(p);
    expect(afterOptions.built).toBe(true);
    expect(afterOptions.key).not.toBe(afterSource.key);
    expect(await readdir(p.cacheDir)).toEqual([afterOptions.key]);
  });

  it("never uses a half-written bundle: a temporary folder an interrupted build left, or a folder without its input list", async () => {
    const p = await project();
    const first = await cachedBundle(p);
    await rm(p.cacheDir, { recursive: true });
    for (const dir of [".tmp-1-cutoff", first.key]) {
      await mkdir(join(p.cacheDir, dir), { recursive: true });
      await writeFile(join(p.cacheDir, dir, "worker.mjs"), "half");
    }

    const again = await cachedBundle(p);

    expect(again).toEqual({ dir: first.dir, key: first.key, built: true });
    expect(await readFile(join(again.dir, "worker.mjs"), "utf8")).toContain("hello");
  });
});
