/**
 * One AWS RAM resource share per package, named `layer-sync-{package}`, holding the package's
 * `layer-version-arn` parameter and shared with the configured principals (organization ARN, OU ARNs,
 * accounts), never with principals outside the organization (`allowExternalPrincipals: false`).
 *
 * Ensuring it is idempotent: find the ACTIVE share by name (all pages; filtered again on our side), create it
 * with the resource and principals in one call when it is missing, otherwise read its RESOURCE and PRINCIPAL
 * associations and associate only what is missing. Principals that are no longer configured are
 * disassociated.
 *
 * The create call's `clientToken` is derived from the name, resource, principals and a time window the caller
 * passes (the hour), so racing runs send the same token and RAM creates one share, while a share deleted
 * later can still be created again. If two shares with the name exist anyway (runs straddling the window, or
 * an emulator that ignores tokens), every run keeps the oldest and deletes the others.
 */
import { createHash } from "node:crypto";
import {
  AssociateResourceShareCommand,
  CreateResourceShareCommand,
  DeleteResourceShareCommand,
  DisassociateResourceShareCommand,
  GetResourceShareAssociationsCommand,
  GetResourceSharesCommand,
  type RAMClient,
  type ResourceShare,
  type ResourceShareAssociationType,
} from "@aws-sdk/client-ram";
import { attempt, callFailed, errorName, isNotFound } from "../common/aws-errors.ts";
import { ShareError } from "../common/errors.ts";

export interface ShareResult {
  arn: string;
  name: string;
  /** The configured principals, all associated after the call. */
  principals: string[];
  /** The resources the share holds after the call. */
  resources: string[];
  created: boolean;
  /** Resources and principals this call associated. */
  associated: string[];
  /** Principals this call disassociated because they are no longer configured. */
  disassociated: string[];
  warnings: string[];
}

const PRESENT = new Set(["ASSOCIATED", "ASSOCIATING"]);

export function resourceShareName(pkg: string): string {
  return `layer-sync-${pkg}`;
}

/** A deterministic idempotency token (UUID-shaped) for a request with these parts. */
export function shareClientToken(...parts: readonly string[]): string {
  const h = createHash("sha256").update(parts.join("\n")).digest("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

const ADVICE = {
  OperationNotPermittedException:
    "RAM may share with the organization only after sharing with AWS Organizations is enabled (run `aws ram enable-sharing-with-aws-organization` in the management account), and never with accounts outside it",
  UnknownResourceException:
    "RAM does not know a principal or resource; check SHARE_ORGANIZATION_ID, SHARE_OU_IDS and SHARE_ACCOUNT_IDS, and that the parameter exists",
  MalformedArnException:
    "RAM rejected an ARN; the parameter must exist on the Advanced tier in this account and Region",
  InvalidParameterException: "RAM rejected the request; check the configured principals",
  ResourceShareLimitExceededException:
    "the account's RAM resource share quota is reached; delete unused shares or ask AWS for more",
  IdempotentParameterMismatchException:
    "a request with the same client token but different content was made recently; run again in a few minutes",
} as const;

/** ACTIVE shares owned by this account with exactly this name, oldest first. */
export async function findResourceShares(ram: RAMClient, name: string): Promise<ResourceShare[]> {
  const out: ResourceShare[] = [];
  let token: string | undefined;
  do {
    const page = await attempt(ShareError, { call: "ram:GetResourceShares", resource: `resource share ${name}` }, () =>
      ram.send(
        new GetResourceSharesCommand({ resourceOwner: "SELF", name, resourceShareStatus: "ACTIVE", nextToken: token }),
      ),
    );
    out.push(
      ...(page.resourceShares ?? []).filter((s) => s.name === name && s.status === "ACTIVE" && s.resourceShareArn),
    );
    token = page.nextToken || undefined;
  } while (token);
  const time = (s: ResourceShare) => s.creationTime?.getTime() ?? 0;
  return out.sort((a, b) => time(a) - time(b) || (a.resourceShareArn ?? "").localeCompare(b.resourceShareArn ?? ""));
}

/** The ASSOCIATED/ASSOCIATING entities of one type on a share (all pages). */
export async function associations(
  ram: RAMClient,
  shareArn: string,
  type: ResourceShareAssociationType,
): Promise<string[]> {
  const out: string[] = [];
  let token: string | undefined;
  do {
    const page = await attempt(
      ShareError,
      { call: "ram:GetResourceShareAssociations", resource: `resource share ${shareArn} (${type})` },
      () =>
        ram.send(
          new GetResourceShareAssociationsCommand({
            associationType: type,
            resourceShareArns: [shareArn],
            nextToken: token,
          }),
        ),
    );
    for (const a of page.resourceShareAssociations ?? []) {
      if (a.associatedEntity && a.resourceShareArn === shareArn && PRESENT.has(a.status ?? ""))
        out.push(a.associatedEntity);
    }
    token = page.nextToken || undefined;
  } while (token);
  return [...new Set(out)];
}

/** Make `name` an ACTIVE share holding `resourceArn` with exactly `principals`. */
export async function ensureResourceShare(
  ram: RAMClient,
  args: {
    name: string;
    resourceArn: string;
    /** Further resources the share holds (the package's history parameter), after `resourceArn`. */
    moreResourceArns?: readonly string[];
    principals: readonly string[];
    tokenWindow: string;
  },
): Promise<ShareResult> {
  const { name, resourceArn, tokenWindow } = args;
  const wanted = [resourceArn, ...(args.moreResourceArns ?? [])];
  const principals = [...new Set(args.principals)];
  const result: ShareResult = {
    arn: "",
    name,
    principals,
    resources: [],
    created: false,
    associated: [],
    disassociated: [],
    warnings: [],
  };
  let shares = await findResourceShares(ram, name);
  if (shares.length === 0) {
    const created = await attempt(
      ShareError,
      { call: "ram:CreateResourceShare", resource: `resource share ${name} for ${resourceArn}`, advice: ADVICE },
      () =>
        ram.send(
          new CreateResourceShareCommand({
            name,
            resourceArns: wanted,
            principals,
            allowExternalPrincipals: false,
            clientToken: shareClientToken(tokenWindow, name, ...wanted, ...[...principals].sort()),
          }),
        ),
    );
    result.created = true;
    shares = await findResourceShares(ram, name);
    if (shares.length === 0 && created.resourceShare) shares = [created.resourceShare];
  }
  const [keep, ...duplicates] = shares;
  if (!keep?.resourceShareArn) throw new ShareError(`ram:CreateResourceShare for ${name} answered without a share ARN`);
  const arn = keep.resourceShareArn;
  result.arn = arn;
  for (const dup of duplicates) {
    if (!dup.resourceShareArn) continue;
    const dupArn = dup.resourceShareArn;
    try {
      await ram.send(new DeleteResourceShareCommand({ resourceShareArn: dupArn }));
    } catch (error) {
      if (!isNotFound(error) && errorName(error) !== "UnknownResourceException") {
        throw callFailed(
          ShareError,
          { call: "ram:DeleteResourceShare", resource: `duplicate resource share ${dupArn}`, advice: ADVICE },
          error,
        );
      }
    }
    result.warnings.push(`deleted duplicate resource share ${dupArn} (kept ${arn}, the oldest named ${name})`);
  }

  const resources = await associations(ram, arn, "RESOURCE");
  const current = await associations(ram, arn, "PRINCIPAL");
  const missingResources = wanted.filter((r) => !resources.includes(r));
  const missingPrincipals = principals.filter((p) => !current.includes(p));
  const stale = current.filter((p) => !principals.includes(p));
  if (missingResources.length || missingPrincipals.length) {
    await attempt(
      ShareError,
      {
        call: "ram:AssociateResourceShare",
        resource: `resource share ${arn} (${[...missingResources, ...missingPrincipals].join(", ")})`,
        advice: ADVICE,
      },
      () =>
        ram.send(
          new AssociateResourceShareCommand({
            resourceShareArn: arn,
            ...(missingResources.length ? { resourceArns: missingResources } : {}),
            ...(missingPrincipals.length ? { principals: missingPrincipals } : {}),
          }),
        ),
    );
    result.associated = [...missingResources, ...missingPrincipals];
  }
  if (stale.length) {
    await attempt(
      ShareError,
      {
        call: "ram:DisassociateResourceShare",
        resource: `resource share ${arn} (${stale.join(", ")})`,
        advice: ADVICE,
      },
      () =>
        ram.send(
          new DisassociateResourceShareCommand({
            resourceShareArn: arn,
            principals: stale,
          }),
        ),
    );
    result.disassociated = stale;
  }
  result.resources = [...new Set([...resources, ...missingResources])].sort();
  return result;
}
