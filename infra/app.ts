/**
 * CDK app for `cdk deploy` (run from infra/: `npx cdk deploy -c sourceProvider=… …`, see docs/deployment.md).
 * Settings come from CDK context (keys in settings.ts `CONTEXT_KEYS`); the handlers are bundled by
 * NodejsFunction with esbuild (no Docker). cdk-nag's AwsSolutions pack runs at synth time and stops
 * synthesis on any finding that is not acknowledged with a reason in the stack.
 */
import { App, Validations } from "aws-cdk-lib";
import { AwsSolutionsChecks } from "cdk-nag";
import { configFromContext } from "./settings.ts";
import { LayerSyncStack } from "./stack.ts";

const app = new App();
const config = configFromContext((key) => app.node.tryGetContext(key));
new LayerSyncStack(app, config.stackName, {
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
  settings: config.settings,
  options: config.options,
});
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
