/**
 * The CycloneDX 1.5 SBOM of a built layer (docs/builds.md, "Bill of materials"): the packages its zipped
 * entries hold, with the hashes the build's input recorded (`sbom.ts` writes the document). Used by the
 * local and Docker builds (`content.ts` `buildTarget`) and by the CodeBuild build-finished step.
 */
import { createHash } from "node:crypto";
import { type Language, PACKAGE_JSON, PACKAGE_LOCK, REQUIREMENTS } from "../common/build-plan.ts";
import { readNodeLock } from "./locks/node.ts";
import type { LockedPackage } from "./locks/python.ts";
import {
  createSbom,
  type InstalledPackage,
  nodeComponents,
  parseCoreMetadata,
  pythonComponents,
  serializeSbom,
} from "./sbom.ts";
import { entryBytes, type TreeEntry } from "./tree.ts";

/** The generator named in every SBOM (package.json's name and version). */
export const SBOM_TOOL = { name: "layer-sync", version: "0.1.0" } as const;

/** A built layer's CycloneDX 1.5 SBOM: its bytes, their SHA-256 and the number of components. */
export interface LayerSbom {
  text: string;
  sha256: string;
  components: number;
}

/** `python/<name>.dist-info/METADATA`: a package installed by pip or uv into the layer. */
const PYTHON_METADATA = /^python\/[^/]+\.dist-info\/METADATA$/;
/** `nodejs/node_modules/[…/node_modules/][@scope/]name/package.json`, pnpm's `.pnpm/<id>/node_modules/…` too. */
const NODE_PACKAGE =
  /^nodejs\/node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?(?:(?:@[^/.][^/]*\/)?[^/.@][^/]*\/node_modules\/)*(?:@[^/.][^/]*\/)?[^/.@][^/]*\/package\.json$/;

/** The packages a layer holds, read from its entries (what is zipped, after `exclude`). */
export async function installedPackages(language: Language, entries: readonly TreeEntry[]) {
  const out = new Map<string, InstalledPackage>();
  for (const e of entries) {
    if (e.kind === "symlink") continue;
    if (language === "python" && PYTHON_METADATA.test(e.path)) {
      const found = parseCoreMetadata((await entryBytes(e)).toString("utf8"));
      if (found) out.set(`${found.name}@${found.version}`, found);
    } else if (language === "nodejs" && NODE_PACKAGE.test(e.path)) {
      let manifest: unknown;
      try {
        manifest = JSON.parse((await entryBytes(e)).toString("utf8"));
      } catch {
        continue; // not a package's manifest (a test fixture's broken JSON …)
      }
      if (typeof manifest !== "object" || manifest === null) continue;
      const { name, version } = manifest as Record<string, unknown>;
      if (typeof name === "string" && typeof version === "string") out.set(`${name}@${version}`, { name, version });
    }
  }
  return [...out.values()].sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : a.version < b.version ? -1 : a.version > b.version ? 1 : 0,
  );
}

/** `name==version` and the `--hash=sha256:…` options of one requirement line. */
const PINNED = /^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:\[[^\]]*\])?\s*===?\s*([^\s;,]+)/;

/** The pinned, hashed lines of a (sanitized) requirements.txt: for a lock family, the lock's packages. */
export function hashedRequirements(text: string): LockedPackage[] {
  const out: LockedPackage[] = [];
  for (const line of text.split("\n")) {
    const m = PINNED.exec(line.trim());
    const hashes = [...line.matchAll(/--hash[= ](sha256:[0-9a-f]{64})/g)].map((h) => h[1] ?? "");
    if (m && hashes.length > 0) {
      out.push({ name: m[1] ?? "", version: m[2] ?? "", hashes, marker: undefined, index: undefined });
    }
  }
  return out;
}

/**
 * The hashes the build's source recorded: Python, the `--hash` options of its (sanitized or converted)
 * `requirements.txt`; Node.js, the integrity of each package in `package-lock.json`.
 */
async function lockedHashes(language: Language, source: readonly TreeEntry[], where: string) {
  const text = async (path: string) => {
    const e = source.find((f) => f.path === path && f.kind !== "symlink");
    return e === undefined ? undefined : (await entryBytes(e)).toString("utf8");
  };
  if (language === "python") return { python: hashedRequirements((await text(REQUIREMENTS)) ?? ""), node: [] };
  const [manifest, lock] = [await text(PACKAGE_JSON), await text(PACKAGE_LOCK)];
  if (manifest === undefined || lock === undefined) return { python: [], node: [] };
  return { python: [], node: readNodeLock("npm", { manifest, lock, where }).packages };
}

/**
 * The CycloneDX 1.5 SBOM of a built layer: every package its entries hold (Python `*.dist-info/METADATA`,
 * Node.js `package.json` of each installed package), with the hashes the build's source recorded for that
 * version (`lockedHashes`: a lock family's wheel and sdist hashes, a hashed requirements.txt's, npm's
 * integrity). `source` is what the builder received (`withSanitized`).
 */
export async function layerSbom(args: {
  subject: string;
  language: Language;
  entries: readonly TreeEntry[];
  source: readonly TreeEntry[];
  where: string;
}): Promise<LayerSbom> {
  const installed = await installedPackages(args.language, args.entries);
  const locked = await lockedHashes(args.language, args.source, args.where);
  const components =
    args.language === "python" ? pythonComponents(installed, locked.python) : nodeComponents(installed, locked.node);
  const bom = createSbom({ subject: { name: args.subject }, components, tool: SBOM_TOOL });
  const text = serializeSbom(bom);
  return { text, sha256: createHash("sha256").update(text).digest("hex"), components: bom.components.length };
}

/** Where an artifact's SBOM lives (defined in lib/artifacts, which uploads it). */
export { sbomKey } from "../artifacts/store.ts";
