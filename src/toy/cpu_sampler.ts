/**
 * The host twin of `shaders/lib/tree_sample.wgsl` and `shaders/sample.wgsl`: the same random
 * stream (Philox4x32-10 in exact u32 arithmetic, same counters, same float conversions), so
 * activity patterns and std-0 magnitudes equal the GPU's bit for bit. Written top-down over the
 * tree (like the published generator) rather than by walking up from each feature as the GPU does,
 * so agreement also checks the GPU's walk. With magnitude_std > 0 the values agree only to a few
 * float32 ulps: Box–Muller's log, cos and sqrt are not correctly rounded on GPUs.
 */
import { normalFloat32, philox4x32, unitFloat } from "./rng.ts";
import type { TreeFeatureGenerator } from "./tree.ts";
import { exclusiveIntervals } from "./tree_flat.ts";

/** Key word 1 of the tree stream (`TREE_KEY_DOMAIN` in tree_sample.wgsl): "TREE". */
export const TREE_KEY_DOMAIN = 0x54524545;

/**
 * What identifies one batch: the stream's seed and the step.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type BatchAddress, sampleBatchCpu } from "./cpu_sampler.ts";
 * import { notebookTree } from "./notebook_trees.ts";
 * const address: BatchAddress = { seed: 1, step: 0, batchSize: 8 };
 * const batch = sampleBatchCpu(notebookTree(), address);
 * assert.equal(batch.length, 8 * 4); // [8][nFeatures]
 * assert.deepEqual(sampleBatchCpu(notebookTree(), address), batch); // same address, same batch
 * ```
 */
export interface BatchAddress {
  /** Seed of the stream (u32). */
  seed: number;
  /** Training step (u32). */
  step: number;
  /** Rows in the batch. */
  batchSize: number;
}

/** Which nodes are active in each row: `[B][nNodes]`, 1 = active. */
export function sampleActiveNodesCpu(
  tree: TreeFeatureGenerator,
  { seed, step, batchSize }: BatchAddress,
): Uint8Array {
  const nodes = tree.nodes;
  const intervals = nodes.map((n) => n.mutuallyExclusiveChildren ? exclusiveIntervals(n) : null);
  const probs = nodes.map((n) => Math.fround(n.activeProb));
  const orphanProbs = nodes.map((n) => Math.fround(n.activeProbWithoutParent));
  const active = new Uint8Array(batchSize * nodes.length);
  for (let row = 0; row < batchSize; row++) {
    const at = row * nodes.length;
    const blocks = nodes.map((n) =>
      philox4x32([step, row, n.nodeIndex, 0], [seed, TREE_KEY_DOMAIN])
    );
    // Pre-order: a parent is decided before its children.
    for (const node of nodes) {
      const n = node.nodeIndex;
      let own: boolean;
      const parent = node.parent === null ? null : nodes[node.parent]!;
      const gate = parent === null ? true : active[at + parent.nodeIndex] === 1;
      if (parent?.mutuallyExclusiveChildren) {
        const u = unitFloat(blocks[parent.nodeIndex]![1]);
        const [lo, hi] = intervals[parent.nodeIndex]![parent.children.indexOf(node)]!;
        own = lo <= u && u < hi;
      } else {
        // The same uniform decides both cases: below activeProb with the parent active, below
        // activeProbWithoutParent without it.
        own = unitFloat(blocks[n]![0]) < (gate ? probs[n]! : orphanProbs[n]!);
      }
      active[at + n] = own && (gate || !parent?.mutuallyExclusiveChildren) ? 1 : 0;
    }
  }
  return active;
}

/**
 * One batch of feature values, `[B][nFeatures]`, as `sample` of sample.wgsl computes it for a
 * group with this tree and seed at this step.
 *
 * @example
 * ```ts
 * import { sampleBatchCpu } from "./cpu_sampler.ts";
 * import { notebookTree } from "./notebook_trees.ts";
 * const batch = sampleBatchCpu(notebookTree(), { seed: 1, step: 0, batchSize: 128 }); // [128][4]
 * ```
 */
export function sampleBatchCpu(tree: TreeFeatureGenerator, address: BatchAddress): Float32Array {
  const { seed, step, batchSize } = address;
  const width = tree.nFeatures;
  const nNodes = tree.nodes.length;
  const active = sampleActiveNodesCpu(tree, address);
  const out = new Float32Array(batchSize * width);
  for (let row = 0; row < batchSize; row++) {
    for (const node of tree.features) {
      if (active[row * nNodes + node.nodeIndex] !== 1) continue;
      const mean = Math.fround(node.magnitudeMean);
      const std = Math.fround(node.magnitudeStd);
      let value = mean;
      if (std > 0) {
        const block = philox4x32([step, row, node.nodeIndex, 0], [seed, TREE_KEY_DOMAIN]);
        value = Math.abs(Math.fround(mean + Math.fround(std * normalFloat32(block[2], block[3]))));
      }
      out[row * width + node.index!] = value;
    }
  }
  return out;
}

/** One group of a sampler: a tree and the seed of its stream. */
export interface CpuSamplerGroup {
  tree: TreeFeatureGenerator;
  seed: number;
}

/**
 * Batches of several groups, `[G][B][F]` with F the widest tree's nFeatures (columns past a
 * narrower tree's width are 0), as the `sample` entry point lays them out.
 */
export function sampleGroupsCpu(
  groups: readonly CpuSamplerGroup[],
  step: number,
  batchSize: number,
): Float32Array {
  const width = Math.max(0, ...groups.map((g) => g.tree.nFeatures));
  const out = new Float32Array(groups.length * batchSize * width);
  groups.forEach(({ tree, seed }, g) => {
    const batch = sampleBatchCpu(tree, { seed, step, batchSize });
    for (let row = 0; row < batchSize; row++) {
      out.set(
        batch.subarray(row * tree.nFeatures, (row + 1) * tree.nFeatures),
        (g * batchSize + row) * width,
      );
    }
  });
  return out;
}

/**
 * `x = features @ E` per group with float32 rounding after every operation, f ascending (the
 * `embed` entry point's order; a GPU may fuse each multiply-add, so compare with a tolerance of a
 * few ulps of the largest term).
 *
 * @param features `[G][B][F]`.
 * @param embedding `[G][F][D]` (one `[F][D]` matrix per group).
 * @returns `[G][B][D]`.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { embedCpu } from "./cpu_sampler.ts";
 * const features = Float32Array.from([1, 0, 0, 2]); // 1 group, 2 rows, 2 features
 * const embedding = Float32Array.from([1, 2, 3, 4, 5, 6]); // [2][3]
 * const shape = { groups: 1, batch: 2, nFeatures: 2, dIn: 3 };
 * assert.deepEqual(Array.from(embedCpu(features, embedding, shape)), [1, 2, 3, 8, 10, 12]);
 * assert.throws(() => embedCpu(features, embedding, { ...shape, dIn: 2 }), RangeError);
 * ```
 */
export function embedCpu(
  features: Float32Array,
  embedding: Float32Array,
  shape: { groups: number; batch: number; nFeatures: number; dIn: number },
): Float32Array {
  const { groups, batch, nFeatures: width, dIn } = shape;
  if (features.length !== groups * batch * width || embedding.length !== groups * width * dIn) {
    throw new RangeError(
      `embedCpu: features has ${features.length} values and embedding ${embedding.length}; ` +
        `expected ${groups * batch * width} ([G][B][F]) and ${groups * width * dIn} ([G][F][D])`,
    );
  }
  const f32 = Math.fround;
  const x = new Float32Array(groups * batch * dIn);
  for (let g = 0; g < groups; g++) {
    for (let b = 0; b < batch; b++) {
      const row = (g * batch + b) * width;
      for (let d = 0; d < dIn; d++) {
        let acc = 0;
        for (let f = 0; f < width; f++) {
          acc = f32(acc + f32(features[row + f]! * embedding[(g * width + f) * dIn + d]!));
        }
        x[(g * batch + b) * dIn + d] = acc;
      }
    }
  }
  return x;
}
