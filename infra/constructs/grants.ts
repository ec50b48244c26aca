/**
 * Attaches the statements of iam.ts to the roles. Scoped statements (concrete ARNs and patterns under this
 * stack's names) go to each role's default policy; statements whose actions have no resource-level
 * permissions ("*") live in policies of their own, so a "*" anywhere else is still a cdk-nag finding.
 */
import { Aws, CfnCondition, Fn, type Stack } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
import type * as kms from "aws-cdk-lib/aws-kms";
import type * as s3 from "aws-cdk-lib/aws-s3";
import { eventBusArn, parameterArn } from "../names.ts";
import type { LayerSyncOptions } from "../settings.ts";
import { type BuildNames, buildFinishedStatements, buildSettleStatements, buildStartStatements } from "./build-iam.ts";
import type { Functions } from "./functions.ts";
import { logStatement, type Names, publishStatements, syncStatements, tokenStatements } from "./iam.ts";
import type { CheckedPolicy } from "./nag.ts";
import { regionStatements, SHARED_PARAMETER_SUFFIXES } from "./regions.ts";
import { applySwitch, type Resolved, type Switch } from "./resolved.ts";
import { smokeStatements } from "./smoke.ts";

export interface GrantInputs {
  readonly resolved: Resolved;
  readonly options: LayerSyncOptions;
  readonly functions: Functions;
  readonly artifactBucket: s3.IBucket;
  readonly artifactKey: kms.IKey | undefined;
  /** The smoke functions' role: in gate mode the sync function smoke-tests what it publishes too. */
  readonly smokeRoleArn?: string;
  /** The build resources' names, when builds are on. */
  readonly builds: BuildNames | undefined;
  /** Template mode: keys that exist only when their template condition holds. */
  readonly conditionalKeys?: ConditionalKeys;
}

/** Keys created only when a template condition holds (ArtifactEncryption=kms, TopicEncryption=true). */
export interface ConditionalKeys {
  readonly artifact: { readonly key: kms.IKey; readonly on: CfnCondition } | undefined;
  readonly topic: { readonly key: kms.IKey; readonly on: CfnCondition } | undefined;
}

/** The statements for using the artifact key: uploads need GenerateDataKey, reads Decrypt. */
export function artifactKeyStatement(keyArn: string, write: boolean): iam.PolicyStatement {
  return new iam.PolicyStatement({
    sid: write ? "UseArtifactKey" : "DecryptArtifacts",
    actions: write ? ["kms:Decrypt", "kms:GenerateDataKey"] : ["kms:Decrypt"],
    resources: [keyArn],
  });
}

/** Publishing to the encrypted failure topic (the functions' on-failure destination), as CDK grants it. */
export function topicKeyStatement(keyArn: string): iam.PolicyStatement {
  return new iam.PolicyStatement({
    sid: "PublishToEncryptedTopic",
    actions: ["kms:Decrypt", "kms:GenerateDataKey*"],
    resources: [keyArn],
  });
}

/**
 * A policy of its own that exists only when `on` holds, for roles that always exist when it does (a Ref
 * from an unconditional policy to a conditional key would fail the deployment when the key is absent).
 */
export function conditionalPolicy(
  scope: Stack,
  id: string,
  roles: readonly iam.IRole[],
  statements: iam.PolicyStatement[],
  on: CfnCondition,
): CheckedPolicy {
  const document = new iam.PolicyDocument({ statements });
  const policy = new iam.CfnPolicy(scope, id, {
    policyName: id,
    roles: roles.map((r) => r.roleName),
    policyDocument: document,
  });
  applySwitch(policy, on);
  return { scope: policy, document };
}

/** The ARNs and patterns every statement is built from. */
export function namesOf(input: GrantInputs): Names {
  const { resolved } = input;
  return {
    bucketArn: input.artifactBucket.bucketArn,
    objectsArn: input.artifactBucket.arnForObjects(`${resolved.artifactPrefix}*`),
    artifactPrefix: resolved.artifactPrefix,
    parametersArn: parameterArn(`${resolved.parameterPrefix}/*`),
    parameterPathArn: parameterArn(resolved.parameterPrefix),
    sharedParameterArns: SHARED_PARAMETER_SUFFIXES.map((suffix) =>
      parameterArn(`${resolved.parameterPrefix}/*/${suffix}`),
    ),
    // Any Region: RAM shares the parameters of every publishing Region (template-mode prefixes start with "/").
    sharedParameterArnPatterns: SHARED_PARAMETER_SUFFIXES.map(
      (suffix) => `arn:${Aws.PARTITION}:ssm:*:${Aws.ACCOUNT_ID}:parameter${resolved.parameterPrefix}/*/${suffix}`,
    ),
    ramPrincipals: resolved.ramPrincipals,
    artifactKeyParametersArn: parameterArn(`${resolved.parameterPrefix}/*/artifact-key`),
    layerNamePrefix: resolved.layerNamePrefix,
    eventBusArn: eventBusArn(resolved.summaryEventBus),
    artifactKeyArn: input.artifactKey?.keyArn,
    organizationsAccount: resolved.managementAccount,
    organizationSegment: resolved.organizationSegment,
  };
}

/** Grants both roles their statements; returns every policy, for the cdk-nag acknowledgements. */
export function grantPermissions(scope: Stack, input: GrantInputs): CheckedPolicy[] {
  const { resolved } = input;
  const { syncFunction, publishFunction, syncRole, publishRole, syncLogs, publishLogs } = input.functions;
  const names = namesOf(input);
  for (const s of syncStatements(names, syncLogs.logGroupArn)) syncRole.addToPolicy(s);
  const publish = publishStatements(names, publishLogs.logGroupArn);
  for (const s of publish.scoped) publishRole.addToPolicy(s);
  const policies: CheckedPolicy[] = [];
  // Extra policies are L1 resources: role.attachInlinePolicy would make the functions DependsOn them,
  // and a DependsOn on a resource whose template condition is false fails the deployment.
  // Unconditional ones are dependencies of their function, so it never runs without them.
  const attach = (
    fn: iam.IGrantable & { node: Stack["node"] },
    role: iam.Role,
    id: string,
    statements: iam.PolicyStatement[],
    on: Switch,
  ) => {
    const document = new iam.PolicyDocument({ statements });
    // Created beside the role, not inside it: the functions depend on their role's whole subtree.
    const policy = new iam.CfnPolicy(scope, id, { policyName: id, roles: [role.roleName], policyDocument: document });
    applySwitch(policy, on);
    if (on === true) fn.node.addDependency(policy);
    policies.push({ scope: policy, document });
  };
  attach(publishFunction, publishRole, "PublishUnscopedActionsPolicy", publish.unscoped, true);
  if (resolved.tokenParameterArn !== undefined && resolved.hasToken !== false) {
    attach(
      syncFunction,
      syncRole,
      "SyncTokenPolicy",
      tokenStatements(resolved.tokenParameterArn, resolved.tokenKeyArn),
      resolved.hasToken,
    );
  }
  if (resolved.gateMode !== false) {
    // Gate mode: sync publishes too, and reports the CodePipeline job result.
    const gate = publishStatements(names, undefined);
    const smoke = input.smokeRoleArn === undefined ? [] : smokeStatements(input.smokeRoleArn);
    attach(syncFunction, syncRole, "SyncGatePolicy", [...gate.scoped, ...smoke], resolved.gateMode);
    attach(
      syncFunction,
      syncRole,
      "SyncGateUnscopedActionsPolicy",
      [
        ...gate.unscoped,
        new iam.PolicyStatement({
          sid: "ReportPipelineJobResult",
          actions: ["codepipeline:PutJobSuccessResult", "codepipeline:PutJobFailureResult"],
          // CodePipeline job-result actions have no resource-level permissions: "*" is the only valid resource.
          resources: ["*"],
        }),
      ],
      resolved.gateMode,
    );
  }
  const extra = resolved.extraRegions;
  if (extra !== undefined) {
    // The extra Regions: in a policy of their own, which template mode creates only when PublishRegions is set.
    const statements = () => regionStatements({ ...names, parameterPrefix: resolved.parameterPrefix }, extra);
    const on = extra.kind === "list" ? true : extra.on;
    attach(publishFunction, publishRole, "PublishRegionsPolicy", statements(), on);
    if (resolved.gateMode !== false) {
      const gateOn =
        on === true
          ? resolved.gateMode
          : resolved.gateMode === true
            ? on
            : new CfnCondition(scope, "IsGateModeWithRegions", { expression: Fn.conditionAnd(resolved.gateMode, on) });
      attach(syncFunction, syncRole, "SyncGateRegionsPolicy", statements(), gateOn);
    }
  }
  const builds = input.builds;
  const build = input.functions.build;
  if (builds !== undefined && build !== undefined && resolved.builds !== false) {
    build.role.addToPolicy(logStatement(build.logs.logGroupArn));
    for (const s of buildFinishedStatements(names, builds)) build.role.addToPolicy(s);
    // Starting builds; in gate mode the sync also settles them (what the build-finished function reads).
    attach(syncFunction, syncRole, "SyncBuildsPolicy", buildStartStatements(builds), resolved.builds);
    if (resolved.gateMode !== false) {
      const gateOn =
        resolved.builds === true
          ? resolved.gateMode
          : resolved.gateMode === true
            ? resolved.builds
            : new CfnCondition(scope, "IsGateModeWithBuilds", {
                expression: Fn.conditionAnd(resolved.gateMode, resolved.builds),
              });
      attach(syncFunction, syncRole, "SyncGateBuildsPolicy", buildSettleStatements(names, builds), gateOn);
    }
  }
  const keys = input.conditionalKeys;
  if (keys?.artifact) {
    const arn = keys.artifact.key.keyArn;
    policies.push(
      conditionalPolicy(
        scope,
        "SyncArtifactKeyPolicy",
        [syncRole],
        [artifactKeyStatement(arn, true)],
        keys.artifact.on,
      ),
      conditionalPolicy(
        scope,
        "PublishArtifactKeyPolicy",
        [publishRole],
        [artifactKeyStatement(arn, false)],
        keys.artifact.on,
      ),
    );
  }
  if (keys?.topic) {
    policies.push(
      conditionalPolicy(
        scope,
        "FunctionsTopicKeyPolicy",
        [syncRole, publishRole],
        [topicKeyStatement(keys.topic.key.keyArn)],
        keys.topic.on,
      ),
    );
  }
  for (const role of [syncRole, publishRole, ...(build ? [build.role] : [])]) {
    const defaultPolicy = role.node.tryFindChild("DefaultPolicy");
    if (defaultPolicy instanceof iam.Policy) policies.push({ scope: defaultPolicy, document: defaultPolicy.document });
  }
  return policies;
}
