import { setImmediate as nextTurn } from "node:timers/promises";
import { deflateRawSync } from "node:zlib";
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
});
