import { describe, expect, it } from "vitest";
import { ephemeralStorageMiB } from "../../infra/constructs/ephemeral.ts";

const MIB = 1024 * 1024;

describe("the sync function's ephemeral storage", () => {
  it("holds one package's staged bytes and its zip with a 1.3 margin, plus 512 MiB of headroom", () => {
    expect(ephemeralStorageMiB()).toBe(Math.ceil(2 * 250 * 1.3) + 512);
    expect(ephemeralStorageMiB(1024 * MIB)).toBe(Math.ceil(2 * 1024 * 1.3) + 512);
  });

  it("does not depend on the package count and stays within Lambda's 512-10240 MB", () => {
    expect(ephemeralStorageMiB(0)).toBe(512);
    expect(ephemeralStorageMiB(10 * 1024 * MIB)).toBe(10_240);
  });
});
