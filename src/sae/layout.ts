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
