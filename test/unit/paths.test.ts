import { describe, expect, it } from "vitest";
import { PathSafetyError } from "../../lib/common/errors.ts";
import { checkRelativePath, checkSymlinkTarget, relativeTo } from "../../lib/common/paths.ts";

describe("checkRelativePath", () => {
  it("accepts plain relative names, including awkward characters", () => {
    for (const ok of ["a.txt", "dir/sub/file", "name with spaces", "hash#%+ünï.txt"])
      expect(checkRelativePath(ok, "f")).toBe(ok);
  });

  it.each([
    ["../up", /"\.\." segment/],
    ["a/../../b", /"\.\." segment/],
    ["/etc/passwd", /absolute path/],
    ["a\\b", /backslash/],
    ["a\0b", /NUL byte/],
    ["a//b", /empty or "\." segment/],
    ["./a", /empty or "\." segment/],
    ["C:/x", /drive-letter/],
  ])("rejects %j, naming the entry and the folder", (name, why) => {
    expect(() => checkRelativePath(name, "layers/x")).toThrow(PathSafetyError);
    expect(() => checkRelativePath(name, "layers/x")).toThrow(why);
    expect(() => checkRelativePath(name, "layers/x")).toThrow(/in folder "layers\/x"/);
  });
});

describe("checkSymlinkTarget", () => {
  it("accepts targets that stay inside the folder", () => {
    expect(checkSymlinkTarget("bin/current", "run.sh", "f")).toBe("run.sh");
    expect(checkSymlinkTarget("python/x/link", "../../bin/run.sh", "f")).toBe("../../bin/run.sh");
  });

  it("rejects targets that leave the folder or are absolute", () => {
    expect(() => checkSymlinkTarget("evil", "../../etc/passwd", "f")).toThrow(/leaves the folder/);
    expect(() => checkSymlinkTarget("a/b", "../../x", "f")).toThrow(/leaves the folder/);
    expect(() => checkSymlinkTarget("abs", "/etc/passwd", "f")).toThrow(/absolute path/);
    expect(() => checkSymlinkTarget("e", "", "f")).toThrow(/empty target/);
  });
});

describe("relativeTo", () => {
  it("returns the path inside a folder, or undefined outside it", () => {
    expect(relativeTo("layers/a", "layers/a/x/y")).toBe("x/y");
    expect(relativeTo("layers/a", "layers/ab/x")).toBeUndefined();
    expect(relativeTo("layers/a", "layers/a")).toBeUndefined();
  });
});
