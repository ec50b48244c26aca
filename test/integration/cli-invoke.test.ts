import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PutParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BitbucketEmulator, startBitbucketEmulator } from "../emulators/bitbucket.ts";
import { standardRepo } from "../fixtures/repo.ts";
import { createBucket, uniqueName } from "../support/aws.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const TOKEN = "bb-invoke-token-7d1e2f3a4b5c";
let bb: BitbucketEmulator;
let env: NodeJS.ProcessEnv;
let scratch: string;

/**
 * Run the real `layer-sync` command as a child process, the way `npx layer-sync` does: the package's `bin`,
 * the bundle `test/support/cli.global.ts` keeps fresh.
 */
function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, "dist/layer-sync.mjs"), ...args], { cwd: ROOT, env });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

beforeAll(async () => {
  bb = await startBitbucketEmulator({ repos: [standardRepo({ bigFileBytes: 64 * 1024 })], accessTokens: [TOKEN] });
  const bucket = await createBucket(uniqueName("invoke"));
  const tokenParameter = `/${uniqueName("tok")}/bitbucket`;
  await new SSMClient({}).send(new PutParameterCommand({ Name: tokenParameter, Value: TOKEN, Type: "SecureString" }));
  scratch = await mkdtemp(join(tmpdir(), "ls-invoke-"));
  env = {
    ...process.env,
    SOURCE_PROVIDER: "bitbucket",
    SOURCE_REPOSITORY: "acme/layers",
    SOURCE_PATHS: "layers/py-requests,layers/tools",
    SOURCE_API_URL: bb.apiUrl,
    SOURCE_WEB_URL: bb.webUrl,
    TOKEN_PARAMETER_NAME: tokenParameter,
    ARTIFACT_BUCKET: bucket,
    // the sample events name /layer-sync/py-requests; the layer name prefix keeps this file's layers apart
    LAYER_NAME_PREFIX: `${uniqueName("inv")}-`,
    POWERTOOLS_METRICS_NAMESPACE: "LayerSyncTest",
    // the command's own behaviour: the handler's structured logs on stderr (the suite silences handlers)
    POWERTOOLS_LOG_LEVEL: "INFO",
  };
});

afterAll(async () => {
  await bb.close();
  await rm(scratch, { recursive: true, force: true });
});

describe("layer-sync invoke with the sample events", () => {
  it("ignores another pipeline's STARTED event and a SUCCEEDED event", async () => {
    for (const [file, reason] of [
      ["pipeline-started-other.json", /some-other-pipeline/],
      ["pipeline-succeeded.json", /SUCCEEDED is not STARTED/],
    ] as const) {
      const r = await run(["invoke", "sync", `events/${file}`]);
      expect(r.code, r.stderr).toBe(0);
      expect((JSON.parse(r.stdout) as { ignored: string }).ignored).toMatch(reason);
    }
  });

  it("syncs on the CfCT pipeline's STARTED event and prints only the summary on stdout", async () => {
    const r = await run(["invoke", "sync", "events/pipeline-started.json"]);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout) as { packages: { name: string; skipped: boolean; key: string }[] };
    expect(summary.packages.map((p) => [p.name, p.skipped])).toEqual([
      ["py-requests", false],
      ["tools", false],
    ]);
    expect(r.stderr).toMatch(/"message":"resolved ref"/); // structured logs go to stderr
    expect(r.stdout + r.stderr).not.toContain(TOKEN);
  });

  it("runs the manual payload, which finds the folder unchanged", async () => {
    const r = await run(["invoke", "sync", "events/sync-manual.json"]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      packages: [{ name: "py-requests", skipped: true, reason: "unchanged" }],
    });
  });

  it("publishes the synced artifact from the Parameter Store Change sample, then the manual and reconcile samples change nothing", async () => {
    const first = await run(["invoke", "publish", "events/parameter-change.json"]);
    expect(first.code, first.stderr).toBe(0);
    const published = JSON.parse(first.stdout) as {
      packages: { name: string; published: boolean; layerVersionArn: string }[];
    };
    expect(published.packages[0]).toMatchObject({ name: "py-requests", published: true });
    expect(published.packages[0]?.layerVersionArn).toMatch(/:layer:inv-[0-9a-f]+-py-requests:1$/);
    for (const file of ["publish-manual.json", "publish-reconcile.json"]) {
      const again = await run(["invoke", "publish", `events/${file}`]);
      expect(again.code, again.stderr).toBe(0);
      const p = (
        JSON.parse(again.stdout) as { packages: { name: string; published: boolean; layerVersionArn: string }[] }
      ).packages;
      expect(p.find((x) => x.name === "py-requests")).toMatchObject({
        published: false,
        layerVersionArn: published.packages[0]?.layerVersionArn,
      });
    }
  });

  it("exits 2 with a one-line reason for a malformed event file and for bad usage", async () => {
    const file = join(scratch, "bad.json");
    await writeFile(file, JSON.stringify({ paths: "layers/tools" }));
    const bad = await run(["invoke", "sync", file]);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split("\n").at(-1)).toMatch(/^layer-sync: "paths" must be a non-empty array/);
    const usage = await run(["invoke", "deploy", file]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/invoke takes: invoke sync\|publish EVENT.json/);
  });
});
