/**
 * The pinned uv's installation and the interpreter it runs with (lib/builds/uv.ts), without the network:
 * a wheel whose SHA-256 is not the pinned one is refused in one line and leaves nothing behind, an
 * unsupported host is told to use Docker, and a candidate interpreter that does not run is passed over.
 */
import { chmod, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureUv, pickInterpreter, UV_VERSION, UV_WHEELS, uvPath } from "../../lib/builds/uv.ts";
import { BuildError } from "../../lib/common/errors.ts";

let dir: string;
let server: Server;
let url: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "layer-sync-uv-"));
  server = createServer((_req, res) => res.end("not the uv wheel"));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/uv.whl`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  await rm(dir, { recursive: true, force: true });
});

describe("installing the pinned uv", () => {
  it("pins a wheel and its SHA-256 for Linux and macOS on x86_64 and arm64", () => {
    expect(Object.keys(UV_WHEELS).sort()).toEqual(["darwin-arm64", "darwin-x64", "linux-arm64", "linux-x64"]);
    for (const w of Object.values(UV_WHEELS)) {
      expect(w.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(w.url).toMatch(
        new RegExp(`^https://files\\.pythonhosted\\.org/packages/.*/${w.file.replace(/\./g, "\\.")}$`),
      );
      expect(w.file).toMatch(new RegExp(`^uv-${UV_VERSION.replace(/\./g, "\\.")}-py3-none-`));
    }
  });

  it("refuses a download whose SHA-256 is not the pinned one, in one line, and installs nothing", async () => {
    const toolCache = join(dir, "bad");
    const error = await ensureUv({ toolCache, env: {}, host: "linux-x64", url }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BuildError);
    expect((error as Error).message).toMatch(
      /^installing uv 0\.13\.9 from .* failed: the wheel's SHA-256 is [0-9a-f]{64}, not the pinned d7f459fe/,
    );
    expect((error as Error).message).not.toMatch(/\n/);
    expect(await readdir(join(uvPath(toolCache), ".."))).toEqual([]);
  });

  it("tells a host it has no wheel for to use Docker", async () => {
    const error = await ensureUv({ toolCache: join(dir, "win"), env: {}, host: "win32-x64" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BuildError);
    expect((error as Error).message).toMatch(/not on win32-x64; use --builder docker$/);
  });
});

describe("the interpreter uv runs with", () => {
  it("passes over a candidate that does not run and takes the next working python3", async () => {
    const bin = join(dir, "bin");
    await mkdir(bin, { recursive: true });
    // a pyenv-like shim of an inactive version
    await writeFile(join(bin, "python3.12"), "#!/bin/sh\necho 'pyenv: python3.12: command not found' >&2\nexit 127\n");
    await chmod(join(bin, "python3.12"), 0o755);
    await symlink("/usr/bin/python3", join(bin, "python3"));
    const picked = await pickInterpreter({
      uv: "/nonexistent/uv",
      toolCache: join(dir, "tools"),
      version: "3.12",
      env: { PATH: bin },
      cwd: dir,
      timeoutMs: 10_000,
    });
    expect(picked).toBe(join(bin, "python3"));
  });

  it("prefers a uv-managed interpreter of the target's version in the tool cache over another python3", async () => {
    const tools = join(dir, "managed");
    const managed = join(tools, "python", "cpython-3.12.7-linux-x86_64-gnu", "bin");
    await mkdir(managed, { recursive: true });
    await writeFile(join(managed, "python3.12"), "#!/bin/sh\necho 3 12\n");
    await chmod(join(managed, "python3.12"), 0o755);
    const other = join(dir, "other-bin");
    await mkdir(other, { recursive: true });
    await symlink("/usr/bin/python3", join(other, "python3"));
    const picked = await pickInterpreter({
      uv: "/nonexistent/uv",
      toolCache: tools,
      version: "3.12",
      env: { PATH: other },
      cwd: dir,
      timeoutMs: 10_000,
    });
    expect(picked).toBe(join(managed, "python3.12"));
  });
});
