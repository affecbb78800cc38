/**
 * SAE initialisation (src/sae/init.ts): the toy-model init places the true feature directions,
 * the random init is SAELens's (shapes, bounds, transpose, unit rows) and reproducible per seed,
 * and `b_dec` is the batch's mean or geometric median, which training sets from the run's first
 * batches as `bDecInitMethod` says.
 */
import assert from "node:assert/strict";
import type { SaeConfig } from "../src/sae/config.ts";
import { initBDec, initSaeRandom, initSaeToMatchModel } from "../src/sae/init.ts";
import { MatryoshkaSAE } from "../src/sae/sae.ts";
import { B_DEC_INIT_SAMPLES, trainToySaes } from "../src/sae/train.ts";
import { TreeFeatureGenerator } from "../src/toy/tree.ts";
import { ToyModel } from "../src/toy/toy_model.ts";
import { embedCpu, sampleBatchCpu } from "../src/toy/cpu_sampler.ts";
import { assertClose, gpuTest } from "./_gpu.ts";

/** Test-local seeded uniforms in [0, 1). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/** An SAE of the given shape whose parameter block is `params` (adopted, not copied). */
function saeOf(dIn: number, dSae: number, params?: Float32Array, config: Partial<SaeConfig> = {}) {
  return new MatryoshkaSAE({ ...config, dIn, dSae }, params);
}

function randomEmbedding(nFeatures: number, dIn: number, seed: number): Float32Array {
  const rand = lcg(seed);
  return Float32Array.from({ length: nFeatures * dIn }, () => 2 * rand() - 1);
}

Deno.test("initSaeToMatchModel with noise 0 puts the reordered feature directions in W_enc and W_dec", () => {
  const dIn = 6;
  const nFeatures = 4;
  const { params, layout } = saeOf(dIn, 4);
  params.fill(7);
  const embedding = randomEmbedding(nFeatures, dIn, 1);
  const ordering = [2, 0, 3, 1];
  initSaeToMatchModel(saeOf(dIn, 4, params), { embedding, nFeatures }, {
    featureOrdering: ordering,
  });
  for (let c = 0; c < 4; c++) {
    for (let i = 0; i < dIn; i++) {
      const feature = embedding[ordering[c]! * dIn + i]!;
      assert.equal(params[layout.wEnc + i * 4 + c], feature, `W_enc[${i}][${c}]`);
      assert.equal(params[layout.wDec + c * dIn + i], feature, `W_dec[${c}][${i}]`);
    }
  }
  assert.ok(params.subarray(layout.bEnc, layout.bEnc + 4).every((v) => v === 0), "b_enc = 0");
  assert.ok(params.subarray(layout.bDec, layout.bDec + dIn).every((v) => v === 0), "b_dec = 0");
});

Deno.test("initSaeToMatchModel leaves extra encoder columns and copies them into the decoder", () => {
  const dIn = 5;
  const nFeatures = 2;
  const { params, layout } = saeOf(dIn, 4);
  params.forEach((_, k) => params[k] = 0.01 * k);
  const embedding = randomEmbedding(nFeatures, dIn, 2);
  const before = params.slice();
  initSaeToMatchModel(saeOf(dIn, 4, params), { embedding, nFeatures });
  for (let i = 0; i < dIn; i++) {
    for (let c = 0; c < 4; c++) {
      const expected = c < nFeatures ? embedding[c * dIn + i]! : before[layout.wEnc + i * 4 + c]!;
      assert.equal(params[layout.wEnc + i * 4 + c], expected, `W_enc[${i}][${c}]`);
      assert.equal(params[layout.wDec + c * dIn + i], expected, `W_dec[${c}][${i}]`);
    }
  }
});

Deno.test("initSaeToMatchModel uses only the first dSae features when there are more", () => {
  const dIn = 3;
  const { params, layout } = saeOf(dIn, 2);
  const embedding = randomEmbedding(5, dIn, 3);
  initSaeToMatchModel(saeOf(dIn, 2, params), { embedding, nFeatures: 5 }, {
    featureOrdering: [4, 1, 0, 2, 3],
  });
  for (let i = 0; i < dIn; i++) {
    assert.equal(params[layout.wEnc + i * 2], embedding[4 * dIn + i]);
    assert.equal(params[layout.wEnc + i * 2 + 1], embedding[1 * dIn + i]);
  }
});

Deno.test("initSaeToMatchModel noise is seeded and of the requested scale", () => {
  const dIn = 50;
  const embedding = randomEmbedding(4, dIn, 4);
  const { layout } = saeOf(dIn, 4);
  const run = (seed: number) => {
    const sae = saeOf(dIn, 4);
    initSaeToMatchModel(sae, { embedding, nFeatures: 4 }, { noiseLevel: 0.1, seed });
    return sae.params;
  };
  const a = run(9);
  assert.deepEqual(a, run(9));
  assert.notDeepEqual(a, run(10));
  let sq = 0;
  for (let i = 0; i < dIn; i++) {
    for (let c = 0; c < 4; c++) sq += (a[layout.wEnc + i * 4 + c]! - embedding[c * dIn + i]!) ** 2;
  }
  const std = Math.sqrt(sq / (4 * dIn));
  assert.ok(std > 0.08 && std < 0.12, `noise std ${std}`);
});

Deno.test("initSaeToMatchModel refuses a bad featureOrdering", () => {
  assert.throws(
    () =>
      initSaeToMatchModel(saeOf(3, 2), { embedding: randomEmbedding(2, 3, 1), nFeatures: 2 }, {
        featureOrdering: [0, 2],
      }),
    /featureOrdering.*got \[0, 2\]/,
  );
});

Deno.test("initSaeRandom is reproducible per seed and differs between seeds", () => {
  const run = (seed: number) => {
    const sae = saeOf(10, 6);
    sae.params.fill(3);
    initSaeRandom(sae, seed);
    return sae.params;
  };
  assert.deepEqual(run(1), run(1));
  assert.notDeepEqual(run(1), run(2));
});

Deno.test("initSaeRandom draws kaiming-uniform weights and zero biases", () => {
  const dIn = 40;
  const dSae = 30;
  const sae = saeOf(dIn, dSae);
  const { params, layout } = sae;
  params.fill(3);
  initSaeRandom(sae, 5);
  const wDec = params.subarray(layout.wDec, layout.wDec + dSae * dIn);
  const wEnc = params.subarray(layout.wEnc, layout.wEnc + dIn * dSae);
  const check = (name: string, w: Float32Array, bound: number) => {
    const max = Math.max(...w.map(Math.abs));
    assert.ok(max <= bound && max > 0.9 * bound, `${name}: max |w| ${max}, bound ${bound}`);
    // U(−a, a) has variance a²/3.
    const variance = w.reduce((acc, v) => acc + v * v, 0) / w.length;
    assert.ok(Math.abs(variance / (bound * bound / 3) - 1) < 0.1, `${name}: variance ${variance}`);
  };
  check("W_dec", wDec, Math.sqrt(6 / dIn));
  check("W_enc", wEnc, Math.sqrt(6 / dSae));
  assert.ok(params.subarray(layout.bEnc, layout.bEnc + dSae).every((v) => v === 0));
  assert.ok(params.subarray(layout.bDec, layout.bDec + dIn).every((v) => v === 0));
});

Deno.test("initSaeRandom ties W_enc to W_dec's transpose and normalises decoder rows when asked", () => {
  const dIn = 7;
  const dSae = 5;
  const tiedSae = saeOf(dIn, dSae, undefined, { initEncoderAsDecoderTranspose: true });
  initSaeRandom(tiedSae, 11);
  const normalizedSae = saeOf(dIn, dSae, undefined, {
    initEncoderAsDecoderTranspose: true,
    normalizeSaeDecoder: true,
  });
  initSaeRandom(normalizedSae, 11);
  const { layout, params: tied } = tiedSae;
  const normalized = normalizedSae.params;
  for (let j = 0; j < dSae; j++) {
    let sq = 0;
    for (let i = 0; i < dIn; i++) {
      const dec = tied[layout.wDec + j * dIn + i]!;
      assert.equal(tied[layout.wEnc + i * dSae + j], dec, `W_enc[${i}][${j}]`);
      // The encoder keeps the unnormalised transpose; only the decoder rows are rescaled.
      assert.equal(normalized[layout.wEnc + i * dSae + j], dec);
      sq += normalized[layout.wDec + j * dIn + i]! ** 2;
    }
    assert.ok(Math.abs(Math.sqrt(sq) - 1) < 1e-6, `row ${j} norm ${Math.sqrt(sq)}`);
  }
});

Deno.test("initBDec zeros, mean", () => {
  const sae = saeOf(2, 3, undefined, { bDecInitMethod: "mean" });
  const { params, layout } = sae;
  params.fill(5);
  const batch = Float32Array.from([1, 2, 3, 4, 5, 9]);
  initBDec(sae, batch);
  assert.deepEqual([...params.subarray(layout.bDec)], [3, 5]);
  initBDec(sae, batch.subarray(0, 4));
  assert.deepEqual([...params.subarray(layout.bDec)], [2, 3]);
  initBDec(sae, batch, "zeros");
  assert.deepEqual([...params.subarray(layout.bDec)], [0, 0]);
  assert.equal(params[0], 5, "other tensors untouched");
});

Deno.test("initBDec geometric median of a known point set", () => {
  // A convex quadrilateral's geometric median is where its diagonals cross: the diagonals
  // (0,0)–(3,3) and (2,0)–(0,1) meet at (2/3, 2/3); the mean is (5/4, 1).
  const sae = saeOf(2, 1);
  const { params, layout } = sae;
  initBDec(sae, Float32Array.from([0, 0, 2, 0, 3, 3, 0, 1]), "geometric_median");
  const [mx, my] = params.subarray(layout.bDec);
  assert.ok(Math.abs(mx! - 2 / 3) < 1e-4 && Math.abs(my! - 2 / 3) < 1e-4, `median (${mx}, ${my})`);
});

Deno.test("initBDec geometric median of collinear points is the middle point", () => {
  const sae = saeOf(3, 1);
  const { params, layout } = sae;
  // Points t·(1, 2, −1) for t = 0, 1, 10: the median is the middle one, t = 1.
  const batch = Float32Array.from([0, 0, 0, 1, 2, -1, 10, 20, -10]);
  initBDec(sae, batch, "geometric_median");
  const median = [...params.subarray(layout.bDec)];
  [1, 2, -1].forEach((v, d) => assert.ok(Math.abs(median[d]! - v) < 1e-3, `median ${median}`));
});

Deno.test("initBDec refuses mean or geometric median without a batch", () => {
  assert.throws(() => initBDec(saeOf(2, 1), undefined, "mean"), /needs a batch/);
  assert.throws(
    () => initBDec(saeOf(2, 1), new Float32Array(3), "mean"),
    /whole number of rows of dIn = 2/,
  );
});

/** The mean and (Weiszfeld) geometric median of `rows` × `dim` points, in float64, test-local. */
function meanAndMedian(x: Float32Array, dim: number): { mean: number[]; median: number[] } {
  const rows = x.length / dim;
  const mean = Array.from({ length: dim }, (_, d) => {
    let s = 0;
    for (let r = 0; r < rows; r++) s += x[r * dim + d]!;
    return s / rows;
  });
  let median = mean.slice();
  for (let iter = 0; iter < 200; iter++) {
    const next = new Array(dim).fill(0);
    let total = 0;
    for (let r = 0; r < rows; r++) {
      let sq = 0;
      for (let d = 0; d < dim; d++) sq += (x[r * dim + d]! - median[d]!) ** 2;
      const w = 1 / Math.max(Math.sqrt(sq), 1e-6);
      total += w;
      for (let d = 0; d < dim; d++) next[d] += w * x[r * dim + d]!;
    }
    median = next.map((v) => v / total);
  }
  return { mean, median };
}

gpuTest(
  "training sets b_dec by bDecInitMethod from the run's first training batches",
  async (gpu) => {
    // A tree with magnitude noise, so mean and median differ and both differ from 0.
    const tree = new TreeFeatureGenerator({
      activeProb: 1,
      isReadOut: false,
      children: [
        { activeProb: 0.6, magnitudeMean: 1, magnitudeStd: 0.3 },
        { activeProb: 0.3, magnitudeMean: 2, magnitudeStd: 0.5 },
        { activeProb: 0.2 },
      ],
    });
    const dIn = 8;
    const model = new ToyModel({ nFeatures: tree.nFeatures, hiddenDim: dIn, seed: 1 });
    const batchSize = 1000; // 5 batches cover the 4,096 samples
    const seed = 3;
    const steps = Math.ceil(B_DEC_INIT_SAMPLES / batchSize);
    const x = new Float32Array(steps * batchSize * dIn);
    for (let step = 0; step < steps; step++) {
      const features = sampleBatchCpu(tree, { seed, step, batchSize });
      const shape = { groups: 1, batch: batchSize, nFeatures: tree.nFeatures, dIn };
      x.set(embedCpu(features, model.embedding, shape), step * batchSize * dIn);
    }
    const expected = meanAndMedian(x, dIn);
    const saes = (["zeros", "mean", "geometric_median"] as const).map((bDecInitMethod) => {
      const sae = saeOf(dIn, 3, undefined, { bDecInitMethod });
      initSaeRandom(sae, 4);
      sae.bDec.fill(0.5); // zeros must leave what the initialisation set
      return sae;
    });
    // lr 0: the one step leaves every parameter where the initialisation put it.
    await trainToySaes(saes.map((sae) => ({ sae, model, tree, seed })), {
      steps: 1,
      batchSize,
      lr: 0,
      quiet: true,
    }, gpu);
    assert.deepEqual([...saes[0]!.bDec], new Array(dIn).fill(0.5), "zeros: b_dec untouched");
    assertClose(saes[1]!.bDec, expected.mean, { atol: 1e-6, rtol: 1e-5, label: "mean" });
    assertClose(saes[2]!.bDec, expected.median, { atol: 1e-4, rtol: 1e-4, label: "median" });
    const gap = Math.hypot(...expected.mean.map((m, d) => m - expected.median[d]!));
    assert.ok(gap > 1e-2, `mean and median must differ for the test to tell them apart (${gap})`);
  },
);
