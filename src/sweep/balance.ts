/**
 * The balance finder. For one tree, each edge's child component (the parent's latent's encoder
 * cosine with the child; latent 0's along each child on the notebook's trees) is a function of β;
 * averaged over seeds (mean per β), the objective is the largest |child component| over every edge
 * (or their mean, `objective: "mean"`), and β* is the evaluated β that minimises it. The tree is
 * balanceable when every edge's |component| at β* is below the tolerance.
 *
 * Nothing assumes a single sign change: on unequal children latent 0 can jump between regimes as β
 * grows, so the whole curve is scanned (every local minimum is reported) and refinement bisects
 * around the global best point: each round proposes the midpoints between the best β and its
 * nearest evaluated neighbours on both sides, halving the bracket. ∞ (the detached setup) is a
 * candidate but cannot be bisected.
 */

/**
 * What the finder minimises over a tree's edges: the largest |child component| (`max`, the
 * default) or the mean |child component| (`mean`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type BalanceObjective, findBalance } from "./balance.ts";
 * const objective: BalanceObjective = "mean";
 * const samples = [
 *   { beta: 0, encoder: [0.05, 0.05, 0.05] }, // max 0.05, mean 0.05
 *   { beta: 1, encoder: [0.09, 0, 0] }, // max 0.09, mean 0.03
 * ];
 * assert.equal(findBalance(samples).betaStar, 0);
 * assert.equal(findBalance(samples, { objective }).betaStar, 1);
 * ```
 */
export type BalanceObjective = "max" | "mean";

/** The objectives of {@link BalanceObjective}, in the order help texts list them. */
export const BALANCE_OBJECTIVES: readonly BalanceObjective[] = Object.freeze(["max", "mean"]);

/** The objective of one β: the largest or the mean |component| over edges. */
function objectiveOf(means: readonly number[], objective: BalanceObjective): number {
  const abs = means.map(Math.abs);
  if (objective === "mean") return abs.reduce((a, b) => a + b, 0) / Math.max(1, abs.length);
  return Math.max(...abs);
}

/**
 * One trained SAE as the finder sees it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type BalanceSample, findBalance } from "./balance.ts";
 * const sample: BalanceSample = { beta: 0.5, encoder: [0.01, -0.01], decoder: [0.3, 0.2] };
 * const balance = findBalance([sample]);
 * assert.deepEqual([balance.betaStar, balance.decoder], [0.5, [0.3, 0.2]]);
 * ```
 */
export interface BalanceSample {
  /** β of the SAE (Infinity: the detached setup). */
  beta: number;
  /** Each edge's parent latent's encoder cosine with the child, in edge order. */
  encoder: number[];
  /** Each edge's parent latent's decoder cosine with the child (optional; reported at β*). */
  decoder?: number[];
}

/**
 * Mean, minimum and maximum over seeds, per child.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { balanceCurve, type SeedStats } from "./balance.ts";
 * const [point] = balanceCurve([
 *   { beta: 0, encoder: [-0.1, 0.5] },
 *   { beta: 0, encoder: [-0.3, 0.5] },
 * ]);
 * const stats: SeedStats = point!.encoder;
 * assert.deepEqual(stats, { mean: [-0.2, 0.5], min: [-0.3, 0.5], max: [-0.1, 0.5] });
 * ```
 */
export interface SeedStats {
  /** Mean over seeds, per child. */
  mean: number[];
  /** Minimum over seeds, per child. */
  min: number[];
  /** Maximum over seeds, per child. */
  max: number[];
}

/**
 * The curve at one β.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { balanceCurve, type BalanceCurvePoint } from "./balance.ts";
 * const curve: BalanceCurvePoint[] = balanceCurve([
 *   { beta: Infinity, encoder: [0.2, 0.1] },
 *   { beta: 0.25, encoder: [0.01, -0.04] },
 * ]);
 * assert.deepEqual(curve.map((p) => p.beta), [0.25, Infinity]);
 * assert.deepEqual([curve[0]!.seeds, curve[0]!.objective], [1, 0.04]);
 * assert.ok(curve[0]!.decoder.mean.every(Number.isNaN)); // no decoder components given
 * ```
 */
export interface BalanceCurvePoint {
  /** β of the point (Infinity: the detached setup). */
  beta: number;
  /** Number of samples (seeds) averaged. */
  seeds: number;
  /** The encoder component along each edge's child. */
  encoder: SeedStats;
  /** The decoder component along each edge's child. */
  decoder: SeedStats;
  /** The objective: max (or mean) over edges of |mean encoder component|. */
  objective: number;
}

/**
 * The finder's answer for one tree.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type Balance, findBalance } from "./balance.ts";
 * const balance: Balance = findBalance([
 *   { beta: 0, encoder: [-0.3, -0.1] },
 *   { beta: 0.5, encoder: [0.01, -0.06] },
 *   { beta: 1, encoder: [0.2, 0.3] },
 * ]);
 * assert.deepEqual([balance.betaStar, balance.worstChild, balance.maxResidual], [0.5, 1, 0.06]);
 * assert.equal(balance.balanceable, false); // 0.06 is not below the default tolerance 0.02
 * ```
 */
export interface Balance {
  /** The β minimising the objective (Infinity when the detached setup does best). */
  betaStar: number;
  /** What was minimised over the edges. */
  objective: BalanceObjective;
  /** The mean encoder component along each edge's child at β* (edge order). */
  residuals: number[];
  /** The mean decoder component along each edge's child at β* (NaN when not given). */
  decoder: number[];
  /** max |residual|. */
  maxResidual: number;
  /** Index (in edge order) of the edge with the largest |residual|. */
  worstChild: number;
  /** Every edge's index, largest |residual| at β* first (ties: edge order). */
  worstEdges: number[];
  /** `maxResidual < tolerance`: every edge within the tolerance at β*. */
  balanceable: boolean;
  /** The tolerance used. */
  tolerance: number;
  /** Every β where the objective has a local minimum along the curve, ascending. */
  localMinima: number[];
  /** The curve, β ascending (∞ last). */
  curve: BalanceCurvePoint[];
}

function isUsable(s: BalanceSample): boolean {
  return !Number.isNaN(s.beta) && s.encoder.length > 0 && s.encoder.every(Number.isFinite);
}

function stats(lists: number[][], width: number): SeedStats {
  const mean: number[] = [];
  const min: number[] = [];
  const max: number[] = [];
  for (let k = 0; k < width; k++) {
    const values = lists.map((l) => l[k] ?? NaN).filter(Number.isFinite);
    if (values.length === 0) {
      mean.push(NaN);
      min.push(NaN);
      max.push(NaN);
      continue;
    }
    mean.push(values.reduce((a, b) => a + b, 0) / values.length);
    min.push(Math.min(...values));
    max.push(Math.max(...values));
  }
  return { mean, min, max };
}

/**
 * The seed-averaged curve: one point per distinct β, ascending (∞ last). Samples with a
 * non-finite encoder component (diverged SAEs) are left out.
 *
 * @throws {RangeError} when samples disagree on the number of children.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { balanceCurve } from "./balance.ts";
 * const curve = balanceCurve([
 *   { beta: 0.5, encoder: [0.1, -0.1] },
 *   { beta: 0, encoder: [-0.4, -0.2] },
 *   { beta: 0.5, encoder: [NaN, 0] }, // diverged: left out
 * ]);
 * assert.deepEqual(curve.map((p) => [p.beta, p.seeds, p.objective]), [[0, 1, 0.4], [0.5, 1, 0.1]]);
 * assert.throws(() => balanceCurve([{ beta: 0, encoder: [0] }, { beta: 1, encoder: [0, 0] }]));
 * ```
 */
export function balanceCurve(
  samples: readonly BalanceSample[],
  objective: BalanceObjective = "max",
): BalanceCurvePoint[] {
  const usable = samples.filter(isUsable);
  const width = usable[0]?.encoder.length ?? 0;
  for (const s of usable) {
    if (s.encoder.length !== width) {
      throw new RangeError(
        `Invalid balance samples: every sample needs ${width} child components, got ` +
          `${s.encoder.length} at β = ${s.beta}`,
      );
    }
  }
  const betas = [...new Set(usable.map((s) => s.beta))].sort((a, b) => a - b);
  return betas.map((beta) => {
    const at = usable.filter((s) => s.beta === beta);
    const encoder = stats(at.map((s) => s.encoder), width);
    return {
      beta,
      seeds: at.length,
      encoder,
      decoder: stats(at.map((s) => s.decoder ?? []), width),
      objective: objectiveOf(encoder.mean, objective),
    };
  });
}

/** Index of the curve's global minimum (the smallest β among ties). */
function bestIndex(curve: readonly BalanceCurvePoint[]): number {
  let best = 0;
  curve.forEach((p, i) => {
    if (p.objective < curve[best]!.objective) best = i;
  });
  return best;
}

/**
 * Finds β* for one tree from its samples (any number of seeds per β, grid and refinement alike).
 *
 * @param options.tolerance balanceable when the largest |residual| at β* is below it (default 0.02).
 * @param options.objective minimise the largest (`max`, default) or the mean |child component|.
 * @throws {RangeError} when no sample is usable.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { findBalance } from "./balance.ts";
 * const balance = findBalance([
 *   { beta: 0, encoder: [-0.3, -0.3] },
 *   { beta: 0.25, encoder: [0.01, -0.01] },
 *   { beta: Infinity, encoder: [0.2, 0.2] },
 * ]);
 * assert.equal(balance.betaStar, 0.25);
 * assert.ok(balance.balanceable);
 * ```
 */
export function findBalance(
  samples: readonly BalanceSample[],
  { tolerance = 0.02, objective = "max" }: { tolerance?: number; objective?: BalanceObjective } =
    {},
): Balance {
  if (!(tolerance > 0)) {
    throw new RangeError(`Invalid --tolerance: expected a number > 0, got ${tolerance}`);
  }
  if (!BALANCE_OBJECTIVES.includes(objective)) {
    throw new RangeError(
      `Invalid --objective: expected ${BALANCE_OBJECTIVES.join(" or ")}, got ${objective}`,
    );
  }
  const curve = balanceCurve(samples, objective);
  if (curve.length === 0) {
    throw new RangeError(
      "Cannot find the balance point: no usable sample (every SAE diverged or none was given)",
    );
  }
  const star = curve[bestIndex(curve)]!;
  const residuals = star.encoder.mean;
  const worstEdges = residuals.map((_, k) => k).sort((a, b) =>
    Math.abs(residuals[b]!) - Math.abs(residuals[a]!) || a - b
  );
  const maxResidual = Math.max(...residuals.map(Math.abs));
  const localMinima = curve.filter((p, i) =>
    (i === 0 || p.objective < curve[i - 1]!.objective) &&
    (i === curve.length - 1 || p.objective <= curve[i + 1]!.objective)
  ).map((p) => p.beta);
  return {
    betaStar: star.beta,
    objective,
    residuals,
    decoder: star.decoder.mean,
    maxResidual,
    worstChild: worstEdges[0]!,
    worstEdges,
    balanceable: maxResidual < tolerance,
    tolerance,
    localMinima,
    curve,
  };
}

/**
 * The β values of the next refinement round: the midpoints between the current best β and its
 * nearest evaluated finite neighbours on each side (one or two values; none when the best point
 * is ∞ or the only point), rounded to 12 significant digits.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { refinementBetas } from "./balance.ts";
 * const next = refinementBetas([
 *   { beta: 0, encoder: [-0.3] },
 *   { beta: 0.2, encoder: [-0.05] },
 *   { beta: 0.4, encoder: [0.1] },
 * ]);
 * assert.deepEqual(next, [0.1, 0.3]);
 * ```
 */
export function refinementBetas(
  samples: readonly BalanceSample[],
  objective: BalanceObjective = "max",
): number[] {
  const curve = balanceCurve(samples, objective);
  if (curve.length === 0) return [];
  const best = curve[bestIndex(curve)]!.beta;
  if (best === Infinity) return [];
  const finite = curve.map((p) => p.beta).filter(Number.isFinite);
  const left = finite.filter((b) => b < best).at(-1);
  const right = finite.find((b) => b > best);
  // Rounded to 12 significant digits so that 0.2 and 0.4 give 0.3, not 0.30000000000000004.
  const mid = (a: number, b: number) => Number(((a + b) / 2).toPrecision(12));
  const out: number[] = [];
  if (left !== undefined) out.push(mid(left, best));
  if (right !== undefined) out.push(mid(best, right));
  return out.filter((b) => b !== best && !finite.includes(b));
}
