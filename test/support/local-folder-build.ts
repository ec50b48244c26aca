/**
 * A folder built for python3.12 by the local builder, as the build tests with real installers run it: the
 * folder's files written to a numbered folder under the test's work folder, walked and planned (layer.json
 * included when the files have one), built by `LocalBuilder` with a fresh HOME and the repository's download
 * and tool caches, and zipped beside it.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import type { BuilderOptions } from "../../lib/builds/builders.ts";
import { type BuiltLayer, buildTarget } from "../../lib/builds/content.ts";
import { LocalBuilder } from "../../lib/builds/local.ts";
import { walkDirectory } from "../../lib/builds/tree.ts";
import { type BuildPlan, planBuild } from "../../lib/common/build-plan.ts";

/** The download caches (pip, npm) and layer-sync's tool cache (uv and its interpreters) the tests share. */
export const BUILD_CACHE = resolve(import.meta.dirname, "../../.cache/build");
export const TOOL_CACHE = resolve(import.meta.dirname, "../../.cache/layer-sync");

export interface LocalFolderBuild {
  /** The package; its folder is `layers/<name>`. */
  name: string;
  /** The folder's files, relative path → text. */
  files: Record<string, string>;
  /** The default architectures (`[]`: the builder's default). */
  architectures: string[];
  /** The builder's settings other than HOME and the caches. */
  builder: Omit<BuilderOptions, "home" | "cacheDir" | "toolCache">;
}

/** Builds each folder under `work()` (`folder-N`, `home-N`, `run-N` and `run-N.zip`). */
export function localFolderBuilds(work: () => string): (b: LocalFolderBuild) => Promise<BuiltLayer> {
  let runs = 0;
  return async (b) => {
    const n = ++runs;
    const dir = join(work(), `folder-${n}`);
    for (const [name, text] of Object.entries(b.files)) {
      await mkdir(dirname(join(dir, name)), { recursive: true });
      await writeFile(join(dir, name), text);
    }
    const files = await walkDirectory(dir, b.name);
    const plan = planBuild({
      folder: `layers/${b.name}`,
      name: b.name,
      layerNamePrefix: "",
      files: files.map((f) => f.path),
      layerJson: b.files["layer.json"],
      defaults: { runtimes: ["python3.12"], architectures: b.architectures },
    }) as BuildPlan;
    const home = join(work(), `home-${n}`);
    await mkdir(home, { recursive: true });
    const builder = new LocalBuilder({ ...b.builder, home, cacheDir: BUILD_CACHE, toolCache: TOOL_CACHE });
    const [target] = plan.targets;
    if (!target) throw new Error(`no build target for layers/${b.name}`);
    const out = join(work(), `run-${n}`);
    return buildTarget({ plan, target, files, builder, workDir: out, zipFile: `${out}.zip` });
  };
}
