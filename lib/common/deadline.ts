/**
 * A run's deadline: an absolute time on the injected clock, an `AbortSignal` that fires there (the HTTP
 * client aborts its requests under way with it), and `check()` for the points where the core must not start
 * anything new (an upload, a pointer write) once it has passed.
 */
import { DeadlineError } from "./errors.ts";

export class RunDeadline {
  /** Aborted, with a `DeadlineError` as its reason, once the deadline passes. */
  readonly signal: AbortSignal;
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;

  /**
   * @param at the deadline, in ms since the epoch on `now`'s clock
   * @param why what the deadline is, for messages ("the Lambda function's remaining time less a 30 s margin")
   * @param advice what to do about it, ending the message
   */
  constructor(
    readonly at: number,
    readonly why: string,
    private readonly now: () => number = Date.now,
    readonly advice = "raise the function's timeout, or sync fewer or smaller folders per run",
  ) {
    this.signal = this.controller.signal;
    this.timer = setTimeout(() => this.expire(), Math.max(0, at - now()));
    this.timer.unref();
  }

  /** Milliseconds left (negative once passed). */
  remainingMs(): number {
    return this.at - this.now();
  }

  get passed(): boolean {
    if (!this.signal.aborted && this.now() >= this.at) this.expire();
    return this.signal.aborted;
  }

  /** Throws a `DeadlineError` saying that `doing` was cut, once the deadline has passed. */
  check(doing: string): void {
    if (this.passed) throw this.error(doing);
  }

  /** The one-line error for `doing` cut at the deadline. */
  error(doing: string, cause?: unknown): DeadlineError {
    return new DeadlineError(
      `${doing} was cut at the run's deadline ${new Date(this.at).toISOString()} (${this.why}); nothing was uploaded or pointed to after it and the previous pointer stays — ${this.advice}`,
      { cause: cause ?? this.signal.reason },
    );
  }

  /** Stop the timer (the run is over). */
  dispose(): void {
    clearTimeout(this.timer);
  }

  private expire(): void {
    clearTimeout(this.timer);
    if (!this.signal.aborted) this.controller.abort(this.error("the run"));
  }
}
