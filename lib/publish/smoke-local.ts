/**
 * The smoke handlers run on this machine against an extracted layer, with the paths Lambda would give them:
 * Python with `python/` and `python/lib/python3.X/site-packages/` on `sys.path`, Node.js with
 * `nodejs/node_modules` on `NODE_PATH`. The caller finds the interpreter
 * (the target runtime's Python, or the pinned Node); nothing here reads the environment.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { NODE_SMOKE_SOURCE, PYTHON_SMOKE_SOURCE, type SmokeFamily } from "./smoke-handlers.ts";

export interface LocalSmokeResult {
  ok: boolean;
  imported: string[];
  error?: string;
}

const PYTHON_MAIN = `import json, sys
import layer_sync_smoke
print(json.dumps(layer_sync_smoke.handler(json.loads(sys.argv[1]), None)))
`;

const NODE_MAIN = `const h = require(process.argv[3]);
h.handler(JSON.parse(process.argv[2])).then((r) => process.stdout.write(JSON.stringify(r) + "\\n"));
`;

function run(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  cwd: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, cwd, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString("utf8");
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString("utf8");
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * Run the family's smoke handler with `interpreter` against the layer extracted at `layerDir`.
 * `pythonVersion` (e.g. `3.12`) names the site-packages folder Lambda adds for that runtime.
 */
export async function runSmokeLocally(args: {
  family: SmokeFamily;
  interpreter: string;
  layerDir: string;
  modules: readonly string[];
  pythonVersion?: string;
  /** The variables the child gets (PATH, HOME…); the smoke paths are added to them. */
  baseEnv?: NodeJS.ProcessEnv;
}): Promise<LocalSmokeResult> {
  const dir = await mkdtemp(join(tmpdir(), "layer-sync-smoke-"));
  try {
    const event = JSON.stringify({ modules: args.modules });
    let result: Awaited<ReturnType<typeof run>>;
    if (args.family === "python") {
      await writeFile(join(dir, "layer_sync_smoke.py"), PYTHON_SMOKE_SOURCE);
      await writeFile(join(dir, "main.py"), PYTHON_MAIN);
      const paths = [dir, join(args.layerDir, "python")];
      if (args.pythonVersion)
        paths.push(join(args.layerDir, "python", "lib", `python${args.pythonVersion}`, "site-packages"));
      const env = {
        ...args.baseEnv,
        PYTHONPATH: paths.join(delimiter),
        PYTHONDONTWRITEBYTECODE: "1",
        PYTHONNOUSERSITE: "1",
      };
      result = await run(args.interpreter, ["-s", join(dir, "main.py"), event], env, dir);
    } else {
      const handler = join(dir, "layer_sync_smoke.js");
      await writeFile(handler, NODE_SMOKE_SOURCE);
      await writeFile(join(dir, "main.js"), NODE_MAIN);
      const paths = [join(args.layerDir, "nodejs", "node_modules")];
      const env = { ...args.baseEnv, NODE_PATH: paths.join(delimiter) };
      result = await run(args.interpreter, [join(dir, "main.js"), event, handler], env, dir);
    }
    const line = result.stdout.trim().split("\n").at(-1) ?? "";
    try {
      const parsed = JSON.parse(line) as LocalSmokeResult;
      if (typeof parsed.ok === "boolean") return parsed;
    } catch {
      // fall through: the handler itself crashed
    }
    const last = result.stderr.trim().split("\n").at(-1) ?? `exit code ${result.code}`;
    return { ok: false, imported: [], error: last };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Extract a layer zip (as layer-sync writes them: relative names, files and symlinks) into `dir`. */
export async function extractLayerZip(zipFile: string, dir: string): Promise<string[]> {
  const { default: yauzl } = await import("yauzl");
  const { mkdir: mkdirp, symlink, writeFile: write } = await import("node:fs/promises");
  const { dirname, resolve: resolvePath, sep } = await import("node:path");
  const root = resolvePath(dir);
  const zip = await new Promise<import("yauzl").ZipFile>((ok, fail) =>
    yauzl.open(zipFile, { lazyEntries: true, decodeStrings: true }, (error, z) => (error || !z ? fail(error) : ok(z))),
  );
  const names: string[] = [];
  await new Promise<void>((done, fail) => {
    zip.on("error", fail);
    zip.on("end", () => done());
    zip.on("entry", (entry: import("yauzl").Entry) => {
      const target = resolvePath(root, entry.fileName);
      if (!target.startsWith(root + sep)) {
        fail(new Error(`${zipFile}: entry ${entry.fileName} would be written outside ${dir}`));
        return;
      }
      names.push(entry.fileName);
      if (entry.fileName.endsWith("/")) {
        mkdirp(target, { recursive: true }).then(() => zip.readEntry(), fail);
        return;
      }
      zip.openReadStream(entry, (error, stream) => {
        if (error || !stream) return fail(error);
        const chunks: Buffer[] = [];
        stream.on("data", (c: Buffer) => chunks.push(c));
        stream.on("error", fail);
        stream.on("end", () => {
          const body = Buffer.concat(chunks);
          const mode = (entry.externalFileAttributes >>> 16) & 0o177777;
          const isLink = (mode & 0o170000) === 0o120000;
          mkdirp(dirname(target), { recursive: true })
            .then(() =>
              isLink ? symlink(body.toString("utf8"), target) : write(target, body, { mode: mode & 0o777 || 0o644 }),
            )
            .then(() => zip.readEntry(), fail);
        });
      });
    });
    zip.readEntry();
  });
  zip.close();
  return names;
}

/** The machine's architecture as Lambda names it. */
export function machineArchitecture(nodeArch: string): string {
  return nodeArch === "x64" ? "x86_64" : nodeArch === "arm64" ? "arm64" : nodeArch;
}

/** `python3.12` on the given search path, if there is one. */
export async function findPython(runtime: string, pathDirs: readonly string[]): Promise<string | undefined> {
  const { access, constants } = await import("node:fs/promises");
  for (const dir of pathDirs) {
    const candidate = join(dir, runtime);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}
