/**
 * The held-out rows of an evaluation as weighted patterns, on the host: which worlds (distinct
 * trees) the items draw from, which of them can be merged, and how one merged world's distinct
 * activity patterns and their multiplicities are counted from the rows' activity bits.
 *
 * A tree without magnitude noise (every read-out feature's `magnitudeStd` is 0) gives a row whose
 * values are fixed by which features are active (feature f's value is `magnitudeMean`, as float32),
 * so its held-out rows are the tree's few distinct activity patterns, each weighted by the number
 * of rows that have it: every row sum of the evaluation is the same sum over patterns, weighted.
 * A tree with magnitude noise keeps its rows (weight 1 each), sampled on the GPU.
 */
import type { TreeFeatureGenerator } from "../toy/tree.ts";
import { flattenTree } from "../toy/tree_flat.ts";
import type { EvaluateItem } from "./evaluate_cpu.ts";

/** Largest weight of one pattern slot: its count and weighted sums stay exact in float32. */
export const MAX_SLOT_WEIGHT = 2 ** 24;

/** The distinct trees of an evaluation, noisy (sampled) ones first. */
export interface EvalWorlds {
  /** The worlds' trees: indices `[0, sampled)` have magnitude noise, the rest are merged. */
  trees: TreeFeatureGenerator[];
  /** How many worlds are sampled row by row (magnitude noise). */
  sampled: number;
  /** The world of each item. */
  worldOf: number[];
}

/** True when every read-out feature of the tree has `magnitudeStd` 0 (its rows can be merged). */
export function mergeable(tree: TreeFeatureGenerator): boolean {
  return tree.features.every((node) => node.magnitudeStd === 0);
}

/**
 * Groups the items' trees into worlds (trees whose flattened words are equal are one world), noisy
 * trees first.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { evalWorlds } from "./eval_worlds.ts";
 * import { balancedTree } from "../toy/notebook_trees.ts";
 * import { TreeFeatureGenerator } from "../toy/tree.ts";
 * const noisy = new TreeFeatureGenerator({ activeProb: 1, magnitudeStd: 0.5 });
 * const item = (tree: TreeFeatureGenerator) => ({ tree } as never);
 * const worlds = evalWorlds([item(balancedTree()), item(noisy), item(balancedTree())]);
 * assert.deepEqual(worlds.worldOf, [1, 0, 1]); // two worlds, the noisy one first
 * assert.equal(worlds.sampled, 1);
 * ```
 */
export function evalWorlds(items: readonly Pick<EvaluateItem, "tree">[]): EvalWorlds {
  const keys = items.map((item) => flattenTree(item.tree).join(","));
  const distinct = [...new Set(keys)];
  const firstTree = (key: string) => items[keys.indexOf(key)]!.tree;
  const noisy = distinct.filter((key) => !mergeable(firstTree(key)));
  const merged = distinct.filter((key) => mergeable(firstTree(key)));
  const order = [...noisy, ...merged];
  return {
    trees: order.map(firstTree),
    sampled: noisy.length,
    worldOf: keys.map((key) => order.indexOf(key)),
  };
}

/** Words of a row's activity bits: bit f % 32 of word ⌊f / 32⌋ is set when feature f ≠ 0. */
export function maskWords(nFeatures: number): number {
  return Math.max(1, Math.ceil(nFeatures / 32));
}

/**
 * Counts the distinct activity patterns of a merged world, chunk by chunk of its rows' bits.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PatternCounter } from "./eval_worlds.ts";
 * const counter = new PatternCounter(1);
 * counter.add(Uint32Array.from([0b01, 0b11, 0b01]), 3);
 * assert.deepEqual(counter.entries(), [{ mask: [1], count: 2 }, { mask: [3], count: 1 }]);
 * ```
 */
export class PatternCounter {
  readonly #counts = new Map<number | string, { mask: number[]; count: number }>();

  /** @param words words per row's bits ({@link maskWords}). */
  constructor(readonly words: number) {}

  /** Adds `rows` rows of bits, `[rows][words]`. */
  add(bits: Uint32Array, rows: number): void {
    const w = this.words;
    for (let r = 0; r < rows; r++) {
      const key = w === 1 ? bits[r]! : bits.subarray(r * w, (r + 1) * w).join(",");
      const entry = this.#counts.get(key);
      if (entry) entry.count++;
      else this.#counts.set(key, { mask: Array.from(bits.subarray(r * w, (r + 1) * w)), count: 1 });
    }
  }

  /** The distinct patterns in first-seen order, with their counts. */
  entries(): Array<{ mask: number[]; count: number }> {
    return [...this.#counts.values()];
  }
}

/** A merged world's rows as pattern slots: feature values `[slots][width]` and weights. */
export interface PatternSlots {
  /** Feature values of each slot, `[slots][width]` (the evaluation's widest tree). */
  values: Float32Array<ArrayBuffer>;
  /** Weight of each slot (≤ {@link MAX_SLOT_WEIGHT}; a larger count takes several slots). */
  weights: Float32Array<ArrayBuffer>;
}

/**
 * The slots of a merged world: each pattern's feature values (`magnitudeMean` of its active
 * features, as float32) and its count, split into slots of at most {@link MAX_SLOT_WEIGHT}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { patternSlots } from "./eval_worlds.ts";
 * import { balancedTree } from "../toy/notebook_trees.ts";
 * const slots = patternSlots(balancedTree(), [{ mask: [0b101], count: 7 }], 4);
 * assert.deepEqual(Array.from(slots.values), [1, 0, 1, 0]);
 * assert.deepEqual(Array.from(slots.weights), [7]);
 * ```
 */
export function patternSlots(
  tree: TreeFeatureGenerator,
  patterns: readonly { mask: readonly number[]; count: number }[],
  width: number,
): PatternSlots {
  const values: number[] = [];
  const weights: number[] = [];
  for (const { mask, count } of patterns) {
    const row = new Array<number>(width).fill(0);
    tree.features.forEach((node, f) => {
      if ((mask[f >>> 5]! >>> (f & 31)) & 1) row[f] = Math.fround(node.magnitudeMean);
    });
    for (let left = count; left > 0; left -= MAX_SLOT_WEIGHT) {
      values.push(...row);
      weights.push(Math.min(left, MAX_SLOT_WEIGHT));
    }
  }
  return { values: Float32Array.from(values), weights: Float32Array.from(weights) };
}
