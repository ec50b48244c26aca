/**
 * The smoke test's IAM in the stack: the smoke role may only write its functions' logs; the publish role may
 * create, update, read and invoke only layer-sync-smoke-* functions and pass only the smoke role, to Lambda.
 */
import { App } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { beforeAll, describe, expect, it } from "vitest";
import { LayerSyncStack } from "../../infra/stack.ts";
import { ACCOUNT, inlineCode, logicalId, nagFindings, REGION, render, statementsOf } from "./support.ts";

let app: App;
let stack: LayerSyncStack;
let template: Template;

beforeAll(() => {
  app = new App();
  stack = new LayerSyncStack(app, "LayerSync", {
    env: { account: ACCOUNT, region: REGION },
    settings: {
      sourceProvider: "github",
      sourceRepository: "acme/layers",
      sourcePaths: ["layers/py-requests"],
      compatibleRuntimes: ["python3.13"],
    },
    code: inlineCode(),
  });
  template = Template.fromStack(stack);
});

describe("the smoke functions' IAM", () => {
  it("gives the smoke role nothing but writing the smoke functions' logs, assumed by Lambda only", () => {
    const role = template.toJSON().Resources[logicalId(stack.smokeRole)];
    expect(role.Properties.AssumeRolePolicyDocument.Statement).toEqual([
      { Action: "sts:AssumeRole", Effect: "Allow", Principal: { Service: "lambda.amazonaws.com" } },
    ]);
    expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    const statements = statementsOf(template, logicalId(stack.smokeRole));
    expect(statements.map((s) => [s.sid, s.actions])).toEqual([
      ["CreateSmokeLogGroups", ["logs:CreateLogGroup"]],
      ["WriteSmokeLogs", ["logs:CreateLogStream", "logs:PutLogEvents"]],
    ]);
    expect(statements.map((s) => s.resources.map(render))).toEqual([
      ["arn:<AWS::Partition>:logs:*:<AWS::AccountId>:log-group:/aws/lambda/layer-sync-smoke-*"],
      ["arn:<AWS::Partition>:logs:*:<AWS::AccountId>:log-group:/aws/lambda/layer-sync-smoke-*:*"],
    ]);
  });

  it("lets the publish role manage and invoke only layer-sync-smoke-* functions and pass only the smoke role", () => {
    const statements = statementsOf(template, logicalId(stack.publishRole));
    const manage = statements.find((s) => s.sid === "ManageSmokeFunctions");
    expect(manage?.actions).toEqual([
      "lambda:CreateFunction",
      "lambda:GetFunctionConfiguration",
      "lambda:InvokeFunction",
      "lambda:TagResource",
      "lambda:UpdateFunctionCode",
      "lambda:UpdateFunctionConfiguration",
    ]);
    expect(manage?.resources.map(render)).toEqual([
      "arn:<AWS::Partition>:lambda:*:<AWS::AccountId>:function:layer-sync-smoke-*",
    ]);
    const pass = statements.filter((s) => s.actions.includes("iam:PassRole"));
    expect(pass.map((s) => [s.sid, s.resources.map(render), s.conditions])).toEqual([
      [
        "PassSmokeRole",
        [`<${logicalId(stack.smokeRole)}.Arn>`],
        { StringEquals: { "iam:PassedToService": "lambda.amazonaws.com" } },
      ],
    ]);
    // no other statement of any role grants a Lambda function action
    const functionActions = statements.filter(
      (s) => s.sid !== "ManageSmokeFunctions" && s.actions.some((a) => /Function/.test(a)),
    );
    expect(functionActions).toEqual([]);
  });

  it("turns the smoke test on by giving the functions that publish SMOKE_ROLE_ARN", () => {
    for (const fn of [stack.publishFunction, stack.syncFunction]) {
      const env = template.toJSON().Resources[logicalId(fn)].Properties.Environment.Variables;
      expect(render(env.SMOKE_ROLE_ARN)).toBe(`<${logicalId(stack.smokeRole)}.Arn>`);
    }
    // without gate mode the sync role gets no smoke statement (it never publishes)
    const sync = statementsOf(template, logicalId(stack.syncRole));
    expect(sync.filter((s) => s.sid === "ManageSmokeFunctions" || s.sid === "PassSmokeRole")).toEqual([]);
  });

  it("stays cdk-nag clean", () => {
    expect(nagFindings(app, stack)).toEqual([]);
  });
});
