/**
 * shaders/topk.wgsl against the float64 reference (src/reference/topk_reference.ts): TopK and
 * BatchTopK selection with many ties, models of every architecture in one dispatch, and the
 * threshold and dead-counter update. Selection and counters are exact; θ to float32 rounding.
 */
import assert from "node:assert/strict";
import { assertClose, gpuTest } from "./_gpu.ts";
import { upload } from "./_kernel_data.ts";
import { readF32, readU32, uploadStorage } from "../src/gpu/buffers.ts";
import { createTopK, type TopKModel, topkStateWords } from "../src/kernels/topk.ts";
import type { TopKEntry } from "../src/sae/model_table.ts";
import { runOps } from "../src/kernels/kernel_op.ts";
import { paramLayout } from "../src/sae/layout.ts";
import { LOSS_RECORD, LOSS_WORDS } from "../src/sae/model_table.ts";
import {
  advanceDeadCounters,
  auxActivations,
  nextThreshold,
  selectBatchTopK,
  selectTopK,
} from "../src/reference/topk_reference.ts";

/** Seeded activations on a coarse grid (many ties, many zeros): ReLU of values in [-2, 2]. */
function gridActs(seed: number, n: number): Float32Array<ArrayBuffer> {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return Math.max(Math.round((s / 4294967296) * 16 - 8) / 4, 0);
  });
}

const SHAPES: [number, number][] = [[2, 3], [128, 4], [37, 9], [300, 16]];

/** A model of `architecture` (standard: no topk entry). */
function model(
  architecture: "standard" | TopKEntry["architecture"],
  k: number,
  thresholdLr = 0.01,
  aux: Partial<TopKEntry> = {},
): TopKModel {
  if (architecture === "standard") return { applyBDecToInput: true };
  const topk = { architecture, k, thresholdLr, auxCoefficient: 0, kAux: 1, deadWindow: 10 };
  return { applyBDecToInput: true, topk: { ...topk, ...aux } };
}

gpuTest("topk_select keeps what the reference keeps, ties included", async (gpu) => {
  for (const [B, S] of SHAPES) {
    const models = [
      model("topk", 1),
      model("batchtopk", 1),
      model("standard", 1),
      model("topk", Math.min(3, S)),
      model("batchtopk", Math.min(2, S)),
      model("batchtopk", S), // keeps everything
      model("batchtopk", 0.5), // ⌊0.5·B⌋ over the batch
    ];
    const M = models.length;
    const n = B * S;
    const acts = gridActs(B * 31 + S, M * n);
    const actsBuffer = upload(gpu, "acts", acts);
    const state = uploadStorage(gpu, "state", new Uint32Array(M * topkStateWords(S)));
    const status = uploadStorage(gpu, "status", new Uint32Array(M));
    const ops = await createTopK(gpu, {
      models,
      batch: B,
      dSae: S,
      acts: actsBuffer,
      state,
      status,
    });
    await runOps(gpu, [ops.select]);
    const got = await readF32(gpu, actsBuffer);
    models.forEach(({ topk }, m) => {
      const expected = Float64Array.from(acts.subarray(m * n, (m + 1) * n));
      if (topk?.architecture === "topk") selectTopK(expected, B, S, topk.k);
      if (topk?.architecture === "batchtopk") selectBatchTopK(expected, B, S, topk.k);
      assertClose(got.subarray(m * n, (m + 1) * n), expected, {
        atol: 0,
        rtol: 0,
        label: `B ${B}, S ${S}, model ${m} (${topk?.architecture ?? "standard"}, k ${topk?.k})`,
      });
    });
  }
});

gpuTest("topk_state moves θ and the dead counters as the reference does", async (gpu) => {
  const B = 40;
  const S = 6;
  const n = B * S;
  const models = [
    model("batchtopk", 2),
    model("topk", 2), // counters only, no θ
    model("batchtopk", 2, 0.5), // diverged: left alone
    model("standard", 1), // left alone
  ];
  const M = models.length;
  const acts = gridActs(7, M * n);
  for (let b = 0; b < B; b++) acts[b * S + 5] = 0; // model 0's latent 5 never fires
  const words = topkStateWords(S);
  const initial = new Uint32Array(M * words);
  const theta = new Float32Array(initial.buffer);
  for (let m = 0; m < M; m++) {
    theta[m * words] = 0.3;
    for (let j = 0; j < S; j++) initial[m * words + 1 + j] = 10 * j;
  }
  const state = uploadStorage(gpu, "state", initial.slice());
  const status = uploadStorage(gpu, "status", Uint32Array.from([0, 0, 17, 0]));
  const actsBuffer = upload(gpu, "acts", acts);
  const ops = await createTopK(gpu, { models, batch: B, dSae: S, acts: actsBuffer, state, status });
  await runOps(gpu, [ops.update]);
  const got = await readU32(gpu, state);
  const gotTheta = new Float32Array(got.buffer);
  const kept0 = acts.subarray(0, n);
  assertClose([gotTheta[0]!], [nextThreshold(0.3, kept0, 0.01)], { atol: 1e-7, label: "θ" });
  const counters0 = initial.slice(1, words);
  advanceDeadCounters(counters0, kept0, B, S);
  assert.deepEqual([...got.subarray(1, words)], [...counters0]);
  assert.equal(counters0[5], 10 * 5 + 1); // the latent that never fired counts on
  assert.equal(gotTheta[words], Math.fround(0.3)); // TopK keeps no threshold
  const counters1 = initial.slice(words + 1, 2 * words);
  advanceDeadCounters(counters1, acts.subarray(n, 2 * n), B, S);
  assert.deepEqual([...got.subarray(words + 1, 2 * words)], [...counters1]);
  assert.deepEqual([...got.subarray(2 * words)], [...initial.subarray(2 * words)]);
});

/** Seeded uniforms in [-1, 1). */
function uniforms(seed: number, n: number): Float32Array<ArrayBuffer> {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return 2 * (s / 4294967296) - 1;
  });
}

gpuTest("aux_forward and aux_grad match the float64 auxiliary loss", async (gpu) => {
  const B = 9;
  const S = 6;
  const D = 7;
  const layout = paramLayout(D, S);
  const P = layout.size;
  const window = 10;
  // Model 0: three dead latents, kAux 2 (scale 1); model 1: one dead, kAux 4 (scale 1/4), b_dec
  // not applied; model 2: none dead (zeros); model 3: standard (untouched).
  const counters = [[0, 11, 3, 50, 11, 0], [0, 0, 0, 0, 0, 99], [1, 2, 3, 4, 5, 6], [
    0,
    0,
    0,
    0,
    0,
    0,
  ]];
  const models: TopKModel[] = [
    model("batchtopk", 2, 0.01, { auxCoefficient: 0.5, kAux: 2, deadWindow: window }),
    { ...model("topk", 2, 0.01, { auxCoefficient: 1 / 32, kAux: 4, deadWindow: window }) },
    model("topk", 1, 0.01, { auxCoefficient: 0.25, kAux: 3, deadWindow: window }),
    model("standard", 1),
  ];
  models[1] = { ...models[1]!, applyBDecToInput: false };
  const M = models.length;
  const params = uniforms(3, M * P);
  const x = uniforms(4, M * B * D);
  const acts = gridActs(5, M * B * S);
  const gradPre0 = uniforms(6, M * B * S);
  const grads0 = uniforms(7, M * P);
  const losses0 = new Float32Array(M * LOSS_WORDS);
  for (let m = 0; m < M; m++) losses0[m * LOSS_WORDS] = 1.5; // the total so far
  const words = topkStateWords(S);
  const state0 = new Uint32Array(M * words);
  counters.forEach((c, m) => state0.set(c, m * words + 1));
  const buffers = {
    acts: upload(gpu, "acts", acts),
    state: uploadStorage(gpu, "state", state0),
    status: uploadStorage(gpu, "status", new Uint32Array(M)),
  };
  const aux = {
    dIn: D,
    layout,
    params: upload(gpu, "params", params),
    x: upload(gpu, "x", x),
    gradPre: upload(gpu, "gradPre", gradPre0),
    grads: upload(gpu, "grads", grads0),
    losses: upload(gpu, "losses", losses0),
  };
  const ops = await createTopK(gpu, { models, batch: B, dSae: S, ...buffers, aux });
  await runOps(gpu, [ops.auxForward!, ops.auxGrad!]);
  const [gradPre, grads, losses] = await Promise.all([
    readF32(gpu, aux.gradPre),
    readF32(gpu, aux.grads),
    readF32(gpu, aux.losses),
  ]);

  for (let m = 0; m < M; m++) {
    const expPre = Float64Array.from(gradPre0.subarray(m * B * S, (m + 1) * B * S));
    const expGrads = Float64Array.from(grads0.subarray(m * P, (m + 1) * P));
    let expLoss = 0;
    const topk = models[m]!.topk;
    if (topk) {
      const p = (i: number) => params[m * P + i]!;
      const shift = models[m]!.applyBDecToInput ? 1 : 0;
      const pre = new Float64Array(B * S);
      for (let b = 0; b < B; b++) {
        for (let j = 0; j < S; j++) {
          let v = p(layout.bEnc + j);
          for (let d = 0; d < D; d++) {
            v += (x[(m * B + b) * D + d]! - shift * p(layout.bDec + d)) *
              p(layout.wEnc + d * S + j);
          }
          pre[b * S + j] = v;
        }
      }
      const dead = counters[m]!.map((c) => c > window);
      const sel = auxActivations(pre, B, S, dead, topk.kAux);
      const c = topk.auxCoefficient * sel.scale;
      for (let b = 0; b < B && sel.scale > 0; b++) {
        const dr: number[] = [];
        for (let d = 0; d < D; d++) {
          let recon = p(layout.bDec + d);
          let full = p(layout.bDec + d);
          for (let j = 0; j < S; j++) {
            recon += sel.acts[b * S + j]! * p(layout.wDec + j * D + d);
            full += acts[(m * B + b) * S + j]! * p(layout.wDec + j * D + d);
          }
          const e = recon - (x[(m * B + b) * D + d]! - full);
          expLoss += c * e * e / B;
          dr.push(2 * c * e / B);
          expGrads[layout.bDec + d]! += dr[d]!;
        }
        for (let j = 0; j < S; j++) {
          if (!sel.selected[b * S + j]) continue;
          for (let d = 0; d < D; d++) {
            expPre[b * S + j]! += dr[d]! * p(layout.wDec + j * D + d);
            expGrads[layout.wDec + j * D + d]! += sel.acts[b * S + j]! * dr[d]!;
          }
        }
      }
    }
    const tol = { atol: 2e-6, rtol: 1e-5 };
    assertClose(gradPre.subarray(m * B * S, (m + 1) * B * S), expPre, {
      ...tol,
      label: `model ${m} g_pre`,
    });
    assertClose(grads.subarray(m * P, (m + 1) * P), expGrads, {
      ...tol,
      label: `model ${m} grads`,
    });
    const record = losses.subarray(m * LOSS_WORDS, (m + 1) * LOSS_WORDS);
    assertClose([record[LOSS_RECORD.offset.aux]!, record[0]!], [expLoss, 1.5 + expLoss], {
      ...tol,
      label: `model ${m} aux loss and total`,
    });
    if (m === 0 || m === 1) assert.ok(expLoss > 0, `model ${m} has an auxiliary loss`);
  }
});
