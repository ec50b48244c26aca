import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const ROOMS = ["lib", "cli", "handlers", "infra", "scripts"];
/** The pipelines: they never import each other. */
const PIPELINES = ["lib/sync/", "lib/builds/", "lib/publish/"];
/** What the pipelines share: they may import each other and lib/common, never a pipeline. */
const SHARED = ["lib/sources/", "lib/staging/", "lib/zip/", "lib/artifacts/"];

/**
 * How high a file sits: lib/common 0, the shared rooms 1, the pipelines 2, lib/codepipeline (which starts
 * a sync and a publish) 3, the entry points (and infra, scripts) 4.
 */
function rank(file: string): number {
  if (file.startsWith("lib/common/")) return 0;
  if (SHARED.some((p) => file.startsWith(p))) return 1;
  if (PIPELINES.some((p) => file.startsWith(p))) return 2;
  if (file.startsWith("lib/codepipeline/")) return 3;
  return 4;
}

function pipelineOf(file: string): string | undefined {
  return PIPELINES.find((p) => file.startsWith(p));
}

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === "node_modules" || e.name === "cdk.out" ? [] : sources(path);
    return e.name.endsWith(".ts") ? [path] : [];
  });
}

/**
 * The relative modules a file imports. `moduleLevel`: the imports that run when the module loads (static
 * `import`/`export … from`, not `import type`); otherwise every import, `import("…")` and types included.
 */
function importsOf(file: string, moduleLevel: boolean): string[] {
  const text = readFileSync(join(ROOT, file), "utf8");
  const statics = [...text.matchAll(/^(?:import|export)(\s+type)?\s[^;]*?\sfrom\s+"([^"]+)"/gms)];
  const found = [
    ...statics.filter((m) => !moduleLevel || m[1] === undefined).map((m) => m[2] as string),
    ...[...text.matchAll(/^import\s+"([^"]+)"/gm)].map((m) => m[1] as string),
    ...(moduleLevel ? [] : [...text.matchAll(/\bimport\(\s*"([^"]+)"\s*\)/g)].map((m) => m[1] as string)),
  ];
  return found.filter((s) => s.startsWith(".") && s.endsWith(".ts")).map((s) => normalize(join(dirname(file), s)));
}

const files = ROOMS.flatMap(sources);
const graph = new Map(files.map((f) => [f, importsOf(f, true)]));
const everything = new Map(files.map((f) => [f, importsOf(f, false)]));

/**
/** Known exceptions to the length rule: none. A file over 450 lines explains why in its opening comment. */
const KNOWN_LONG: string[] = [];

describe("the import graph of lib/, cli/, handlers/, infra/ and scripts/", () => {
  it("is read from real files", () => {
    expect(everything.get("cli/main.ts")).toContain("cli/sync.ts");
    expect(graph.get("cli/main.ts")).not.toContain("cli/sync.ts"); // loaded on demand
    expect(graph.get("lib/common/config.ts")).toContain("lib/common/settings.ts");
  });

  it("has no cycles at module level", () => {
    const state = new Map<string, "open" | "done">();
    const cycles: string[] = [];
    const visit = (file: string, path: string[]) => {
      if (state.get(file) === "done") return;
      if (state.get(file) === "open") {
        cycles.push([...path.slice(path.indexOf(file)), file].join(" -> "));
        return;
      }
      state.set(file, "open");
      for (const next of graph.get(file) ?? []) visit(next, [...path, file]);
      state.set(file, "done");
    };
    for (const f of files) visit(f, []);
    expect(cycles).toEqual([]);
  });

  const edges = [...everything].flatMap(([from, tos]) => tos.map((to) => [from, to] as const));

  it("has no upward edge: lib/common imports no pipeline, and lib/ imports no handler, CLI, infra or script", () => {
    const upward = edges.filter(([f, t]) => ROOMS.some((r) => t.startsWith(`${r}/`)) && rank(t) > rank(f));
    expect(upward.map(([f, t]) => `${f} -> ${t}`)).toEqual([]);
  });

  it("never points from one pipeline into another, counting dynamic import() and types", () => {
    const across = edges.filter(([f, t]) => pipelineOf(f) && pipelineOf(t) && pipelineOf(f) !== pipelineOf(t));
    expect(across.map(([f, t]) => `${f} -> ${t}`)).toEqual([]);
  });

  it("would see an edge between pipelines", () => {
    expect(pipelineOf("lib/builds/content.ts")).toBe("lib/builds/");
    expect(pipelineOf("lib/zip/writer.ts")).toBeUndefined();
  });

  it("would see an upward edge", () => {
    expect(rank("lib/common/layer-json.ts")).toBeLessThan(rank("lib/zip/writer.ts"));
    expect(rank("lib/artifacts/store.ts")).toBeLessThan(rank("lib/builds/content.ts"));
    expect(rank("lib/sync/sync.ts")).toBeLessThan(rank("handlers/sync.ts"));
    expect(rank("lib/publish/publish.ts")).toBeLessThan(rank("cli/main.ts"));
  });

  it("never points from handlers/ into cli/", () => {
    expect(edges.filter(([f, t]) => f.startsWith("handlers/") && t.startsWith("cli/"))).toEqual([]);
  });
});

describe("source files", () => {
  const LIMIT = 450;
  it(`are at most ${LIMIT} lines outside test/ and bench/, unless their opening comment says why`, () => {
    const long = files.flatMap((f) => {
      const text = readFileSync(join(ROOT, f), "utf8");
      const lines = text.split("\n").length;
      if (lines <= LIMIT || KNOWN_LONG.includes(f)) return [];
      const opening = /^\/\*\*[\s\S]*?\*\//.exec(text)?.[0] ?? "";
      return /longer than \d+ lines because|over \d+ lines because/i.test(opening)
        ? []
        : [`${relative(ROOT, join(ROOT, f))}: ${lines}`];
    });
    expect(long).toEqual([]);
  });

  const HANDLER_LIMIT = 150;
  it(`in handlers/ are each under ${HANDLER_LIMIT} lines: the logic lives in lib/, the handlers only wire it`, () => {
    const handlers = files.filter((f) => f.startsWith("handlers/"));
    expect(handlers).toContain("handlers/sync.ts");
    const long = handlers.flatMap((f) => {
      const lines = readFileSync(join(ROOT, f), "utf8").split("\n").length;
      return lines < HANDLER_LIMIT ? [] : [`${f}: ${lines}`];
    });
    expect(long).toEqual([]);
  });
});
