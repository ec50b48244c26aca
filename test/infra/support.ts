/**
 * Helpers for the infrastructure tests: read IAM statements out of a synthesised template in a form
 * that can be compared exactly, and run cdk-nag's AwsSolutions pack.
 */
import { type App, type CfnElement, Stack, Validations } from "aws-cdk-lib";
import { Annotations, Match, type Template } from "aws-cdk-lib/assertions";
import * as lambda from "aws-cdk-lib/aws-lambda";
import { AwsSolutionsChecks } from "cdk-nag";
import type { IConstruct } from "constructs";

export const ACCOUNT = "111111111111";
export const REGION = "eu-west-1";

/** Tiny inline code so synthesis needs neither the handlers nor esbuild. */
export function inlineCode(): { sync: lambda.Code; publish: lambda.Code; build: lambda.Code } {
  return {
    sync: lambda.Code.fromInline("export const handler = async () => ({});"),
    publish: lambda.Code.fromInline("export const handler = async () => ({});"),
    build: lambda.Code.fromInline("export const handler = async () => ({});"),
  };
}

/** The logical id of a construct's CloudFormation resource. */
export function logicalId(construct: IConstruct): string {
  const child = construct.node.defaultChild ?? construct;
  return Stack.of(construct).getLogicalId(child as CfnElement);
}

/**
 * Renders a CloudFormation value as one readable string: `{Ref: X}` → `<X>`, GetAtt → `<X.Attr>`,
 * Join → concatenation, other intrinsics → `Fn::Name(args)`. Lets tests state exact ARNs.
 */
export function render(value: unknown): string {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (Array.isArray(value)) return `[${value.map(render).join(", ")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>);
    const [name, args] = entries[0] ?? ["", undefined];
    if (entries.length === 1 && name === "Ref") return `<${render(args)}>`;
    if (entries.length === 1 && name === "Fn::GetAtt" && Array.isArray(args)) return `<${args.map(render).join(".")}>`;
    if (entries.length === 1 && name === "Fn::Join" && Array.isArray(args) && Array.isArray(args[1])) {
      const [delimiter, parts] = args as [string, unknown[]];
      return parts.map(render).join(delimiter);
    }
    if (entries.length === 1 && name.startsWith("Fn::") && Array.isArray(args)) {
      return `${name}(${args.map(render).join(", ")})`;
    }
    return `{${entries.map(([k, v]) => `${k}: ${render(v)}`).join(", ")}}`;
  }
  return String(value);
}

export interface Statement {
  sid: string;
  actions: string[];
  resources: string[];
  conditions?: Record<string, Record<string, string | string[]>>;
}

interface RawStatement {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, Record<string, unknown>>;
}

interface PolicyResource {
  Type: string;
  Condition?: string;
  Properties: { Roles: unknown[]; PolicyDocument: { Statement: RawStatement[] } };
}

/** Every Allow statement of every AWS::IAM::Policy attached to a role, rendered; keyed by policy logical id. */
export function policiesOf(template: Template, roleLogicalId: string): Record<string, Statement[]> {
  const policies = template.findResources("AWS::IAM::Policy") as Record<string, PolicyResource>;
  const out: Record<string, Statement[]> = {};
  for (const [id, policy] of Object.entries(policies)) {
    if (!policy.Properties.Roles.some((r) => render(r) === `<${roleLogicalId}>`)) continue;
    out[id] = policy.Properties.PolicyDocument.Statement.map((s) => {
      if (s.Effect !== "Allow") throw new Error(`unexpected ${s.Effect} statement in ${id}`);
      const statement: Statement = {
        sid: s.Sid ?? "",
        actions: [s.Action].flat().sort(),
        resources: [s.Resource].flat().map(render).sort(),
      };
      if (s.Condition) {
        statement.conditions = Object.fromEntries(
          Object.entries(s.Condition).map(([op, keys]) => [
            op,
            Object.fromEntries(Object.entries(keys).map(([k, v]) => [k, Array.isArray(v) ? v.map(render) : render(v)])),
          ]),
        );
      }
      return statement;
    });
  }
  return out;
}

/** Sorts statements by Sid (statements without one first), then by actions; plain code-unit order. */
export function sortStatements(statements: readonly Statement[]): Statement[] {
  const key = (s: Statement) => `${s.sid}\u0000${s.actions.join(",")}`;
  return [...statements].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

/** All statements of a role across its policies, sorted by Sid then actions. */
export function statementsOf(template: Template, roleLogicalId: string): Statement[] {
  return sortStatements(Object.values(policiesOf(template, roleLogicalId)).flat());
}

/** cdk-nag AwsSolutions findings that are not acknowledged, as "rule at path" lines. */
export function nagFindings(app: App, scope: IConstruct): string[] {
  const report = new AwsSolutionsChecks(app, { verbose: true }).validateScope(scope);
  return report.violations.flatMap((v) =>
    v.violatingResources.map((r) => `${v.ruleName} (${v.severity}) at ${r.constructPath}`),
  );
}

/** cdk-nag v2-style annotations (v3 reports through validateScope instead; kept as a second net). */
export function nagAnnotations(stack: Stack): unknown[] {
  const annotations = Annotations.fromStack(stack);
  return [
    ...annotations.findError("*", Match.stringLikeRegexp("AwsSolutions-.*")),
    ...annotations.findWarning("*", Match.stringLikeRegexp("AwsSolutions-.*")),
  ];
}

/** Every acknowledgment recorded in a construct tree: rule id → reason. */
export function acknowledgments(scope: IConstruct): Map<string, string> {
  const out = new Map<string, string>();
  for (const node of scope.node.findAll()) {
    for (const entry of node.node.metadata) {
      if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
      for (const [id, reason] of Object.entries(entry.data as Record<string, unknown>)) {
        out.set(`${node.node.path} ${id.replace(/^annotation::/i, "")}`, String(reason));
      }
    }
  }
  return out;
}
