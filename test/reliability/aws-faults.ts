/**
 * Faults moto cannot produce, injected into real SDK clients through their middleware stacks. A fault sits in
 * the `deserialize` step, inside the SDK's retry loop, so the SDK's own retries see it exactly as they would see
 * a failing AWS response. `after: true` lets the request reach moto first and then loses the response: the
 * "succeeded on the server, failed on the client" case.
 *
 * `gate()` holds one command until the test releases it, to force an interleaving of two runs.
 */

export interface FaultPlan {
  /** The SDK command name, e.g. `PutObjectCommand`. */
  command: string;
  /** The error to throw (a fresh one per call). */
  error: () => Error;
  /** How many matching calls fail (default: every one). */
  times?: number;
  /** Let this many matching calls through before failing any (default 0). */
  skip?: number;
  /** Send the request first and then throw, as if the response were lost. */
  after?: boolean;
}

export interface FaultCounter {
  /** Calls of the command seen (failed or not). */
  calls: number;
  /** Calls that were failed. */
  failed: number;
}

/** An SDK-shaped service error. `throttling` marks it the way the SDK's retry strategy reads throttling. */
export function serviceError(name: string, message: string, status: number, options: { fault?: string } = {}): Error {
  return Object.assign(new Error(message), {
    name,
    $fault: options.fault ?? (status >= 500 ? "server" : "client"),
    $metadata: { httpStatusCode: status, attempts: 1, totalRetryDelay: 0 },
  });
}

interface Stack {
  add(
    middleware: (
      next: (args: { input: object }) => Promise<unknown>,
      context: { commandName?: string },
    ) => (args: { input: object }) => Promise<unknown>,
    options: { step: "deserialize" | "initialize"; name?: string },
  ): void;
}

/** A client whose middleware stack we can add to, whatever its service. */
export interface WithStack {
  middlewareStack: unknown;
}

function stackOf(client: WithStack): Stack {
  return client.middlewareStack as Stack;
}

/** Make `plan.command` fail on `client`; returns live counters. */
export function injectFault(client: WithStack, plan: FaultPlan): FaultCounter {
  const counter: FaultCounter = { calls: 0, failed: 0 };
  const limit = plan.times ?? Number.POSITIVE_INFINITY;
  stackOf(client).add(
    (next, context) => async (args) => {
      if (context.commandName !== plan.command) return next(args);
      counter.calls++;
      if (counter.calls <= (plan.skip ?? 0) || counter.failed >= limit) return next(args);
      counter.failed++;
      if (plan.after) await next(args);
      throw plan.error();
    },
    { step: "deserialize" },
  );
  return counter;
}

export interface Gate {
  /** Resolves when the held call arrives. */
  reached: Promise<void>;
  release(): void;
}

/** Hold the `nth` call (1-based) of `command` on `client` until `release()`. */
export function gate(client: WithStack, command: string, nth = 1): Gate {
  let seen = 0;
  let arrived = () => {};
  let open = () => {};
  const reached = new Promise<void>((resolve) => {
    arrived = resolve;
  });
  const released = new Promise<void>((resolve) => {
    open = resolve;
  });
  stackOf(client).add(
    (next, context) => async (args) => {
      if (context.commandName === command && ++seen === nth) {
        arrived();
        await released;
      }
      return next(args);
    },
    { step: "initialize" },
  );
  return { reached, release: () => open() };
}

/** The commands a client sent, in order (recorded at the initialize step, once per call, retries excluded). */
export function recordCommands(client: WithStack): string[] {
  const sent: string[] = [];
  stackOf(client).add(
    (next, context) => async (args) => {
      sent.push(context.commandName ?? "?");
      return next(args);
    },
    { step: "initialize" },
  );
  return sent;
}

/** Every attempt a client sent to the wire, retries included (recorded inside the retry loop). */
export function recordAttempts(client: WithStack): string[] {
  const sent: string[] = [];
  stackOf(client).add(
    (next, context) => async (args) => {
      sent.push(context.commandName ?? "?");
      return next(args);
    },
    { step: "deserialize" },
  );
  return sent;
}
