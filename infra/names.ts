/**
 * ARNs and names the stack's IAM statements and event patterns are built from.
 *
 * The one trap this module exists for: an SSM parameter called `/layer-sync/x` has the ARN
 * `arn:aws:ssm:<region>:<account>:parameter/layer-sync/x` (one slash). Gluing `parameter/` to a
 * fully qualified name gives `parameter//layer-sync/x`, which IAM never matches, so the grant silently
 * does nothing (aws/aws-cdk#4803). Every parameter ARN in the stack goes through `parameterArnResource`.
 */
import { Aws, Fn, Token } from "aws-cdk-lib";
import { DEFAULTS, SETTINGS } from "../lib/common/settings.ts";

/** The SSM path the handlers use when PARAMETER_PREFIX is unset (lib/common/settings.ts `DEFAULTS`). */
export const DEFAULT_PARAMETER_PREFIX = DEFAULTS.parameterPrefix;
/** The S3 key prefix the handlers use when ARTIFACT_PREFIX is unset. */
export const DEFAULT_ARTIFACT_PREFIX = DEFAULTS.artifactPrefix;
/** CfCT's pipeline name, fixed by its initiation template. */
export const DEFAULT_PIPELINE_NAME = DEFAULTS.pipelineName;
/** The account's default event bus: the stack's SUMMARY_EVENT_BUS unless set (the schema's deploy default). */
export const DEFAULT_SUMMARY_EVENT_BUS = SETTINGS.summaryEventBus.deploy.default;

const PARAMETER_PATH = /^(\/[A-Za-z0-9_.-]+)+$/;

/** Removes every leading `/`: `/a/b` → `a/b`, `a/b` → `a/b`. Concrete strings only. */
export function stripLeadingSlash(name: string): string {
  return name.replace(/^\/+/, "");
}

/**
 * The resource part of a parameter ARN, `parameter/<name without leading slash>`, for a concrete name
 * or pattern (`/layer-sync/*` → `parameter/layer-sync/*`).
 */
export function parameterArnResource(name: string): string {
  if (Token.isUnresolved(name)) {
    throw new Error(
      "parameterArnResource needs a concrete name; use parameterArn() for names from template parameters",
    );
  }
  const bare = stripLeadingSlash(name);
  if (bare === "" || bare.includes("//")) throw new Error(`"${name}" is not a usable SSM parameter name or pattern`);
  return `parameter/${bare}`;
}

/**
 * The ARN of a parameter (or a pattern of parameters) in this stack's account and Region.
 *
 * - A concrete name is stripped of its leading slash: `/layer-sync/*` → `…:parameter/layer-sync/*`.
 * - A full ARN is returned unchanged (TOKEN_PARAMETER_NAME may be one).
 * - A name that is a CloudFormation token (template mode) must start with `/`, which the template
 *   parameter's AllowedPattern enforces; the ARN is then `…:parameter` + name, again one slash.
 */
export function parameterArn(name: string): string {
  if (Token.isUnresolved(name)) return `arn:${Aws.PARTITION}:ssm:${Aws.REGION}:${Aws.ACCOUNT_ID}:parameter${name}`;
  if (name.startsWith("arn:")) return name;
  return `arn:${Aws.PARTITION}:ssm:${Aws.REGION}:${Aws.ACCOUNT_ID}:${parameterArnResource(name)}`;
}

/**
 * Checks and normalises PARAMETER_PREFIX the way lib/common/config.ts does: trailing slashes removed, a
 * leading slash required (SSM rejects hierarchical names without one), not under /aws or /ssm.
 */
export function normaliseParameterPrefix(prefix: string): string {
  if (Token.isUnresolved(prefix)) return prefix;
  const clean = prefix.replace(/\/+$/, "");
  if (!PARAMETER_PATH.test(clean) || /^\/(aws|ssm)/i.test(clean)) {
    throw new Error(
      `parameterPrefix must be an SSM path such as /layer-sync: a leading "/", letters, digits, "_.-", not /aws or /ssm (got "${prefix}")`,
    );
  }
  return clean;
}

/** Checks ARTIFACT_PREFIX the way lib/common/config.ts does: empty, or ending in `/` and not starting with one. */
export function checkArtifactPrefix(prefix: string): string {
  if (Token.isUnresolved(prefix)) return prefix;
  if (prefix.startsWith("/") || (prefix !== "" && !prefix.endsWith("/")) || prefix.includes("*")) {
    throw new Error(`artifactPrefix must be empty or end with "/" and not start with "/" (got "${prefix}")`);
  }
  return prefix;
}

/**
 * The two spellings of a parameter-name pattern that the Parameter Store Change rule matches: with and
 * without the leading slash (whether `detail.name` carries it is not documented; aws-facts §2). For a
 * token prefix (template mode, AllowedPattern guarantees the slash) the bare form is computed at deploy
 * time: `Fn::Select(1, Fn::Split("#/", "#" + prefix))` drops exactly the first character.
 */
export function parameterNameSpellings(prefix: string, suffix: string): [string, string] {
  if (Token.isUnresolved(prefix)) {
    const bare = Fn.select(1, Fn.split("#/", `#${prefix}`));
    return [`${prefix}${suffix}`, `${bare}${suffix}`];
  }
  const withSlash = `/${stripLeadingSlash(prefix)}${suffix}`;
  return [withSlash, stripLeadingSlash(withSlash)];
}

/** The name of an event bus from a name or an ARN (SUMMARY_EVENT_BUS may be either). */
export function eventBusArn(nameOrArn: string): string {
  if (!Token.isUnresolved(nameOrArn) && nameOrArn.startsWith("arn:")) return nameOrArn;
  return `arn:${Aws.PARTITION}:events:${Aws.REGION}:${Aws.ACCOUNT_ID}:event-bus/${nameOrArn}`;
}

/** `arn:…:lambda:R:A:layer:{prefix}*` — every layer this stack may publish. */
export function layerArnPattern(layerNamePrefix: string): string {
  return `arn:${Aws.PARTITION}:lambda:${Aws.REGION}:${Aws.ACCOUNT_ID}:layer:${layerNamePrefix}*`;
}

/** `arn:…:lambda:R:A:layer:{prefix}*:*` — every version of those layers. */
export function layerVersionArnPattern(layerNamePrefix: string): string {
  return `${layerArnPattern(layerNamePrefix)}:*`;
}
