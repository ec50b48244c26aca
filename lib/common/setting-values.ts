/**
 * The building blocks of the settings schema (`settings.ts`): patterns and zod schemas for one value.
 * Messages follow the project's style: they come after the setting's name and quote the value.
 */
import { z } from "zod";

export const RUNTIME =
  /^(nodejs\d+\.x|python3\.\d+|java\d+(\.al2(023)?)?|ruby\d+\.\d+|dotnet\d+|dotnetcore\d+\.\d+|provided(\.al2(023)?)?|go1\.x)$/;
export const ORG_ID = /^o-[a-z0-9]{10,32}$/;
export const OU_ID = /^ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}$/;
export const ACCOUNT_ID = /^\d{12}$/;
export const BUCKET = /^(?!xn--)(?!.*\.\.)(?!\d+\.\d+\.\d+\.\d+$)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
export const PARAMETER_PATH = /^(\/[A-Za-z0-9_.-]+)+$/;
export const PARAMETER_NAME = /^(arn:aws[a-z-]*:ssm:.+:parameter\/)?\/?[A-Za-z0-9_.\-/]{1,1011}$/;
export const PIPELINE = /^[A-Za-z0-9.@_-]{1,100}$/;
export const EVENT_BUS = /^(arn:aws[a-z-]*:events:[a-z0-9-]+:\d{12}:event-bus\/)?[/.\-_A-Za-z0-9]{1,256}$/;
/** A Region name such as eu-west-1, us-gov-west-1 or ap-southeast-2. */
export const REGION = /^[a-z]{2}(-[a-z]+)+-\d{1,2}$/;
export const REPOSITORY = /^([A-Za-z0-9._-]+|\{[0-9a-fA-F-]{36}\})\/([A-Za-z0-9._-]+|\{[0-9a-fA-F-]{36}\})$/;
/** An IAM role name, and a role ARN (path allowed). */
export const ROLE_NAME = /^[\w+=,.@-]{1,64}$/;
export const ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/([\w+=,.@-]+\/)*[\w+=,.@-]{1,64}$/;
/** An AWS Config configuration aggregator name. */
export const CONFIG_AGGREGATOR = /^[\w-]{1,256}$/;
export const LAYER_PREFIX = /^[A-Za-z0-9_-]{1,139}$/;
/** A CodeBuild project name. */
export const CODEBUILD_PROJECT = /^[A-Za-z0-9][A-Za-z0-9_-]{1,254}$/;
/** A build source/output key prefix: segments ending in "/", at most 256 characters. */
export const BUILD_PREFIX = /^(?=.{1,256}$)([A-Za-z0-9!_.*'()-]+\/)+$/;

/** A single value that must match `pattern`; the message quotes it. */
export function matching(pattern: RegExp, message: string) {
  return z.string().regex(pattern, { error: (issue) => `${message} (got "${String(issue.input)}")` });
}

/** One of `values`; the schema carries them as `choices` (infra's AllowedValues and context checks read them). */
export function choice<const T extends string>(values: readonly T[]) {
  const words = values.map((v) => `"${v}"`);
  const said = `${words.slice(0, -1).join(", ")} or ${words.at(-1)}`;
  const schema = z.string().transform((v, ctx): T => {
    if ((values as readonly string[]).includes(v)) return v as T;
    ctx.addIssue({ code: "custom", message: `must be ${said} (got "${v}")` });
    return z.NEVER;
  });
  return Object.assign(schema, { choices: values });
}

/** A whole number in [min, max]; the schema carries its `range` (infra reads a number prop from it). */
export function integer(min: number, max: number) {
  const schema = z.string().transform((v, ctx) => {
    if (/^\d+$/.test(v) && Number(v) >= min && Number(v) <= max) return Number(v);
    ctx.addIssue({ code: "custom", message: `must be a whole number from ${min} to ${max} (got "${v}")` });
    return z.NEVER;
  });
  return Object.assign(schema, { range: { min, max } as const });
}

/** A URL setting's value for a message, without anything that could be credentials (`scheme://…@`). */
export function withoutCredentials(value: string): string {
  return value.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)[\s\S]*@/, "$1");
}

/** An http(s) URL without credentials, query or fragment; `strip` removes trailing slashes. */
export function httpUrl(credentialHint: string, strip: boolean) {
  return z.string().transform((v, ctx) => {
    let u: URL | undefined;
    try {
      u = new URL(v);
    } catch {}
    if (!u || (u.protocol !== "https:" && u.protocol !== "http:")) {
      ctx.addIssue({ code: "custom", message: `must be an http(s) URL (got "${withoutCredentials(v)}")` });
      return z.NEVER;
    }
    if (u.username || u.password || u.search || u.hash) {
      ctx.addIssue({ code: "custom", message: `must not carry credentials, a query or a fragment; ${credentialHint}` });
      return z.NEVER;
    }
    return strip ? v.replace(/\/+$/, "") : v;
  });
}

/** A list whose every item matches `pattern`, without duplicates. */
export function listOf(pattern: RegExp, what: string, max?: { count: number; message: (n: number) => string }) {
  return z.array(z.string()).transform((values, ctx) => {
    const bad = values.filter((v) => !pattern.test(v));
    if (bad.length)
      ctx.addIssue({ code: "custom", message: `has invalid ${what}: ${bad.map((b) => `"${b}"`).join(", ")}` });
    const dupes = values.filter((v, i) => values.indexOf(v) !== i);
    if (dupes.length)
      ctx.addIssue({ code: "custom", message: `lists ${[...new Set(dupes)].join(", ")} more than once` });
    const good = [...new Set(values.filter((v) => pattern.test(v)))];
    if (max && good.length > max.count) ctx.addIssue({ code: "custom", message: max.message(good.length) });
    return good;
  });
}

export const ssmName = matching(PARAMETER_NAME, "is not a valid SSM parameter name");

/** `REGION=BUCKET` entries: one bucket per Region, one Region per bucket. */
export const regionBuckets = z.array(z.string()).transform((entries, ctx) => {
  const buckets: Record<string, string> = {};
  const regionOf = new Map<string, string>();
  const problem = (message: string) => ctx.addIssue({ code: "custom", message });
  for (const entry of entries) {
    const m = /^([^=\s]+)\s*=\s*([^=\s]+)$/.exec(entry);
    const [, region, bucket] = m ?? [];
    if (region === undefined || bucket === undefined) {
      problem(`has "${entry}", which is not REGION=BUCKET (e.g. eu-west-1=my-layers-eu-west-1)`);
    } else if (!REGION.test(region)) {
      problem(`has "${entry}", whose Region "${region}" is not a Region name like eu-west-1`);
    } else if (!BUCKET.test(bucket)) {
      problem(`has "${entry}", whose bucket "${bucket}" is not a valid S3 bucket name`);
    } else if (buckets[region] !== undefined) {
      problem(`maps ${region} more than once; give one bucket per Region`);
    } else if (regionOf.has(bucket)) {
      problem(`maps both ${regionOf.get(bucket)} and ${region} to bucket ${bucket}; a bucket is in one Region`);
    } else {
      buckets[region] = bucket;
      regionOf.set(bucket, region);
    }
  }
  return buckets;
});

/** A branch, tag or commit name as git allows it. */
export const gitRef = z.string().superRefine((ref, ctx) => {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  if (/[\s\x00-\x1f\x7f~^:?*[\\]/.test(ref) || ref.includes("..") || ref.length > 255) {
    ctx.addIssue({ code: "custom", message: `is not a valid branch, tag or commit name (got "${ref}")` });
  }
});

/** ARTIFACT_PREFIX: empty or ending with "/", never starting with one. */
export const keyPrefix = z.string().superRefine((v, ctx) => {
  if (v.startsWith("/") || (v !== "" && !v.endsWith("/"))) {
    ctx.addIssue({ code: "custom", message: `must be empty or end with "/" and not start with "/" (got "${v}")` });
  } else if (v.length > 512 || /[\\\0]/.test(v)) {
    ctx.addIssue({ code: "custom", message: "must be at most 512 characters without backslashes or NUL bytes" });
  }
});

/** PARAMETER_PREFIX: an SSM path outside /aws and /ssm, trailing slashes removed. */
export const parameterPath = z.string().transform((raw, ctx) => {
  const v = raw.replace(/\/+$/, "");
  if (!PARAMETER_PATH.test(v) || /^\/(aws|ssm)/i.test(v)) {
    const message = `must be an SSM path such as /layer-sync: a leading "/", letters, digits, "_.-", not starting with /aws or /ssm (got "${raw}")`;
    ctx.addIssue({ code: "custom", message });
  } else if (v.split("/").length > 13) {
    ctx.addIssue({ code: "custom", message: "is too deep: SSM allows 15 levels and layer-sync adds two" });
  }
  return v;
});

/** LAYER_LICENSE: Lambda's LicenseInfo limit. */
export const licenseInfo = z.string().refine((v) => v.length <= 512, {
  error: (i) => `is ${String(i.input).length} characters; Lambda allows at most 512`,
});

/** SHARE_ACCOUNT_IDS: account ids, and never the public "*". */
export const accountIds = z
  .array(z.string())
  .superRefine((values, ctx) => {
    if (!values.includes("*")) return;
    const message =
      'contains "*", which would make every layer version public; use SHARE_ORGANIZATION_ID to share with the organization';
    ctx.addIssue({ code: "custom", message });
  })
  .pipe(listOf(ACCOUNT_ID, "12-digit account ids"));
