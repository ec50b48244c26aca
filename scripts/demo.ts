/**
 * `npm run demo`: the whole chain on local emulators, no AWS account needed.
 *
 * 1. Starts moto (AWS) from the project's virtualenv and the project's Bitbucket emulator serving an
 *    example repository `acme/platform-layers`.
 * 2. Runs the real sync handler on the CfCT pipeline's STARTED event: zips land in S3, pointers in SSM.
 * 3. Runs the real publish handler on the Parameter Store Change events that EventBridge would deliver
 *    (moto emits none): layer versions, organization-wide permissions, the ARN parameter, the RAM share.
 * 4. Runs both again (nothing changes), then commits a change and shows one new version.
 */
import { readFile } from "node:fs/promises";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { PutParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { type BitbucketEmulator, startBitbucketEmulator } from "../test/emulators/bitbucket.ts";
import { type FixtureEntry, FixtureRepo } from "../test/fixtures/repo.ts";
import { organizationsFixture } from "../test/support/aws.ts";
import { startMoto } from "../test/support/moto.global.ts";

const TOKEN = "demo-access-token-not-a-secret";
const PREFIX = "/layer-sync";
type Change = Omit<FixtureEntry, "path">;
const file = (text: string): Change => ({ kind: "file", content: Buffer.from(text) });

function exampleRepository(): FixtureRepo {
  const repo = new FixtureRepo("acme", "platform-layers");
  repo.commit(
    "main",
    {
      "layers/py-requests/layer.json": file(
        JSON.stringify({ runtimes: ["python3.12", "python3.13"], license: "Apache-2.0" }),
      ),
      "layers/py-requests/python/requests/__init__.py": file("__version__ = '2.32.3'\n"),
      "layers/py-requests/python/requests/api.py": file("def get(url):\n    return url\n"),
      "layers/node-utils/nodejs/node_modules/utils/index.js": file("export const hello = () => 'hello';\n"),
      "layers/node-utils/bin/healthcheck": { kind: "executable", content: Buffer.from("#!/bin/sh\necho ok\n") },
      "layers/node-utils/bin/hc": { kind: "symlink", content: Buffer.from("healthcheck") },
      "README.md": file("# platform layers\n"),
    },
    "initial layers",
  );
  return repo;
}

const line = (text = "") => process.stdout.write(`${text}\n`);

interface SyncResult {
  commit: string;
  strategy: string;
  packages: { name: string; key: string; files: number; bytes: number; skipped: boolean; reason: string | null }[];
  requests: { total: number };
}
interface PublishResult {
  packages: {
    name: string;
    version: number;
    layerVersionArn: string;
    published: boolean;
    reason: string | null;
    permissions: string[];
    share: { arn: string; principals: string[]; resources: string[] } | null;
  }[];
}

function showSync(title: string, s: SyncResult): void {
  line(`\n== ${title}: commit ${s.commit.slice(0, 7)} via ${s.strategy}, ${s.requests.total} Bitbucket requests`);
  for (const p of s.packages) {
    line(
      `   ${p.name.padEnd(12)} ${p.skipped ? `skipped (${p.reason})` : `${p.files} files, ${p.bytes} bytes`}  s3://…/${p.key}`,
    );
  }
}

function showPublish(title: string, results: PublishResult[]): void {
  line(`\n== ${title}`);
  for (const r of results) {
    for (const p of r.packages) {
      line(
        `   ${p.name.padEnd(12)} ${p.published ? "published" : `kept (${p.reason ?? "current"})`} version ${p.version}`,
      );
      line(`   ${"".padEnd(12)} ${p.layerVersionArn}`);
      line(`   ${"".padEnd(12)} permissions: ${p.permissions.join(", ") || "none"}`);
      if (p.share)
        line(
          `   ${"".padEnd(12)} RAM share ${p.share.arn.split("/").slice(-2).join("/")} → ${p.share.principals.join(", ")}`,
        );
    }
  }
}

async function main(): Promise<void> {
  const moto = await startMoto();
  let bb: BitbucketEmulator | undefined;
  try {
    Object.assign(process.env, {
      AWS_ENDPOINT_URL: moto.endpoint,
      AWS_REGION: "eu-west-1",
      AWS_ACCESS_KEY_ID: "demo",
      AWS_SECRET_ACCESS_KEY: "demo",
      AWS_EC2_METADATA_DISABLED: "true",
      POWERTOOLS_LOG_LEVEL: "SILENT",
      POWERTOOLS_METRICS_DISABLED: "true",
    });
    delete process.env.AWS_PROFILE;
    const repo = exampleRepository();
    bb = await startBitbucketEmulator({ repos: [repo], accessTokens: [TOKEN] });
    const bucket = "layer-sync-demo-artifacts";
    await new S3Client({}).send(
      new CreateBucketCommand({ Bucket: bucket, CreateBucketConfiguration: { LocationConstraint: "eu-west-1" } }),
    );
    await new SSMClient({}).send(
      new PutParameterCommand({
        Name: `${PREFIX}/bitbucket-token`,
        Value: TOKEN,
        Type: "SecureString",
        Overwrite: true,
      }),
    );
    const org = await organizationsFixture();
    Object.assign(process.env, {
      SOURCE_PROVIDER: "bitbucket",
      SOURCE_REPOSITORY: "acme/platform-layers",
      SOURCE_REF: "main",
      SOURCE_PATHS: "layers/py-requests,layers/node-utils",
      SOURCE_API_URL: bb.apiUrl,
      SOURCE_WEB_URL: bb.webUrl,
      TOKEN_PARAMETER_NAME: `${PREFIX}/bitbucket-token`,
      ARTIFACT_BUCKET: bucket,
      PARAMETER_PREFIX: PREFIX,
      COMPATIBLE_ARCHITECTURES: "x86_64,arm64",
      SHARE_ORGANIZATION_ID: org.organizationId,
      RETAIN_VERSIONS: "5",
    });
    line(`moto at ${moto.endpoint}, Bitbucket emulator at ${bb.apiUrl}`);
    line(`organization ${org.organizationId} (management account ${org.managementAccountId})`);

    // handlers read their settings when called; import them after the environment is set
    const { handler: sync } = await import("../handlers/sync.ts");
    const { handler: publish } = await import("../handlers/publish.ts");
    const { localContext } = await import("../handlers/runtime.ts");
    const context = localContext("layer-sync-demo");
    const started = JSON.parse(await readFile(new URL("../events/pipeline-started.json", import.meta.url), "utf8"));
    const change = (pkg: string) => ({
      source: "aws.ssm",
      "detail-type": "Parameter Store Change",
      detail: { name: `${PREFIX}/${pkg}/artifact-key`, operation: "Update", type: "String" },
    });
    const publishAll = async (s: SyncResult) =>
      (await Promise.all(
        s.packages.filter((p) => !p.skipped).map((p) => publish(change(p.name), context)),
      )) as PublishResult[];

    const first = (await sync(started, context)) as SyncResult;
    showSync("sync on pipeline STARTED", first);
    showPublish("publish on Parameter Store Change", await publishAll(first));

    const again = (await sync(started, context)) as SyncResult;
    showSync("sync again, same commit", again);
    showPublish("reconcile (publish {})", [(await publish({}, context)) as PublishResult]);

    repo.commit(
      "main",
      { "layers/py-requests/python/requests/__init__.py": file("__version__ = '2.32.4'\n") },
      "bump requests",
    );
    const third = (await sync(started, context)) as SyncResult;
    showSync("sync after a commit that touches py-requests only", third);
    showPublish("publish what changed", await publishAll(third));

    line("\nMember accounts resolve the latest version through the RAM-shared parameter, by ARN:");
    line(
      `   aws ssm get-parameter --name arn:aws:ssm:eu-west-1:${org.managementAccountId}:parameter${PREFIX}/py-requests/layer-version-arn`,
    );
  } finally {
    await bb?.close();
    await moto.stop();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`demo failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
