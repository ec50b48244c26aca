import { setImmediate as nextTurn } from "node:timers/promises";
import { crc32, deflateRawSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { DeflatePool } from "../../lib/sync/zip/deflate-pool.ts";
import { pseudoRandomBytes } from "../fixtures/repo.ts";

const text = Buffer.from("def handler(event, context):\n    return {'ok': True}\n".repeat(2000));

describe("the deflate pool", () => {
  it("compresses a burst of entries exactly as zlib's deflateRaw does, each on its own", async () => {
    const pool = new DeflatePool(6);
    const inputs = Array.from({ length: 500 }, (_, i) =>
      i % 2 ? pseudoRandomBytes(1 + ((i * 7919) % 40_000), i) : text.subarray(i, i + 1 + ((i * 131) % 60_000)),
    );
    const out = await Promise.all(inputs.map((d) => pool.deflate(d)));
    for (const [i, d] of inputs.entries())
      expect(out[i]?.equals(deflateRawSync(d, { level: 6 })), `entry ${i}`).toBe(true);
  });

  it("answers entries that arrive one at a time, and large ones", async () => {
    const pool = new DeflatePool(9);
    for (const d of [text, pseudoRandomBytes(3 * 1024 * 1024, 7), Buffer.from("x")]) {
      expect((await pool.deflate(d)).equals(deflateRawSync(d, { level: 9 }))).toBe(true);
      await nextTurn();
    }
  });

  it("inflates entries for verification and answers only their CRC-32 and size, failing each bad one alone", async () => {
    const pool = new DeflatePool(6);
    const inputs = [text, pseudoRandomBytes(200_000, 3), Buffer.from("y")];
    const good = inputs.map((d) => deflateRawSync(d, { level: 6 }));
    const corrupt = Buffer.from(good[0] as Buffer);
    corrupt.fill(0xff, 10, 40);
    const mixed = pool.deflate(text);
    const [a, b, c, bad, short] = await Promise.allSettled([
      ...inputs.map((d, i) => pool.inflateCrc(good[i] as Buffer, d.length)),
      pool.inflateCrc(corrupt, text.length),
      // announced well below what it inflates to: refused, never cut to size
      pool.inflateCrc(good[0] as Buffer, text.length - 10),
    ]);
    for (const [i, r] of [a, b, c].entries()) {
      expect(r).toEqual({
        status: "fulfilled",
        value: { crc: crc32(inputs[i] as Buffer) >>> 0, size: inputs[i]?.length },
      });
    }
    // corrupt DEFLATE either fails to inflate or inflates to other bytes
    expect(bad?.status === "rejected" || bad?.value.crc !== crc32(text) >>> 0).toBe(true);
    expect(short?.status).toBe("rejected");
    // a deflate in the same batch is not affected
    expect((await mixed).equals(good[0] as Buffer)).toBe(true);
  });
});
