import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { SETTINGS } from "../../lib/common/settings.ts";
import { settingsTable, TABLE_END, TABLE_FILE, TABLE_START } from "../../scripts/settings-table.ts";

describe("the configuration table in docs/configuration.md", () => {
  it("is exactly the table scripts/settings-table.ts generates from the schema", () => {
    const doc = readFileSync(new URL(`../../${TABLE_FILE}`, import.meta.url), "utf8");
    const start = doc.indexOf(TABLE_START);
    const end = doc.indexOf(TABLE_END);
    expect(start).toBeGreaterThan(0);
    expect(doc.slice(start + TABLE_START.length, end).trim()).toBe(settingsTable());
  });

  it("has one row per setting", () => {
    expect(settingsTable().split("\n")).toHaveLength(Object.keys(SETTINGS).length + 2);
  });
});
