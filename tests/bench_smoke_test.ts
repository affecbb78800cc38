/**
 * Keeps `deno task bench` from rotting: a tiny run of the whole harness (every column, the
 * tables, the targets), and the PyTorch baseline's training steps against the float64 CPU
 * reference (where Debian's python3-torch is installed). Nothing here asserts on speed.
 */
import assert from "node:assert/strict";
import { assertClose, gpuTest } from "./_gpu.ts";
import { runBench } from "../src/bench/run_bench.ts";
import { timeSweep } from "../src/bench/end_to_end_bench.ts";
import type { BenchShape } from "../src/bench/shapes.ts";
import { formatMarkdown, formatText } from "../src/bench/report.ts";
import type { Cell } from "../src/bench/timing.ts";
import { defaultPython, TorchRunner, torchSae, torchWorld } from "../src/bench/torch_runner.ts";
import { notebookTree } from "../src/toy/notebook_trees.ts";
import { TreeFeatureGenerator } from "../src/toy/tree.ts";
import { NOTEBOOK_SAE_CONFIG, type SaeConfig } from "../src/sae/config.ts";
import { MatryoshkaSAE } from "../src/sae/sae.ts";
import { initSaeRandom } from "../src/sae/init.ts";
import { ToyModel } from "../src/toy/toy_model.ts";
import { embedCpu, sampleBatchCpu } from "../src/toy/cpu_sampler.ts";
import { PUBLISHED_OPTIMIZER } from "../src/sae/train_settings.ts";
import { newAdamState, referenceTrainStep } from "../src/reference/optimizer_reference.ts";

const SCRIPT = new URL("../bench/torch_sae.py", import.meta.url).pathname;
const PYTHON = defaultPython();

function torchInstalled(): boolean {
  try {
    return new Deno.Command(PYTHON, {
      args: ["-c", "import torch"],
      stdout: "null",
      stderr: "null",
    })
      .outputSync().success;
  } catch {
    return false;
  }
}
const HAS_TORCH = torchInstalled();

const TINY: BenchShape = {
  id: "notebook",
  title: "tiny: d_in 8, d_sae 4, prefixes [1, 4], batch 16",
  dIn: 8,
  dSae: 4,
  prefixes: [1, 4],
  batch: 16,
  tree: () => notebookTree(),
  toyModelSeed: 0,
};

function assertCell(cell: Cell, label: string): void {
  if (cell.status === "ok") {
    assert.ok(cell.rate > 0 && Number.isFinite(cell.rate), `${label}: rate ${cell.rate}`);
    assert.ok(cell.reps.length >= 1, `${label}: no repetitions`);
  } else {
    assert.ok(cell.reason.length > 0, `${label}: n/a without a reason`);
  }
}

gpuTest(
  "a tiny bench run fills every cell, formats the tables and evaluates the targets",
  async (gpu) => {
    const results = await runBench(gpu, {
      shapes: [TINY],
      models: [1, 2],
      repetitions: 1,
      repSeconds: 0.02,
      maxStepSeconds: 4,
      torch: HAS_TORCH
        ? { python: PYTHON, script: SCRIPT, threads: 1 }
        : { skipped: "python3-torch not installed" },
      balanced: { skipped: "smoke test" },
      evaluationModels: [2],
      log: () => {},
    });
    assert.equal(results.shapes.length, 1);
    const [evaluation] = results.evaluation!;
    assert.equal(evaluation!.models, 2);
    assert.ok(evaluation!.seconds > 0 && evaluation!.msPerSae === evaluation!.seconds / 2 * 1e3);
    assert.ok(results.targets.some((t) => t.target.startsWith("evaluate() of 2 SAEs")));
    const rows = results.shapes[0]!.rows;
    assert.deepEqual(rows.map((r) => r.models), [1, 2]);
    for (const row of rows) {
      // This test runs only where an adapter exists, so the GPU cell must be a measured rate.
      assert.equal(row.gpu.status, "ok", `GPU M=${row.models}: ${JSON.stringify(row.gpu)}`);
      assertCell(row.gpu, `GPU M=${row.models}`);
      assert.equal(row.cpu.status, "ok", `CPU reference M=${row.models} must always run`);
      assertCell(row.cpu, `CPU M=${row.models}`);
      assertCell(row.torchLoop, `torch loop M=${row.models}`);
      assertCell(row.torchBatched, `torch batched M=${row.models}`);
      if (HAS_TORCH) {
        assert.equal(row.torchLoop.status, "ok", JSON.stringify(row.torchLoop));
        assert.equal(row.torchBatched.status, "ok", JSON.stringify(row.torchBatched));
      }
    }
    assert.ok(results.targets.length >= 5);
    assert.ok(results.targets.every((t) => ["met", "NOT met", "n/a", "info"].includes(t.status)));
    const text = formatText(results);
    assert.match(text, /GPU SAE-steps\/s/);
    assert.match(text, /tiny: d_in 8/);
    assert.match(formatMarkdown(results), /^\| M \| GPU SAE-steps\/s \|/m);
    assert.deepEqual(JSON.parse(JSON.stringify(results)).shapes[0].rows.length, 2);
  },
);

gpuTest("a sweep is timed end to end with its printed training and evaluation split", async () => {
  const script = new URL("../experiments/sweep.ts", import.meta.url).pathname;
  const args = ["--child-probs", "0.15,0.15,0.15", "--betas", "0,inf", "--seeds", "1"];
  const sweep = { label: "tiny", args: [...args, "--steps", "20", "--refine", "0"], steps: 20 };
  const timing = await timeSweep(script, sweep, { repetitions: 2 });
  assert.deepEqual([timing.saes, timing.saeSteps], [2, 40]);
  assert.equal(timing.runs.length, 2); // short runs are repeated; the median (here the mean) kept
  assert.ok(Math.abs(timing.seconds - (timing.runs[0]! + timing.runs[1]!) / 2) < 1e-9);
  assert.ok(timing.training > 0 && timing.evaluation >= 0);
  // The split is the printed one of the run nearest the median: within that run's own time (with
  // two runs both are equally near, so the median can be below the run the split came from).
  assert.ok(timing.training + timing.evaluation < Math.max(...timing.runs));
  await assert.rejects(
    () => timeSweep(script, { ...sweep, args: ["--betas", "-1"] }),
    /deno task sweep failed \(exit 2\)/,
  );
});

/** Runs `steps` training steps in float64 with the CPU reference; losses and final params. */
function referenceSteps(
  config: SaeConfig,
  params: Float32Array,
  xs: Float32Array[],
  batch: number,
  lr: number,
): { losses: number[]; params: Float64Array } {
  const p = Float64Array.from(params);
  const state = newAdamState(p.length);
  const losses = xs.map((x) =>
    referenceTrainStep(p, state, config, { ...PUBLISHED_OPTIMIZER, lr }, x, batch).loss
  );
  return { losses, params: p };
}

Deno.test({
  name: "torch_sae.py's training steps (one SAE, and two batched) equal the CPU reference's",
  ignore: !HAS_TORCH,
  fn: async () => {
    const dIn = 8, dSae = 4, batch = 32, steps = 4, lr = 1e-2;
    const tree = notebookTree();
    const model = new ToyModel({ nFeatures: tree.nFeatures, hiddenDim: dIn, seed: 3 });
    // Inputs scaled ×10 so that the gradient norm exceeds 1 and clipping takes part.
    const xs = Array.from(
      { length: steps },
      (_, step) =>
        embedCpu(sampleBatchCpu(tree, { seed: 5, step, batchSize: batch }), model.embedding, {
          groups: 1,
          batch,
          nFeatures: tree.nFeatures,
          dIn,
        }).map((v) => 10 * v),
    );
    const runner = await TorchRunner.start(PYTHON, SCRIPT, 1);
    try {
      const configs: Record<string, Partial<SaeConfig>> = {
        "balanced β = 0.25": { matryoshkaInnerLossMultipliers: [0.25, 1] },
        "detached (delta loss)": { useDeltaLoss: true },
      };
      for (const [label, overrides] of Object.entries(configs)) {
        const sae = new MatryoshkaSAE({ ...NOTEBOOK_SAE_CONFIG, dIn, dSae, ...overrides });
        initSaeRandom(sae, 7);
        const expected = referenceSteps(sae.config, sae.params, xs, batch, lr);
        for (const variant of ["loop", "batched"]) {
          const got = await runner.request<{ losses: number[][]; params: number[][] }>({
            task: "check",
            variant,
            sae: torchSae(sae.config, { ...PUBLISHED_OPTIMIZER, lr }),
            batch,
            x: xs.flatMap((x) => Array.from(x)),
            params: Array.from(sae.params),
          });
          for (const [m, params] of got.params.entries()) {
            const losses = got.losses.map((l) => l[m] ?? l[0]!);
            assertClose(losses, expected.losses, {
              atol: 1e-6,
              rtol: 1e-5,
              label: `${label}, ${variant} model ${m}: losses`,
            });
            assertClose(params, expected.params, {
              atol: 1e-4,
              rtol: 1e-4,
              label: `${label}, ${variant} model ${m}: parameters after ${steps} steps`,
            });
          }
        }
      }
    } finally {
      await runner.close();
    }
  },
});

Deno.test({
  name: "torch_sae.py's sampler follows the tree: marginals, parent gating, exclusive children",
  ignore: !HAS_TORCH,
  fn: async () => {
    // Features: 0 A (p .5, exclusive children), 1 a1, 2 a2 (weights .2, .6 and .2 for a child
    // that is not read out), 3 B (p .3, magnitude 2), 4 b1 (p .5 given B).
    const tree = new TreeFeatureGenerator({
      activeProb: 1,
      isReadOut: false,
      children: [
        {
          activeProb: 0.5,
          mutuallyExclusiveChildren: true,
          children: [{ activeProb: 0.2 }, { activeProb: 0.6 }, {
            activeProb: 0.2,
            isReadOut: false,
          }],
        },
        { activeProb: 0.3, magnitudeMean: 2, children: [{ activeProb: 0.5 }] },
      ],
    });
    const rows = 20_000;
    const F = tree.nFeatures;
    const runner = await TorchRunner.start(PYTHON, SCRIPT, 1);
    let features: number[];
    try {
      const world = torchWorld(tree, new Float32Array(F), 1);
      ({ features } = await runner.request<{ features: number[] }>({
        task: "sample",
        world,
        batch: rows,
        seed: 1,
      }));
    } finally {
      await runner.close();
    }
    const expected = [0.5, 0.1, 0.3, 0.3, 0.15];
    const counts = new Array<number>(F).fill(0);
    let gatingViolations = 0;
    let bothChildren = 0;
    for (let r = 0; r < rows; r++) {
      const f = features.slice(r * F, (r + 1) * F);
      f.forEach((v, i) => {
        if (v !== 0) counts[i]!++;
        assert.ok(v === 0 || v === (i === 3 ? 2 : 1), `feature ${i} has value ${v}`);
      });
      if ((f[1]! || f[2]!) && !f[0]) gatingViolations++;
      if (f[4]! && !f[3]) gatingViolations++;
      if (f[1]! && f[2]!) bothChildren++;
    }
    assert.equal(gatingViolations, 0, "a child active without its parent");
    assert.equal(bothChildren, 0, "two mutually exclusive children active together");
    // 5 standard errors of a frequency over 20,000 rows.
    const got = counts.map((c) => c / rows);
    const tol = expected.map((p) => 5 * Math.sqrt(p * (1 - p) / rows));
    got.forEach((p, i) =>
      assert.ok(Math.abs(p - expected[i]!) <= tol[i]!, `feature ${i}: ${p} vs ${expected[i]}`)
    );
  },
});
