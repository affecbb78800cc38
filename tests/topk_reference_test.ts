/**
 * TopK and BatchTopK in the float64 CPU reference (src/reference/topk_reference.ts and
 * sae_reference.ts): hand-computed selections, ties, the threshold update and the dead-latent
 * auxiliary loss; the gradient against central finite differences of an independently written
 * loss (the selection held where it is, away from ties; the auxiliary loss's residual detached).
 */
import assert from "node:assert/strict";
import { resolveSaeConfig } from "../src/sae/config.ts";
import { type ParamLayout, paramLayout } from "../src/sae/layout.ts";
import { type LossPlan, lossPlan } from "../src/sae/loss_plan.ts";
import { referenceLossAndGrad } from "../src/reference/sae_reference.ts";
import {
  advanceDeadCounters,
  auxActivations,
  nextThreshold,
  selectBatchTopK,
  selectTopK,
  type TopKSelection,
} from "../src/reference/topk_reference.ts";
import { assertClose } from "./_gpu.ts";

Deno.test("BatchTopK can give one row every activation and the other none", () => {
  // Two rows, three latents, k = 1: the batch keeps 2 values, both in row 0.
  const acts = Float64Array.from([4, 3, 0.5, 1, 2, 0]);
  selectBatchTopK(acts, 2, 3, 1);
  assert.deepEqual([...acts], [4, 3, 0, 0, 0, 0]);
  // TopK on the same rows keeps one per row.
  const perRow = Float64Array.from([4, 3, 0.5, 1, 2, 0]);
  selectTopK(perRow, 2, 3, 1);
  assert.deepEqual([...perRow], [4, 0, 0, 0, 2, 0]);
});

Deno.test("TopK and BatchTopK break ties by the lower index", () => {
  const row = Float64Array.from([1, 2, 2, 2, 0]);
  selectTopK(row, 1, 5, 2);
  assert.deepEqual([...row], [0, 2, 2, 0, 0]); // latents 1 and 2, not 3
  const batch = Float64Array.from([1, 2, 2, 1]); // rows [1, 2], [2, 1]; k = 1 keeps 2 values
  selectBatchTopK(batch, 2, 2, 1);
  assert.deepEqual([...batch], [0, 2, 2, 0]); // both 2s; the 1s tie below and are dropped
  const tiesAcrossRows = Float64Array.from([1, 1, 1, 1]); // k = 1 keeps the first 2 in row order
  selectBatchTopK(tiesAcrossRows, 2, 2, 1);
  assert.deepEqual([...tiesAcrossRows], [1, 1, 0, 0]);
  const fractional = Float64Array.from([1, 4, 3, 2]); // k = 0.5 over 2 rows keeps ⌊1⌋ value
  selectBatchTopK(fractional, 2, 2, 0.5);
  assert.deepEqual([...fractional], [0, 4, 0, 0]);
});

Deno.test("the BatchTopK threshold moves 1% toward the smallest positive kept activation", () => {
  let theta = 0;
  theta = nextThreshold(theta, [0, 2, 0.5, 0], 0.01);
  assert.equal(theta, 0.005);
  theta = nextThreshold(theta, [3, 1], 0.01);
  assert.equal(theta, 0.99 * 0.005 + 0.01 * 1);
  assert.equal(nextThreshold(theta, [0, 0, 0], 0.01), theta); // nothing kept: unchanged
});

Deno.test("dead counters reset on firing and count up otherwise", () => {
  const steps = Uint32Array.from([0, 7, 1000]);
  advanceDeadCounters(steps, [0, 0, 1, 0, 0, 0], 2, 3);
  assert.deepEqual([...steps], [1, 8, 0]);
});

Deno.test("the auxiliary loss on one dead latent, by hand", () => {
  // dIn 2, dSae 2, one row. Latent 0 fires (kept), latent 1 is dead; k_aux 1, coefficient 0.5.
  const layout = paramLayout(2, 2);
  const p = new Float64Array(layout.size);
  p.set([1, -1, 0, 1], layout.wEnc); // W_enc [2][2]: pre = [x0, -x0 + x1]
  p.set([1, 0, 0, 1], layout.wDec); // W_dec rows e0, e1
  const x = [2, 1]; // pre = [2, -1]: latent 1 negative, still chosen by the aux loss
  const config = resolveSaeConfig({ dIn: 2, dSae: 2, architecture: "topk", k: 1 });
  const selection: TopKSelection = {
    architecture: "topk",
    k: 1,
    aux: { dead: [false, true], kAux: 1, coefficient: 0.5 },
  };
  const r = referenceLossAndGrad(p, layout, lossPlan(config), true, x, 1, selection);
  // x̂ = [2, 0], residual = [0, 1]; aux recon = -1·e1 = [0, -1]; error [0, -2]; loss 0.5·4 = 2
  assert.deepEqual([...r.acts], [2, 0]);
  assert.equal(r.auxLoss, 2);
  assert.equal(r.loss, r.termRecon.reduce((a, c) => a + c, 0) + 2);
  // d aux / d pre_1 = 2·0.5·(e · W_dec[1]) = 1·(-2) = -2, so dW_enc[:, 1] gets x·(-2) - the
  // recon term adds nothing there (latent 1 not kept).
  assert.deepEqual([r.grad[layout.wEnc + 1], r.grad[layout.wEnc + 3]], [-4, -2]);
  // No dead latent: no aux loss.
  const alive = { ...selection, aux: { ...selection.aux!, dead: [false, false] } };
  assert.equal(referenceLossAndGrad(p, layout, lossPlan(config), true, x, 1, alive).auxLoss, 0);
  // scale = min(dead / kAux, 1): one dead latent with kAux 4 scales the loss by 1/4
  const { scale } = auxActivations(Float64Array.from([2, -1]), 1, 2, [false, true], 4);
  assert.equal(scale, 0.25);
});

/** Test-local seeded uniforms in [0, 1) (a 32-bit LCG; independent of the library's PRNG). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/** Pre-activations [B][S], written out. */
function encode(p: Float64Array, layout: ParamLayout, x: Float64Array, batch: number): number[] {
  const { dIn: D, dSae: S } = layout;
  const out: number[] = [];
  for (let b = 0; b < batch; b++) {
    for (let j = 0; j < S; j++) {
      let sum = p[layout.bEnc + j]!;
      for (let i = 0; i < D; i++) {
        sum += (x[b * D + i]! - p[layout.bDec + i]!) * p[layout.wEnc + i * S + j]!;
      }
      out.push(sum);
    }
  }
  return out;
}

/**
 * The loss written independently: the kept set and the auxiliary selection are fixed masks (the
 * selection is locally constant away from ties), the auxiliary residual comes from `frozen`.
 */
function maskedLoss(
  p: Float64Array,
  frozen: Float64Array,
  layout: ParamLayout,
  plan: LossPlan,
  x: Float64Array,
  batch: number,
  kept: boolean[],
  auxPicked: boolean[],
  auxMult: number,
): number {
  const { dIn: D, dSae: S } = layout;
  const decode = (q: Float64Array, a: number[], end: number, b: number) =>
    Array.from({ length: D }, (_, d) => {
      let v = q[layout.bDec + d]!;
      for (let j = 0; j < end; j++) v += a[b * S + j]! * q[layout.wDec + j * D + d]!;
      return v;
    });
  const pre = encode(p, layout, x, batch);
  const acts = pre.map((v, i) => kept[i] ? Math.max(v, 0) : 0);
  let total = 0;
  for (const term of plan.terms) {
    for (let b = 0; b < batch; b++) {
      const r = decode(p, acts, term.end, b);
      total += term.reconMult * r.reduce((a, v, d) => a + (v - x[b * D + d]!) ** 2, 0) / batch;
    }
  }
  const frozenPre = encode(frozen, layout, x, batch);
  const frozenActs = frozenPre.map((v, i) => kept[i] ? Math.max(v, 0) : 0);
  const auxActs = pre.map((v, i) => auxPicked[i] ? v : 0);
  for (let b = 0; b < batch; b++) {
    const full = decode(frozen, frozenActs, S, b);
    const r = decode(p, auxActs, S, b);
    total += auxMult * r.reduce((a, v, d) => a + (v - (x[b * D + d]! - full[d]!)) ** 2, 0) /
      batch;
  }
  return total;
}

for (const architecture of ["topk", "batchtopk"] as const) {
  Deno.test(`${architecture}: the gradient matches finite differences (aux loss on)`, () => {
    const D = 5;
    const S = 6;
    const B = 5;
    const k = 2;
    const layout = paramLayout(D, S);
    const config = resolveSaeConfig({
      dIn: D,
      dSae: S,
      architecture,
      k,
      matryoshkaSteps: [2, 6],
      matryoshkaInnerLossMultipliers: [0.5, 1],
      skipOuterLoss: true,
    });
    const plan = lossPlan(config);
    const dead = [false, false, true, false, true, true];
    const aux = { dead, kAux: 2, coefficient: 0.25 };
    let tried = 0;
    for (let seed = 1; tried < 3 && seed < 500; seed++) {
      const rand = lcg(seed);
      const p = Float64Array.from({ length: layout.size }, () => 2 * rand() - 1);
      const x = Float64Array.from({ length: B * D }, () => 3 * rand() - 1.5);
      const pre = encode(p, layout, x, B);
      // Away from ties and kinks: every two pre-activations and every pre-activation and 0
      // at least 1e-3 apart (the selection is then locally constant under h = 1e-6).
      const sorted = [...pre, 0].sort((a, b) => a - b);
      if (sorted.some((v, i) => i > 0 && v - sorted[i - 1]! < 1e-3)) continue;
      const selection: TopKSelection = { architecture, k, aux };
      const r = referenceLossAndGrad(p, layout, plan, true, x, B, selection);
      const kept = [...r.acts].map((v) => v > 0);
      if (!kept.some((v) => v) || kept.every((v) => v)) continue;
      const picked = auxActivations(Float64Array.from(pre), B, S, dead, aux.kAux).selected;
      const auxPicked = [...picked].map((v) => v === 1);
      const mult = aux.coefficient * Math.min(3 / aux.kAux, 1);
      const at = (q: Float64Array) => maskedLoss(q, p, layout, plan, x, B, kept, auxPicked, mult);
      assert.ok(Math.abs(at(p) - r.loss) < 1e-12 * Math.max(1, r.loss), "same loss");
      const h = 1e-6;
      const fd = new Float64Array(layout.size);
      for (let i = 0; i < layout.size; i++) {
        const plus = p.slice();
        const minus = p.slice();
        plus[i]! += h;
        minus[i]! -= h;
        fd[i] = (at(plus) - at(minus)) / (2 * h);
      }
      assertClose(r.grad, fd, { atol: 1e-6, rtol: 1e-5, label: `${architecture} gradient` });
      tried++;
    }
    assert.equal(tried, 3, "found three tie-free problems");
  });
}

Deno.test("TopK and BatchTopK SAEs have no sparsity term; standard keeps its L1", () => {
  const base = { dIn: 4, dSae: 4, matryoshkaSteps: [1, 4], l1Coefficient: 0.1 };
  for (const architecture of ["topk", "batchtopk"] as const) {
    const plan = lossPlan(resolveSaeConfig({ ...base, architecture, k: 2 }));
    assert.ok(plan.terms.every((t) => t.l1Mult === 0 && t.l1End === 0), architecture);
    assert.deepEqual(plan.terms.map((t) => t.reconMult), [1, 1, 1]); // prefixes + outer
  }
  const standard = lossPlan(resolveSaeConfig(base));
  assert.ok(standard.terms.every((t) => t.l1Mult > 0));
});
