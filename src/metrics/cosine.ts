/**
 * Cosine similarity of each SAE latent with each true feature, on the CPU in float64: the
 * notebook's metric (`cos_sims(sae.W_enc, embed)` and `cos_sims(sae.W_dec.T, embed)`).
 *
 * A latent's encoder direction is column `W_enc[:, latent]`; its decoder direction is row
 * `W_dec[latent]`; feature f's direction is row f of the toy model's embedding `[nFeatures][dIn]`.
 * As in the published code (which divides by the norm), a zero-length vector gives NaN.
 */
import type { ParamLayout } from "../sae/layout.ts";

function checkInputs(
  params: ArrayLike<number>,
  layout: ParamLayout,
  embedding: ArrayLike<number>,
  nFeatures: number,
): void {
  if (params.length < layout.size) {
    throw new RangeError(
      `Invalid params: expected at least ${layout.size} floats (one model with dIn ${layout.dIn}, ` +
        `dSae ${layout.dSae}), got ${params.length}`,
    );
  }
  if (!Number.isInteger(nFeatures) || nFeatures < 1) {
    throw new RangeError(`Invalid nFeatures: expected a positive integer, got ${nFeatures}`);
  }
  if (embedding.length !== nFeatures * layout.dIn) {
    throw new RangeError(
      `Invalid embedding: expected [${nFeatures}][${layout.dIn}] = ${nFeatures * layout.dIn} ` +
        `floats, got ${embedding.length}`,
    );
  }
}

/**
 * `[latent][feature]` cosine similarities between `latentDir(latent, d)` vectors and embedding rows.
 */
function cosSims(
  nLatents: number,
  dIn: number,
  latentDir: (latent: number, d: number) => number,
  embedding: ArrayLike<number>,
  nFeatures: number,
): number[][] {
  const featureNorms = new Float64Array(nFeatures);
  for (let f = 0; f < nFeatures; f++) {
    let s = 0;
    for (let d = 0; d < dIn; d++) s += embedding[f * dIn + d]! ** 2;
    featureNorms[f] = Math.sqrt(s);
  }
  const out: number[][] = [];
  const v = new Float64Array(dIn);
  for (let l = 0; l < nLatents; l++) {
    let s = 0;
    for (let d = 0; d < dIn; d++) {
      v[d] = latentDir(l, d);
      s += v[d]! ** 2;
    }
    const norm = Math.sqrt(s);
    const row: number[] = [];
    for (let f = 0; f < nFeatures; f++) {
      let dot = 0;
      for (let d = 0; d < dIn; d++) dot += v[d]! * embedding[f * dIn + d]!;
      row.push(dot / (norm * featureNorms[f]!));
    }
    out.push(row);
  }
  return out;
}

/**
 * Cosine similarity of each encoder direction `W_enc[:, latent]` with each true feature.
 *
 * @param params one model's parameter block (layout of `src/sae/layout.ts`; extra floats ignored)
 * @param embedding the feature directions, `[nFeatures][dIn]` row-major
 * @returns `[latent][feature]`, float64
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encoderCosSims } from "./cosine.ts";
 * import { paramLayout } from "../sae/layout.ts";
 * const layout = paramLayout(2, 1);
 * // W_enc = [[1], [1]], b_enc, W_dec, b_dec = 0
 * const params = new Float32Array([1, 1, 0, 0, 0, 0, 0]);
 * const sims = encoderCosSims(params, layout, new Float32Array([1, 0]), 1);
 * assert.ok(Math.abs(sims[0]![0]! - Math.SQRT1_2) < 1e-12);
 * ```
 */
export function encoderCosSims(
  params: Float32Array | Float64Array,
  layout: ParamLayout,
  embedding: Float32Array | Float64Array,
  nFeatures: number,
): number[][] {
  checkInputs(params, layout, embedding, nFeatures);
  const { dIn, dSae, wEnc } = layout;
  return cosSims(dSae, dIn, (l, d) => params[wEnc + d * dSae + l]!, embedding, nFeatures);
}

/**
 * Cosine similarity of each decoder direction `W_dec[latent]` with each true feature.
 *
 * @param params one model's parameter block (layout of `src/sae/layout.ts`; extra floats ignored)
 * @param embedding the feature directions, `[nFeatures][dIn]` row-major
 * @returns `[latent][feature]`, float64
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decoderCosSims } from "./cosine.ts";
 * import { paramLayout } from "../sae/layout.ts";
 * const layout = paramLayout(2, 2);
 * // W_dec = [[0, 2], [-1, 0]] (latent 0 along feature 1, latent 1 against feature 0); rest 0
 * const params = new Float32Array([0, 0, 0, 0, 0, 0, 0, 2, -1, 0, 0, 0]);
 * const sims = decoderCosSims(params, layout, new Float32Array([1, 0, 0, 1]), 2);
 * assert.deepEqual(sims, [[0, 1], [-1, 0]]);
 * ```
 */
export function decoderCosSims(
  params: Float32Array | Float64Array,
  layout: ParamLayout,
  embedding: Float32Array | Float64Array,
  nFeatures: number,
): number[][] {
  checkInputs(params, layout, embedding, nFeatures);
  const { dIn, wDec } = layout;
  return cosSims(layout.dSae, dIn, (l, d) => params[wDec + l * dIn + d]!, embedding, nFeatures);
}

/**
 * Cosine similarity of the decoder bias `b_dec` with each true feature (0 where `b_dec` is zero),
 * as the single-latent notebook's `b_dec` panel shows it.
 *
 * @param params one model's parameter block (layout of `src/sae/layout.ts`; extra floats ignored)
 * @param embedding the feature directions, `[nFeatures][dIn]` row-major
 * @returns `[feature]`, float64
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { biasCosSims } from "./cosine.ts";
 * import { paramLayout } from "../sae/layout.ts";
 * const layout = paramLayout(2, 1);
 * const params = new Float32Array(layout.size);
 * params.set([0, 0.2], layout.bDec); // b_dec = 0.2 · feature 1
 * assert.deepEqual(biasCosSims(params, layout, new Float32Array([1, 0, 0, 1]), 2), [0, 1]);
 * assert.deepEqual(biasCosSims(new Float32Array(layout.size), layout, new Float32Array([1, 0, 0, 1]), 2), [0, 0]);
 * ```
 */
export function biasCosSims(
  params: Float32Array | Float64Array,
  layout: ParamLayout,
  embedding: Float32Array | Float64Array,
  nFeatures: number,
): number[] {
  checkInputs(params, layout, embedding, nFeatures);
  const { dIn, bDec } = layout;
  const [row] = cosSims(1, dIn, (_, d) => params[bDec + d]!, embedding, nFeatures);
  return row!.map((c) => Number.isNaN(c) ? 0 : c);
}
