import { describe, expect, it } from "vitest";
import { type ContextKey, configFromContext } from "../../infra/settings.ts";

function fromContext(values: Partial<Record<ContextKey, unknown>>) {
  return configFromContext((key) => values[key]);
}

const REQUIRED = { sourceProvider: "bitbucket", sourceRepository: "acme/layers", sourcePaths: "layers/a, layers/b" };

describe("CDK context", () => {
  it("turns -c strings into typed settings and options", () => {
    const config = fromContext({
      ...REQUIRED,
      stackName: "PlatformLayers",
      compatibleArchitectures: "arm64,x86_64",
      retainVersions: "7",
      gateMode: "true",
      accessLogging: "false",
      reconcileSchedule: "off",
      artifactEncryption: "kms",
    });
    expect(config.stackName).toBe("PlatformLayers");
    expect(config.settings).toMatchObject({
      sourceProvider: "bitbucket",
      sourceRepository: "acme/layers",
      sourcePaths: ["layers/a", "layers/b"],
      compatibleArchitectures: ["arm64", "x86_64"],
      retainVersions: 7,
    });
    expect(config.options).toMatchObject({
      gateMode: true,
      accessLogging: false,
      reconcileSchedule: false,
      artifactEncryption: "kms",
    });
  });

  it("reads the release settings: smokeTest, canaryAccountIds and promoteAfterHours", () => {
    const config = fromContext({
      ...REQUIRED,
      smokeTest: "off",
      canaryAccountIds: "111122223333, 444455556666",
      promoteAfterHours: "48",
    });
    expect(config.settings).toMatchObject({
      smokeTest: "off",
      canaryAccountIds: ["111122223333", "444455556666"],
      promoteAfterHours: 48,
    });
    expect(() => fromContext({ ...REQUIRED, smokeTest: "maybe", promoteAfterHours: "a day" })).toThrow(
      /smokeTest must be one of on, off[\s\S]*promoteAfterHours must be a whole number/,
    );
  });

  it("accepts JSON values from cdk.json as well", () => {
    const config = fromContext({ ...REQUIRED, sourcePaths: ["layers/a"], tracing: true, retainVersions: 3 });
    expect(config.settings.sourcePaths).toEqual(["layers/a"]);
    expect(config.settings.retainVersions).toBe(3);
    expect(config.options.tracing).toBe(true);
  });

  it("defaults the stack name to LayerSync and leaves unset values undefined", () => {
    const config = fromContext(REQUIRED);
    expect(config.stackName).toBe("LayerSync");
    expect(config.settings.tokenParameterName).toBeUndefined();
    expect(config.options.gateMode).toBeUndefined();
  });

  it("reports every problem at once", () => {
    expect(() =>
      fromContext({
        sourceProvider: "gitlab",
        gateMode: "yes",
        retainVersions: "ten",
        compatibleArchitectures: "sparc",
      }),
    ).toThrow(
      /sourceProvider must be one of bitbucket, github[\s\S]*sourceRepository is required[\s\S]*sourcePaths is required[\s\S]*retainVersions must be a whole number[\s\S]*gateMode must be true or false/,
    );
  });
});
