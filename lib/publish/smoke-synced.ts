/**
 * `sync --out DIR --smoke`: the smoke test run locally against each zip the sync wrote, with an interpreter of
 * the target runtime when one is found (Python: `python3.X` on PATH; Node.js: the Node running the CLI), on
 * targets of this machine's architecture only. Says so, per target, when it cannot run one. The modules to
 * import are the folder's `layer.json` `"smoke"` when it names them (`smokeModules`, by folder path), else the
 * layer's top-level packages, as in the Region.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultSmokeModules } from "./layer-entries.ts";
import { smokeTargets } from "./smoke.ts";
import { extractLayerZip, findPython, runSmokeLocally } from "./smoke-local.ts";

export interface LocalSmokeEntry {
  package: string;
  runtime: string;
  architecture: string;
  /** `ok` / `failed`, or `not-run` with the reason in `note`. */
  result: "ok" | "failed" | "not-run";
  imported: string[];
  error?: string;
  note?: string;
}

export async function smokeSyncedPackages(args: {
  outDir: string;
  packages: readonly {
    name: string;
    /** The repository folder (the key of `smokeModules`). */
    path?: string;
    key: string | null;
    error?: string;
    build?: { runtime: string; architecture: string } | null;
  }[];
  runtimes: readonly string[];
  architectures: readonly string[];
  /** The machine's architecture (x86_64 or arm64), the PATH directories and the Node binary to use. */
  machine: string;
  pathDirs: readonly string[];
  node: string;
  baseEnv: NodeJS.ProcessEnv;
  /** `layer.json` `"smoke"` of the folders that have it, by folder path. */
  smokeModules?: ReadonlyMap<string, readonly string[]>;
}): Promise<LocalSmokeEntry[]> {
  const out: LocalSmokeEntry[] = [];
  for (const p of args.packages) {
    if (p.error !== undefined || p.key === null) continue;
    const dir = await mkdtemp(join(tmpdir(), "layer-sync-smoke-layer-"));
    try {
      const names = await extractLayerZip(join(args.outDir, p.key), dir);
      const named = p.path === undefined ? undefined : args.smokeModules?.get(p.path);
      const targets = smokeTargets({
        runtimes: p.build ? [p.build.runtime] : args.runtimes,
        architectures: p.build ? [p.build.architecture] : args.architectures,
        build: undefined,
        modules: undefined,
      });
      if (targets.length === 0) {
        out.push({
          package: p.name,
          runtime: "-",
          architecture: "-",
          result: "not-run",
          imported: [],
          note: "no Python or Node.js runtime configured (COMPATIBLE_RUNTIMES or a build)",
        });
      }
      for (const t of targets) {
        const base = { package: p.name, runtime: t.runtime, architecture: t.architecture };
        if (t.architecture !== args.machine) {
          out.push({ ...base, result: "not-run", imported: [], note: `this machine is ${args.machine}` });
          continue;
        }
        const interpreter = t.family === "python" ? await findPython(t.runtime, args.pathDirs) : args.node;
        if (!interpreter) {
          out.push({ ...base, result: "not-run", imported: [], note: `no ${t.runtime} interpreter on PATH` });
          continue;
        }
        const result = await runSmokeLocally({
          family: t.family,
          interpreter,
          layerDir: dir,
          modules: named ? [...named] : defaultSmokeModules(names, t.family),
          pythonVersion: t.runtime.replace(/^python/, ""),
          baseEnv: args.baseEnv,
        });
        out.push({
          ...base,
          result: result.ok ? "ok" : "failed",
          imported: result.imported,
          ...(result.error !== undefined ? { error: result.error } : {}),
          ...(t.family === "nodejs" ? { note: `run with ${interpreter} (the CLI's Node), not ${t.runtime}` } : {}),
        });
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  return out;
}
