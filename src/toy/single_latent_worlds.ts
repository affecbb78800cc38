/**
 * The four data settings of the single-latent study (`single_latent_hedging_plots`): a parent
 * (feature 0) and a child (feature 1), magnitude 1, as trees. The published generator draws both
 * features independently, then a modifier rewrites feature 1; each setting is the tree with the
 * same joint law:
 *
 * | setting        | published                                            | P(f1 \| f0) | P(f1 \| not f0) |
 * | -------------- | ---------------------------------------------------- | ----------- | --------------- |
 * | `independent`  | probabilities [0.25, 0.2], no modifier               | 0.2         | 0.2             |
 * | `hierarchical` | f1 set to 0 where f0 is off                          | 0.2         | 0               |
 * | `partial`      | where f0 is off, f1 a fresh Bernoulli(0.1)           | 0.2         | 0.1             |
 * | `anti`         | probabilities [0.25, 0.1]; where f0 is off, Bern(0.2)| 0.1         | 0.2             |
 *
 * (P(f0) = 0.25 in all four.) `independent` is two siblings under an always-on hidden root; the
 * others make f1 a child of f0 that may fire without it (`activeProbWithoutParent`).
 */
import { TreeFeatureGenerator } from "./tree.ts";

/**
 * The study's data settings.
 *
 * @example
 * ```ts
 * import { type SingleLatentData, singleLatentTree } from "./single_latent_worlds.ts";
 * const data: SingleLatentData = "anti";
 * singleLatentTree(data); // f1 fires with 0.1 under f0, 0.2 without it
 * ```
 */
export type SingleLatentData = "independent" | "hierarchical" | "partial" | "anti";

/**
 * The settings, in the notebook's order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SINGLE_LATENT_DATA } from "./single_latent_worlds.ts";
 * assert.equal(SINGLE_LATENT_DATA.length, 4);
 * ```
 */
export const SINGLE_LATENT_DATA: readonly SingleLatentData[] = [
  "independent",
  "hierarchical",
  "partial",
  "anti",
];

/**
 * The tree of a data setting (features: 0 the parent, 1 the child).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { singleLatentTree } from "./single_latent_worlds.ts";
 * const tree = singleLatentTree("partial");
 * assert.equal(tree.nFeatures, 2);
 * const child = tree.features[1]!;
 * assert.deepEqual([child.activeProb, child.activeProbWithoutParent], [0.2, 0.1]);
 * ```
 */
export function singleLatentTree(data: SingleLatentData): TreeFeatureGenerator {
  if (data === "independent") {
    return new TreeFeatureGenerator({
      activeProb: 1,
      isReadOut: false,
      children: [{ activeProb: 0.25, id: "parent" }, { activeProb: 0.2, id: "child" }],
    });
  }
  const [withParent, withoutParent] = {
    hierarchical: [0.2, 0],
    partial: [0.2, 0.1],
    anti: [0.1, 0.2],
  }[data];
  return new TreeFeatureGenerator({
    activeProb: 1,
    isReadOut: false,
    children: [{
      activeProb: 0.25,
      id: "parent",
      children: [{ activeProb: withParent!, activeProbWithoutParent: withoutParent!, id: "child" }],
    }],
  });
}
