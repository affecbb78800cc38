/**
 * The nine SAEs of the single-latent study (`single_latent_hedging_plots`), in the notebook's
 * order: standard SAELens L1 SAEs (one prefix covering every latent, no outer loss), decoder-norm-
 * weighted L1, `apply_b_dec_to_input`, `b_dec` zeros, initialised to the features plus noise
 * (`initSaeToMatchModel`), trained on batches of 500 with the published Adam.
 */
import { NOTEBOOK_SAE_CONFIG, type SaeConfig } from "./config.ts";
import type { SingleLatentData } from "../toy/single_latent_worlds.ts";

/**
 * One SAE of the study.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SINGLE_LATENT_SAES, type SingleLatentSae } from "./single_latent_saes.ts";
 * const absorption: SingleLatentSae = SINGLE_LATENT_SAES.find((s) => s.name === "absorption")!;
 * assert.deepEqual([absorption.dSae, absorption.data, absorption.steps], [2, "hierarchical", 200_000]);
 * ```
 */
export interface SingleLatentSae {
  /** Its name in output folders, tables and `results.json`. */
  name:
    | "independent"
    | "hierarchical"
    | "hedging_demo"
    | "absorption"
    | "correlated_low_l1"
    | "correlated_high_l1"
    | "correlated_full_width"
    | "anti_correlated"
    | "anti_correlated_full_width";
  /** The notebook's plot title. */
  title: string;
  /** Latents: 1, or 2 (as many as features). */
  dSae: 1 | 2;
  /** λ, the sparsity coefficient. */
  l1Coefficient: number;
  /** Standard deviation of the noise added to the encoder at initialisation. */
  noiseLevel: number;
  /** The data setting (src/toy/single_latent_worlds.ts). */
  data: SingleLatentData;
  /**
   * Optimiser steps of the published schedule: 24,414 (12.2M tokens at 500 per step), and
   * 200,000 (100M tokens) for `absorption`, whose notebook cell trains longer.
   */
  steps: number;
}

/**
 * Optimiser steps of the study's default schedule (12.2M tokens at 500 per step).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SINGLE_LATENT_BATCH, SINGLE_LATENT_STEPS } from "./single_latent_saes.ts";
 * assert.equal(Math.round(SINGLE_LATENT_STEPS * SINGLE_LATENT_BATCH / 1e5) / 10, 12.2); // M tokens
 * ```
 */
export const SINGLE_LATENT_STEPS = 24_414;
/**
 * Samples per step (`context_size=500`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SINGLE_LATENT_BATCH } from "./single_latent_saes.ts";
 * assert.equal(SINGLE_LATENT_BATCH, 500);
 * ```
 */
export const SINGLE_LATENT_BATCH = 500;

/**
 * The nine SAEs.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SINGLE_LATENT_SAES } from "./single_latent_saes.ts";
 * assert.equal(SINGLE_LATENT_SAES.length, 9);
 * assert.deepEqual(SINGLE_LATENT_SAES.filter((s) => s.dSae === 2).map((s) => s.name), [
 *   "absorption", "correlated_full_width", "anti_correlated_full_width",
 * ]);
 * ```
 */
export const SINGLE_LATENT_SAES: readonly SingleLatentSae[] = [
  ["independent", "Independent features", 1, 1e-3, 0.25, "independent"],
  ["hierarchical", "Hierarchical features", 1, 1e-3, 0.25, "hierarchical"],
  ["hedging_demo", "Feature hedging", 1, 1e-3, 0, "hierarchical"],
  ["absorption", "Feature absorption", 2, 1e-3, 0.1, "hierarchical"],
  ["correlated_low_l1", "Correlated features, low L1 penalty", 1, 1e-3, 0.25, "partial"],
  ["correlated_high_l1", "Correlated features, high L1 penalty", 1, 1e-1, 0.25, "partial"],
  ["correlated_full_width", "Correlated features, full-width SAE", 2, 1e-3, 0.25, "partial"],
  ["anti_correlated", "Standard SAE - anti-correlated features", 1, 2e-2, 0.25, "anti"],
  [
    "anti_correlated_full_width",
    "Full-width SAE - anti-correlated features",
    2,
    2e-2,
    0.25,
    "anti",
  ],
].map(([name, title, dSae, l1Coefficient, noiseLevel, data]) => ({
  name: name as SingleLatentSae["name"],
  title: title as string,
  dSae: dSae as 1 | 2,
  l1Coefficient: l1Coefficient as number,
  noiseLevel: noiseLevel as number,
  data: data as SingleLatentData,
  steps: name === "absorption" ? 200_000 : SINGLE_LATENT_STEPS,
}));

/**
 * The SAELens configuration of one of the study's SAEs in 50 dimensions: the notebook SAE's
 * published settings with one prefix over every latent and no outer loss.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SINGLE_LATENT_SAES, singleLatentSaeConfig } from "./single_latent_saes.ts";
 * const config = singleLatentSaeConfig(SINGLE_LATENT_SAES[0]!);
 * assert.deepEqual([config.dSae, config.matryoshkaSteps, config.bDecInitMethod], [1, [1], "zeros"]);
 * ```
 */
export function singleLatentSaeConfig(spec: SingleLatentSae): SaeConfig {
  return {
    ...NOTEBOOK_SAE_CONFIG,
    dIn: 50,
    dSae: spec.dSae,
    l1Coefficient: spec.l1Coefficient,
    matryoshkaSteps: [spec.dSae],
    matryoshkaInnerLossMultipliers: 1,
    skipOuterLoss: true,
  };
}
