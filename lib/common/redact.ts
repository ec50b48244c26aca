/**
 * Process-wide secret registry. Tokens are registered as soon as they are read; every error message and
 * log line passes through `redact()`, which removes the token in its raw, HTTP Basic (base64) and
 * URL-encoded (percent and form) forms. This is a second line of defence: code never formats a token into
 * text on purpose.
 */
const secrets = new Set<string>();
const MASK = "***";

/** `application/x-www-form-urlencoded`, which unlike encodeURIComponent also encodes `!'()~`. */
function formEncode(value: string): string {
  return new URLSearchParams({ v: value }).toString().slice(2);
}

function variants(token: string): string[] {
  const out = new Set<string>([token]);
  out.add(encodeURIComponent(token));
  out.add(formEncode(token));
  out.add(Buffer.from(token, "utf8").toString("base64"));
  const colon = token.indexOf(":");
  if (colon > 0) {
    const secret = token.slice(colon + 1);
    if (secret.length >= 4) {
      out.add(secret);
      out.add(encodeURIComponent(secret));
      out.add(formEncode(secret));
      out.add(Buffer.from(secret, "utf8").toString("base64"));
    }
  }
  return [...out].filter((v) => v.length >= 4);
}

/** Register a secret so that it is scrubbed from every message from now on. */
export function registerSecret(token: string | undefined): void {
  if (!token) return;
  for (const v of variants(token)) secrets.add(v);
}

/** Forget all registered secrets (tests only). */
export function clearSecrets(): void {
  secrets.clear();
}

/** A prefix of a secret longer than this that ends a message (a cut fell inside it) is masked too. */
export const PREFIX_MIN = 9;

/**
 * Replace every registered secret in `text` with `***`, and a prefix of one (over 8 characters) that ends
 * the text, possibly followed by an ellipsis, spaces or punctuation: what is left when a cut fell inside
 * it. Callers redact before they truncate; the prefix rule covers a cut made elsewhere.
 */
export function redact(text: string): string {
  let out = text;
  // longest first, so a Basic form is not half-replaced by its secret part
  const sorted = [...secrets].sort((a, b) => b.length - a.length);
  for (const s of sorted) {
    if (out.includes(s)) out = out.split(s).join(MASK);
  }
  const tail = /[\s.,;:…"')\]}]*$/.exec(out)?.[0] ?? "";
  const body = out.slice(0, out.length - tail.length);
  for (const s of sorted) {
    for (let k = s.length - 1; k >= PREFIX_MIN; k--) {
      if (body.endsWith(s.slice(0, k))) return `${body.slice(0, body.length - k)}${MASK}${tail}`;
    }
  }
  return out;
}

/** Redact, then cut to at most `max` characters (never the other way round: a cut token is not recognised). */
export function redactAndTruncate(text: string, max: number): string {
  const clean = redact(text);
  return clean.length <= max ? clean : `${clean.slice(0, max - 1)}…`;
}

/** A URL for messages: no user info, and signed or token query parameters masked. */
export function safeUrl(url: string | URL): string {
  let u: URL;
  try {
    u = new URL(String(url));
  } catch {
    return redact(String(url));
  }
  u.username = "";
  u.password = "";
  for (const key of [...u.searchParams.keys()]) {
    if (/token|signature|sig|key|secret|credential|auth/i.test(key)) u.searchParams.set(key, MASK);
  }
  return redact(u.toString());
}
