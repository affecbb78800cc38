/**
 * The toy model: the orthogonalised embedding (gradient, near-orthogonality, target cosine,
 * reproducibility) and `embed` on the GPU against a float64 host product.
 */
import assert from "node:assert/strict";
import { orthogonalityLoss, orthogonalize, ToyModel } from "../src/toy/toy_model.ts";
import { sampleBatchCpu } from "../src/toy/cpu_sampler.ts";
import { notebookTree } from "../src/toy/notebook_trees.ts";
import { Rng } from "../src/toy/rng.ts";
import { assertClose, gpuTest } from "./_gpu.ts";

function cosines(e: ArrayLike<number>, n: number, d: number): number[][] {
  const dot = (i: number, j: number) => {
    let s = 0;
    for (let k = 0; k < d; k++) s += e[i * d + k]! * e[j * d + k]!;
    return s;
  };
  return Array.from(
    { length: n },
    (_, i) => Array.from({ length: n }, (_, j) => dot(i, j) / Math.sqrt(dot(i, i) * dot(j, j))),
  );
}

Deno.test("the orthogonality loss gradient matches central finite differences", () => {
  const n = 3, d = 5, target = 0.2;
  const e = new Rng(1).normals(n * d);
  const { grad } = orthogonalityLoss(e, n, d, target);
  const h = 1e-6;
  const numeric = Array.from(e, (_, i) => {
    const plus = e.slice(), minus = e.slice();
    plus[i]! += h;
    minus[i]! -= h;
    return (orthogonalityLoss(plus, n, d, target).loss -
      orthogonalityLoss(minus, n, d, target).loss) /
      (2 * h);
  });
  assertClose(grad, numeric, { atol: 1e-6, rtol: 1e-6, label: "gradient" });
});

Deno.test("4 features in 50 dims come out unit-norm with off-diagonal |cos| < 1e-3", () => {
  const model = new ToyModel({ nFeatures: 4, hiddenDim: 50, seed: 0 });
  assert.equal(model.embedding.length, 4 * 50);
  const cos = cosines(model.embedding64, 4, 50);
  for (let i = 0; i < 4; i++) {
    let norm = 0;
    for (let k = 0; k < 50; k++) norm += model.embedding64[i * 50 + k]! ** 2;
    assert.ok(Math.abs(norm - 1) < 1e-12, `row ${i} norm² ${norm}`);
    for (let j = 0; j < 4; j++) {
      if (i !== j) assert.ok(Math.abs(cos[i]![j]!) < 1e-3, `cos(${i}, ${j}) = ${cos[i]![j]}`);
    }
  }
});

Deno.test("targetCosSim sets the pairwise cosine similarity", () => {
  const e = orthogonalize(4, 50, { seed: 3, targetCosSim: 0.3 });
  const cos = cosines(e, 4, 50);
  for (let i = 0; i < 4; i++) {
    for (let j = 0; j < 4; j++) {
      if (i !== j) assert.ok(Math.abs(cos[i]![j]! - 0.3) < 1e-4, `cos(${i}, ${j}) = ${cos[i]![j]}`);
    }
  }
});

Deno.test("the embedding is a pure function of the seed", () => {
  const a = orthogonalize(4, 20, { seed: 9, steps: 50 });
  assert.deepEqual(orthogonalize(4, 20, { seed: 9, steps: 50 }), a);
  assert.notDeepEqual(orthogonalize(4, 20, { seed: 10, steps: 50 }), a);
});

gpuTest("embed on the GPU equals features @ E computed in float64", async (gpu) => {
  const model = new ToyModel({ nFeatures: 4, hiddenDim: 50, seed: 1, steps: 100 });
  const batch = 300;
  const features = sampleBatchCpu(notebookTree(), { seed: 4, step: 0, batchSize: batch });
  const x = await model.embed(features, gpu);
  const expected = new Float64Array(batch * 50);
  for (let b = 0; b < batch; b++) {
    for (let d = 0; d < 50; d++) {
      let s = 0;
      for (let f = 0; f < 4; f++) s += features[b * 4 + f]! * model.embedding[f * 50 + d]!;
      expected[b * 50 + d] = s;
    }
  }
  assertClose(x, expected, { atol: 1e-6, rtol: 1e-6, label: "x" });
  assert.ok(expected.some((v) => v !== 0));
});
