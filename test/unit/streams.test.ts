import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { LimitExceededError } from "../../lib/common/errors.ts";
import { readAll, readAllText } from "../../lib/common/streams.ts";

const chunks = (...parts: (string | Uint8Array)[]) => Readable.from(parts, { objectMode: true });

describe("readAll", () => {
  it("joins every chunk, whether Buffer, Uint8Array or string", async () => {
    const bytes = await readAll(chunks(Buffer.from("ab"), new Uint8Array([99]), "dé"));
    expect(bytes.toString("utf8")).toBe("abcdé");
  });

  it("reads a body of exactly the limit", async () => {
    expect(await readAll(chunks("abc", "def"), { limit: 6 })).toEqual(Buffer.from("abcdef"));
  });

  it("fails with a LimitExceededError naming the limit when the body is one byte over", async () => {
    const read = readAll(chunks("abc", "defg"), { limit: 6 });
    await expect(read).rejects.toBeInstanceOf(LimitExceededError);
    await expect(readAll(chunks("abcdefg"), { limit: 6 })).rejects.toThrow("body larger than 6 bytes");
  });

  it("keeps the first bytes up to the limit and drains the rest when told to truncate", async () => {
    const body = chunks("abc", "def", "ghi");
    expect(await readAll(body, { limit: 5, truncate: true })).toEqual(Buffer.from("abcde"));
    expect(body.readableEnded).toBe(true);
  });
});

describe("readAllText", () => {
  it("decodes the bytes as UTF-8, including a character split across chunks", async () => {
    const euro = Buffer.from("€");
    expect(await readAllText(chunks(euro.subarray(0, 1), euro.subarray(1)))).toBe("€");
  });
});
