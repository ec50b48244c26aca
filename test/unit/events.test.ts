import { describe, expect, it } from "vitest";
import { EventValidationError } from "../../lib/common/errors.ts";
import { parseCodePipelineJob, parsePublishEvent, parseSyncEvent } from "../../lib/common/events.ts";

const pipelineEvent = (pipeline: string, state: string) => ({
  version: "0",
  "detail-type": "CodePipeline Pipeline Execution State Change",
  source: "aws.codepipeline",
  detail: { pipeline, state, "execution-id": "e-1" },
});

describe("parseSyncEvent", () => {
  it("accepts the STARTED event of the configured pipeline", () => {
    expect(parseSyncEvent(pipelineEvent("P", "STARTED"), "P")).toEqual({ kind: "pipeline", executionId: "e-1" });
  });

  it("ignores other pipelines, other states and other event types with a reason", () => {
    expect(parseSyncEvent(pipelineEvent("Q", "STARTED"), "P")).toEqual({
      kind: "ignored",
      reason: 'pipeline "Q" is not PIPELINE_NAME "P"',
    });
    expect(parseSyncEvent(pipelineEvent("P", "FAILED"), "P")).toEqual({
      kind: "ignored",
      reason: "pipeline state FAILED is not STARTED",
    });
    expect(parseSyncEvent({ source: "aws.s3", "detail-type": "Object Created", detail: {} }, "P")).toMatchObject({
      kind: "ignored",
    });
  });

  it("reads a manual payload and its defaults", () => {
    expect(parseSyncEvent({}, "P")).toEqual({ kind: "manual", dryRun: false, force: false });
    expect(parseSyncEvent({ ref: "v1", paths: ["a/b"], dryRun: true, force: true }, "P")).toEqual({
      kind: "manual",
      ref: "v1",
      paths: ["a/b"],
      dryRun: true,
      force: true,
    });
  });

  it("recognises a CodePipeline job event", () => {
    expect(parseSyncEvent({ "CodePipeline.job": { id: "job-1", data: {} } }, "P")).toEqual({
      kind: "job",
      jobId: "job-1",
      userParameters: undefined,
    });
  });

  it.each([
    [null, /must be a JSON object.*got null/],
    [[1], /got an array/],
    ["x", /got a string/],
    [{ ref: "" }, /"ref" must be a non-empty string/],
    [{ paths: [] }, /"paths" must be a non-empty array/],
    [{ dryRun: "yes" }, /"dryRun" must be true or false/],
    [{ bogus: 1 }, /unknown field\(s\) "bogus"/],
    [
      { source: "aws.codepipeline", "detail-type": "CodePipeline Pipeline Execution State Change", detail: {} },
      /no detail.pipeline/,
    ],
  ])("rejects %j with a specific message", (event, message) => {
    expect(() => parseSyncEvent(event, "P")).toThrow(EventValidationError);
    expect(() => parseSyncEvent(event, "P")).toThrow(message);
  });
});

describe("parseCodePipelineJob", () => {
  it("returns the job of a CodePipeline job event, with its UserParameters and continuation token", () => {
    const event = {
      "CodePipeline.job": {
        id: "job-2",
        data: { actionConfiguration: { configuration: { UserParameters: '{"ref":"v1"}' } }, continuationToken: "t" },
      },
    };
    expect(parseCodePipelineJob(event)).toEqual({
      kind: "job",
      jobId: "job-2",
      userParameters: '{"ref":"v1"}',
      continuationToken: "t",
    });
  });

  it.each([[{}], [{ ref: "main" }], [pipelineEvent("P", "STARTED")], [null], ["x"]])(
    "returns undefined for %j, which is not a job event",
    (event) => {
      expect(parseCodePipelineJob(event)).toBeUndefined();
    },
  );

  it("rejects a job event without a job id, for which no result could be reported", () => {
    expect(() => parseCodePipelineJob({ "CodePipeline.job": { data: {} } })).toThrow(EventValidationError);
    expect(() => parseCodePipelineJob({ "CodePipeline.job": { id: "" } })).toThrow(/no "CodePipeline.job".id/);
  });
});

describe("parsePublishEvent", () => {
  const change = (name: string, operation = "Update") => ({
    "detail-type": "Parameter Store Change",
    source: "aws.ssm",
    detail: { name, operation, type: "String" },
  });

  it("maps an artifact-key change to its package, with or without the leading slash", () => {
    expect(parsePublishEvent(change("/layer-sync/py-requests/artifact-key"), "/layer-sync")).toEqual({
      kind: "packages",
      packages: ["py-requests"],
      trigger: "parameter-change",
    });
    expect(parsePublishEvent(change("layer-sync/tools/artifact-key", "Create"), "/layer-sync")).toMatchObject({
      packages: ["tools"],
    });
  });

  it("ignores deletes and parameters outside the prefix", () => {
    expect(parsePublishEvent(change("/layer-sync/x/artifact-key", "Delete"), "/layer-sync")).toMatchObject({
      kind: "ignored",
    });
    expect(parsePublishEvent(change("/other/x/artifact-key"), "/layer-sync")).toMatchObject({ kind: "ignored" });
    expect(parsePublishEvent(change("/layer-sync/x/layer-version-arn"), "/layer-sync")).toMatchObject({
      kind: "ignored",
    });
  });

  it("reads manual payloads and {} as reconcile", () => {
    expect(parsePublishEvent({ package: "a" }, "/p")).toEqual({ kind: "packages", packages: ["a"], trigger: "manual" });
    expect(parsePublishEvent({ packages: ["a", "b", "a"] }, "/p")).toEqual({
      kind: "packages",
      packages: ["a", "b"],
      trigger: "manual",
    });
    expect(parsePublishEvent({}, "/p")).toEqual({ kind: "reconcile" });
  });

  it.each([[{ package: "a/b" }], [{ packages: [] }], [{ package: "a", packages: ["b"] }], [{ pkg: "a" }], [42]])(
    "rejects %j",
    (event) => {
      expect(() => parsePublishEvent(event, "/p")).toThrow(EventValidationError);
    },
  );
});
