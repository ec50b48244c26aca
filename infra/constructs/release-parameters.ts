/**
 * Template mode's parameters of the release settings (smoke test, canary channel), one per environment
 * variable of the functions that publish; the settings schema (lib/common/settings.ts) defines their values.
 */
import type { CfnParameter } from "aws-cdk-lib";

type Text = (
  id: string,
  description: string,
  extra?: { default?: string; allowedValues?: string[]; allowedPattern?: string },
) => CfnParameter;

export function releaseParameters(
  text: Text,
): Record<"SMOKE_TEST" | "CANARY_ACCOUNT_IDS" | "PROMOTE_AFTER_HOURS", CfnParameter> {
  return {
    SMOKE_TEST: text(
      "SmokeTest",
      "SMOKE_TEST: on smoke-tests a new layer version in each Region (with the stack's smoke role) before the ARN parameter names it; off skips it",
      { default: "on", allowedValues: ["on", "off"] },
    ),
    CANARY_ACCOUNT_IDS: text(
      "CanaryAccountIds",
      "CANARY_ACCOUNT_IDS: comma-separated 12-digit account ids of the canary channel (no spaces); empty for none",
      { default: "", allowedPattern: "^$|^[0-9]{12}(,[0-9]{12})*$" },
    ),
    PROMOTE_AFTER_HOURS: text(
      "PromoteAfterHours",
      "PROMOTE_AFTER_HOURS: the daily reconcile promotes a canary version this many hours old (1-8760); empty: only layer-sync promote does",
      { default: "", allowedPattern: "^$|^([1-9][0-9]{0,2}|[1-7][0-9]{3}|8[0-6][0-9]{2}|87[0-5][0-9]|8760)$" },
    ),
  };
}
