/**
 * The hedging / absorption reading of the parent latent (latent 0): its encoder's and decoder's
 * cosine similarity with each child of the parent feature. Absorption pulls the parent latent's
 * encoder to negative child components; hedging pulls encoder and decoder to positive ones.
 */

/**
 * Latent 0's components along the parent and each child feature.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describeLatent0, type Latent0Reading } from "./latent0.ts";
 * const reading: Latent0Reading = {
 *   parent: 0.95,
 *   children: [0.1, 0.2],
 *   mean: 0.15,
 *   maxAbs: 0.2,
 *   regime: "hedges",
 * };
 * assert.equal(
 *   describeLatent0(reading, "decoder"),
 *   "parent latent: decoder hedges (+0.15; children +0.10, +0.20)",
 * );
 * ```
 */
export interface Latent0Reading {
  /** Cosine with the parent feature. */
  parent: number;
  /** Cosine with each child feature, in feature order. */
  children: number[];
  /** Mean child component. */
  mean: number;
  /** Largest |child component| (what the balance finder minimises). */
  maxAbs: number;
  /** `absorbs`, `hedges`, `balanced` (every |child| ≤ tolerance) or `mixed` (both signs). */
  regime: "absorbs" | "hedges" | "balanced" | "mixed";
}

/**
 * Reads latent `latent` of a `[latent][feature]` cosine table, with `parent` the parent feature's
 * index and `children` the children's (default: the notebook's tree, parent 0, children 1..n−1).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readLatent0 } from "./latent0.ts";
 * // Latent 0 against the parent (feature 0) and its children (features 1 to 3).
 * const reading = readLatent0([[0.9, -0.3, -0.4, -0.2], [0, 1, 0, 0]]);
 * assert.equal(reading.regime, "absorbs");
 * assert.equal(reading.parent, 0.9);
 * assert.deepEqual(reading.children, [-0.3, -0.4, -0.2]);
 * assert.equal(reading.maxAbs, 0.4);
 * ```
 */
export function readLatent0(
  cosSims: number[][],
  { latent = 0, parent = 0, children, tolerance = 0.02 }: {
    latent?: number;
    parent?: number;
    children?: number[];
    tolerance?: number;
  } = {},
): Latent0Reading {
  const row = cosSims[latent];
  if (!row) {
    throw new RangeError(`readLatent0: no latent ${latent} in a ${cosSims.length}-row table`);
  }
  const kids = children ?? row.map((_, f) => f).filter((f) => f !== parent);
  const values = kids.map((f) => row[f]!);
  const mean = values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
  const maxAbs = Math.max(0, ...values.map(Math.abs));
  let regime: Latent0Reading["regime"];
  if (maxAbs <= tolerance) regime = "balanced";
  else if (values.every((v) => v < tolerance) && mean < 0) regime = "absorbs";
  else if (values.every((v) => v > -tolerance) && mean > 0) regime = "hedges";
  else regime = "mixed";
  return { parent: row[parent]!, children: values, mean, maxAbs, regime };
}

function signed(v: number): string {
  return `${v >= 0 ? "+" : "−"}${Math.abs(v).toFixed(2)}`;
}

/**
 * One line, e.g. `parent latent: encoder absorbs children (−0.36; children −0.30, −0.42)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describeLatent0, readLatent0 } from "./latent0.ts";
 * const reading = readLatent0([[0.9, -0.36, -0.36, -0.36]]);
 * assert.equal(
 *   describeLatent0(reading),
 *   "parent latent: encoder absorbs children (−0.36; children −0.36, −0.36, −0.36)",
 * );
 * ```
 */
export function describeLatent0(reading: Latent0Reading, part = "encoder"): string {
  const kids = reading.children.map(signed).join(", ");
  switch (reading.regime) {
    case "absorbs":
      return `parent latent: ${part} absorbs children (${signed(reading.mean)}; children ${kids})`;
    case "hedges":
      return `parent latent: ${part} hedges (${signed(reading.mean)}; children ${kids})`;
    case "balanced":
      return `parent latent: ${part} balanced, near the pure parent (children ${kids})`;
    default:
      return `parent latent: ${part} mixed, absorbs some children and hedges others (children ${kids})`;
  }
}
