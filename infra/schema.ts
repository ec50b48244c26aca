/**
 * The stack's view of the settings schema (lib/common/settings.ts): every setting whose entry has `deploy`
 * becomes a typed stack prop (deploy mode), an environment variable of the functions that read it, and a
 * CloudFormation Parameter (template mode). Nothing here names a setting: adding one to the schema with
 * `deploy` is the only edit (docs/development.md, "Adding a setting").
 *
 * Every function takes the table as a parameter (default the schema) so that a test can add a setting and
 * see it come out everywhere.
 */
import type { CfnParameterProps } from "aws-cdk-lib";
import type { z } from "zod";
import { type DeploySpec, SETTINGS, type SettingKey, type SettingSpec } from "../lib/common/settings.ts";

/** A table of settings, as `SETTINGS` is. */
export type SettingsTable = Readonly<Record<string, SettingSpec>>;

/** One setting the stack passes to the functions. */
export interface StackSetting {
  readonly key: string;
  /** The environment variable. */
  readonly env: string;
  /** The stack prop and CDK context key (absent in the props when `byStack`). */
  readonly prop: string;
  /** The CloudFormation Parameter of template mode. */
  readonly parameter: string;
  readonly deploy: DeploySpec;
  readonly spec: SettingSpec;
}

/** Every setting the stack passes to the functions, in table order. */
export function stackSettings(table: SettingsTable = SETTINGS): StackSetting[] {
  return Object.entries(table).flatMap(([key, spec]) =>
    spec.deploy === undefined
      ? []
      : [
          {
            key,
            env: spec.env,
            prop: spec.deploy.prop,
            parameter: parameterName(spec.deploy.prop),
            deploy: spec.deploy,
            spec,
          },
        ],
  );
}

/** The settings that are stack props (the ones the stack does not compute itself). */
export function propSettings(table: SettingsTable = SETTINGS): StackSetting[] {
  return stackSettings(table).filter((s) => s.deploy.byStack !== true);
}

/** The props-to-variable map: each stack prop and the environment variable it sets. */
export function variableOfProp(table: SettingsTable = SETTINGS): Readonly<Record<string, string>> {
  return Object.fromEntries(propSettings(table).map((s) => [s.prop, s.env]));
}

/** The template parameter of a prop: `sourceProvider` → `SourceProvider`. */
export function parameterName(prop: string): string {
  return `${prop.charAt(0).toUpperCase()}${prop.slice(1)}`;
}

/** The values a choice setting allows (`choice()` in lib/common/setting-values.ts carries them), or undefined. */
export function choicesOf(spec: SettingSpec): readonly string[] | undefined {
  const schema: object = spec.schema;
  if (!("choices" in schema) || !Array.isArray(schema.choices)) return undefined;
  return schema.choices.filter((c): c is string => typeof c === "string");
}

/** Whether the setting is a whole number (`integer()` carries its range), so its prop is a number. */
export function isWholeNumber(spec: SettingSpec): boolean {
  const schema: object = spec.schema;
  return "range" in schema;
}

/** A setting's CloudFormation Parameter. */
export function parameterProps(s: StackSetting): CfnParameterProps {
  const { deploy, spec } = s;
  const choices = choicesOf(spec);
  return {
    type: "String",
    description: `${s.env}: ${deploy.description ?? spec.help}`,
    ...(spec.required === "always" ? {} : { default: deploy.default ?? "" }),
    ...(choices === undefined ? {} : { allowedValues: [...choices] }),
    ...(deploy.pattern === undefined ? {} : { allowedPattern: deploy.pattern }),
    ...(deploy.minLength === undefined ? {} : { minLength: deploy.minLength }),
    ...(deploy.maxLength === undefined ? {} : { maxLength: deploy.maxLength }),
    ...(deploy.secret ? { noEcho: true } : {}),
  };
}

/** A prop's value as the text of its environment variable (a list comma-joined; empty means unset). */
export function variableText(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (Array.isArray(value)) return value.length ? value.join(",") : undefined;
  return String(value);
}

// ------------------------------------------------------------------------------------- the typed props

type Table = typeof SETTINGS;
/** The settings that are stack props. */
type PropKey = {
  [K in SettingKey]: Table[K] extends { deploy: { byStack: true } }
    ? never
    : Table[K] extends { deploy: { prop: string } }
      ? K
      : never;
}[SettingKey];
type PropName<K extends SettingKey> = Table[K] extends { deploy: { prop: infer P extends string } } ? P : never;
type Required<K extends SettingKey> = Table[K] extends { required: "always" } ? true : false;
/** The schema's typed value, lists read-only. */
type PropValue<K extends SettingKey> =
  z.output<Table[K]["schema"]> extends (infer E)[] ? readonly E[] : z.output<Table[K]["schema"]>;

/** The typed stack props of the settings, derived from the schema: one per setting with `deploy`. */
export type StackSettingsProps = {
  readonly [K in PropKey as Required<K> extends true ? PropName<K> : never]: PropValue<K>;
} & {
  readonly [K in PropKey as Required<K> extends true ? never : PropName<K>]?: PropValue<K>;
};

/** The name of a settings prop. */
export type StackSettingProp = keyof StackSettingsProps;
