import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readPnpmLock } from "../../lib/builds/locks/node.ts";
import { convertUvLock } from "../../lib/builds/locks/python.ts";
import {
  createSbom,
  integrityHashes,
  nodeComponents,
  parseCoreMetadata,
  purl,
  pythonComponents,
  readInstalledNode,
  readInstalledPython,
  serializeSbom,
} from "../../lib/builds/sbom.ts";
import { cycloneDx15Errors } from "../support/cyclonedx.ts";

const FIXTURES = join(import.meta.dirname, "../fixtures/locks");
const read = (dir: string, file: string) => readFileSync(join(FIXTURES, dir, file), "utf8");
const TOOL = { name: "layer-sync", version: "0.1.0" };

let tree: string;
beforeAll(async () => {
  tree = await mkdtemp(join(tmpdir(), "sbom-"));
});
afterAll(async () => {
  await rm(tree, { recursive: true, force: true });
});

async function writeJson(path: string, value: unknown): Promise<void> {
  await mkdir(join(path, ".."), { recursive: true });
  await writeFile(path, JSON.stringify(value));
}

describe("purl", () => {
  it("normalizes PyPI names per the purl spec (lower case, _ as -) and encodes the version", () => {
    expect(purl("pypi", "Charset_Normalizer", "3.5.3")).toBe("pkg:pypi/charset-normalizer@3.5.3");
    expect(purl("pypi", "zope.interface", "1.0+local")).toBe("pkg:pypi/zope.interface@1.0%2Blocal");
  });

  it("encodes an npm scope as the namespace", () => {
    expect(purl("npm", "@sindresorhus/is", "4.6.0")).toBe("pkg:npm/%40sindresorhus/is@4.6.0");
    expect(purl("npm", "JSONStream", "1.3.5")).toBe("pkg:npm/jsonstream@1.3.5");
  });
});

describe("integrityHashes", () => {
  it("turns subresource-integrity strings into hex hashes", () => {
    const sha1 = Buffer.from("a".repeat(40), "hex").toString("base64");
    expect(integrityHashes(`sha1-${sha1}`)).toEqual([{ alg: "SHA-1", content: "a".repeat(40) }]);
    expect(integrityHashes(undefined)).toEqual([]);
  });
});

describe("readInstalledPython", () => {
  it("lists the Name and Version of every dist-info folder at the top of the tree", async () => {
    const python = join(tree, "python");
    await mkdir(join(python, "requests-2.34.2.dist-info"), { recursive: true });
    await writeFile(
      join(python, "requests-2.34.2.dist-info", "METADATA"),
      "Metadata-Version: 2.1\nName: requests\nVersion: 2.34.2\n\nName: not-a-header\n",
    );
    await mkdir(join(python, "charset_normalizer-3.5.3.dist-info"), { recursive: true });
    await writeFile(
      join(python, "charset_normalizer-3.5.3.dist-info", "METADATA"),
      "Name: charset-normalizer\r\nVersion: 3.5.3\r\n",
    );
    await mkdir(join(python, "requests"), { recursive: true });
    expect(await readInstalledPython(python)).toEqual([
      { name: "charset-normalizer", version: "3.5.3" },
      { name: "requests", version: "2.34.2" },
    ]);
  });

  it("reads nothing from a missing folder", async () => {
    expect(await readInstalledPython(join(tree, "absent"))).toEqual([]);
  });

  it("needs both headers", () => {
    expect(parseCoreMetadata("Name: x\n")).toBeUndefined();
  });
});

describe("readInstalledNode", () => {
  it("lists nested, scoped and pnpm-store packages once, without following links", async () => {
    const nm = join(tree, "nodejs", "node_modules");
    await writeJson(join(nm, "debug", "package.json"), { name: "debug", version: "4.4.3" });
    await writeJson(join(nm, "debug", "node_modules", "ms", "package.json"), { name: "ms", version: "2.1.3" });
    await writeJson(join(nm, "@sindresorhus", "is", "package.json"), { name: "@sindresorhus/is", version: "4.6.0" });
    await writeJson(join(nm, ".pnpm", "left-pad@1.3.0", "node_modules", "left-pad", "package.json"), {
      name: "left-pad",
      version: "1.3.0",
    });
    await symlink(join(nm, ".pnpm", "left-pad@1.3.0", "node_modules", "left-pad"), join(nm, "left-pad"));
    await writeJson(join(nm, ".bin", "package.json"), { name: "not-a-package", version: "0" });
    expect(await readInstalledNode(nm)).toEqual([
      { name: "@sindresorhus/is", version: "4.6.0" },
      { name: "debug", version: "4.4.3" },
      { name: "left-pad", version: "1.3.0" },
      { name: "ms", version: "2.1.3" },
    ]);
  });
});

describe("createSbom", () => {
  const installedPython = [
    { name: "requests", version: "2.34.2" },
    { name: "certifi", version: "2026.10.19.post1" },
  ];

  it("writes a valid CycloneDX 1.5 document of the installed packages with the hashes their lock recorded", () => {
    const locked = convertUvLock({ manifest: read("uv", "pyproject.toml"), lock: read("uv", "uv.lock"), where: "l" });
    const bom = createSbom({
      subject: { name: "pydeps", version: "abc123" },
      components: pythonComponents(installedPython, locked.packages),
      tool: TOOL,
    });
    expect(cycloneDx15Errors(bom)).toEqual([]);
    expect(bom.components.map((c) => c.purl)).toEqual([
      "pkg:pypi/certifi@2026.10.19.post1",
      "pkg:pypi/requests@2.34.2",
    ]);
    const requests = bom.components[1];
    const lockedRequests = locked.packages.find((p) => p.name === "requests");
    expect(requests?.hashes?.map((h) => `sha256:${h.content}`)).toEqual(lockedRequests?.hashes);
    expect(requests?.hashes?.every((h) => h.alg === "SHA-256")).toBe(true);
    expect(serializeSbom(bom)).not.toMatch(/timestamp/);
    // the validator does reject what the schema forbids
    expect(
      cycloneDx15Errors({ ...bom, components: [{ ...requests, hashes: [{ alg: "SHA-256", content: "xyz" }] }] }),
    ).not.toEqual([]);
  });

  it("writes npm components with SHA-512 hashes from the lock's integrity", () => {
    const locked = readPnpmLock({
      manifest: read("pnpm", "package.json"),
      lock: read("pnpm", "pnpm-lock.yaml"),
      where: "l",
    });
    const installed = locked.packages.map((p) => ({ name: p.name, version: p.version }));
    const bom = createSbom({
      subject: { name: "nodedeps" },
      components: nodeComponents(installed, locked.packages),
      tool: TOOL,
    });
    expect(cycloneDx15Errors(bom)).toEqual([]);
    expect(bom.components.map((c) => c.purl)).toEqual([
      "pkg:npm/%40sindresorhus/is@4.6.0",
      "pkg:npm/debug@4.4.3",
      "pkg:npm/ms@2.1.3",
    ]);
    expect(bom.components.every((c) => c.hashes?.[0]?.alg === "SHA-512" && c.hashes[0].content.length === 128)).toBe(
      true,
    );
  });

  it("gives the same bytes for the same content in any order, and another serial number for other content", () => {
    const a = serializeSbom(
      createSbom({ subject: { name: "x" }, components: pythonComponents(installedPython), tool: TOOL }),
    );
    const b = serializeSbom(
      createSbom({ subject: { name: "x" }, components: pythonComponents([...installedPython].reverse()), tool: TOOL }),
    );
    const c = createSbom({
      subject: { name: "x" },
      components: pythonComponents(installedPython.slice(1)),
      tool: TOOL,
    });
    expect(a).toBe(b);
    expect(JSON.parse(a).serialNumber).not.toBe(c.serialNumber);
    expect(c.serialNumber).toMatch(/^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it("lists an installed package the lock does not know, without hashes", () => {
    const bom = createSbom({
      subject: { name: "x" },
      components: pythonComponents([{ name: "pip", version: "25.0" }]),
      tool: TOOL,
    });
    expect(bom.components).toEqual([
      { type: "library", "bom-ref": "pkg:pypi/pip@25.0", name: "pip", version: "25.0", purl: "pkg:pypi/pip@25.0" },
    ]);
    expect(cycloneDx15Errors(bom)).toEqual([]);
  });
});
