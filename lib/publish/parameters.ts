/**
 * The SSM side of publishing: the `{PARAMETER_PREFIX}/{package}/layer-version-arn` parameter (String, Advanced
 * tier so RAM can share it, written only when its value changes), its ARN for RAM, the packages a reconcile
 * run finds under the prefix, and the layer versions that parameters under a package's path still name.
 */
import { GetParametersByPathCommand, type Parameter, PutParameterCommand, type SSMClient } from "@aws-sdk/client-ssm";
import { readParameter } from "../artifacts/pointer.ts";
import { attempt, callFailed } from "../common/aws-errors.ts";
import { PublishError } from "../common/errors.ts";
import { retryTooManyUpdates } from "../common/ssm.ts";
import { parseLayerArn } from "./layers.ts";

/**
 * `arn:<partition>:ssm:<region>:<account>:parameter/<name without leading slash>`. Building it as
 * `parameter/${name}` from `/a/b` would give `parameter//a/b`, which IAM and RAM never match.
 */
export function ssmParameterArn(partition: string, region: string, account: string, name: string): string {
  return `arn:${partition}:ssm:${region}:${account}:parameter/${name.replace(/^\/+/, "")}`;
}

/** Read a parameter as `readParameter` does, failing as a `PublishError` that names the missing permission. */
export async function readStringParameter(ssm: SSMClient, name: string): Promise<string | undefined> {
  try {
    return await readParameter(ssm, name);
  } catch (error) {
    const cause = error instanceof Error && error.cause !== undefined ? error.cause : error;
    throw callFailed(PublishError, { call: "ssm:GetParameter", resource: `parameter ${name}` }, cause);
  }
}

/**
 * Point the ARN parameter at `value`: String, Tier Advanced, Overwrite. Returns false (and writes nothing)
 * when it already holds `value`, so repeating a run creates no parameter version and no change event.
 */
export async function writeLayerArnParameter(
  ssm: SSMClient,
  args: { name: string; value: string; description: string; sleep: (ms: number) => Promise<void> },
): Promise<boolean> {
  const { name, value, description, sleep } = args;
  if ((await readStringParameter(ssm, name)) === value) return false;
  try {
    await retryTooManyUpdates(
      () =>
        ssm.send(
          new PutParameterCommand({
            Name: name,
            Value: value,
            Type: "String",
            Tier: "Advanced",
            Overwrite: true,
            Description: description,
          }),
        ),
      sleep,
    );
    return true;
  } catch (error) {
    throw callFailed(
      PublishError,
      {
        call: "ssm:PutParameter",
        resource: `parameter ${name}`,
        advice: {
          HierarchyLevelLimitExceededException: "the name has more than 15 levels; shorten PARAMETER_PREFIX",
          TooManyUpdates: "too many concurrent writes to the parameter; run again",
        },
      },
      error,
    );
  }
}

/** Every parameter under `path` (recursive, every page). */
export async function parametersUnder(ssm: SSMClient, path: string): Promise<Parameter[]> {
  const out: Parameter[] = [];
  let token: string | undefined;
  do {
    const page = await attempt(PublishError, { call: "ssm:GetParametersByPath", resource: `path ${path}` }, () =>
      ssm.send(new GetParametersByPathCommand({ Path: path, Recursive: true, NextToken: token })),
    );
    out.push(...(page.Parameters ?? []));
    token = page.NextToken || undefined;
  } while (token);
  return out;
}

/** The packages that have a `{prefix}/{package}/artifact-key` pointer, sorted. */
export async function discoverPackages(ssm: SSMClient, parameterPrefix: string): Promise<string[]> {
  const prefix = `${parameterPrefix}/`;
  const found = new Set<string>();
  for (const p of await parametersUnder(ssm, parameterPrefix)) {
    const name = p.Name ?? "";
    if (!name.startsWith(prefix)) continue;
    const m = /^([^/]+)\/artifact-key$/.exec(name.slice(prefix.length));
    if (m?.[1]) found.add(m[1]);
  }
  return [...found].sort();
}

/**
 * The versions of `layerName` that a parameter under `path` names by its LayerVersionArn: the package's
 * `layer-version-arn` parameter, and any pin an operator keeps next to it (e.g. `{prefix}/{package}/pinned`).
 * Retention and duplicate removal never delete them.
 */
export async function namedVersions(ssm: SSMClient, path: string, layerName: string): Promise<Set<number>> {
  return versionsNamed(await parametersUnder(ssm, path), layerName);
}

/** The versions of `layerName` that the given parameters name by LayerVersionArn (comma-separated values too). */
export function versionsNamed(parameters: readonly Parameter[], layerName: string): Set<number> {
  const out = new Set<number>();
  for (const p of parameters) {
    for (const value of (p.Value ?? "").split(",")) {
      const arn = parseLayerArn(value.trim());
      if (arn?.layerName === layerName && arn.version !== undefined) out.add(arn.version);
    }
  }
  return out;
}

/** `versionsNamed` under the name the release code uses. */
export const namedIn = versionsNamed;
