import { describe, expect, it } from "vitest";
import { DEADLINE_MARGIN_MAX_MS, lambdaDeadline, selectFolders } from "../../lib/codepipeline/source-sync.ts";
import { loadSyncConfig } from "../../lib/common/config.ts";
import { EventValidationError } from "../../lib/common/errors.ts";

const START = 1_800_000_000_000;
const now = () => START;

describe("lambdaDeadline", () => {
  it("keeps a tenth of the remaining time before the timeout, on the injected clock", () => {
    const deadline = lambdaDeadline(60_000, now);
    expect(deadline?.at).toBe(START + 54_000);
    expect(deadline?.why).toBe(
      "the Lambda function had 60.0 s left when the run started, and the run keeps 6.0 s before its timeout",
    );
    deadline?.dispose();
  });

  it("keeps at most 30 s however long the function may run", () => {
    const deadline = lambdaDeadline(900_000, now);
    expect(deadline?.at).toBe(START + 900_000 - DEADLINE_MARGIN_MAX_MS);
    deadline?.dispose();
  });

  it("sets no deadline when the remaining time is not known (outside Lambda)", () => {
    expect(lambdaDeadline(undefined, now)).toBeUndefined();
    expect(lambdaDeadline(Number.NaN, now)).toBeUndefined();
  });
});

describe("selectFolders", () => {
  const config = loadSyncConfig(
    {
      env: {
        SOURCE_PROVIDER: "github",
        SOURCE_REPOSITORY: "acme/layers",
        SOURCE_PATHS: "layers/a,layers/b",
        ARTIFACT_BUCKET: "bucket",
      },
    },
    { requireBucket: true },
  );

  it("takes the configured folders when the event names none", () => {
    expect(selectFolders(config, undefined).map((f) => f.path)).toEqual(["layers/a", "layers/b"]);
  });

  it("takes the event's paths, checked like SOURCE_PATHS", () => {
    expect(selectFolders(config, ["layers/b"]).map((f) => f.path)).toEqual(["layers/b"]);
    expect(() => selectFolders(config, ["../escape"])).toThrow(EventValidationError);
  });
});
