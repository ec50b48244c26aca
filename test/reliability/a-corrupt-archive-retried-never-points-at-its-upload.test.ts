/**
 * Archives finish each package as soon as the stream leaves its folder, before the gzip CRC-32 trailer has
 * vouched for the bytes. A download that turns out corrupt after a package was uploaded from it is retried:
 * every folder arrives again, and the package's new zip either equals what was uploaded (kept) or replaces
 * it under a new key; the pointer moves only to an upload of the confirmed bytes.
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import { HeadObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { SSMClient } from "@aws-sdk/client-ssm";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createBucket, uniqueName } from "../support/aws.ts";
import {
  awsScope,
  branch,
  keysUnder,
  minute,
  on,
  onlyPackage,
  type Provider,
  pointerOf,
  runCore,
  type Sources,
  startSources,
  touch,
  zipBytes,
} from "./harness.ts";
import { watchSecrets } from "./secrets.ts";

watchSecrets();

const s3 = new S3Client({});
const ssm = new SSMClient({});
let sources: Sources;
let bucket: string;

beforeAll(async () => {
  sources = await startSources();
  bucket = await createBucket(uniqueName("rel-corrupt"));
});

afterEach(() => {
  sources.bb.clearFaults();
  sources.gh.clearFaults();
});

afterAll(async () => {
  await sources.close();
  s3.destroy();
  ssm.destroy();
});

const archiveDownload = (provider: Provider) =>
  provider === "bitbucket" ? on("web", /\/get\/[0-9a-f]{40}\.tar\.gz$/) : on("codeload", /legacy\.tar\.gz/);

for (const provider of ["bitbucket", "github"] as const) {
  describe(`${provider}: an archive that is corrupt once, after a package was uploaded from it`, () => {
    it("is downloaded again, the package is uploaded again under a new key from the good bytes, and only that key is pointed to", async () => {
      const scope = awsScope(s3, ssm, bucket);
      const ref = branch(sources.repo, provider);
      const paths = ["layers/data"];
      const first = await runCore(sources, { provider, strategy: "archive", paths, ref, aws: scope, clock: minute(0) });
      const goodKey = onlyPackage(first).key ?? "";
      touch(sources.repo, ref, "layers/data");

      const emulator = provider === "bitbucket" ? sources.bb : sources.gh;
      emulator.inject({ match: archiveDownload(provider), fault: { kind: "corrupt-body" }, times: 1 });
      const run = await runCore(sources, { provider, strategy: "archive", paths, ref, aws: scope, clock: minute(1) });
      const p = onlyPackage(run);
      expect(p.error).toBeUndefined();
      expect(run.waits).toHaveLength(1);

      // the corrupt copy had been uploaded; the retry's zip differs, so it went to a key of its own
      const keys = await keysUnder(s3, bucket, scope.artifactPrefix);
      const unreferenced = keys.filter((k) => k !== goodKey && k !== p.key);
      expect(unreferenced).toHaveLength(1);
      expect(p.key).toMatch(/\/data-20261121T100101Z-[0-9a-f]{7}\.zip$/);
      expect(unreferenced[0]).toMatch(/\/data-20261121T100100Z-[0-9a-f]{7}\.zip$/);
      expect(p.warnings.join("\n")).toContain(`${unreferenced[0]} is left unreferenced`);
      expect(await pointerOf(ssm, scope.prefix, "data")).toBe(p.key);

      // what is pointed to is exactly the zip a fault-free run makes of that commit
      const outDir = join(sources.dir, `corrupt-once-${provider}`);
      const clean = await runCore(sources, { provider, strategy: "archive", paths, ref, outDir });
      const sha = createHash("sha256")
        .update(await zipBytes(outDir, clean))
        .digest("hex");
      expect(p.sha256).toBe(sha);
      const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: p.key ?? "" }));
      expect(head.Metadata?.["content-sha256"]).toBe(sha);
      const stale = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: unreferenced[0] ?? "" }));
      expect(stale.Metadata?.["content-sha256"]).not.toBe(sha);
    });

    it("keeps the earlier upload when the download breaks after it but the package's bytes were sound", async () => {
      const scope = awsScope(s3, ssm, bucket);
      const ref = branch(sources.repo, `${provider}-cut`);
      const paths = ["layers/data"];
      await runCore(sources, { provider, strategy: "archive", paths, ref, aws: scope, clock: minute(0) });
      touch(sources.repo, ref, "layers/data");
      const before = await keysUnder(s3, bucket, scope.artifactPrefix);

      const emulator = provider === "bitbucket" ? sources.bb : sources.gh;
      emulator.inject({ match: archiveDownload(provider), fault: { kind: "reset-mid-body" }, times: 1 });
      const run = await runCore(sources, { provider, strategy: "archive", paths, ref, aws: scope, clock: minute(1) });
      const p = onlyPackage(run);
      expect(p.error).toBeUndefined();
      expect(run.waits).toHaveLength(1);
      expect(p.warnings.join("\n")).not.toContain("unreferenced");
      // one new object only, whether the package had been uploaded before the reset or not
      expect(await keysUnder(s3, bucket, scope.artifactPrefix)).toEqual([...before, p.key].sort());
      expect(await pointerOf(ssm, scope.prefix, "data")).toBe(p.key);
    });
  });
}
