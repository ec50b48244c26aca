/**
 * CodeBuild on moto for the build tests: the stack's two projects (LINUX_CONTAINER and ARM_CONTAINER,
 * BUILD_GENERAL1_SMALL, S3 source and artifacts), and a capture of every request a client sends, since moto
 * ignores StartBuild's overrides and the tests must assert them exactly.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { CodeBuildClient, CreateProjectCommand } from "@aws-sdk/client-codebuild";
import { PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import JSZip from "jszip";
import { createBuilder } from "../../lib/builds/builders.ts";
import { buildScript, OUTPUT_ARCHIVE, OUTPUT_TOP } from "../../lib/builds/buildspec.ts";
import { sanitizeRequirements } from "../../lib/builds/requirements.ts";
import type { Architecture, Language } from "../../lib/common/build-plan.ts";
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
      .find((l) => l.includes(" tar --hard-dereference ")) ?? "";
  const flags = line.split(" ").filter((w) => w.startsWith("--"));
  await run("tar", [...flags, "-C", work, "-czf", archive, OUTPUT_TOP]);
}

/** The build's artifact as CodeBuild makes it with packaging ZIP: a zip holding the output archive. */
export async function zipArtifact(archive: Buffer): Promise<Buffer> {
  const zip = new JSZip();
  zip.file(OUTPUT_ARCHIVE, archive);
  return zip.generateAsync({ type: "nodebuffer", compression: "DEFLATE" });
}

/**
 * Put a build's artifact (the output archive at `archive`, zipped as CodeBuild does) at `key`; returns the
 * SHA-256 CodeBuild would report for it.
 */
export async function putBuildArtifact(
  s3: S3Client,
  bucket: string,
  key: string,
  archive: string | Buffer,
): Promise<string> {
  const body = await zipArtifact(typeof archive === "string" ? await readFile(archive) : archive);
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
  return createHash("sha256").update(body).digest("hex");
}

/**
 * What BatchGetBuilds reports instead of moto (which marks every build SUCCEEDED and reports no artifact
 * SHA-256): while `status` is set or a build has a `sha256`, the client answers from here.
 */
export interface BuildReports {
  status: string | undefined;
  sha256: Map<string, string>;
}

export function fakeBuildReports(client: { middlewareStack: CodeBuildClient["middlewareStack"] }): BuildReports {
  const reports: BuildReports = { status: undefined, sha256: new Map() };
  client.middlewareStack.add(
    (next, ctx) => async (args) => {
      const ids = (args.input as { ids?: string[] }).ids ?? [];
      if (ctx.commandName !== "BatchGetBuildsCommand") return next(args);
      if (reports.status === undefined && !ids.some((id) => reports.sha256.has(id))) return next(args);
      const builds = ids.map((id) => {
        const sha256sum = reports.sha256.get(id);
        return { id, buildStatus: reports.status ?? "SUCCEEDED", artifacts: sha256sum ? { sha256sum } : {} };
      });
      return { response: {}, output: { $metadata: {}, builds } } as never;
    },
    { step: "initialize", name: `reportBuilds-${uniqueName("m")}` },
  );
  return reports;
}
