/**
 * infra/ from the settings schema: every setting marked `deploy` in lib/common/settings.ts is a typed stack
 * prop, an environment variable of the functions that read it and a CloudFormation Parameter, derived, and
 * no enum of the schema is written out again under infra/.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { App } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { beforeAll, describe, expect, expectTypeOf, it } from "vitest";
import { deploySettings } from "../../infra/constructs/deploy-settings.ts";
import {
  choicesOf,
  parameterProps,
  propSettings,
  type SettingsTable,
  stackSettings,
  variableOfProp,
} from "../../infra/schema.ts";
import { CONTEXT_KEYS, configFromContext, type LayerSyncSettings } from "../../infra/settings.ts";
import type { LayerSyncStack } from "../../infra/stack.ts";
import { templateStack } from "../../infra/synth.ts";
import { choice } from "../../lib/common/setting-values.ts";
import { SETTINGS, type SettingSpec, type SettingValue } from "../../lib/common/settings.ts";
import { logicalId } from "./support.ts";

interface Cfn {
  Parameters: Record<string, Record<string, unknown>>;
  Resources: Record<string, { Properties: { Environment?: { Variables: Record<string, unknown> } } }>;
}

let stack: LayerSyncStack;
let cfn: Cfn;

beforeAll(() => {
  stack = templateStack(new App());
  cfn = Template.fromStack(stack).toJSON() as Cfn;
});

function variablesOf(fn: "sync" | "publish" | "build"): Record<string, unknown> {
  const construct =
    fn === "sync"
      ? stack.syncFunction
      : fn === "publish"
        ? stack.publishFunction
        : stack.node.findChild("BuildFunction");
  return cfn.Resources[logicalId(construct)]?.Properties.Environment?.Variables ?? {};
}

/** The CloudFormation rendering of a parameter's props (what CDK writes for them). */
function rendered(props: ReturnType<typeof parameterProps>): Record<string, unknown> {
  const out: Record<string, unknown> = { Type: props.type, Description: props.description };
  if (props.default !== undefined) out.Default = props.default;
  if (props.allowedValues !== undefined) out.AllowedValues = props.allowedValues;
  if (props.allowedPattern !== undefined) out.AllowedPattern = props.allowedPattern;
  if (props.minLength !== undefined) out.MinLength = props.minLength;
  if (props.maxLength !== undefined) out.MaxLength = props.maxLength;
  if (props.noEcho !== undefined) out.NoEcho = props.noEcho;
  return out;
}

const REQUIRED = { sourceProvider: "github", sourceRepository: "acme/layers", sourcePaths: ["layers/a"] } as const;

describe("infra from the settings schema", () => {
  it("gives every setting marked deploy a CloudFormation parameter that each function reading it gets as its variable", () => {
    const settings = stackSettings();
    expect(settings.length).toBeGreaterThan(20);
    for (const s of settings) {
      expect(cfn.Parameters[s.parameter], s.parameter).toEqual(rendered(parameterProps(s)));
      for (const fn of s.spec.functions) expect(variablesOf(fn)[s.env], `${fn} ${s.env}`).toEqual({ Ref: s.parameter });
    }
  });

  it("gives every setting marked deploy, except those the stack computes, a prop, a context key and a variable mapping", () => {
    const map = variableOfProp();
    for (const s of stackSettings()) {
      if (s.deploy.byStack) {
        expect(map[s.prop]).toBeUndefined();
        continue;
      }
      expect(map[s.prop]).toBe(s.env);
      expect(CONTEXT_KEYS).toContain(s.prop);
    }
    expect(Object.values(map)).toContain("SOURCE_PROVIDER");
  });

  it("types each prop as the schema's value: its choices, a number for a whole number, a read-only list", () => {
    expectTypeOf<LayerSyncSettings["sourceProvider"]>().toEqualTypeOf<SettingValue<"provider">>();
    expectTypeOf<LayerSyncSettings["sourceStrategy"]>().toEqualTypeOf<SettingValue<"strategy"> | undefined>();
    expectTypeOf<LayerSyncSettings["retainVersions"]>().toEqualTypeOf<number | undefined>();
    expectTypeOf<LayerSyncSettings["sourcePaths"]>().toEqualTypeOf<readonly string[]>();
  });

  it("passes each prop of deploy mode to its variable, lists comma-joined and numbers as text", () => {
    const resolved = deploySettings(
      { ...REQUIRED, sourceStrategy: "walk", retainVersions: 7, compatibleArchitectures: ["arm64", "x86_64"] },
      {},
      undefined,
      "eu-west-1",
    );
    expect(resolved.env).toMatchObject({
      SOURCE_PROVIDER: "github",
      SOURCE_PATHS: "layers/a",
      SOURCE_STRATEGY: "walk",
      RETAIN_VERSIONS: "7",
      COMPATIBLE_ARCHITECTURES: "arm64,x86_64",
    });
    expect(resolved.env.SOURCE_REF).toBeUndefined();
  });

  it("gives each choice parameter exactly the schema's options as AllowedValues, and no other setting any", () => {
    const choices = stackSettings().filter((s) => choicesOf(s.spec) !== undefined);
    expect(choices.map((s) => s.env)).toEqual(
      expect.arrayContaining(["SOURCE_PROVIDER", "SOURCE_STRATEGY", "SMOKE_TEST"]),
    );
    for (const s of stackSettings()) {
      expect(cfn.Parameters[s.parameter]?.AllowedValues, s.parameter).toEqual(
        choicesOf(s.spec) === undefined ? undefined : [...(choicesOf(s.spec) ?? [])],
      );
    }
  });

  it("writes none of the schema's enum value lists in infra/ (they come from the schema)", () => {
    const files = readdirSync("infra", { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".ts"));
    const lists = Object.values(SETTINGS as SettingsTable)
      .map((spec) => choicesOf(spec))
      .filter((c): c is readonly string[] => c !== undefined);
    expect(lists.length).toBeGreaterThan(2);
    for (const file of files) {
      const source = readFileSync(join("infra", file), "utf8");
      for (const values of lists) {
        const [first, second] = values;
        const restated = new RegExp(`["'\`]${first}["'\`]\\s*[,|]\\s*["'\`]${second}["'\`]`);
        expect(restated.test(source), `${file} restates ${values.join(", ")}`).toBe(false);
      }
    }
  });
});

describe("a setting added to the schema", () => {
  const widget: SettingSpec = {
    env: "WIDGET_MODE",
    flag: "widget-mode",
    list: false,
    value: "fast|slow",
    default: "fast",
    help: "how widgets run",
    commands: ["sync"],
    functions: ["sync"],
    schema: choice(["fast", "slow"] as const),
    deploy: { prop: "widgetMode", default: "fast" },
  };
  const table: SettingsTable = { ...SETTINGS, widget };

  it("is a prop, a variable and a CloudFormation parameter with no other edit", () => {
    expect(propSettings(table).map((s) => s.prop)).toContain("widgetMode");
    expect(variableOfProp(table).widgetMode).toBe("WIDGET_MODE");
    const setting = stackSettings(table).find((s) => s.key === "widget");
    expect(setting?.parameter).toBe("WidgetMode");
    expect(setting && parameterProps(setting)).toEqual({
      type: "String",
      description: "WIDGET_MODE: how widgets run",
      default: "fast",
      allowedValues: ["fast", "slow"],
    });
  });

  it("is left out of infra when it has no deploy entry, and a secret one gets NoEcho", () => {
    const local: SettingsTable = { ...SETTINGS, widget: { ...widget, deploy: undefined } };
    expect(stackSettings(local).map((s) => s.key)).not.toContain("widget");
    const secret = stackSettings({ widget: { ...widget, deploy: { prop: "widgetKey", secret: true } } })[0];
    expect(secret && parameterProps(secret).noEcho).toBe(true);
  });

  it("is read from CDK context by the schema's kind of value", () => {
    const config = configFromContext(
      (key) =>
        ({ ...REQUIRED, sourcePaths: "layers/a,layers/b", retainVersions: "3", smokeTest: "off" })[key as string],
    );
    expect(config.settings).toMatchObject({
      sourcePaths: ["layers/a", "layers/b"],
      retainVersions: 3,
      smokeTest: "off",
    });
  });
});
