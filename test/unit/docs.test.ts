/** The documents: a short README, links that lead somewhere, and every public setting in docs/configuration.md. */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const README = join(ROOT, "README.md");
const DOCS = join(ROOT, "docs");

/**
 * The configuration table of the public interface (variable, CLI flag), vendored from the interface document
 * (the project never reads that document at test time). `undefined` marks a setting without a flag.
 */
const PUBLIC_SETTINGS: readonly (readonly [string, string | undefined])[] = [
  ["SOURCE_PROVIDER", "--provider"],
  ["SOURCE_REPOSITORY", "--repository"],
  ["SOURCE_REF", "--ref"],
  ["SOURCE_PATHS", "--path"],
  ["SOURCE_API_URL", "--api-url"],
  ["SOURCE_WEB_URL", "--web-url"],
  ["SOURCE_STRATEGY", "--strategy"],
  ["TOKEN_PARAMETER_NAME", "--token-parameter"],
  ["SOURCE_TOKEN", undefined],
  ["ARTIFACT_BUCKET", "--bucket"],
  ["ARTIFACT_PREFIX", "--prefix"],
  ["PARAMETER_PREFIX", "--parameter-prefix"],
  ["PIPELINE_NAME", undefined],
  ["LAYER_NAME_PREFIX", "--layer-prefix"],
  ["COMPATIBLE_RUNTIMES", "--runtimes"],
  ["COMPATIBLE_ARCHITECTURES", "--architectures"],
  ["SHARE_ORGANIZATION_ID", "--share-org"],
  ["SHARE_OU_IDS", "--share-ou"],
  ["SHARE_ACCOUNT_IDS", "--share-account"],
  ["RETAIN_VERSIONS", "--retain"],
];

/** The Markdown documents whose links are checked: the README and every file in docs/. */
function documents(): string[] {
  const docs = readdirSync(DOCS)
    .filter((name) => name.endsWith(".md"))
    .map((name) => join(DOCS, name));
  return [README, join(ROOT, "DEVELOPERS.md"), ...docs];
}

/** The text outside fenced code blocks, with inline code spans blanked, line by line. */
function prose(markdown: string): string[] {
  let fenced = false;
  return markdown.split("\n").map((line) => {
    if (/^\s*```/.test(line)) {
      fenced = !fenced;
      return "";
    }
    return fenced ? "" : line.replace(/`[^`]*`/g, "``");
  });
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  let fenced = false;
  for (const line of markdown.split("\n")) {
    if (/^\s*```/.test(line)) fenced = !fenced;
    const heading = fenced ? null : /^#{1,6} (.+)$/.exec(line);
    if (!heading?.[1]) continue;
    const text = heading[1].replace(/\[([^\]]*)\]\([^)]*\)/g, "$1");
    const slug = text
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, "")
      .replace(/\s/g, "-");
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    result.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return result;
}

/** Every relative link target of a document: `[text](target)` outside code, without web or mail links. */
function relativeLinks(markdown: string): string[] {
  const targets: string[] = [];
  for (const line of prose(markdown)) {
    for (const match of line.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
      const target = match[1] ?? "";
      if (!/^[a-z][a-z0-9+.-]*:/i.test(target)) targets.push(target);
    }
  }
  return targets;
}

/** The links of one document that lead nowhere: a missing file, or a heading the target does not have. */
function brokenLinks(file: string): string[] {
  const markdown = readFileSync(file, "utf8");
  const broken: string[] = [];
  for (const target of relativeLinks(markdown)) {
    const [path = "", anchor] = target.split("#", 2);
    const resolved = path === "" ? file : join(dirname(file), decodeURIComponent(path));
    if (!existsSync(resolved)) {
      broken.push(`${target} (no such file)`);
      continue;
    }
    const isMarkdown = statSync(resolved).isFile() && resolved.endsWith(".md");
    if (anchor !== undefined && isMarkdown && !anchors(readFileSync(resolved, "utf8")).has(anchor)) {
      broken.push(`${target} (no such heading in ${relative(ROOT, resolved)})`);
    }
  }
  return broken;
}

describe("README.md", () => {
  const readme = readFileSync(README, "utf8");

  it("is a five-minute read: at most 150 lines", () => {
    expect(readme.trimEnd().split("\n").length).toBeLessThanOrEqual(150);
  });

  it("links to every document in docs/", () => {
    const linked = new Set(relativeLinks(readme).map((target) => target.split("#")[0]));
    const unlinked = readdirSync(DOCS)
      .filter((name) => name.endsWith(".md"))
      .filter((name) => !linked.has(`docs/${name}`));
    expect(unlinked).toEqual([]);
  });
});

describe("docs/configuration.md", () => {
  it("documents every setting of the public configuration table, by variable and by flag", () => {
    const text = readFileSync(join(DOCS, "configuration.md"), "utf8");
    const missing = PUBLIC_SETTINGS.flatMap(([variable, flag]) =>
      [variable, flag].filter((name): name is string => name !== undefined && !text.includes(`\`${name}`)),
    );
    expect(missing).toEqual([]);
  });
});

describe("the links in README.md, DEVELOPERS.md and docs/*.md", () => {
  it("are found in every document that has them", () => {
    expect(relativeLinks(readFileSync(README, "utf8")).length).toBeGreaterThan(10);
    expect(relativeLinks("see [a](b.md), `[not](code.md)` and [web](https://example.com)")).toEqual(["b.md"]);
  });

  it("name the anchors GitHub gives headings", () => {
    const heading = anchors("# Route 1: `cdk deploy`\n## Settings (CDK context keys)\n## Summary\n## Summary\n");
    expect([...heading]).toEqual(["route-1-cdk-deploy", "settings-cdk-context-keys", "summary", "summary-1"]);
  });

  it.each(documents().map((file) => [relative(ROOT, file), file]))(
    "in %s resolve to a file and a heading",
    (_, file) => {
      expect(brokenLinks(file)).toEqual([]);
    },
  );
});
