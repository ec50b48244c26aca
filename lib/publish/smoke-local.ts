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
