/** A Region's failure as one line, saying so when it looks like a Region not enabled for the account. */

import { errorName } from "../common/aws-errors.ts";
import type { RegionTarget } from "../common/config.ts";
import { describeError } from "../common/errors.ts";

const NOT_ENABLED =
  /UnrecognizedClient|InvalidClientTokenId|AuthFailure|OptInRequired|InvalidToken|SignatureDoesNotMatch/;

function rootCause(error: unknown): unknown {
  let e = error;
  for (let i = 0; i < 5 && e instanceof Error && e.cause !== undefined; i++) e = e.cause;
  return e;
}

/** A Region's failure as one line; an error that looks like a Region not enabled for the account says so. */
export function regionError(error: unknown, target: RegionTarget): string {
  const text = describeError(error);
  if (!target.home && NOT_ENABLED.test(errorName(rootCause(error)))) {
    return `${text}; if ${target.region} is an opt-in Region, enable it for the account or remove it from PUBLISH_REGIONS`;
  }
  return text;
}
