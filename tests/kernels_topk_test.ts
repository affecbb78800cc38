/**
 * shaders/topk.wgsl against the float64 reference (src/reference/topk_reference.ts): TopK and
 * BatchTopK selection with many ties, models of every architecture in one dispatch, and the
 * threshold and dead-counter update. Selection and counters are exact; θ to float32 rounding.
 */
import assert from "node:assert/strict";
import { assertClose, gpuTest } from "./_gpu.ts";
import { upload } from "./_kernel_data.ts";
import { readF32, readU32, uploadStorage } from "../src/gpu/buffers.ts";
import { createTopK, type TopKModelSpec, topkStateWords } from "../src/kernels/topk.ts";
import { runOps } from "../src/kernels/kernel_op.ts";
import {
  advanceDeadCounters,
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

gpuTest("topk_select keeps what the reference keeps, ties included", async (gpu) => {
  for (const [B, S] of SHAPES) {
    const models: TopKModelSpec[] = [
      { architecture: "topk", k: 1, thresholdLr: 0.01 },
      { architecture: "batchtopk", k: 1, thresholdLr: 0.01 },
      { architecture: "standard", k: 1, thresholdLr: 0.01 },
      { architecture: "topk", k: Math.min(3, S), thresholdLr: 0.01 },
      { architecture: "batchtopk", k: Math.min(2, S), thresholdLr: 0.01 },
      { architecture: "batchtopk", k: S, thresholdLr: 0.01 }, // keeps everything
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
    models.forEach((model, m) => {
      const expected = Float64Array.from(acts.subarray(m * n, (m + 1) * n));
      if (model.architecture === "topk") selectTopK(expected, B, S, model.k);
      if (model.architecture === "batchtopk") selectBatchTopK(expected, B, S, model.k);
      assertClose(got.subarray(m * n, (m + 1) * n), expected, {
        atol: 0,
        rtol: 0,
        label: `B ${B}, S ${S}, model ${m} (${model.architecture}, k ${model.k})`,
      });
    });
  }
});

gpuTest("topk_state moves θ and the dead counters as the reference does", async (gpu) => {
  const B = 40;
  const S = 6;
  const n = B * S;
  const models: TopKModelSpec[] = [
    { architecture: "batchtopk", k: 2, thresholdLr: 0.01 },
    { architecture: "topk", k: 2, thresholdLr: 0.01 }, // counters only, no θ
    { architecture: "batchtopk", k: 2, thresholdLr: 0.5 }, // diverged: left alone
    { architecture: "standard", k: 1, thresholdLr: 0.01 }, // left alone
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
