/**
 * The PEP 508 and pip syntax layer-sync checks itself before a requirement file reaches any tool:
 * environment markers (https://peps.python.org/pep-0508/#environment-markers), parsed and written back in
 * canonical form, and pip's joining of `\`-continued lines.
 */

/** The marker variables of PEP 508 (and `extras`/`dependency_groups` of PEP 751). */
const MARKER_VARIABLES = new Set([
  "python_version",
  "python_full_version",
  "os_name",
  "sys_platform",
  "platform_release",
  "platform_system",
  "platform_version",
  "platform_machine",
  "platform_python_implementation",
  "implementation_name",
  "implementation_version",
  "extra",
  "extras",
  "dependency_groups",
]);

/** Lines joined as pip joins them (a trailing `\` continues a line), with the number of their first line. */
export function logicalLines(text: string): [number, string][] {
  const out: [number, string][] = [];
  let pending: string[] = [];
  let first = 0;
  const comment = /^\s*#/;
  text.split(/\r\n|\n|\r/).forEach((line, i) => {
    const number = i + 1;
    if (!line.endsWith("\\") || comment.test(line)) {
      const l = comment.test(line) ? ` ${line}` : line;
      if (pending.length) {
        pending.push(l);
        out.push([first, pending.join("")]);
        pending = [];
      } else out.push([number, l]);
    } else {
      if (!pending.length) first = number;
      pending.push(line.replace(/^\\+|\\+$/g, ""));
    }
  });
  if (pending.length) out.push([first, pending.join("")]);
  return out;
}

type MarkerToken = { kind: "str" | "var" | "op" | "and" | "or" | "(" | ")"; text: string };

function markerTokens(text: string): MarkerToken[] | null {
  const out: MarkerToken[] = [];
  const re = /\s*(?:('[^']*'|"[^"]*")|(===|==|!=|<=|>=|~=|<|>)|(not\s+in\b)|([A-Za-z_.]+)|([()]))/y;
  let i = 0;
  while (i < text.length) {
    if (/^\s*$/.test(text.slice(i))) break;
    re.lastIndex = i;
    const m = re.exec(text);
    if (!m) return null;
    i = re.lastIndex;
    if (m[1] !== undefined) out.push({ kind: "str", text: m[1] });
    else if (m[2] !== undefined) out.push({ kind: "op", text: m[2] });
    else if (m[3] !== undefined) out.push({ kind: "op", text: "not in" });
    else if (m[5] !== undefined) out.push({ kind: m[5] === "(" ? "(" : ")", text: m[5] });
    else {
      const word = m[4] ?? "";
      if (word === "and" || word === "or") out.push({ kind: word, text: word });
      else if (word === "in") out.push({ kind: "op", text: "in" });
      else if (MARKER_VARIABLES.has(word)) out.push({ kind: "var", text: word });
      else return null;
    }
  }
  return out;
}

/** The canonical text of a PEP 508 marker, or null when it is not one. */
export function checkMarker(text: string): string | null {
  const tokens = markerTokens(text);
  if (!tokens || tokens.length === 0) return null;
  let i = 0;
  const value = (): string | null => {
    const t = tokens[i];
    if (t?.kind !== "str" && t?.kind !== "var") return null;
    i++;
    return t.text;
  };
  const expr = (): string | null => {
    if (tokens[i]?.kind === "(") {
      i++;
      const inner = or();
      if (inner === null || tokens[i]?.kind !== ")") return null;
      i++;
      return `(${inner})`;
    }
    const left = value();
    const op = tokens[i];
    if (left === null || op?.kind !== "op") return null;
    i++;
    const right = value();
    return right === null ? null : `${left} ${op.text} ${right}`;
  };
  const chain = (next: () => string | null, kind: "and" | "or"): string | null => {
    let out = next();
    while (out !== null && tokens[i]?.kind === kind) {
      i++;
      const more = next();
      out = more === null ? null : `${out} ${kind} ${more}`;
    }
    return out;
  };
  const and = () => chain(expr, "and");
  const or = (): string | null => chain(and, "or");
  const result = or();
  return result !== null && i === tokens.length ? result : null;
}

/** Split `requirement ; marker` (a URL's `;` only counts after whitespace, as in PEP 508). */
export function markerSplit(text: string): { body: string; marker?: string } {
  const url = /@\s*\S+/.test(text) || /^[A-Za-z][A-Za-z0-9+.-]*:/.test(text);
  const at = url ? text.search(/\s;/) : text.indexOf(";");
  if (at < 0) return { body: text };
  const cut = url ? at + text.slice(at).indexOf(";") : at;
  return { body: text.slice(0, cut), marker: text.slice(cut + 1) };
}
