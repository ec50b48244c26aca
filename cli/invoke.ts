/**
 * `layer-sync invoke sync|publish EVENT.json`: runs the real Lambda handler in-process with the event and
 * prints its result. The handler's structured logs and metrics go to stderr; stdout carries only the result.
 */
import { readFile } from "node:fs/promises";
import { describeError, EventValidationError } from "../lib/common/errors.ts";
import { type ParsedCommand, UsageError } from "./args.ts";
import type { CliIo } from "./output.ts";

export async function invokeCommand(parsed: ParsedCommand, io: CliIo): Promise<number> {
  const [which, file] = parsed.positionals;
  if ((which !== "sync" && which !== "publish") || !file || parsed.positionals.length > 2) {
    throw new UsageError("invoke takes: invoke sync|publish EVENT.json");
  }
  let event: unknown;
  try {
    event = JSON.parse(await readFile(file, "utf8"));
  } catch (error) {
    throw new EventValidationError(`cannot read event file ${file}: ${describeError(error)}`);
  }
  const mod = (await import(which === "sync" ? "../handlers/sync.ts" : "../handlers/publish.ts")) as {
    handler: (event: unknown, context: unknown) => Promise<unknown>;
  };
  const { localContext } = await import("../handlers/runtime.ts");
  const context = localContext(`layer-sync-${which}`);
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = process.stderr.write.bind(process.stderr) as typeof process.stdout.write;
  let result: unknown;
  try {
    result = await mod.handler(event, context);
  } finally {
    process.stdout.write = write;
  }
  io.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  return 0;
}
