/**
 * The logger every pipeline writes to. The handlers pass Powertools' Logger, the CLI a progress printer,
 * tests a recorder; the core never logs anywhere else.
 */
export interface Logger {
  info(message: string, extra?: Record<string, unknown>): void;
  warn(message: string, extra?: Record<string, unknown>): void;
  error(message: string, extra?: Record<string, unknown>): void;
}

export const silentLogger: Logger = { info() {}, warn() {}, error() {} };
