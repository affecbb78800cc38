/**
 * The seed notebook's trees: a root (p = 1, not read out) with one parent (feature 0, p = 0.25
 * unless given) whose children are features 1..k plus a p = 0.55 child that is not read out;
 * children not mutually exclusive.
 */
import { TreeFeatureGenerator } from "./tree.ts";

/**
 * The notebook's tree with the given read-out children probabilities (features 1..k).
 *
 * @param childProbs active_prob of each read-out child (default `[0.15, 0.15, 0.15]`).
 * @param parentProb active_prob of the parent, feature 0 (default 0.25, the notebook's).
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { notebookTree } from "./notebook_trees.ts";
 * assert.equal(notebookTree().nFeatures, 4);
 * const rareParent = notebookTree([0.1, 0.3], 0.05);
 * assert.deepEqual(rareParent.features.map((f) => f.activeProb), [0.05, 0.1, 0.3]);
 * ```
 */
export function notebookTree(
  childProbs: readonly number[] = [0.15, 0.15, 0.15],
  parentProb = 0.25,
): TreeFeatureGenerator {
  return new TreeFeatureGenerator({
    activeProb: 1.0,
    isReadOut: false,
    children: [{
      activeProb: parentProb,
      children: [
        ...childProbs.map((activeProb) => ({ activeProb })),
        { activeProb: 0.55, isReadOut: false },
      ],
    }],
  });
}

/**
 * The notebook's balanced tree: children 0.15, 0.15, 0.15.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { balancedTree } from "./notebook_trees.ts";
 * const tree = balancedTree();
 * assert.equal(tree.nFeatures, 4); // the parent and its three read-out children
 * assert.deepEqual(tree.features.map((f) => f.activeProb), [0.25, 0.15, 0.15, 0.15]);
 * ```
 */
export function balancedTree(): TreeFeatureGenerator {
  return notebookTree([0.15, 0.15, 0.15]);
}

/**
 * The notebook's unbalanced tree: children 0.02, 0.15, 0.5.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { notebookTree, unbalancedTree } from "./notebook_trees.ts";
 * const tree = unbalancedTree();
 * assert.deepEqual(tree.features.map((f) => f.activeProb), [0.25, 0.02, 0.15, 0.5]);
 * assert.equal(tree.toString(), notebookTree([0.02, 0.15, 0.5]).toString());
 * ```
 */
export function unbalancedTree(): TreeFeatureGenerator {
  return notebookTree([0.02, 0.15, 0.5]);
}
