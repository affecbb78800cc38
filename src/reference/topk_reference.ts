/**
 * The float64 CPU reference of TopK and BatchTopK selection, the BatchTopK threshold and the
 * dead-latent auxiliary loss's selection: the definition the GPU kernels are tested against.
 *
 * Ties are broken deterministically: among equal values the lower flat index wins (TopK: the
 * lower latent; BatchTopK: the earlier row, then the lower latent, i.e. `row · S + latent`).
 * B = batch rows, S = dSae; arrays are row-major `[B][S]`.
 */
import type { Architecture } from "../sae/config.ts";

/** How a TopK-family SAE selects its activations (and the auxiliary loss's settings). */
export interface TopKSelection {
  /** `topk` (per row) or `batchtopk` (over the flattened batch). */
  architecture: Exclude<Architecture, "standard">;
  /** Kept per row (TopK), or ⌊k · B⌋ kept over the batch (BatchTopK; k may be fractional). */
  k: number;
  /** The dead-latent auxiliary loss; absent or coefficient 0: none. */
  aux?: TopKAux;
}

/** The auxiliary loss of dead latents (SAELens's TopK aux loss). */
export interface TopKAux {
  /** `[S]`: whether each latent is dead (has not fired for more than the window). */
  dead: ArrayLike<boolean>;
  /** The configured k_aux (SAELens: ⌊dIn / 2⌋). */
  kAux: number;
  /** Its coefficient. */
  coefficient: number;
}

/** Whether value `a` at flat index `i` ranks above value `b` at flat index `j`. */
function ranksAbove(a: number, i: number, b: number, j: number): boolean {
  return a > b || (a === b && i < j);
}

/**
 * Zeroes all but each row's `k` largest entries of `acts` (B,S), in place (ties: lower latent).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { selectTopK } from "./topk_reference.ts";
 * const acts = Float64Array.from([3, 1, 2, 0.5, 0.5, 0.5]);
 * selectTopK(acts, 2, 3, 2);
 * assert.deepEqual([...acts], [3, 0, 2, 0.5, 0.5, 0]); // a tie keeps the lower latents
 * ```
 */
export function selectTopK(acts: Float64Array, B: number, S: number, k: number): void {
  const keep = new Uint8Array(S);
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < S; j++) {
      let above = 0;
      for (let i = 0; i < S; i++) {
        if (i !== j && ranksAbove(acts[b * S + i]!, i, acts[b * S + j]!, j)) above++;
      }
      keep[j] = above < k ? 1 : 0;
    }
    for (let j = 0; j < S; j++) if (!keep[j]) acts[b * S + j] = 0;
  }
}

/**
 * Zeroes all but the ⌊k · B⌋ largest entries of the whole batch `acts` (B,S), in place (ties:
 * the lower flat index `b · S + j`); k may be fractional. A row may keep more or fewer than `k`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { selectBatchTopK } from "./topk_reference.ts";
 * const acts = Float64Array.from([5, 4, 1, 0.5]); // two rows of two latents, k = 1: keep 2
 * selectBatchTopK(acts, 2, 2, 1);
 * assert.deepEqual([...acts], [5, 4, 0, 0]); // the first row takes both
 * ```
 */
export function selectBatchTopK(acts: Float64Array, B: number, S: number, k: number): void {
  const n = B * S;
  const kept = Math.min(n, batchKept(k, B));
  const order = Array.from({ length: n }, (_, i) => i);
  order.sort((i, j) => (acts[j]! - acts[i]!) || (i - j));
  for (let r = kept; r < n; r++) acts[order[r]!] = 0;
}

/**
 * How many activations BatchTopK keeps over a batch of B rows: ⌊k · B⌋ (SAELens's
 * `int(k * batch)`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { batchKept } from "./topk_reference.ts";
 * assert.equal(batchKept(1, 128), 128);
 * assert.equal(batchKept(0.3, 128), 38);
 * ```
 */
export function batchKept(k: number, B: number): number {
  return Math.floor(k * B + 1e-9);
}

/**
 * Applies a selection to ReLU activations `acts` (B,S) in place.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { applySelection } from "./topk_reference.ts";
 * const acts = Float64Array.from([1, 2, 3, 4]);
 * applySelection(acts, 2, 2, { architecture: "topk", k: 1 });
 * assert.deepEqual([...acts], [0, 2, 0, 4]);
 * ```
 */
export function applySelection(
  acts: Float64Array,
  B: number,
  S: number,
  selection: TopKSelection,
): void {
  if (selection.architecture === "topk") selectTopK(acts, B, S, selection.k);
  else selectBatchTopK(acts, B, S, selection.k);
}

/**
 * The BatchTopK threshold after one step: `(1 − lr)·θ + lr·min{kept activation > 0}`, or θ
 * unchanged when nothing positive was kept.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nextThreshold } from "./topk_reference.ts";
 * assert.equal(nextThreshold(1, [0, 3, 0.5], 0.01), 0.99 * 1 + 0.01 * 0.5);
 * assert.equal(nextThreshold(1, [0, 0], 0.01), 1);
 * ```
 */
export function nextThreshold(theta: number, kept: ArrayLike<number>, lr: number): number {
  let min = Infinity;
  for (let i = 0; i < kept.length; i++) {
    const v = kept[i]!;
    if (v > 0 && v < min) min = v;
  }
  return min === Infinity ? theta : (1 - lr) * theta + lr * min;
}

/**
 * Dead-latent counters after one step: 0 for a latent that fired (kept > 0 in any row), one more
 * otherwise. `steps` (S) is updated in place.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { advanceDeadCounters } from "./topk_reference.ts";
 * const steps = Uint32Array.from([5, 5]);
 * advanceDeadCounters(steps, [0, 1, 0, 0], 2, 2); // latent 1 fired in row 0
 * assert.deepEqual([...steps], [6, 0]);
 * ```
 */
export function advanceDeadCounters(
  steps: Uint32Array,
  kept: ArrayLike<number>,
  B: number,
  S: number,
): void {
  for (let j = 0; j < S; j++) {
    let fired = false;
    for (let b = 0; b < B && !fired; b++) fired = kept[b * S + j]! > 0;
    steps[j] = fired ? 0 : steps[j]! + 1;
  }
}

/**
 * The auxiliary loss's activations: per row, the pre-activations of the top `min(kAux, dead)` dead
 * latents (not passed through ReLU; ties: lower latent), 0 elsewhere; which entries were selected
 * (the gradient reaches them whatever their value); and the loss's scale `min(dead / kAux, 1)`.
 * No dead latent: all zeros and scale 0.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { auxActivations } from "./topk_reference.ts";
 * const pre = Float64Array.from([-1, -2, 3]); // one row; latents 0 and 1 dead, kAux 1
 * const { acts, scale } = auxActivations(pre, 1, 3, [true, true, false], 1);
 * assert.deepEqual([...acts], [-1, 0, 0]);
 * assert.equal(scale, 1);
 * ```
 */
export function auxActivations(
  pre: Float64Array,
  B: number,
  S: number,
  dead: ArrayLike<boolean>,
  kAux: number,
): { acts: Float64Array; selected: Uint8Array; scale: number } {
  const acts = new Float64Array(B * S);
  const selected = new Uint8Array(B * S);
  let numDead = 0;
  for (let j = 0; j < S; j++) if (dead[j]) numDead++;
  if (numDead === 0) return { acts, selected, scale: 0 };
  const keep = Math.min(kAux, numDead);
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < S; j++) {
      if (!dead[j]) continue;
      let above = 0;
      for (let i = 0; i < S; i++) {
        if (i !== j && dead[i] && ranksAbove(pre[b * S + i]!, i, pre[b * S + j]!, j)) above++;
      }
      if (above < keep) {
        acts[b * S + j] = pre[b * S + j]!;
        selected[b * S + j] = 1;
      }
    }
  }
  return { acts, selected, scale: Math.min(numDead / kAux, 1) };
}
