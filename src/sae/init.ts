/**
 * Initialisation of a {@link MatryoshkaSAE}, the one home of it:
 * - {@link initSaeRandom}: SAELens 5's standard random init;
 * - {@link initSaeToMatchModel}: the toy-model init that puts the true feature directions into the
 *   encoder and decoder (the notebook's `init_sae_to_match_model`);
 * - {@link initBDec}: `b_dec` from a batch of inputs as the config's `bDecInitMethod` says (zeros,
 *   the mean, or SAELens's Weiszfeld geometric median); the trainer calls it with the run's first
 *   training samples (src/sae/train.ts), as SAELens's trainer does with its activation buffer.
 *
 * Each works on the SAE's flat parameter block (src/sae/layout.ts) through a block-level function
 * private to this file. Randomness comes from the host stream of src/toy/rng.ts, so results are
 * reproducible per seed but not bit-identical to torch's.
 */
import type { BDecInitMethod } from "./config.ts";
import type { ParamLayout } from "./layout.ts";
import type { MatryoshkaSAE } from "./sae.ts";
import { Rng } from "../toy/rng.ts";

/**
 * A toy model as the initialisation needs it: its true feature directions.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type FeatureDirections, initSaeToMatchModel } from "./init.ts";
 * import { MatryoshkaSAE } from "./sae.ts";
 * import { ToyModel } from "../toy/toy_model.ts";
 * const swapped: FeatureDirections = { embedding: Float32Array.from([0, 1, 1, 0]), nFeatures: 2 };
 * const sae = new MatryoshkaSAE({ dIn: 2, dSae: 2 });
 * initSaeToMatchModel(sae, swapped);
 * assert.deepEqual(Array.from(sae.wDec), [0, 1, 1, 0]);
 * const model: FeatureDirections = new ToyModel({ nFeatures: 2, hiddenDim: 2 }); // one kind
 * assert.equal(model.embedding.length, model.nFeatures * 2);
 * ```
 */
export interface FeatureDirections {
  /** `[nFeatures][dIn]`: row f is true feature f's direction. */
  readonly embedding: Float32Array;
  /** Number of true features (rows of `embedding`). */
  readonly nFeatures: number;
}

/**
 * Options of {@link initSaeToMatchModel}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { initSaeToMatchModel, type MatchModelOptions } from "./init.ts";
 * import { MatryoshkaSAE } from "./sae.ts";
 * const model = { embedding: Float32Array.from([1, 0, 0, 1]), nFeatures: 2 };
 * const options: MatchModelOptions = { noiseLevel: 0.1, featureOrdering: [1, 0], seed: 7 };
 * const [a, b] = [0, 1].map(() => new MatryoshkaSAE({ dIn: 2, dSae: 2 }));
 * initSaeToMatchModel(a!, model, options);
 * initSaeToMatchModel(b!, model, options);
 * assert.deepEqual(a!.params, b!.params); // the same noise for the same seed
 * assert.ok(Math.abs(a!.wDec[1]! - 1) < 0.5); // W_dec[0] ≈ feature 1 = [0, 1], plus noise
 * ```
 */
export interface MatchModelOptions {
  /** Standard deviation of Gaussian noise added to every encoder entry (default 0). */
  noiseLevel?: number;
  /** Which true feature each of the first latents takes (default identity). */
  featureOrdering?: number[];
  /** Seed of the noise (default 0). */
  seed?: number;
}

/**
 * Puts the toy model's true feature directions into the SAE, like the published
 * `init_sae_to_match_model(sae, toy_model, noise_level, feature_ordering)`.
 *
 * With `k = min(dSae, nFeatures)`: encoder column c < k becomes feature `featureOrdering[c]`'s
 * direction (row of `embedding`) plus `noiseLevel`·N(0, 1) per entry. Encoder columns c ≥ k are
 * left as they are (whatever init ran before, e.g. {@link initSaeRandom}). Then the whole decoder
 * is replaced by the encoder's transpose: `W_dec[j] = W_enc[:, j]` for every j, so decoder rows
 * j ≥ k become copies of those untouched encoder columns (as published). `b_enc` and `b_dec` are
 * set to 0 (the published function leaves them as they are, which is 0 after SAELens's init).
 *
 * @param options `noiseLevel` (default 0), `featureOrdering` (default identity; integer indices
 *   in [0, nFeatures), at least k of them, the first k used), `seed` of the noise (default 0).
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MatryoshkaSAE } from "./sae.ts";
 * import { initSaeToMatchModel } from "./init.ts";
 * const sae = new MatryoshkaSAE({ dIn: 2, dSae: 2 });
 * const model = { embedding: Float32Array.from([1, 0, 0, 1]), nFeatures: 2 }; // 2 features in 2-d
 * initSaeToMatchModel(sae, model, { featureOrdering: [1, 0] });
 * assert.deepEqual(Array.from(sae.wDec), [0, 1, 1, 0]); // W_dec[0] = feature 1 = [0, 1]
 * ```
 */
export function initSaeToMatchModel(
  sae: MatryoshkaSAE,
  model: FeatureDirections,
  options: MatchModelOptions = {},
): void {
  matchModelBlock(sae.params, sae.layout, model.embedding, model.nFeatures, options);
}

/**
 * SAELens 5's `TrainingSAE` initialisation: `b_enc = 0`; `W_dec` (dSae × dIn) drawn
 * kaiming-uniform, U(±sqrt(6/dIn)) (torch's default `kaiming_uniform_`: fan-in = dIn, gain √2);
 * `W_enc = W_dec`ᵀ when `initEncoderAsDecoderTranspose`, else drawn kaiming-uniform on
 * (dIn × dSae), U(±sqrt(6/dSae)); then, when `normalizeSaeDecoder`, every `W_dec` row is scaled to
 * unit norm (after the transpose, so the encoder keeps the unscaled values); `b_dec = 0`.
 * Reproducible per `seed` (an integer from 0 to 2³² − 1).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MatryoshkaSAE } from "./sae.ts";
 * import { initSaeRandom } from "./init.ts";
 * const sae = new MatryoshkaSAE({ dIn: 8, dSae: 4, initEncoderAsDecoderTranspose: true });
 * initSaeRandom(sae, 42);
 * assert.equal(sae.wEnc[1], sae.wDec[8]); // W_enc[0][1] = W_dec[1][0]
 * ```
 */
export function initSaeRandom(sae: MatryoshkaSAE, seed = 0): void {
  const { params, layout, config } = sae;
  randomBlock(
    params,
    layout,
    config.initEncoderAsDecoderTranspose,
    config.normalizeSaeDecoder,
    seed,
  );
}

/**
 * Sets `b_dec` from a batch of inputs by `method` (default: the SAE's `bDecInitMethod`): `zeros`;
 * the `mean` of the rows; or their `geometric_median` (SAELens's `compute_geometric_median`:
 * Weiszfeld iterations from the mean, weights `1/max(distance, 1e-6)`, at most 100 iterations,
 * stopping when the objective changes by at most 1e-20 of itself; float64, stored as float32).
 * The trainer does this itself before training (src/sae/train.ts).
 *
 * @param batch inputs `[rows][dIn]` (not needed for `zeros`).
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MatryoshkaSAE } from "./sae.ts";
 * import { initBDec } from "./init.ts";
 * const sae = new MatryoshkaSAE({ dIn: 2, dSae: 1, bDecInitMethod: "mean" });
 * initBDec(sae, Float32Array.from([0, 0, 2, 4]));
 * assert.deepEqual(Array.from(sae.bDec), [1, 2]);
 * ```
 */
export function initBDec(
  sae: MatryoshkaSAE,
  batch?: Float32Array,
  method: BDecInitMethod = sae.config.bDecInitMethod,
): void {
  bDecBlock(sae.params, sae.layout, method, batch);
}

// ---- Block-level initialisation (one model's flat parameter block).

function matchModelBlock(
  params: Float32Array,
  layout: ParamLayout,
  embedding: Float32Array,
  nFeatures: number,
  options: MatchModelOptions,
): void {
  const { dIn: D, dSae: S } = layout;
  if (!Number.isInteger(nFeatures) || nFeatures <= 0) {
    throw new RangeError(
      `initSaeToMatchModel: nFeatures must be a positive integer, got ${nFeatures}`,
    );
  }
  if (embedding.length !== nFeatures * D) {
    throw new RangeError(
      `initSaeToMatchModel: embedding must hold nFeatures·dIn = ${nFeatures * D} floats, ` +
        `got ${embedding.length}`,
    );
  }
  const noiseLevel = options.noiseLevel ?? 0;
  if (!Number.isFinite(noiseLevel) || noiseLevel < 0) {
    throw new RangeError(
      `initSaeToMatchModel: noiseLevel must be a finite number >= 0, got ${noiseLevel}`,
    );
  }
  const k = Math.min(S, nFeatures);
  const ordering = options.featureOrdering ?? Array.from({ length: nFeatures }, (_, i) => i);
  if (
    ordering.length < k ||
    ordering.some((f) => !Number.isInteger(f) || f < 0 || f >= nFeatures)
  ) {
    throw new RangeError(
      `initSaeToMatchModel: featureOrdering must list at least ${k} integer feature indices ` +
        `in [0, ${nFeatures}), got [${ordering.join(", ")}]`,
    );
  }
  const rng = new Rng(options.seed ?? 0);
  for (let i = 0; i < D; i++) {
    for (let c = 0; c < k; c++) {
      const noise = noiseLevel > 0 ? noiseLevel * rng.normal() : 0;
      params[layout.wEnc + i * S + c] = embedding[ordering[c]! * D + i]! + noise;
    }
  }
  for (let j = 0; j < S; j++) {
    for (let i = 0; i < D; i++) params[layout.wDec + j * D + i] = params[layout.wEnc + i * S + j]!;
  }
  params.fill(0, layout.bEnc, layout.bEnc + S);
  params.fill(0, layout.bDec, layout.bDec + D);
}

function randomBlock(
  params: Float32Array,
  layout: ParamLayout,
  encoderAsDecoderTranspose: boolean,
  normalizeDecoder: boolean,
  seed: number,
): void {
  const { dIn: D, dSae: S } = layout;
  const rng = new Rng(seed);
  const decBound = Math.sqrt(6 / D);
  for (let k = 0; k < S * D; k++) {
    params[layout.wDec + k] = (2 * rng.uniform() - 1) * decBound;
  }
  if (encoderAsDecoderTranspose) {
    for (let i = 0; i < D; i++) {
      for (let j = 0; j < S; j++) {
        params[layout.wEnc + i * S + j] = params[layout.wDec + j * D + i]!;
      }
    }
  } else {
    const encBound = Math.sqrt(6 / S);
    for (let k = 0; k < D * S; k++) {
      params[layout.wEnc + k] = (2 * rng.uniform() - 1) * encBound;
    }
  }
  if (normalizeDecoder) {
    for (let j = 0; j < S; j++) {
      let sq = 0;
      for (let i = 0; i < D; i++) sq += params[layout.wDec + j * D + i]! ** 2;
      const norm = Math.sqrt(sq);
      if (norm === 0) continue;
      for (let i = 0; i < D; i++) params[layout.wDec + j * D + i]! /= norm;
    }
  }
  params.fill(0, layout.bEnc, layout.bEnc + S);
  params.fill(0, layout.bDec, layout.bDec + D);
}

function bDecBlock(
  params: Float32Array,
  layout: ParamLayout,
  method: BDecInitMethod,
  batch: Float32Array | undefined,
): void {
  const D = layout.dIn;
  if (method === "zeros") {
    params.fill(0, layout.bDec, layout.bDec + D);
    return;
  }
  if (method !== "mean" && method !== "geometric_median") {
    throw new RangeError(
      `initBDec: method must be one of zeros, mean, geometric_median, got ${
        JSON.stringify(method)
      }`,
    );
  }
  if (batch === undefined) {
    throw new RangeError(`initBDec: method ${method} needs a batch of inputs, got none`);
  }
  const n = batch.length / D;
  if (!Number.isInteger(n) || n <= 0) {
    throw new RangeError(
      `initBDec: the batch must hold a positive whole number of rows of dIn = ${D} values, ` +
        `got ${batch.length} values`,
    );
  }
  let value: Float64Array;
  if (method === "mean") {
    value = new Float64Array(D);
    for (let r = 0; r < n; r++) for (let d = 0; d < D; d++) value[d]! += batch[r * D + d]!;
    for (let d = 0; d < D; d++) value[d]! /= n;
  } else {
    value = geometricMedian(batch, n, D);
  }
  params.set(value, layout.bDec);
}

/**
 * Weiszfeld's algorithm as SAELens's `compute_geometric_median` (unit weights, eps 1e-6,
 * maxiter 100, ftol 1e-20): start at the mean; each iteration reweights every point by
 * `1/max(‖p − median‖, eps)` and takes the weighted mean; stop early when the objective
 * `Σ‖p − median‖` changes by at most `ftol·objective`. float64 throughout.
 */
function geometricMedian(points: Float32Array, rows: number, dim: number): Float64Array {
  const eps = 1e-6;
  const maxIter = 100;
  const ftol = 1e-20;
  const weights = new Float64Array(rows).fill(1);
  const weightedMean = (): Float64Array => {
    const out = new Float64Array(dim);
    let total = 0;
    for (let r = 0; r < rows; r++) {
      total += weights[r]!;
      for (let d = 0; d < dim; d++) out[d]! += weights[r]! * points[r * dim + d]!;
    }
    for (let d = 0; d < dim; d++) out[d]! /= total;
    return out;
  };
  const distances = (median: Float64Array): Float64Array => {
    const out = new Float64Array(rows);
    for (let r = 0; r < rows; r++) {
      let sq = 0;
      for (let d = 0; d < dim; d++) sq += (points[r * dim + d]! - median[d]!) ** 2;
      out[r] = Math.sqrt(sq);
    }
    return out;
  };
  const objective = (median: Float64Array): number => distances(median).reduce((a, b) => a + b, 0);

  let median = weightedMean();
  let value = objective(median);
  for (let iter = 0; iter < maxIter; iter++) {
    const previous = value;
    const norms = distances(median);
    for (let r = 0; r < rows; r++) weights[r] = 1 / Math.max(norms[r]!, eps);
    median = weightedMean();
    value = objective(median);
    if (Math.abs(previous - value) <= ftol * value) break;
  }
  return median;
}
