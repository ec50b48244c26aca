/**
 * Docker builds on the SAM build images. They need a Docker daemon (and the images' download); without a
 * daemon the whole file is skipped.
 */
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir, userInfo } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { dockerAvailable } from "../../lib/builds/builders.ts";
import { buildTarget } from "../../lib/builds/content.ts";
import { DockerBuilder } from "../../lib/builds/docker.ts";
import { walkDirectory } from "../../lib/builds/tree.ts";
import { type BuildPlan, planBuild } from "../../lib/common/build-plan.ts";

const FIXTURES = resolve(import.meta.dirname, "../fixtures/build");
const daemon = await dockerAvailable(process.env, tmpdir());

describe.skipIf(!daemon)("a docker build", () => {
  it("builds a pure-Python requirement for python3.12 on x86_64 in the SAM image", { timeout: 600_000 }, async () => {
    const work = await mkdtemp(join(tmpdir(), "layer-sync-docker-"));
    try {
      const files = await walkDirectory(join(FIXTURES, "py-pure"), "py-pure");
      const plan = planBuild({
        folder: "layers/py-pure",
        name: "py-pure",
        layerNamePrefix: "",
        files: files.map((f) => f.path),
        defaults: { runtimes: ["python3.12"], architectures: ["x86_64"] },
      }) as BuildPlan;
      await mkdir(join(work, "home"));
      const { uid, gid } = userInfo();
      const builder = new DockerBuilder({
        env: process.env,
        home: join(work, "home"),
        timeoutMs: 600_000,
        user: `${uid}:${gid}`,
      });
      const target = plan.targets[0] as BuildPlan["targets"][number];
      const built = await buildTarget({
        plan,
        target,
        files,
        builder,
        workDir: join(work, "b"),
        zipFile: join(work, "l.zip"),
      });
      expect(built.builder).toBe("docker");
      expect(execFileSync("python3", ["-m", "zipfile", "-l", built.zip.path], { encoding: "utf8" })).toContain(
        "python/six.py",
      );
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
});
