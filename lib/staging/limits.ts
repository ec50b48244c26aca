/** A package's limits in the staging area (SOURCE_MAX_FILES, SOURCE_MAX_BYTES) and the error past them. */
import { LimitExceededError } from "../common/errors.ts";
import { quoteName } from "../common/paths.ts";

import { LAMBDA_UNZIPPED_MAX_BYTES } from "../common/sizes.ts";

/** Lambda's limit on a function and its layers unzipped (250 MiB), the highest SOURCE_MAX_BYTES. */
export { LAMBDA_UNZIPPED_MAX_BYTES } from "../common/sizes.ts";

export interface StageLimits {
  maxFiles: number;
  maxBytes: number;
}

/** Folder `folder` reached `bytes` at `path`, over its `maxBytes`: what to do depends on whose limit it is. */
export function folderTooBig(folder: string, maxBytes: number, path: string, bytes: number): LimitExceededError {
  const over = `folder "${folder}" is over ${maxBytes} bytes unzipped (reached ${bytes} at ${quoteName(path)})`;
  // at Lambda's own limit only splitting helps; below it, the user chose the limit and may raise it
  const advice =
    maxBytes >= LAMBDA_UNZIPPED_MAX_BYTES
      ? "Lambda allows 250 MiB unzipped for a function and its layers together — split the folder into smaller layers"
      : `that is the limit SOURCE_MAX_BYTES sets — raise it (up to ${LAMBDA_UNZIPPED_MAX_BYTES}, Lambda's 250 MiB for a function and its layers) or split the folder`;
  return new LimitExceededError(`${over}; ${advice}`);
}
