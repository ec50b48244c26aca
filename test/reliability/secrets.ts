/**
 * Token containment for the reliability suite. Every reliability test file calls `watchSecrets()` once: it
 * registers the suite's tokens, captures the handlers' Powertools logs at DEBUG (`captureHandlerLogs`: kept,
 * not printed), and in `afterAll` asserts that nothing scanned during the file contained a token in any form, and that
 * something was scanned at all. In between, tests pass every log line, error message, summary and CLI output
 * they capture through `scan()`, which also fails the test at once when it finds a token.
 *
 * The forms looked for: the token itself, its HTTP Basic form (base64 of `user:secret`), its URL-encoded
 * forms (`encodeURIComponent` and `application/x-www-form-urlencoded`), and for `user:secret` tokens the
 * secret part alone in each of those forms. The tokens deliberately hold characters URL-encoding changes.
 */
import { afterAll, beforeAll, expect } from "vitest";
import { type CapturedLogs, captureHandlerLogs } from "../support/logs.ts";

/** A Bitbucket repository access token, sent as `Bearer` (no colon). */
export const BITBUCKET_TOKEN = "bbAT/R3l+1abl3=t0k3n~!(x)*'%2F";
/** A Bitbucket API token, stored as `email:token` and sent as HTTP Basic. */
export const BITBUCKET_API_USER = "on-call+ops@example.com";
export const BITBUCKET_API_SECRET = "ATATT3x/Fv+Y0ur=S3cr3t&p@ss%?#";
export const BITBUCKET_BASIC_TOKEN = `${BITBUCKET_API_USER}:${BITBUCKET_API_SECRET}`;
/** A GitHub token (the emulator accepts any string), with characters URL-encoding changes. */
export const GITHUB_TOKEN = "ghp_R3liab1lity/T0k3n+with=odd&chars%20~";

const tokens = new Set<string>([BITBUCKET_TOKEN, BITBUCKET_BASIC_TOKEN, GITHUB_TOKEN]);

/** Add a token to look for (for example one created by a test). */
export function watchToken(token: string): void {
  tokens.add(token);
}

function formEncode(value: string): string {
  return new URLSearchParams({ v: value }).toString().slice(2);
}

/** Every form in which a token must never appear. */
export function forms(token: string): string[] {
  const out = new Set<string>();
  const add = (v: string) => {
    out.add(v);
    out.add(encodeURIComponent(v));
    out.add(formEncode(v));
    out.add(Buffer.from(v, "utf8").toString("base64"));
  };
  add(token);
  const colon = token.indexOf(":");
  if (colon > 0) {
    const secret = token.slice(colon + 1);
    out.add(secret);
    out.add(encodeURIComponent(secret));
    out.add(formEncode(secret));
  }
  return [...out].filter((v) => v.length >= 6);
}

/** The token forms found in `text`. */
export function leaksIn(text: string): string[] {
  const found: string[] = [];
  for (const token of tokens) for (const f of forms(token)) if (text.includes(f)) found.push(f);
  return found;
}

const scanned: { label: string; text: string }[] = [];

/** Record `value` (text, or anything JSON can show) and fail at once if it holds a token in any form. */
export function scan(label: string, value: unknown): string {
  const text = typeof value === "string" ? value : value instanceof Error ? errorText(value) : safeJson(value);
  scanned.push({ label, text });
  expect(leaksIn(text), `${label} leaks a token`).toEqual([]);
  return text;
}

function errorText(error: Error): string {
  return `${error.name}: ${error.message}\n${error.stack ?? ""}`;
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** The number of texts scanned so far in this file. */
export function scannedCount(): number {
  return scanned.length;
}

/**
 * Hook the current test file into the scan: process output is captured for the file's lifetime, and the
 * final assertion runs after all its tests.
 */
export function watchSecrets(): void {
  let logs: CapturedLogs | undefined;
  beforeAll(() => {
    // the handlers log at DEBUG here, into the capture (the test output stays clean), so every line is scanned
    logs = captureHandlerLogs("DEBUG");
  });
  afterAll(() => {
    for (const chunk of logs?.chunks() ?? []) scanned.push({ label: `process ${chunk.stream}`, text: chunk.text });
    logs?.restore();
    expect(scanned.length, "the file scanned nothing for tokens").toBeGreaterThan(0);
    const leaks = scanned.flatMap((s) => leaksIn(s.text).map((f) => `${s.label}: ${f}`));
    expect(leaks, "a token appeared in captured output").toEqual([]);
  });
}
