/**
 * The Bitbucket Cloud collection helpers the emulator needs: BBQL filtering (`q`), sorting (`sort`),
 * partial responses (`fields`) and cursor pagination with opaque page tokens.
 */

type Json = unknown;

/** Look up a dotted path (`commit.hash`) in a JSON value. */
function lookup(value: Json, path: string): Json {
  let current: Json = value;
  for (const key of path.split(".")) {
    if (current === null || typeof current !== "object" || Array.isArray(current)) return undefined;
    current = (current as Record<string, Json>)[key];
  }
  return current;
}

// ---------------------------------------------------------------- BBQL

type Literal = string | number | boolean | null;
type Operator = "=" | "!=" | "~" | "!~" | ">" | ">=" | "<" | "<=";
type Expr =
  | { kind: "cmp"; field: string; op: Operator; value: Literal }
  | { kind: "and" | "or"; left: Expr; right: Expr };

type Token = { t: "op"; v: Operator } | { t: "lit"; v: Literal } | { t: "id"; v: string } | { t: "(" } | { t: ")" };

export class BbqlError extends Error {}

const OPERATORS: Operator[] = ["!=", "!~", ">=", "<=", "=", "~", ">", "<"];

function readString(text: string, start: number): { value: string; end: number } {
  let out = "";
  let i = start + 1;
  while (i < text.length && text[i] !== '"') {
    if (text[i] === "\\" && i + 1 < text.length) i += 1;
    out += text[i];
    i += 1;
  }
  if (i >= text.length) throw new BbqlError("unterminated string");
  return { value: out, end: i + 1 };
}

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    if (/\s/.test(c)) {
      i += 1;
    } else if (c === "(" || c === ")") {
      tokens.push({ t: c });
      i += 1;
    } else if (c === '"') {
      const { value, end } = readString(text, i);
      tokens.push({ t: "lit", v: value });
      i = end;
    } else {
      const op = OPERATORS.find((o) => text.startsWith(o, i));
      if (op) {
        tokens.push({ t: "op", v: op });
        i += op.length;
        continue;
      }
      const word = /^[A-Za-z0-9_.+-]+/.exec(text.slice(i))?.[0];
      if (!word) throw new BbqlError(`unexpected character ${c}`);
      tokens.push(wordToken(word));
      i += word.length;
    }
  }
  return tokens;
}

function wordToken(word: string): Token {
  if (word === "true" || word === "false") return { t: "lit", v: word === "true" };
  if (word === "null") return { t: "lit", v: null };
  if (/^-?\d+(\.\d+)?$/.test(word)) return { t: "lit", v: Number(word) };
  return { t: "id", v: word };
}

class Parser {
  private at = 0;
  constructor(private readonly tokens: Token[]) {}

  parse(): Expr {
    const expr = this.or();
    if (this.at < this.tokens.length) throw new BbqlError("unexpected trailing input");
    return expr;
  }

  private peekWord(word: string): boolean {
    const token = this.tokens[this.at];
    return token?.t === "id" && token.v.toLowerCase() === word;
  }

  private or(): Expr {
    let left = this.and();
    while (this.peekWord("or")) {
      this.at += 1;
      left = { kind: "or", left, right: this.and() };
    }
    return left;
  }

  private and(): Expr {
    let left = this.unary();
    while (this.peekWord("and")) {
      this.at += 1;
      left = { kind: "and", left, right: this.unary() };
    }
    return left;
  }

  private unary(): Expr {
    const token = this.tokens[this.at];
    if (token?.t === "(") {
      this.at += 1;
      const inner = this.or();
      if (this.tokens[this.at]?.t !== ")") throw new BbqlError("missing )");
      this.at += 1;
      return inner;
    }
    const [field, op, value] = [this.tokens[this.at], this.tokens[this.at + 1], this.tokens[this.at + 2]];
    if (field?.t !== "id" || op?.t !== "op" || value?.t !== "lit") throw new BbqlError("expected <field> <op> <value>");
    this.at += 3;
    return { kind: "cmp", field: field.v, op: op.v, value: value.v };
  }
}

/** Parse a BBQL expression such as `type = "commit_file" and size > 1024`. */
export function parseBbql(text: string): Expr {
  return new Parser(tokenize(text)).parse();
}

function compareScalar(actual: Json, op: Operator, expected: Literal): boolean {
  switch (op) {
    case "=":
      return actual === expected;
    case "!=":
      return actual !== expected;
    case "~":
      return typeof actual === "string" && actual.toLowerCase().includes(String(expected).toLowerCase());
    case "!~":
      return !(typeof actual === "string" && actual.toLowerCase().includes(String(expected).toLowerCase()));
    default: {
      if (typeof actual !== typeof expected || (typeof actual !== "number" && typeof actual !== "string")) return false;
      const a = actual as number | string;
      const e = expected as number | string;
      if (op === ">") return a > e;
      if (op === ">=") return a >= e;
      if (op === "<") return a < e;
      return a <= e;
    }
  }
}

/** Whether `record` satisfies `expr`. Array fields (`attributes`) match when any element matches. */
export function matchesBbql(expr: Expr, record: Json): boolean {
  if (expr.kind !== "cmp") {
    const left = matchesBbql(expr.left, record);
    return expr.kind === "and" ? left && matchesBbql(expr.right, record) : left || matchesBbql(expr.right, record);
  }
  const actual = lookup(record, expr.field);
  if (Array.isArray(actual)) {
    const negated = expr.op === "!=" || expr.op === "!~";
    const positive: Operator = expr.op === "!=" ? "=" : expr.op === "!~" ? "~" : expr.op;
    const any = actual.some((item) => compareScalar(item, positive, expr.value));
    return negated ? !any : any;
  }
  return compareScalar(actual, expr.op, expr.value);
}

// ---------------------------------------------------------------- sort

/** Sort by one field; a leading `-` reverses (e.g. `-size`). */
export function sortBy<T>(values: T[], sort: string | null): T[] {
  if (!sort) return values;
  const descending = sort.startsWith("-");
  const field = descending ? sort.slice(1) : sort;
  const sorted = [...values].sort((a, b) => {
    const x = lookup(a, field);
    const y = lookup(b, field);
    if (x === y) return 0;
    if (x === undefined || x === null) return 1;
    if (y === undefined || y === null) return -1;
    return (x as number | string) < (y as number | string) ? -1 : 1;
  });
  return descending ? sorted.reverse() : sorted;
}

// ---------------------------------------------------------------- fields

interface FieldTree {
  [key: string]: FieldTree;
}

function addPath(tree: FieldTree, path: string): void {
  let node = tree;
  for (const key of path.split(".")) {
    node[key] ??= {};
    node = node[key] as FieldTree;
  }
}

function prune(value: Json, tree: FieldTree): Json {
  if (Object.keys(tree).length === 0 || tree["*"]) return value;
  if (Array.isArray(value)) return value.map((item) => prune(item, tree));
  if (value === null || typeof value !== "object") return value;
  const out: Record<string, Json> = {};
  for (const [key, child] of Object.entries(tree)) {
    const v = (value as Record<string, Json>)[key];
    if (v !== undefined) out[key] = prune(v, child);
  }
  return out;
}

function remove(value: Json, path: string[]): Json {
  if (Array.isArray(value)) return value.map((item) => remove(item, path));
  if (value === null || typeof value !== "object") return value;
  const [head, ...rest] = path;
  if (head === undefined) return value;
  const out: Record<string, Json> = { ...(value as Record<string, Json>) };
  if (rest.length === 0) delete out[head];
  else if (out[head] !== undefined) out[head] = remove(out[head], rest);
  return out;
}

/**
 * Apply a partial-response `fields` parameter: `-links` removes, `+x` adds (everything is already there),
 * and any bare name turns the response into an include-only projection (`values.path,next`).
 */
export function applyFields(value: Json, fields: string | null): Json {
  if (!fields) return value;
  const terms = fields
    .split(",")
    .map((t) => t.trim())
    .filter((t) => t !== "");
  const includes = terms.filter((t) => !t.startsWith("-") && !t.startsWith("+"));
  let out = value;
  if (includes.length > 0) {
    const tree: FieldTree = {};
    for (const t of terms.filter((t) => !t.startsWith("-"))) addPath(tree, t.replace(/^\+/, ""));
    out = prune(out, tree);
  }
  for (const t of terms.filter((t) => t.startsWith("-"))) out = remove(out, t.slice(1).split("."));
  return out;
}

// ---------------------------------------------------------------- pagination

const DEFAULT_PAGELEN = 10;
const MAX_PAGELEN = 100;

function encodePageToken(offset: number): string {
  return Buffer.from(JSON.stringify({ o: offset, k: (offset * 2654435761) % 4294967296 })).toString("base64url");
}

function decodePageToken(token: string): number | undefined {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
    if (parsed && typeof parsed === "object" && "o" in parsed && typeof parsed.o === "number" && parsed.o >= 0) {
      return parsed.o;
    }
  } catch {
    // not a token we issued
  }
  return undefined;
}

/** `pagelen` as Bitbucket applies it: default 10, at least 10, at most 100. */
export function effectivePagelen(raw: string | null): number | undefined {
  if (raw === null) return DEFAULT_PAGELEN;
  if (!/^\d+$/.test(raw)) return undefined;
  return Math.min(MAX_PAGELEN, Math.max(DEFAULT_PAGELEN, Number(raw)));
}

export type PageResult = { ok: true; page: Record<string, Json> } | { ok: false; message: string };

/**
 * Cut one page out of `values` for the request `url` (on the emulator's own origin). `page` and `size` appear
 * on the first page only, `next` is absolute and opaque, and the last page has no `next`.
 */
export function paginate(values: Json[], url: URL): PageResult {
  const pagelen = effectivePagelen(url.searchParams.get("pagelen"));
  if (pagelen === undefined) return { ok: false, message: "Invalid pagelen" };
  return paginateUpTo(values, url, pagelen);
}

/** `paginate` with a page length already decided (resources with their own limits, such as diffstat's 500). */
export function paginateUpTo(values: Json[], url: URL, pagelen: number): PageResult {
  const token = url.searchParams.get("page");
  const offset = token === null ? 0 : decodePageToken(token);
  if (offset === undefined) return { ok: false, message: `Invalid page: ${token}` };
  const page: Record<string, Json> = { pagelen, values: values.slice(offset, offset + pagelen) };
  if (offset === 0) {
    page.page = 1;
    page.size = values.length;
  }
  if (offset + pagelen < values.length) {
    const next = new URL(url.href);
    next.searchParams.set("page", encodePageToken(offset + pagelen));
    page.next = next.href;
  }
  return { ok: true, page };
}
