/**
 * The float64 CPU reference (src/reference/) against independent computations: the analytic
 * gradient against central finite differences of a separately written loss (which holds the
 * delta loss's detached parts fixed, the meaning of a stop-gradient), the notebook's standard SAE
 * loss against a hand computation, and the optimiser step against torch's formulas by hand.
 */
import assert from "node:assert/strict";
import { NOTEBOOK_SAE_CONFIG, resolveSaeConfig, type SaeConfig } from "../src/sae/config.ts";
import { type ParamLayout, paramLayout } from "../src/sae/layout.ts";
import { type LossPlan, lossPlan } from "../src/sae/loss_plan.ts";
import { referenceLossAndGrad } from "../src/reference/sae_reference.ts";
import {
  newAdamState,
  referenceOptimizerStep,
  referenceTrainStep,
} from "../src/reference/optimizer_reference.ts";
import type { OptimizerSettings } from "../src/sae/train_settings.ts";
import { assertClose } from "./_gpu.ts";

/** Test-local seeded uniforms in [0, 1) (a 32-bit LCG; independent of the library's PRNG). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/** Pre-activations computed directly (row b, latent j), for the kink check. */
function preActivations(
  params: Float64Array,
  layout: ParamLayout,
  x: Float64Array,
  batch: number,
  applyBDec: boolean,
): number[] {
  const { dIn: D, dSae: S } = layout;
  const out: number[] = [];
  for (let b = 0; b < batch; b++) {
    for (let j = 0; j < S; j++) {
      let sum = params[layout.bEnc + j]!;
      for (let i = 0; i < D; i++) {
        const xin = x[b * D + i]! - (applyBDec ? params[layout.bDec + i]! : 0);
        sum += xin * params[layout.wEnc + i * S + j]!;
      }
      out.push(sum);
    }
  }
  return out;
}

/**
 * Random parameters and inputs with every pre-activation at least 1e-3 away from 0 (so central
 * differences with h = 1e-6 never cross a ReLU kink) and both active and inactive latents.
 */
function randomProblem(
  layout: ParamLayout,
  batch: number,
  applyBDec: boolean,
  seed: number,
): { params: Float64Array; x: Float64Array } {
  for (let attempt = 0; attempt < 1000; attempt++) {
    const rand = lcg(seed * 7919 + attempt);
    const params = Float64Array.from({ length: layout.size }, () => 2 * rand() - 1);
    const x = Float64Array.from({ length: batch * layout.dIn }, () => 3 * rand() - 1.5);
    const pre = preActivations(params, layout, x, batch, applyBDec);
    const minDistance = Math.min(...pre.map(Math.abs));
    const active = pre.filter((v) => v > 0).length;
    if (minDistance >= 1e-3 && active >= pre.length / 4 && active <= (3 * pre.length) / 4) {
      return { params, x };
    }
  }
  throw new Error("no kink-free random problem found");
}

/**
 * The loss of `plan`, written independently of the reference: the decoded contribution of
 * latents below each term's `detachBelow` is taken from `frozen` (held fixed), everything else
 * from `params`. At params = frozen this is the loss; its derivative in `params` is the gradient
 * the stop-gradient semantics define.
 */
function lossWithFrozen(
  params: Float64Array,
  frozen: Float64Array,
  layout: ParamLayout,
  plan: LossPlan,
  applyBDec: boolean,
  x: Float64Array,
  batch: number,
): number {
  const { dIn: D, dSae: S } = layout;
  const encode = (p: Float64Array): number[][] =>
    Array.from({ length: batch }, (_, b) =>
      Array.from({ length: S }, (_, j) => {
        let sum = p[layout.bEnc + j]!;
        for (let i = 0; i < D; i++) {
          sum += (x[b * D + i]! - (applyBDec ? p[layout.bDec + i]! : 0)) *
            p[layout.wEnc + i * S + j]!;
        }
        return Math.max(sum, 0);
      }));
  const live = encode(params);
  const held = encode(frozen);
  const row = (p: Float64Array, j: number) =>
    Array.from({ length: D }, (_, d) => p[layout.wDec + j * D + d]!);
  const norm = (v: number[]) => Math.sqrt(v.reduce((a, c) => a + c * c, 0));
  let total = 0;
  for (const term of plan.terms) {
    let recon = 0;
    let sparsity = 0;
    for (let b = 0; b < batch; b++) {
      const e = Array.from(
        { length: D },
        (_, d) => params[layout.bDec + d]! - x[b * D + d]!,
      );
      for (let j = 0; j < term.end; j++) {
        const source = j < term.detachBelow ? frozen : params;
        const a = j < term.detachBelow ? held[b]![j]! : live[b]![j]!;
        const w = row(source, j);
        for (let d = 0; d < D; d++) e[d]! += a * w[d]!;
      }
      recon += term.reconKind === "mse" ? e.reduce((acc, v) => acc + v * v, 0) : norm(e);
      const v: number[] = [];
      for (let j = term.l1Start; j < term.l1End; j++) {
        v.push(live[b]![j]! * (plan.l1ByDecoderNorm ? norm(row(params, j)) : 1));
      }
      sparsity += v.reduce((acc, c) => acc + Math.abs(c) ** plan.lpNorm, 0) ** (1 / plan.lpNorm);
    }
    total += term.reconMult * recon / batch + term.l1Mult * sparsity / batch;
  }
  return total;
}

/** Central differences of {@link lossWithFrozen} around `params`, every coordinate. */
function finiteDifferenceGradient(
  params: Float64Array,
  layout: ParamLayout,
  plan: LossPlan,
  applyBDec: boolean,
  x: Float64Array,
  batch: number,
  h = 1e-6,
): Float64Array {
  const out = new Float64Array(layout.size);
  for (let k = 0; k < layout.size; k++) {
    const plus = params.slice();
    const minus = params.slice();
    plus[k]! += h;
    minus[k]! -= h;
    const lp = lossWithFrozen(plus, params, layout, plan, applyBDec, x, batch);
    const lm = lossWithFrozen(minus, params, layout, plan, applyBDec, x, batch);
    out[k] = (lp - lm) / (2 * h);
  }
  return out;
}

const D = 5;
const S = 7;
const BATCH = 6;
const BASE: Partial<SaeConfig> = {
  matryoshkaSteps: [1, 3, 7],
  l1Coefficient: 0.1,
  scaleSparsityPenaltyByDecoderNorm: true,
  normalizeSaeDecoder: false,
  skipOuterLoss: true,
};

const GRADIENT_CASES: [string, Partial<SaeConfig>][] = [
  ["prefixes [1, 3, 7], no delta loss", {}],
  ["prefixes [1, 3, 7], delta loss", { useDeltaLoss: true }],
  ["a β = 0 prefix, no delta loss", { matryoshkaInnerLossMultipliers: [1, 0, 0.5] }],
  ["a β = 0 prefix, delta loss", {
    matryoshkaInnerLossMultipliers: [0.25, 0, 1],
    useDeltaLoss: true,
  }],
  ["no decoder-norm scaling", { scaleSparsityPenaltyByDecoderNorm: false, useDeltaLoss: true }],
  ["outer loss with MSE", { skipOuterLoss: false, outerLossMultiplier: 0.7 }],
  ["outer loss with L2", { skipOuterLoss: false, reconstructionLoss: "L2", useDeltaLoss: true }],
  ["lpNorm 2", { lpNorm: 2, skipOuterLoss: false }],
  ["lpNorm 1.5 with delta loss", { lpNorm: 1.5, useDeltaLoss: true }],
  ["includeBdecLoss", { includeBdecLoss: true, useDeltaLoss: true }],
  ["normalizeReconstructionLossesByDIn", {
    normalizeReconstructionLossesByDIn: true,
    skipOuterLoss: false,
  }],
  ["normalizeLossesByNumMatryoshkaSteps", {
    normalizeLossesByNumMatryoshkaSteps: true,
    includeBdecLoss: true,
    skipOuterLoss: false,
  }],
  ["applyBDecToInput off", { applyBDecToInput: false, useDeltaLoss: true }],
  ["inner L1 off, γ list, outer loss", {
    includeMatryoshkaInnerL1Loss: false,
    matryoshkaInnerL1LossMultipliers: [0.5, 2, 1],
    skipOuterLoss: false,
  }],
  ["γ list with delta loss", { matryoshkaInnerL1LossMultipliers: [0.5, 0, 2], useDeltaLoss: true }],
];

GRADIENT_CASES.forEach(([name, overrides], index) => {
  Deno.test(`analytic gradient matches central finite differences: ${name}`, () => {
    const config = resolveSaeConfig({ ...BASE, ...overrides, dIn: D, dSae: S });
    const layout = paramLayout(D, S);
    const plan = lossPlan(config);
    const { params, x } = randomProblem(layout, BATCH, config.applyBDecToInput, index + 1);
    const result = referenceLossAndGrad(params, layout, plan, config.applyBDecToInput, x, BATCH);
    // The forward value agrees with the independent loss.
    const independent = lossWithFrozen(
      params,
      params,
      layout,
      plan,
      config.applyBDecToInput,
      x,
      BATCH,
    );
    assert.ok(
      Math.abs(result.loss - independent) <= 1e-12 * Math.max(1, Math.abs(independent)),
      `loss ${result.loss} vs independent ${independent}`,
    );
    const fd = finiteDifferenceGradient(params, layout, plan, config.applyBDecToInput, x, BATCH);
    // Tolerance: |fd − analytic| ≤ 1e-6 + 1e-5·|analytic| (central differences, h = 1e-6, float64).
    assertClose(result.grad, fd, { atol: 1e-6, rtol: 1e-5, label: `gradient (${name})` });
    // The check is not vacuous: every tensor gets a non-zero gradient.
    for (
      const [tensor, offset, length] of [
        ["W_enc", layout.wEnc, D * S],
        ["b_enc", layout.bEnc, S],
        ["W_dec", layout.wDec, S * D],
        ["b_dec", layout.bDec, D],
      ] as const
    ) {
      const part = result.grad.subarray(offset, offset + length);
      assert.ok(part.some((g) => Math.abs(g) > 1e-4), `${tensor} gradient is all ~0`);
    }
  });
});

Deno.test("delta loss detaches earlier prefixes: same loss, different gradient", () => {
  const common = {
    ...BASE,
    includeMatryoshkaInnerL1Loss: false,
    dIn: D,
    dSae: S,
  };
  const detached = resolveSaeConfig({ ...common, useDeltaLoss: true });
  const attached = resolveSaeConfig({ ...common, useDeltaLoss: false });
  const layout = paramLayout(D, S);
  const { params, x } = randomProblem(layout, BATCH, true, 101);
  const a = referenceLossAndGrad(params, layout, lossPlan(detached), true, x, BATCH);
  const b = referenceLossAndGrad(params, layout, lossPlan(attached), true, x, BATCH);
  assert.ok(Math.abs(a.loss - b.loss) <= 1e-12 * Math.abs(b.loss), `${a.loss} vs ${b.loss}`);
  let maxDiff = 0;
  for (let k = 0; k < layout.size; k++) {
    maxDiff = Math.max(maxDiff, Math.abs(a.grad[k]! - b.grad[k]!));
  }
  assert.ok(maxDiff > 1e-3, `gradients should differ, max diff ${maxDiff}`);

  // Latent 0 learns only from prefix 1: its parameters' gradient equals that of prefix 1 alone.
  const plan = lossPlan(detached);
  const firstOnly = referenceLossAndGrad(
    params,
    layout,
    { ...plan, terms: [plan.terms[0]!] },
    true,
    x,
    BATCH,
  );
  const latent0 = (g: Float64Array) => [
    ...Array.from({ length: D }, (_, i) => g[layout.wEnc + i * S]!),
    g[layout.bEnc]!,
    ...g.subarray(layout.wDec, layout.wDec + D),
  ];
  assertClose(latent0(a.grad), latent0(firstOnly.grad), {
    atol: 1e-12,
    rtol: 1e-12,
    label: "latent 0 gradient",
  });
  assert.ok(
    latent0(b.grad).some((g, i) => Math.abs(g - latent0(firstOnly.grad)[i]!) > 1e-3),
    "without the delta loss, later prefixes pull on latent 0",
  );
});

Deno.test("a prefix with β = 0 contributes nothing", () => {
  const layout = paramLayout(D, S);
  const withZero = resolveSaeConfig({
    ...BASE,
    matryoshkaInnerLossMultipliers: [1, 0, 1],
    dIn: D,
    dSae: S,
  });
  const without = resolveSaeConfig({ ...BASE, matryoshkaSteps: [1, 7], dIn: D, dSae: S });
  const planZero = lossPlan(withZero);
  assert.ok(!planZero.terms.some((t) => t.prefixIndex === 1), "no term for the β = 0 prefix");
  const { params, x } = randomProblem(layout, BATCH, true, 202);
  const a = referenceLossAndGrad(params, layout, planZero, true, x, BATCH);
  const b = referenceLossAndGrad(params, layout, lossPlan(without), true, x, BATCH);
  assert.ok(Math.abs(a.loss - b.loss) <= 1e-12 * Math.abs(b.loss), `${a.loss} vs ${b.loss}`);
  assertClose(a.grad, b.grad, { atol: 1e-12, rtol: 1e-12, label: "gradient" });
});

Deno.test("standard SAE loss (steps [4]) equals the hand-computed value", () => {
  // dIn 2, dSae 4, one row x = [1, 2], biases 0.
  // W_enc columns: [1, 0], [0, 1], [-1, 0], [0.5, 0.5] → pre = [1, 2, -1, 1.5], acts = [1, 2, 0, 1.5].
  // W_dec rows: [1, 0], [0, 1], [2, 0], [0, -2] → r = [1, 0] + [0, 2] + [0, -3] = [1, -1].
  // e = r − x = [0, −3] → MSE = 9. Row norms [1, 1, 2, 2] → L1 = 1 + 2 + 0 + 3 = 6.
  // loss = 9 + 0.03·6 = 9.18.
  const config = resolveSaeConfig({ ...NOTEBOOK_SAE_CONFIG, dIn: 2, matryoshkaSteps: [4] });
  const layout = paramLayout(2, 4);
  const params = new Float64Array(layout.size);
  params.set([1, 0, -1, 0.5, 0, 1, 0, 0.5], layout.wEnc); // [dIn][dSae]
  params.set([1, 0, 0, 1, 2, 0, 0, -2], layout.wDec); // [dSae][dIn]
  const result = referenceLossAndGrad(params, layout, lossPlan(config), true, [1, 2], 1);
  assert.ok(Math.abs(result.loss - 9.18) < 1e-12, `loss ${result.loss}`);
  assert.ok(Math.abs(result.termRecon[0]! - 9) < 1e-12, `recon ${result.termRecon[0]}`);
  assert.ok(Math.abs(result.termL1[0]! - 0.18) < 1e-12, `l1 ${result.termL1[0]}`);
  assert.deepEqual([...result.acts], [1, 2, 0, 1.5]);
});

Deno.test("standard SAE loss (steps [4]) equals the formula on a random batch", () => {
  const dIn = 3;
  const config = resolveSaeConfig({ ...NOTEBOOK_SAE_CONFIG, dIn, matryoshkaSteps: [4] });
  const layout = paramLayout(dIn, 4);
  const batch = 5;
  const { params, x } = randomProblem(layout, batch, true, 303);
  // mean_b [ Σ_d (Σ_j a_bj W_dec[j][d] + b_dec[d] − x_bd)² + λ Σ_j a_bj ‖W_dec[j]‖ ], x_in = x − b_dec.
  const wEnc = (i: number, j: number) => params[layout.wEnc + i * 4 + j]!;
  const wDec = (j: number, d: number) => params[layout.wDec + j * dIn + d]!;
  const bDec = (d: number) => params[layout.bDec + d]!;
  let expected = 0;
  for (let b = 0; b < batch; b++) {
    const acts = [0, 1, 2, 3].map((j) => {
      let pre = params[layout.bEnc + j]!;
      for (let i = 0; i < dIn; i++) pre += (x[b * dIn + i]! - bDec(i)) * wEnc(i, j);
      return Math.max(0, pre);
    });
    for (let d = 0; d < dIn; d++) {
      let r = bDec(d);
      for (let j = 0; j < 4; j++) r += acts[j]! * wDec(j, d);
      expected += (r - x[b * dIn + d]!) ** 2 / batch;
    }
    for (let j = 0; j < 4; j++) {
      const norm = Math.hypot(...[0, 1, 2].map((d) => wDec(j, d)));
      expected += 3e-2 * acts[j]! * norm / batch;
    }
  }
  const result = referenceLossAndGrad(params, layout, lossPlan(config), true, x, batch);
  assert.ok(Math.abs(result.loss - expected) <= 1e-12 * expected, `${result.loss} vs ${expected}`);
});

// ------------------------------------------------------------------------------------------
// Optimiser

const SMALL = paramLayout(2, 3);

Deno.test("gradient clipping scales by clipNorm/(norm + 1e-6), as clip_grad_norm_", () => {
  const grad = Float64Array.from({ length: SMALL.size }, (_, k) => (k % 3) - 1 + 0.25 * k);
  const norm = Math.sqrt(grad.reduce((a, g) => a + g * g, 0));
  assert.ok(norm > 1);
  const original = grad.slice();
  const state = newAdamState(SMALL.size);
  const hyper: OptimizerSettings = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, clipNorm: 1 };
  const { gradNorm } = referenceOptimizerStep(
    new Float64Array(SMALL.size),
    grad,
    state,
    hyper,
    SMALL,
    false,
  );
  assert.ok(Math.abs(gradNorm - norm) <= 1e-12 * norm);
  const coef = 1 / (norm + 1e-6);
  assertClose(grad, original.map((g) => g * coef), { atol: 0, rtol: 1e-14, label: "clipped" });
  // Adam saw the clipped gradient: v = (1 − β2)·g_clipped².
  assertClose(state.v, original.map((g) => 0.001 * (g * coef) ** 2), {
    atol: 0,
    rtol: 1e-12,
    label: "v",
  });
});

Deno.test("gradients below clipNorm, or with clipNorm 0, are not scaled", () => {
  for (const [scale, clipNorm] of [[0.01, 1], [100, 0]] as const) {
    const grad = Float64Array.from({ length: SMALL.size }, (_, k) => scale * Math.sin(k + 1));
    const original = grad.slice();
    referenceOptimizerStep(
      new Float64Array(SMALL.size),
      grad,
      newAdamState(SMALL.size),
      { lr: 1e-3, beta1: 0, beta2: 0.999, eps: 1e-8, clipNorm },
      SMALL,
      false,
    );
    assert.deepEqual([...grad], [...original]);
  }
});

Deno.test("Adam with β1 = 0: the first step moves each parameter by −lr·g/(|g| + eps) ≈ −lr·sign(g)", () => {
  const lr = 3e-4;
  const params = Float64Array.from({ length: SMALL.size }, (_, k) => 0.1 * k);
  const before = params.slice();
  const grad = Float64Array.from({ length: SMALL.size }, (_, k) => 0.01 * Math.cos(3 * k + 0.5));
  const g = grad.slice();
  referenceOptimizerStep(
    params,
    grad,
    newAdamState(SMALL.size),
    { lr, beta1: 0, beta2: 0.999, eps: 1e-8, clipNorm: 0 },
    SMALL,
    false,
  );
  for (let k = 0; k < SMALL.size; k++) {
    const step = params[k]! - before[k]!;
    const exact = -lr * g[k]! / (Math.abs(g[k]!) + 1e-8);
    assert.ok(Math.abs(step - exact) <= 1e-15, `[${k}] ${step} vs ${exact}`);
    assert.ok(Math.abs(step + lr * Math.sign(g[k]!)) <= lr * 1e-8 / Math.abs(g[k]!) + 1e-15);
  }
});

Deno.test("Adam's second step follows torch's bias-corrected update", () => {
  const hyper: OptimizerSettings = { lr: 1e-2, beta1: 0.9, beta2: 0.99, eps: 1e-8, clipNorm: 0 };
  const params = new Float64Array(SMALL.size).fill(1);
  const state = newAdamState(SMALL.size);
  const g1 = Float64Array.from({ length: SMALL.size }, (_, k) => 0.3 * Math.sin(k + 1));
  const g2 = Float64Array.from({ length: SMALL.size }, (_, k) => 0.2 * Math.cos(2 * k));
  referenceOptimizerStep(params, g1.slice(), state, hyper, SMALL, false);
  referenceOptimizerStep(params, g2.slice(), state, hyper, SMALL, false);
  assert.equal(state.t, 2);
  for (let k = 0; k < SMALL.size; k++) {
    let p = 1;
    let m = 0;
    let v = 0;
    for (const [t, g] of [[1, g1[k]!], [2, g2[k]!]] as const) {
      m = 0.9 * m + 0.1 * g;
      v = 0.99 * v + 0.01 * g * g;
      p -= (1e-2 / (1 - 0.9 ** t)) * m / (Math.sqrt(v) / Math.sqrt(1 - 0.99 ** t) + 1e-8);
    }
    assert.ok(Math.abs(params[k]! - p) <= 1e-14, `[${k}] ${params[k]} vs ${p}`);
  }
});

Deno.test("normalizeSaeDecoder removes the row-parallel gradient and keeps rows at unit norm", () => {
  const layout = paramLayout(4, 3);
  const rand = lcg(5);
  const params = Float64Array.from({ length: layout.size }, () => 2 * rand() - 1);
  for (let j = 0; j < 3; j++) {
    const row = params.subarray(layout.wDec + j * 4, layout.wDec + (j + 1) * 4);
    const norm = Math.hypot(...row);
    for (let d = 0; d < 4; d++) row[d]! /= norm;
  }
  const rows = params.slice(layout.wDec, layout.wDec + 12);
  const grad = Float64Array.from({ length: layout.size }, () => 2 * rand() - 1);
  const state = newAdamState(layout.size);
  referenceOptimizerStep(
    params,
    grad,
    state,
    { lr: 0.05, beta1: 0, beta2: 0.999, eps: 1e-8, clipNorm: 0 },
    layout,
    true,
  );
  for (let j = 0; j < 3; j++) {
    let dot = 0;
    for (let d = 0; d < 4; d++) dot += grad[layout.wDec + j * 4 + d]! * rows[j * 4 + d]!;
    assert.ok(Math.abs(dot) < 1e-14, `row ${j}: gradient·row = ${dot}`);
    const norm = Math.hypot(...params.subarray(layout.wDec + j * 4, layout.wDec + (j + 1) * 4));
    assert.ok(Math.abs(norm - 1) < 1e-14, `row ${j} norm ${norm}`);
  }
});

Deno.test("referenceTrainStep lowers the loss on a fixed batch", () => {
  const config = resolveSaeConfig({ ...BASE, useDeltaLoss: true, dIn: D, dSae: S });
  const layout = paramLayout(D, S);
  const { params, x } = randomProblem(layout, BATCH, true, 404);
  const state = newAdamState(layout.size);
  const hyper: OptimizerSettings = { lr: 1e-2, beta1: 0, beta2: 0.999, eps: 1e-8, clipNorm: 1 };
  const first = referenceTrainStep(params, state, config, hyper, x, BATCH);
  let last = first;
  for (let step = 0; step < 200; step++) {
    last = referenceTrainStep(params, state, config, hyper, x, BATCH);
  }
  assert.equal(state.t, 201);
  assert.equal(first.termRecon.length, lossPlan(config).terms.length);
  assert.ok(last.loss < 0.5 * first.loss, `loss ${first.loss} → ${last.loss}`);
});
