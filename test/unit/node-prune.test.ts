import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { npmCpu, PRUNE_OPTIONAL_SCRIPT } from "../../lib/builds/node-prune.ts";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "layer-sync-prune-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function pkg(folder: string, manifest: object): Promise<void> {
  await mkdir(join(dir, folder), { recursive: true });
  await writeFile(join(dir, folder, "package.json"), JSON.stringify(manifest));
}

describe("the optional-package prune after npm ci", () => {
  it("removes optional packages for another os, cpu or libc and their dangling .bin links, and keeps the rest", async () => {
    await pkg("node_modules/@esbuild/darwin-arm64", { os: ["darwin"], cpu: ["arm64"] });
    await pkg("node_modules/@esbuild/linux-arm64", { os: ["linux"], cpu: ["arm64"] });
    await pkg("node_modules/@esbuild/linux-x64", { os: ["linux"], cpu: ["x64"] });
    await pkg("node_modules/musl-only", { libc: ["musl"] });
    await pkg("node_modules/not-windows", { os: ["!win32"] });
    await pkg("node_modules/required-darwin", { os: ["darwin"] });
    await mkdir(join(dir, "node_modules", ".bin"));
    await symlink("../@esbuild/darwin-arm64/bin/x", join(dir, "node_modules", ".bin", "x"));
    const optional = { optional: true };
    await writeFile(
      join(dir, "node_modules", ".package-lock.json"),
      JSON.stringify({
        packages: {
          "node_modules/@esbuild/darwin-arm64": optional,
          "node_modules/@esbuild/linux-arm64": optional,
          "node_modules/@esbuild/linux-x64": optional,
          "node_modules/musl-only": optional,
          "node_modules/not-windows": optional,
          "node_modules/required-darwin": {},
        },
      }),
    );
    const { stderr } = await promisify(execFile)(process.execPath, [
      "-e",
      PRUNE_OPTIONAL_SCRIPT,
      dir,
      "linux",
      npmCpu("arm64"),
      "glibc",
    ]);
    const kept = (f: string) => existsSync(join(dir, "node_modules", f));
    expect(kept("@esbuild/linux-arm64")).toBe(true);
    expect(kept("not-windows")).toBe(true);
    expect(kept("required-darwin")).toBe(true);
    expect(kept("@esbuild/darwin-arm64")).toBe(false);
    expect(kept("@esbuild/linux-x64")).toBe(false);
    expect(kept("musl-only")).toBe(false);
    expect(kept(".bin/x")).toBe(false);
    expect(stderr).toContain("optional packages for another platform not kept: node_modules/@esbuild/darwin-arm64");
  });
});
