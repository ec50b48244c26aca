/** SSM helpers shared by the pipelines. */
import { errorName } from "./aws-errors.ts";

/** How often a write refused with TooManyUpdates is tried again (SSM allows few writes per second per parameter). */
export const TOO_MANY_UPDATES_RETRIES = 5;

/**
 * Run an SSM write, trying again with jittered exponential back-off (200 ms × 2^n + up to 200 ms) while SSM
 * answers TooManyUpdates; any other error, or the last TooManyUpdates, is thrown as it is.
 */
export async function retryTooManyUpdates<T>(
  write: () => Promise<T>,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await write();
    } catch (error) {
      if (errorName(error) !== "TooManyUpdates" || attempt >= TOO_MANY_UPDATES_RETRIES) throw error;
      await sleep(200 * 2 ** attempt + Math.floor(Math.random() * 200));
    }
  }
}
