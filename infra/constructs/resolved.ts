/**
 * What every construct of the stack is built from: the settings resolved from props (deploy mode) or from
 * template parameters (template mode, where deploy-time values are CloudFormation tokens), and the helpers
 * that turn a setting into a template condition.
 */
import { CfnCondition, type CfnResource, Fn } from "aws-cdk-lib";
import type * as events from "aws-cdk-lib/aws-events";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import type { ExtraRegions } from "./regions.ts";

/** On, off, or decided at deploy time by a template condition. */
export type Switch = boolean | CfnCondition;

/** The functions' code, when it is not bundled from handlers/ by NodejsFunction. */
export interface FunctionCode {
  readonly sync: lambda.Code;
  readonly publish: lambda.Code;
  /** The build-finished function (handlers/build.ts); needed only when builds are on. */
  readonly build?: lambda.Code;
}

/** Everything the resources are built from, with deploy-time values as tokens in template mode. */
export interface Resolved {
  readonly env: Record<string, string>;
  readonly artifactPrefix: string;
  readonly parameterPrefix: string;
  readonly pipelineName: string;
  readonly layerNamePrefix: string;
  readonly summaryEventBus: string;
  /** Resource of the token read (an SSM parameter ARN), when there is a token. */
  readonly tokenParameterArn: string | undefined;
  /** Resource of the token decrypt: the configured key, or `key/*` narrowed by conditions. */
  readonly tokenKeyArn: string;
  readonly hasToken: Switch;
  /** `o-xxxxxxxxxx` when SHARE_ORGANIZATION_ID is set, else `o-*`. */
  readonly organizationSegment: string;
  /** The organization's management account (Organizations ARNs name it): the setting, else the stack's account. */
  readonly managementAccount: string;
  /** The configured principals as RAM sees them (ram:Principal); a token list in template mode. */
  readonly ramPrincipals: readonly string[];
  /** ConcurrentBuildLimit of each CodeBuild project (a token in template mode). */
  readonly concurrentBuildLimit: number;
  /** A customer managed key for the artifact bucket / the failure topic (template mode: a condition). */
  readonly artifactKey: Switch;
  readonly topicKey: Switch;
  readonly gateMode: Switch;
  readonly eventTriggers: Switch;
  readonly reconcile: Switch;
  readonly reconcileSchedule: string;
  readonly notificationEmail: string | undefined;
  readonly notify: Switch;
  readonly code: FunctionCode | undefined;
  /** The publishing Regions other than the home one, when there are (or may be, in template mode) any. */
  readonly extraRegions: ExtraRegions | undefined;
  /** Builds in AWS (the CodeBuild projects, their role, the build-finished function and rule). */
  readonly builds: Switch;
  /** Resource of the package index credential CodeBuild reads (an SSM parameter ARN), when there is one. */
  readonly indexTokenParameterArn: string | undefined;
  readonly hasIndexToken: Switch;
}

/** Applies a deploy-time condition to a resource; `true` leaves it unconditional. */
export function applySwitch(resource: CfnResource, value: Switch): void {
  if (value instanceof CfnCondition) resource.cfnOptions.condition = value;
}

/** A rule that a template condition turns off is kept but DISABLED (its target permission refers to it). */
export function applyRuleSwitch(rule: events.Rule, value: Switch): void {
  if (value instanceof CfnCondition) {
    (rule.node.defaultChild as events.CfnRule).state = Fn.conditionIf(
      value.logicalId,
      "ENABLED",
      "DISABLED",
    ).toString();
  }
}

/** The variables that have a value (an empty string means unset to the handlers). */
export function definedOnly(env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v !== "") out[k] = v;
  return out;
}
