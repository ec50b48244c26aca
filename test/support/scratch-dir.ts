/**
 * A new temporary folder for every test of a file, removed after it (after `cleanup`, e.g. forgetting the
 * secrets a test registered for redaction). Call at the top of the file; read the folder through the getter.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach } from "vitest";

export function useScratchDir(prefix: string, cleanup: () => void = () => {}): () => string {
  let dir: string | undefined;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), prefix));
  });
  afterEach(async () => {
    cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });
  return () => {
    if (!dir) throw new Error("the scratch folder exists only while a test runs");
    return dir;
  };
}
