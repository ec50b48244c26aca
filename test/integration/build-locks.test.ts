/**
 * Local builds of every Python family for python3.12 on x86_64 and arm64 (uv.lock, poetry.lock, Pipfile.lock
 * from test/fixtures/locks; a requirements.txt of the uv lock's exact, hashed lines)
 * with the real pinned uv against PyPI (downloads cached in `.cache/build`): the lock is converted to hashed
 * requirement lines and installed frozen; the layer holds exactly the lock's production set for the target,
 * never the manifest or the lock, the same bytes on a rebuild, and a CycloneDX 1.5 SBOM of what it holds.
 */
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildTarget, checkRequirements } from "../../lib/builds/content.ts";
import { LocalBuilder } from "../../lib/builds/local.ts";
import { convertPythonLock, normalizeName } from "../../lib/builds/locks/python.ts";
import { walkDirectory } from "../../lib/builds/tree.ts";
import { type BuildPlan, planBuild } from "../../lib/common/build-plan.ts";
import { cycloneDx15Errors } from "../support/cyclonedx.ts";
import { readZip } from "../support/zip.ts";

const LOCKS = resolve(import.meta.dirname, "../fixtures/locks");
const CACHE = resolve(import.meta.dirname, "../../.cache/build");
const TOOLS = resolve(import.meta.dirname, "../../.cache/layer-sync");
const TIMEOUT = 180_000;

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "layer-sync-locks-"));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** The uv fixture's production set as a requirements.txt of exact, hashed lines (the requirements family). */
async function uvRequirements() {
  const read = (f: string) => readFile(join(LOCKS, "uv", f), "utf8");
  return convertPythonLock("uv", { manifest: await read("pyproject.toml"), lock: await read("uv.lock"), where: "uv" });
}

let runs = 0;
/** Build a family (plus an app module and build-only files) for python3.12 with the local builder. */
async function build(family: string, architecture = "x86_64") {
  const dir = join(work, `${family}-${++runs}`);
  if (family === "requirements") {
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "requirements.txt"), `--require-hashes\n${(await uvRequirements()).requirements}`);
  } else await cp(join(LOCKS, family), dir, { recursive: true });
  await writeFile(join(dir, "app.py"), "GREETING = 'hi'\n");
  await writeFile(join(dir, "requirements-dev.in"), "pytest\n");
  await writeFile(join(dir, ".python-version"), "3.12\n");
  const files = await walkDirectory(dir, family);
  const plan = planBuild({
    folder: `layers/${family}`,
    name: family,
    layerNamePrefix: "",
    files: files.map((f) => f.path),
    defaults: { runtimes: ["python3.12"], architectures: [architecture] },
  }) as BuildPlan;
  const home = join(work, `home-${runs}`);
  await mkdir(home, { recursive: true });
  const builder = new LocalBuilder({ env: process.env, home, cacheDir: CACHE, toolCache: TOOLS, timeoutMs: TIMEOUT });
  const target = plan.targets[0] as BuildPlan["targets"][number];
  const requirements = await checkRequirements(plan, files);
  const out = join(work, `run-${runs}`);
  const built = await buildTarget({ plan, target, files, builder, workDir: out, zipFile: `${out}.zip`, requirements });
  const bytes = await readFile(built.zip.path);
  const names = (await readZip(bytes)).map((e) => e.name);
  return { plan, requirements, built, names, bytes };
}

/** The distributions a layer holds: normalized name → version, from its `*.dist-info` folders. */
function installed(names: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const n of names) {
    const m = /^python\/([^/]+)-([^-/]+)\.dist-info\/METADATA$/.exec(n);
    if (m) out.set(normalizeName(m[1] ?? ""), m[2] ?? "");
  }
  return out;
}

const FAMILIES = ["requirements", "uv", "poetry", "pipenv"].flatMap((f) => [
  [f, "x86_64"],
  [f, "arm64"],
]);

describe("a local build of a Python lock family", () => {
  it.each(FAMILIES)(
    "installs exactly the production set of the %s family for linux %s, with an SBOM of it",
    { timeout: TIMEOUT },
    async (family = "", architecture = "") => {
      const { requirements, built, names, bytes } = await build(family, architecture);
      const lock = family === "requirements" ? await uvRequirements() : requirements?.lock;
      // the lock's packages whose marker holds on Lambda's Linux (colorama is Windows-only)
      const expected = new Map(
        (lock?.packages ?? [])
          .filter((p) => p.marker === undefined || !/win32|Windows/.test(p.marker))
          .map((p) => [normalizeName(p.name), p.version]),
      );
      expect(installed(names)).toEqual(expected);
      expect(expected.has("requests")).toBe(true);
      expect(expected.has("pytest")).toBe(false);
      expect(names).toContain("python/requests/__init__.py");
      expect(names).toContain("app.py");
      for (const never of ["pyproject.toml", "uv.lock", "poetry.lock", "Pipfile", "Pipfile.lock", "requirements.txt"]) {
        expect(names).not.toContain(never);
      }
      expect(names).not.toContain("requirements-dev.in");
      expect(names).not.toContain(".python-version");
      const sbom = JSON.parse(built.sbom.text);
      expect(cycloneDx15Errors(sbom)).toEqual([]);
      expect(built.sbom.components).toBe(expected.size);
      const requests = sbom.components.find((c: { name: string }) => normalizeName(c.name) === "requests");
      expect(requests.purl).toBe(`pkg:pypi/requests@${expected.get("requests")}`);
      if (family !== "requirements") expect(requests.hashes.length).toBeGreaterThan(0);
      // every shared object is built for the target's CPU (EM_X86_64 62, EM_AARCH64 183)
      const machine = architecture === "arm64" ? 183 : 62;
      for (const entry of (await readZip(bytes)).filter((e) => e.name.endsWith(".so"))) {
        expect(entry.content.readUInt16LE(18), entry.name).toBe(machine);
      }
    },
  );

  it("gives byte-identical zips and SBOMs when the uv lock is built twice", { timeout: TIMEOUT }, async () => {
    const a = await build("uv");
    const b = await build("uv");
    expect(a.bytes.equals(b.bytes)).toBe(true);
    expect(a.built.sbom.text).toBe(b.built.sbom.text);
  });
});
