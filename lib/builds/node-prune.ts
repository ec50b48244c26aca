/**
 * After `npm ci`: remove the optional packages whose own `package.json` says they are for another platform.
 * npm skips such a package only when the lock records its `os`/`cpu`/`libc`; npm's own locks and pnpm's do,
 * Yarn 1's do not (its lock has no platform fields), so a converted Yarn 1 lock would otherwise install every
 * platform's binary package (`@esbuild/darwin-arm64` …) into a Linux layer. Only packages npm's hidden
 * lockfile (`node_modules/.package-lock.json`) marks `optional` are touched; a required package is never
 * removed. Dangling links left in a `.bin` folder go too.
 *
 * One script, run by `node` in both builders: the local builder as `node -e PRUNE_OPTIONAL_SCRIPT <dir> linux
 * x64|arm64 glibc`, the Docker and CodeBuild recipe in the SAM image (`docker.ts` `downloadScript`).
 */

/** The arguments after the script: the folder holding `node_modules`, and the target's os, cpu and libc. */
export const PRUNE_OPTIONAL_SCRIPT = `
const fs = require("fs"), path = require("path");
const [dir, os, cpu, libc] = process.argv.slice(-4);
const ok = (list, value) => {
  if (!Array.isArray(list) || list.length === 0) return true;
  if (list.includes("!" + value)) return false;
  const allowed = list.filter((x) => !String(x).startsWith("!"));
  return allowed.length === 0 || allowed.includes(value);
};
let lock = { packages: {} };
try { lock = JSON.parse(fs.readFileSync(path.join(dir, "node_modules", ".package-lock.json"), "utf8")); } catch {}
const removed = [];
for (const [folder, entry] of Object.entries(lock.packages || {})) {
  if (!entry || entry.optional !== true || !folder.startsWith("node_modules/")) continue;
  let manifest;
  try { manifest = JSON.parse(fs.readFileSync(path.join(dir, folder, "package.json"), "utf8")); } catch { continue; }
  if (ok(manifest.os, os) && ok(manifest.cpu, cpu) && ok(manifest.libc, libc)) continue;
  fs.rmSync(path.join(dir, folder), { recursive: true, force: true });
  removed.push(folder);
}
for (const folder of removed) {
  const bin = path.join(dir, path.dirname(folder), ".bin");
  let names = [];
  try { names = fs.readdirSync(bin); } catch {}
  for (const name of names) {
    const link = path.join(bin, name);
    if (fs.lstatSync(link).isSymbolicLink() && !fs.existsSync(link)) fs.rmSync(link, { force: true });
  }
}
if (removed.length) console.error("layer-sync: optional packages for another platform not kept: " + removed.sort().join(", "));
`;

/** npm's `cpu` value of a Lambda architecture. */
export function npmCpu(architecture: "x86_64" | "arm64"): string {
  return architecture === "arm64" ? "arm64" : "x64";
}
