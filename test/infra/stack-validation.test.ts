/**
 * Construction-time checks of LayerSyncStack, and a check that the cdk-nag acknowledgments are narrow:
 * none of these tests synthesise a template.
 */
import { App } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
import { describe, expect, it } from "vitest";
import type { LayerSyncSettings } from "../../infra/settings.ts";
import { LayerSyncStack } from "../../infra/stack.ts";
import { inlineCode, nagFindings } from "./support.ts";

const SETTINGS: LayerSyncSettings = {
  sourceProvider: "github",
  sourceRepository: "acme/layers",
  sourcePaths: ["layers/a"],
};

function build(settings: Partial<LayerSyncSettings>, extra: { mode?: "template"; withSettings?: boolean } = {}) {
  const app = new App();
  return () =>
    new LayerSyncStack(app, "Check", {
      ...(extra.mode && { mode: extra.mode }),
      ...(extra.withSettings !== false && { settings: { ...SETTINGS, ...settings } }),
      ...(extra.mode === undefined && { code: inlineCode() }),
    });
}

describe("deploy-mode settings", () => {
  it("are required", () => {
    expect(build({}, { withSettings: false })).toThrow(/settings are required/);
  });

  it("refuse an empty artifact prefix, which the handlers would read as unset", () => {
    expect(build({ artifactPrefix: "" })).toThrow(/must not be empty/);
  });

  it("refuse prefixes the handlers would refuse", () => {
    expect(build({ artifactPrefix: "layers" })).toThrow(/artifactPrefix/);
    expect(build({ parameterPrefix: "layer-sync" })).toThrow(/parameterPrefix/);
    expect(build({ layerNamePrefix: "acme*" })).toThrow(/layerNamePrefix/);
  });

  it("refuse a malformed pipeline name, event bus or organization id", () => {
    expect(build({ pipelineName: "my pipeline" })).toThrow(/pipelineName/);
    expect(build({ summaryEventBus: "bad bus" })).toThrow(/summaryEventBus/);
    expect(build({ shareOrganizationId: "org-1" })).toThrow(/shareOrganizationId/);
  });

  it("refuse extra variables that would override a managed setting", () => {
    expect(build({ extraEnvironment: { ARTIFACT_PREFIX: "x/" } })).toThrow(/may not set ARTIFACT_PREFIX/);
  });

  it("are checked by the settings schema, every problem at once, naming the setting and its variable", () => {
    expect(
      build({
        compatibleArchitectures: ["sparc" as "arm64"],
        retainVersions: 0,
        extraEnvironment: { SOURCE_CONCURRENCY: "lots", NO_SUCH_SETTING: "1" },
      }),
    ).toThrow(
      /NO_SUCH_SETTING, which no layer-sync function reads[\s\S]*compatibleArchitectures \(COMPATIBLE_ARCHITECTURES [\s\S]*retainVersions \(RETAIN_VERSIONS [\s\S]*extraEnvironment SOURCE_CONCURRENCY /,
    );
  });

  it("accept every tuning variable the functions read", () => {
    expect(
      build({
        extraEnvironment: {
          SOURCE_CONCURRENCY: "4",
          SOURCE_TIMEOUT_SECONDS: "20",
          SOURCE_MAX_RETRIES: "2",
          SOURCE_RATE_LIMIT_WAIT_SECONDS: "30",
          SOURCE_MAX_FILES: "5000",
          SOURCE_MAX_BYTES: "100000000",
        },
      }),
    ).not.toThrow();
  });

  it("refuse an empty folder list", () => {
    expect(build({ sourcePaths: [] })).toThrow(/sourcePaths/);
  });
});

describe("template mode", () => {
  it("takes its settings from template parameters only", () => {
    expect(build({}, { mode: "template" })).toThrow(/template parameters/);
  });
});

describe("the cdk-nag acknowledgments", () => {
  it("do not hide a new wildcard resource in a scoped policy", () => {
    const app = new App();
    const stack = new LayerSyncStack(app, "Regression", { settings: SETTINGS, code: inlineCode() });
    expect(nagFindings(app, stack)).toEqual([]);
    stack.publishRole.addToPolicy(
      new iam.PolicyStatement({ sid: "Oops", actions: ["s3:GetObject"], resources: ["*"] }),
    );
    expect(nagFindings(app, stack)).toEqual([
      "AwsSolutions-IAM5[Resource::*] (error) at Regression/PublishRole/DefaultPolicy/Resource",
    ]);
  });
});
