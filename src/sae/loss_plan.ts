/**
 * Compiles a Matryoshka SAE configuration into a flat list of loss terms: the one place where the
 * published loss semantics (`hedging_paper.saes.matryoshka_sae.MatryoshkaSAE.matryoshka_train_step`
 * over SAELens's `training_forward_pass`) are decided. The CPU reference and the GPU kernels both
 * evaluate exactly this list, so they cannot disagree about what the loss is.
 *
 * Every term t reconstructs `r_t = Σ_{j<end} acts_j · W_dec[j] + b_dec` and contributes
 *
 *   reconMult · R(r_t − x)  +  l1Mult · mean_b ‖ w ⊙ acts[b, l1Start:l1End] ‖_p
 *
 * where R is `mean_b Σ_d e²` (`mse`) or `mean_b ‖e‖₂` (`l2`), `w_j = ‖W_dec[j]‖` when
 * `l1ByDecoderNorm` (else 1), and latents below `detachBelow` enter `r_t` without gradient
 * (the delta loss's stop-gradient of earlier prefixes; `b_dec` always gets gradient).
 * Multipliers already include β_i, γ_i, λ, `outerLossMultiplier` and the optional normalisations.
 */
import type { SaeConfig } from "./config.ts";

/**
 * What a term is, for labelling per-term losses.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { LossTermKind } from "./loss_plan.ts";
 * import { MatryoshkaSAE } from "./sae.ts";
 * const config = { dIn: 4, dSae: 4, matryoshkaSteps: [1, 4], includeBdecLoss: true };
 * const sae = new MatryoshkaSAE(config);
 * const kinds: LossTermKind[] = sae.lossPlan().terms.map((t) => t.kind);
 * assert.deepEqual(kinds, ["bdec", "prefix", "prefix", "outer"]);
 * ```
 */
export type LossTermKind = "prefix" | "outer" | "bdec";

/**
 * One additive term of the total loss.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { LossTerm } from "./loss_plan.ts";
 * import { MatryoshkaSAE } from "./sae.ts";
 * const config = { matryoshkaSteps: [1, 4], useDeltaLoss: true, skipOuterLoss: true };
 * const sae = new MatryoshkaSAE({ dIn: 4, dSae: 4, ...config });
 * const [inner, full]: LossTerm[] = sae.lossPlan().terms;
 * assert.equal(inner?.l1Mult, 1e-3); // λ · γ · β with γ = β = 1
 * assert.deepEqual([full?.end, full?.detachBelow, full?.l1Start], [4, 1, 1]); // delta loss
 * ```
 */
export interface LossTerm {
  /** Whether the term is a Matryoshka prefix, the outer (full-width) loss or the `b_dec` term. */
  kind: LossTermKind;
  /** For `prefix` terms, the index of the Matryoshka step; -1 otherwise. */
  prefixIndex: number;
  /** Latents [0, end) are decoded (0 for the `b_dec` term). */
  end: number;
  /** Latents [0, detachBelow) are decoded without gradient. */
  detachBelow: number;
  /** Reconstruction loss form. */
  reconKind: "mse" | "l2";
  /** Multiplier of the reconstruction loss (0: none). */
  reconMult: number;
  /** Latents [l1Start, l1End) are penalised. */
  l1Start: number;
  /** End (exclusive) of the penalised latent range. */
  l1End: number;
  /** Multiplier of the sparsity penalty (0: none). */
  l1Mult: number;
}

/**
 * The whole loss of one SAE.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type LossPlan, lossPlan } from "./loss_plan.ts";
 * import { resolveSaeConfig } from "./config.ts";
 * const config = resolveSaeConfig({ dIn: 4, dSae: 4, lpNorm: 2, matryoshkaSteps: [2, 4] });
 * const plan: LossPlan = lossPlan(config);
 * assert.equal(plan.terms.length, 3); // two prefixes and the outer loss
 * assert.equal(plan.lpNorm, 2);
 * assert.equal(plan.l1ByDecoderNorm, false);
 * ```
 */
export interface LossPlan {
  /** The additive terms, in order (their sum is the total loss). */
  terms: LossTerm[];
  /** p of the per-row sparsity norm. */
  lpNorm: number;
  /** Weight activations by decoder row norms in the sparsity penalty. */
  l1ByDecoderNorm: boolean;
}

/** The Matryoshka steps of a config (sorted, unique; `[dSae]` when empty). */
export function resolvedSteps(config: SaeConfig): number[] {
  const steps = config.matryoshkaSteps.length > 0 ? config.matryoshkaSteps : [config.dSae];
  return [...new Set(steps)].sort((a, b) => a - b);
}

/** β_i or γ_i for each step: a list as given, or a number repeated. */
function perStep(value: number[] | number, n: number): number[] {
  return Array.isArray(value) ? [...value] : new Array<number>(n).fill(value);
}

/** Compiles a (validated) configuration into its loss terms. */
export function lossPlan(config: SaeConfig): LossPlan {
  const steps = resolvedSteps(config);
  const betas = perStep(config.matryoshkaInnerLossMultipliers, steps.length);
  const gammas = perStep(config.matryoshkaInnerL1LossMultipliers, steps.length);
  // TopK and BatchTopK have no sparsity penalty: the selection is the sparsity.
  const penalised = config.architecture === "standard";
  const lambda = penalised ? config.l1Coefficient : 0;
  const dInScale = config.normalizeReconstructionLossesByDIn ? 1 / config.dIn : 1;
  let denom = 1;
  if (config.normalizeLossesByNumMatryoshkaSteps) {
    denom = steps.length + (config.skipOuterLoss ? 0 : 1) + (config.includeBdecLoss ? 1 : 0);
  }
  const terms: LossTerm[] = [];
  if (config.includeBdecLoss) {
    terms.push({
      kind: "bdec",
      prefixIndex: -1,
      end: 0,
      detachBelow: 0,
      reconKind: "mse",
      reconMult: dInScale / denom,
      l1Start: 0,
      l1End: 0,
      l1Mult: 0,
    });
  }
  // The published loop skips a prefix whose β is 0 without advancing its `prev_portion`, while the
  // decode generator (which decides what is detached) always advances: keep both, as published.
  let l1Prev = 0;
  let decodePrev = 0;
  steps.forEach((end, i) => {
    const beta = betas[i]!;
    const gamma = gammas[i]!;
    const detachBelow = config.useDeltaLoss ? decodePrev : 0;
    decodePrev = end;
    if (beta === 0) return;
    const withL1 = config.includeMatryoshkaInnerL1Loss && gamma > 0 && penalised;
    const l1Start = config.useDeltaLoss ? l1Prev : 0;
    terms.push({
      kind: "prefix",
      prefixIndex: i,
      end,
      detachBelow,
      reconKind: "mse",
      reconMult: beta * dInScale / denom,
      l1Start: withL1 ? l1Start : 0,
      l1End: withL1 ? end : 0,
      l1Mult: withL1 ? lambda * gamma * beta / denom : 0,
    });
    l1Prev = end;
  });
  if (!config.skipOuterLoss) {
    terms.push({
      kind: "outer",
      prefixIndex: -1,
      end: config.dSae,
      detachBelow: 0,
      reconKind: config.reconstructionLoss === "L2" ? "l2" : "mse",
      reconMult: config.outerLossMultiplier * dInScale / denom,
      l1Start: 0,
      l1End: penalised ? config.dSae : 0,
      l1Mult: config.outerLossMultiplier * lambda / denom,
    });
  }
  return {
    terms,
    lpNorm: config.lpNorm,
    l1ByDecoderNorm: config.scaleSparsityPenaltyByDecoderNorm,
  };
}
