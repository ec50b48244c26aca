import JSZip from "jszip";
import { describe, expect, it } from "vitest";
import { deterministicZip } from "../../infra/synth.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

describe("the function zips written by npm run synth", () => {
  it("are byte-identical for the same code, whatever the order the files were given in", async () => {
    const a = await deterministicZip(
      new Map([
        ["index.mjs", bytes("export const handler = 1;")],
        ["index.mjs.map", bytes("{}")],
      ]),
    );
    const b = await deterministicZip(
      new Map([
        ["index.mjs.map", bytes("{}")],
        ["index.mjs", bytes("export const handler = 1;")],
      ]),
    );
    expect(Buffer.compare(a, b)).toBe(0);
  });

  it("hold sorted entries at the root with mode 0644 and the fixed 1980 timestamp", async () => {
    const zip = await JSZip.loadAsync(
      await deterministicZip(
        new Map([
          ["index.mjs.map", bytes("{}")],
          ["index.mjs", bytes("x")],
        ]),
      ),
    );
    const entries = Object.values(zip.files);
    expect(entries.map((e) => e.name)).toEqual(["index.mjs", "index.mjs.map"]);
    for (const entry of entries) {
      expect(entry.dir).toBe(false);
      expect(entry.unixPermissions).toBe(0o100644);
      expect(entry.date.toISOString()).toBe("1980-01-01T00:00:00.000Z");
    }
    expect(await zip.file("index.mjs")?.async("string")).toBe("x");
  });
});
