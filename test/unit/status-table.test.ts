import { describe, expect, it } from "vitest";
import { STATUS_WIDTH, statusTable } from "../../cli/status.ts";
import type { RegionStatus, StatusReport } from "../../lib/publish/status.ts";

const plain = { green: String, yellow: String, red: String, dim: String };
const ORG = "arn:aws:organizations::111111111111:organization/o-abcdefghij";
const OUS = Array.from(
  { length: 6 },
  (_, i) => `arn:aws:organizations::111111111111:ou/o-abcdefghij/ou-ab12-cdefgh${i}`,
);
const PKG = "a-package-with-a-rather-long-name-for-a-layer";

function region(name: string, extra: Partial<RegionStatus>): RegionStatus {
  return {
    region: name,
    version: 12,
    layerVersionArn: `arn:aws:lambda:${name}:111111111111:layer:${PKG}:12`,
    parameterMatches: true,
    principals: [ORG, ...OUS],
    shared: true,
    outOfStep: false,
    problems: [],
    consumers: { latest: 1234, older: 56, incompatible: 7 },
    release: {
      pointedVersion: 11,
      canaryVersion: 12,
      smoke: { version: 12, ok: false, error: `ModuleNotFoundError: No module named '${"x".repeat(120)}'`, at: "" },
      rollbackHold: { version: 11, from: 12, at: "2026-12-01T00:00:00Z" },
    },
    ...extra,
  };
}

const words = [
  "layer-sync",
  "publish",
  "--package",
  PKG,
  "--bucket",
  "an-artifact-bucket-name-of-sixty-three-characters-0123456789abc",
  ...OUS.flatMap((ou) => ["--share-ou", ou.slice(-20)]),
  "--regions",
  "us-east-1,eu-west-1,ap-southeast-2,eu-central-1,ca-central-1",
];
const problems = [
  `version 12 failed its smoke test: ModuleNotFoundError: No module named '${"x".repeat(120)}'`,
  `/layer-sync/${PKG}/layer-version-arn names arn:aws:lambda:eu-west-1:111111111111:layer:${PKG}:9`,
  `the RAM share does not hold /layer-sync/${PKG}/layer-version-arn`,
];
const report: StatusReport = {
  consumerAccounts: { read: 1, failed: [] },
  packages: [
    {
      name: PKG,
      artifactKey: `layers/${PKG}/${PKG}-20261201T000000Z.zip`,
      commit: "0123456789abcdef0123456789abcdef01234567",
      outOfStep: true,
      regions: [
        region("us-east-1", {}),
        region("ap-southeast-2", {
          outOfStep: true,
          problems,
          fix: words.join(" "),
          fixCommands: [words],
        }),
      ],
    },
  ],
};

describe("the status table", () => {
  const text = statusTable(report, plain);
  const lines = text.trimEnd().split("\n");

  it("fits every line in 160 columns with the consumer and release columns, cutting long cells with …", () => {
    expect(STATUS_WIDTH).toBe(160);
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(160);
    expect(lines[0]).toMatch(/^ +PACKAGE +REGION +VERSION +PARAMETER +SHARED WITH +COMMIT +CONSUMERS L\/O\/I +RELEASE/);
    const [ok, bad] = lines.slice(1, 3);
    expect(ok).toMatch(/^✓ /);
    expect(ok).toContain("1234/56/7");
    expect(ok).toContain("…");
    expect(bad).toMatch(/^✗ .*ap-southeast-2 .*version 12 failed.*…$/);
  });

  it("lists each out-of-step Region's full problems and its fix command below the table", () => {
    const below = lines.slice(lines.indexOf("") + 1).join("\n");
    expect(below).toMatch(new RegExp(`^${PKG} in ap-southeast-2 is out of step:\n {2}- version 12 failed`));
    // every problem in full, once its wrapped lines are joined back
    const joined = below.replace(/\n +/g, " ");
    for (const p of problems) expect(joined).toContain(p);
    expect(below).toMatch(/\n {2}→ run: layer-sync publish --package /);
    // the command lines, continuations joined, are the command itself
    const run = below.slice(below.indexOf("→ run: ") + "→ run: ".length).replace(/ \\\n +/g, " ");
    expect(run).toBe(words.join(" "));
  });

  it("marks a Region in step without any SHARE_* setting ○ with its note, and explains the mark below", () => {
    const unshared: StatusReport = {
      packages: [
        {
          name: "p",
          artifactKey: "layers/p/p.zip",
          commit: null,
          outOfStep: false,
          regions: [
            {
              ...region("eu-west-1", { principals: [], shared: false }),
              notes: ["not shared: no SHARE_* setting in force"],
            },
          ],
        },
      ],
    };
    const out = statusTable(unshared, plain).trimEnd().split("\n");
    expect(out[1]).toMatch(/^○ +p +eu-west-1 .*not shared: no SHARE_\* setting in force$/);
    expect(out.at(-1)).toMatch(/^○ in step, but sharing was not checked: no SHARE_\* setting in force/);
    expect(out.some((l) => l.startsWith("✓"))).toBe(false);
  });
});
