/**
 * The combinations of a sweep (one SAE each), their canonical order and key, sharding across
 * machines and chunking into groups that are trained together and recorded when they finish.
 *
 * Canonical order: tree (as given), then β ascending (∞ last), then seed. A combination's key
 * (tree, β, seed) identifies its row in every record, so resuming and merging skip by key, not by
 * position.
 */
import { formatBeta, type Shard } from "./axes.ts";
import { checkInteger } from "../check_value.ts";

/** One SAE of the sweep. */
export interface Combination {
  /** Index of the tree in the sweep's tree list. */
  tree: number;
  /** β of the inner prefix; Infinity for the detached setup. */
  beta: number;
  /** Seed of the toy model and of the batches. */
  seed: number;
  /** 0 for the grid; r for the r-th refinement round. */
  round: number;
}

/** The identity of a combination (and of its row): tree name, β and seed. */
export function combinationKey(treeName: string, beta: number, seed: number): string {
  return `${treeName}|${formatBeta(beta)}|${seed}`;
}

/** Orders combinations (or rows) canonically: tree index, then β (∞ last), then seed. */
export function compareCombinations(
  a: { tree: number; beta: number; seed: number },
  b: { tree: number; beta: number; seed: number },
): number {
  if (a.tree !== b.tree) return a.tree - b.tree;
  if (a.beta !== b.beta) return a.beta < b.beta ? -1 : 1;
  return a.seed - b.seed;
}

/** The grid: every tree × β × seed `0..seeds−1`, in canonical order. */
export function gridCombinations(
  nTrees: number,
  betas: readonly number[],
  seeds: number,
): Combination[] {
  const out: Combination[] = [];
  const sorted = [...betas].sort((a, b) => a - b);
  for (let tree = 0; tree < nTrees; tree++) {
    for (const beta of sorted) {
      for (let seed = 0; seed < seeds; seed++) out.push({ tree, beta, seed, round: 0 });
    }
  }
  return out;
}

/**
 * The combinations a shard runs: every `count`-th one starting at `index` (so each shard gets a
 * similar mix of trees, β values and seeds). `null` is the whole list.
 */
export function shardCombinations<T>(list: readonly T[], shard: Shard | null): T[] {
  if (!shard) return [...list];
  return list.filter((_, i) => i % shard.count === shard.index);
}

/** Splits a list into consecutive chunks of at most `size` items. */
export function chunked<T>(list: readonly T[], size: number): T[][] {
  checkInteger("--chunk", size, 1);
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}
