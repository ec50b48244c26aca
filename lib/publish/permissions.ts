/**
 * The layer version's resource policy. layer-sync owns the statements whose id starts with `layer-sync-`:
 *
 * - `layer-sync-org-<o-…>`: `Principal: "*"` with `OrganizationId` (AWS renders the condition
 *   `aws:PrincipalOrgID`), for SHARE_ORGANIZATION_ID;
 * - `layer-sync-account-<12 digits>`: `Principal: <account>`, for each SHARE_ACCOUNT_IDS account and each
 *   ACTIVE account under SHARE_OU_IDS.
 *
 * The action is always exactly `lambda:GetLayerVersion`. Applying reads the policy first, adds what is
 * missing, replaces a `layer-sync-*` statement whose content differs and removes `layer-sync-*` statements no
 * longer configured, so applying twice is a no-op. Statements layer-sync does not own are left alone (a public
 * one is reported). A public grant (`"*"` without an organization) is never made.
 */
import {
  AddLayerVersionPermissionCommand,
  GetLayerVersionPolicyCommand,
  type LambdaClient,
  RemoveLayerVersionPermissionCommand,
} from "@aws-sdk/client-lambda";
import { attempt, callFailed, errorName, isNotFound } from "../common/aws-errors.ts";
import { PublishError } from "../common/errors.ts";

export const STATEMENT_PREFIX = "layer-sync-";
export const LAYER_ACTION = "lambda:GetLayerVersion";

const ORG_ID = /^o-[a-z0-9]{10,32}$/;
const ACCOUNT_ID = /^\d{12}$/;

export interface DesiredStatement {
  sid: string;
  /** `"*"` (always with organizationId) or a 12-digit account id. */
  principal: string;
  organizationId?: string;
}

/** A statement as read back from GetLayerVersionPolicy, normalised. */
export interface ExistingStatement {
  sid: string;
  actions: string[];
  /** `"*"`, a 12-digit account id, or the raw principal text when it is neither. */
  principal: string;
  organizationId: string | undefined;
}

export interface PermissionResult {
  /** The layer-sync statement ids on the version after applying, sorted. */
  sids: string[];
  added: string[];
  removed: string[];
  warnings: string[];
}

export function organizationStatementId(organizationId: string): string {
  return `${STATEMENT_PREFIX}org-${organizationId}`;
}

export function accountStatementId(accountId: string): string {
  return `${STATEMENT_PREFIX}account-${accountId}`;
}

/** The statements for the sharing targets; refuses anything that would make the version public. */
export function desiredStatements(targets: {
  organizationId: string | undefined;
  accountIds: readonly string[];
}): DesiredStatement[] {
  const out: DesiredStatement[] = [];
  if (targets.organizationId !== undefined) {
    if (!ORG_ID.test(targets.organizationId)) {
      throw new PublishError(
        `refusing to grant layer access to "${targets.organizationId}": SHARE_ORGANIZATION_ID must be an organization id like o-abcd123456`,
      );
    }
    out.push({
      sid: organizationStatementId(targets.organizationId),
      principal: "*",
      organizationId: targets.organizationId,
    });
  }
  for (const account of [...new Set(targets.accountIds)].sort()) {
    if (!ACCOUNT_ID.test(account)) {
      throw new PublishError(
        `refusing to grant layer access to "${account}": only 12-digit account ids are shared (a "*" would make the layer public; use SHARE_ORGANIZATION_ID)`,
      );
    }
    out.push({ sid: accountStatementId(account), principal: account });
  }
  return out;
}

function asStrings(value: unknown): string[] {
  if (typeof value === "string") return [value];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
}

function normalisePrincipal(value: unknown): string {
  const raw =
    typeof value === "object" && value !== null && !Array.isArray(value)
      ? asStrings((value as Record<string, unknown>).AWS)
      : asStrings(value);
  if (raw.length !== 1 || raw[0] === undefined) return JSON.stringify(value ?? null);
  const one = raw[0];
  const root = /^arn:aws[a-z-]*:iam::(\d{12}):root$/.exec(one);
  return root?.[1] ?? one;
}

function organizationOf(statement: Record<string, unknown>): string | undefined {
  // AWS: Condition.StringEquals["aws:PrincipalOrgID"]; moto keeps the request's OrganizationId as a raw key.
  const condition = statement.Condition as Record<string, Record<string, unknown> | undefined> | undefined;
  const fromCondition = asStrings(condition?.StringEquals?.["aws:PrincipalOrgID"]);
  if (fromCondition.length === 1) return fromCondition[0];
  return typeof statement.OrganizationId === "string" ? statement.OrganizationId : undefined;
}

/** Parse a GetLayerVersionPolicy document; statements without a Sid are skipped. */
export function parsePolicy(policy: string | undefined): ExistingStatement[] {
  if (!policy) return [];
  let doc: unknown;
  try {
    doc = JSON.parse(policy);
  } catch (error) {
    throw new PublishError("lambda:GetLayerVersionPolicy returned a policy that is not JSON", { cause: error });
  }
  const list = (doc as { Statement?: unknown }).Statement;
  const statements = Array.isArray(list) ? list : list ? [list] : [];
  const out: ExistingStatement[] = [];
  for (const s of statements) {
    if (typeof s !== "object" || s === null) continue;
    const st = s as Record<string, unknown>;
    if (typeof st.Sid !== "string") continue;
    out.push({
      sid: st.Sid,
      actions: asStrings(st.Action),
      principal: normalisePrincipal(st.Principal),
      organizationId: organizationOf(st),
    });
  }
  return out;
}

export function statementMatches(existing: ExistingStatement, desired: DesiredStatement): boolean {
  return (
    existing.actions.length === 1 &&
    existing.actions[0] === LAYER_ACTION &&
    existing.principal === desired.principal &&
    existing.organizationId === desired.organizationId
  );
}

async function readPolicy(lambda: LambdaClient, layerName: string, version: number): Promise<ExistingStatement[]> {
  try {
    const res = await lambda.send(new GetLayerVersionPolicyCommand({ LayerName: layerName, VersionNumber: version }));
    return parsePolicy(res.Policy);
  } catch (error) {
    if (isNotFound(error)) return []; // no policy yet (a missing version fails at the first add)
    throw callFailed(
      PublishError,
      { call: "lambda:GetLayerVersionPolicy", resource: `layer ${layerName} version ${version}` },
      error,
    );
  }
}

/** Make the version's `layer-sync-*` statements exactly `desired`. */
export async function applyLayerPermissions(
  lambda: LambdaClient,
  layerName: string,
  version: number,
  desired: readonly DesiredStatement[],
): Promise<PermissionResult> {
  const resource = `layer ${layerName} version ${version}`;
  const result: PermissionResult = { sids: desired.map((d) => d.sid).sort(), added: [], removed: [], warnings: [] };
  const wanted = new Map(desired.map((d) => [d.sid, d]));
  const existing = await readPolicy(lambda, layerName, version);

  for (const s of existing) {
    if (!s.sid.startsWith(STATEMENT_PREFIX) && s.principal === "*" && s.organizationId === undefined) {
      result.warnings.push(
        `${resource} has a public statement "${s.sid}" that layer-sync does not manage; remove it unless the layer is meant to be public`,
      );
    }
  }

  const remove = async (sid: string) => {
    try {
      await lambda.send(
        new RemoveLayerVersionPermissionCommand({ LayerName: layerName, VersionNumber: version, StatementId: sid }),
      );
    } catch (error) {
      if (isNotFound(error)) return; // removed concurrently
      throw callFailed(
        PublishError,
        { call: "lambda:RemoveLayerVersionPermission", resource: `${resource} statement ${sid}` },
        error,
      );
    }
  };

  const present = new Set<string>();
  for (const s of existing) {
    if (!s.sid.startsWith(STATEMENT_PREFIX)) continue;
    const want = wanted.get(s.sid);
    if (want && statementMatches(s, want)) {
      present.add(s.sid);
      continue;
    }
    await remove(s.sid);
    result.removed.push(s.sid);
  }

  const add = (d: DesiredStatement) =>
    lambda.send(
      new AddLayerVersionPermissionCommand({
        LayerName: layerName,
        VersionNumber: version,
        StatementId: d.sid,
        Action: LAYER_ACTION,
        Principal: d.principal,
        ...(d.organizationId !== undefined ? { OrganizationId: d.organizationId } : {}),
      }),
    );
  const addContext = (d: DesiredStatement) => ({
    call: "lambda:AddLayerVersionPermission",
    resource: `${resource} statement ${d.sid}`,
    advice: {
      PolicyLengthExceededException:
        "the layer version policy is full; share with the organization (SHARE_ORGANIZATION_ID) instead of many accounts",
    },
  });

  for (const d of desired) {
    if (present.has(d.sid)) continue;
    if (d.principal === "*" && d.organizationId === undefined) {
      throw new PublishError(
        `refusing to add ${d.sid}: a "*" principal without an organization would make ${resource} public`,
      );
    }
    try {
      await add(d);
      result.added.push(d.sid);
    } catch (error) {
      if (errorName(error) !== "ResourceConflictException") throw callFailed(PublishError, addContext(d), error);
      // Another run added the same id meanwhile: fine if it says the same; otherwise replace it once.
      const now = (await readPolicy(lambda, layerName, version)).find((s) => s.sid === d.sid);
      if (now && statementMatches(now, d)) continue;
      await remove(d.sid);
      await attempt(PublishError, addContext(d), () => add(d));
      result.added.push(d.sid);
      if (!result.removed.includes(d.sid)) result.removed.push(d.sid);
    }
  }
  return result;
}
