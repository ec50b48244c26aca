import { describe, expect, it } from "vitest";
import { formatBytes, LAMBDA_UNZIPPED_MAX_BYTES, nearLimitWarning } from "../../lib/common/sizes.ts";

describe("formatBytes", () => {
  it("writes sizes in binary units, so Lambda's limit reads as the 250 MiB it is", () => {
    expect(formatBytes(999)).toBe("999 B");
    expect(formatBytes(1536)).toBe("1.5 KiB");
    expect(formatBytes(LAMBDA_UNZIPPED_MAX_BYTES)).toBe("250.0 MiB");
    expect(formatBytes(3 * 1024 ** 3)).toBe("3.0 GiB");
  });
});

describe("nearLimitWarning", () => {
  it("warns from 80 % of Lambda's 250 MiB on, naming the size and the share", () => {
    expect(nearLimitWarning(null)).toBeUndefined();
    expect(nearLimitWarning(0.8 * LAMBDA_UNZIPPED_MAX_BYTES - 1)).toBeUndefined();
    expect(nearLimitWarning(0.8 * LAMBDA_UNZIPPED_MAX_BYTES)).toBe(
      "the layer is 200.0 MiB unzipped, 80 % of Lambda's 250 MiB for a function and all its layers together; split it or drop dependencies before it stops fitting",
    );
    expect(nearLimitWarning(LAMBDA_UNZIPPED_MAX_BYTES)).toMatch(/^the layer is 250\.0 MiB unzipped, 100 % /);
  });
});
