/**
 * The commands and their flags, built from the settings schema (`lib/common/settings.ts`): a command
 * accepts the flag of every setting it reads, plus its own options (`--out`, `--json`, …). A flag that
 * belongs to another command, or to none, is a usage error (exit 2) with a one-line reason.
 */
import { parseArgs } from "node:util";
import { type Command, SETTINGS, type SettingKey, type SettingSpec } from "../lib/common/settings.ts";

/** Bad usage: the CLI exits 2 and points at `--help`. */
export class UsageError extends Error {
  override name = "UsageError";
}

export type CommandName = Command | "invoke" | "rollback" | "promote";

/** Commands that read the settings of another command (rollback: the same as status, where things are). */
const SETTINGS_OF: Partial<Record<CommandName, Command>> = { rollback: "status", promote: "publish" };

/** One flag as help shows it. */
export interface FlagSpec {
  flag: string;
  /** The word for its value; undefined for a switch. */
  value: string | undefined;
  /** May be repeated (and each value may hold commas). */
  list: boolean;
  help: string;
  default: string | undefined;
  /** The setting's variable, when the flag sets a setting. */
  env?: string;
  required?: string;
  short?: string;
}

/** `--deadline`'s default: one hour for a whole run. */
export const DEFAULT_DEADLINE_SECONDS = 3600;

/** Options of the command line itself: not settings, so no variable. */
const OPTIONS: (FlagSpec & { commands: readonly CommandName[] })[] = [
  {
    flag: "package",
    value: "NAME",
    list: true,
    help: "a package; default every package under the prefix",
    default: undefined,
    commands: ["publish", "status", "consumers", "rollback", "promote"],
  },
  {
    flag: "to",
    value: "VERSION",
    list: false,
    help: "the layer version to point back at; default the previous one from the history",
    default: undefined,
    commands: ["rollback"],
  },
  {
    flag: "out",
    value: "DIR",
    list: false,
    help: "write each zip to DIR/<key> and call no AWS API",
    default: undefined,
    commands: ["sync"],
  },
  {
    flag: "work-dir",
    value: "DIR",
    list: false,
    help: "where runs are staged",
    default: "$TMPDIR/layer-sync",
    commands: ["sync"],
  },
  {
    flag: "deadline",
    value: "SECONDS",
    list: false,
    help: "end the run cleanly after SECONDS: requests are aborted, nothing is uploaded or pointed to after it, exit 1",
    default: String(DEFAULT_DEADLINE_SECONDS),
    commands: ["sync"],
  },
  {
    flag: "builder",
    value: "auto|docker|local",
    list: false,
    help: "how folders with dependency manifests are built",
    default: "auto",
    commands: ["sync"],
  },
  {
    flag: "dry-run",
    value: undefined,
    list: false,
    help: "build and report the zips; write nothing to S3 or SSM",
    default: undefined,
    commands: ["sync"],
  },
  {
    flag: "smoke",
    value: undefined,
    list: false,
    help: "with --out: import each layer's modules locally with an interpreter of its runtime",
    default: undefined,
    commands: ["sync"],
  },
  {
    flag: "force",
    value: undefined,
    list: false,
    help: "upload even when the content is unchanged",
    default: undefined,
    commands: ["sync"],
  },
  {
    flag: "json",
    value: undefined,
    list: false,
    help: "print the result as JSON, the only output on stdout",
    default: undefined,
    commands: ["sync", "publish", "status", "consumers", "rollback", "promote"],
  },
  {
    flag: "help",
    short: "h",
    value: undefined,
    list: false,
    help: "show this help",
    default: undefined,
    commands: ["sync", "publish", "status", "consumers", "invoke", "rollback", "promote"],
  },
];

export const COMMANDS: Record<CommandName, { summary: string; usage: string }> = {
  sync: {
    summary: "turn the configured folders into zips, S3 objects and artifact-key parameters",
    usage: "layer-sync sync [flags] [--out DIR] [--json]",
  },
  publish: {
    summary: "publish and share the latest artifacts as layer versions, in every Region",
    usage: "layer-sync publish [--package NAME]... [flags] [--json]",
  },
  status: {
    summary: "show what is published and shared where; writes nothing",
    usage: "layer-sync status [--package NAME]... [--regions R,..] [--json]",
  },
  consumers: {
    summary: "list the functions using each package's layer, by account, Region and version; writes nothing",
    usage: "layer-sync consumers [--package NAME]... [--regions R,..] [--json]",
  },
  rollback: {
    summary: "point a package's layer-version-arn back at an earlier version in every Region, without publishing",
    usage: "layer-sync rollback --package NAME [--to VERSION] [--regions R,..] [--json]",
  },
  promote: {
    summary: "release a package's canary version (canary-arn) to everyone in every Region",
    usage: "layer-sync promote --package NAME [flags] [--json]",
  },
  invoke: {
    summary: "run the real Lambda handler in-process with an event file",
    usage: "layer-sync invoke sync|publish EVENT.json",
  },
};

export function isCommand(name: string | undefined): name is CommandName {
  return name !== undefined && Object.hasOwn(COMMANDS, name);
}

/** Every flag a command accepts: its settings' flags in schema order, then its options. */
export function flagsOf(command: CommandName): FlagSpec[] {
  const settings = (Object.keys(SETTINGS) as SettingKey[]).flatMap((key): FlagSpec[] => {
    const s: SettingSpec = SETTINGS[key];
    if (!s.flag || !(s.commands as readonly string[]).includes(SETTINGS_OF[command] ?? command)) return [];
    const spec: FlagSpec = { flag: s.flag, value: s.value, list: s.list, help: s.help, default: s.default, env: s.env };
    // consumers reads no artifact, so it needs no bucket
    if (s.required && command !== "consumers") spec.required = command === "sync" ? s.required : "always";
    return [spec];
  });
  return [...settings, ...OPTIONS.filter((o) => o.commands.includes(command))];
}

/** The commands (other than `command`) that accept `flag`. */
function ownersOf(flag: string, command: CommandName): CommandName[] {
  return (Object.keys(COMMANDS) as CommandName[]).filter(
    (c) => c !== command && flagsOf(c).some((f) => f.flag === flag || f.short === flag),
  );
}

export interface ParsedCommand {
  /** Setting flags and options by flag name: a string, the list of a repeatable flag, or true for a switch. */
  values: Record<string, string | string[] | boolean | undefined>;
  /** Only the flags that set settings, as the settings reader takes them. */
  settings: Record<string, string | string[] | undefined>;
  positionals: string[];
}

/** Parse the arguments after the command name. */
export function parseCommand(command: CommandName, argv: readonly string[]): ParsedCommand {
  const specs = flagsOf(command);
  const accepted = new Set(specs.flatMap((s) => (s.short ? [s.flag, s.short] : [s.flag])));
  const loose = parseArgs({ args: [...argv], strict: false, allowPositionals: true, tokens: true });
  for (const token of loose.tokens) {
    if (token.kind !== "option" || accepted.has(token.name)) continue;
    const owners = ownersOf(token.name, command);
    throw new UsageError(
      owners.length
        ? `${token.rawName} is not a flag of ${command}; it belongs to ${owners.slice(0, -1).join(", ")}${owners.length > 1 ? " and " : ""}${owners.at(-1)}`
        : `unknown flag ${token.rawName} for ${command}`,
    );
  }
  const options: Record<string, { type: "string" | "boolean"; multiple?: boolean; short?: string }> = {};
  for (const s of specs) {
    options[s.flag] = { type: s.value === undefined ? "boolean" : "string", ...(s.list ? { multiple: true } : {}) };
    if (s.short) options[s.flag] = { ...options[s.flag], type: "boolean", short: s.short };
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
  } catch (error) {
    // node's messages run on with advice about "--"; the first sentence is the reason
    const text = error instanceof Error ? error.message : String(error);
    throw new UsageError(text.split(/\.\s/)[0]?.replace(/\.$/, "") ?? text);
  }
  const values = parsed.values as ParsedCommand["values"];
  const settings: ParsedCommand["settings"] = {};
  for (const s of specs) {
    const v = values[s.flag];
    if (s.env !== undefined && (typeof v === "string" || Array.isArray(v))) settings[s.flag] = v;
  }
  return { values, settings, positionals: parsed.positionals };
}

/** A string option's value, if given. */
export function stringOption(parsed: ParsedCommand, flag: string): string | undefined {
  const v = parsed.values[flag];
  return typeof v === "string" ? v : undefined;
}

/** A repeatable option's values. */
export function listOption(parsed: ParsedCommand, flag: string): string[] {
  const v = parsed.values[flag];
  return Array.isArray(v) ? v : typeof v === "string" ? [v] : [];
}

export function noPositionals(parsed: ParsedCommand): void {
  if (parsed.positionals.length) throw new UsageError(`unexpected argument "${parsed.positionals[0]}"`);
}

/** A positive number of seconds (decimals allowed), or `fallback` when the option is not given. */
export function secondsOption(parsed: ParsedCommand, flag: string, fallback: number): number {
  const raw = stringOption(parsed, flag);
  if (raw === undefined) return fallback;
  const seconds = /^\d+(\.\d+)?$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(seconds > 0) || !Number.isFinite(seconds)) {
    throw new UsageError(`--${flag} must be a positive number of seconds (got "${raw}")`);
  }
  return seconds;
}
