/** Build the adapter and HTTP client for the configured provider. */
import type { SourceConfig } from "../../common/config.ts";
import { registerSecret } from "../../common/redact.ts";
import { HttpClient, type HttpClientOptions } from "../http/client.ts";
import { BitbucketSource, bitbucketHttpOptions } from "./bitbucket.ts";
import { authorizationFor, USER_AGENT } from "./common.ts";
import { GitHubSource, githubHttpOptions } from "./github.ts";
import type { RepositorySource } from "./types.ts";

export interface SourceBundle {
  source: RepositorySource;
  http: HttpClient;
}

export function createSource(
  config: SourceConfig,
  token: string | undefined,
  overrides: Partial<HttpClientOptions> = {},
): SourceBundle {
  registerSecret(token);
  const authorization = authorizationFor(token);
  registerSecret(authorization);
  const apiOrigin = new URL(config.apiUrl).origin;
  const common = {
    authorization,
    userAgent: USER_AGENT,
    timeoutMs: config.timeoutMs,
    maxRetries: config.maxRetries,
    rateLimitMaxWaitMs: config.rateLimitMaxWaitMs,
    concurrency: config.concurrency,
  };
  if (config.provider === "github") {
    const http = new HttpClient({ ...common, ...githubHttpOptions, authOrigins: [apiOrigin], ...overrides });
    return { http, source: new GitHubSource({ ...config, token, http }) };
  }
  const http = new HttpClient({
    ...common,
    ...bitbucketHttpOptions,
    authOrigins: [apiOrigin, new URL(config.webUrl).origin],
    ...overrides,
  });
  return { http, source: new BitbucketSource({ ...config, token, http }) };
}
