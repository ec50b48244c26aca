/**
 * The smoke functions' code: one tiny handler per runtime family, shipped as source text (so the bundled
 * publish function carries it without reading files) and zipped by the project's own zip writer with the
 * fixed date, so the same source always gives the same bytes and the same CodeSha256 (publish compares it
 * to decide whether the function's code must be updated).
 *
 * Both take `{"modules": ["name", …]}`, import each module in order from the attached layer (Lambda puts
 * `/opt/python` and `/opt/nodejs/node_modules` on the search paths), stop at the first failure and return
 * `{"ok": true|false, "imported": [...], "error"?: "<module>: <the import error's last line>"}`. They need no
 * permission beyond writing their logs.
 */
import { createHash } from "node:crypto";
import { MODE, ZIP_DATE } from "../zip/folder-zip.ts";
import { zipToBuffer } from "../zip/writer.ts";

export type SmokeFamily = "python" | "nodejs";

export const PYTHON_SMOKE_SOURCE = `"""layer-sync smoke test: import the modules named in the event from the attached layer."""
import importlib
import traceback


def handler(event, context):
    modules = event.get("modules") if isinstance(event, dict) else None
    imported = []
    for name in modules or []:
        try:
            importlib.import_module(name)
        except BaseException as error:  # an import may raise anything, SystemExit included
            lines = traceback.format_exception_only(type(error), error)
            last = lines[-1].strip() if lines else repr(error)
            return {"ok": False, "imported": imported, "error": f"{name}: {last}"}
        imported.append(name)
    return {"ok": True, "imported": imported}
`;

export const NODE_SMOKE_SOURCE = `// layer-sync smoke test: load the modules named in the event from the attached layer.
// require() follows NODE_PATH (/opt/nodejs/node_modules on Lambda) and loads ES modules too (Node >= 22.12).
const lastLine = (error) => {
  const text = error instanceof Error ? \`\${error.code ?? error.name}: \${error.message}\` : String(error);
  const lines = text.split("\\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("- ") && !l.startsWith("Require stack"));
  return lines.length > 1 && lines[0].endsWith(":") ? lines.slice(0, 2).join(" ") : (lines[0] ?? text);
};

exports.handler = async (event) => {
  const modules = event && Array.isArray(event.modules) ? event.modules : [];
  const imported = [];
  for (const name of modules) {
    try {
      require(name);
    } catch (error) {
      return { ok: false, imported, error: \`\${name}: \${lastLine(error)}\` };
    }
    imported.push(name);
  }
  return { ok: true, imported };
};
`;

export interface SmokeCode {
  /** The file inside the zip, and the function's Handler setting. */
  file: string;
  handler: string;
  zip: Buffer;
  /** base64 SHA-256 of the zip, as Lambda reports CodeSha256. */
  codeSha256: string;
}

const cache = new Map<SmokeFamily, Promise<SmokeCode>>();

/** The deterministic zip of a family's handler. */
export function smokeCode(family: SmokeFamily): Promise<SmokeCode> {
  let code = cache.get(family);
  if (!code) {
    code = (async () => {
      const file = family === "python" ? "layer_sync_smoke.py" : "layer_sync_smoke.js";
      const content = Buffer.from(family === "python" ? PYTHON_SMOKE_SOURCE : NODE_SMOKE_SOURCE, "utf8");
      const zip = await zipToBuffer([{ name: file, mode: MODE.file, size: content.length, content }], ZIP_DATE);
      return {
        file,
        handler: "layer_sync_smoke.handler",
        zip,
        codeSha256: createHash("sha256").update(zip).digest("base64"),
      };
    })();
    cache.set(family, code);
  }
  return code;
}
