import { describe, expect, it } from "vitest";
import { deterministicZip } from "../../infra/synth.ts";
import { readZip } from "../support/zip.ts";

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

  it("hold sorted entries at the root with mode 0644 and the fixed 1980 timestamp, read by standard readers", async () => {
    const zip = await deterministicZip(
      new Map([
        ["index.mjs.map", bytes("{}")],
        ["index.mjs", bytes("x")],
      ]),
    );
    // yauzl (CRC-32), the APPNOTE record checks, unzip -t and zipfile
    const entries = await readZip(zip);
    expect(entries.map((e) => [e.name, e.mode])).toEqual([
      ["index.mjs", 0o100644],
      ["index.mjs.map", 0o100644],
    ]);
    expect(entries[0]?.content.toString()).toBe("x");
    // DOS date and time of 1980-01-01 00:00:00 in the first local header
    expect([zip.readUInt16LE(10), zip.readUInt16LE(12)]).toEqual([0, 0x21]);
  });
});
