/** File-system steps shared by the pipelines. */
import { copyFile, rename, rm } from "node:fs/promises";

/**
 * Move a finished file to `to` (replacing what is there): a rename where both are on one file system, so
 * the file appears whole at once and is never copied, else a copy and the source removed.
 */
export async function moveFile(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EXDEV") throw error;
    await copyFile(from, to);
    await rm(from, { force: true });
  }
}
