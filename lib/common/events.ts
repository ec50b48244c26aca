/**
 * Event parsing for both handlers. Every accepted shape is checked field by field; anything malformed is
 * rejected with an `EventValidationError` that says what was expected. Events that are well formed but
 * not for us (another pipeline, another state, a parameter outside the prefix) are ignored with a reason.
 */
import { EventValidationError } from "./errors.ts";

export type SyncEvent =
  | { kind: "ignored"; reason: string }
  | { kind: "pipeline"; executionId: string }
  | { kind: "manual"; ref?: string; paths?: string[]; dryRun: boolean; force: boolean }
  | { kind: "job"; jobId: string; userParameters: string | undefined; continuationToken?: string | undefined };

export type PublishEvent =
  | { kind: "ignored"; reason: string }
  | { kind: "packages"; packages: string[]; trigger: "parameter-change" | "manual" }
  | { kind: "reconcile" }
  | { kind: "rollback"; package: string; to?: number };

type Json = Record<string, unknown>;

const PIPELINE_DETAIL = "CodePipeline Pipeline Execution State Change";
const PARAMETER_DETAIL = "Parameter Store Change";
const PACKAGE = /^[A-Za-z0-9._-]{1,140}$/;

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return typeof v === "object" ? "an object" : `a ${typeof v}`;
}

function isEventBridge(e: Json): boolean {
  return typeof e["detail-type"] === "string" && typeof e.source === "string";
}

function checkKeys(e: Json, allowed: readonly string[], what: string): void {
  const unknown = Object.keys(e).filter((k) => !allowed.includes(k));
  if (unknown.length) {
    throw new EventValidationError(
      `${what} has unknown field(s) ${unknown.map((k) => `"${k}"`).join(", ")}; allowed: ${allowed.join(", ")}`,
    );
  }
}

/** One SQS record of a sync queue delivery: its id (for a partial batch failure) and its parsed body. */
export interface QueuedEvent {
  messageId: string;
  event: unknown;
}

/**
 * The records of an SQS delivery (`{"Records": [{"eventSource": "aws:sqs", "messageId", "body"}]}`), in
 * order, each body parsed as JSON (the EventBridge event the queue target wrapped); undefined for any
 * other event. A record whose body is not JSON is rejected.
 */
export function unwrapSqsRecords(event: unknown): QueuedEvent[] | undefined {
  if (!isObject(event) || !Array.isArray(event.Records)) return undefined;
  const records = event.Records as unknown[];
  if (!records.every((r) => isObject(r) && r.eventSource === "aws:sqs")) return undefined;
  return (records as Json[]).map((r, i) => {
    if (typeof r.messageId !== "string" || typeof r.body !== "string") {
      throw new EventValidationError(`SQS record ${i} has no messageId or body string`);
    }
    try {
      return { messageId: r.messageId, event: JSON.parse(r.body) as unknown };
    } catch (error) {
      throw new EventValidationError(`SQS record ${r.messageId} has a body that is not JSON`, { cause: error });
    }
  });
}

/** A CodePipeline "Lambda invoke" job (pipeline-gate mode), as `parseSyncEvent` returns it. */
export type JobEvent = Extract<SyncEvent, { kind: "job" }>;

/**
 * The job of a CodePipeline job event (an object with a `CodePipeline.job` key); undefined for any other
 * event. Needs no settings, so a job can be recognised (and refused) when the settings cannot be loaded.
 * A job without an id is rejected: no result could be reported for it.
 */
export function parseCodePipelineJob(event: unknown): JobEvent | undefined {
  const job = isObject(event) ? event["CodePipeline.job"] : undefined;
  if (job === undefined) return undefined;
  if (!isObject(job) || typeof job.id !== "string" || job.id === "") {
    throw new EventValidationError('the CodePipeline job event has no "CodePipeline.job".id');
  }
  const config = (job.data as Json | undefined)?.actionConfiguration as Json | undefined;
  const params = (config?.configuration as Json | undefined)?.UserParameters;
  const token = (job.data as Json | undefined)?.continuationToken;
  return {
    kind: "job",
    jobId: job.id,
    userParameters: typeof params === "string" ? params : undefined,
    ...(typeof token === "string" && token !== "" ? { continuationToken: token } : {}),
  };
}

/** Parse what the sync handler was invoked with. */
export function parseSyncEvent(event: unknown, pipelineName: string): SyncEvent {
  if (!isObject(event)) {
    throw new EventValidationError(
      `the sync event must be a JSON object (a CodePipeline event or {"ref","paths","dryRun","force"}), got ${describe(event)}`,
    );
  }
  const job = parseCodePipelineJob(event);
  if (job) return job;
  if (isEventBridge(event)) {
    if (event.source !== "aws.codepipeline" || event["detail-type"] !== PIPELINE_DETAIL) {
      return {
        kind: "ignored",
        reason: `event ${String(event.source)} / ${String(event["detail-type"])} is not a pipeline execution event`,
      };
    }
    const detail = event.detail;
    if (!isObject(detail) || typeof detail.pipeline !== "string" || typeof detail.state !== "string") {
      throw new EventValidationError("the CodePipeline event has no detail.pipeline or detail.state");
    }
    if (detail.pipeline !== pipelineName) {
      return { kind: "ignored", reason: `pipeline "${detail.pipeline}" is not PIPELINE_NAME "${pipelineName}"` };
    }
    if (detail.state !== "STARTED") {
      return { kind: "ignored", reason: `pipeline state ${detail.state} is not STARTED` };
    }
    return { kind: "pipeline", executionId: typeof detail["execution-id"] === "string" ? detail["execution-id"] : "" };
  }
  checkKeys(event, ["ref", "paths", "dryRun", "force"], "the manual sync payload");
  const out: SyncEvent = { kind: "manual", dryRun: false, force: false };
  if (event.ref !== undefined) {
    if (typeof event.ref !== "string" || event.ref.trim() === "") {
      throw new EventValidationError('"ref" must be a non-empty string (a branch, tag or commit)');
    }
    out.ref = event.ref.trim();
  }
  if (event.paths !== undefined) {
    if (!Array.isArray(event.paths) || event.paths.length === 0 || event.paths.some((p) => typeof p !== "string")) {
      throw new EventValidationError('"paths" must be a non-empty array of folder paths');
    }
    out.paths = event.paths as string[];
  }
  for (const flag of ["dryRun", "force"] as const) {
    if (event[flag] !== undefined && typeof event[flag] !== "boolean") {
      throw new EventValidationError(`"${flag}" must be true or false`);
    }
    out[flag] = event[flag] === true;
  }
  return out;
}

/** Parse what the publish handler was invoked with. */
export function parsePublishEvent(event: unknown, parameterPrefix: string): PublishEvent {
  if (!isObject(event)) {
    throw new EventValidationError(
      `the publish event must be a JSON object (a Parameter Store Change event, {"package"}, {"packages"} or {}), got ${describe(event)}`,
    );
  }
  if (isEventBridge(event)) {
    if (event.source !== "aws.ssm" || event["detail-type"] !== PARAMETER_DETAIL) {
      return {
        kind: "ignored",
        reason: `event ${String(event.source)} / ${String(event["detail-type"])} is not a Parameter Store Change`,
      };
    }
    const detail = event.detail;
    if (!isObject(detail) || typeof detail.name !== "string" || typeof detail.operation !== "string") {
      throw new EventValidationError("the Parameter Store Change event has no detail.name or detail.operation");
    }
    if (detail.operation !== "Create" && detail.operation !== "Update") {
      return { kind: "ignored", reason: `operation ${detail.operation} on ${detail.name} does not publish` };
    }
    const name = detail.name.startsWith("/") ? detail.name : `/${detail.name}`;
    const prefix = `${parameterPrefix}/`;
    const rest = name.startsWith(prefix) ? name.slice(prefix.length) : undefined;
    const match = rest ? /^([^/]+)\/artifact-key$/.exec(rest) : null;
    if (!match?.[1] || !PACKAGE.test(match[1])) {
      return { kind: "ignored", reason: `parameter ${detail.name} is not ${parameterPrefix}/<package>/artifact-key` };
    }
    return { kind: "packages", packages: [match[1]], trigger: "parameter-change" };
  }
  if (event.rollback !== undefined) {
    checkKeys(event, ["rollback"], "the rollback payload");
    const r = event.rollback;
    if (!isObject(r))
      throw new EventValidationError('"rollback" must be an object {"package": "NAME", "to"?: VERSION}');
    checkKeys(r, ["package", "to"], '"rollback"');
    if (typeof r.package !== "string" || !PACKAGE.test(r.package)) {
      throw new EventValidationError('"rollback.package" must be a package name such as "py-requests"');
    }
    if (r.to !== undefined && !(Number.isInteger(r.to) && (r.to as number) >= 1)) {
      throw new EventValidationError('"rollback.to" must be a layer version number (1 or more)');
    }
    return { kind: "rollback", package: r.package, ...(r.to !== undefined ? { to: r.to as number } : {}) };
  }
  checkKeys(event, ["package", "packages", "rollback"], "the manual publish payload");
  if (event.package !== undefined && event.packages !== undefined) {
    throw new EventValidationError('give either "package" or "packages", not both');
  }
  if (event.package !== undefined) {
    if (typeof event.package !== "string" || !PACKAGE.test(event.package)) {
      throw new EventValidationError('"package" must be a package name such as "py-requests"');
    }
    return { kind: "packages", packages: [event.package], trigger: "manual" };
  }
  if (event.packages !== undefined) {
    const list = event.packages;
    if (!Array.isArray(list) || list.length === 0 || list.some((p) => typeof p !== "string" || !PACKAGE.test(p))) {
      throw new EventValidationError('"packages" must be a non-empty array of package names');
    }
    return { kind: "packages", packages: [...new Set(list as string[])], trigger: "manual" };
  }
  return { kind: "reconcile" };
}
