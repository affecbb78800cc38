/**
 * The toy model: `nFeatures` unit vectors in `hiddenDim` dimensions, made nearly orthogonal (or
 * of a target cosine similarity) by the published procedure, and the map `x = features @ E`.
 *
 * Orthogonalisation (float64 on the host, seeded by {@link Rng}): rows start standard normal and
 * are normalised, then `steps` Adam steps (lr 0.01, β = (0.9, 0.999), ε = 1e-8, PyTorch's
 * defaults) minimise `Σ_{i≠j}(e_i·e_j − target)² + n·Σ_i(e_i·e_i − 1)²`, then rows are normalised
 * again.
 */
import type { Gpu } from "../gpu/device.ts";
import { getGpu } from "../gpu/device.ts";
import { embedOnGpu } from "./gpu_sampler.ts";
import { checkInteger } from "../check_value.ts";
import { Rng } from "./rng.ts";

/**
 * Options of {@link orthogonalize}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { orthogonalize, type OrthogonalizeOptions } from "./toy_model.ts";
 * let reports = 0;
 * const onProgress = () => reports++;
 * const options: OrthogonalizeOptions = { seed: 2, targetCosSim: 0.5, onProgress };
 * const e = orthogonalize(2, 4, options); // two unit vectors in 4-d, 60° apart
 * const cos = e[0]! * e[4]! + e[1]! * e[5]! + e[2]! * e[6]! + e[3]! * e[7]!;
 * assert.ok(Math.abs(cos - 0.5) < 1e-6);
 * assert.equal(reports, 101); // every 1% of the 1000 steps, and once at the end
 * ```
 */
export interface OrthogonalizeOptions {
  /** Seed of the initial normal draws (default 0). */
  seed?: number;
  /** Target cosine similarity between distinct vectors (default 0). */
  targetCosSim?: number;
  /** Adam steps (default 1000). */
  steps?: number;
  /** Adam learning rate (default 0.01). */
  lr?: number;
  /** Called about every 1% of the steps with the steps done and the total (long set-ups). */
  onProgress?: (done: number, total: number) => void;
}

/** Seconds per unit of `numVectors² · vectorLen · steps` (measured on a 2-core CPU: ~1.6 ns). */
const ORTHOGONALIZE_SECONDS_PER_UNIT = 2e-9;

/** About how long {@link orthogonalize} takes (seconds on a 2-core CPU; it grows as n² · d). */
export function orthogonalizeSeconds(numVectors: number, vectorLen: number, steps = 1000): number {
  return numVectors * numVectors * vectorLen * steps * ORTHOGONALIZE_SECONDS_PER_UNIT;
}

/**
 * The orthogonalisation loss `Σ_{i≠j}(e_i·e_j − target)² + n·Σ_i(e_i·e_i − 1)²` of `e` (`[n][d]`,
 * row-major) and its gradient `2·G·E` with `G_ij = 2(e_i·e_j − target)` off the diagonal and
 * `2n(e_i·e_i − 1)` on it.
 */
export function orthogonalityLoss(
  e: Float64Array,
  n: number,
  d: number,
  targetCosSim = 0,
): { loss: number; grad: Float64Array } {
  const g = new Float64Array(n * n);
  let loss = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let dot = 0;
      for (let k = 0; k < d; k++) dot += e[i * d + k]! * e[j * d + k]!;
      if (i === j) {
        loss += n * (dot - 1) ** 2;
        g[i * n + j] = 2 * n * (dot - 1);
      } else {
        loss += (dot - targetCosSim) ** 2;
        g[i * n + j] = 2 * (dot - targetCosSim);
      }
    }
  }
  const grad = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const coeff = 2 * g[i * n + j]!;
      for (let k = 0; k < d; k++) grad[i * d + k]! += coeff * e[j * d + k]!;
    }
  }
  return { loss, grad };
}

function normalizeRows(e: Float64Array, n: number, d: number): void {
  for (let i = 0; i < n; i++) {
    let norm = 0;
    for (let k = 0; k < d; k++) norm += e[i * d + k]! ** 2;
    norm = Math.sqrt(norm);
    for (let k = 0; k < d; k++) e[i * d + k]! /= norm;
  }
}

/**
 * `numVectors` unit vectors of length `vectorLen` whose pairwise cosine similarities are as close
 * to `targetCosSim` as the published optimisation gets them.
 *
 * @returns `[numVectors][vectorLen]` row-major float64.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { orthogonalize } from "./toy_model.ts";
 * const e = orthogonalize(3, 8, { seed: 1 }); // [3][8]
 * const dot = (i: number, j: number) => [0, 1, 2, 3, 4, 5, 6, 7].reduce((sum, k) =>
 *   sum + e[i * 8 + k]! * e[j * 8 + k]!, 0);
 * assert.ok(Math.abs(dot(0, 0) - 1) < 1e-12); // unit rows
 * assert.ok(Math.abs(dot(0, 1)) < 1e-5 && Math.abs(dot(1, 2)) < 1e-5); // nearly orthogonal
 * assert.deepEqual(orthogonalize(3, 8, { seed: 1 }), e); // reproducible per seed
 * ```
 */
export function orthogonalize(
  numVectors: number,
  vectorLen: number,
  { seed = 0, targetCosSim = 0, steps = 1000, lr = 0.01, onProgress }: OrthogonalizeOptions = {},
): Float64Array {
  checkInteger("numVectors", numVectors, 1);
  checkInteger("vectorLen", vectorLen, 1);
  const n = numVectors, d = vectorLen;
  const e = new Rng(seed).normals(n * d);
  normalizeRows(e, n, d);
  const m = new Float64Array(n * d);
  const v = new Float64Array(n * d);
  const beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  const every = Math.max(1, Math.floor(steps / 100));
  for (let t = 1; t <= steps; t++) {
    if (onProgress && (t - 1) % every === 0) onProgress(t - 1, steps);
    const { grad } = orthogonalityLoss(e, n, d, targetCosSim);
    const bias1 = 1 - beta1 ** t, bias2 = 1 - beta2 ** t;
    for (let i = 0; i < n * d; i++) {
      const gi = grad[i]!;
      m[i] = beta1 * m[i]! + (1 - beta1) * gi;
      v[i] = beta2 * v[i]! + (1 - beta2) * gi * gi;
      e[i]! -= (lr / bias1) * m[i]! / (Math.sqrt(v[i]!) / Math.sqrt(bias2) + eps);
    }
  }
  normalizeRows(e, n, d);
  onProgress?.(steps, steps);
  return e;
}

/**
 * Options of {@link ToyModel}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { orthogonalize, ToyModel, type ToyModelOptions } from "./toy_model.ts";
 * const options: ToyModelOptions = { nFeatures: 4, hiddenDim: 8, seed: 3 };
 * const model = new ToyModel(options);
 * assert.equal(model.embedding.length, 4 * 8); // [nFeatures][hiddenDim]
 * assert.deepEqual(model.embedding64, orthogonalize(4, 8, { seed: 3 }));
 * ```
 */
export interface ToyModelOptions extends OrthogonalizeOptions {
  /** Number of true features (rows of the embedding). */
  nFeatures: number;
  /** Dimension of the model's activations (d_in of the SAEs). */
  hiddenDim: number;
}

/**
 * The toy model: a fixed embedding of `nFeatures` unit vectors in `hiddenDim` dimensions.
 *
 * @example
 * ```ts ignore
 * const model = new ToyModel({ nFeatures: 4, hiddenDim: 50, seed: 0 });
 * const x = await model.embed(features); // [B][50] from [B][4]
 * ```
 */
export class ToyModel {
  /** Number of true features (rows of the embedding). */
  readonly nFeatures: number;
  /** Dimension of the model's activations (d_in of the SAEs). */
  readonly hiddenDim: number;
  /** `[nFeatures][hiddenDim]` float64, as optimised. */
  readonly embedding64: Float64Array;
  /** `[nFeatures][hiddenDim]` float32: row f is feature f's direction. */
  readonly embedding: Float32Array;

  /**
   * Builds the embedding: `nFeatures` unit vectors in `hiddenDim` dimensions.
   *
   * @param options sizes, plus the seed and optimisation settings of {@link orthogonalize}.
   */
  constructor(options: ToyModelOptions) {
    const { nFeatures, hiddenDim, ...rest } = options;
    this.nFeatures = nFeatures;
    this.hiddenDim = hiddenDim;
    this.embedding64 = orthogonalize(nFeatures, hiddenDim, rest);
    this.embedding = Float32Array.from(this.embedding64);
  }

  /**
   * `x = features @ E` on the GPU (the `embed` entry point of sample.wgsl).
   *
   * @param features `[B][nFeatures]`.
   * @returns `[B][hiddenDim]`.
   */
  async embed(features: Float32Array, gpu?: Gpu): Promise<Float32Array> {
    return embedOnGpu(
      gpu ?? await getGpu(),
      features,
      this.embedding,
      this.nFeatures,
      this.hiddenDim,
    );
  }
}
