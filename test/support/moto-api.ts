/**
 * Small helpers for the release tests on moto: queue the answers of the simple Lambda backend's Invoke
 * (the launcher runs moto without Docker), and call services the project has no SDK client for (IAM, SQS)
 * through their wire protocols. moto does not verify signatures; it routes by the SigV4 credential scope,
 * so these requests carry a well-formed but unsigned Authorization header.
 */
import { inject } from "vitest";
import { MOTO_ACCOUNT_ID } from "./aws.ts";

const endpoint = () => inject("motoEndpoint");

function authorization(service: string, region: string): string {
  return `AWS4-HMAC-SHA256 Credential=testing/20260101/${region}/${service}/aws4_request, SignedHeaders=host, Signature=0`;
}

/** Queue what the next Invokes in `region` answer (each a JSON value), in order. */
export async function queueInvokeResults(region: string, results: readonly unknown[]): Promise<void> {
  const response = await fetch(`${endpoint()}/moto-api/static/lambda-simple/response`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      results: results.map((r) => JSON.stringify(r)),
      account_id: MOTO_ACCOUNT_ID,
      region,
    }),
  });
  await response.arrayBuffer();
  if (!response.ok) throw new Error(`queueing Invoke results answered HTTP ${response.status}`);
}

/** Create an IAM role Lambda may assume; returns its ARN. */
export async function createLambdaRole(name: string): Promise<string> {
  const trust = JSON.stringify({
    Version: "2012-10-17",
    Statement: [{ Effect: "Allow", Principal: { Service: "lambda.amazonaws.com" }, Action: "sts:AssumeRole" }],
  });
  const body = new URLSearchParams({
    Action: "CreateRole",
    Version: "2010-05-08",
    RoleName: name,
    AssumeRolePolicyDocument: trust,
  });
  const response = await fetch(`${endpoint()}/`, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      authorization: authorization("iam", "us-east-1"),
    },
    body,
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`iam:CreateRole answered HTTP ${response.status}: ${text.slice(0, 300)}`);
  return `arn:aws:iam::${MOTO_ACCOUNT_ID}:role/${name}`;
}

async function sqs<T>(region: string, action: string, input: Record<string, unknown>): Promise<T> {
  const response = await fetch(`${endpoint()}/`, {
    method: "POST",
    headers: {
      "content-type": "application/x-amz-json-1.0",
      "x-amz-target": `AmazonSQS.${action}`,
      authorization: authorization("sqs", region),
    },
    body: JSON.stringify(input),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`sqs:${action} answered HTTP ${response.status}: ${text.slice(0, 300)}`);
  return (text ? JSON.parse(text) : {}) as T;
}

/** Create a queue; returns its URL and ARN. */
export async function createQueue(region: string, name: string): Promise<{ url: string; arn: string }> {
  const { QueueUrl } = await sqs<{ QueueUrl: string }>(region, "CreateQueue", { QueueName: name });
  return { url: QueueUrl, arn: `arn:aws:sqs:${region}:${MOTO_ACCOUNT_ID}:${name}` };
}

/** Every message body waiting in the queue (parsed as JSON), deleting none. */
export async function receiveAll(region: string, url: string): Promise<unknown[]> {
  const out: unknown[] = [];
  for (let i = 0; i < 20; i++) {
    const { Messages } = await sqs<{ Messages?: { Body: string }[] }>(region, "ReceiveMessage", {
      QueueUrl: url,
      MaxNumberOfMessages: 10,
      VisibilityTimeout: 300,
      WaitTimeSeconds: 0,
    });
    if (!Messages?.length) break;
    out.push(...Messages.map((m) => JSON.parse(m.Body) as unknown));
  }
  return out;
}
