/**
 * The fused training kernel (shaders/train_fused.wgsl) against the float64 CPU reference: a full
 * optimiser step (sample, embed, forward, loss, backward, clip, Adam) of several models in one
 * dispatch equals `referenceTrainStep` on the same batch.
 */
import assert from "node:assert/strict";
import { assertClose, gpuTest } from "./_gpu.ts";
import { MatryoshkaSAE } from "../src/sae/sae.ts";
import { NOTEBOOK_SAE_CONFIG, type SaeConfig } from "../src/sae/config.ts";
import { initSaeRandom } from "../src/sae/init.ts";
import { trainToySaes } from "../src/sae/train.ts";
import { TreeFeatureGenerator } from "../src/toy/tree.ts";
import { embedCpu, sampleBatchCpu } from "../src/toy/cpu_sampler.ts";
import { newAdamState, referenceTrainStep } from "../src/reference/optimizer_reference.ts";
import { type OptimizerSettings, PUBLISHED_OPTIMIZER } from "../src/sae/train_settings.ts";
import type { Gpu } from "../src/gpu/device.ts";
import { referenceLossAndGrad } from "../src/reference/sae_reference.ts";
import { readF32 } from "../src/gpu/buffers.ts";
import { fusedFixture, randomEmbedding, runFused } from "./_fused.ts";

const tree = new TreeFeatureGenerator({
  activeProb: 1,
  isReadOut: false,
  children: [{
    activeProb: 0.25,
    children: [
      { activeProb: 0.15 },
      { activeProb: 0.15 },
      { activeProb: 0.15 },
      { activeProb: 0.55, isReadOut: false },
    ],
  }],
});

/** The notebook's four SAEs plus switches the kernel must honour. */
const CONFIGS: Partial<SaeConfig>[] = [
  { useDeltaLoss: true },
  { matryoshkaSteps: [4] },
  { matryoshkaInnerLossMultipliers: [0.25, 1] },
  { matryoshkaInnerLossMultipliers: [0.17, 1], scaleSparsityPenaltyByDecoderNorm: false },
  { skipOuterLoss: false, reconstructionLoss: "L2", lpNorm: 2, matryoshkaSteps: [1, 2, 4] },
  {
    includeBdecLoss: true,
    normalizeSaeDecoder: true,
    scaleSparsityPenaltyByDecoderNorm: false,
    applyBDecToInput: false,
  },
];

gpuTest("one fused GPU step equals the CPU reference step for every configuration", async (gpu) => {
  const dIn = 50;
  const batch = 37;
  const embedding = randomEmbedding(tree.nFeatures, dIn, 7);
  const model = { embedding };
  const saes = CONFIGS.map((c, i) => {
    const sae = new MatryoshkaSAE({ ...NOTEBOOK_SAE_CONFIG, ...c });
    initSaeRandom(sae, 100 + i);
    // Biases away from zero so every gradient path is exercised.
    sae.bDec.forEach((_, d) => sae.bDec[d] = 0.01 * Math.sin(d + i));
    sae.bEnc.forEach((_, j) => sae.bEnc[j] = 0.05 * (j - 1.5));
    return sae;
  });
  const before = saes.map((s) => Float64Array.from(s.params));
  const results = await trainToySaes(
    saes.map((sae) => ({ sae, model, tree })),
    { steps: 1, batchSize: batch, seed: 5, quiet: true },
    gpu,
  );
  const features = sampleBatchCpu(tree, { seed: 5, step: 0, batchSize: batch });
  const x = embedCpu(features, embedding, { groups: 1, batch, nFeatures: 4, dIn });
  saes.forEach((sae, i) => {
    const params = before[i]!;
    const state = newAdamState(params.length);
    const ref = referenceTrainStep(params, state, sae.config, PUBLISHED_OPTIMIZER, x, batch);
    const got = results[i]!;
    assert.equal(got.stepsDone, 1);
    assert.equal(got.error, undefined);
    assertClose([got.finalLosses.total], [ref.loss], {
      atol: 1e-6,
      rtol: 1e-4,
      label: `loss ${i}`,
    });
    assertClose([got.finalLosses.gradNorm], [ref.gradNorm], {
      atol: 1e-6,
      rtol: 1e-4,
      label: `grad norm ${i}`,
    });
    // Adam's first step moves each parameter by about lr · sign(g): compare the updates.
    assertClose(sae.params, params, { atol: 2e-6, rtol: 1e-5, label: `params ${i}` });
  });
});

gpuTest(
  "training models together gives the same parameters as training each alone",
  async (gpu) => {
    const dIn = 50;
    const embedding = randomEmbedding(tree.nFeatures, dIn, 3);
    const model = { embedding };
    const make = (i: number) => {
      const sae = new MatryoshkaSAE({ ...NOTEBOOK_SAE_CONFIG, ...CONFIGS[i] });
      initSaeRandom(sae, 10 + i);
      return sae;
    };
    const together = [0, 1, 2].map(make);
    await trainToySaes(together.map((sae) => ({ sae, model, tree })), {
      steps: 40,
      seed: 9,
      quiet: true,
    }, gpu);
    for (let i = 0; i < 3; i++) {
      const alone = make(i);
      await trainToySaes([{ sae: alone, model, tree }], { steps: 40, seed: 9, quiet: true }, gpu);
      assert.deepEqual(alone.params, together[i]!.params, `model ${i}`);
    }
  },
);

gpuTest("a diverging model stops with its step named while the others finish", async (gpu) => {
  const dIn = 50;
  const model = { embedding: randomEmbedding(tree.nFeatures, dIn, 4) };
  const good = new MatryoshkaSAE({ ...NOTEBOOK_SAE_CONFIG });
  initSaeRandom(good, 1);
  const bad = new MatryoshkaSAE({ ...NOTEBOOK_SAE_CONFIG });
  initSaeRandom(bad, 2);
  bad.wDec[3] = NaN;
  const badBefore = Float32Array.from(bad.params);
  const results = await trainToySaes(
    [
      { sae: good, model, tree, name: "good" },
      { sae: bad, model, tree, name: "bad" },
    ],
    { steps: 5, quiet: true },
    gpu,
  );
  assert.equal(results[0]!.error, undefined);
  assert.equal(results[0]!.stepsDone, 5);
  assert.match(String(results[1]!.error?.message), /Model bad diverged at step 1/);
  assert.equal(results[1]!.stepsDone, 0, "the diverged step is not counted as done");
  assert.deepEqual(Array.from(bad.params), Array.from(badBefore));
});

gpuTest(
  "many steps per dispatch equal one step per dispatch (both statistics paths)",
  async (gpu) => {
    const dIn = 50;
    const model = { embedding: randomEmbedding(tree.nFeatures, dIn, 6) };
    for (const privateStats of [true, false]) {
      for (const workgroupSize of [8, 64]) {
        const make = () => {
          const sae = new MatryoshkaSAE({ ...NOTEBOOK_SAE_CONFIG, ...CONFIGS[2] });
          initSaeRandom(sae, 21);
          return sae;
        };
        const many = make();
        const one = make();
        const options = { steps: 60, seed: 2, quiet: true, workgroupSize, privateStats };
        await trainToySaes([{ sae: many, model, tree }], options, gpu);
        await trainToySaes([{ sae: one, model, tree }], { ...options, stepsPerDispatch: 1 }, gpu);
        assert.deepEqual(
          many.params,
          one.params,
          `privateStats ${privateStats}, WG ${workgroupSize}`,
        );
      }
    }
  },
);

gpuTest("the row-statistics paths agree with each other", async (gpu) => {
  const dIn = 50;
  const model = { embedding: randomEmbedding(tree.nFeatures, dIn, 8) };
  const results: MatryoshkaSAE[][] = [];
  for (const privateStats of [true, false]) {
    const saes = [0, 4, 5].map((i) => {
      const sae = new MatryoshkaSAE({ ...NOTEBOOK_SAE_CONFIG, ...CONFIGS[i] });
      initSaeRandom(sae, 30 + i);
      return sae;
    });
    await trainToySaes(saes.map((sae) => ({ sae, model, tree })), {
      steps: 20,
      quiet: true,
      privateStats,
    }, gpu);
    results.push(saes);
  }
  results[0]!.forEach((sae, i) => {
    assertClose(sae.params, results[1]![i]!.params, {
      atol: 1e-5,
      rtol: 1e-4,
      label: `model ${i}`,
    });
  });
});

/** g_j −= (g_j·W_dec[j]) W_dec[j] per decoder row (what normalizeSaeDecoder does to the gradient). */
function removeParallel(grad: Float64Array, params: ArrayLike<number>, sae: MatryoshkaSAE): void {
  const { dIn: D, dSae: S, wDec } = sae.layout;
  for (let j = 0; j < S; j++) {
    let dot = 0;
    for (let d = 0; d < D; d++) dot += grad[wDec + j * D + d]! * params[wDec + j * D + d]!;
    for (let d = 0; d < D; d++) grad[wDec + j * D + d]! -= dot * params[wDec + j * D + d]!;
  }
}

/** Every configuration of {@link CONFIGS} as one fused run on the test tree (d_in 50, seed 5). */
function everyConfig(gpu: Gpu, batch: number, optimizer: OptimizerSettings) {
  return fusedFixture(gpu, { configs: CONFIGS, tree, dIn: 50, batch, seed: 5, optimizer });
}

gpuTest(
  "the fused gradient equals the float64 reference gradient per parameter, every configuration",
  async (gpu) => {
    const batch = 37;
    const { step, saes, inputs } = await everyConfig(gpu, batch, PUBLISHED_OPTIMIZER);
    const before = saes.map((s) => Float64Array.from(s.params));
    await runFused(gpu, step, 1);
    const opt = await readF32(gpu, step.buffers.opt);
    const x = inputs(0);
    saes.forEach((sae, m) => {
      const ref = referenceLossAndGrad(
        before[m]!,
        sae.layout,
        sae.lossPlan(),
        sae.config.applyBDecToInput,
        x,
        batch,
      );
      const grad = ref.grad;
      if (sae.config.normalizeSaeDecoder) removeParallel(grad, before[m]!, sae);
      // float32 sums over 37 rows and 50 inputs: 1e-4 relative, 1e-6 of the largest entry.
      const scale = grad.reduce((a, g) => Math.max(a, Math.abs(g)), 0);
      assert.ok(scale > 1e-3, `model ${m}: the reference gradient is not trivially small`);
      // opt: [M][3][stride] (the gradient first), packed as the parameters are.
      assertClose(step.packing.unpack(opt, 3 * m), grad, {
        atol: 1e-6 * scale,
        rtol: 1e-4,
        label: `gradient of model ${m} (${JSON.stringify(CONFIGS[m])})`,
      });
    });
  },
);

gpuTest(
  "two fused Adam steps with beta1 = 0.9 equal two reference steps (update magnitudes)",
  async (gpu) => {
    const batch = 37;
    // eps comparable to the gradient entries: the update then depends on |g|, not only sign(g).
    const hyper = { lr: 1e-2, beta1: 0.9, beta2: 0.99, eps: 1e-3, clipNorm: 1 };
    const { step, saes, inputs } = await everyConfig(gpu, batch, hyper);
    const params = saes.map((s) => Float64Array.from(s.params));
    await runFused(gpu, step, 2);
    const got = await readF32(gpu, step.buffers.params);
    saes.forEach((sae, m) => {
      const P = sae.layout.size;
      const state = newAdamState(P);
      const start = Float64Array.from(params[m]!);
      for (let t = 0; t < 2; t++) {
        referenceTrainStep(params[m]!, state, sae.config, hyper, inputs(t), batch);
      }
      const moved = params[m]!.map((p, i) => Math.abs(p - start[i]!));
      assert.ok(Math.max(...moved) > 1e-3, `model ${m}: the parameters moved`);
      assertClose(step.packing.unpack(got, m), params[m]!, {
        atol: 2e-6,
        rtol: 1e-5,
        label: `params of model ${m} after two steps`,
      });
    });
  },
);
