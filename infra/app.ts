/**
 * CDK app for `cdk deploy` (run from infra/: `npx cdk deploy --all -c sourceProvider=… …`, see docs/deployment.md).
 * Settings come from CDK context (keys in settings.ts `CONTEXT_KEYS`); the handlers are bundled by
 * NodejsFunction with esbuild (no Docker). cdk-nag's AwsSolutions pack runs at synth time and stops
 * synthesis on any finding that is not acknowledged with a reason in the stack.
 *
 * With `-c publishRegions=eu-west-1,eu-central-1,…` the app also has one regional bucket stack per Region other
 * than CDK_DEFAULT_REGION (see infra/deployment.ts).
 */
import { App, Validations } from "aws-cdk-lib";
import { AwsSolutionsChecks } from "cdk-nag";
import { layerSyncDeployment } from "./deployment.ts";
import { configFromContext } from "./settings.ts";

const app = new App();
const config = configFromContext((key) => app.node.tryGetContext(key));
layerSyncDeployment(app, config, { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION });
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
