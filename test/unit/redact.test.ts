import { afterEach, describe, expect, it } from "vitest";
import { describeError, SourceError } from "../../lib/common/errors.ts";
import { clearSecrets, redact, registerSecret, safeUrl } from "../../lib/common/redact.ts";
import { authorizationFor } from "../../lib/sources/common.ts";

afterEach(() => clearSecrets());

describe("redact", () => {
  it("removes a registered token in its raw, URL-encoded and Basic forms", () => {
    const token = "me@acme.com:s3cr3t/+=token";
    registerSecret(token);
    const basic = Buffer.from(token).toString("base64");
    const text = `raw ${token} url ${encodeURIComponent(token)} basic ${basic} secret-part s3cr3t/+=token`;
    const out = redact(text);
    expect(out).not.toContain("s3cr3t");
    expect(out).not.toContain(basic);
    expect(out).not.toContain(encodeURIComponent("s3cr3t/+=token"));
  });

  it("scrubs error messages built by the error classes", () => {
    registerSecret("tok-abcdef-123");
    expect(new SourceError("failed with tok-abcdef-123").message).toBe("failed with ***");
    expect(describeError(new Error("line one\n tok-abcdef-123"))).toBe("line one ***");
  });
});

describe("safeUrl", () => {
  it("drops user info and masks token-like query parameters", () => {
    expect(safeUrl("https://u:p@codeload.example/x.tar.gz?token=abc&ref=main")).toBe(
      "https://codeload.example/x.tar.gz?token=***&ref=main",
    );
  });
});

describe("authorizationFor", () => {
  it("sends user:secret as Basic and anything else as Bearer", () => {
    expect(authorizationFor("me@acme.com:tok")).toBe(`Basic ${Buffer.from("me@acme.com:tok").toString("base64")}`);
    expect(authorizationFor("ghp_abc")).toBe("Bearer ghp_abc");
    expect(authorizationFor(undefined)).toBeUndefined();
  });
});

describe("redact at a cut", () => {
  it("masks a prefix of the token over 8 characters that ends a message, and the base64 of the secret part", () => {
    registerSecret("me@acme.com:abcdefghijklmnopqrstuvw");
    expect(redact("failed: abcdefghij")).toBe("failed: ***");
    expect(redact("failed: abcdefghijklm…")).toBe("failed: ***…");
    expect(redact("short abcdefgh")).toBe("short abcdefgh"); // 8 characters say nothing
    const b64 = Buffer.from("abcdefghijklmnopqrstuvw").toString("base64");
    expect(redact(`secret part ${b64} sent`)).toBe("secret part *** sent");
    expect(redact(`cut ${b64.slice(0, 12)}`)).toBe("cut ***");
  });
});
