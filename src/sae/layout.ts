/**
 * Where each parameter tensor lives in a model's flat block of floats.
 *
 * One model's parameters are one contiguous block, in SAELens's order and row-major shapes:
 * `W_enc [dIn][dSae]`, `b_enc [dSae]`, `W_dec [dSae][dIn]`, `b_dec [dIn]`. M models are M blocks
 * back to back (model m starts at `m * size`). Gradients and both Adam moments use the same
 * layout, so the optimiser is one loop over `M * size` floats.
 */

/**
 * Offsets (in floats) of the four tensors within one model's block, and the block size.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type ParamLayout, paramLayout } from "./layout.ts";
 * import { MatryoshkaSAE } from "./sae.ts";
 * const layout: ParamLayout = paramLayout(3, 2);
 * assert.deepEqual(layout, { dIn: 3, dSae: 2, wEnc: 0, bEnc: 6, wDec: 8, bDec: 14, size: 17 });
 * const sae = new MatryoshkaSAE({ dIn: 3, dSae: 2 });
 * sae.params[layout.bDec] = 5; // b_dec[0]
 * assert.equal(sae.bDec[0], 5);
 * ```
 */
export interface ParamLayout {
  /** Input (activation) dimension of the SAE. */
  dIn: number;
  /** Number of SAE latents (dictionary size). */
  dSae: number;
  /** Offset of `W_enc [dIn][dSae]`. */
  wEnc: number;
  /** Offset of `b_enc [dSae]`. */
  bEnc: number;
  /** Offset of `W_dec [dSae][dIn]`. */
  wDec: number;
  /** Offset of `b_dec [dIn]`. */
  bDec: number;
  /** Floats per model. */
  size: number;
}

/** The layout for an SAE with `dIn` inputs and `dSae` latents. */
export function paramLayout(dIn: number, dSae: number): ParamLayout {
  const wEnc = 0;
  const bEnc = dIn * dSae;
  const wDec = bEnc + dSae;
  const bDec = wDec + dSae * dIn;
  return { dIn, dSae, wEnc, bEnc, wDec, bDec, size: bDec + dIn };
}

/** The four tensors of one model, as views into a flat block (float32 or float64). */
export interface ParamViews<T extends Float32Array | Float64Array> {
  /** Encoder weights `W_enc [dIn][dSae]`. */
  wEnc: T;
  /** Encoder bias `b_enc [dSae]`. */
  bEnc: T;
  /** Decoder weights `W_dec [dSae][dIn]` (row j is latent j's direction). */
  wDec: T;
  /** Decoder bias `b_dec [dIn]`. */
  bDec: T;
}

/** Views of model `m`'s four tensors inside `flat` (which holds M blocks of `layout.size`). */
export function paramViews<T extends Float32Array | Float64Array>(
  flat: T,
  layout: ParamLayout,
  m = 0,
): ParamViews<T> {
  const base = m * layout.size;
  const view = (offset: number, length: number) =>
    flat.subarray(base + offset, base + offset + length) as T;
  return {
    wEnc: view(layout.wEnc, layout.dIn * layout.dSae),
    bEnc: view(layout.bEnc, layout.dSae),
    wDec: view(layout.wDec, layout.dSae * layout.dIn),
    bDec: view(layout.bDec, layout.dIn),
  };
}

/**
 * How a training engine holds M models' parameters in one buffer: each model's block at a stride
 * of at least `size` floats (zeros between), in the layout's order or with W_dec transposed to
 * `[dIn][dSae]` (the fused kernel: a column of W_dec, which it reads per input, is then
 * contiguous). Gradients and Adam moments are held the same way.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { paramLayout, paramPacking } from "./layout.ts";
 * const layout = paramLayout(3, 2); // W_enc 6, b_enc 2, W_dec [2][3] at 8, b_dec 3: 17 floats
 * const packing = paramPacking(layout, { stride: 20, transposeWDec: true });
 * const sae = Float32Array.from({ length: 17 }, (_, i) => i);
 * const packed = packing.pack([sae, sae]);
 * assert.equal(packed.length, 40);
 * assert.deepEqual([...packed.subarray(8, 14)], [8, 11, 9, 12, 10, 13]); // W_dec[l][d] at [d][l]
 * assert.deepEqual(packing.unpack(packed, 1), sae);
 * ```
 */
export interface ParamPacking {
  /** Floats from one model's block to the next's (at least the layout's size). */
  stride: number;
  /** Whether W_dec is held as `[dIn][dSae]`. */
  transposeWDec: boolean;
  /** The models' parameters, each in {@link ParamLayout} order, as one `[M][stride]` array. */
  pack(models: readonly ArrayLike<number>[]): Float32Array<ArrayBuffer>;
  /** Model m's parameters in {@link ParamLayout} order, from a `[M][stride]` array. */
  unpack(packed: Float32Array, m: number): Float32Array<ArrayBuffer>;
}

/** The packing of `layout` at `stride` (default: its size), W_dec transposed when asked. */
export function paramPacking(
  layout: ParamLayout,
  { stride = layout.size, transposeWDec = false }: { stride?: number; transposeWDec?: boolean } =
    {},
): ParamPacking {
  if (stride < layout.size) {
    throw new RangeError(`paramPacking: stride ${stride} is below the ${layout.size} parameters`);
  }
  const { dIn, dSae, wDec, size } = layout;
  // Float i of a model's block in layout order sits at at(i) of its packed block.
  const at = (i: number): number => {
    if (!transposeWDec || i < wDec || i >= wDec + dSae * dIn) return i;
    const l = Math.floor((i - wDec) / dIn);
    const d = i - wDec - l * dIn;
    return wDec + d * dSae + l;
  };
  const index = Int32Array.from({ length: size }, (_, i) => at(i));
  return {
    stride,
    transposeWDec,
    pack(models) {
      const packed = new Float32Array(models.length * stride);
      models.forEach((params, m) => {
        const base = m * stride;
        for (let i = 0; i < size; i++) packed[base + index[i]!] = params[i]!;
      });
      return packed;
    },
    unpack(packed, m) {
      const base = m * stride;
      const params = new Float32Array(size);
      for (let i = 0; i < size; i++) params[i] = packed[base + index[i]!]!;
      return params;
    },
  };
}
