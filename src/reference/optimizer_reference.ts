/**
 * The float64 CPU reference of one training step's parameter update, as SAELens's trainer does
 * it for the toy runs: optional removal of the decoder-parallel gradient, global-norm clipping
 * like `torch.nn.utils.clip_grad_norm_`, `torch.optim.Adam` (bias-corrected, no weight decay), and
 * optional unit-norm decoder rows; plus {@link referenceTrainStep}, loss and update in one call.
 */
import type { SaeConfig } from "../sae/config.ts";
import { type ParamLayout, paramLayout } from "../sae/layout.ts";
import { lossPlan } from "../sae/loss_plan.ts";
import { referenceLossAndGrad } from "./sae_reference.ts";
import type { OptimizerSettings } from "../sae/train_settings.ts";

/** Adam's moments (same layout as the parameters) and step count. */
export interface AdamState {
  /** First moments, one per parameter. */
  m: Float64Array;
  /** Second moments, one per parameter. */
  v: Float64Array;
  /** Steps taken so far. */
  t: number;
}

/** Zero moments for `size` parameters, before the first step. */
export function newAdamState(size: number): AdamState {
  if (!Number.isInteger(size) || size < 0) {
    throw new RangeError(`newAdamState: size must be an integer >= 0, got ${size}`);
  }
  return { m: new Float64Array(size), v: new Float64Array(size), t: 0 };
}

/** g_j −= (g_j·W_dec[j])·W_dec[j] for every decoder row (SAELens's form; exact for unit rows). */
function removeDecoderParallelGradient(
  params: Float64Array,
  grad: Float64Array,
  layout: ParamLayout,
): void {
  const { dIn: D, dSae: S, wDec } = layout;
  for (let j = 0; j < S; j++) {
    const row = wDec + j * D;
    let dot = 0;
    for (let d = 0; d < D; d++) dot += grad[row + d]! * params[row + d]!;
    for (let d = 0; d < D; d++) grad[row + d]! -= dot * params[row + d]!;
  }
}

/** W_dec[j] /= ‖W_dec[j]‖ for every row with a non-zero norm. */
function normalizeDecoderRows(params: Float64Array, layout: ParamLayout): void {
  const { dIn: D, dSae: S, wDec } = layout;
  for (let j = 0; j < S; j++) {
    const row = wDec + j * D;
    let sq = 0;
    for (let d = 0; d < D; d++) sq += params[row + d]! ** 2;
    const norm = Math.sqrt(sq);
    if (norm === 0) continue;
    for (let d = 0; d < D; d++) params[row + d]! /= norm;
  }
}

/**
 * One optimiser step on one model, in place on `params`, `grad` and `state`:
 * 1. if `normalizeSaeDecoder`, remove from each `W_dec` row's gradient its component along that
 *    row (`g −= (g·w)·w`, SAELens's form, which assumes unit rows);
 * 2. global-norm clip as `torch.nn.utils.clip_grad_norm_`: `total = sqrt(Σ g²)` over all four
 *    tensors, `coef = clipNorm/(total + 1e-6)`, all gradients scaled by `coef` when it is < 1
 *    (skipped when `clipNorm` is 0);
 * 3. `torch.optim.Adam`: `t += 1`, `m = β1·m + (1−β1)·g`, `v = β2·v + (1−β2)·g²`,
 *    `p −= lr/(1−β1^t) · m / (sqrt(v)/sqrt(1−β2^t) + eps)`;
 * 4. if `normalizeSaeDecoder`, every `W_dec` row (with a non-zero norm) is set to unit norm.
 *
 * @returns `gradNorm`, the global gradient norm before clipping (after step 1).
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { paramLayout } from "../sae/layout.ts";
 * import { PUBLISHED_OPTIMIZER } from "../sae/train_settings.ts";
 * import { newAdamState, referenceOptimizerStep } from "./optimizer_reference.ts";
 * const layout = paramLayout(2, 2);
 * const params = new Float64Array(layout.size).fill(1);
 * const grad = new Float64Array(layout.size).fill(0.1);
 * const state = newAdamState(layout.size);
 * const { gradNorm } = referenceOptimizerStep(params, grad, state, PUBLISHED_OPTIMIZER, layout, false);
 * assert.equal(state.t, 1);
 * assert.ok(gradNorm > 0);
 * ```
 */
export function referenceOptimizerStep(
  params: Float64Array,
  grad: Float64Array,
  state: AdamState,
  hyper: OptimizerSettings,
  layout: ParamLayout,
  normalizeSaeDecoder: boolean,
): { gradNorm: number } {
  const n = layout.size;
  const arrays = { params, grad, "state.m": state.m, "state.v": state.v };
  for (const [name, array] of Object.entries(arrays)) {
    if (array.length !== n) {
      throw new RangeError(
        `referenceOptimizerStep: ${name} must hold layout.size = ${n} floats, got ${array.length}`,
      );
    }
  }
  if (normalizeSaeDecoder) removeDecoderParallelGradient(params, grad, layout);

  let sq = 0;
  for (let k = 0; k < n; k++) sq += grad[k]! ** 2;
  const gradNorm = Math.sqrt(sq);
  if (hyper.clipNorm > 0) {
    const coef = hyper.clipNorm / (gradNorm + 1e-6);
    if (coef < 1) { for (let k = 0; k < n; k++) grad[k]! *= coef; }
  }

  const { lr, beta1, beta2, eps } = hyper;
  state.t += 1;
  const stepSize = lr / (1 - beta1 ** state.t);
  const bias2Sqrt = Math.sqrt(1 - beta2 ** state.t);
  const { m, v } = state;
  for (let k = 0; k < n; k++) {
    const g = grad[k]!;
    m[k]! += (1 - beta1) * (g - m[k]!); // torch: exp_avg.lerp_(grad, 1 − β1)
    v[k] = beta2 * v[k]! + (1 - beta2) * g * g;
    params[k]! -= stepSize * m[k]! / (Math.sqrt(v[k]!) / bias2Sqrt + eps);
  }

  if (normalizeSaeDecoder) normalizeDecoderRows(params, layout);
  return { gradNorm };
}

/**
 * One full training step of one model on one batch: {@link lossPlan} of `config`,
 * {@link referenceLossAndGrad}, then {@link referenceOptimizerStep}. Updates `params` and `state`
 * in place.
 *
 * @param config a validated configuration (see `resolveSaeConfig`).
 * @param x inputs `[batch][dIn]`.
 * @returns the loss and its terms before the update, and the gradient norm before clipping.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveSaeConfig } from "../sae/config.ts";
 * import { paramLayout } from "../sae/layout.ts";
 * import { PUBLISHED_OPTIMIZER } from "../sae/train_settings.ts";
 * import { newAdamState, referenceTrainStep } from "./optimizer_reference.ts";
 * const config = resolveSaeConfig({ dIn: 2, dSae: 2, matryoshkaSteps: [1, 2] });
 * const params = new Float64Array(paramLayout(2, 2).size).fill(0.5);
 * const state = newAdamState(params.length);
 * const { loss } = referenceTrainStep(params, state, config, PUBLISHED_OPTIMIZER, [1, 0, 0, 1], 2);
 * assert.ok(loss > 0);
 * assert.equal(state.t, 1);
 * ```
 */
export function referenceTrainStep(
  params: Float64Array,
  state: AdamState,
  config: SaeConfig,
  hyper: OptimizerSettings,
  x: ArrayLike<number>,
  batch: number,
): { loss: number; termRecon: number[]; termL1: number[]; gradNorm: number } {
  const layout = paramLayout(config.dIn, config.dSae);
  const plan = lossPlan(config);
  const result = referenceLossAndGrad(params, layout, plan, config.applyBDecToInput, x, batch);
  const { gradNorm } = referenceOptimizerStep(
    params,
    result.grad,
    state,
    hyper,
    layout,
    config.normalizeSaeDecoder,
  );
  return { loss: result.loss, termRecon: result.termRecon, termL1: result.termL1, gradNorm };
}
