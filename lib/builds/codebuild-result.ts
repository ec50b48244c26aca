/**
 * A CodeBuild build finished (EventBridge `CodeBuild Build State Change`). The event is hostile input: its
 * project must be one of ours and its build id well-formed; what the build was for comes from the record the
 * sync wrote (`codebuild.ts`), never from the event or the build.
 *
 * - SUCCEEDED: prove the output is the build's (the SHA-256 of the ZIP read from S3 equals the one CodeBuild
 *   reports for the build's artifact: the event's `additional-information.artifact.sha256sum`, or
 *   BatchGetBuilds' `artifacts.sha256sum` in the gate; refused when they differ or none is reported), take the
 *   output archive from inside it (extracted under the staging rules), add the folder's files from the
 *   sync's source zip, assemble and check the layer (names, links, exclusions, the 250 MB unzipped limit
 *   naming the largest entries), zip it with layer-sync's writer, verify the zip, and upload it under the usual
 *   key with the build metadata unless its SHA-256 equals the current artifact's; then move the pointer.
 *   Publishing follows from the pointer's Parameter Store Change event, as for every package.
 * - FAILED, STOPPED, TIMED_OUT, FAULT: the pointer stays; the summary entry's error names the package, the
 *   target, the build id, its state and the last lines of its log (redacted).
 */
import { join } from "node:path";
import { type CloudWatchLogsClient, GetLogEventsCommand } from "@aws-sdk/client-cloudwatch-logs";
import { GetObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import type { SSMClient } from "@aws-sdk/client-ssm";
import { commitArtifact, type S3Destination, s3Destination } from "../artifacts/commit.ts";
import { readParameter } from "../artifacts/pointer.ts";
import { ARTIFACT_FORMAT, artifactKey, headArtifact } from "../artifacts/store.ts";
import { artifactKeyParameter, type BuildConfig } from "../common/config.ts";
import { BuildError, describeError, EventValidationError, LimitExceededError } from "../common/errors.ts";
import { type Logger, silentLogger } from "../common/log.ts";
import { redact } from "../common/redact.ts";
import type { PackageSummary, SyncSummary } from "../common/summary.ts";
import { emptyTargetSummary } from "../common/summary.ts";
import { StagingArea } from "../staging/staging.ts";
import { installRoot } from "./buildspec.ts";
import {
  type BuildRecord,
  buildOutputKey,
  buildRecordKey,
  buildSourceKey,
  FINISHED_STATES,
  type FinishedState,
  parseBuildId,
} from "./codebuild.ts";
import { assembleLayer, checkUnzippedSize, UNZIPPED_LIMIT, verifyLayerZip, writeLayerZip } from "./content.ts";
import { layerSbom, sbomKey } from "./layer-sbom.ts";
import { type OutputProof, stageBuildOutput, stageSourceZip } from "./output.ts";
import { finishPythonTree } from "./python-tree.ts";
import { stageTree } from "./tree.ts";

export interface BuildResultConfig {
  bucket: string;
  artifactPrefix: string;
  parameterPrefix: string;
  build: Pick<BuildConfig, "projects" | "sourcePrefix" | "outputPrefix">;
}

/** The last lines of a build's log. */
export interface LogTailApi {
  tail(group: string, stream: string, lines: number): Promise<string[]>;
}

export function cloudWatchLogTail(client: CloudWatchLogsClient): LogTailApi {
  return {
    async tail(group, stream, lines) {
      const res = await client.send(
        new GetLogEventsCommand({ logGroupName: group, logStreamName: stream, limit: lines, startFromHead: false }),
      );
      return (res.events ?? []).map((e) => e.message ?? "");
    },
  };
}

export interface BuildResultDependencies {
  s3: S3Client;
  ssm: SSMClient;
  logs?: LogTailApi | undefined;
  clock: () => Date;
  workDir: string;
  exclusiveWorkDir: boolean;
  logger?: Logger;
  /** Lambda's 250 MB unless a test lowers it. */
  unzippedLimit?: number;
}

export type BuildEvent =
  | { kind: "ignored"; reason: string }
  | {
      kind: "finished";
      project: string;
      id: string;
      uuid: string;
      arn: string | undefined;
      status: FinishedState;
      /** The SHA-256 CodeBuild reports for the build's artifact (hex), when it reports one. */
      artifactSha256: string | undefined;
    };

/** Validate a `CodeBuild Build State Change` event; throws `EventValidationError` naming what is wrong. */
export function parseBuildEvent(event: unknown, projects: readonly string[]): BuildEvent {
  const obj = (typeof event === "object" && event !== null ? event : {}) as Record<string, unknown>;
  if (obj.source !== "aws.codebuild" || obj["detail-type"] !== "CodeBuild Build State Change") {
    throw new EventValidationError('expected an EventBridge "CodeBuild Build State Change" event from aws.codebuild');
  }
  const detail = (typeof obj.detail === "object" && obj.detail !== null ? obj.detail : {}) as Record<string, unknown>;
  const project = detail["project-name"];
  if (typeof project !== "string" || !projects.includes(project)) {
    throw new EventValidationError(
      `the event's project-name is not one of layer-sync's build projects (${projects.join(", ") || "none configured"})`,
    );
  }
  const build = parseBuildId(detail["build-id"]);
  if (build.project !== project) {
    throw new EventValidationError(`the event's build-id belongs to project "${build.project}", not "${project}"`);
  }
  const status = detail["build-status"];
  if (status === "IN_PROGRESS") return { kind: "ignored", reason: "the build is still in progress" };
  if (typeof status !== "string" || !(FINISHED_STATES as readonly string[]).includes(status)) {
    throw new EventValidationError(`the event's build-status must be one of ${FINISHED_STATES.join(", ")}`);
  }
  const info = detail["additional-information"];
  const artifact = typeof info === "object" && info !== null ? (info as Record<string, unknown>).artifact : undefined;
  const sha =
    typeof artifact === "object" && artifact !== null ? (artifact as Record<string, unknown>).sha256sum : undefined;
  return {
    kind: "finished",
    project,
    id: build.id,
    uuid: build.uuid,
    arn: build.arn,
    status: status as FinishedState,
    artifactSha256: typeof sha === "string" && HEX64.test(sha.toLowerCase()) ? sha.toLowerCase() : undefined,
  };
}

const HEX64 = /^[0-9a-f]{64}$/;
const PACKAGE = /^[A-Za-z0-9_-]{1,140}$/;

/** Read and check the record of a build: every field a shape we wrote. */
async function loadRecord(s3: S3Client, bucket: string, key: string, id: string): Promise<BuildRecord> {
  let text: string;
  try {
    const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    if ((res.ContentLength ?? 0) > 256 * 1024) throw new Error("the record is over 256 KB");
    text = (await res.Body?.transformToString("utf8")) ?? "";
  } catch (error) {
    throw new BuildError(
      `build ${id} has no readable record at s3://${bucket}/${key} (${(error as Error).name}): it was not started by layer-sync's sync, or the function may not read the build source prefix`,
      { cause: error },
    );
  }
  let r: Partial<BuildRecord>;
  try {
    r = JSON.parse(text) as Partial<BuildRecord>;
  } catch (error) {
    throw new BuildError(`the record of build ${id} is not JSON`, { cause: error });
  }
  const str = (v: unknown) => typeof v === "string" && v.length > 0 && v.length < 2048;
  const ok =
    r.version === 1 &&
    r.buildId === id &&
    str(r.package) &&
    PACKAGE.test(r.package ?? "") &&
    HEX64.test(r.fingerprint ?? "") &&
    /^[0-9a-f]{40}$/.test(r.commit ?? "") &&
    (r.language === "python" || r.language === "nodejs") &&
    (r.architecture === "x86_64" || r.architecture === "arm64") &&
    /^(python3\.\d+|nodejs\d+\.x)$/.test(r.runtime ?? "") &&
    [r.path, r.repository, r.ref, r.source, r.layerConfig, r.buildArn].every(str) &&
    (r.tree === undefined || str(r.tree)) &&
    Array.isArray(r.exclude) &&
    r.exclude.every((g) => typeof g === "string") &&
    (r.maxUnzippedMiB === undefined || (Number.isInteger(r.maxUnzippedMiB) && r.maxUnzippedMiB > 0)) &&
    [r.bytecode, r.slim].every((b) => b === undefined || typeof b === "boolean") &&
    !Number.isNaN(Date.parse(r.started ?? ""));
  if (!ok) throw new BuildError(`the record of build ${id} at s3://${bucket}/${key} is malformed; nothing was changed`);
  return r as BuildRecord;
}

/** Secrets a log line may hold that layer-sync never registered: URL user info, npm auth lines, bearer tokens. */
export function scrubLogLine(line: string): string {
  return redact(line)
    .replace(/([a-z][a-z0-9+.-]*:\/\/)[^/\s@]+@/gi, "$1***@")
    .replace(/(_auth(?:Token)?\s*=\s*)\S+/gi, "$1***")
    .replace(/(authorization:\s*(?:bearer|basic)?\s*)\S+/gi, "$1***")
    .replace(/(\b(?:token|password|secret)\s*[=:]\s*)\S+/gi, "$1***")
    .replace(/[^\x20-\x7e\t]/g, "?")
    .slice(0, 300);
}

/** The last lines of the build's log, redacted; a note instead when they cannot be read. */
async function logTail(logs: LogTailApi | undefined, project: string, uuid: string): Promise<string[]> {
  if (!logs) return [];
  try {
    const lines = await logs.tail(`/aws/codebuild/${project}`, uuid, 20);
    return lines
      .flatMap((l) => l.split("\n"))
      .map((l) => scrubLogLine(l.trimEnd()))
      .filter((l) => l.trim() !== "")
      .slice(-10);
  } catch (error) {
    return [`(the log /aws/codebuild/${project} ${uuid} could not be read: ${(error as Error).name})`];
  }
}

export interface BuildResultEntry extends PackageSummary {
  /** The state the build ended in. */
  buildStatus: FinishedState;
  /** The last lines of a failed build's log, redacted. */
  logTail?: string[];
}

export interface BuildResultSummary extends SyncSummary {
  packages: BuildResultEntry[];
}

/** Handle a finished build (see the module comment). Throws only for an event it cannot attribute. */
export async function takeBuildResult(
  config: BuildResultConfig,
  event: Extract<BuildEvent, { kind: "finished" }>,
  deps: BuildResultDependencies,
): Promise<BuildResultSummary> {
  const log = deps.logger ?? silentLogger;
  const recordKey = buildRecordKey(config.build.sourcePrefix, event.project, event.uuid);
  const record = await loadRecord(deps.s3, config.bucket, recordKey, event.id);
  if (event.arn !== undefined && record.buildArn !== event.arn) {
    throw new EventValidationError(`the event's build ARN does not match the record of build ${event.id}`);
  }
  const target = `${record.runtime} ${record.architecture}`;
  const where = `${record.package} (${target}, build ${event.id})`;
  const entry: BuildResultEntry = {
    ...emptyTargetSummary(record.package, record.path, {
      runtime: record.runtime,
      architecture: record.architecture,
      fingerprint: record.fingerprint,
      builder: "codebuild",
      id: event.id,
    }),
    buildStatus: event.status,
  };
  const summary: BuildResultSummary = {
    commit: record.commit,
    ref: record.ref,
    strategy: "none",
    packages: [entry],
    requests: { total: 0 },
  };
  const pointer = artifactKeyParameter(config.parameterPrefix, record.package);
  const current = await readParameter(deps.ssm, pointer);
  if (event.status !== "SUCCEEDED") {
    entry.logTail = await logTail(deps.logs, event.project, event.uuid);
    entry.error = `CodeBuild build ${event.id} of ${record.package} (${target}) ended ${event.status}; the pointer still names ${current ?? "no artifact"}; last log lines: ${entry.logTail.join(" | ") || "(none)"}`;
    log.error("build failed", { package: record.package, build: event.id, status: event.status });
    return summary;
  }
  try {
    await takeOutput(config, record, entry, current, where, deps, {
      buildId: event.id,
      sha256: event.artifactSha256,
    });
  } catch (error) {
    const text = describeError(error);
    entry.error = `${text.includes(event.id) ? "" : `${where}: `}${text}; the pointer still names ${current ?? "no artifact"}`;
    log.error("build output refused", { package: record.package, build: event.id, error: entry.error });
  }
  return summary;
}

/** Where a build's artifact goes: the bucket and pointers of the sync that started it. */
function destination(config: BuildResultConfig, deps: BuildResultDependencies): S3Destination {
  return s3Destination({
    s3: deps.s3,
    ssm: deps.ssm,
    bucket: config.bucket,
    artifactPrefix: config.artifactPrefix,
    parameterPrefix: config.parameterPrefix,
    logger: deps.logger,
  });
}

async function takeOutput(
  config: BuildResultConfig,
  record: BuildRecord,
  entry: BuildResultEntry,
  current: string | undefined,
  where: string,
  deps: BuildResultDependencies,
  proof: OutputProof,
): Promise<void> {
  const previous = current ? await headArtifact(deps.s3, config.bucket, current) : undefined;
  const prev = previous?.metadata;
  if (prev?.build?.fingerprint === record.fingerprint && prev.commit === record.commit && previous) {
    // a repeated event (or the gate got here first): the artifact is already this build's
    Object.assign(entry, {
      key: previous.key,
      files: prev.files,
      bytes: previous.size,
      unzippedBytes: prev.unzippedBytes ?? null,
      sha256: prev.contentSha256,
      skipped: true,
      reason: "unchanged",
    });
    return;
  }
  const limit = deps.unzippedLimit ?? UNZIPPED_LIMIT;
  const now = deps.clock();
  const staging = await StagingArea.create(
    deps.workDir,
    `build-${record.package}-${now.getTime()}`,
    { maxFiles: 200_000, maxBytes: 2 * limit },
    { exclusive: deps.exclusiveWorkDir, now: now.getTime() },
  );
  try {
    const root = installRoot(record.language);
    const output = await staging.stage(`${record.path} (build output)`, `${record.package}-output`);
    try {
      await stageBuildOutput(
        deps.s3,
        {
          bucket: config.bucket,
          key: buildOutputKey(config.build.outputPrefix, record.architecture, record.package, record.fingerprint),
          file: join(staging.runDir, `${record.package}-output.zip`),
          root,
          proof,
        },
        output,
        where,
      );
    } catch (error) {
      if (!(error instanceof LimitExceededError)) throw error;
      // over twice the limit: name the largest entries of what arrived
      checkUnzippedSize(stageTree(output, `${root}/`), `the build output of ${where}`, limit);
      throw error;
    }
    const source = await staging.stage(record.path, `${record.package}-source`);
    await stageSourceZip(
      deps.s3,
      config.bucket,
      buildSourceKey(config.build.sourcePrefix, record.package, record.fingerprint),
      join(staging.runDir, `${record.package}-source.zip`),
      source,
      where,
    );
    const finished =
      record.language === "python"
        ? await finishPythonTree(stageTree(output, `${root}/`), {
            runtime: record.runtime,
            bytecode: record.bytecode ?? true,
            slim: record.slim ?? false,
            where,
          })
        : { entries: stageTree(output, `${root}/`), warnings: [] };
    entry.warnings.push(...finished.warnings);
    if (entry.build && "slim" in finished && finished.slim) entry.build.slim = finished.slim;
    const entries = assembleLayer(
      finished.entries,
      stageTree(source),
      record.exclude,
      where,
      limit,
      record.maxUnzippedMiB,
    );
    const zip = await writeLayerZip(entries, join(staging.runDir, `${record.package}-output`, "layer.zip"));
    await verifyLayerZip(entries, zip.path, where);
    const key = artifactKey(config.artifactPrefix, record.package, new Date(record.started), record.commit);
    Object.assign(entry, { key, files: zip.files, bytes: zip.bytes, unzippedBytes: zip.size, sha256: zip.sha256 });
    const sourceEntries = stageTree(source);
    const sbom = await layerSbom({
      subject: record.package,
      language: record.language,
      entries,
      source: sourceEntries,
      where,
    });
    if (entry.build) entry.build.sbom = { key: sbomKey(key), components: sbom.components };
    const result = await commitArtifact(destination(config, deps), {
      package: record.package,
      key,
      zip,
      metadata: {
        commit: record.commit,
        source: record.source,
        contentSha256: zip.sha256,
        files: zip.files,
        unzippedBytes: zip.size,
        format: ARTIFACT_FORMAT,
        ref: record.ref,
        layerConfig: record.layerConfig,
        build: { fingerprint: record.fingerprint, runtime: record.runtime, architecture: record.architecture },
        ...(record.tree ? { tree: record.tree } : {}),
      },
      sbom,
      previous,
      now,
      description: `layer-sync: latest artifact of ${record.package} (${record.repository}/${record.path}, ${record.runtime} ${record.architecture})`,
      warn: (warning) => entry.warnings.push(warning),
    });
    if (result.kind === "skipped") {
      Object.assign(entry, { key: result.key, skipped: true, reason: result.reason });
      if (entry.build) entry.build.sbom = { key: sbomKey(result.key), components: sbom.components };
    }
  } finally {
    await staging.dispose();
  }
}
