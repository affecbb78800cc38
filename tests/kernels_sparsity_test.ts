/**
 * shaders/sparsity.wgsl against float64 CPU loops: decoder row norms, each term's weighted Lp
 * penalty, its gradient w.r.t. the activations and w.r.t. W_dec through the row norms; three
 * models with different plans (p = 1, 2, 1.5; with and without decoder-norm weighting) in one
 * dispatch, on ragged shapes.
 */
import assert from "node:assert/strict";
import { assertClose, gpuTest } from "./_gpu.ts";
import { modelEntry, randomFloats, term, upload, uploadModels } from "./_kernel_data.ts";
import type { Gpu } from "../src/gpu/device.ts";
import { createStorage, readF32 } from "../src/gpu/buffers.ts";
import { paramLayout } from "../src/sae/layout.ts";
import { LOSS_WORDS, lossL1Slot, MAX_TERMS, type ModelEntry } from "../src/sae/model_table.ts";
import {
  createRowNorms,
  createSparsityDecoderGrad,
  createSparsityForward,
} from "../src/kernels/sparsity.ts";
import { runOps } from "../src/kernels/kernel_op.ts";
import { createLossTotal, termRowsWords } from "../src/kernels/recon_loss.ts";
import type { StepShape } from "../src/kernels/step_dims.ts";

/** The penalty of every term, ∂/∂acts and ∂/∂W_dec, in float64 plain loops. */
function cpuSparsity(
  entries: readonly ModelEntry[],
  shape: StepShape,
  params: Float32Array,
  acts: Float32Array,
) {
  const { models: M, batch: B, dIn: D, dSae: S } = shape;
  const layout = paramLayout(D, S);
  const norms = new Float64Array(M * S);
  const l1 = new Float64Array(M * MAX_TERMS);
  const gradActs = new Float64Array(M * B * S);
  const gradWDec = new Float64Array(M * S * D);
  for (let m = 0; m < M; m++) {
    const { plan } = entries[m]!;
    const p = plan.lpNorm;
    const wDec = (j: number, d: number) => params[m * layout.size + layout.wDec + j * D + d]!;
    for (let j = 0; j < S; j++) {
      let sq = 0;
      for (let d = 0; d < D; d++) sq += wDec(j, d) ** 2;
      norms[m * S + j] = Math.sqrt(sq);
    }
    const w = (j: number) => plan.l1ByDecoderNorm ? norms[m * S + j]! : 1;
    const dw = new Float64Array(S);
    plan.terms.forEach((t, ti) => {
      if (t.l1Mult === 0) return;
      let total = 0;
      for (let b = 0; b < B; b++) {
        const v = (j: number) => w(j) * acts[(m * B + b) * S + j]!;
        let acc = 0;
        for (let j = t.l1Start; j < t.l1End; j++) acc += Math.abs(v(j)) ** p;
        const n = acc ** (1 / p);
        total += n;
        for (let j = t.l1Start; j < t.l1End; j++) {
          const vj = v(j);
          if (vj === 0 || n === 0) continue;
          const g = t.l1Mult / B * Math.sign(vj) * (Math.abs(vj) / n) ** (p - 1);
          gradActs[(m * B + b) * S + j]! += g * w(j);
          dw[j]! += g * acts[(m * B + b) * S + j]!;
        }
      }
      l1[m * MAX_TERMS + ti] = t.l1Mult * total / B;
    });
    if (plan.l1ByDecoderNorm) {
      for (let j = 0; j < S; j++) {
        if (norms[m * S + j] === 0) continue;
        for (let d = 0; d < D; d++) {
          gradWDec[(m * S + j) * D + d] = dw[j]! * wDec(j, d) / norms[m * S + j]!;
        }
      }
    }
  }
  return { norms, l1, gradActs, gradWDec };
}

async function checkSparsity(gpu: Gpu, entries: ModelEntry[], batch: number, dSae: number) {
  const dIn = 50;
  const M = entries.length;
  const shape: StepShape = { models: M, batch, dIn, dSae, terms: MAX_TERMS };
  const layout = paramLayout(dIn, dSae);
  const params = randomFloats(7, M * layout.size);
  // With several latents, model 0's last decoder row is zero: its weight and W_dec gradient are 0.
  if (dSae > 1) params.fill(0, layout.wDec + (dSae - 1) * dIn, layout.wDec + dSae * dIn);
  // ReLU-like activations: about a third exactly 0, and model 1's first row all 0.
  const acts = randomFloats(8, M * batch * dSae, -0.5, 1).map((v) => Math.max(v, 0));
  if (M > 1) acts.fill(0, batch * dSae, batch * dSae + dSae);
  const gradsInit = randomFloats(9, M * layout.size);

  const models = uploadModels(gpu, entries);
  const paramsBuffer = upload(gpu, "params", params);
  const actsBuffer = upload(gpu, "acts", acts);
  const norms = createStorage(gpu, "norms", M * dSae * 4);
  const gv = createStorage(gpu, "gv", M * batch * dSae * 4);
  const gradActs = createStorage(gpu, "gradActs", M * batch * dSae * 4);
  const losses = upload(gpu, "losses", new Float32Array(M * LOSS_WORDS).fill(NaN));
  // The recon rows are 0 here: loss_total's l1 slots are the penalty alone.
  const termRows = upload(gpu, "termRows", new Float32Array(termRowsWords(shape)).fill(NaN));
  for (let m = 0; m < M; m++) {
    gpu.device.queue.writeBuffer(
      termRows,
      m * 2 * MAX_TERMS * batch * 4,
      new Float32Array(MAX_TERMS * batch),
    );
  }
  const grads = upload(gpu, "grads", gradsInit);
  const common = { shape, models, acts: actsBuffer, norms, gv };
  await runOps(gpu, [
    await createRowNorms(gpu, { shape, params: paramsBuffer, norms }),
    await createSparsityForward(gpu, { ...common, gradActs, termRows }),
    await createLossTotal(gpu, { shape, models, termRows, losses }),
    await createSparsityDecoderGrad(gpu, { ...common, params: paramsBuffer, grads }),
  ]);

  const expected = cpuSparsity(entries, shape, params, acts);
  const label = `M=${M} B=${batch} S=${dSae}`;
  assertClose(await readF32(gpu, norms), expected.norms, { atol: 1e-6, rtol: 1e-6, label });
  const gotLosses = await readF32(gpu, losses);
  const gotL1 = new Float32Array(M * MAX_TERMS);
  for (let m = 0; m < M; m++) {
    for (let t = 0; t < MAX_TERMS; t++) {
      gotL1[m * MAX_TERMS + t] = gotLosses[m * LOSS_WORDS + lossL1Slot(t)]!;
    }
  }
  assertClose(gotL1, expected.l1, { atol: 1e-6, rtol: 1e-5, label: `${label} l1` });
  assertClose(await readF32(gpu, gradActs), expected.gradActs, {
    atol: 1e-7,
    rtol: 1e-4,
    label: `${label} gradActs`,
  });
  const gotGrads = await readF32(gpu, grads);
  for (let m = 0; m < M; m++) {
    const at = m * layout.size + layout.wDec;
    const wantWDec = Array.from(
      { length: dSae * dIn },
      (_, k) => gradsInit[at + k]! + expected.gradWDec[m * dSae * dIn + k]!,
    );
    assertClose(gotGrads.subarray(at, at + dSae * dIn), wantWDec, {
      atol: 1e-6,
      rtol: 1e-4,
      label: `${label} model ${m} W_dec grad`,
    });
    // The rest of the gradient is untouched.
    assert.deepEqual(
      gotGrads.subarray(m * layout.size, at),
      gradsInit.subarray(m * layout.size, at),
    );
  }
}

gpuTest("sparsity penalty and its gradients match the CPU for p = 1, 2, 1.5", async (gpu) => {
  const entries = [
    // Delta-loss windows, weighted by decoder norms, L1.
    modelEntry({
      lpNorm: 1,
      l1ByDecoderNorm: true,
      terms: [
        term({ end: 3, l1Start: 0, l1End: 3, l1Mult: 0.3 }),
        term({ end: 7, l1Start: 3, l1End: 7, l1Mult: 0.5 }),
      ],
    }),
    // Overlapping windows, a term without penalty, L2 norm.
    modelEntry({
      lpNorm: 2,
      l1ByDecoderNorm: true,
      terms: [
        term({ end: 7, l1Start: 0, l1End: 7, l1Mult: 0.2 }),
        term({ end: 2, l1Start: 0, l1End: 2, l1Mult: 0 }),
        term({ end: 4, l1Start: 0, l1End: 4, l1Mult: 0.7 }),
      ],
    }),
    // Unweighted, p = 1.5.
    modelEntry({
      lpNorm: 1.5,
      l1ByDecoderNorm: false,
      terms: [term({ end: 7, l1Start: 1, l1End: 7, l1Mult: 1 })],
    }),
  ];
  await checkSparsity(gpu, entries, 129, 7);
});

gpuTest("sparsity kernels handle one model, one row and one latent", async (gpu) => {
  const entries = [
    modelEntry({ lpNorm: 1, terms: [term({ end: 1, l1Start: 0, l1End: 1, l1Mult: 0.03 })] }),
  ];
  await checkSparsity(gpu, entries, 1, 1);
  await checkSparsity(gpu, entries, 129, 1);
});
