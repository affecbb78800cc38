/**
 * The composed kernel-per-op training step (src/sae/kernel_step.ts) against the float64 CPU
 * reference (src/reference/): losses and the gradient of all four tensors for several models with
 * different loss plans in one dispatch, one whole step (clip + Adam + decoder normalisation), and
 * divergence handling.
 */
import assert from "node:assert/strict";
import { assertClose, gpuTest } from "./_gpu.ts";
import { randomFloats } from "./_kernel_data.ts";
import type { Gpu } from "../src/gpu/device.ts";
import { readF32, readU32 } from "../src/gpu/buffers.ts";
import { NOTEBOOK_SAE_CONFIG, resolveSaeConfig, type SaeConfig } from "../src/sae/config.ts";
import { lossPlan } from "../src/sae/loss_plan.ts";
import { paramLayout } from "../src/sae/layout.ts";
import { LOSS_WORDS, lossL1Slot, lossReconSlot, type ModelEntry } from "../src/sae/model_table.ts";
import type { OptimizerSettings } from "../src/sae/train_settings.ts";
import {
  createKernelStep,
  kernelLoopIterations,
  type KernelStep,
  sharedTermRanges,
} from "../src/sae/kernel_step.ts";
import { LOOP_LIMIT } from "../src/kernels/kernel_op.ts";
import { referenceLossAndGrad } from "../src/reference/sae_reference.ts";
import { referenceOptimizerStep } from "../src/reference/optimizer_reference.ts";

const ADAM: OptimizerSettings = { lr: 1e-3, beta1: 0, beta2: 0.999, eps: 1e-8, clipNorm: 1 };

function entryOf(config: SaeConfig, optimizer: OptimizerSettings = ADAM): ModelEntry {
  return {
    plan: lossPlan(config),
    applyBDecToInput: config.applyBDecToInput,
    normalizeSaeDecoder: config.normalizeSaeDecoder,
    optimizer,
    dataGroup: 0,
  };
}

/** Parameters on a scale where about half the latents fire; x uniform in [−1, 1). */
function randomState(seed: number, models: number, batch: number, dIn: number, dSae: number) {
  const layout = paramLayout(dIn, dSae);
  const params = randomFloats(seed, models * layout.size, -0.4, 0.4);
  const x = randomFloats(seed + 1, models * batch * dIn);
  return { layout, params, x };
}

async function run(gpu: Gpu, step: KernelStep, which: "forwardBackward" | "step") {
  const encoder = gpu.device.createCommandEncoder();
  if (which === "step") step.encodeStep(encoder);
  else step.encodeForwardBackward(encoder);
  gpu.device.queue.submit([encoder.finish()]);
  await gpu.device.queue.onSubmittedWorkDone();
}

/** Compares losses and gradients of every model of one forward-backward with the reference. */
async function checkForwardBackward(gpu: Gpu, configs: SaeConfig[], batch: number) {
  const { dIn, dSae } = configs[0]!;
  const M = configs.length;
  const entries = configs.map((c) => entryOf(c));
  const { layout, params, x } = randomState(50 + M + batch, M, batch, dIn, dSae);
  const step = await createKernelStep(gpu, { models: entries, batch, dIn, dSae });
  gpu.device.queue.writeBuffer(step.buffers.params, 0, params);
  gpu.device.queue.writeBuffer(step.buffers.x!, 0, x);
  await run(gpu, step, "forwardBackward");
  const grads = await readF32(gpu, step.buffers.grads);
  const losses = await readF32(gpu, step.buffers.losses);
  const acts = await readF32(gpu, step.intermediates.acts);
  const P = layout.size;
  for (let m = 0; m < M; m++) {
    const want = referenceLossAndGrad(
      params.subarray(m * P, (m + 1) * P),
      layout,
      entries[m]!.plan,
      entries[m]!.applyBDecToInput,
      x.subarray(m * batch * dIn, (m + 1) * batch * dIn),
      batch,
    );
    const label = `model ${m} (B=${batch}, S=${dSae})`;
    const nTerms = want.termRecon.length;
    const record = losses.subarray(m * LOSS_WORDS, (m + 1) * LOSS_WORDS);
    assertClose(
      [record[0]!, ...want.termRecon.map((_, t) => record[lossReconSlot(t)]!)].concat(
        want.termL1.map((_, t) => record[lossL1Slot(t)]!),
      ),
      [want.loss, ...want.termRecon, ...want.termL1],
      { atol: 1e-6, rtol: 1e-5, label: `${label} losses (${nTerms} terms)` },
    );
    assertClose(acts.subarray(m * batch * dSae, (m + 1) * batch * dSae), want.acts, {
      atol: 1e-6,
      rtol: 1e-5,
      label: `${label} acts`,
    });
    const got = grads.subarray(m * P, (m + 1) * P);
    for (
      const [name, offset, size] of [
        ["W_enc", layout.wEnc, dIn * dSae],
        ["b_enc", layout.bEnc, dSae],
        ["W_dec", layout.wDec, dSae * dIn],
        ["b_dec", layout.bDec, dIn],
      ] as const
    ) {
      assertClose(got.subarray(offset, offset + size), want.grad.subarray(offset, offset + size), {
        atol: 2e-6,
        rtol: 1e-4,
        label: `${label} grad ${name}`,
      });
    }
  }
  step.destroy();
}

gpuTest(
  "forward-backward of the direct path (shared term ranges, MSE epilogues) matches the reference",
  async (gpu) => {
    // Multiples of 4: the decodes are blocked products; the two prefix terms are MSE for every
    // model (fused into the products' epilogue), the outer term L2 for one model (recon_loss).
    const base = { dIn: 32, dSae: 16, l1Coefficient: 0.05, matryoshkaSteps: [4, 16] };
    const configs = [
      resolveSaeConfig({ ...base, useDeltaLoss: true, skipOuterLoss: false }),
      resolveSaeConfig({
        ...base,
        useDeltaLoss: true,
        skipOuterLoss: false,
        reconstructionLoss: "L2",
        matryoshkaInnerLossMultipliers: [0.25, 1],
        applyBDecToInput: false,
      }),
      resolveSaeConfig({ ...base, useDeltaLoss: true, skipOuterLoss: false, lpNorm: 2 }),
    ];
    const entries = configs.map((c) => entryOf(c));
    assert.notEqual(sharedTermRanges(entries), null, "the direct path");
    for (const batch of [36, 4]) await checkForwardBackward(gpu, configs, batch);
  },
);

gpuTest(
  "forward-backward of three differently planned models matches the reference",
  async (gpu) => {
    const base = { dIn: 50, dSae: 7, l1Coefficient: 0.05, skipOuterLoss: true };
    const configs = [
      // Delta loss (β = ∞) over three prefixes, the middle one with β = 0; L1 weighted by ‖W_dec‖.
      resolveSaeConfig({
        ...base,
        matryoshkaSteps: [1, 3, 7],
        matryoshkaInnerLossMultipliers: [1, 0, 1],
        useDeltaLoss: true,
        scaleSparsityPenaltyByDecoderNorm: true,
      }),
      // Balanced prefixes plus an L2 outer loss, unweighted L1, b_dec not applied to the input.
      resolveSaeConfig({
        ...base,
        matryoshkaSteps: [2, 5],
        matryoshkaInnerLossMultipliers: [0.25, 1],
        skipOuterLoss: false,
        reconstructionLoss: "L2",
        scaleSparsityPenaltyByDecoderNorm: false,
        applyBDecToInput: false,
      }),
      // p = 2 penalty, b_dec loss, normalised losses, delta loss with γ ≠ 1.
      resolveSaeConfig({
        ...base,
        matryoshkaSteps: [3, 7],
        matryoshkaInnerL1LossMultipliers: [0.5, 2],
        lpNorm: 2,
        useDeltaLoss: true,
        includeBdecLoss: true,
        normalizeLossesByNumMatryoshkaSteps: true,
        normalizeReconstructionLossesByDIn: true,
        scaleSparsityPenaltyByDecoderNorm: true,
      }),
    ];
    await checkForwardBackward(gpu, configs, 129);
  },
);

gpuTest(
  "forward-backward matches the reference for one model, one row, one latent",
  async (gpu) => {
    const config = resolveSaeConfig({ dIn: 50, dSae: 1, l1Coefficient: 0.1 });
    await checkForwardBackward(gpu, [config], 1);
    await checkForwardBackward(gpu, [config], 129);
  },
);

gpuTest(
  "one training step (clip, Adam, unit decoder rows) matches referenceOptimizerStep",
  async (gpu) => {
    const base = { dIn: 50, dSae: 7, l1Coefficient: 0.05, matryoshkaSteps: [2, 7] };
    const configs = [
      resolveSaeConfig({ ...base, normalizeSaeDecoder: true, skipOuterLoss: true }),
      resolveSaeConfig({ ...base, useDeltaLoss: true, scaleSparsityPenaltyByDecoderNorm: true }),
      resolveSaeConfig({ ...base, lpNorm: 2 }),
    ];
    const optimizers: OptimizerSettings[] = [
      { ...ADAM, clipNorm: 0.05 }, // clipping active
      { lr: 3e-3, beta1: 0.9, beta2: 0.99, eps: 1e-6, clipNorm: 0 }, // no clipping
      { ...ADAM, clipNorm: 1e3 }, // clip above the norm
    ];
    const entries = configs.map((c, m) => entryOf(c, optimizers[m]));
    const M = 3, batch = 129, dIn = 50, dSae = 7;
    const { layout, params, x } = randomState(70, M, batch, dIn, dSae);
    const P = layout.size;
    // Model 0 keeps unit decoder rows (SAELens's parallel-gradient removal assumes them).
    for (let j = 0; j < dSae; j++) {
      const row = params.subarray(layout.wDec + j * dIn, layout.wDec + (j + 1) * dIn);
      const n = Math.hypot(...row);
      row.forEach((v, d) => row[d] = v / n);
    }
    const adamM = randomFloats(71, M * P, -1e-3, 1e-3);
    const adamV = randomFloats(72, M * P, 0, 1e-3);
    const stepsDone = 3;
    const step = await createKernelStep(gpu, { models: entries, batch, dIn, dSae });
    const { buffers } = step;
    gpu.device.queue.writeBuffer(buffers.params, 0, params);
    gpu.device.queue.writeBuffer(buffers.x!, 0, x);
    gpu.device.queue.writeBuffer(buffers.adamM, 0, adamM);
    gpu.device.queue.writeBuffer(buffers.adamV, 0, adamV);
    gpu.device.queue.writeBuffer(buffers.counter, 0, new Uint32Array([stepsDone]));
    await run(gpu, step, "step");

    const got = {
      params: await readF32(gpu, buffers.params),
      m: await readF32(gpu, buffers.adamM),
      v: await readF32(gpu, buffers.adamV),
      losses: await readF32(gpu, buffers.losses),
    };
    for (let m = 0; m < M; m++) {
      const slice = (a: Float32Array) => Float64Array.from(a.subarray(m * P, (m + 1) * P));
      const p = slice(params);
      const { grad } = referenceLossAndGrad(
        p,
        layout,
        entries[m]!.plan,
        entries[m]!.applyBDecToInput,
        x.subarray(m * batch * dIn, (m + 1) * batch * dIn),
        batch,
      );
      const state = { m: slice(adamM), v: slice(adamV), t: stepsDone };
      const { gradNorm } = referenceOptimizerStep(
        p,
        grad,
        state,
        optimizers[m]!,
        layout,
        entries[m]!.normalizeSaeDecoder,
      );
      if (m === 0) assert.ok(gradNorm > 0.05, "model 0's gradient is clipped");
      const label = `model ${m}`;
      assertClose([got.losses[m * LOSS_WORDS + 1]!], [gradNorm], {
        atol: 1e-6,
        rtol: 1e-4,
        label: `${label} grad norm`,
      });
      const range = (a: Float32Array) => a.subarray(m * P, (m + 1) * P);
      assertClose(range(got.m), state.m, { atol: 1e-8, rtol: 1e-4, label: `${label} Adam m` });
      assertClose(range(got.v), state.v, { atol: 1e-10, rtol: 1e-4, label: `${label} Adam v` });
      assertClose(range(got.params), p, { atol: 2e-6, rtol: 1e-5, label: `${label} params` });
    }
    assert.deepEqual(Array.from(await readU32(gpu, buffers.counter)), [stepsDone + 1]);
    assert.deepEqual(Array.from(await readU32(gpu, buffers.status)), [0, 0, 0]);
    step.destroy();
  },
);

gpuTest(
  "a model fed NaN is marked diverged and left untouched while the others train",
  async (gpu) => {
    const config = resolveSaeConfig({ ...NOTEBOOK_SAE_CONFIG, useDeltaLoss: true });
    const entries = [entryOf(config), entryOf(config), entryOf(config)];
    const M = 3, batch = 129, { dIn, dSae } = config;
    const { layout, params, x } = randomState(90, M, batch, dIn, dSae);
    x[batch * dIn + 17] = NaN; // one input value of model 1
    const step = await createKernelStep(gpu, { models: entries, batch, dIn, dSae });
    const { buffers } = step;
    gpu.device.queue.writeBuffer(buffers.params, 0, params);
    gpu.device.queue.writeBuffer(buffers.x!, 0, x);
    await run(gpu, step, "step");
    await run(gpu, step, "step");
    assert.deepEqual(Array.from(await readU32(gpu, buffers.status)), [0, 1, 0]);
    assert.deepEqual(Array.from(await readU32(gpu, buffers.counter)), [2]);
    const P = layout.size;
    const got = await readF32(gpu, buffers.params);
    const moments = await readF32(gpu, buffers.adamV);
    assert.deepEqual(got.subarray(P, 2 * P), params.subarray(P, 2 * P), "model 1 untouched");
    assert.ok(moments.subarray(P, 2 * P).every((v) => v === 0), "model 1's moments untouched");
    for (const m of [0, 2]) {
      assert.ok(got.subarray(m * P, (m + 1) * P).some((v, k) => v !== params[m * P + k]));
      assert.ok(got.subarray(m * P, (m + 1) * P).every(Number.isFinite));
    }
    step.destroy();
  },
);

gpuTest("the notebook's step records 20 dispatches, 16 of them forward-backward", async (gpu) => {
  // Direct: 2 decodes, 2 + 2 backward products; stacked: mask, decode, mask, 2 products, sum.
  for (const stacked of [false, true]) {
    const want = { forwardBackward: 16, step: 20 };
    const step = await createKernelStep(gpu, {
      models: [entryOf(NOTEBOOK_SAE_CONFIG)],
      batch: 128,
      dIn: 50,
      dSae: 4,
      stacked,
    });
    assert.deepEqual(step.dispatches, want, `stacked ${stacked}`);
    step.destroy();
  }
});

gpuTest("a step whose kernels would loop past Mesa's limit is refused by name", async (gpu) => {
  const entry = entryOf(resolveSaeConfig({ dIn: 8, dSae: 8, matryoshkaSteps: [4, 8] }));
  // Two prefixes and the outer loss: 3 terms. T·B = 27,000 rows: the stacked products' k-loop
  // and bdec_grad's row loop stay under the limit.
  const fits = kernelLoopIterations({ models: 1, batch: 9_000, dIn: 8, dSae: 8, terms: 3 });
  assert.ok(Object.values(fits).every((n) => n <= LOOP_LIMIT));
  // 40,000 rows: bdec_grad alone would loop 120,008 times per invocation.
  const over = kernelLoopIterations({ models: 1, batch: 40_000, dIn: 8, dSae: 8, terms: 3 });
  assert.equal(over.bdec_grad, 120_008);
  await assert.rejects(
    createKernelStep(gpu, { models: [entry], batch: 40_000, dIn: 8, dSae: 8 }),
    /kernel set: matmul would run \d+ loop iterations per invocation for batch 40000, dIn 8, dSae 8 and 3 terms; Mesa's CPU adapters stop an invocation after 65535/,
  );
});

for (
  const [encoder, decoder] of [["latent", "direct"], ["direct", "latent"], [
    "latent",
    "latent",
  ]] as const
) {
  gpuTest(
    `the ${encoder} encoder and ${decoder} decoder (x = f·E) give the reference's losses and gradients`,
    async (gpu) => {
      // x = f·E with sparse non-negative f; models with and without b_dec applied to the input,
      // with unit-norm decoder rows and without L1 weighted by the decoder norm.
      const dIn = 32, dSae = 16, F = 12, batch = 20;
      const base = { dIn, dSae, l1Coefficient: 0.05, matryoshkaSteps: [4, 16] };
      const configs = [
        resolveSaeConfig({ ...base }),
        resolveSaeConfig({
          ...base,
          applyBDecToInput: false,
          matryoshkaInnerLossMultipliers: [0.5, 1],
        }),
        resolveSaeConfig({
          ...base,
          normalizeSaeDecoder: true,
          scaleSparsityPenaltyByDecoderNorm: false,
          matryoshkaInnerLossMultipliers: [0.25, 1],
        }),
      ];
      const M = configs.length;
      const entries = configs.map((c) => entryOf(c));
      const layout = paramLayout(dIn, dSae);
      const params = randomFloats(71, M * layout.size, -0.4, 0.4);
      const embedding = randomFloats(72, M * F * dIn);
      const features = randomFloats(73, M * batch * F, -2, 1).map((v) => Math.max(v, 0));
      const x = new Float32Array(M * batch * dIn);
      for (let m = 0; m < M; m++) {
        for (let b = 0; b < batch; b++) {
          for (let d = 0; d < dIn; d++) {
            let v = 0;
            for (let f = 0; f < F; f++) {
              v += features[(m * batch + b) * F + f]! * embedding[(m * F + f) * dIn + d]!;
            }
            x[(m * batch + b) * dIn + d] = v;
          }
        }
      }
      const step = await createKernelStep(gpu, {
        models: entries,
        batch,
        dIn,
        dSae,
        latent: { nFeatures: F, embedding },
        encoder,
        decoder,
      });
      assert.deepEqual(step.formulation, { encoder, decoder });
      assert.equal(step.buffers.x === undefined, encoder === "latent" && decoder === "latent");
      gpu.device.queue.writeBuffer(step.buffers.params, 0, params);
      if (step.buffers.x) gpu.device.queue.writeBuffer(step.buffers.x, 0, x);
      gpu.device.queue.writeBuffer(step.buffers.features!, 0, features);
      await run(gpu, step, "forwardBackward");
      const grads = await readF32(gpu, step.buffers.grads);
      const losses = await readF32(gpu, step.buffers.losses);
      const P = layout.size;
      for (let m = 0; m < M; m++) {
        const want = referenceLossAndGrad(
          params.subarray(m * P, (m + 1) * P),
          layout,
          entries[m]!.plan,
          entries[m]!.applyBDecToInput,
          x.subarray(m * batch * dIn, (m + 1) * batch * dIn),
          batch,
        );
        assertClose([losses[m * LOSS_WORDS]!], [want.loss], {
          atol: 1e-5,
          rtol: 1e-4,
          label: `loss ${m}`,
        });
        assertClose(grads.subarray(m * P, (m + 1) * P), want.grad, {
          atol: 2e-5,
          rtol: 1e-3,
          label: `model ${m} gradient`,
        });
      }
      step.destroy();
    },
  );
}
