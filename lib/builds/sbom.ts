/**
 * A CycloneDX 1.5 JSON bill of materials of what a built layer holds: one `library` component per
 * installed package (name, version, purl, and the hashes its lock recorded), read from the install tree
 * itself (Python `*.dist-info/METADATA`, Node.js `node_modules/**\/package.json`) so the SBOM lists
 * exactly what is in the layer. The output is deterministic: components sorted by purl, no timestamp, and
 * a serial number derived from the content (a name-based UUID, version 5, of the content's SHA-256), so
 * the same layer always gives the same bytes.
 */
import { createHash } from "node:crypto";
import type { Dirent } from "node:fs";
import { lstat, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { NodeLockedPackage } from "./locks/node.ts";
import type { LockedPackage } from "./locks/python.ts";

export type Ecosystem = "pypi" | "npm";
export type HashAlg = "SHA-1" | "SHA-256" | "SHA-384" | "SHA-512";

export interface SbomHash {
  alg: HashAlg;
  /** Lower-case hex. */
  content: string;
}

/** A package found in an install tree. */
export interface InstalledPackage {
  name: string;
  version: string;
}

export interface SbomComponent {
  ecosystem: Ecosystem;
  name: string;
  version: string;
  hashes: SbomHash[];
}

export interface CycloneDxComponent {
  type: "library";
  "bom-ref": string;
  name: string;
  version: string;
  purl: string;
  hashes?: SbomHash[];
}

export interface CycloneDxBom {
  bomFormat: "CycloneDX";
  specVersion: "1.5";
  serialNumber: string;
  version: 1;
  metadata: {
    tools: { components: { type: "application"; name: string; version: string }[] };
    component: { type: "library"; "bom-ref": string; name: string; version?: string };
  };
  components: CycloneDxComponent[];
}

export interface SbomSubject {
  /** What the SBOM describes, e.g. the layer's package name (`pydeps-python312-arm64`). */
  name: string;
  /** e.g. the commit the layer was built from. */
  version?: string;
}

// ---------------------------------------------------------------------------------------------------
// purl

/** Percent-encodes everything but the purl spec's unreserved characters. */
function purlEncode(text: string): string {
  return [...new TextEncoder().encode(text)]
    .map((b) => {
      const c = String.fromCharCode(b);
      return /[A-Za-z0-9.\-_~]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
    })
    .join("");
}

/**
 * The package URL of a package: `pkg:pypi/<name>@<version>` (name lower-cased, `_` as `-`, per the purl
 * spec's pypi type) or `pkg:npm/<name>@<version>` with a scope as the namespace (`pkg:npm/%40scope/name@…`,
 * lower-cased).
 */
export function purl(ecosystem: Ecosystem, name: string, version: string): string {
  if (ecosystem === "pypi") {
    return `pkg:pypi/${purlEncode(name.toLowerCase().replace(/_/g, "-"))}@${purlEncode(version)}`;
  }
  const lower = name.toLowerCase();
  const slash = lower.indexOf("/");
  const path =
    lower.startsWith("@") && slash > 0
      ? `${purlEncode(lower.slice(0, slash))}/${purlEncode(lower.slice(slash + 1))}`
      : purlEncode(lower);
  return `pkg:npm/${path}@${purlEncode(version)}`;
}

// ---------------------------------------------------------------------------------------------------
// hashes

const SRI_ALG: Readonly<Record<string, HashAlg>> = {
  sha1: "SHA-1",
  sha256: "SHA-256",
  sha384: "SHA-384",
  sha512: "SHA-512",
};

/** The hashes of a subresource-integrity string (`sha512-<base64> sha1-<base64>`), as hex. */
export function integrityHashes(integrity: string | undefined): SbomHash[] {
  if (integrity === undefined) return [];
  const out: SbomHash[] = [];
  for (const part of integrity.trim().split(/\s+/)) {
    const m = /^(sha1|sha256|sha384|sha512)-([A-Za-z0-9+/]+=*)$/.exec(part);
    const alg = m === null ? undefined : SRI_ALG[m[1] ?? ""];
    if (m === null || alg === undefined) continue;
    out.push({ alg, content: Buffer.from(m[2] ?? "", "base64").toString("hex") });
  }
  return out;
}

/** `sha256:<hex>` lock hashes as SBOM hashes. */
export function prefixedHashes(hashes: readonly string[]): SbomHash[] {
  const out: SbomHash[] = [];
  for (const h of hashes) {
    const m = /^(sha1|sha256|sha384|sha512):([0-9a-fA-F]+)$/.exec(h);
    const alg = m === null ? undefined : SRI_ALG[m[1] ?? ""];
    if (m !== null && alg !== undefined) out.push({ alg, content: (m[2] ?? "").toLowerCase() });
  }
  return out;
}

function uniqueHashes(hashes: readonly SbomHash[]): SbomHash[] {
  const seen = new Map<string, SbomHash>();
  for (const h of hashes) seen.set(`${h.alg} ${h.content}`, h);
  return [...seen.values()].sort((a, b) =>
    a.alg < b.alg ? -1 : a.alg > b.alg ? 1 : a.content < b.content ? -1 : a.content > b.content ? 1 : 0,
  );
}

// ---------------------------------------------------------------------------------------------------
// the installed set with the lock's hashes

function pypiKey(name: string, version: string): string {
  return `${name.toLowerCase().replace(/[-_.]+/g, "-")}@${version}`;
}

/** The Python components: every installed package, with the hashes the lock recorded for that version. */
export function pythonComponents(
  installed: readonly InstalledPackage[],
  locked: readonly LockedPackage[] = [],
): SbomComponent[] {
  const hashes = new Map(locked.map((p) => [pypiKey(p.name, p.version), prefixedHashes(p.hashes)]));
  return installed.map((p) => ({
    ecosystem: "pypi",
    name: p.name,
    version: p.version,
    hashes: hashes.get(pypiKey(p.name, p.version)) ?? [],
  }));
}

/** The Node.js components: every installed package, with the integrity the lock recorded for that version. */
export function nodeComponents(
  installed: readonly InstalledPackage[],
  locked: readonly NodeLockedPackage[] = [],
): SbomComponent[] {
  const hashes = new Map(locked.map((p) => [`${p.name}@${p.version}`, integrityHashes(p.integrity)]));
  return installed.map((p) => ({
    ecosystem: "npm",
    name: p.name,
    version: p.version,
    hashes: hashes.get(`${p.name}@${p.version}`) ?? [],
  }));
}

// ---------------------------------------------------------------------------------------------------
// the document

/** A name-based UUID (version 5, RFC 4122) of `name` in the URL namespace. */
function uuidV5(name: string): string {
  const namespace = Buffer.from("6ba7b8119dad11d180b400c04fd430c8", "hex"); // RFC 4122 NameSpace_URL
  const bytes = createHash("sha1").update(namespace).update(name, "utf8").digest().subarray(0, 16);
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x50;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const hex = bytes.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * The CycloneDX 1.5 SBOM of `components` (deduplicated by purl, sorted by purl). `tool` names the
 * generator (layer-sync and its version). The serial number is derived from everything else in the
 * document, so equal content gives equal bytes.
 */
export function createSbom(input: {
  subject: SbomSubject;
  components: readonly SbomComponent[];
  tool: { name: string; version: string };
}): CycloneDxBom {
  const byPurl = new Map<string, CycloneDxComponent>();
  for (const c of input.components) {
    const ref = purl(c.ecosystem, c.name, c.version);
    const previous = byPurl.get(ref);
    const hashes = uniqueHashes([...(previous?.hashes ?? []), ...c.hashes]);
    byPurl.set(ref, {
      type: "library",
      "bom-ref": ref,
      name: c.name,
      version: c.version,
      purl: ref,
      ...(hashes.length > 0 ? { hashes } : {}),
    });
  }
  const components = [...byPurl.values()].sort((a, b) => (a.purl < b.purl ? -1 : a.purl > b.purl ? 1 : 0));
  const subject = {
    type: "library" as const,
    "bom-ref": `layer:${input.subject.name}`,
    name: input.subject.name,
    ...(input.subject.version === undefined ? {} : { version: input.subject.version }),
  };
  const metadata = {
    tools: { components: [{ type: "application" as const, name: input.tool.name, version: input.tool.version }] },
    component: subject,
  };
  const digest = createHash("sha256").update(JSON.stringify({ metadata, components })).digest("hex");
  return {
    bomFormat: "CycloneDX",
    specVersion: "1.5",
    serialNumber: `urn:uuid:${uuidV5(`urn:layer-sync:sbom:sha256:${digest}`)}`,
    version: 1,
    metadata,
    components,
  };
}

/** The SBOM's bytes: 2-space JSON with a final newline (key order as built, so stable). */
export function serializeSbom(bom: CycloneDxBom): string {
  return `${JSON.stringify(bom, null, 2)}\n`;
}

// ---------------------------------------------------------------------------------------------------
// install trees

async function entries(dir: string): Promise<Dirent[]> {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
}

/** `Name` and `Version` from a core-metadata file (the headers before the first empty line). */
export function parseCoreMetadata(text: string): InstalledPackage | undefined {
  let name: string | undefined;
  let version: string | undefined;
  for (const line of text.split(/\r?\n/)) {
    if (line === "") break;
    const m = /^(Name|Version):\s*(.*?)\s*$/i.exec(line);
    if (m === null) continue;
    if ((m[1] ?? "").toLowerCase() === "name") name ??= m[2];
    else version ??= m[2];
  }
  return name !== undefined && version !== undefined && name !== "" && version !== "" ? { name, version } : undefined;
}

function sortInstalled(list: Iterable<InstalledPackage>): InstalledPackage[] {
  const unique = new Map<string, InstalledPackage>();
  for (const p of list) unique.set(`${p.name}@${p.version}`, p);
  return [...unique.values()].sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : a.version < b.version ? -1 : a.version > b.version ? 1 : 0,
  );
}

/**
 * The Python packages installed in `dir` (the layer's `python/` folder, as `pip install --target` fills
 * it): one per `*.dist-info/METADATA` directly under it.
 */
export async function readInstalledPython(dir: string): Promise<InstalledPackage[]> {
  const out: InstalledPackage[] = [];
  for (const entry of await entries(dir)) {
    if (!entry.isDirectory() || !entry.name.endsWith(".dist-info")) continue;
    let text: string;
    try {
      text = await readFile(join(dir, entry.name, "METADATA"), "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw error;
    }
    const found = parseCoreMetadata(text);
    if (found !== undefined) out.push(found);
  }
  return sortInstalled(out);
}

/**
 * The Node.js packages installed under `nodeModules` (the layer's `nodejs/node_modules`): every package
 * folder's `package.json` name and version, nested `node_modules` and scopes included, and pnpm's
 * `.pnpm/<id>/node_modules` store; symlinked package folders are not followed (they point at a folder
 * counted once where it is).
 */
export async function readInstalledNode(nodeModules: string): Promise<InstalledPackage[]> {
  const out: InstalledPackage[] = [];
  const visitPackage = async (dir: string): Promise<void> => {
    const info = await lstat(dir);
    if (!info.isDirectory()) return;
    let manifest: unknown;
    try {
      manifest = JSON.parse(await readFile(join(dir, "package.json"), "utf8"));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
      throw error;
    }
    if (typeof manifest === "object" && manifest !== null) {
      const { name, version } = manifest as Record<string, unknown>;
      if (typeof name === "string" && typeof version === "string") out.push({ name, version });
    }
    await visitModules(join(dir, "node_modules"));
  };
  const visitModules = async (dir: string): Promise<void> => {
    for (const entry of await entries(dir)) {
      if (entry.isSymbolicLink() || !entry.isDirectory() || entry.name === ".bin") continue;
      const path = join(dir, entry.name);
      if (entry.name === ".pnpm") {
        for (const id of await entries(path))
          if (id.isDirectory()) await visitModules(join(path, id.name, "node_modules"));
      } else if (entry.name.startsWith("@")) {
        for (const scoped of await entries(path)) {
          if (scoped.isDirectory() && !scoped.isSymbolicLink()) await visitPackage(join(path, scoped.name));
        }
      } else if (!entry.name.startsWith(".")) {
        await visitPackage(path);
      }
    }
  };
  await visitModules(nodeModules);
  return sortInstalled(out);
}
