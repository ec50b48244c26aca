/**
 * Commands for people to copy into a POSIX shell: words quoted only when they need it, the setting flags of a
 * run rebuilt as arguments for another command, and a long command wrapped at a width with `\` continuations
 * that the shell joins back into the same words.
 */
import { type Command, SETTINGS, type SettingKey } from "./settings.ts";

/** Characters that never need quoting in a POSIX shell word (no `~` at the start, no glob, no `$`). */
const PLAIN = /^[A-Za-z0-9_./:=,@%+-]+$/;

/** One shell word: as it is when it is plain, single-quoted otherwise (`'` written as `'\''`). */
export function shellQuote(word: string): string {
  return PLAIN.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`;
}

/** Setting flags as a command line reads them (`ParsedCommand.settings`): a value, or a repeatable flag's values. */
export type SettingFlags = Readonly<Record<string, string | readonly string[] | undefined>>;

/**
 * The arguments that give `command` the settings of `flags` that it reads, in schema order, a list flag
 * repeated once per value: `["--bucket", "b", "--regions", "eu-west-1", "--regions", "us-east-1"]`. Flags
 * `command` does not read are left out (it would exit 2 on them).
 */
export function settingArguments(command: Command, flags: SettingFlags): string[] {
  const out: string[] = [];
  for (const key of Object.keys(SETTINGS) as SettingKey[]) {
    const spec = SETTINGS[key];
    const given = spec.flag === undefined ? undefined : flags[spec.flag];
    if (spec.flag === undefined || given === undefined || !(spec.commands as readonly Command[]).includes(command))
      continue;
    for (const value of typeof given === "string" ? [given] : given) out.push(`--${spec.flag}`, value);
  }
  return out;
}

/** Words as one command line, each quoted when it needs it. */
export function commandLine(words: readonly string[]): string {
  return words.map(shellQuote).join(" ");
}

/**
 * `words` as shell lines of at most `width` columns, the first starting with `lead`: words joined by spaces, a
 * line broken between words (a flag kept with its value) with ` \` and the next indented by `indent` spaces.
 * A word too long for a line of its own is cut into pieces, each quoted alone, that end in `\` and continue at
 * the start of the next line, where the shell joins them into the one word again.
 */
export function wrapCommand(words: readonly string[], width: number, lead = "", indent = 4): string[] {
  const lines: string[] = [];
  let line = lead;
  let empty = true; // no word on `line` yet
  for (const [at, word] of words.entries()) {
    const quoted = shellQuote(word);
    // a flag goes to the next line with its value when the value would not fit after it
    const next = words[at + 1];
    const value = word.startsWith("--") && next !== undefined && !next.startsWith("--") ? shellQuote(next) : "";
    const pair = value ? quoted.length + 1 + value.length : quoted.length;
    const room = width - 2 - line.length - (empty ? 0 : 1); // and " \" when something follows
    if (quoted.length <= room && (empty || pair <= room || indent + pair > width - 2)) {
      line = empty ? `${line}${quoted}` : `${line} ${quoted}`;
      empty = false;
      continue;
    }
    if (!empty) {
      lines.push(`${line} \\`);
      line = " ".repeat(indent);
      if (line.length + quoted.length + 2 <= width) {
        line = `${line}${quoted}`;
        continue;
      }
    }
    const pieces = cutWord(word, width - line.length - 2);
    const last = pieces.pop() ?? "";
    for (const [i, piece] of pieces.entries()) lines.push(`${i === 0 ? line : ""}${piece}\\`);
    line = pieces.length ? last : `${line}${last}`;
    empty = false;
  }
  if (!empty || line) lines.push(line);
  return lines;
}

/** `word` as quoted pieces of at most `width` characters whose concatenation the shell reads as `word`. */
function cutWord(word: string, width: number): string[] {
  const pieces: string[] = [];
  let piece = "";
  for (const char of word) {
    if (piece && `'${`${piece}${char}`.replaceAll("'", "'\\''")}'`.length > Math.max(width, 8)) {
      pieces.push(`'${piece.replaceAll("'", "'\\''")}'`);
      piece = "";
    }
    piece += char;
  }
  pieces.push(`'${piece.replaceAll("'", "'\\''")}'`);
  return pieces;
}

/**
 * Prose wrapped at `width` columns between words, keeping its leading spaces; later lines start with `indent`.
 * A word longer than a line is cut.
 */
export function wrapText(text: string, width: number, indent = ""): string[] {
  const lead = /^ */.exec(text)?.[0] ?? "";
  const lines: string[] = [];
  let line = lead;
  let empty = true; // no word on `line` yet
  for (const word of text.slice(lead.length).split(" ")) {
    if (!empty && line.length + 1 + word.length <= width) {
      line = `${line} ${word}`;
      continue;
    }
    if (!empty) {
      lines.push(line);
      line = indent;
    }
    let rest = `${line}${word}`;
    while (rest.length > width && width > Math.max(line.length, indent.length)) {
      lines.push(rest.slice(0, width));
      rest = `${indent}${rest.slice(width)}`;
    }
    line = rest;
    empty = false;
  }
  lines.push(line);
  return lines;
}
