/**
 * Packs the data streams of a training run into the one read-only word array the fused kernel
 * reads as `tree_nodes`: a header of [G][4] words (tree base, seed, number of features, embedding
 * base) for each data group, then each distinct tree (src/toy/tree_flat.ts layout), then each
 * group's embedding [nFeatures][dIn] as float32 bit patterns.
 */
import { flattenTree } from "../toy/tree_flat.ts";
import type { TreeFeatureGenerator } from "../toy/tree.ts";

/** One data stream: batches drawn from `tree` with `seed`, embedded by `embedding`. */
export interface DataGroup {
  /** Tree of true features whose activations are sampled for each batch row. */
  tree: TreeFeatureGenerator;
  /** [nFeatures][dIn] row-major: row f is true feature f's direction. */
  embedding: Float32Array;
  /** Seed of this stream's random batches (same seed, same batches). */
  seed: number;
}

/** Words per data-group header. */
export const GROUP_WORDS = 4;

/** Packs the groups (trees shared by several groups are stored once). */
export function packWorld(groups: readonly DataGroup[], dIn: number): Uint32Array<ArrayBuffer> {
  const trees: TreeFeatureGenerator[] = [];
  for (const g of groups) if (!trees.includes(g.tree)) trees.push(g.tree);
  const flat = trees.map((t) => flattenTree(t));
  const treeWords = flat.reduce((n, f) => n + f.length, 0);
  const embedWords = groups.reduce((n, g) => n + g.embedding.length, 0);
  const words = new Uint32Array(groups.length * GROUP_WORDS + treeWords + embedWords);
  const treeBase: number[] = [];
  let at = groups.length * GROUP_WORDS;
  for (const f of flat) {
    treeBase.push(at);
    words.set(f, at);
    at += f.length;
  }
  groups.forEach((g, i) => {
    if (g.embedding.length !== g.tree.nFeatures * dIn) {
      throw new RangeError(
        `Data group ${i}: embedding has ${g.embedding.length} values, expected ` +
          `${g.tree.nFeatures} features × ${dIn} dims`,
      );
    }
    const h = i * GROUP_WORDS;
    words[h] = treeBase[trees.indexOf(g.tree)]!;
    words[h + 1] = g.seed >>> 0;
    words[h + 2] = g.tree.nFeatures;
    words[h + 3] = at;
    words.set(new Uint32Array(g.embedding.buffer, g.embedding.byteOffset, g.embedding.length), at);
    at += g.embedding.length;
  });
  return words;
}
