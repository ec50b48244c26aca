/**
 * CodeBuild on moto for the build tests: the stack's two projects (LINUX_CONTAINER and ARM_CONTAINER,
 * BUILD_GENERAL1_SMALL, S3 source and artifacts), and a capture of every request a client sends, since moto
 * ignores StartBuild's overrides and the tests must assert them exactly.
 */
import { execFile } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { CodeBuildClient, CreateProjectCommand } from "@aws-sdk/client-codebuild";
import { createBuilder } from "../../lib/build/builders.ts";
import { buildScript, OUTPUT_ARCHIVE, OUTPUT_TOP } from "../../lib/build/buildspec.ts";
import type { Architecture, Language } from "../../lib/build/plan.ts";
import { sanitizeRequirements } from "../../lib/build/requirements.ts";
import { MOTO_ACCOUNT_ID, uniqueName } from "./aws.ts";

const REPO = resolve(import.meta.dirname, "../..");

export interface Projects {
  x86_64: string;
  arm64: string;
}

const run = promisify(execFile);

/** Create the two build projects in moto (as the stack does) and return their names. */
export async function createBuildProjects(bucket: string): Promise<Projects> {
  const client = new CodeBuildClient({});
  const names = { x86_64: uniqueName("build-x86"), arm64: uniqueName("build-arm") };
  try {
    for (const [arch, name] of Object.entries(names)) {
      await client.send(
        new CreateProjectCommand({
          name,
          source: { type: "S3", location: `${bucket}/build-source/placeholder.zip` },
          artifacts: { type: "S3", location: bucket },
          environment: {
            type: arch === "arm64" ? "ARM_CONTAINER" : "LINUX_CONTAINER",
            image: `public.ecr.aws/sam/build-python3.12:latest-${arch}`,
            computeType: "BUILD_GENERAL1_SMALL",
            imagePullCredentialsType: "CODEBUILD",
            privilegedMode: false,
          },
          serviceRole: `arn:aws:iam::${MOTO_ACCOUNT_ID}:role/layer-sync-build`,
          timeoutInMinutes: 30,
        }),
      );
    }
  } finally {
    client.destroy();
  }
  return names;
}

export interface SentRequest {
  command: string;
  input: Record<string, unknown>;
}

/** Record every command `client` sends (its name and input, as the SDK serialises them). */
export function captureRequests(client: { middlewareStack: CodeBuildClient["middlewareStack"] }): SentRequest[] {
  const sent: SentRequest[] = [];
  client.middlewareStack.add(
    (next, ctx) => async (args) => {
      sent.push({ command: String(ctx.commandName), input: structuredClone(args.input as Record<string, unknown>) });
      return next(args);
    },
    { step: "initialize", name: `capture-${uniqueName("m")}` },
  );
  return sent;
}

/**
 * A real build output, made the way a CodeBuild build makes it: the same recipe run by phase 1's local
 * builder (uv or npm pinned to the target) into `layer/`, packed by the buildspec's own tar command.
 */
export async function buildOutputLocally(args: {
  files: Record<string, string>;
  language: Language;
  runtime: string;
  architecture: Architecture;
  dir: string;
}): Promise<string> {
  const src = join(args.dir, "src");
  const work = join(args.dir, "work");
  await mkdir(src, { recursive: true });
  await mkdir(join(work, OUTPUT_TOP), { recursive: true });
  for (const [name, text] of Object.entries(args.files)) await writeFile(join(src, name), text);
  await mkdir(join(args.dir, "home"), { recursive: true });
  const builder = await createBuilder("local", {
    env: process.env,
    home: join(args.dir, "home"),
    timeoutMs: 120_000,
    cacheDir: join(REPO, ".cache/build"),
    toolCache: join(REPO, ".cache/layer-sync"),
  });
  // as every builder, the local one takes the requirement files layer-sync has checked
  const requirements =
    args.language === "python"
      ? await sanitizeRequirements({
          folder: "src",
          entries: Object.keys(args.files).map((path) => ({ path, kind: "file" as const })),
          read: async (path) => Buffer.from(args.files[path] ?? ""),
        })
      : undefined;
  await builder.build({ ...args, sourceDir: src, outDir: join(work, OUTPUT_TOP), requirements });
  const archive = join(args.dir, OUTPUT_ARCHIVE);
  await packOutput(work, archive);
  return archive;
}

/** The buildspec's tar step (its exact flags) over `work/layer`. */
export async function packOutput(work: string, archive: string): Promise<void> {
  const line =
    buildScript("python")
      .split("\n")
      .find((l) => l.startsWith("tar ")) ?? "";
  const flags = line.split(" ").filter((w) => w.startsWith("--"));
  await run("tar", [...flags, "-C", work, "-czf", archive, OUTPUT_TOP]);
}
