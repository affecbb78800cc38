/**
 * Tests of the CPU metrics: encoder/decoder cosine similarities against hand-computed values, and
 * the MCC matching (identity, permutation invariance, a known assignment, rectangular inputs,
 * agreement with brute force over all matchings).
 */
import assert from "node:assert/strict";
import { decoderCosSims, encoderCosSims } from "../src/metrics/cosine.ts";
import { mcc } from "../src/metrics/matching.ts";
import { paramLayout, paramViews } from "../src/sae/layout.ts";
import { assertClose } from "./_gpu.ts";

/** An SAE (dIn 3, dSae 2) whose encoder columns and decoder rows are given by hand. */
function handSae() {
  const layout = paramLayout(3, 2);
  const params = new Float32Array(layout.size);
  const v = paramViews(params, layout);
  // W_enc [3][2]: column 0 = (1, 1, 0), column 1 = (0, 2, 0).
  v.wEnc.set([1, 0, 1, 2, 0, 0]);
  // W_dec [2][3]: row 0 = (3, 0, 4), row 1 = (0, 0, -1).
  v.wDec.set([3, 0, 4, 0, 0, -1]);
  v.bEnc.set([5, 5]); // biases must not matter
  v.bDec.set([7, 7, 7]);
  return { layout, params };
}

// Features: e0 = (1, 0, 0), e1 = (0, 3, 4)/5 scaled by 2 (norm must not matter).
const embedding = new Float32Array([1, 0, 0, 0, 1.2, 1.6]);

Deno.test("encoderCosSims matches hand-computed cosines of W_enc columns", () => {
  const { layout, params } = handSae();
  const sims = encoderCosSims(params, layout, embedding, 2);
  // cos((1,1,0), e0) = 1/√2; cos((1,1,0), (0,.6,.8)) = .6/√2; column 1 = ŷ: 0 and 0.6.
  assertClose(sims.flat(), [Math.SQRT1_2, 0.6 * Math.SQRT1_2, 0, 0.6], {
    atol: 1e-7,
    rtol: 0,
    label: "encoder cos sims",
  });
  assert.equal(sims.length, 2);
});

Deno.test("decoderCosSims matches hand-computed cosines of W_dec rows", () => {
  const { layout, params } = handSae();
  const sims = decoderCosSims(params, layout, embedding, 2);
  // (3,0,4)/5: with e0 0.6, with (0,.6,.8) 0.64; (0,0,-1): 0 and -0.8.
  assertClose(sims.flat(), [0.6, 0.64, 0, -0.8], {
    atol: 1e-7,
    rtol: 0,
    label: "decoder cos sims",
  });
});

Deno.test("cosine sims refuse an embedding of the wrong size", () => {
  const { layout, params } = handSae();
  assert.throws(
    () => encoderCosSims(params, layout, new Float32Array(5), 2),
    /embedding: expected \[2\]\[3\] = 6 floats, got 5/,
  );
});

Deno.test("MCC is 1 with the identity assignment for identical directions", () => {
  const eye = [[1, 0, 0], [0, 1, 0], [0, 0, 1]];
  const result = mcc(eye);
  assert.equal(result.mcc, 1);
  assert.deepEqual(result.assignment, [0, 1, 2]);
});

Deno.test("MCC is unchanged when the SAE's latents are permuted", () => {
  const sims = [
    [0.9, 0.1, -0.3, 0.2],
    [0.2, 0.7, 0.4, 0.0],
    [0.1, 0.5, 0.8, -0.1],
    [0.3, 0.0, 0.2, 0.6],
  ];
  const base = mcc(sims);
  const perm = [2, 0, 3, 1]; // new latent i = old latent perm[i]
  const permuted = mcc(perm.map((p) => sims[p]!));
  assert.ok(Math.abs(base.mcc - permuted.mcc) < 1e-15, `${base.mcc} vs ${permuted.mcc}`);
  // Each feature is matched to the same old latent.
  assert.deepEqual(permuted.assignment.map((l) => perm[l]), base.assignment);
});

Deno.test("MCC finds the known optimal assignment where greedy matching fails", () => {
  // Greedy takes (latent 0, feature 0) = 0.9 and then 0.1: 1.0 in total. Optimal: 0.8 + 0.8.
  const result = mcc([[0.9, 0.8], [0.8, 0.1]]);
  assert.deepEqual(result.assignment, [1, 0]);
  assert.ok(Math.abs(result.mcc - 0.8) < 1e-15);
});

Deno.test("MCC averages over min(dSae, nFeatures) matched pairs for rectangular inputs", () => {
  // 3 latents, 2 features: latent 1 is left out.
  const wide = mcc([[0.2, 0.9], [0.1, 0.1], [0.7, 0.3]]);
  assert.deepEqual(wide.assignment, [2, 0]);
  assert.ok(Math.abs(wide.mcc - 0.8) < 1e-15);
  // 1 latent, 3 features: only the best feature is matched, the others get -1.
  const narrow = mcc([[0.3, -0.2, 0.6]]);
  assert.deepEqual(narrow.assignment, [-1, -1, 0]);
  assert.equal(narrow.mcc, 0.6);
});

/** The best total over all injective maps from the smaller side to the larger, by brute force. */
function bruteForceBest(sims: number[][]): number {
  const rows = sims.length;
  const cols = sims[0]!.length;
  const pairs = Math.min(rows, cols);
  let best = -Infinity;
  const used = new Array(Math.max(rows, cols)).fill(false);
  const go = (i: number, total: number) => {
    if (i === pairs) {
      best = Math.max(best, total);
      return;
    }
    for (let j = 0; j < used.length; j++) {
      if (used[j]) continue;
      used[j] = true;
      go(i + 1, total + (rows <= cols ? sims[i]![j]! : sims[j]![i]!));
      used[j] = false;
    }
  };
  go(0, 0);
  return best / pairs;
}

Deno.test("MCC equals the brute-force optimum on random signed matrices", () => {
  let seed = 12345;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648 * 2 - 1;
  };
  for (const [rows, cols] of [[4, 4], [5, 3], [3, 6], [6, 6], [1, 4]] as const) {
    for (let trial = 0; trial < 20; trial++) {
      const sims = Array.from({ length: rows }, () => Array.from({ length: cols }, rand));
      const got = mcc(sims).mcc;
      const want = bruteForceBest(sims);
      assert.ok(Math.abs(got - want) < 1e-12, `${rows}×${cols} trial ${trial}: ${got} vs ${want}`);
    }
  }
});

Deno.test("MCC refuses non-finite entries, naming the entry", () => {
  assert.throws(() => mcc([[1, NaN]]), /\[latent 0\]\[feature 1\] is NaN/);
});
