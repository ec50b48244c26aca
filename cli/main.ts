/**
 * The `layer-sync` command line: dispatch to one module per command. It runs the same core as the Lambda
 * handlers.
 *
 *   layer-sync sync [flags] [--out DIR] [--json] [--dry-run] [--force]
 *   layer-sync publish [--package NAME]... [flags] [--json]
 *   layer-sync status [--package NAME]... [--regions R,..] [--json]
 *   layer-sync consumers [--package NAME]... [--regions R,..] [--json]
 *   layer-sync rollback --package NAME [--to VERSION] [--regions R,..] [--json]
 *   layer-sync promote --package NAME [flags] [--json]
 *   layer-sync invoke sync|publish EVENT.json
 *   layer-sync help [<command>]      layer-sync <command> --help      layer-sync --version
 *
 * Exit codes: 0 success, 1 the job failed (one-line reason on stderr), 2 bad usage or configuration
 * (`status`: 3 out of step). Stdout carries only the result; progress goes to stderr on a terminal.
 *
 * Everything but the version is imported on demand, so `--version` starts without the settings schema,
 * and `--help` and usage errors without the AWS SDK (the bundled CLI's start-up time).
 */

import type { Environment } from "../lib/common/config.ts";
import pkg from "../package.json" with { type: "json" };
import type { CliIo } from "./output.ts";

export type { CliIo } from "./output.ts";

export const VERSION: string = pkg.version;

/** Run the CLI; returns the exit code. */
export async function main(argv: string[], given: Environment, io: CliIo): Promise<number> {
  if (argv.includes("--version") && !argv.slice(0, argv.indexOf("--version")).includes("--")) {
    io.stdout.write(`layer-sync ${VERSION}\n`);
    return 0;
  }
  // secrets leave the process's environment before any child can start (a child can read /proc/<pid>/environ)
  let env = given;
  if (io.process?.env) {
    const { takeSecrets } = await import("./secrets.ts");
    const snapshot = takeSecrets(io.process.env);
    env = given === io.process.env ? snapshot : given;
  }
  const [
    { isCommand, parseCommand, UsageError },
    { mainHelp, commandHelp },
    { writeError },
    { ConfigError, EventValidationError },
  ] = await Promise.all([
    import("./args.ts"),
    import("./help.ts"),
    import("./output.ts"),
    import("../lib/common/errors.ts"),
  ]);
  try {
    const [command, ...rest] = argv;
    if (command === undefined) {
      io.stderr.write(mainHelp());
      return 2;
    }
    if (command === "help" || command === "--help" || command === "-h") {
      const topic = command === "help" ? rest[0] : undefined;
      if (topic === undefined) io.stdout.write(mainHelp());
      else if (isCommand(topic)) io.stdout.write(commandHelp(topic));
      else throw new UsageError(`unknown command "${topic}"`);
      return 0;
    }
    if (!isCommand(command)) throw new UsageError(`unknown command "${command}"`);
    if (rest.includes("--help") || rest.includes("-h")) {
      io.stdout.write(commandHelp(command));
      return 0;
    }
    const parsed = parseCommand(command, rest);
    switch (command) {
      case "sync":
        return await (await import("./sync.ts")).syncCommand(parsed, env, io);
      case "publish":
        return await (await import("./publish.ts")).publishCommand(parsed, env, io);
      case "status":
        return await (await import("./status.ts")).statusCommand(parsed, env, io);
      case "consumers":
        return await (await import("./consumers.ts")).consumersCommand(parsed, env, io);
      case "rollback":
        return await (await import("./rollback.ts")).rollbackCommand(parsed, env, io);
      case "promote":
        return await (await import("./promote.ts")).promoteCommand(parsed, env, io);
      case "invoke":
        return await (await import("./invoke.ts")).invokeCommand(parsed, io);
    }
  } catch (error) {
    const usage = error instanceof UsageError;
    writeError(io, error, usage);
    return usage || error instanceof ConfigError || error instanceof EventValidationError ? 2 : 1;
  }
}
