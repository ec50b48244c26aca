/**
 * The repository token: read from an SSM SecureString (with decryption) or given directly for local CLI
 * runs. It is registered for redaction the moment it is read, checked for the mistakes that would
 * otherwise surface as confusing 401s, and cached for a short time across warm Lambda invocations.
 */
import { GetParameterCommand, type GetParameterCommandOutput, type SSMClient } from "@aws-sdk/client-ssm";
import { ConfigError, ParameterError } from "./errors.ts";
import { registerSecret } from "./redact.ts";

/** Check a token's shape; returns it or throws `ConfigError` (never quoting the token). */
export function checkToken(token: string, origin: string): string {
  if (token.trim() === "") throw new ConfigError(`${origin} is empty; store the repository token in it`);
  if (/[\r\n\t ]/.test(token)) {
    throw new ConfigError(
      `${origin} contains whitespace or a line break; store the token alone, without spaces or newlines`,
    );
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we reject
  if (/[\x00-\x1f\x7f]/.test(token)) throw new ConfigError(`${origin} contains control characters`);
  if (token.length > 4096) throw new ConfigError(`${origin} is longer than 4096 characters; is it really a token?`);
  return token;
}

function nameOf(error: unknown): string {
  return (error as { name?: string }).name ?? "Error";
}

/** Read and check the token from an SSM SecureString. */
export async function readTokenParameter(ssm: SSMClient, name: string): Promise<string> {
  let res: GetParameterCommandOutput;
  try {
    res = await ssm.send(new GetParameterCommand({ Name: name, WithDecryption: true }));
  } catch (error) {
    const n = nameOf(error);
    if (n === "ParameterNotFound") {
      throw new ConfigError(
        `TOKEN_PARAMETER_NAME: SSM parameter ${name} does not exist; create it with aws ssm put-parameter --type SecureString`,
        { cause: error },
      );
    }
    if (n === "AccessDeniedException") {
      throw new ParameterError(
        `reading the token parameter ${name} was denied; grant ssm:GetParameter and kms:Decrypt on it`,
        {
          cause: error,
        },
      );
    }
    throw new ParameterError(`reading the token parameter ${name} failed (${n})`, { cause: error });
  }
  const value = res.Parameter?.Value ?? "";
  registerSecret(value);
  if (res.Parameter?.Type !== "SecureString") {
    throw new ConfigError(
      `TOKEN_PARAMETER_NAME: ${name} is a ${res.Parameter?.Type ?? "parameter of unknown type"}, not a SecureString; recreate it with --type SecureString so the token is encrypted`,
    );
  }
  return checkToken(value, `token parameter ${name}`);
}

/** A token cache with a short time-to-live, for warm Lambda invocations. */
export class TokenCache {
  private entry: { name: string; value: string; expires: number } | undefined;
  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  async get(ssm: SSMClient, name: string): Promise<string> {
    const e = this.entry;
    if (e && e.name === name && e.expires > this.now()) return e.value;
    const value = await readTokenParameter(ssm, name);
    this.entry = { name, value, expires: this.now() + this.ttlMs };
    return value;
  }

  clear(): void {
    this.entry = undefined;
  }
}
