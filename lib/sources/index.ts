/** Build the adapter and HTTP client for the configured provider. */
import type { SourceConfig } from "../common/config.ts";
import { registerSecret } from "../common/redact.ts";
import { BitbucketSource, bitbucketHttpOptions } from "./bitbucket.ts";
import { authorizationFor, USER_AGENT } from "./common.ts";
import { GitHubSource, githubHttpOptions } from "./github.ts";
import { HttpClient, type HttpClientOptions } from "./http/client.ts";
import type { RepositorySource } from "./types.ts";

export interface SourceBundle {
  source: RepositorySource;
  http: HttpClient;
}

/**
 * Hints for a run that sent no token: an answer that asks for one means the token is missing, not invalid
 * (a private repository answers 401, or 404 to hide that it exists).
 */
function withoutToken(provider: string): Partial<Record<number, string>> {
  const give =
    "no token was given: set SOURCE_TOKEN (CLI) or TOKEN_PARAMETER_NAME (an SSM SecureString holding it) for a private repository";
  return {
    401: `${provider} asks for credentials and ${give}`,
    403: `${provider} refused the anonymous request and ${give}`,
    404: `Check SOURCE_REPOSITORY, SOURCE_REF and the folder paths; ${provider} also answers 404 for a private repository, and ${give}`,
  };
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
    const hints = token ? githubHttpOptions.hints : { ...githubHttpOptions.hints, ...withoutToken("GitHub") };
    const http = new HttpClient({ ...common, ...githubHttpOptions, hints, authOrigins: [apiOrigin], ...overrides });
    return { http, source: new GitHubSource({ ...config, token, http }) };
  }
  const http = new HttpClient({
    ...common,
    ...bitbucketHttpOptions,
    hints: token ? bitbucketHttpOptions.hints : { ...bitbucketHttpOptions.hints, ...withoutToken("Bitbucket") },
    authOrigins: [apiOrigin, new URL(config.webUrl).origin],
    ...overrides,
  });
  return { http, source: new BitbucketSource({ ...config, token, http }) };
}
