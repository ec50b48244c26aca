/**
 * Helpers for tests that talk to the run's moto server (see `moto.global.ts` and `setup.ts`).
 *
 * All test files share ONE moto server and run in parallel, so every test creates its own resources under
 * names from `uniqueName()` and never depends on what else exists. `resetMoto()` wipes state that other files
 * are using at that moment; prefer unique names to resets.
 *
 * SDK clients need no options: region, credentials and endpoint come from the environment set by `setup.ts`.
 */
import { randomBytes } from "node:crypto";
import {
  AlreadyInOrganizationException,
  AWSOrganizationsNotInUseException,
  CreateAccountCommand,
  CreateOrganizationalUnitCommand,
  CreateOrganizationCommand,
  DescribeCreateAccountStatusCommand,
  DescribeOrganizationCommand,
  ListRootsCommand,
  MoveAccountCommand,
  type Organization,
  OrganizationsClient,
} from "@aws-sdk/client-organizations";
import { BucketLocationConstraint, CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { inject } from "vitest";

/** The account moto answers as for any credentials (its default account). */
export const MOTO_ACCOUNT_ID = "123456789012";

/**
 * A name no other test uses: `<prefix>-<12 hex chars>`, lower-case and valid as an S3 bucket name, SSM
 * parameter path segment, Lambda layer name, RAM share name or OU name. The prefix is lower-cased, characters
 * other than `a-z0-9-` become `-`, and it is cut to 40 characters. (SSM, like AWS, refuses parameter names that
 * start with `aws` or `ssm`, so do not use those as prefixes for a parameter's first path segment.)
 */
export function uniqueName(prefix: string): string {
  const clean = prefix
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 40);
  return `${clean || "t"}-${randomBytes(6).toString("hex")}`;
}

function isLocationConstraint(region: string): region is BucketLocationConstraint {
  return (Object.values(BucketLocationConstraint) as string[]).includes(region);
}

/** Creates an S3 bucket in the test region (or in `region`) and returns its name. */
export async function createBucket(name: string, region?: string): Promise<string> {
  const s3 = new S3Client(region ? { region } : {});
  try {
    const region = await s3.config.region();
    await s3.send(
      new CreateBucketCommand({
        Bucket: name,
        // us-east-1 is the one region that takes no LocationConstraint.
        ...(isLocationConstraint(region) ? { CreateBucketConfiguration: { LocationConstraint: region } } : {}),
      }),
    );
  } finally {
    s3.destroy();
  }
  return name;
}

export interface OrganizationalUnitRef {
  id: string;
  arn: string;
  name: string;
}

export interface OrganizationsFixture {
  organizationId: string;
  /** `arn:aws:organizations::<management>:organization/o-…` – the principal for sharing with the whole org. */
  organizationArn: string;
  managementAccountId: string;
  rootId: string;
  /** A new OU directly under the root. */
  parentOu: OrganizationalUnitRef;
  /** A new OU inside `parentOu`. */
  nestedOu: OrganizationalUnitRef;
  /** A new member account placed in `parentOu`. */
  parentOuAccountId: string;
  /** A new member account placed in `nestedOu`. */
  nestedOuAccountId: string;
}

async function describeOrCreateOrganization(client: OrganizationsClient): Promise<Organization> {
  try {
    const described = await client.send(new DescribeOrganizationCommand({}));
    if (described.Organization) return described.Organization;
  } catch (error) {
    if (!(error instanceof AWSOrganizationsNotInUseException)) throw error;
  }
  try {
    const created = await client.send(new CreateOrganizationCommand({ FeatureSet: "ALL" }));
    if (created.Organization) return created.Organization;
  } catch (error) {
    // Another test file created it between our describe and create.
    if (!(error instanceof AlreadyInOrganizationException)) throw error;
  }
  const described = await client.send(new DescribeOrganizationCommand({}));
  if (!described.Organization) throw new Error("moto returned no organization after CreateOrganization");
  return described.Organization;
}

async function createOu(client: OrganizationsClient, parentId: string, prefix: string): Promise<OrganizationalUnitRef> {
  const name = uniqueName(prefix);
  const { OrganizationalUnit: ou } = await client.send(
    new CreateOrganizationalUnitCommand({ ParentId: parentId, Name: name }),
  );
  if (!ou?.Id || !ou.Arn) throw new Error(`moto returned no id/ARN for OU ${name}`);
  return { id: ou.Id, arn: ou.Arn, name };
}

export async function createAccountIn(client: OrganizationsClient, rootId: string, ouId: string): Promise<string> {
  const name = uniqueName("acct");
  const created = await client.send(new CreateAccountCommand({ AccountName: name, Email: `${name}@example.com` }));
  let status = created.CreateAccountStatus;
  // AWS creates accounts asynchronously; moto answers SUCCEEDED at once, but poll like real code would.
  for (let attempt = 0; status?.State === "IN_PROGRESS" && status.Id && attempt < 50; attempt++) {
    await new Promise((resolveWait) => setTimeout(resolveWait, 100));
    const described = await client.send(new DescribeCreateAccountStatusCommand({ CreateAccountRequestId: status.Id }));
    status = described.CreateAccountStatus;
  }
  if (status?.State !== "SUCCEEDED" || !status.AccountId) {
    throw new Error(`creating account ${name} in moto ended in state ${status?.State} (${status?.FailureReason})`);
  }
  await client.send(
    new MoveAccountCommand({ AccountId: status.AccountId, SourceParentId: rootId, DestinationParentId: ouId }),
  );
  return status.AccountId;
}

/**
 * Ensures the (single, shared) moto organization exists with all features and adds fresh structure for the
 * calling test: root → parentOu (with one account) → nestedOu (with one account). Safe to call from parallel
 * test files; each call creates its own OUs and accounts.
 */
export async function organizationsFixture(): Promise<OrganizationsFixture> {
  const client = new OrganizationsClient({});
  try {
    const organization = await describeOrCreateOrganization(client);
    const { Roots: roots } = await client.send(new ListRootsCommand({}));
    const rootId = roots?.[0]?.Id;
    if (!organization.Id || !organization.Arn || !organization.MasterAccountId || !rootId) {
      throw new Error("moto returned an incomplete organization (id, ARN, management account or root missing)");
    }
    const parentOu = await createOu(client, rootId, "parent-ou");
    const nestedOu = await createOu(client, parentOu.id, "nested-ou");
    return {
      organizationId: organization.Id,
      organizationArn: organization.Arn,
      managementAccountId: organization.MasterAccountId,
      rootId,
      parentOu,
      nestedOu,
      parentOuAccountId: await createAccountIn(client, rootId, parentOu.id),
      nestedOuAccountId: await createAccountIn(client, rootId, nestedOu.id),
    };
  } finally {
    client.destroy();
  }
}

/**
 * Wipes ALL moto state (`POST /moto-api/reset`). Test files run in parallel against the same server, so this
 * also deletes resources other files are using right now; use it only in a file that runs alone, and prefer
 * `uniqueName()` everywhere else.
 */
export async function resetMoto(): Promise<void> {
  const response = await fetch(`${inject("motoEndpoint")}/moto-api/reset`, { method: "POST" });
  await response.arrayBuffer();
  if (!response.ok) throw new Error(`POST /moto-api/reset answered HTTP ${response.status}`);
}
