/**
 * TopK and BatchTopK through the kernel-per-op training step (src/sae/kernel_step.ts) against the
 * float64 reference: the kept activations, the losses (the auxiliary loss of dead latents
 * included) and the gradient of every tensor, beside a standard SAE in the same dispatch, on the
 * direct, stacked and latent-decoder paths; then a whole step's threshold and dead counters.
 */
import assert from "node:assert/strict";
import { assertClose, gpuTest } from "./_gpu.ts";
import { randomFloats } from "./_kernel_data.ts";
import type { Gpu } from "../src/gpu/device.ts";
import { readF32, readU32 } from "../src/gpu/buffers.ts";
import { resolveSaeConfig, type SaeConfig } from "../src/sae/config.ts";
import { lossPlan } from "../src/sae/loss_plan.ts";
import { paramLayout } from "../src/sae/layout.ts";
import { LOSS_RECORD, LOSS_WORDS, type ModelEntry, topkEntry } from "../src/sae/model_table.ts";
import { createKernelStep, type KernelStepOptions } from "../src/sae/kernel_step.ts";
import { topkStateWords } from "../src/kernels/topk.ts";
import { referenceLossAndGrad } from "../src/reference/sae_reference.ts";
import {
  advanceDeadCounters,
  nextThreshold,
  type TopKSelection,
} from "../src/reference/topk_reference.ts";

const ADAM = { lr: 1e-3, beta1: 0, beta2: 0.999, eps: 1e-8, clipNorm: 1 };

function entryOf(config: SaeConfig): ModelEntry {
  const topk = topkEntry(config);
  return {
    plan: lossPlan(config),
    applyBDecToInput: config.applyBDecToInput,
    normalizeSaeDecoder: config.normalizeSaeDecoder,
    optimizer: ADAM,
    dataGroup: 0,
    ...(topk ? { topk } : {}),
  };
}

const D = 32;
const S = 16;
const WINDOW = 5;
/** Steps since firing per model: latents 3, 9, 12 and 15 dead (past the window) in every model. */
const COUNTERS = Array.from({ length: S }, (_, j) => [3, 9, 12, 15].includes(j) ? 40 : j % 3);

/** Four models; with `delta`, one uses the delta loss (its term ranges differ: the stacked path). */
function configs(delta = false): SaeConfig[] {
  const base = {
    dIn: D,
    dSae: S,
    l1Coefficient: 0.05,
    matryoshkaSteps: [4, 16],
    skipOuterLoss: true,
    deadFeatureWindow: WINDOW,
  };
  return [
    resolveSaeConfig({
      ...base,
      architecture: "batchtopk",
      k: 3,
      kAux: 2,
      auxLossCoefficient: 0.5,
    }),
    resolveSaeConfig({
      ...base,
      architecture: "topk",
      k: 4,
      matryoshkaInnerLossMultipliers: [0.25, 1],
      applyBDecToInput: false,
    }),
    resolveSaeConfig({ ...base, architecture: "batchtopk", k: 2, useDeltaLoss: delta }),
    resolveSaeConfig(base), // standard, L1
  ];
}

function selectionOf(config: SaeConfig): TopKSelection | undefined {
  const e = topkEntry(config);
  if (!e) return undefined;
  const dead = COUNTERS.map((c) => c > e.deadWindow);
  return {
    architecture: e.architecture,
    k: e.k,
    aux: { dead, kAux: e.kAux, coefficient: e.auxCoefficient },
  };
}

/** Model m's float64 loss, gradient and activations, with its TopK selection. */
function referenceOf(
  config: SaeConfig,
  entry: ModelEntry,
  params: Float32Array,
  x: Float32Array,
  m: number,
  batch: number,
) {
  const layout = paramLayout(D, S);
  const P = layout.size;
  return referenceLossAndGrad(
    params.subarray(m * P, (m + 1) * P),
    layout,
    entry.plan,
    entry.applyBDecToInput,
    x.subarray(m * batch * D, (m + 1) * batch * D),
    batch,
    selectionOf(config),
  );
}

async function check(
  gpu: Gpu,
  extra: Partial<KernelStepOptions>,
  label: string,
  delta = false,
) {
  const cs = configs(delta);
  const M = cs.length;
  const batch = 12;
  const entries = cs.map(entryOf);
  const layout = paramLayout(D, S);
  const P = layout.size;
  const params = randomFloats(91, M * P, -0.4, 0.4);
  const F = 10;
  const embedding = randomFloats(92, F * D);
  const features = randomFloats(93, M * batch * F, -1, 1).map((v) => Math.max(v, 0));
  const x = new Float32Array(M * batch * D);
  for (let r = 0; r < M * batch; r++) {
    for (let d = 0; d < D; d++) {
      let v = 0;
      for (let f = 0; f < F; f++) v += features[r * F + f]! * embedding[f * D + d]!;
      x[r * D + d] = v;
    }
  }
  const step = await createKernelStep(gpu, {
    models: entries,
    batch,
    dIn: D,
    dSae: S,
    latent: { nFeatures: F, embedding },
    ...extra,
  });
  assert.equal(step.intermediates.stack !== undefined, delta, "the stacked path iff delta loss");
  const words = topkStateWords(S);
  const state = new Uint32Array(M * words);
  for (let m = 0; m < M; m++) state.set(COUNTERS, m * words + 1);
  gpu.device.queue.writeBuffer(step.buffers.params, 0, params);
  gpu.device.queue.writeBuffer(step.buffers.topkState!, 0, state);
  if (step.buffers.x) gpu.device.queue.writeBuffer(step.buffers.x, 0, x);
  if (step.buffers.features) gpu.device.queue.writeBuffer(step.buffers.features, 0, features);
  const encoder = gpu.device.createCommandEncoder();
  step.encodeForwardBackward(encoder);
  gpu.device.queue.submit([encoder.finish()]);
  const [grads, losses, acts] = await Promise.all([
    readF32(gpu, step.buffers.grads),
    readF32(gpu, step.buffers.losses),
    readF32(gpu, step.intermediates.acts),
  ]);
  for (let m = 0; m < M; m++) {
    const want = referenceOf(cs[m]!, entries[m]!, params, x, m, batch);
    const name = `${label}, model ${m} (${cs[m]!.architecture})`;
    assertClose(acts.subarray(m * batch * S, (m + 1) * batch * S), want.acts, {
      atol: 1e-5,
      rtol: 1e-4,
      label: `${name} acts`,
    });
    const record = losses.subarray(m * LOSS_WORDS, (m + 1) * LOSS_WORDS);
    assertClose([record[0]!, record[LOSS_RECORD.offset.aux]!], [want.loss, want.auxLoss], {
      atol: 1e-5,
      rtol: 1e-4,
      label: `${name} total and aux loss`,
    });
    assertClose(grads.subarray(m * P, (m + 1) * P), want.grad, {
      atol: 2e-5,
      rtol: 1e-3,
      label: `${name} gradient`,
    });
    if (m === 0) assert.ok(want.auxLoss > 0, "model 0 has an auxiliary loss");
  }
  step.destroy();
}

gpuTest("TopK and BatchTopK steps match the reference on the direct path", async (gpu) => {
  await check(gpu, { encoder: "direct", decoder: "direct" }, "direct");
});

gpuTest("TopK and BatchTopK steps match the reference on the stacked path", async (gpu) => {
  await check(gpu, { encoder: "direct", decoder: "direct" }, "stacked", true);
});

gpuTest("TopK and BatchTopK steps match the reference with the latent decoder", async (gpu) => {
  await check(gpu, { encoder: "direct", decoder: "latent" }, "latent decoder");
});

gpuTest("the auxiliary loss refuses a step that never forms x", async (gpu) => {
  const entries = configs().map(entryOf);
  await assert.rejects(
    createKernelStep(gpu, {
      models: entries,
      batch: 4,
      dIn: D,
      dSae: S,
      latent: { nFeatures: 2, embedding: new Float32Array(2 * D) },
      encoder: "latent",
      decoder: "latent",
    }),
    /auxiliary loss .* reads x/,
  );
});

gpuTest("a whole step moves θ and the dead counters as the reference does", async (gpu) => {
  const cs = configs();
  const M = cs.length;
  const batch = 12;
  const entries = cs.map(entryOf);
  const layout = paramLayout(D, S);
  const params = randomFloats(95, M * layout.size, -0.4, 0.4);
  const x = randomFloats(96, M * batch * D);
  const step = await createKernelStep(gpu, { models: entries, batch, dIn: D, dSae: S });
  const words = topkStateWords(S);
  const state = new Uint32Array(M * words);
  const theta = new Float32Array(state.buffer);
  for (let m = 0; m < M; m++) {
    state.set(COUNTERS, m * words + 1);
    theta[m * words] = 0.125;
  }
  gpu.device.queue.writeBuffer(step.buffers.params, 0, params);
  gpu.device.queue.writeBuffer(step.buffers.topkState!, 0, state);
  gpu.device.queue.writeBuffer(step.buffers.x!, 0, x);
  const encoder = gpu.device.createCommandEncoder();
  step.encodeStep(encoder);
  gpu.device.queue.submit([encoder.finish()]);
  const got = await readU32(gpu, step.buffers.topkState!);
  const gotTheta = new Float32Array(got.buffer);
  for (let m = 0; m < M; m++) {
    const want = referenceOf(cs[m]!, entries[m]!, params, x, m, batch);
    const counters = Uint32Array.from(COUNTERS);
    const topk = entries[m]!.topk;
    if (topk) advanceDeadCounters(counters, want.acts, batch, S);
    assert.deepEqual(
      [...got.subarray(m * words + 1, (m + 1) * words)],
      [...counters],
      `model ${m}`,
    );
    const wantTheta = topk?.architecture === "batchtopk"
      ? nextThreshold(0.125, want.acts, topk.thresholdLr)
      : 0.125;
    assertClose([gotTheta[m * words]!], [wantTheta], { atol: 1e-6, label: `model ${m} θ` });
  }
  step.destroy();
});
