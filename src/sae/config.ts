/**
 * The Matryoshka SAE configuration: every switch of the published `MatryoshkaSAERunnerConfig`
 * (camelCase), its published defaults, and validation at the boundary.
 *
 * `validateSaeConfig` runs before any GPU work and throws a {@link ConfigError} naming the field,
 * what is allowed and what was given.
 */

/** How `b_dec` is initialised. */
export type BDecInitMethod = "zeros" | "mean" | "geometric_median";
/** The outer (full-width) reconstruction loss. */
export type ReconstructionLoss = "MSE" | "L2";

/** Every switch of a Matryoshka SAE. Defaults: {@link DEFAULT_SAE_CONFIG}. */
export interface SaeConfig {
  /** Input width (the toy model's hidden dimension). */
  dIn: number;
  /** Number of latents. */
  dSae: number;
  /** λ, the sparsity penalty coefficient. */
  l1Coefficient: number;
  /** p of the sparsity penalty's per-row p-norm (1 = L1). */
  lpNorm: number;
  /** Keep decoder rows at unit norm (and remove the gradient parallel to them). */
  normalizeSaeDecoder: boolean;
  /** Weight each latent's activation by its decoder row norm in the sparsity penalty. */
  scaleSparsityPenaltyByDecoderNorm: boolean;
  /** Initialise `W_enc` as `W_dec`ᵀ in the random initialisation. */
  initEncoderAsDecoderTranspose: boolean;
  /** Subtract `b_dec` from the input before encoding. */
  applyBDecToInput: boolean;
  /** How `b_dec` is initialised. */
  bDecInitMethod: BDecInitMethod;
  /** Prefix ends, sorted and unique, each in [1, dSae]. Empty means `[dSae]`. */
  matryoshkaSteps: number[];
  /** β_i per prefix (same length as the steps); a number applies to all. */
  matryoshkaInnerLossMultipliers: number[] | number;
  /** γ_i per prefix (same length as the steps); a number applies to all. */
  matryoshkaInnerL1LossMultipliers: number[] | number;
  /** Add the sparsity penalty to each prefix's loss. */
  includeMatryoshkaInnerL1Loss: boolean;
  /** Multiplier of the full-width loss. */
  outerLossMultiplier: number;
  /** Leave out the full-width loss. */
  skipOuterLoss: boolean;
  /** Detach earlier prefixes' reconstruction in each prefix's loss (β = ∞ when multipliers are 1). */
  useDeltaLoss: boolean;
  /** The outer loss: `MSE` (squared error summed over d_in) or `L2` (per-row Euclidean norm). */
  reconstructionLoss: ReconstructionLoss;
  /** Divide every loss by the number of loss terms. */
  normalizeLossesByNumMatryoshkaSteps: boolean;
  /** Divide reconstruction losses by d_in. */
  normalizeReconstructionLossesByDIn: boolean;
  /** Add `MSE(b_dec − x)`. */
  includeBdecLoss: boolean;
}

/** The published defaults (SAELens 5 + `hedging_paper`), with the notebook's shape. */
export const DEFAULT_SAE_CONFIG: Readonly<SaeConfig> = Object.freeze({
  dIn: 50,
  dSae: 4,
  l1Coefficient: 1e-3,
  lpNorm: 1,
  normalizeSaeDecoder: false,
  scaleSparsityPenaltyByDecoderNorm: false,
  initEncoderAsDecoderTranspose: false,
  applyBDecToInput: true,
  bDecInitMethod: "geometric_median" as BDecInitMethod,
  matryoshkaSteps: [] as number[],
  matryoshkaInnerLossMultipliers: 1,
  matryoshkaInnerL1LossMultipliers: 1,
  includeMatryoshkaInnerL1Loss: true,
  outerLossMultiplier: 1,
  skipOuterLoss: false,
  useDeltaLoss: false,
  reconstructionLoss: "MSE" as ReconstructionLoss,
  normalizeLossesByNumMatryoshkaSteps: false,
  normalizeReconstructionLossesByDIn: false,
  includeBdecLoss: false,
});

/** Thrown for an invalid configuration; the message names the field. */
export class ConfigError extends Error {
  override name = "ConfigError";
}
