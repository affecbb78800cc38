/**
 * CPU initialisation of one SAE's parameter block (float32, `src/sae/layout.ts` order):
 * SAELens 5's standard random init ({@link initSaeRandom}), the toy-model init that puts the true
 * feature directions into the encoder and decoder ({@link initSaeToMatchModel}, after
 * `hedging_paper.toy_models.initialization.init_sae_to_match_model`), and `b_dec` from a batch
 * ({@link initBDec}: zeros, mean, or SAELens's Weiszfeld geometric median).
 *
 * Randomness comes from a small seeded generator private to this file (mulberry32 + Box–Muller),
 * so results are reproducible per seed but not bit-identical to torch's.
 */
import { type BDecInitMethod, ConfigError, type SaeConfig } from "./config.ts";
import type { ParamLayout } from "./layout.ts";
import { checkSeed } from "../toy/rng.ts";

/** A seeded stream of uniforms in [0, 1) (mulberry32) and standard normals (Box–Muller). */
function createRng(seed: number): { uniform(): number; normal(): number } {
  let state = (checkSeed("seed", seed) ^ 0x6d2b79f5) >>> 0;
  const next32 = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return (z ^ (z >>> 14)) >>> 0;
  };
  // 53-bit uniform from two 32-bit draws.
  const uniform = (): number => ((next32() >>> 5) * 67108864 + (next32() >>> 6)) / 9007199254740992;
  return {
    uniform,
    normal: () => {
      const u1 = 1 - uniform(); // (0, 1]
      const u2 = uniform();
      return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    },
  };
}

function checkBlock(name: string, params: Float32Array, layout: ParamLayout): void {
  if (params.length !== layout.size) {
    throw new RangeError(
      `${name}: params must hold one model's block of layout.size = ${layout.size} floats, ` +
        `got ${params.length}`,
    );
  }
}

/**
 * Puts the true feature directions into the SAE, like the published `init_sae_to_match_model`.
 *
 * With `k = min(dSae, nFeatures)`: encoder column c < k becomes feature `featureOrdering[c]`'s
 * direction (row of `embedding`) plus `noiseLevel`·N(0, 1) per entry. Encoder columns c ≥ k are
 * left as they are (whatever init ran before, e.g. {@link initSaeRandom}). Then the whole decoder
 * is replaced by the encoder's transpose: `W_dec[j] = W_enc[:, j]` for every j, so decoder rows
 * j ≥ k become copies of those untouched encoder columns (as published). `b_enc` and `b_dec` are
 * set to 0 (the published function leaves them as they are, which is 0 after SAELens's init).
 *
 * @param embedding the toy model's feature directions, `[nFeatures][dIn]`.
 * @param options `noiseLevel` (default 0), `featureOrdering` (default identity; integer indices
 *   in [0, nFeatures), at least k of them, the first k used), `seed` of the noise (default 0).
 * @example
 * ```ts
 * import { paramLayout } from "./layout.ts";
 * import { initSaeToMatchModel } from "./init.ts";
 * const layout = paramLayout(2, 2);
 * const params = new Float32Array(layout.size);
 * const embedding = Float32Array.from([1, 0, 0, 1]); // two features in 2 dimensions
 * initSaeToMatchModel(params, layout, embedding, 2, { featureOrdering: [1, 0] });
 * console.assert(params[layout.wDec + 1] === 1); // W_dec[0] = feature 1 = [0, 1]
 * ```
 */
export function initSaeToMatchModel(
  params: Float32Array,
  layout: ParamLayout,
  embedding: Float32Array,
  nFeatures: number,
  options: { noiseLevel?: number; featureOrdering?: number[]; seed?: number } = {},
): void {
  checkBlock("initSaeToMatchModel", params, layout);
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
  const rng = createRng(options.seed ?? 0);
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

/**
 * SAELens 5's `TrainingSAE` initialisation: `b_enc = 0`; `W_dec` (dSae × dIn) drawn
 * kaiming-uniform, U(±sqrt(6/dIn)) (torch's default `kaiming_uniform_`: fan-in = dIn, gain √2);
 * `W_enc = W_dec`ᵀ when `initEncoderAsDecoderTranspose`, else drawn kaiming-uniform on
 * (dIn × dSae), U(±sqrt(6/dSae)); then, when `normalizeSaeDecoder`, every `W_dec` row is scaled to
 * unit norm (after the transpose, so the encoder keeps the unscaled values); `b_dec = 0`.
 * Reproducible per `seed`.
 *
 * @example
 * ```ts
 * import { resolveSaeConfig } from "./config.ts";
 * import { paramLayout } from "./layout.ts";
 * import { initSaeRandom } from "./init.ts";
 * const config = resolveSaeConfig({ dIn: 8, dSae: 4, initEncoderAsDecoderTranspose: true });
 * const layout = paramLayout(8, 4);
 * const params = new Float32Array(layout.size);
 * initSaeRandom(params, layout, config, 42);
 * ```
 */
export function initSaeRandom(
  params: Float32Array,
  layout: ParamLayout,
  config: SaeConfig,
  seed: number,
): void {
  checkBlock("initSaeRandom", params, layout);
  const { dIn: D, dSae: S } = layout;
  if (config.dIn !== D || config.dSae !== S) {
    throw new ConfigError(
      `initSaeRandom: config shape (dIn ${config.dIn}, dSae ${config.dSae}) must match the ` +
        `layout (dIn ${D}, dSae ${S})`,
    );
  }
  const rng = createRng(seed);
  const decBound = Math.sqrt(6 / D);
  for (let k = 0; k < S * D; k++) {
    params[layout.wDec + k] = (2 * rng.uniform() - 1) * decBound;
  }
  if (config.initEncoderAsDecoderTranspose) {
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
  if (config.normalizeSaeDecoder) {
    for (let j = 0; j < S; j++) {
      let sq = 0;
      for (let i = 0; i < D; i++) sq += params[layout.wDec + j * D + i]! ** 2;
      const norm = Math.sqrt(sq);
      if (norm === 0) continue;
      for (let i = 0; i < D; i++) params[layout.wDec + j * D + i] /= norm;
    }
  }
  params.fill(0, layout.bEnc, layout.bEnc + S);
  params.fill(0, layout.bDec, layout.bDec + D);
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
      for (let d = 0; d < dim; d++) out[d] += weights[r]! * points[r * dim + d]!;
    }
    for (let d = 0; d < dim; d++) out[d] /= total;
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

/**
 * Initialises `b_dec`: `zeros`; `mean` of the batch's rows; or their `geometric_median`
 * (SAELens's Weiszfeld iterations, see the file's notes: start at the mean, weights
 * `1/max(distance, 1e-6)`, at most 100 iterations, stop when the objective changes by at most
 * 1e-20 of itself; computed in float64, stored as float32).
 *
 * @param batch inputs `[rows][dIn]`, needed for `mean` and `geometric_median`.
 * @param rows number of rows of `batch` to use (default: all of it).
 * @example
 * ```ts
 * import { paramLayout } from "./layout.ts";
 * import { initBDec } from "./init.ts";
 * const layout = paramLayout(2, 1);
 * const params = new Float32Array(layout.size);
 * initBDec(params, layout, "mean", Float32Array.from([0, 0, 2, 4]));
 * console.assert(params[layout.bDec] === 1 && params[layout.bDec + 1] === 2);
 * ```
 */
export function initBDec(
  params: Float32Array,
  layout: ParamLayout,
  method: BDecInitMethod,
  batch?: Float32Array,
  rows?: number,
): void {
  checkBlock("initBDec", params, layout);
  const D = layout.dIn;
  if (method === "zeros") {
    params.fill(0, layout.bDec, layout.bDec + D);
    return;
  }
  if (method !== "mean" && method !== "geometric_median") {
    throw new ConfigError(
      `initBDec: method must be one of zeros, mean, geometric_median, got ${
        JSON.stringify(method)
      }`,
    );
  }
  if (batch === undefined) {
    throw new RangeError(`initBDec: method ${method} needs a batch of inputs, got none`);
  }
  const n = rows ?? batch.length / D;
  if (!Number.isInteger(n) || n <= 0 || n * D > batch.length) {
    throw new RangeError(
      `initBDec: rows must be a positive integer with rows·dIn <= batch.length (${batch.length}), ` +
        `got ${rows ?? `${batch.length}/${D}`}`,
    );
  }
  let value: Float64Array;
  if (method === "mean") {
    value = new Float64Array(D);
    for (let r = 0; r < n; r++) for (let d = 0; d < D; d++) value[d] += batch[r * D + d]!;
    for (let d = 0; d < D; d++) value[d] /= n;
  } else {
    value = geometricMedian(batch, n, D);
  }
  params.set(value, layout.bDec);
}
