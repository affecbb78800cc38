/**
 * A BatchTopK sweep beside an L1 one, end to end through the library: both train (BatchTopK on
 * the kernel set), `deno task compare`'s runner draws their curves together and tabulates β*, and
 * the sweep and its SAEs carry the architecture. Refusals of the command line name the flag.
 */
import assert from "node:assert/strict";
import { gpuTest } from "./_gpu.ts";
import { childProbsTree } from "../src/sweep/axes.ts";
import { runSweep } from "../src/sweep/run_sweep.ts";
import { parseCompareArgs, runCompare } from "../experiments/compare.ts";
import { UsageError } from "../src/cli/run_main.ts";

gpuTest("an L1 and a BatchTopK sweep are drawn and tabulated side by side", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const common = {
      betas: [0, 0.25, Infinity],
      seeds: 1,
      steps: 40,
      refine: 0,
      evalRows: 2000,
      trees: [childProbsTree([0.15, 0.5])],
      quiet: true,
      log: () => {},
    };
    const l1 = await runSweep({ ...common, out: `${dir}/l1` });
    const btk = await runSweep({ ...common, out: `${dir}/btk`, architecture: "batchtopk", k: 1 });
    assert.equal(l1.rows.length, 3);
    assert.equal(btk.rows.length, 3);
    const json = JSON.parse(await Deno.readTextFile(`${dir}/btk/sweep.json`));
    assert.deepEqual([json.settings.architecture, json.settings.k], ["batchtopk", 1]);
    // The two sweeps trained different SAEs from the same start.
    assert.notDeepEqual(
      btk.rows.map((r) => r.encoderCos),
      l1.rows.map((r) => r.encoderCos),
    );

    const table = await runCompare({
      sweeps: [`${dir}/l1`, `${dir}/btk`],
      out: `${dir}/cmp`,
      figureFormats: ["svg"],
    });
    const name = common.trees[0]!.name;
    assert.match(table, new RegExp(`${name}\\s+L1 λ = 0.03\\s+`));
    assert.match(table, new RegExp(`${name}\\s+BatchTopK k = 1\\s+`));
    const svg = await Deno.readTextFile(`${dir}/cmp/${name}_encoder.svg`);
    assert.ok(svg.includes("L1 λ = 0.03: child 1") && svg.includes("BatchTopK k = 1: child 2"));
    assert.ok(svg.includes('stroke-dasharray="7 4"'), "the second sweep is dashed");
    assert.equal(await Deno.readTextFile(`${dir}/cmp/comparison.txt`), table + "\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task compare refuses fewer than two sweeps and reports a missing one", async () => {
  assert.throws(() => parseCompareArgs(["--sweep", "a"]), (e: Error) => {
    assert.ok(e instanceof UsageError);
    assert.match(e.message, /Cannot parse --sweep: expected two to four sweep folders, got 1/);
    return true;
  });
  const options = parseCompareArgs(["--sweep", "/nonexistent/a", "--sweep", "/nonexistent/b"]);
  assert.ok(options !== "help");
  await assert.rejects(runCompare(options), /Cannot read \/nonexistent\/a\/sweep\.json/);
});
