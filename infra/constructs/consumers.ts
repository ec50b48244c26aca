/**
 * The home-account side of reading consumers (`CONSUMER_SOURCE=roles`, lib/publish/consumer-sources.ts):
 * the publish role may assume the consumer read role, and only that role, in any account
 * (`arn:<partition>:iam::*:role/<CONSUMER_READ_ROLE>`; the member accounts' trust policies, from
 * infra/cfct/consumer-read-role.template.yaml, decide which accounts answer), and may list the
 * organization's accounts. The read role itself reads only functions (lambda:ListFunctions,
 * lambda:GetFunctionConfiguration). The `config` source needs grants this stack cannot know (the
 * aggregator, or the role in front of it): add them with the publish role's ARN (output PublishRoleArn).
 * The stack grants the default role name (layer-sync-consumer-read); a different CONSUMER_READ_ROLE needs
 * its own grant.
 */
import { Aws } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";

/** The publish role's statements for the `roles` consumer source: `scoped` on named resources, `unscoped` on "*". */
export function consumerStatements(readRoleName: string): {
  scoped: iam.PolicyStatement[];
  unscoped: iam.PolicyStatement[];
} {
  return {
    scoped: [
      new iam.PolicyStatement({
        sid: "AssumeConsumerReadRole",
        actions: ["sts:AssumeRole"],
        resources: [`arn:${Aws.PARTITION}:iam::*:role/${readRoleName}`],
      }),
    ],
    unscoped: [
      new iam.PolicyStatement({
        sid: "ListOrganizationAccounts",
        // organizations:ListAccounts has no resource type: "*" is the only valid resource.
        actions: ["organizations:ListAccounts"],
        resources: ["*"],
      }),
    ],
  };
}

/** Why the consumer statements' wildcards are intended (cdk-nag AwsSolutions-IAM5). */
export const CONSUMER_WILDCARD_REASONS: Readonly<Record<string, string>> = {
  AssumeConsumerReadRole:
    "Only the consumer read role, by name, in any account of the organization: the accounts are configuration and change; each role's trust policy admits only this stack's publish and CLI roles.",
};

export const CONSUMER_UNSCOPED_REASONS: Readonly<Record<string, string>> = {
  ListOrganizationAccounts: "organizations:ListAccounts has no resource type.",
};
