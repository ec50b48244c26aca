import { App, Fn, Stack } from "aws-cdk-lib";
import { describe, expect, it } from "vitest";
import {
  checkArtifactPrefix,
  eventBusArn,
  layerArnPattern,
  layerVersionArnPattern,
  normaliseParameterPrefix,
  parameterArn,
  parameterArnResource,
  parameterNameSpellings,
  stripLeadingSlash,
} from "../../infra/names.ts";
import { render } from "./support.ts";

/** Resolves a (possibly tokenised) string the way CloudFormation will see it, rendered readably. */
function resolved(value: string): string {
  const stack = new Stack(new App(), "Names");
  return render(stack.resolve(value));
}

const HERE = "arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>";

describe("parameter ARNs", () => {
  it("strip the leading slash, so /layer-sync/* becomes parameter/layer-sync/* and never parameter//layer-sync/*", () => {
    expect(parameterArnResource("/layer-sync/*")).toBe("parameter/layer-sync/*");
    expect(resolved(parameterArn("/layer-sync/*"))).toBe(`${HERE}:parameter/layer-sync/*`);
    expect(resolved(parameterArn("/layer-sync/*"))).not.toContain("parameter//");
  });

  it("leave names without a leading slash as they are", () => {
    expect(parameterArnResource("bitbucket-token")).toBe("parameter/bitbucket-token");
    expect(resolved(parameterArn("layer-sync/x/artifact-key"))).toBe(`${HERE}:parameter/layer-sync/x/artifact-key`);
  });

  it("pass a full ARN through unchanged", () => {
    const arn = "arn:aws:ssm:eu-west-1:111111111111:parameter/layer-sync/token";
    expect(parameterArn(arn)).toBe(arn);
  });

  it("join a template-parameter name (which the template forces to start with /) without adding a slash", () => {
    const stack = new Stack(new App(), "Tokens");
    const name = Fn.ref("TokenParameterName");
    expect(render(stack.resolve(parameterArn(name)))).toBe(`${HERE}:parameter<TokenParameterName>`);
  });

  it("refuse names that would produce an empty or doubled path", () => {
    expect(() => parameterArnResource("/")).toThrow(/not a usable/);
    expect(() => parameterArnResource("/a//b")).toThrow(/not a usable/);
    expect(() => parameterArnResource(Fn.ref("X"))).toThrow(/concrete name/);
  });

  it("strip every leading slash and nothing else", () => {
    expect(stripLeadingSlash("//a/b/")).toBe("a/b/");
  });
});

describe("the parameter prefix", () => {
  it("loses trailing slashes and keeps its leading one", () => {
    expect(normaliseParameterPrefix("/platform/layer-sync/")).toBe("/platform/layer-sync");
    expect(normaliseParameterPrefix("/layer-sync")).toBe("/layer-sync");
  });

  it("must start with a slash and stay out of /aws and /ssm, as the handlers require", () => {
    expect(() => normaliseParameterPrefix("layer-sync")).toThrow(/leading "\/"/);
    expect(() => normaliseParameterPrefix("/aws/layers")).toThrow(/\/aws/);
    expect(() => normaliseParameterPrefix("/ssm")).toThrow(/\/ssm/);
    expect(() => normaliseParameterPrefix("/a b")).toThrow();
  });

  it("is matched by the change rule with and without the leading slash", () => {
    expect(parameterNameSpellings("/layer-sync", "/*/artifact-key")).toEqual([
      "/layer-sync/*/artifact-key",
      "layer-sync/*/artifact-key",
    ]);
  });

  it("drops exactly the first character at deploy time when it is a template parameter", () => {
    const stack = new Stack(new App(), "Spellings");
    const [withSlash, withoutSlash] = parameterNameSpellings(Fn.ref("ParameterPrefix"), "/*/artifact-key");
    expect(render(stack.resolve(withSlash))).toBe("<ParameterPrefix>/*/artifact-key");
    expect(render(stack.resolve(withoutSlash))).toBe("Fn::Select(1, Fn::Split(#/, #<ParameterPrefix>))/*/artifact-key");
  });
});

describe("the artifact prefix", () => {
  it("is empty or ends with a slash, and never starts with one", () => {
    expect(checkArtifactPrefix("layers/")).toBe("layers/");
    expect(checkArtifactPrefix("")).toBe("");
    expect(() => checkArtifactPrefix("layers")).toThrow();
    expect(() => checkArtifactPrefix("/layers/")).toThrow();
    expect(() => checkArtifactPrefix("a*/")).toThrow();
  });
});

describe("other ARNs", () => {
  it("name the event bus by name or keep a given ARN", () => {
    expect(resolved(eventBusArn("default"))).toBe(
      "arn:<AWS::Partition>:events:<AWS::Region>:<AWS::AccountId>:event-bus/default",
    );
    const arn = "arn:aws:events:eu-west-1:111111111111:event-bus/central";
    expect(eventBusArn(arn)).toBe(arn);
  });

  it("cover the layers under the name prefix and their versions", () => {
    const lambda = "arn:<AWS::Partition>:lambda:<AWS::Region>:<AWS::AccountId>";
    expect(resolved(layerArnPattern("acme-"))).toBe(`${lambda}:layer:acme-*`);
    expect(resolved(layerVersionArnPattern("acme-"))).toBe(`${lambda}:layer:acme-*:*`);
  });
});
