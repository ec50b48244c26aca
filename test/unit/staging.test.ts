import { spawnSync } from "node:child_process";
import { mkdir, readdir, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { LimitExceededError, PathSafetyError } from "../../lib/common/errors.ts";
import { OVERLAP_FACTOR, StagingArea } from "../../lib/staging/staging.ts";
import { pseudoRandomBytes } from "../fixtures/repo.ts";

const limits = { maxFiles: 3, maxBytes: 100 };

describe("StagingArea", () => {
  it("removes stale run directories before a run, and its own after", async () => {
    const work = join(tmpdir(), `ls-staging-${process.pid}-${Date.now()}`);
    await mkdir(join(work, "old-run"), { recursive: true });
    await mkdir(join(work, "recent-run"), { recursive: true });
    const twoHoursAgo = new Date(Date.now() - 2 * 3_600_000);
    await utimes(join(work, "old-run"), twoHoursAgo, twoHoursAgo);
    const area = await StagingArea.create(work, "mine", limits, { exclusive: false, now: Date.now() });
    expect((await readdir(work)).sort()).toEqual(["mine", "recent-run"]);
    const exclusive = await StagingArea.create(work, "lambda", limits, { exclusive: true, now: Date.now() });
    expect(await readdir(work)).toEqual(["lambda"]);
    await exclusive.dispose();
    expect(await readdir(work)).toEqual([]);
    await area.dispose();
  });
});

describe("StagingArea while a package finishes", () => {
  const MiB = 1024 * 1024;
  const packing = async (runId: string) =>
    StagingArea.create(
      join(tmpdir(), `ls-staging-finish-${process.pid}`),
      runId,
      { maxFiles: 100, maxBytes: 64 * MiB },
      { exclusive: false, now: Date.now(), packSmallFiles: true },
    );
  /** Deliver `sizes` (MiB, incompressible) to `stage` one after another, noting each one's arrival. */
  const deliver = (stage: Awaited<ReturnType<StagingArea["stage"]>>, sizes: number[], arrived: string[]) =>
    (async () => {
      for (const [i, mib] of sizes.entries()) {
        await stage.file(`f${i}.bin`, pseudoRandomBytes(mib * MiB, 10 + i), { executable: false });
        arrived.push(`f${i}`);
      }
    })();

  it("makes the next package wait once the area holds 1.3 × the largest footprint so far", async () => {
    const area = await packing("wait");
    const first = await area.stage("layers/a", "a");
    await first.file("big.bin", pseudoRandomBytes(4 * MiB, 1), { executable: false });
    area.limitWhileFinishing(first);
    expect(area.largestFootprint).toBeGreaterThan(8 * MiB);
    const arrived: string[] = [];
    const next = await area.stage("layers/b", "b");
    const delivering = deliver(next, [1, 1, 1, 1], arrived);
    await new Promise((r) => setTimeout(r, 300));
    // the first package (4 MiB packed, its zip about as much again) leaves room for two more MiB only
    expect(arrived).toEqual(["f0", "f1"]);
    arrived.push("released");
    await area.release(first);
    await delivering;
    expect(arrived).toEqual(["f0", "f1", "released", "f2", "f3"]);
    expect(area.peakBytes).toBeLessThanOrEqual(OVERLAP_FACTOR * area.largestFootprint);
    await area.dispose();
  });

  it("lets a small package after a large one overlap the next up to the large one's bound", async () => {
    const area = await packing("overlap");
    const large = await area.stage("layers/a", "a");
    await large.file("big.bin", pseudoRandomBytes(4 * MiB, 1), { executable: false });
    area.limitWhileFinishing(large);
    await area.release(large);
    const small = await area.stage("layers/b", "b");
    await small.file("small.bin", pseudoRandomBytes(MiB / 2, 2), { executable: false });
    area.limitWhileFinishing(small);
    const arrived: string[] = [];
    const next = await area.stage("layers/c", "c");
    // 1.3 × the small package alone (about 1.3 MiB) would stop this after its first MiB
    await deliver(next, [1, 1, 1], arrived);
    expect(arrived).toEqual(["f0", "f1", "f2"]);
    await area.release(small);
    expect(area.peakBytes).toBeLessThanOrEqual(OVERLAP_FACTOR * area.largestFootprint);
    await area.dispose();
  });
});

describe("StagingArea's stale run directories", () => {
  it("are removed when their owner process is gone, and kept while it runs", async () => {
    const work = join(tmpdir(), `ls-staging-owner-${process.pid}-${Date.now()}`);
    const gone = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"]).stdout.toString();
    for (const [dir, pid] of [
      ["dead-owner", gone],
      ["live-owner", String(process.pid)],
    ]) {
      await mkdir(join(work, dir as string), { recursive: true });
      await writeFile(join(work, dir as string, ".owner"), `${pid}\n`);
    }
    const area = await StagingArea.create(work, "mine", limits, {
      exclusive: false,
      now: Date.now(),
      ownerPid: process.pid,
    });
    expect((await readdir(work)).sort()).toEqual(["live-owner", "mine"]);
    expect(await readFile(join(work, "mine", ".owner"), "utf8")).toBe(`${process.pid}\n`);
    await area.dispose();
    await rm(work, { recursive: true, force: true });
  });
});

describe("FolderStage", () => {
  it("writes executables with mode 755 and files with 644", async () => {
    const area = await StagingArea.create(join(tmpdir(), `ls-st-${process.pid}`), "r1", limits, {
      exclusive: false,
      now: Date.now(),
    });
    const stage = await area.stage("f", "f");
    await stage.file("bin/x", Buffer.from("x"), { executable: true });
    await stage.file("y", Buffer.from("y"), { executable: false });
    expect((await stat(stage.absolute("bin/x"))).mode & 0o777).toBe(0o755);
    expect((await stat(stage.absolute("y"))).mode & 0o777).toBe(0o644);
    await area.dispose();
  });

  it("enforces the file-count and byte limits while streaming", async () => {
    const area = await StagingArea.create(join(tmpdir(), `ls-st2-${process.pid}`), "r2", limits, {
      exclusive: false,
      now: Date.now(),
    });
    const stage = await area.stage("f", "f");
    await stage.file("a", Buffer.alloc(10), { executable: false });
    await expect(stage.file("big", Buffer.alloc(200), { executable: false })).rejects.toThrow(LimitExceededError);
    await expect(stage.file("declared", Buffer.alloc(1), { executable: false, size: 500 })).rejects.toThrow(
      /over 100 bytes/,
    );
    await stage.file("b", Buffer.alloc(1), { executable: false });
    await stage.file("c", Buffer.alloc(1), { executable: false });
    await expect(stage.file("d", Buffer.alloc(1), { executable: false })).rejects.toThrow(/more than 3 files/);
    await area.dispose();
  });

  it("refuses entries inside a symlink or a file, and symlinks that leave the folder", async () => {
    const area = await StagingArea.create(
      join(tmpdir(), `ls-st3-${process.pid}`),
      "r3",
      { maxFiles: 10, maxBytes: 100 },
      {
        exclusive: false,
        now: Date.now(),
      },
    );
    const stage = await area.stage("f", "f");
    await stage.symlink("link", "sub");
    await expect(stage.file("link/evil", Buffer.from("x"), { executable: false })).rejects.toThrow(
      /inside symlink "link"/,
    );
    await stage.file("plain", Buffer.from("x"), { executable: false });
    await expect(stage.file("plain/child", Buffer.from("x"), { executable: false })).rejects.toThrow(
      /inside file "plain"/,
    );
    await expect(stage.symlink("out", "../../x")).rejects.toThrow(PathSafetyError);
    await area.dispose();
  });
});
