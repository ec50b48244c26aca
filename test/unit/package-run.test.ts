import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FolderSpec } from "../../lib/common/config.ts";
import { loadSyncConfig } from "../../lib/common/config.ts";
import { ConfigError, SourceError } from "../../lib/common/errors.ts";
import { silentLogger } from "../../lib/common/log.ts";
import { StagingArea } from "../../lib/staging/staging.ts";
import { PackageRun } from "../../lib/sync/package-run.ts";
import type { SyncProgressEvent } from "../../lib/sync/sync.ts";

let dir: string;
let staging: StagingArea;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "package-run-"));
  staging = await StagingArea.create(dir, "run", { maxFiles: 100, maxBytes: 1 << 20 }, { exclusive: false, now: 0 });
});
afterAll(async () => {
  await staging.dispose();
  await rm(dir, { recursive: true, force: true });
});

function spec(path: string, pkg: string): FolderSpec {
  return { path, package: pkg, layerName: pkg };
}

let n = 0;
/** A package of its own, staged, with the progress events it sent. */
async function fetchingPackage(): Promise<{ p: PackageRun; events: SyncProgressEvent[] }> {
  const events: SyncProgressEvent[] = [];
  const name = `pkg${n++}`;
  const p = new PackageRun(spec(`layers/${name}`, name), { log: silentLogger, progress: (e) => events.push(e) });
  p.fetch(await staging.stage(`layers/${name}`, name));
  return { p, events };
}

describe("a package run", () => {
  it("starts pending and fails before the fetch with its error and the configuration kind", () => {
    const events: SyncProgressEvent[] = [];
    const p = new PackageRun(spec("layers/a", "a"), { log: silentLogger, progress: (e) => events.push(e) });
    expect(p.state).toBe("pending");
    p.fail(new ConfigError("bad folder"));
    expect(p.state).toBe("failed");
    expect(p.summary).toMatchObject({ error: "bad folder", errorKind: "configuration" });
    expect(events.at(-1)).toMatchObject({ package: "a", stage: "failed", detail: "bad folder" });
  });

  it("is unchanged when the change check proves it and reports itself as skipped", () => {
    const events: SyncProgressEvent[] = [];
    const p = new PackageRun(spec("layers/b", "b"), { log: silentLogger, progress: (e) => events.push(e) });
    Object.assign(p.summary, { skipped: true, reason: "unchanged" });
    p.markUnchanged();
    p.report();
    expect(p.state).toBe("unchanged");
    expect(events).toEqual([{ package: "b", stage: "skipped", bytes: 0, detail: "unchanged" }]);
  });

  it("waits for its commit while fetching, and a redelivery then keeps its summary", async () => {
    const { p } = await fetchingPackage();
    p.summary.warnings.push("from the fetch");
    expect(p.awaitsCommit).toBe(true);
    await p.redeliver();
    expect(p.state).toBe("fetching");
    expect(p.summary.warnings).toEqual(["from the fetch"]);
  });

  it("is committed without a pointer to move, or uploaded with one", async () => {
    const done = await fetchingPackage();
    done.p.committed();
    expect(done.p.state).toBe("committed");
    const up = await fetchingPackage();
    up.p.point = async () => undefined;
    up.p.committed();
    expect(up.p.state).toBe("uploaded");
    expect(up.p.awaitsCommit).toBe(false);
  });

  it("moves the pointer once confirmed, and fails when the pointer write does", async () => {
    const ok = await fetchingPackage();
    let pointed = 0;
    ok.p.point = async () => {
      pointed++;
    };
    ok.p.committed();
    await ok.p.confirm(undefined);
    await ok.p.pointForward();
    expect(ok.p.state).toBe("pointed");
    expect(pointed).toBe(1);
    await ok.p.pointForward();
    expect(pointed).toBe(1);

    const bad = await fetchingPackage();
    bad.p.point = async () => {
      throw new Error("ssm is down");
    };
    bad.p.committed();
    await bad.p.pointForward();
    expect(bad.p.state).toBe("failed");
    expect(bad.p.summary.error).toBe("ssm is down");
  });

  it("fails, never points and removes its --out zip when the fetch fails the folder after its commit", async () => {
    const { p } = await fetchingPackage();
    const out = join(dir, "written.zip");
    await writeFile(out, "zip");
    p.outFile = out;
    let pointed = false;
    p.point = async () => {
      pointed = true;
    };
    p.committed();
    await p.confirm(new SourceError("the archive named layers/x twice"));
    expect(p.state).toBe("failed");
    expect(existsSync(out)).toBe(false);
    await p.pointForward();
    expect(pointed).toBe(false);
  });

  it("goes back to fetching on a redelivery, forgetting its targets, pointer and --out zip but not its upload", async () => {
    const events: SyncProgressEvent[] = [];
    const p = new PackageRun(spec("layers/again", "again"), { log: silentLogger, progress: (e) => events.push(e) });
    p.summary.warnings.push("from the change check");
    p.fetch(await staging.stage("layers/again", "again"));
    p.summary.warnings.push("made by the first delivery");
    const out = join(dir, "old.zip");
    await writeFile(out, "zip");
    const point = async () => undefined;
    Object.assign(p, { outFile: out, point, uploaded: { key: "k", sha256: "s", point }, targets: [p.summary] });
    p.committed();
    await p.redeliver();
    expect(p.state).toBe("fetching");
    expect(p.summary.warnings).toEqual(["from the change check"]);
    expect(p.targets).toBeUndefined();
    expect(p.point).toBeUndefined();
    expect(existsSync(out)).toBe(false);
    expect(p.uploaded?.key).toBe("k");
    expect(events.at(-1)).toMatchObject({ package: "again", stage: "fetching" });
  });

  it("plans its folder once per delivery", async () => {
    const config = loadSyncConfig(
      { env: { SOURCE_PROVIDER: "github", SOURCE_REPOSITORY: "acme/layers", SOURCE_PATHS: "layers/x" } },
      { requireBucket: false },
    );
    const { p } = await fetchingPackage();
    const first = p.plan(config);
    expect(p.plan(config)).toBe(first);
    expect(await first).toEqual({ plan: undefined });
    p.committed();
    await p.redeliver();
    expect(p.plan(config)).not.toBe(first);
  });
});
