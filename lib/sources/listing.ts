/** Checks on a walk listing as a whole (each entry's own name is checked where it is delivered). */
import { PathSafetyError } from "../common/errors.ts";
import { quoteName } from "../common/paths.ts";

/**
 * The one-name-once rule for walk listings, as archives have it (`tarball.ts`): a listing that names one path
 * twice, as any mix of file, directory and link, is refused naming it before anything is downloaded for it.
 * Returns the check for one listing of `folder`; `path` is relative to the folder.
 */
export function listedOnce(folder: string): (path: string) => void {
  const seen = new Set<string>();
  return (path) => {
    if (seen.has(path)) {
      throw new PathSafetyError(
        `entry ${quoteName(path)} in folder "${folder}" is listed twice; a git tree cannot hold that, so the source is corrupt or hostile`,
      );
    }
    seen.add(path);
  };
}
