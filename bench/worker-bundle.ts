/**
 * An esbuild bundle kept between bench runs: built once into `cacheDir/<key>/` and reused while nothing it was
 * built from changed. The key is the SHA-256 of esbuild's version, the contents of `keyFiles` (the files that
 * make the build options) and the path and contents of every input esbuild's metafile listed for the bundle
 * (sources and the node_modules files it holds). Each bundle folder keeps its input list (`inputs.json`), so a
 * later call re-hashes exactly those files: a changed input gives another key and a new build (a newly
 * imported file is only reached through a changed importer). A build goes to a temporary folder renamed into
 * place when complete, so a half-written bundle is never used; other bundles in `cacheDir` are then removed.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { BuildOptions } from "esbuild";

export interface CachedBundleOptions {
  /** The folder that holds one folder per key (created when missing). */
  cacheDir: string;
  /** The folder the metafile's input paths and `keyFiles` are relative to (esbuild's `absWorkingDir`). */
  root: string;
  /** Files whose contents are part of the key besides the inputs: what makes the build options. */
  keyFiles: readonly string[];
  /** esbuild's options for a build into `outdir` (the metafile is turned on here). */
  options: (outdir: string) => BuildOptions;
}

export interface CachedBundle {
  /** The bundle's folder, `cacheDir/<key>`. */
  dir: string;
  key: string;
  /** Whether this call built it (false: an earlier build was reused). */
  built: boolean;
}

const INPUTS = "inputs.json";
const KEY = /^[0-9a-f]{64}$/;

async function keyOf(root: string, keyFiles: readonly string[], inputs: readonly string[]): Promise<string> {
  const { version } = await import("esbuild");
  const hash = createHash("sha256").update(`esbuild ${version}\0`);
  for (const [kind, files] of [
    ["key", keyFiles],
    ["input", [...inputs].sort()],
  ] as const) {
    for (const file of files) {
      hash.update(`${kind} ${file}\0`);
      // a virtual or vanished input hashes as missing: the same answer every time, so no false reuse
      const content = await readFile(join(root, file)).catch(() => Buffer.from("\0missing\0"));
      hash.update(content).update("\0");
    }
  }
  return hash.digest("hex");
}

/** The existing bundle whose recorded inputs still hash to its folder's name. */
async function reusable(o: CachedBundleOptions, names: string[]): Promise<CachedBundle | undefined> {
  for (const name of names.filter((n) => KEY.test(n))) {
    const dir = join(o.cacheDir, name);
    const inputs = await readFile(join(dir, INPUTS), "utf8")
      .then((text) => JSON.parse(text) as string[])
      .catch(() => undefined);
    if (inputs && (await keyOf(o.root, o.keyFiles, inputs)) === name) return { dir, key: name, built: false };
  }
  return undefined;
}

/** The bundle for the current sources: an earlier build when its inputs are unchanged, else a new build. */
export async function cachedBundle(o: CachedBundleOptions): Promise<CachedBundle> {
  await mkdir(o.cacheDir, { recursive: true });
  const found = await reusable(o, await readdir(o.cacheDir));
  if (found) return found;

  const { build } = await import("esbuild");
  const temp = join(o.cacheDir, `.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
  try {
    const result = await build({ ...o.options(temp), metafile: true });
    const inputs = Object.keys(result.metafile.inputs).sort();
    const key = await keyOf(o.root, o.keyFiles, inputs);
    await writeFile(join(temp, INPUTS), `${JSON.stringify(inputs, null, 1)}\n`);
    const dir = join(o.cacheDir, key);
    await rename(temp, dir).catch(async (error: NodeJS.ErrnoException) => {
      if (error.code !== "ENOTEMPTY" && error.code !== "EEXIST") throw error;
      // another process renamed the same complete bundle there first: keep theirs; anything else goes
      if (
        await readFile(join(dir, INPUTS)).then(
          () => true,
          () => false,
        )
      )
        return;
      await rm(dir, { recursive: true, force: true });
      await rename(temp, dir);
    });
    for (const name of await readdir(o.cacheDir)) {
      if (name !== key && !name.startsWith(".tmp-")) await rm(join(o.cacheDir, name), { recursive: true, force: true });
    }
    return { dir, key, built: true };
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}
