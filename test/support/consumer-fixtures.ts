/**
 * Fixtures for the consumer tests and the consumer benchmark on moto: clients acting in a member account
 * (through the OrganizationAccountAccessRole that Organizations creates in every account it creates), the
 * consumer read role, and functions with layers attached.
 */
import { CreateRoleCommand, IAMClient } from "@aws-sdk/client-iam";
import { type Architecture, CreateFunctionCommand, LambdaClient, type Runtime } from "@aws-sdk/client-lambda";
import { OrganizationsClient } from "@aws-sdk/client-organizations";
import { AssumeRoleCommand, STSClient } from "@aws-sdk/client-sts";
import { newConsumerClients } from "../../lib/publish/consumer-clients.ts";
import type { ConsumerClients, Credentials } from "../../lib/publish/consumers.ts";
import { MODE, ZIP_DATE } from "../../lib/zip/folder-zip.ts";
import { zipToBuffer } from "../../lib/zip/writer.ts";

const TRUST = JSON.stringify({
  Version: "2012-10-17",
  Statement: [{ Effect: "Allow", Principal: { Service: "lambda.amazonaws.com" }, Action: "sts:AssumeRole" }],
});

/** Credentials in `account`, through the role Organizations created there. */
export async function credentialsIn(account: string): Promise<Credentials> {
  const sts = new STSClient({});
  try {
    const res = await sts.send(
      new AssumeRoleCommand({
        RoleArn: `arn:aws:iam::${account}:role/OrganizationAccountAccessRole`,
        RoleSessionName: "layer-sync-test-setup",
      }),
    );
    const c = res.Credentials;
    if (!c?.AccessKeyId || !c.SecretAccessKey) throw new Error("moto answered AssumeRole without credentials");
    return { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.SessionToken };
  } finally {
    sts.destroy();
  }
}

/** Create a role named `name` in the account of `credentials` (or the caller's); returns its ARN. */
export async function createRole(name: string, credentials?: Credentials): Promise<string> {
  const iam = new IAMClient(credentials ? { credentials } : {});
  try {
    const res = await iam.send(new CreateRoleCommand({ RoleName: name, AssumeRolePolicyDocument: TRUST }));
    if (!res.Role?.Arn) throw new Error(`moto created role ${name} without an ARN`);
    return res.Role.Arn;
  } finally {
    iam.destroy();
  }
}

let code: Uint8Array | undefined;

export interface FunctionSpec {
  name: string;
  role: string;
  layers: string[];
  runtime?: Runtime;
  architecture?: Architecture;
}

/** Create a function with the given layers, with `credentials` (or the caller's) in `region`. */
export async function createFunction(spec: FunctionSpec, credentials?: Credentials, region?: string): Promise<void> {
  const source = Buffer.from("def handler(event, context):\n    return 1\n");
  code ??= await zipToBuffer([{ name: "index.py", mode: MODE.file, size: source.length, content: source }], ZIP_DATE);
  const lambda = new LambdaClient({ ...(credentials ? { credentials } : {}), ...(region ? { region } : {}) });
  try {
    await lambda.send(
      new CreateFunctionCommand({
        FunctionName: spec.name,
        Role: spec.role,
        Runtime: spec.runtime ?? "python3.12",
        Architectures: [spec.architecture ?? "x86_64"],
        Handler: "index.handler",
        Code: { ZipFile: code },
        ...(spec.layers.length ? { Layers: spec.layers } : {}),
      }),
    );
  } finally {
    lambda.destroy();
  }
}

/**
 * The clients the consumer sources read with, against moto: the CLI's and the functions' own
 * (`newConsumerClients`) but for Config, which moto lacks, and no wait between retries. `close()` destroys
 * the caller's ones.
 */
export function testConsumerClients(extra: Partial<ConsumerClients> = {}): ConsumerClients & { close(): void } {
  const organizations = new OrganizationsClient({});
  const clients = newConsumerClients(organizations);
  return {
    ...clients,
    configAs: () => {
      throw new Error("moto has no AWS Config advanced queries");
    },
    sleep: async () => {},
    ...extra,
    close: () => {
      clients.close();
      organizations.destroy();
    },
  };
}
