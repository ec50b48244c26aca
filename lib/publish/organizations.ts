/**
 * Who a layer version and its ARN parameter are shared with, resolved through AWS Organizations:
 *
 * - `SHARE_ORGANIZATION_ID`: the whole organization. Lambda gets one `Principal: "*"` + `OrganizationId`
 *   statement; RAM gets the organization ARN (from DescribeOrganization, which also proves the id is the
 *   caller's own organization).
 * - `SHARE_OU_IDS`: Lambda layer policies cannot name an OU, so each OU and its nested OUs are expanded to
 *   their ACTIVE accounts (ListOrganizationalUnitsForParent + ListAccountsForParent, every page); RAM gets
 *   the OU ARNs, which it resolves itself, nested OUs included.
 * - `SHARE_ACCOUNT_IDS`: each account, in both places.
 *
 * Organizations' read calls work only in the management account or a delegated administrator account.
 */
import {
  DescribeOrganizationCommand,
  ListAccountsForParentCommand,
  ListOrganizationalUnitsForParentCommand,
  type OrganizationsClient,
} from "@aws-sdk/client-organizations";
import { attempt } from "../common/aws-errors.ts";
import type { LayerDefaults } from "../common/config.ts";
import { ShareError } from "../common/errors.ts";

export interface OrganizationInfo {
  id: string;
  arn: string;
  managementAccountId: string;
  partition: string;
}

export interface ShareTargets {
  /** The organization granted as a whole (layer permission `Principal: "*"` + `OrganizationId`). */
  organizationId: string | undefined;
  /** Accounts granted one layer statement each: SHARE_ACCOUNT_IDS plus the ACTIVE accounts under SHARE_OU_IDS. */
  accountIds: string[];
  /** RAM principals for the ARN parameter: organization ARN, OU ARNs and SHARE_ACCOUNT_IDS. */
  ramPrincipals: string[];
  /** For the summary: the accounts each OU expanded to. */
  ouAccounts: Record<string, string[]>;
}

const NOT_IN_ORG =
  "this account is not in an AWS Organization; unset SHARE_ORGANIZATION_ID and SHARE_OU_IDS, or run layer-sync in an organization account";
const ORG_ACCOUNT_ONLY =
  "the Organizations read calls work only in the management account or a delegated administrator account; run layer-sync there or grant";

export async function describeOrganization(organizations: OrganizationsClient): Promise<OrganizationInfo> {
  const res = await attempt(
    ShareError,
    {
      call: "organizations:DescribeOrganization",
      resource: "the caller's organization",
      advice: { AWSOrganizationsNotInUseException: NOT_IN_ORG },
    },
    () => organizations.send(new DescribeOrganizationCommand({})),
  );
  const org = res.Organization;
  if (!org?.Id || !org.Arn || !org.MasterAccountId) {
    throw new ShareError(
      "organizations:DescribeOrganization answered without the organization id, ARN or management account",
    );
  }
  return {
    id: org.Id,
    arn: org.Arn,
    managementAccountId: org.MasterAccountId,
    partition: org.Arn.split(":")[1] ?? "aws",
  };
}

/** `arn:aws:organizations::<management account>:ou/o-…/ou-…` */
export function organizationalUnitArn(org: OrganizationInfo, ouId: string): string {
  return `arn:${org.partition}:organizations::${org.managementAccountId}:ou/${org.id}/${ouId}`;
}

async function pages<T>(
  fetch: (token: string | undefined) => Promise<{ items: T[]; next: string | undefined }>,
): Promise<T[]> {
  const out: T[] = [];
  let token: string | undefined;
  do {
    const page = await fetch(token);
    out.push(...page.items);
    token = page.next || undefined;
  } while (token);
  return out;
}

/** The ACTIVE accounts in an OU and every OU nested in it, sorted. */
export async function accountsUnder(organizations: OrganizationsClient, ouId: string): Promise<string[]> {
  const accounts = new Set<string>();
  const seen = new Set<string>();
  const queue = [ouId];
  const context = (call: string, parent: string) => ({
    call: `organizations:${call}`,
    resource: parent === ouId ? `OU ${ouId}` : `OU ${parent} (nested in ${ouId})`,
    advice: {
      ParentNotFoundException: `OU ${parent} was not found in the organization; check SHARE_OU_IDS`,
      AWSOrganizationsNotInUseException: NOT_IN_ORG,
      AccessDeniedException: `${ORG_ACCOUNT_ONLY} organizations:${call}`,
    },
  });
  for (let parent = queue.shift(); parent !== undefined; parent = queue.shift()) {
    if (seen.has(parent)) continue;
    seen.add(parent);
    const here = parent;
    const found = await pages((token) =>
      attempt(ShareError, context("ListAccountsForParent", here), () =>
        organizations.send(new ListAccountsForParentCommand({ ParentId: here, NextToken: token })),
      ).then((res) => ({ items: res.Accounts ?? [], next: res.NextToken })),
    );
    for (const account of found) {
      if (account.Id && (account.State ?? account.Status) === "ACTIVE") accounts.add(account.Id);
    }
    const children = await pages((token) =>
      attempt(ShareError, context("ListOrganizationalUnitsForParent", here), () =>
        organizations.send(new ListOrganizationalUnitsForParentCommand({ ParentId: here, NextToken: token })),
      ).then((res) => ({ items: res.OrganizationalUnits ?? [], next: res.NextToken })),
    );
    for (const child of children) if (child.Id) queue.push(child.Id);
  }
  return [...accounts].sort();
}

/** Resolve the configured sharing into layer-permission accounts and RAM principals. Calls nothing when only accounts are configured. */
export async function resolveShareTargets(
  layer: LayerDefaults,
  organizations: OrganizationsClient,
): Promise<ShareTargets> {
  const needsOrganization = layer.shareOrganizationId !== undefined || layer.shareOuIds.length > 0;
  const org = needsOrganization ? await describeOrganization(organizations) : undefined;
  if (org && layer.shareOrganizationId !== undefined && org.id !== layer.shareOrganizationId) {
    throw new ShareError(
      `SHARE_ORGANIZATION_ID is ${layer.shareOrganizationId}, but this account belongs to organization ${org.id}; set SHARE_ORGANIZATION_ID=${org.id} (RAM can share only within the caller's organization)`,
    );
  }
  const ouAccounts: Record<string, string[]> = {};
  for (const ouId of layer.shareOuIds) ouAccounts[ouId] = await accountsUnder(organizations, ouId);
  const accountIds = [...new Set([...layer.shareAccountIds, ...Object.values(ouAccounts).flat()])].sort();
  const ramPrincipals = [
    ...(org && layer.shareOrganizationId !== undefined ? [org.arn] : []),
    ...(org ? layer.shareOuIds.map((ou) => organizationalUnitArn(org, ou)) : []),
    ...[...layer.shareAccountIds].sort(),
  ];
  return { organizationId: layer.shareOrganizationId, accountIds, ramPrincipals, ouAccounts };
}
