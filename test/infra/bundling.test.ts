import { OutputFormat } from "aws-cdk-lib/aws-lambda-nodejs";
import { describe, expect, it } from "vitest";
import { CREATE_REQUIRE_BANNER, HANDLER_ENTRIES, nodejsBundling } from "../../infra/bundling.ts";

describe("the NodejsFunction bundling used by cdk deploy", () => {
  it("builds minified ESM for node24 with a source map, module entry points first and a createRequire banner", () => {
    expect(nodejsBundling()).toEqual({
      format: OutputFormat.ESM,
      target: "node24",
      minify: true,
      sourceMap: true,
      sourcesContent: false,
      mainFields: ["module", "main"],
      banner: CREATE_REQUIRE_BANNER,
      externalModules: [],
      bundleAwsSDK: true,
    });
    expect(CREATE_REQUIRE_BANNER).toMatch(
      /^import \{ createRequire as \w+ \} from "node:module"; const require = \w+\(import\.meta\.url\);$/,
    );
  });

  it("bundles the two handlers' modules", () => {
    expect(HANDLER_ENTRIES.sync).toMatch(/\/handlers\/sync\.ts$/);
    expect(HANDLER_ENTRIES.publish).toMatch(/\/handlers\/publish\.ts$/);
  });
});
