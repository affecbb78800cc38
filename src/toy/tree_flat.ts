/**
 * Flattens trees into the u32 words that `shaders/lib/tree_sample.wgsl` reads from `tree_nodes`,
 * and packs several trees into one array (a tree is addressed by its base offset).
 *
 * Layout of one tree, in u32 words from its base (floats stored as their float32 bit patterns):
 *
 * | words                  | content                                                       |
 * | ---------------------- | ------------------------------------------------------------- |
 * | `0`                    | `n_nodes`                                                     |
 * | `1`                    | `n_features` (F)                                              |
 * | `2 .. 2+F`             | `feature_node[f]`: pre-order node index of read-out feature f |
 * | `2+F+8n .. 2+F+8n+8`   | record of node n (pre-order), see below                       |
 *
 * Node record (`TREE_NODE_WORDS` = 8 words):
 * `0` parent node index (`0xFFFFFFFF` for the root); `1` flags (bit 0 read out, bit 1 chosen by a
 * mutually exclusive parent, bit 2 has mutually exclusive children); `2` active_prob (f32);
 * `3` magnitude_mean (f32); `4` magnitude_std (f32); `5`, `6` `[lo, hi)` (f32): the node is the
 * chosen child of its mutually exclusive parent iff the parent's choice uniform u satisfies
 * `lo ≤ u < hi` (cumulative `active_prob / Σ active_prob` of the siblings, the last positive-weight
 * sibling's `hi` forced to 1); `7` feature index (`0xFFFFFFFF` when not read out).
 */
import type { TreeFeatureGenerator, TreeNode } from "./tree.ts";

/** Marks "no node" / "no feature" in the flattened tree. */
export const TREE_NONE = 0xffffffff;
/** Words in the header before the feature table. */
export const TREE_HEADER_WORDS = 2;
/** Words per node record. */
export const TREE_NODE_WORDS = 8;
/** Flag bit: the node is read out. */
export const TREE_FLAG_READ_OUT = 1;
/** Flag bit: the node's parent has mutually exclusive children (the node is chosen or not). */
export const TREE_FLAG_ME_CHILD = 2;
/** Flag bit: the node has mutually exclusive children. */
export const TREE_FLAG_ME_PARENT = 4;

/**
 * The `[lo, hi)` intervals (float32 values) of the children of a node with mutually exclusive
 * children: child i is chosen iff the choice uniform u ∈ [lo_i, hi_i).
 */
export function exclusiveIntervals(node: TreeNode): Array<[number, number]> {
  const probs = node.children.map((c) => c.activeProb);
  const total = probs.reduce((a, b) => a + b, 0);
  let lastPositive = -1;
  probs.forEach((p, i) => {
    if (p > 0) lastPositive = i;
  });
  const out: Array<[number, number]> = [];
  let cumulative = 0;
  let lo = 0;
  for (let i = 0; i < probs.length; i++) {
    cumulative += probs[i]!;
    const hi = i >= lastPositive ? 1 : Math.fround(cumulative / total);
    out.push([lo, hi]);
    lo = hi;
  }
  return out;
}

/** Number of u32 words `flattenTree(tree)` produces. */
export function flatTreeWords(tree: TreeFeatureGenerator): number {
  return TREE_HEADER_WORDS + tree.nFeatures + TREE_NODE_WORDS * tree.nodes.length;
}

/**
 * The tree as u32 words in the layout of this file's header comment (for `tree_nodes`).
 *
 * @example
 * ```ts
 * import { TreeFeatureGenerator } from "./tree.ts";
 * import { flattenTree } from "./tree_flat.ts";
 * const words = flattenTree(new TreeFeatureGenerator({ activeProb: 0.5 }));
 * words[0]; // 1 node
 * ```
 */
export function flattenTree(tree: TreeFeatureGenerator): Uint32Array<ArrayBuffer> {
  const words = new Uint32Array(flatTreeWords(tree));
  const floats = new Float32Array(words.buffer);
  words[0] = tree.nodes.length;
  words[1] = tree.nFeatures;
  tree.features.forEach((node, f) => words[TREE_HEADER_WORDS + f] = node.nodeIndex);
  const recordsAt = TREE_HEADER_WORDS + tree.nFeatures;
  for (const node of tree.nodes) {
    const at = recordsAt + node.nodeIndex * TREE_NODE_WORDS;
    const parent = node.parent === null ? null : tree.nodes[node.parent]!;
    const meChild = parent?.mutuallyExclusiveChildren ?? false;
    words[at] = node.parent ?? TREE_NONE;
    words[at + 1] = (node.isReadOut ? TREE_FLAG_READ_OUT : 0) |
      (meChild ? TREE_FLAG_ME_CHILD : 0) |
      (node.mutuallyExclusiveChildren ? TREE_FLAG_ME_PARENT : 0);
    floats[at + 2] = node.activeProb;
    floats[at + 3] = node.magnitudeMean;
    floats[at + 4] = node.magnitudeStd;
    if (meChild) {
      const [lo, hi] = exclusiveIntervals(parent!)[parent!.children.indexOf(node)]!;
      floats[at + 5] = lo;
      floats[at + 6] = hi;
    }
    words[at + 7] = node.index ?? TREE_NONE;
  }
  return words;
}

/** Several flattened trees in one array, and where each starts. */
export interface PackedTrees {
  /** All trees' words, concatenated (bind as `tree_nodes`). */
  data: Uint32Array<ArrayBuffer>;
  /** `bases[i]`: word offset of tree i in `data` (the `tree_base` argument of the WGSL API). */
  bases: number[];
}

/**
 * Concatenates the flattened trees; a tree object given more than once is stored once, and all its
 * entries in `bases` point there.
 */
export function packTrees(trees: readonly TreeFeatureGenerator[]): PackedTrees {
  const seen = new Map<TreeFeatureGenerator, number>();
  const parts: Uint32Array[] = [];
  let length = 0;
  const bases = trees.map((tree) => {
    let base = seen.get(tree);
    if (base === undefined) {
      const words = flattenTree(tree);
      base = length;
      seen.set(tree, base);
      parts.push(words);
      length += words.length;
    }
    return base;
  });
  const data = new Uint32Array(Math.max(1, length));
  let at = 0;
  for (const part of parts) {
    data.set(part, at);
    at += part.length;
  }
  return { data, bases };
}
