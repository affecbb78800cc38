/**
 * shaders/optimizer.wgsl against float64 CPU loops: decoder-parallel gradient removal, the global
 * gradient norm, clipping, bias-corrected Adam with the step counter on the GPU, unit decoder rows,
 * and divergence (a model with a non-finite loss is marked with the step and left untouched).
 */
import assert from "node:assert/strict";
import { assertClose, gpuTest } from "./_gpu.ts";
import { modelEntry, randomFloats, term, upload, uploadModels } from "./_kernel_data.ts";
import { readF32, readU32 } from "../src/gpu/buffers.ts";
import { paramLayout } from "../src/sae/layout.ts";
import { LOSS_WORDS, type ModelEntry } from "../src/sae/model_table.ts";
import { createStorage } from "../src/gpu/buffers.ts";
import type { Gpu } from "../src/gpu/device.ts";
import {
  createAdam,
  createFinishStep,
  createGradNorm,
  createRemoveParallel,
  NORM_CHUNK,
  normScratchWords,
} from "../src/kernels/optimizer.ts";
import { runOps } from "../src/kernels/kernel_op.ts";
import type { StepShape } from "../src/kernels/step_dims.ts";
import { type Schedule, scheduleLrFactor } from "../src/sae/train_settings.ts";

const plan = { terms: [term({ end: 7, reconMult: 1 })] };

function normScratch(gpu: Gpu, shape: StepShape): GPUBuffer {
  return createStorage(gpu, "norm scratch", normScratchWords(shape) * 4);
}

const CONSTANT: Schedule = { totalSteps: 1, warmupSteps: 0, decaySteps: 0, lrEndFactor: 1 };

gpuTest("optimizer kernels clip, apply Adam at step t and renormalise like torch", async (gpu) => {
  await checkOptimizerStep(gpu, { models: 3, batch: 1, dIn: 50, dSae: 7, terms: 1 }, CONSTANT, 4);
});

gpuTest(
  "optimizer kernels update four parameters at a time when P is a multiple of 4",
  async (gpu) => {
    const shape: StepShape = { models: 3, batch: 1, dIn: 52, dSae: 8, terms: 1 };
    assert.equal(paramLayout(52, 8).size % 4, 0, "adam4");
    await checkOptimizerStep(gpu, shape, CONSTANT, 4);
  },
);

gpuTest("optimizer kernels sum the norm over several chunks of one model", async (gpu) => {
  const shape: StepShape = { models: 3, batch: 1, dIn: 60, dSae: 70, terms: 1 };
  assert.ok(paramLayout(60, 70).size > 2 * NORM_CHUNK, "three chunks per model");
  await checkOptimizerStep(gpu, shape, CONSTANT, 4);
});

gpuTest("optimizer kernels follow the warm-up and decay of the learning rate", async (gpu) => {
  const shape: StepShape = { models: 3, batch: 1, dIn: 50, dSae: 7, terms: 1 };
  const schedule: Schedule = { totalSteps: 40, warmupSteps: 10, decaySteps: 12, lrEndFactor: 0.2 };
  for (const stepsDone of [2, 20, 35]) await checkOptimizerStep(gpu, shape, schedule, stepsDone);
});

async function checkOptimizerStep(
  gpu: Gpu,
  shape: StepShape,
  schedule: Schedule,
  stepsDone: number,
): Promise<void> {
  const entries: ModelEntry[] = [
    // Clipping active (gradients scaled up below), decoder kept at unit norm.
    modelEntry(plan, {
      normalizeSaeDecoder: true,
      optimizer: { lr: 1e-2, beta1: 0, beta2: 0.999, eps: 1e-8, clipNorm: 1 },
    }),
    // No clipping, momentum.
    modelEntry(plan, {
      optimizer: { lr: 3e-3, beta1: 0.9, beta2: 0.99, eps: 1e-6, clipNorm: 0 },
    }),
    // Clip above the norm: no effect.
    modelEntry(plan, {
      optimizer: { lr: 1e-3, beta1: 0.5, beta2: 0.999, eps: 1e-8, clipNorm: 1e6 },
    }),
  ];
  const { models: M, dIn: D, dSae: S } = shape;
  const layout = paramLayout(D, S);
  const P = layout.size;
  const params = randomFloats(31, M * P);
  // Model 0 starts with unit decoder rows (SAELens's parallel removal assumes them).
  for (let j = 0; j < S; j++) {
    const row = params.subarray(layout.wDec + j * D, layout.wDec + (j + 1) * D);
    const n = Math.hypot(...row);
    row.forEach((v, d) => row[d] = v / n);
  }
  const grads = randomFloats(32, M * P).map((g, i) => i < P ? 3 * g : g);
  const adamM = randomFloats(33, M * P, -0.01, 0.01);
  const adamV = randomFloats(34, M * P, 0, 1e-4);
  const losses = new Float32Array(M * LOSS_WORDS).fill(0.5);

  const buffers = {
    shape,
    models: uploadModels(gpu, entries),
    params: upload(gpu, "params", params),
    grads: upload(gpu, "grads", grads),
    adamM: upload(gpu, "adamM", adamM),
    adamV: upload(gpu, "adamV", adamV),
    losses: upload(gpu, "losses", losses),
    status: upload(gpu, "status", new Uint32Array(M)),
    counter: upload(gpu, "counter", new Uint32Array([stepsDone])),
    normScratch: normScratch(gpu, shape),
    schedule,
  };
  await runOps(gpu, [
    await createRemoveParallel(gpu, buffers),
    await createGradNorm(gpu, buffers),
    await createAdam(gpu, buffers),
    await createFinishStep(gpu, buffers),
  ]);

  const t = stepsDone + 1;
  const lrFactor = scheduleLrFactor(schedule, stepsDone);
  const want = Float64Array.from(params);
  const wantNorms: number[] = [];
  for (let m = 0; m < M; m++) {
    const { optimizer: o, normalizeSaeDecoder } = entries[m]!;
    const base = m * P;
    const g = Float64Array.from(grads.subarray(base, base + P));
    if (normalizeSaeDecoder) {
      for (let j = 0; j < S; j++) {
        const at = layout.wDec + j * D;
        let dot = 0;
        for (let d = 0; d < D; d++) dot += g[at + d]! * params[base + at + d]!;
        for (let d = 0; d < D; d++) g[at + d]! -= dot * params[base + at + d]!;
      }
    }
    const norm = Math.hypot(...g);
    wantNorms.push(norm);
    const coef = o.clipNorm > 0 ? Math.min(1, o.clipNorm / (norm + 1e-6)) : 1;
    for (let k = 0; k < P; k++) {
      const gk = g[k]! * coef;
      const mk = o.beta1 * adamM[base + k]! + (1 - o.beta1) * gk;
      const vk = o.beta2 * adamV[base + k]! + (1 - o.beta2) * gk * gk;
      const denom = Math.sqrt(vk) / Math.sqrt(1 - o.beta2 ** t) + o.eps;
      want[base + k]! -= o.lr * lrFactor / (1 - o.beta1 ** t) * mk / denom;
    }
    if (normalizeSaeDecoder) {
      for (let j = 0; j < S; j++) {
        const at = base + layout.wDec + j * D;
        const n = Math.hypot(...want.subarray(at, at + D));
        for (let d = 0; d < D; d++) want[at + d]! /= n;
      }
    }
  }
  assert.ok(wantNorms[0]! > 1, "model 0's gradient is clipped");
  const gotLosses = await readF32(gpu, buffers.losses);
  assertClose([0, 1, 2].map((m) => gotLosses[m * LOSS_WORDS + 1]!), wantNorms, {
    atol: 0,
    rtol: 1e-5,
    label: "grad norms",
  });
  assertClose(await readF32(gpu, buffers.params), want, {
    atol: 1e-6,
    rtol: 1e-5,
    label: "params",
  });
  assert.deepEqual(Array.from(await readU32(gpu, buffers.counter)), [t]);
  assert.deepEqual(Array.from(await readU32(gpu, buffers.status)), [0, 0, 0]);
}

gpuTest(
  "a model with a non-finite loss is marked diverged at that step and skipped",
  async (gpu) => {
    const entries = [modelEntry(plan), modelEntry(plan), modelEntry(plan)];
    const shape: StepShape = { models: 3, batch: 1, dIn: 50, dSae: 1, terms: 1 };
    const P = paramLayout(50, 1).size;
    const params = randomFloats(41, 3 * P);
    const losses = new Float32Array(3 * LOSS_WORDS).fill(1);
    losses[1 * LOSS_WORDS] = NaN; // model 1's total loss
    const grads = randomFloats(42, 3 * P);
    grads[2 * P + 5] = Infinity; // model 2's gradient
    const buffers = {
      shape,
      models: uploadModels(gpu, entries),
      params: upload(gpu, "params", params),
      grads: upload(gpu, "grads", grads),
      adamM: upload(gpu, "adamM", new Float32Array(3 * P)),
      adamV: upload(gpu, "adamV", new Float32Array(3 * P)),
      losses: upload(gpu, "losses", losses),
      status: upload(gpu, "status", new Uint32Array(3)),
      counter: upload(gpu, "counter", new Uint32Array([6])),
      normScratch: normScratch(gpu, shape),
    };
    const ops = [
      await createGradNorm(gpu, buffers),
      await createAdam(gpu, buffers),
      await createFinishStep(gpu, buffers),
    ];
    await runOps(gpu, ops);
    assert.deepEqual(Array.from(await readU32(gpu, buffers.status)), [0, 7, 7]);
    let got = await readF32(gpu, buffers.params);
    assert.ok(got.subarray(0, P).some((v, k) => v !== params[k]), "model 0 updated");
    assert.deepEqual(got.subarray(P), params.subarray(P), "models 1 and 2 untouched");

    // Later steps skip them too, with finite values, and keep the step they diverged at.
    gpu.device.queue.writeBuffer(buffers.losses, 0, new Float32Array(3 * LOSS_WORDS).fill(1));
    gpu.device.queue.writeBuffer(buffers.grads, 0, randomFloats(43, 3 * P));
    await runOps(gpu, ops);
    assert.deepEqual(Array.from(await readU32(gpu, buffers.status)), [0, 7, 7]);
    assert.deepEqual(Array.from(await readU32(gpu, buffers.counter)), [8]);
    got = await readF32(gpu, buffers.params);
    assert.deepEqual(got.subarray(P), params.subarray(P));
  },
);
