/**
 * Vitest setup file for `npm run test:unit` (pure tests: no moto, no Python, no network, no CLI bundle). No
 * moto server runs, so an AWS client a unit test created by mistake is sent to a closed loopback port and fails
 * at once instead of reaching real AWS; the handlers stay quiet as in the full suite.
 */
import { tmpdir } from "node:os";
import { join } from "node:path";
import { quietHandlers } from "./quiet.ts";

for (const name of Object.keys(process.env)) {
  if (name.startsWith("AWS_ENDPOINT_URL_")) delete process.env[name];
}
delete process.env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS;
process.env.AWS_ENDPOINT_URL = "http://127.0.0.1:9";
process.env.AWS_REGION = "eu-west-1";
process.env.AWS_ACCESS_KEY_ID = "testing";
process.env.AWS_SECRET_ACCESS_KEY = "testing";
delete process.env.AWS_SESSION_TOKEN;
delete process.env.AWS_PROFILE;
const noSharedConfig = join(tmpdir(), "layer-sync-tests-no-aws-config");
process.env.AWS_CONFIG_FILE = noSharedConfig;
process.env.AWS_SHARED_CREDENTIALS_FILE = noSharedConfig;
process.env.AWS_EC2_METADATA_DISABLED = "true";
// test/support/zip.ts reads zips with yauzl, its record checks and Info-ZIP, but not Python's zipfile here
process.env.LAYER_SYNC_TEST_NO_PYTHON = "1";
quietHandlers();
