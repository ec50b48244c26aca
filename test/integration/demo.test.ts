import { spawn } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = new URL("../../", import.meta.url).pathname;

describe("npm run demo", () => {
  it("runs the whole chain on local emulators and shows keys, versions, ARNs and the share", async () => {
    const env = { ...process.env };
    delete env.AWS_ENDPOINT_URL; // the demo starts and uses its own moto
    const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>(
      (resolve, reject) => {
        const child = spawn(process.execPath, [join(ROOT, "node_modules/tsx/dist/cli.mjs"), "scripts/demo.ts"], {
          cwd: ROOT,
          env,
        });
        let out = "";
        let err = "";
        child.stdout.on("data", (d: Buffer) => {
          out += d.toString();
        });
        child.stderr.on("data", (d: Buffer) => {
          err += d.toString();
        });
        child.on("error", reject);
        child.on("close", (c) => resolve({ code: c, stdout: out, stderr: err }));
      },
    );
    expect(code, stderr).toBe(0);
    expect(stdout).toMatch(/py-requests {2}published version 1/);
    expect(stdout).toMatch(/RAM share arn:aws:ram:.* → arn:aws:organizations::\d{12}:organization\/o-/);
    expect(stdout).toMatch(/sync again, same commit[^\n]*\n {3}py-requests {2}skipped \(unchanged\)/);
    expect(stdout).toMatch(/py-requests {2}published version 2/);
    expect(stdout).toMatch(/node-utils {3}skipped \(unchanged\)/);
  }, 60_000);
});
