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

/** Replace every registered secret in `text` with `***`. */
export function redact(text: string): string {
  let out = text;
  // longest first, so a Basic form is not half-replaced by its secret part
  for (const s of [...secrets].sort((a, b) => b.length - a.length)) {
    if (out.includes(s)) out = out.split(s).join(MASK);
  }
  return out;
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
