/**
 * The fused kernel's loop-iteration estimate is an upper bound: Mesa's CPU adapters stop an
 * invocation silently after 65,535 loop iterations, so an undercount would truncate loops. The
 * kernel's `COUNT_LOOPS` override counts every loop body each thread runs, per phase; for several
 * shapes (workgroup sizes, both statistics paths, merged rows or not, decoder normalisation) every
 * thread's count stays within the estimate of src/sae/fused_layout.ts.
 */
import assert from "node:assert/strict";
import { gpuTest } from "./_gpu.ts";
import { fusedFixture, runFused } from "./_fused.ts";
import {
  FUSED_LOOP_PHASES,
  fusedLoopIterationsByPhase,
  fusedLoopIterationsPerStep,
  readFusedLoopCounts,
} from "../src/sae/fused_step.ts";
import { TreeFeatureGenerator } from "../src/toy/tree.ts";
import { PUBLISHED_OPTIMIZER } from "../src/sae/train_settings.ts";

/** The notebook-like tree: fixed magnitudes (identical rows merged). */
const fixed = new TreeFeatureGenerator({
  activeProb: 1,
  isReadOut: false,
  children: [{
    activeProb: 0.25,
    children: [{ activeProb: 0.15 }, { activeProb: 0.15 }, { activeProb: 0.55 }],
  }],
});
/** Noisy magnitudes: every row distinct, nothing merged. */
const noisy = new TreeFeatureGenerator({
  activeProb: 1,
  isReadOut: false,
  children: Array.from({ length: 6 }, (_, i) => ({
    activeProb: 0.3 + 0.1 * (i % 3),
    magnitudeStd: 0.2,
  })),
});

const SHAPES = [
  { tree: fixed, batch: 128, workgroupSize: 8, privateStats: true, normalize: false },
  { tree: fixed, batch: 128, workgroupSize: 64, privateStats: false, normalize: true },
  { tree: noisy, batch: 37, workgroupSize: 1, privateStats: true, normalize: true },
  { tree: noisy, batch: 37, workgroupSize: 32, privateStats: false, normalize: false },
  { tree: noisy, batch: 100, workgroupSize: 16, privateStats: false, normalize: true },
];
const STEPS = 2;

gpuTest("every thread's loop iterations stay within the fused estimate, per phase", async (gpu) => {
  for (const s of SHAPES) {
    const dIn = 20;
    const configs = [
      {
        matryoshkaSteps: [1, 4],
        normalizeSaeDecoder: s.normalize,
        scaleSparsityPenaltyByDecoderNorm: !s.normalize,
      },
      { skipOuterLoss: false, matryoshkaSteps: [1, 2, 4], lpNorm: 2 },
    ];
    const { step, saes } = await fusedFixture(gpu, {
      configs,
      tree: s.tree,
      dIn,
      batch: s.batch,
      seed: 3,
      optimizer: PUBLISHED_OPTIMIZER,
      workgroupSize: s.workgroupSize,
      privateStats: s.privateStats,
      countLoops: true,
    });
    await runFused(gpu, step, STEPS);
    const counts = await readFusedLoopCounts(gpu, step);
    const dedup = s.tree === fixed;
    const shape = {
      workgroupSize: s.workgroupSize,
      distinctRows: dedup ? 2 ** s.tree.nFeatures : s.batch,
      privateStats: s.privateStats,
      normalizeDecoder: s.normalize,
      batch: s.batch,
      dIn,
      dSae: 4,
      terms: Math.max(...saes.map((sae) => sae.lossPlan().terms.length)),
      maxFeatures: s.tree.nFeatures,
      maxDepth: 8,
    };
    const estimate = fusedLoopIterationsByPhase(shape);
    const label = `${JSON.stringify({ ...s, tree: dedup ? "fixed" : "noisy" })}`;
    let busiest = 0;
    counts.forEach((thread, tid) => {
      FUSED_LOOP_PHASES.forEach((phase, p) => {
        assert.ok(
          thread[p]! <= STEPS * estimate[phase],
          `${label}: thread ${tid} ran ${thread[p]} ${phase} iterations in ${STEPS} steps, ` +
            `estimate ${STEPS} × ${estimate[phase]}`,
        );
      });
      busiest = Math.max(busiest, thread.reduce((a, b) => a + b, 0));
    });
    // The counter counts: thread 0 runs every phase's loops.
    for (const phase of ["gram", "rows", "stats", "gradient", "adam"] as const) {
      assert.ok(counts[0]![FUSED_LOOP_PHASES.indexOf(phase)]! > 0, `${label}: ${phase} counted`);
    }
    assert.ok(busiest <= STEPS * fusedLoopIterationsPerStep(shape), label);
    console.log(
      `${label}: busiest thread ${busiest} / estimate ${STEPS * fusedLoopIterationsPerStep(shape)}`,
    );
  }
});
