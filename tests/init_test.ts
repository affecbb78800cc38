/**
 * SAE initialisation (src/sae/init.ts): the toy-model init places the true feature directions,
 * the random init is SAELens's (shapes, bounds, transpose, unit rows) and reproducible per seed,
 * and `b_dec` is the batch's mean or geometric median.
 */
import assert from "node:assert/strict";
import { resolveSaeConfig } from "../src/sae/config.ts";
import { paramLayout } from "../src/sae/layout.ts";
import { initBDec, initSaeRandom, initSaeToMatchModel } from "../src/sae/init.ts";

/** Test-local seeded uniforms in [0, 1). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

function randomEmbedding(nFeatures: number, dIn: number, seed: number): Float32Array {
  const rand = lcg(seed);
  return Float32Array.from({ length: nFeatures * dIn }, () => 2 * rand() - 1);
}

Deno.test("initSaeToMatchModel with noise 0 puts the reordered feature directions in W_enc and W_dec", () => {
  const dIn = 6;
  const nFeatures = 4;
  const layout = paramLayout(dIn, 4);
  const embedding = randomEmbedding(nFeatures, dIn, 1);
  const params = new Float32Array(layout.size).fill(7);
  const ordering = [2, 0, 3, 1];
  initSaeToMatchModel(params, layout, embedding, nFeatures, { featureOrdering: ordering });
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
  const layout = paramLayout(dIn, 4);
  const embedding = randomEmbedding(nFeatures, dIn, 2);
  const params = Float32Array.from({ length: layout.size }, (_, k) => 0.01 * k);
  const before = params.slice();
  initSaeToMatchModel(params, layout, embedding, nFeatures);
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
  const layout = paramLayout(dIn, 2);
  const embedding = randomEmbedding(5, dIn, 3);
  const params = new Float32Array(layout.size);
  initSaeToMatchModel(params, layout, embedding, 5, { featureOrdering: [4, 1, 0, 2, 3] });
  for (let i = 0; i < dIn; i++) {
    assert.equal(params[layout.wEnc + i * 2], embedding[4 * dIn + i]);
    assert.equal(params[layout.wEnc + i * 2 + 1], embedding[1 * dIn + i]);
  }
});

Deno.test("initSaeToMatchModel noise is seeded and of the requested scale", () => {
  const dIn = 50;
  const layout = paramLayout(dIn, 4);
  const embedding = randomEmbedding(4, dIn, 4);
  const run = (seed: number) => {
    const params = new Float32Array(layout.size);
    initSaeToMatchModel(params, layout, embedding, 4, { noiseLevel: 0.1, seed });
    return params;
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
  const layout = paramLayout(3, 2);
  assert.throws(
    () =>
      initSaeToMatchModel(new Float32Array(layout.size), layout, randomEmbedding(2, 3, 1), 2, {
        featureOrdering: [0, 2],
      }),
    /featureOrdering.*got \[0, 2\]/,
  );
});

Deno.test("initSaeRandom is reproducible per seed and differs between seeds", () => {
  const config = resolveSaeConfig({ dIn: 10, dSae: 6 });
  const layout = paramLayout(10, 6);
  const run = (seed: number) => {
    const params = new Float32Array(layout.size).fill(3);
    initSaeRandom(params, layout, config, seed);
    return params;
  };
  assert.deepEqual(run(1), run(1));
  assert.notDeepEqual(run(1), run(2));
});

Deno.test("initSaeRandom draws kaiming-uniform weights and zero biases", () => {
  const dIn = 40;
  const dSae = 30;
  const config = resolveSaeConfig({ dIn, dSae });
  const layout = paramLayout(dIn, dSae);
  const params = new Float32Array(layout.size).fill(3);
  initSaeRandom(params, layout, config, 5);
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
  const layout = paramLayout(dIn, dSae);
  const tied = new Float32Array(layout.size);
  initSaeRandom(
    tied,
    layout,
    resolveSaeConfig({ dIn, dSae, initEncoderAsDecoderTranspose: true }),
    11,
  );
  const normalized = new Float32Array(layout.size);
  initSaeRandom(
    normalized,
    layout,
    resolveSaeConfig({ dIn, dSae, initEncoderAsDecoderTranspose: true, normalizeSaeDecoder: true }),
    11,
  );
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
  const layout = paramLayout(2, 3);
  const params = new Float32Array(layout.size).fill(5);
  const batch = Float32Array.from([1, 2, 3, 4, 5, 9]);
  initBDec(params, layout, "mean", batch);
  assert.deepEqual([...params.subarray(layout.bDec)], [3, 5]);
  initBDec(params, layout, "mean", batch, 2);
  assert.deepEqual([...params.subarray(layout.bDec)], [2, 3]);
  initBDec(params, layout, "zeros");
  assert.deepEqual([...params.subarray(layout.bDec)], [0, 0]);
  assert.equal(params[0], 5, "other tensors untouched");
});

Deno.test("initBDec geometric median of a known point set", () => {
  // A convex quadrilateral's geometric median is where its diagonals cross: the diagonals
  // (0,0)–(3,3) and (2,0)–(0,1) meet at (2/3, 2/3); the mean is (5/4, 1).
  const layout = paramLayout(2, 1);
  const params = new Float32Array(layout.size);
  initBDec(params, layout, "geometric_median", Float32Array.from([0, 0, 2, 0, 3, 3, 0, 1]));
  const [mx, my] = params.subarray(layout.bDec);
  assert.ok(Math.abs(mx! - 2 / 3) < 1e-4 && Math.abs(my! - 2 / 3) < 1e-4, `median (${mx}, ${my})`);
});

Deno.test("initBDec geometric median of collinear points is the middle point", () => {
  const layout = paramLayout(3, 1);
  const params = new Float32Array(layout.size);
  // Points t·(1, 2, −1) for t = 0, 1, 10: the median is the middle one, t = 1.
  const batch = Float32Array.from([0, 0, 0, 1, 2, -1, 10, 20, -10]);
  initBDec(params, layout, "geometric_median", batch);
  const median = [...params.subarray(layout.bDec)];
  [1, 2, -1].forEach((v, d) => assert.ok(Math.abs(median[d]! - v) < 1e-3, `median ${median}`));
});

Deno.test("initBDec refuses mean or geometric median without a batch", () => {
  const layout = paramLayout(2, 1);
  assert.throws(() => initBDec(new Float32Array(layout.size), layout, "mean"), /needs a batch/);
  assert.throws(
    () => initBDec(new Float32Array(layout.size), layout, "mean", new Float32Array(3)),
    /rows must be a positive integer/,
  );
});
