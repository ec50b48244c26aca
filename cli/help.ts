/**
 * `layer-sync help`, `layer-sync help <command>`, `layer-sync <command> --help`: the commands, and for one
 * command every flag it accepts, built from the settings schema with each flag's variable and default.
 */
import { COMMANDS, type CommandName, type FlagSpec, flagsOf } from "./args.ts";

const EXIT_CODES = "Exit codes: 0 success, 1 the job failed, 2 usage or configuration error.";

/** The overview: every command, one line each. */
export function mainHelp(): string {
  const names = Object.keys(COMMANDS) as CommandName[];
  const width = Math.max(...names.map((n) => n.length));
  return [
    "usage: layer-sync <command> [flags]",
    "",
    "commands:",
    ...names.map((n) => `  ${n.padEnd(width)}  ${COMMANDS[n].summary}`),
    `  ${"help".padEnd(width)}  show this help, or a command's flags: layer-sync help <command>`,
    "",
    "Run layer-sync <command> --help for its flags. layer-sync --version prints the version.",
    EXIT_CODES,
    "",
  ].join("\n");
}

function left(f: FlagSpec): string {
  const short = f.short ? `-${f.short}, ` : "";
  return `${short}--${f.flag}${f.value ? ` ${f.value}` : ""}${f.list ? " ..." : ""}`;
}

function right(f: FlagSpec): string {
  const notes: string[] = [];
  if (f.required) notes.push(f.required === "always" ? "required" : `required ${f.required}`);
  if (f.default !== undefined) notes.push(`default: ${f.default}`);
  if (f.list) notes.push(f.env ? "repeatable, or comma-separated" : "repeatable");
  const env = f.env ? `${f.env}: ` : "";
  return `${env}${f.help}${notes.length ? ` (${notes.join("; ")})` : ""}`;
}

/** One command's help: what it does, its usage, and every flag it accepts. */
export function commandHelp(command: CommandName): string {
  const flags = flagsOf(command);
  const width = Math.max(...flags.map((f) => left(f).length));
  const lines = [`layer-sync ${command}: ${COMMANDS[command].summary}`, "", `usage: ${COMMANDS[command].usage}`, ""];
  lines.push("flags:", ...flags.map((f) => `  ${left(f).padEnd(width)}  ${right(f)}`), "");
  if (flags.some((f) => f.env)) {
    lines.push("Each setting can also be given as its environment variable; a flag wins.");
  }
  if (command === "status") {
    lines.push("Exit codes: 0 every package is in step in every Region, 3 something is out of step (each");
    lines.push("marked with what to run), 1 a Region could not be read, 2 usage or configuration error.");
  } else if (command === "consumers") {
    lines.push("Exit codes: 0 every account was read, 1 some account could not be read (accounts.failed says");
    lines.push("why; what was read is still listed), 2 usage or configuration error (CONSUMER_SOURCE none).");
  } else lines.push(EXIT_CODES);
  return `${lines.join("\n")}\n`;
}
