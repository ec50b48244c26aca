import { readFileSync } from "node:fs";
import { type ServiceOutputTypes as ConfigOutput, ConfigServiceClient } from "@aws-sdk/client-config-service";
import { LambdaClient } from "@aws-sdk/client-lambda";
import { OrganizationsClient } from "@aws-sdk/client-organizations";
import { STSClient, type ServiceOutputTypes as StsOutput } from "@aws-sdk/client-sts";
import { describe, expect, it } from "vitest";
import { loadPublishConfig } from "../../lib/common/config.ts";
import {
  type ConsumerFunction,
  classify,
  consumerQuery,
  inventoryReader,
  isCompatible,
  type LayerVersionFacts,
  parseConfigResults,
  usageByVersion,
} from "../../lib/publish/consumers.ts";
import { consumerRetention, historyVersions, skippedUnreadable } from "../../lib/publish/retention.ts";

const OWNER = "123456789012";
const recorded = JSON.parse(
  readFileSync(new URL("../fixtures/config/select-aggregate-lambda-layers.json", import.meta.url), "utf8"),
) as { pages: { Results: string[]; NextToken?: string }[] };

/**
 * Real SDK clients whose requests never leave: each command is answered by `answer` (moto has no Config
 * advanced queries, and these tests need no server).
 */
function answeringSts(answer: (command: string, input: object) => object): STSClient {
  const client = new STSClient({ region: "eu-west-1" });
  client.middlewareStack.add(
    (_next, context) => async (args) => ({
      output: { $metadata: {}, ...answer(context.commandName ?? "", args.input) } as StsOutput,
      response: {},
    }),
    { step: "initialize" },
  );
  return client;
}

function answeringConfig(answer: (command: string, input: object) => object): ConfigServiceClient {
  const client = new ConfigServiceClient({ region: "eu-west-1" });
  client.middlewareStack.add(
    (_next, context) => async (args) => ({
      output: { $metadata: {}, ...answer(context.commandName ?? "", args.input) } as ConfigOutput,
      response: {},
    }),
    { step: "initialize" },
  );
  return client;
}

const facts = (version: number, extra: Partial<LayerVersionFacts> = {}): LayerVersionFacts => ({
  version,
  arn: `arn:aws:lambda:eu-west-1:${OWNER}:layer:py-requests:${version}`,
  description: `acme/repo@abc1234 layers/py-requests sha256:${String(version).padStart(12, "0")}`,
  runtimes: ["python3.12", "python3.13"],
  architectures: ["x86_64", "arm64"],
  ...extra,
});

const fn = (name: string, layers: string[], extra: Partial<ConsumerFunction> = {}): ConsumerFunction => ({
  account: "111111111111",
  region: "eu-west-1",
  functionName: name,
  runtime: "python3.12",
  architecture: "x86_64",
  layers,
  ...extra,
});
const arn = (version: number, layer = "py-requests", account = OWNER) =>
  `arn:aws:lambda:eu-west-1:${account}:layer:${layer}:${version}`;
const target = { layerName: "py-requests", region: "eu-west-1", owner: OWNER };

describe("the config source's query", () => {
  it("selects Lambda functions whose layers are a version of a package's layer, one prefix per layer and Region", () => {
    const q = consumerQuery({
      partition: "aws",
      account: OWNER,
      layerNames: ["py-requests"],
      regions: ["eu-west-1", "us-east-1"],
    });
    expect(q).toBe(
      "SELECT accountId, awsRegion, resourceName, configuration.runtime, configuration.architectures, configuration.layers " +
        "WHERE resourceType = 'AWS::Lambda::Function' AND (" +
        `configuration.layers.arn LIKE 'arn:aws:lambda:eu-west-1:${OWNER}:layer:py-requests:%' OR ` +
        `configuration.layers.arn LIKE 'arn:aws:lambda:us-east-1:${OWNER}:layer:py-requests:%')`,
    );
  });

  it("falls back to one suffix wildcard when the prefixes would pass Config's 4,096-character limit", () => {
    const layerNames = Array.from({ length: 60 }, (_, i) => `package-number-${i}`);
    const q = consumerQuery({ partition: "aws", account: OWNER, layerNames, regions: ["eu-west-1", "us-east-1"] });
    expect(q.length).toBeLessThanOrEqual(4096);
    expect(q.endsWith("configuration.layers.arn LIKE 'arn:aws:lambda:%'")).toBe(true);
  });
});

describe("parsing recorded answers of SelectAggregateResourceConfig", () => {
  it("turns each result into a function with its account, Region, runtime, architecture and layer ARNs", () => {
    const functions = parseConfigResults(recorded.pages.flatMap((p) => p.Results));
    expect(functions).toEqual([
      {
        account: "111111111111",
        region: "eu-west-1",
        functionName: "orders-api",
        runtime: "python3.12",
        architecture: "arm64",
        layers: [arn(7)],
      },
      {
        account: "222222222222",
        region: "eu-west-1",
        functionName: "billing",
        runtime: "nodejs22.x",
        architecture: "x86_64",
        layers: [arn(5), arn(1, "other", "999999999999")],
      },
      {
        account: "111111111111",
        region: "us-east-1",
        functionName: "reports",
        runtime: "python3.13",
        architecture: "x86_64",
        layers: [`arn:aws:lambda:us-east-1:${OWNER}:layer:py-requests:2`],
      },
    ]);
  });

  it("rejects a result that is not JSON, saying so", () => {
    expect(() => parseConfigResults(["not json"])).toThrow(/not JSON/);
  });

  it("reads every page through the aggregator, with the role assumed when one is set", async () => {
    const sent: { command: string; input: object }[] = [];
    const sts = answeringSts((command, input) => {
      sent.push({ command, input });
      return command === "GetCallerIdentityCommand"
        ? { Account: OWNER, Arn: `arn:aws:iam::${OWNER}:role/publish` }
        : { Credentials: { AccessKeyId: "A", SecretAccessKey: "S", SessionToken: "T" } };
    });
    let page = 0;
    const configAs = () =>
      answeringConfig((command, input) => {
        sent.push({ command, input });
        return recorded.pages[page++] ?? {};
      });
    const config = loadPublishConfig({
      env: {
        ARTIFACT_BUCKET: "artifacts",
        CONSUMER_SOURCE: "config",
        CONSUMER_AGGREGATOR: "aws-controltower-GuardrailsComplianceAggregator",
        CONSUMER_AGGREGATOR_ROLE_ARN: "arn:aws:iam::222233334444:role/aggregator-reader",
      },
    });
    const reader = inventoryReader(
      config,
      {
        organizations: new OrganizationsClient({ region: "eu-west-1" }),
        sts,
        lambdaAs: () => new LambdaClient({}),
        configAs,
        sleep: async () => {},
      },
      async () => ["py-requests"],
    );
    const inventory = await reader?.(["eu-west-1"]);
    expect(inventory?.functions.map((f) => f.functionName)).toEqual(["orders-api", "billing"]);
    expect(inventory?.accounts).toEqual({ read: 2, failed: [] });
    expect(sent.map((s) => s.command)).toEqual([
      "GetCallerIdentityCommand",
      "AssumeRoleCommand",
      "SelectAggregateResourceConfigCommand",
      "SelectAggregateResourceConfigCommand",
    ]);
    expect(sent[1]?.input).toMatchObject({ RoleArn: "arn:aws:iam::222233334444:role/aggregator-reader" });
    expect(sent[3]?.input).toMatchObject({
      ConfigurationAggregatorName: "aws-controltower-GuardrailsComplianceAggregator",
      NextToken: "page-2",
    });
  });
});

describe("classifying the functions of one layer in one Region", () => {
  const versions = [
    facts(9),
    facts(8, { runtimes: ["python3.13"] }),
    facts(7, { description: "uploaded by hand" }),
    facts(5),
  ];
  const functions = [
    fn("current", [arn(9)]),
    fn("old-incompatible", [arn(8)]),
    fn("foreign", [arn(7)]),
    fn("deleted", [arn(3)]),
    fn("other-layer", [arn(9, "something-else")]),
    fn("other-owner", [arn(9, "py-requests", "999999999999")]),
    fn("other-region", [arn(9)], { region: "us-east-1" }),
  ];
  const out = classify(functions, target, versions, 9);

  it("reports each function using the layer once, with its version, and no other function", () => {
    expect(out.functions.map((f) => [f.functionName, f.version])).toEqual([
      ["current", 9],
      ["deleted", 3],
      ["foreign", 7],
      ["old-incompatible", 8],
    ]);
  });

  it("marks the latest version, compatibility, and drift (a deleted version, a version layer-sync did not publish)", () => {
    const by = Object.fromEntries(out.functions.map((f) => [f.functionName, f]));
    expect(by.current).toMatchObject({ latest: true, compatible: true, drift: null });
    expect(by["old-incompatible"]).toMatchObject({ latest: false, compatible: false, drift: null });
    expect(by.foreign).toMatchObject({ latest: false, compatible: true, drift: "foreign-version" });
    expect(by.deleted).toMatchObject({ latest: false, compatible: null, drift: "missing-version" });
    expect(out.counts).toEqual({ latest: 1, older: 3, incompatible: 1 });
    expect(out.foreignVersions).toEqual([7]);
  });

  it("treats a version without compatible runtimes or architectures as compatible with any", () => {
    expect(isCompatible(facts(1, { runtimes: [], architectures: [] }), "nodejs22.x", "arm64")).toBe(true);
    expect(isCompatible(facts(1, { architectures: ["x86_64"] }), "python3.12", "arm64")).toBe(false);
  });

  it("counts the functions on each version", () => {
    expect([...usageByVersion(functions, target)].sort()).toEqual([
      [3, 1],
      [7, 1],
      [8, 1],
      [9, 1],
    ]);
  });
});

describe("the history parameter", () => {
  it("names the versions it lists, and none when it does not exist", () => {
    const value = JSON.stringify([
      { version: 4, layerVersionArn: arn(4), commit: "c".repeat(40), at: "2026-12-01T00:00:00Z" },
      { version: 2, layerVersionArn: arn(2), commit: "d".repeat(40), at: "2026-11-01T00:00:00Z" },
    ]);
    expect(historyVersions(value)).toEqual({ versions: [4, 2] });
    expect(historyVersions(undefined)).toEqual({ versions: [] });
  });

  it("is a problem when it is not a JSON list, so retention deletes nothing", () => {
    expect(historyVersions("{oops").problem).toMatch(/deleted nothing/);
  });
});

describe("retention with consumers", () => {
  const planned = [3, 2, 1].map((version) => ({ version, arn: arn(version), description: "", createdDate: undefined }));

  it("keeps the versions functions use, with their counts, and deletes the others", async () => {
    const inventory = {
      functions: [fn("a", [arn(2)]), fn("b", [arn(2)]), fn("c", [arn(9)])],
      accounts: { read: 3, failed: [] },
      requests: 0,
    };
    const decided = await consumerRetention(async () => inventory, planned, target);
    expect(decided.delete.map((v) => v.version)).toEqual([3, 1]);
    expect(decided.keptInUse).toEqual([{ version: 2, functions: 2 }]);
    expect(decided.skipped).toBeUndefined();
  });

  it("deletes nothing when some account could not be read, and says how many", async () => {
    const inventory = {
      functions: [],
      accounts: { read: 2, failed: [{ account: "444444444444", error: "denied" }] },
      requests: 0,
    };
    const decided = await consumerRetention(async () => inventory, planned, target);
    expect(decided.delete).toEqual([]);
    expect(decided.skipped).toBe(skippedUnreadable(1));
    expect(decided.skipped).toBe("skipped: consumers unreadable in 1 account(s)");
  });

  it("deletes nothing when the consumers could not be read at all", async () => {
    const decided = await consumerRetention(
      async () => {
        throw new Error("organizations:ListAccounts denied");
      },
      planned,
      target,
    );
    expect(decided.delete).toEqual([]);
    expect(decided.warning).toMatch(/could not be read/);
  });
});
