import { describe, expect, it } from "vitest";
import { PublishError } from "../../lib/common/errors.ts";
import {
  accountStatementId,
  desiredStatements,
  organizationStatementId,
  parsePolicy,
  statementMatches,
} from "../../lib/publish/permissions.ts";

describe("the desired layer permission statements", () => {
  it("grant the organization through '*' plus OrganizationId and each account by its id, with deterministic ids", () => {
    expect(desiredStatements({ organizationId: "o-abcdefghij", accountIds: ["222222222222", "111111111111"] })).toEqual(
      [
        { sid: "layer-sync-org-o-abcdefghij", principal: "*", organizationId: "o-abcdefghij" },
        { sid: "layer-sync-account-111111111111", principal: "111111111111" },
        { sid: "layer-sync-account-222222222222", principal: "222222222222" },
      ],
    );
    expect(organizationStatementId("o-abcdefghij")).toBe("layer-sync-org-o-abcdefghij");
    expect(accountStatementId("111111111111")).toBe("layer-sync-account-111111111111");
  });

  it("list an account once even when it is configured and also found under an OU", () => {
    const sids = desiredStatements({ organizationId: undefined, accountIds: ["111111111111", "111111111111"] }).map(
      (s) => s.sid,
    );
    expect(sids).toEqual(["layer-sync-account-111111111111"]);
  });

  it("refuse a '*' account, which would make the layer public", () => {
    expect(() => desiredStatements({ organizationId: undefined, accountIds: ["*"] })).toThrowError(PublishError);
    expect(() => desiredStatements({ organizationId: undefined, accountIds: ["*"] })).toThrowError(/public/);
  });

  it("refuse an organization id that is not o-…", () => {
    expect(() => desiredStatements({ organizationId: "*", accountIds: [] })).toThrowError(/organization id like o-/);
  });
});

describe("reading a layer version policy", () => {
  it("understands the AWS rendering of an organization grant and an account grant", () => {
    const policy = JSON.stringify({
      Version: "2012-10-17",
      Statement: [
        {
          Sid: "layer-sync-org-o-abcdefghij",
          Effect: "Allow",
          Principal: "*",
          Action: "lambda:GetLayerVersion",
          Resource: "arn:aws:lambda:eu-west-1:123456789012:layer:l:1",
          Condition: { StringEquals: { "aws:PrincipalOrgID": "o-abcdefghij" } },
        },
        {
          Sid: "layer-sync-account-111111111111",
          Effect: "Allow",
          Principal: { AWS: "arn:aws:iam::111111111111:root" },
          Action: "lambda:GetLayerVersion",
          Resource: "arn:aws:lambda:eu-west-1:123456789012:layer:l:1",
        },
      ],
    });
    const [org, account] = parsePolicy(policy);
    expect(org).toEqual({
      sid: "layer-sync-org-o-abcdefghij",
      actions: ["lambda:GetLayerVersion"],
      principal: "*",
      organizationId: "o-abcdefghij",
    });
    expect(account).toEqual({
      sid: "layer-sync-account-111111111111",
      actions: ["lambda:GetLayerVersion"],
      principal: "111111111111",
      organizationId: undefined,
    });
    expect(
      statementMatches(org as NonNullable<typeof org>, { sid: "x", principal: "*", organizationId: "o-abcdefghij" }),
    ).toBe(true);
    expect(statementMatches(account as NonNullable<typeof account>, { sid: "x", principal: "111111111111" })).toBe(
      true,
    );
  });

  it("understands moto's rendering (raw OrganizationId, bare account principal)", () => {
    const policy = JSON.stringify({
      Statement: [
        { Sid: "a", Action: "lambda:GetLayerVersion", Principal: "*", OrganizationId: "o-abcdefghij" },
        { Sid: "b", Action: "lambda:GetLayerVersion", Principal: "111111111111" },
      ],
    });
    expect(parsePolicy(policy).map((s) => [s.principal, s.organizationId])).toEqual([
      ["*", "o-abcdefghij"],
      ["111111111111", undefined],
    ]);
  });

  it("does not count a statement with another action, principal or organization as matching", () => {
    const [s] = parsePolicy(
      JSON.stringify({ Statement: [{ Sid: "a", Action: "lambda:*", Principal: "*", OrganizationId: "o-abcdefghij" }] }),
    );
    const existing = s as NonNullable<typeof s>;
    expect(statementMatches(existing, { sid: "a", principal: "*", organizationId: "o-abcdefghij" })).toBe(false);
    const same = { ...existing, actions: ["lambda:GetLayerVersion"] };
    expect(statementMatches(same, { sid: "a", principal: "*", organizationId: "o-bbbbbbbbbb" })).toBe(false);
    expect(statementMatches(same, { sid: "a", principal: "111111111111" })).toBe(false);
  });

  it("treats no policy as no statements and rejects a policy that is not JSON", () => {
    expect(parsePolicy(undefined)).toEqual([]);
    expect(() => parsePolicy("{nope")).toThrowError(/not JSON/);
  });
});
