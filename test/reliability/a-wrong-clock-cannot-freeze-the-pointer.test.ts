import { describe, expect, it } from "vitest";
import { keyTime } from "../../lib/artifacts/pointer.ts";
import { branch, minute, onlyPackage, pointerOf, runCore, touch, useSources } from "./harness.ts";
import { watchSecrets } from "./secrets.ts";

watchSecrets();

const sources = useSources({ bucket: "rel-clock" });
const { ssm } = sources;

describe("a run on a machine whose clock is 3 years ahead", () => {
  it("does not let later correct runs exit 0 with the pointer left on the old commit's artifact", async () => {
    const scope = sources.scope();
    const ref = branch(sources.repo, "clock");
    const ahead = new Date(minute(0).getTime() + 3 * 365 * 86_400_000);
    const wrong = await runCore(sources, {
      provider: "github",
      paths: ["layers/tools"],
      ref,
      aws: scope,
      clock: ahead,
    });
    const futureKey = onlyPackage(wrong).key as string;
    expect(await pointerOf(ssm, scope.prefix, "tools")).toBe(futureKey);

    touch(sources.repo, ref, "layers/tools");
    const right = await runCore(sources, {
      provider: "github",
      paths: ["layers/tools"],
      ref,
      aws: scope,
      clock: minute(5),
    });
    const p = onlyPackage(right);
    // it fails (the CLI exits 1), naming the future key and what to do
    expect(p.error).toContain(futureKey);
    expect(p.error).toMatch(/after this run's clock .*Fix that machine's clock/);
    expect(p.error?.length).toBeLessThan(1000);
    expect(await pointerOf(ssm, scope.prefix, "tools")).toBe(futureKey);
  });

  it("reads the time a key was made from its name", () => {
    expect(keyTime("a/tools/tools-20261121T100500Z-abcdef0.zip")).toBe(Date.UTC(2026, 10, 21, 10, 5, 0));
    expect(keyTime("a/tools/tools.zip")).toBeUndefined();
  });
});
