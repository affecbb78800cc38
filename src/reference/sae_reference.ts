/**
 * The float64 CPU reference of one Matryoshka SAE's loss and gradient: the oracle every GPU kernel
 * is tested against and the CPU baseline of the benchmarks. It evaluates a {@link LossPlan}
 * (`src/sae/loss_plan.ts`, the definition of the loss) exactly, in plain loops.
 *
 * Each layer's forward and backward sit side by side, shapes above them (llm.c style):
 * B = batch rows, D = dIn, S = dSae; all arrays are row-major. Backward functions accumulate
 * (`+=`) into gradients that start at zero.
 */
import type { ParamLayout } from "../sae/layout.ts";
import type { LossPlan } from "../sae/loss_plan.ts";
import {
  applySelection,
  auxActivations,
  type TopKAux,
  type TopKSelection,
} from "./topk_reference.ts";

/** The loss of one SAE on one batch, its parts, the activations and the gradient. */
export interface ReferenceResult {
  /** Σ over terms of `termRecon[t] + termL1[t]`, plus `auxLoss`. */
  loss: number;
  /** The dead-latent auxiliary loss of a TopK-family SAE (coefficient and scale included; 0 without). */
  auxLoss: number;
  /** Per loss-plan term: `reconMult · R_t` (0 where the term has no reconstruction part). */
  termRecon: number[];
  /** Per loss-plan term: `l1Mult · S_t` (0 where the term has no sparsity part). */
  termL1: number[];
  /** Pre-activations `[B][dSae]`. */
  hiddenPre: Float64Array;
  /** Activations `ReLU(hiddenPre)` (then the TopK-family selection), `[B][dSae]`. */
  acts: Float64Array;
  /** Gradient of the loss, `layout.size` floats in the parameters' layout. */
  grad: Float64Array;
}

// ---------------------------------------------------------------------------------------------
// Encoder: x_in = x − b_dec·[apply]; pre = x_in·W_enc + b_enc; acts = ReLU(pre)

/**
 * x (B,D), W_enc (D,S), b_enc (S), b_dec (D) → x_in (B,D), pre (B,S), acts (B,S).
 */
function encoderForward(
  xIn: Float64Array,
  pre: Float64Array,
  acts: Float64Array,
  x: ArrayLike<number>,
  wEnc: Float64Array,
  bEnc: Float64Array,
  bDec: Float64Array,
  applyBDecToInput: boolean,
  B: number,
  D: number,
  S: number,
): void {
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < D; i++) {
      xIn[b * D + i] = x[b * D + i]! - (applyBDecToInput ? bDec[i]! : 0);
    }
    for (let j = 0; j < S; j++) {
      let sum = bEnc[j]!;
      for (let i = 0; i < D; i++) sum += xIn[b * D + i]! * wEnc[i * S + j]!;
      pre[b * S + j] = sum;
      acts[b * S + j] = sum > 0 ? sum : 0;
    }
  }
}

/**
 * dacts (B,S) → dpre = dacts·[acts > 0] + dpreAux; dW_enc (D,S) += x_inᵀ·dpre; db_enc (S) +=
 * Σ_b dpre; when b_dec is applied to the input, db_dec (D) −= Σ_b dpre·W_encᵀ. (acts > 0 is
 * pre > 0 for ReLU, and also kept for TopK and BatchTopK; dpreAux reaches the pre-activations
 * directly.)
 */
function encoderBackward(
  dWEnc: Float64Array,
  dBEnc: Float64Array,
  dBDec: Float64Array,
  dacts: Float64Array,
  dpreAux: Float64Array | null,
  acts: Float64Array,
  xIn: Float64Array,
  wEnc: Float64Array,
  applyBDecToInput: boolean,
  B: number,
  D: number,
  S: number,
): void {
  const dpre = new Float64Array(S);
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < S; j++) {
      dpre[j] = (acts[b * S + j]! > 0 ? dacts[b * S + j]! : 0) + (dpreAux?.[b * S + j] ?? 0);
    }
    for (let j = 0; j < S; j++) dBEnc[j]! += dpre[j]!;
    for (let i = 0; i < D; i++) {
      const xi = xIn[b * D + i]!;
      let dxIn = 0;
      for (let j = 0; j < S; j++) {
        dWEnc[i * S + j]! += xi * dpre[j]!;
        dxIn += dpre[j]! * wEnc[i * S + j]!;
      }
      if (applyBDecToInput) dBDec[i]! -= dxIn;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Prefix decoder: r = acts[:, :end]·W_dec[:end] + b_dec

/** acts (B,S), W_dec (S,D), b_dec (D) → r (B,D) from latents [0, end). */
function decodeForward(
  r: Float64Array,
  acts: Float64Array,
  wDec: Float64Array,
  bDec: Float64Array,
  end: number,
  B: number,
  D: number,
  S: number,
): void {
  for (let b = 0; b < B; b++) {
    for (let d = 0; d < D; d++) r[b * D + d] = bDec[d]!;
    for (let j = 0; j < end; j++) {
      const a = acts[b * S + j]!;
      if (a === 0) continue;
      for (let d = 0; d < D; d++) r[b * D + d]! += a * wDec[j * D + d]!;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Auxiliary loss of dead latents (TopK family): residual = x − (acts·W_dec + b_dec), detached;
// r_aux = aux·W_dec + b_dec with aux the top k_aux dead pre-activations per row;
// loss = coefficient · scale · mean_b Σ_d (r_aux − residual)²

/**
 * x (B,D), pre and acts (B,S), W_dec (S,D), b_dec (D) → the auxiliary loss; dpreAux (B,S) :=
 * its gradient at the selected pre-activations; dW_dec, db_dec += its gradient (the residual
 * is detached).
 */
function auxForwardBackward(
  dpreAux: Float64Array,
  dWDec: Float64Array,
  dBDec: Float64Array,
  x: ArrayLike<number>,
  pre: Float64Array,
  acts: Float64Array,
  wDec: Float64Array,
  bDec: Float64Array,
  aux: TopKAux,
  B: number,
  D: number,
  S: number,
): number {
  const { acts: auxActs, selected, scale } = auxActivations(pre, B, S, aux.dead, aux.kAux);
  if (scale === 0) return 0;
  const mult = aux.coefficient * scale;
  const full = new Float64Array(B * D);
  const recon = new Float64Array(B * D);
  decodeForward(full, acts, wDec, bDec, S, B, D, S);
  decodeForward(recon, auxActs, wDec, bDec, S, B, D, S);
  let sum = 0;
  const dr = new Float64Array(D);
  for (let b = 0; b < B; b++) {
    for (let d = 0; d < D; d++) {
      const e = recon[b * D + d]! - (x[b * D + d]! - full[b * D + d]!);
      sum += e * e;
      dr[d] = 2 * mult * e / B;
      dBDec[d]! += dr[d]!;
    }
    for (let j = 0; j < S; j++) {
      if (!selected[b * S + j]) continue;
      let g = 0;
      for (let d = 0; d < D; d++) {
        g += dr[d]! * wDec[j * D + d]!;
        dWDec[j * D + d]! += auxActs[b * S + j]! * dr[d]!;
      }
      dpreAux[b * S + j] = g;
    }
  }
  return mult * sum / B;
}

/**
 * dr (B,D) → db_dec (D) += Σ_b dr; for the live latents j ∈ [from, end) only:
 * dacts[:, j] += dr·W_dec[j]ᵀ, dW_dec[j] += Σ_b acts[b, j]·dr[b]. Latents below `from` are
 * detached (stop-gradient) in this term.
 */
function decodeBackward(
  dacts: Float64Array,
  dWDec: Float64Array,
  dBDec: Float64Array,
  dr: Float64Array,
  acts: Float64Array,
  wDec: Float64Array,
  from: number,
  end: number,
  B: number,
  D: number,
  S: number,
): void {
  for (let b = 0; b < B; b++) {
    for (let d = 0; d < D; d++) dBDec[d]! += dr[b * D + d]!;
    for (let j = from; j < end; j++) {
      const a = acts[b * S + j]!;
      let dot = 0;
      for (let d = 0; d < D; d++) {
        dot += dr[b * D + d]! * wDec[j * D + d]!;
        dWDec[j * D + d]! += a * dr[b * D + d]!;
      }
      dacts[b * S + j]! += dot;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Reconstruction loss: e = r − x; mse: R = mean_b Σ_d e²; l2: R = mean_b ‖e_b‖₂

/** e (B,D) → R (scalar). */
function reconForward(e: Float64Array, kind: "mse" | "l2", B: number, D: number): number {
  let total = 0;
  for (let b = 0; b < B; b++) {
    let sq = 0;
    for (let d = 0; d < D; d++) sq += e[b * D + d]! ** 2;
    total += kind === "mse" ? sq : Math.sqrt(sq);
  }
  return total / B;
}

/**
 * d(mult·R)/de (B,D), written (not accumulated) into `de`: mse 2·e·mult/B; l2 e/‖e_b‖·mult/B,
 * 0 for a row with ‖e_b‖ = 0.
 */
function reconBackward(
  de: Float64Array,
  e: Float64Array,
  kind: "mse" | "l2",
  mult: number,
  B: number,
  D: number,
): void {
  for (let b = 0; b < B; b++) {
    let scale = 2 * mult / B;
    if (kind === "l2") {
      let sq = 0;
      for (let d = 0; d < D; d++) sq += e[b * D + d]! ** 2;
      const norm = Math.sqrt(sq);
      scale = norm > 0 ? mult / (B * norm) : 0;
    }
    for (let d = 0; d < D; d++) de[b * D + d] = scale * e[b * D + d]!;
  }
}

// ---------------------------------------------------------------------------------------------
// Sparsity weights: w_j = ‖W_dec[j]‖₂ (not detached)

/** W_dec (S,D) → w (S). */
function decoderNormsForward(wDec: Float64Array, S: number, D: number): Float64Array {
  const w = new Float64Array(S);
  for (let j = 0; j < S; j++) {
    let sq = 0;
    for (let d = 0; d < D; d++) sq += wDec[j * D + d]! ** 2;
    w[j] = Math.sqrt(sq);
  }
  return w;
}

/** dw (S) → dW_dec[j] (S,D) += dw_j·W_dec[j]/w_j (0 for a zero row, as torch). */
function decoderNormsBackward(
  dWDec: Float64Array,
  dw: Float64Array,
  w: Float64Array,
  wDec: Float64Array,
  S: number,
  D: number,
): void {
  for (let j = 0; j < S; j++) {
    if (w[j]! === 0) continue;
    const scale = dw[j]! / w[j]!;
    for (let d = 0; d < D; d++) dWDec[j * D + d]! += scale * wDec[j * D + d]!;
  }
}

// ---------------------------------------------------------------------------------------------
// Sparsity: P = mean_b ‖v_b‖_p with v_b = w[start:end] ⊙ acts[b, start:end]

/** ‖v‖_p of one row's v_j = w_j·acts[b, j], j ∈ [start, end). */
function rowPNorm(
  acts: Float64Array,
  w: Float64Array,
  b: number,
  start: number,
  end: number,
  p: number,
  S: number,
): number {
  let sum = 0;
  for (let j = start; j < end; j++) {
    const v = Math.abs(w[j]! * acts[b * S + j]!);
    sum += p === 1 ? v : v ** p;
  }
  return p === 1 ? sum : sum ** (1 / p);
}

/** acts (B,S), w (S) → P (scalar). */
function sparsityForward(
  acts: Float64Array,
  w: Float64Array,
  start: number,
  end: number,
  p: number,
  B: number,
  S: number,
): number {
  let total = 0;
  for (let b = 0; b < B; b++) total += rowPNorm(acts, w, b, start, end, p, S);
  return total / B;
}

/**
 * d(mult·P): with g_bj = ∂‖v_b‖_p/∂v_bj (p = 1: sign(v), 0 at 0; else
 * |v|^{p−1}·sign(v)/‖v_b‖^{p−1}, 0 when ‖v_b‖ = 0): dacts[b, j] += mult/B·g_bj·w_j and
 * dw_j += mult/B·Σ_b g_bj·acts[b, j].
 */
function sparsityBackward(
  dacts: Float64Array,
  dw: Float64Array,
  acts: Float64Array,
  w: Float64Array,
  start: number,
  end: number,
  p: number,
  mult: number,
  B: number,
  S: number,
): void {
  const scale = mult / B;
  for (let b = 0; b < B; b++) {
    const norm = p === 1 ? 1 : rowPNorm(acts, w, b, start, end, p, S);
    if (norm === 0) continue;
    for (let j = start; j < end; j++) {
      const a = acts[b * S + j]!;
      const v = w[j]! * a;
      if (v === 0) continue;
      const g = p === 1 ? Math.sign(v) : Math.sign(v) * (Math.abs(v) / norm) ** (p - 1);
      dacts[b * S + j]! += scale * g * w[j]!;
      dw[j]! += scale * g * a;
    }
  }
}

// ---------------------------------------------------------------------------------------------

/**
 * Evaluates the loss `plan` of one SAE on a batch, exactly and in float64, with its gradient.
 *
 * `x_in = x − b_dec` (when `applyBDecToInput`), `pre = x_in·W_enc + b_enc`, `acts = ReLU(pre)`
 * (gradient 0 at pre ≤ 0). Each term t reconstructs `r = Σ_{j<end} acts_j·W_dec[j] + b_dec`, with
 * latents below `detachBelow` contributing no gradient (neither to `acts` nor to `W_dec`), and adds
 * `reconMult·R(r − x) + l1Mult·mean_b ‖w ⊙ acts[b, l1Start:l1End]‖_p`, where R is `mean_b Σ_d e²`
 * (`mse`) or `mean_b ‖e‖₂` (`l2`) and `w_j = ‖W_dec[j]‖₂` when `plan.l1ByDecoderNorm` (else 1;
 * not detached).
 *
 * With a TopK-family `selection` (src/reference/topk_reference.ts) the activations are the
 * selected ReLU outputs (gradient only through kept ones), and the dead latents' auxiliary loss
 * (`auxLoss`) is added: the residual `x − (acts·W_dec + b_dec)`, detached, reconstructed by
 * `aux·W_dec + b_dec` from each row's top k_aux dead pre-activations (gradient straight to them),
 * `coefficient · min(dead / kAux, 1) · mean_b Σ_d e²`.
 *
 * @param params one model's parameters in the `src/sae/layout.ts` order (`layout.size` floats).
 * @param x inputs `[batch][dIn]`.
 * @param selection TopK or BatchTopK (omit for the standard ReLU SAE).
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { paramLayout } from "../sae/layout.ts";
 * import { lossPlan } from "../sae/loss_plan.ts";
 * import { resolveSaeConfig } from "../sae/config.ts";
 * import { referenceLossAndGrad } from "./sae_reference.ts";
 * const config = resolveSaeConfig({ dIn: 2, dSae: 2, matryoshkaSteps: [1, 2] });
 * const layout = paramLayout(2, 2);
 * const params = new Float64Array(layout.size).fill(0.5);
 * const result = referenceLossAndGrad(params, layout, lossPlan(config), true, [1, 0, 0, 1], 2);
 * assert.equal(result.grad.length, layout.size);
 * ```
 */
export function referenceLossAndGrad(
  params: ArrayLike<number>,
  layout: ParamLayout,
  plan: LossPlan,
  applyBDecToInput: boolean,
  x: ArrayLike<number>,
  batch: number,
  selection?: TopKSelection,
): ReferenceResult {
  const { dIn: D, dSae: S } = layout;
  const B = batch;
  if (!Number.isInteger(B) || B <= 0) {
    throw new RangeError(`referenceLossAndGrad: batch must be a positive integer, got ${batch}`);
  }
  if (params.length < layout.size) {
    throw new RangeError(
      `referenceLossAndGrad: params must hold layout.size = ${layout.size} floats, got ${params.length}`,
    );
  }
  if (x.length !== B * D) {
    throw new RangeError(
      `referenceLossAndGrad: x must hold batch·dIn = ${B * D} floats, got ${x.length}`,
    );
  }
  const p = new Float64Array(layout.size);
  for (let k = 0; k < layout.size; k++) p[k] = params[k]!;
  const wEnc = p.subarray(layout.wEnc, layout.wEnc + D * S);
  const bEnc = p.subarray(layout.bEnc, layout.bEnc + S);
  const wDec = p.subarray(layout.wDec, layout.wDec + S * D);
  const bDec = p.subarray(layout.bDec, layout.bDec + D);
  const grad = new Float64Array(layout.size);
  const dWEnc = grad.subarray(layout.wEnc, layout.wEnc + D * S);
  const dBEnc = grad.subarray(layout.bEnc, layout.bEnc + S);
  const dWDec = grad.subarray(layout.wDec, layout.wDec + S * D);
  const dBDec = grad.subarray(layout.bDec, layout.bDec + D);

  // forward: encoder
  const xIn = new Float64Array(B * D);
  const pre = new Float64Array(B * S);
  const acts = new Float64Array(B * S);
  encoderForward(xIn, pre, acts, x, wEnc, bEnc, bDec, applyBDecToInput, B, D, S);
  if (selection) applySelection(acts, B, S, selection);
  const w = plan.l1ByDecoderNorm ? decoderNormsForward(wDec, S, D) : new Float64Array(S).fill(1);

  // forward and backward of each term, accumulating into dacts, dw, dW_dec, db_dec
  const dacts = new Float64Array(B * S);
  const dw = new Float64Array(S);
  const r = new Float64Array(B * D);
  const dr = new Float64Array(B * D);
  const termRecon: number[] = [];
  const termL1: number[] = [];
  for (const term of plan.terms) {
    let recon = 0;
    if (term.reconMult !== 0) {
      decodeForward(r, acts, wDec, bDec, term.end, B, D, S);
      for (let k = 0; k < B * D; k++) r[k]! -= x[k]!; // r now holds e = r − x
      recon = term.reconMult * reconForward(r, term.reconKind, B, D);
      reconBackward(dr, r, term.reconKind, term.reconMult, B, D);
      decodeBackward(dacts, dWDec, dBDec, dr, acts, wDec, term.detachBelow, term.end, B, D, S);
    }
    termRecon.push(recon);
    let l1 = 0;
    if (term.l1Mult !== 0 && term.l1End > term.l1Start) {
      const { l1Start, l1End, l1Mult } = term;
      l1 = l1Mult * sparsityForward(acts, w, l1Start, l1End, plan.lpNorm, B, S);
      sparsityBackward(dacts, dw, acts, w, l1Start, l1End, plan.lpNorm, l1Mult, B, S);
    }
    termL1.push(l1);
  }
  const aux = selection?.aux;
  let auxLoss = 0;
  let dpreAux: Float64Array | null = null;
  if (aux && aux.coefficient !== 0) {
    dpreAux = new Float64Array(B * S);
    auxLoss = auxForwardBackward(dpreAux, dWDec, dBDec, x, pre, acts, wDec, bDec, aux, B, D, S);
  }
  let loss = auxLoss;
  for (let t = 0; t < termRecon.length; t++) loss += termRecon[t]! + termL1[t]!;

  // backward: sparsity weights, then encoder
  if (plan.l1ByDecoderNorm) decoderNormsBackward(dWDec, dw, w, wDec, S, D);
  encoderBackward(dWEnc, dBEnc, dBDec, dacts, dpreAux, acts, xIn, wEnc, applyBDecToInput, B, D, S);

  return { loss, auxLoss, termRecon, termL1, hiddenPre: pre, acts, grad };
}
