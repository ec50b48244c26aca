import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { SETTINGS } from "../../lib/common/settings.ts";
import { settingsTable, TABLE_END, TABLE_START } from "../../scripts/settings-table.ts";

describe("README's configuration table", () => {
  it("is exactly the table scripts/settings-table.ts generates from the schema", () => {
    const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
    const start = readme.indexOf(TABLE_START);
    const end = readme.indexOf(TABLE_END);
    expect(start).toBeGreaterThan(0);
    expect(readme.slice(start + TABLE_START.length, end).trim()).toBe(settingsTable());
  });

  it("has one row per setting", () => {
    expect(settingsTable().split("\n")).toHaveLength(Object.keys(SETTINGS).length + 2);
  });
});
