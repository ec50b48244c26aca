/**
 * The smoke test's IAM (docs/publishing.md "Release flow"): the execution role of the smoke functions, with
 * nothing but writing their own logs, and what the publish role needs to use them: create, update, read and
 * invoke only functions named `layer-sync-smoke-*` (publish creates them on demand in every Region of
 * PUBLISH_REGIONS, so the Region is a wildcard), and pass only the smoke role, only to Lambda.
 * The publish function gets the role's ARN as SMOKE_ROLE_ARN, which turns the smoke test on.
 */
import { Aws, type Stack } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import type { CheckedPolicy } from "./nag.ts";

/** lib/publish/smoke.ts names the functions `layer-sync-smoke-{runtime}-{architecture}`. */
export const SMOKE_FUNCTION_PATTERN = "layer-sync-smoke-*";

/** Why the smoke statements' ARNs contain `*`, by statement id (cdk-nag IAM5 acknowledgements). */
export const SMOKE_WILDCARD_REASONS: Readonly<Record<string, string>> = {
  CreateSmokeLogGroups:
    "The log groups /aws/lambda/layer-sync-smoke-* of the smoke functions (one per runtime and architecture, created on demand in each PUBLISH_REGIONS Region).",
  WriteSmokeLogs:
    "The log groups /aws/lambda/layer-sync-smoke-* of the smoke functions (one per runtime and architecture, created on demand in each PUBLISH_REGIONS Region) and their streams.",
  ManageSmokeFunctions:
    "Only functions named layer-sync-smoke-* (one per runtime and architecture), in every Region of PUBLISH_REGIONS, where publish creates them on demand.",
};

export function smokeFunctionsArn(): string {
  return `arn:${Aws.PARTITION}:lambda:*:${Aws.ACCOUNT_ID}:function:${SMOKE_FUNCTION_PATTERN}`;
}

/** The statements the publish role needs to smoke-test new versions. */
export function smokeStatements(smokeRoleArn: string): iam.PolicyStatement[] {
  return [
    new iam.PolicyStatement({
      sid: "ManageSmokeFunctions",
      actions: [
        "lambda:CreateFunction",
        "lambda:GetFunctionConfiguration",
        "lambda:UpdateFunctionCode",
        "lambda:UpdateFunctionConfiguration",
        "lambda:InvokeFunction",
        "lambda:TagResource",
      ],
      resources: [smokeFunctionsArn()],
    }),
    new iam.PolicyStatement({
      sid: "PassSmokeRole",
      actions: ["iam:PassRole"],
      resources: [smokeRoleArn],
      conditions: { StringEquals: { "iam:PassedToService": "lambda.amazonaws.com" } },
    }),
  ];
}

/**
 * The smoke role, the publish role's statements and SMOKE_ROLE_ARN on the functions that publish (the sync
 * function publishes in pipeline-gate mode; its statements come with the gate policy, `grants.ts`). Returns
 * the policies for the cdk-nag acknowledgements.
 */
export function createSmoke(
  scope: Stack,
  functions: { publishFunction: lambda.Function; publishRole: iam.Role; syncFunction: lambda.Function },
): { role: iam.Role; policies: CheckedPolicy[] } {
  const role = new iam.Role(scope, "SmokeRole", {
    assumedBy: new iam.ServicePrincipal("lambda.amazonaws.com"),
    description: "layer-sync smoke functions: import a new layer version's modules; may only write their logs",
  });
  const logs = new iam.Policy(scope, "SmokeRolePolicy", {
    roles: [role],
    statements: [
      new iam.PolicyStatement({
        sid: "CreateSmokeLogGroups",
        // logs:CreateLogGroup matches the log group's own ARN (no ":*")
        actions: ["logs:CreateLogGroup"],
        resources: [`arn:${Aws.PARTITION}:logs:*:${Aws.ACCOUNT_ID}:log-group:/aws/lambda/${SMOKE_FUNCTION_PATTERN}`],
      }),
      new iam.PolicyStatement({
        sid: "WriteSmokeLogs",
        actions: ["logs:CreateLogStream", "logs:PutLogEvents"],
        resources: [`arn:${Aws.PARTITION}:logs:*:${Aws.ACCOUNT_ID}:log-group:/aws/lambda/${SMOKE_FUNCTION_PATTERN}:*`],
      }),
    ],
  });
  for (const s of smokeStatements(role.roleArn)) functions.publishRole.addToPolicy(s);
  functions.publishFunction.addEnvironment("SMOKE_ROLE_ARN", role.roleArn);
  functions.syncFunction.addEnvironment("SMOKE_ROLE_ARN", role.roleArn);
  return { role, policies: [{ scope: logs, document: logs.document }] };
}
