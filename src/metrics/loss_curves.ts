/**
 * The single-latent study's analytic loss curves (no training): one unit latent swept from the
 * parent direction p (t = 0) to the child direction c (t = 1) of two orthonormal features,
 * `v(t) = normalise((1 − t)·p + t·c)`, encoding `h = ReLU(x·v)` and decoding `h·v`. The expected
 * loss over the two inputs that fire the parent, `p` alone and `p + c` together, is
 * `P(parent only)·L(p) + P(parent and child)·L(p + c)` with `L(x) = ‖h·v − x‖² + λ·|h|`. In the
 * plane of p and c every quantity is a function of t alone, so the curve is exact.
 */

/**
 * The expected loss at t ∈ [0, 1] (see the file header).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { singleLatentLoss } from "./loss_curves.ts";
 * // At t = 0 the latent is the parent: p costs λ, p + c costs the child's 1 plus λ.
 * assert.equal(singleLatentLoss(0, { parentOnly: 0.3, parentAndChild: 0.1, l1: 0.1 }), 0.3 * 0.1 + 0.1 * 1.1);
 * ```
 */
export function singleLatentLoss(
  t: number,
  { parentOnly, parentAndChild, l1 }: { parentOnly: number; parentAndChild: number; l1: number },
): number {
  // v = (1 − t, t) / ‖·‖ in the orthonormal basis (p, c).
  const norm = Math.hypot(1 - t, t);
  const v = [(1 - t) / norm, t / norm] as const;
  const loss = (x: readonly [number, number]) => {
    const h = Math.max(0, x[0] * v[0] + x[1] * v[1]);
    const e0 = h * v[0] - x[0];
    const e1 = h * v[1] - x[1];
    return e0 * e0 + e1 * e1 + l1 * Math.abs(h);
  };
  return parentOnly * loss([1, 0]) + parentAndChild * loss([1, 1]);
}

/**
 * One loss curve of the study.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lossCurve, type LossCurve } from "./loss_curves.ts";
 * const curve: LossCurve = lossCurve("skew_parent", { parentOnly: 0.3, parentAndChild: 0.1, l1: 0 });
 * assert.equal(curve.t.length, 100);
 * assert.deepEqual([curve.t[0], curve.t[99]], [0, 1]);
 * ```
 */
export interface LossCurve {
  /** `skew_parent` or `skew_child`. */
  name: string;
  /** The sparsity coefficient λ. */
  l1: number;
  /** Probability that the parent fires alone. */
  parentOnly: number;
  /** Probability that parent and child fire together. */
  parentAndChild: number;
  /** The positions t (0: parent direction, 1: child direction). */
  t: number[];
  /** The expected loss at each t. */
  loss: number[];
}

/**
 * The expected loss on the notebook's grid: `points` positions t = i / (points − 1) (default 100).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lossCurve } from "./loss_curves.ts";
 * const curve = lossCurve("mine", { parentOnly: 0.5, parentAndChild: 0.5, l1: 0 }, 3);
 * assert.deepEqual(curve.t, [0, 0.5, 1]);
 * assert.equal(curve.loss[0], 0.5); // the latent on the parent: only p + c leaves the child's 1
 * ```
 */
export function lossCurve(
  name: string,
  settings: { parentOnly: number; parentAndChild: number; l1: number },
  points = 100,
): LossCurve {
  const t = Array.from({ length: points }, (_, i) => i / (points - 1));
  return { name, ...settings, t, loss: t.map((x) => singleLatentLoss(x, settings)) };
}

/**
 * The notebook's two landscapes, each with λ = 0 and λ = 0.1: "skew parent" (the parent fires
 * alone with probability 0.3, with the child 0.1) and "skew child" (0.1 and 0.3).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SINGLE_LATENT_LOSS_CURVES } from "./loss_curves.ts";
 * assert.deepEqual(SINGLE_LATENT_LOSS_CURVES.map((c) => [c.name, c.l1]), [
 *   ["skew_parent", 0], ["skew_parent", 0.1], ["skew_child", 0], ["skew_child", 0.1],
 * ]);
 * ```
 */
export const SINGLE_LATENT_LOSS_CURVES: readonly LossCurve[] = [
  { name: "skew_parent", parentOnly: 0.3, parentAndChild: 0.1 },
  { name: "skew_child", parentOnly: 0.1, parentAndChild: 0.3 },
].flatMap(({ name, ...probs }) => [0, 0.1].map((l1) => lossCurve(name, { ...probs, l1 })));

/**
 * The position t of a curve's minimum (the first, on ties).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { curveMinimum, lossCurve } from "./loss_curves.ts";
 * // Only the pair fires: the best unit latent points half way, along p + c.
 * assert.equal(curveMinimum(lossCurve("pair", { parentOnly: 0, parentAndChild: 1, l1: 0 }, 101)), 0.5);
 * ```
 */
export function curveMinimum(curve: LossCurve): number {
  let best = 0;
  curve.loss.forEach((v, i) => {
    if (v < curve.loss[best]!) best = i;
  });
  return curve.t[best]!;
}
