/**
 * The two consumer sources of `consumers.ts`: `roles` (assume CONSUMER_READ_ROLE in every account and list
 * its functions per Region) and `config` (one AWS Config advanced query on an aggregator). Both give an
 * `Inventory`: the functions that have layers, and which accounts were read or could not be.
 */
import type { ConfigServiceClient } from "@aws-sdk/client-config-service";
import { SelectAggregateResourceConfigCommand } from "@aws-sdk/client-config-service";
import { type LambdaClient, ListFunctionsCommand } from "@aws-sdk/client-lambda";
import {
  DescribeOrganizationCommand,
  ListAccountsCommand,
  type OrganizationsClient,
} from "@aws-sdk/client-organizations";
import { AssumeRoleCommand, GetCallerIdentityCommand, type STSClient } from "@aws-sdk/client-sts";
import { callFailed, errorName, isThrottling } from "../common/aws-errors.ts";
import { mapLimit } from "../common/concurrency.ts";
import type { LayerDefaults, PublishConfig } from "../common/config.ts";
import type { ConsumerConfig } from "../common/consumer-config.ts";
import { PublishError } from "../common/errors.ts";
import { accountsUnder } from "./organizations.ts";

/** One function with at least one layer attached, as a source read it. */
export interface ConsumerFunction {
  account: string;
  region: string;
  functionName: string;
  runtime: string | null;
  architecture: string | null;
  /** The LayerVersionArns attached, in order. */
  layers: string[];
}

export interface AccountFailure {
  account: string;
  error: string;
}

/** What a source read: the functions with layers, and which accounts were read. */
export interface Inventory {
  functions: ConsumerFunction[];
  accounts: { read: number; failed: AccountFailure[] };
  /** STS, Lambda and Config requests the read sent (Organizations calls not counted), for the logs and the benchmark. */
  requests: number;
}

/** Reads the functions of the given Regions. */
export type InventoryReader = (regions: readonly string[]) => Promise<Inventory>;

/** Temporary credentials from sts:AssumeRole. */
export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiration?: Date;
}

export interface ConsumerClients {
  /** Home Region clients. */
  organizations: OrganizationsClient;
  sts: STSClient;
  /** A Lambda client of `region` acting with `credentials`; the reader destroys it when done. */
  lambdaAs: (region: string, credentials: Credentials) => LambdaClient;
  /** A Config client of the home Region, with `credentials` or the caller's own; destroyed when done. */
  configAs: (credentials: Credentials | undefined) => ConfigServiceClient;
  sleep: (ms: number) => Promise<void>;
  /** Accounts read at once (default 16). */
  concurrency?: number;
  /** Regions of one account read at once (default 4). */
  regionConcurrency?: number;
  /** Attempts of a throttled call, beyond the SDK's own retries (default 6). */
  attempts?: number;
}

/** Retry a call that AWS throttled, with exponential back-off and jitter; other failures are thrown at once. */
export async function retryThrottled<T>(
  call: () => Promise<T>,
  sleep: (ms: number) => Promise<void>,
  attempts = 6,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      if (!isThrottling(error) || attempt >= attempts) throw error;
      const ceiling = Math.min(20_000, 200 * 2 ** attempt);
      await sleep(ceiling / 2 + Math.random() * (ceiling / 2));
    }
  }
}

const SESSION = "layer-sync-consumers";

export function readRoleArn(partition: string, account: string, roleName: string): string {
  return `arn:${partition}:iam::${account}:role/${roleName}`;
}

/** The caller's account and partition (sts:GetCallerIdentity). */
export async function callerIdentity(sts: STSClient): Promise<{ account: string; partition: string }> {
  try {
    const res = await sts.send(new GetCallerIdentityCommand({}));
    const account = res.Account;
    if (!account) throw new PublishError("sts:GetCallerIdentity answered without an account");
    return { account, partition: res.Arn?.split(":")[1] ?? "aws" };
  } catch (error) {
    if (error instanceof PublishError) throw error;
    throw callFailed(PublishError, { call: "sts:GetCallerIdentity", resource: "the caller" }, error);
  }
}

/**
 * The accounts the `roles` source reads, sorted: the whole organization's ACTIVE accounts with
 * SHARE_ORGANIZATION_ID, else the ACTIVE accounts of SHARE_OU_IDS (nested OUs included) and
 * SHARE_ACCOUNT_IDS; always the organization's management account (when there is an organization) and
 * the caller's own account.
 */
export async function consumerAccounts(
  layer: LayerDefaults,
  organizations: OrganizationsClient,
  caller: string,
): Promise<string[]> {
  const accounts = new Set<string>([caller, ...layer.shareAccountIds]);
  try {
    const org = await organizations.send(new DescribeOrganizationCommand({}));
    if (org.Organization?.MasterAccountId) accounts.add(org.Organization.MasterAccountId);
  } catch (error) {
    const needed = layer.shareOrganizationId !== undefined || layer.shareOuIds.length > 0;
    if (needed || errorName(error) !== "AWSOrganizationsNotInUseException") {
      throw callFailed(
        PublishError,
        { call: "organizations:DescribeOrganization", resource: "the caller's organization" },
        error,
      );
    }
  }
  if (layer.shareOrganizationId !== undefined) {
    let token: string | undefined;
    do {
      const page = await organizations.send(new ListAccountsCommand({ NextToken: token })).catch((error: unknown) => {
        throw callFailed(
          PublishError,
          {
            call: "organizations:ListAccounts",
            resource: `organization ${layer.shareOrganizationId}`,
            hint: "run layer-sync in the management account or a delegated administrator account",
          },
          error,
        );
      });
      for (const a of page.Accounts ?? []) if (a.Id && (a.State ?? a.Status) === "ACTIVE") accounts.add(a.Id);
      token = page.NextToken || undefined;
    } while (token);
  }
  for (const ou of layer.shareOuIds) {
    for (const id of await accountsUnder(organizations, ou)) accounts.add(id);
  }
  return [...accounts].sort();
}

function toConsumer(
  account: string,
  region: string,
  f: { FunctionName?: string; Runtime?: string; Architectures?: string[]; Layers?: { Arn?: string }[] },
): ConsumerFunction | undefined {
  const layers = (f.Layers ?? []).flatMap((l) => (l.Arn ? [l.Arn] : []));
  if (!f.FunctionName || layers.length === 0) return undefined;
  return {
    account,
    region,
    functionName: f.FunctionName,
    runtime: f.Runtime ?? null,
    architecture: f.Architectures?.[0] ?? "x86_64",
    layers,
  };
}

/** Every function of one Region of one account that has a layer (ListFunctions, every page). */
async function listConsumers(
  lambda: LambdaClient,
  account: string,
  region: string,
  retry: <T>(call: () => Promise<T>) => Promise<T>,
  count: () => void,
): Promise<ConsumerFunction[]> {
  const out: ConsumerFunction[] = [];
  let marker: string | undefined;
  do {
    count();
    const page = await retry(() => lambda.send(new ListFunctionsCommand({ Marker: marker, MaxItems: 50 })));
    for (const f of page.Functions ?? []) {
      const c = toConsumer(account, region, f);
      if (c) out.push(c);
    }
    marker = page.NextMarker || undefined;
  } while (marker);
  return out;
}

const READ_ROLE_HINT =
  "the read role is missing in that account or does not trust this caller: deploy infra/cfct/consumer-read-role.template.yaml there (it trusts the publish and CLI roles of the home account), or check CONSUMER_READ_ROLE";

/** The `roles` source: assume the read role in every account and list its functions in every Region. */
export function rolesInventory(
  layer: LayerDefaults,
  consumers: ConsumerConfig,
  clients: ConsumerClients,
): InventoryReader {
  return async (regions) => {
    const retry = <T>(call: () => Promise<T>) => retryThrottled(call, clients.sleep, clients.attempts ?? 6);
    const caller = await callerIdentity(clients.sts);
    const listed = await consumerAccounts(layer, clients.organizations, caller.account);
    let requests = 1;
    const count = () => {
      requests++;
    };
    const failed: AccountFailure[] = [];
    const functions: ConsumerFunction[] = [];
    await mapLimit(listed, clients.concurrency ?? 16, async (account) => {
      const roleArn = readRoleArn(caller.partition, account, consumers.readRole);
      let credentials: Credentials;
      try {
        count();
        const res = await retry(() =>
          clients.sts.send(new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: SESSION, DurationSeconds: 900 })),
        );
        const c = res.Credentials;
        if (!c?.AccessKeyId || !c.SecretAccessKey)
          throw new PublishError("sts:AssumeRole answered without credentials");
        credentials = {
          accessKeyId: c.AccessKeyId,
          secretAccessKey: c.SecretAccessKey,
          ...(c.SessionToken ? { sessionToken: c.SessionToken } : {}),
          ...(c.Expiration ? { expiration: c.Expiration } : {}),
        };
      } catch (error) {
        const e = callFailed(
          PublishError,
          { call: "sts:AssumeRole", resource: roleArn, hint: READ_ROLE_HINT, advice: { AccessDenied: READ_ROLE_HINT } },
          error,
        );
        failed.push({ account, error: e.message });
        return;
      }
      const found: ConsumerFunction[] = [];
      const problems: string[] = [];
      await mapLimit(regions, clients.regionConcurrency ?? 4, async (region) => {
        const lambda = clients.lambdaAs(region, credentials);
        try {
          found.push(...(await listConsumers(lambda, account, region, retry, count)));
        } catch (error) {
          problems.push(
            callFailed(
              PublishError,
              {
                call: "lambda:ListFunctions",
                resource: `account ${account} in ${region}`,
                hint: `if ${region} is an opt-in Region, enable it for the account; else check the read role's permissions`,
              },
              error,
            ).message,
          );
        } finally {
          lambda.destroy();
        }
      });
      if (problems.length) failed.push({ account, error: problems.sort().join("; ") });
      else functions.push(...found);
    });
    failed.sort((a, b) => a.account.localeCompare(b.account));
    return { functions, accounts: { read: listed.length - failed.length, failed }, requests };
  };
}

// -------------------------------------------------------------------------------------------- config source

/** Config advanced query expressions are at most 4,096 characters. */
export const QUERY_MAX = 4096;

const quote = (text: string) => text.replace(/'/g, "''");

/**
 * The advanced query on `configuration.layers`: Lambda functions whose layers include a version of one of
 * `layerNames` owned by `account` in one of `regions`. Config wildcards are suffix-only (`LIKE 'abc%'`, and
 * `_` matches any one character), so each layer and Region is one prefix; when they would not fit in one
 * query, the prefix is the owner's layers in every Region, and the answer is filtered here in any case.
 */
export function consumerQuery(args: {
  partition: string;
  account: string;
  layerNames: readonly string[];
  regions: readonly string[];
}): string {
  const select =
    "SELECT accountId, awsRegion, resourceName, configuration.runtime, configuration.architectures, configuration.layers WHERE resourceType = 'AWS::Lambda::Function' AND ";
  const prefixes = args.regions.flatMap((region) =>
    args.layerNames.map((name) => `arn:${args.partition}:lambda:${region}:${args.account}:layer:${name}:%`),
  );
  const precise = `${select}(${prefixes.map((p) => `configuration.layers.arn LIKE '${quote(p)}'`).join(" OR ")})`;
  if (prefixes.length > 0 && precise.length <= QUERY_MAX) return precise;
  return `${select}configuration.layers.arn LIKE '${quote(`arn:${args.partition}:lambda:`)}%'`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

const str = (value: unknown): string | null => (typeof value === "string" && value !== "" ? value : null);

/**
 * The functions in the `Results` of SelectAggregateResourceConfig: each result is a JSON document with the
 * selected properties, nested as in the configuration item
 * (`{"accountId", "awsRegion", "resourceName", "configuration": {"runtime", "architectures", "layers": [{"arn", "codeSize"}]}}`).
 * A result that is not such a document is an error naming it.
 */
export function parseConfigResults(results: readonly string[]): ConsumerFunction[] {
  const out: ConsumerFunction[] = [];
  for (const text of results) {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (error) {
      throw new PublishError(
        `config:SelectAggregateResourceConfig returned a result that is not JSON (${text.slice(0, 80)}); report this`,
        { cause: error },
      );
    }
    if (!isRecord(doc)) throw new PublishError(`config:SelectAggregateResourceConfig returned ${text.slice(0, 80)}`);
    const configuration = isRecord(doc.configuration) ? doc.configuration : {};
    const account = str(doc.accountId);
    const region = str(doc.awsRegion);
    const functionName = str(doc.resourceName) ?? str(configuration.functionName);
    if (!account || !region || !functionName) continue;
    const layers = (Array.isArray(configuration.layers) ? configuration.layers : []).flatMap((l: unknown) => {
      const arn = isRecord(l) ? str(l.arn) : str(l);
      return arn ? [arn] : [];
    });
    if (layers.length === 0) continue;
    const architectures = Array.isArray(configuration.architectures) ? configuration.architectures : [];
    out.push({
      account,
      region,
      functionName,
      runtime: str(configuration.runtime),
      architecture: str(architectures[0]) ?? "x86_64",
      layers,
    });
  }
  return out;
}

/** The `config` source: one advanced query on the aggregator, every page. */
export function configInventory(
  layer: LayerDefaults,
  consumers: ConsumerConfig,
  clients: ConsumerClients,
  packages: () => Promise<readonly string[]>,
): InventoryReader {
  return async (regions) => {
    const aggregator = consumers.aggregator;
    if (!aggregator) throw new PublishError("CONSUMER_SOURCE is config but CONSUMER_AGGREGATOR is not set; name it");
    const caller = await callerIdentity(clients.sts);
    let requests = 1;
    let credentials: Credentials | undefined;
    const roleArn = consumers.aggregatorRoleArn;
    if (roleArn) {
      requests++;
      const res = await retryThrottled(
        () => clients.sts.send(new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: SESSION })),
        clients.sleep,
      ).catch((error: unknown) => {
        throw callFailed(
          PublishError,
          {
            call: "sts:AssumeRole",
            resource: roleArn,
            hint: "check CONSUMER_AGGREGATOR_ROLE_ARN and its trust policy",
          },
          error,
        );
      });
      const c = res.Credentials;
      if (!c?.AccessKeyId || !c.SecretAccessKey) throw new PublishError("sts:AssumeRole answered without credentials");
      credentials = {
        accessKeyId: c.AccessKeyId,
        secretAccessKey: c.SecretAccessKey,
        ...(c.SessionToken ? { sessionToken: c.SessionToken } : {}),
      };
    }
    const expression = consumerQuery({
      partition: caller.partition,
      account: caller.account,
      layerNames: (await packages()).map((p) => `${layer.layerNamePrefix}${p}`),
      regions,
    });
    const config = clients.configAs(credentials);
    const results: string[] = [];
    try {
      let token: string | undefined;
      do {
        requests++;
        const page = await retryThrottled(
          () =>
            config.send(
              new SelectAggregateResourceConfigCommand({
                Expression: expression,
                ConfigurationAggregatorName: aggregator,
                Limit: 100,
                NextToken: token,
              }),
            ),
          clients.sleep,
        ).catch((error: unknown) => {
          throw callFailed(
            PublishError,
            {
              call: "config:SelectAggregateResourceConfig",
              resource: `aggregator ${aggregator}`,
              advice: {
                NoSuchConfigurationAggregatorException: `there is no aggregator ${aggregator} here; check CONSUMER_AGGREGATOR and CONSUMER_AGGREGATOR_ROLE_ARN`,
              },
            },
            error,
          );
        });
        results.push(...(page.Results ?? []));
        token = page.NextToken || undefined;
      } while (token);
    } finally {
      config.destroy();
    }
    const wanted = new Set(regions);
    const functions = parseConfigResults(results).filter((f) => wanted.has(f.region));
    return { functions, accounts: { read: new Set(functions.map((f) => f.account)).size, failed: [] }, requests };
  };
}

/** The reader of the configured source; undefined for `none`. */
export function inventoryReader(
  config: PublishConfig,
  clients: ConsumerClients,
  packages: () => Promise<readonly string[]>,
): InventoryReader | undefined {
  const consumers = config.consumers;
  if (!consumers || consumers.source === "none") return undefined;
  return consumers.source === "roles"
    ? rolesInventory(config.layer, consumers, clients)
    : configInventory(config.layer, consumers, clients, packages);
}
