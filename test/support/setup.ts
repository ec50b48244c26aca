/**
 * Vitest setup file (runs in every test worker before each test file): points every AWS SDK client at the
 * run's moto server through the SDK's standard configuration, so application code needs no test hooks.
 *
 * Only what the tests need is set. Checksums are deliberately left at the SDK defaults
 * (no AWS_REQUEST_CHECKSUM_CALCULATION): production uploads send checksums and moto must accept them.
 */
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inject } from "vitest";
import { quietHandlers } from "./quiet.ts";

const endpoint = inject("motoEndpoint");

// Service-specific endpoint variables (AWS_ENDPOINT_URL_S3, …) would win over AWS_ENDPOINT_URL, and
// AWS_IGNORE_CONFIGURED_ENDPOINT_URLS would disable it: a developer's shell must not send tests to real AWS.
for (const name of Object.keys(process.env)) {
  if (name.startsWith("AWS_ENDPOINT_URL_")) delete process.env[name];
}
delete process.env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS;
process.env.AWS_ENDPOINT_URL = endpoint;

process.env.AWS_REGION = "eu-west-1";
process.env.AWS_ACCESS_KEY_ID = "testing";
process.env.AWS_SECRET_ACCESS_KEY = "testing";
delete process.env.AWS_SESSION_TOKEN;
// The JS SDK skips environment credentials when a profile is named, and the developer's ~/.aws files could
// carry other settings (endpoints, checksum modes, retries); point both at a file that does not exist.
delete process.env.AWS_PROFILE;
const noSharedConfig = join(tmpdir(), "layer-sync-tests-no-aws-config");
process.env.AWS_CONFIG_FILE = noSharedConfig;
process.env.AWS_SHARED_CREDENTIALS_FILE = noSharedConfig;
process.env.AWS_EC2_METADATA_DISABLED = "true";

quietHandlers();
