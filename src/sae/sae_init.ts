/**
 * The notebook-level initialisation calls on a {@link MatryoshkaSAE}: the published
 * `init_sae_to_match_model(sae, toy_model, noise_level, feature_ordering)` and SAELens's random
 * initialisation, over the parameter-block functions of src/sae/init.ts.
 */
import type { MatryoshkaSAE } from "./sae.ts";
import { initSaeRandom as initParamsRandom, initSaeToMatchModel as initParams } from "./init.ts";

/** A toy model as the initialisation needs it: its true feature directions. */
export interface FeatureDirections {
  /** `[nFeatures][dIn]`: row f is true feature f's direction. */
  readonly embedding: Float32Array;
  /** Number of true features (rows of `embedding`). */
  readonly nFeatures: number;
}

/** Options of {@link initSaeToMatchModel}. */
export interface MatchModelOptions {
  /** Standard deviation of Gaussian noise added to every encoder entry (default 0). */
  noiseLevel?: number;
  /** Which true feature each of the first latents takes (default identity). */
  featureOrdering?: number[];
  /** Seed of the noise (default 0). */
  seed?: number;
}

/**
 * Puts the toy model's true feature directions into the SAE: the first `min(dSae, nFeatures)`
 * encoder columns become the features (reordered by `featureOrdering`, plus noise), the decoder
 * becomes the encoder's transpose and both biases 0 (the notebook's `init_sae_to_match_model`).
 *
 * @example
 * ```ts ignore
 * initSaeToMatchModel(sae, toyModel, { noiseLevel: 0, featureOrdering: [0, 1, 2, 3] });
 * ```
 */
export function initSaeToMatchModel(
  sae: MatryoshkaSAE,
  model: FeatureDirections,
  options: MatchModelOptions = {},
): void {
  initParams(sae.params, sae.layout, model.embedding, model.nFeatures, options);
}

/** SAELens 5's random initialisation of the SAE's parameters, reproducible per `seed`. */
export function initSaeRandom(sae: MatryoshkaSAE, seed = 0): void {
  initParamsRandom(sae.params, sae.layout, sae.config, seed);
}
