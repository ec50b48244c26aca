import { describe, expect, it } from "vitest";
import { callFailed } from "../../lib/common/aws-errors.ts";
import { PublishError, ShareError } from "../../lib/common/errors.ts";
import { ssmParameterArn } from "../../lib/publish/parameters.ts";
import { resourceShareName, shareClientToken } from "../../lib/publish/share.ts";

describe("the ARN of the shared parameter", () => {
  it("has exactly one slash after 'parameter', whatever the name starts with", () => {
    expect(ssmParameterArn("aws", "eu-west-1", "123456789012", "/layer-sync/py-requests/layer-version-arn")).toBe(
      "arn:aws:ssm:eu-west-1:123456789012:parameter/layer-sync/py-requests/layer-version-arn",
    );
    expect(ssmParameterArn("aws", "eu-west-1", "123456789012", "flat")).toBe(
      "arn:aws:ssm:eu-west-1:123456789012:parameter/flat",
    );
  });
});

describe("the resource share", () => {
  it("is named after the package", () => {
    expect(resourceShareName("py-requests")).toBe("layer-sync-py-requests");
  });

  it("is created with a client token that is the same for the same request and differs otherwise", () => {
    const token = shareClientToken("2026-11-21T10", "layer-sync-a", "arn:r", "p1");
    expect(token).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(shareClientToken("2026-11-21T10", "layer-sync-a", "arn:r", "p1")).toBe(token);
    expect(shareClientToken("2026-11-21T11", "layer-sync-a", "arn:r", "p1")).not.toBe(token);
    expect(shareClientToken("2026-11-21T10", "layer-sync-a", "arn:r", "p2")).not.toBe(token);
  });
});

describe("AWS failures", () => {
  const denied = Object.assign(new Error("User is not authorized\nto perform this"), {
    name: "AccessDeniedException",
    $metadata: { httpStatusCode: 403 },
  });

  it("name the call, the resource and the IAM action to grant when access is denied, on one line", () => {
    const error = callFailed(
      PublishError,
      { call: "lambda:AddLayerVersionPermission", resource: "layer l version 3" },
      denied,
    );
    expect(error).toBeInstanceOf(PublishError);
    expect(error.cause).toBe(denied);
    expect(error.message).toBe(
      "lambda:AddLayerVersionPermission on layer l version 3 failed (AccessDeniedException: User is not authorized to perform this); grant lambda:AddLayerVersionPermission on layer l version 3 to the role that runs layer-sync",
    );
  });

  it("use specific advice for a known error name before the generic advice", () => {
    const error = callFailed(
      ShareError,
      {
        call: "ram:CreateResourceShare",
        resource: "share s",
        advice: { OperationNotPermittedException: "enable sharing" },
      },
      Object.assign(new Error("no"), { name: "OperationNotPermittedException" }),
    );
    expect(error).toBeInstanceOf(ShareError);
    expect(error.message).toMatch(
      /ram:CreateResourceShare on share s failed \(OperationNotPermittedException: no\); enable sharing$/,
    );
  });

  it("say that a throttled call can simply be run again", () => {
    const error = callFailed(
      PublishError,
      { call: "lambda:ListLayerVersions", resource: "layer l" },
      Object.assign(new Error("slow down"), { name: "TooManyRequestsException" }),
    );
    expect(error.message).toMatch(/throttled.*run again later/);
  });
});
