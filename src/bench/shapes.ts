/**
 * The shapes `deno task bench` measures: the seed notebook's (d_in 50, d_sae 4, prefixes [1, 4],
 * the balanced tree of 4 features), a larger toy (d_in 256, d_sae 64, prefixes [8, 64], a
 * two-level tree of 8 parents × 7 children = 64 features), `synth` (256 features in 128
 * dimensions, d_sae 256, prefixes [16, 64, 256], batch 1024), `wide` (32 features in 768
 * dimensions, d_sae 32, batch 1024: where the latent forms pay) and `synthbench` (GPU adapters
 * only), each trained with the notebook's L1 configuration and inner multipliers 0.25 (outer 1).
 */
import { NOTEBOOK_SAE_CONFIG, type SaeConfig } from "../sae/config.ts";
import { balancedTree } from "../toy/notebook_trees.ts";
import { TreeFeatureGenerator, type TreeSpec } from "../toy/tree.ts";

/**
 * One benchmarked shape: the SAE, its data and the toy model that embeds the data.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { benchSaeConfig, type BenchShape } from "./shapes.ts";
 * import { notebookTree } from "../toy/notebook_trees.ts";
 * const tiny: BenchShape = {
 *   id: "tiny",
 *   title: "tiny: d_in 8, d_sae 4, prefixes [1, 4], batch 16",
 *   dIn: 8,
 *   dSae: 4,
 *   prefixes: [1, 4],
 *   batch: 16,
 *   tree: () => notebookTree(),
 *   toyModelSeed: 0,
 * };
 * const config = benchSaeConfig(tiny); // the balanced β = 0.25 SAE at this size
 * assert.equal(config.dIn, 8);
 * assert.deepEqual(config.matryoshkaInnerLossMultipliers, [0.25, 1]);
 * ```
 */
export interface BenchShape {
  /** Short key used in JSON (`notebook`, `large`). */
  id: string;
  /** One line describing the shape for the table's heading. */
  title: string;
  /** Input width. */
  dIn: number;
  /** Latents per SAE. */
  dSae: number;
  /** Matryoshka prefix ends. */
  prefixes: number[];
  /** Samples per step. */
  batch: number;
  /** Builds the tree the batches are sampled from. */
  tree: () => TreeFeatureGenerator;
  /** Seed of the toy model's embedding. */
  toyModelSeed: number;
  /**
   * Unit Gaussian feature directions without the published orthogonalisation (which grows as
   * n² · d and would take days at 16,384 features; default false).
   */
  randomEmbedding?: boolean;
  /**
   * Measured on GPU adapters only, at these model counts, against SAELens's quoted rate (no CPU
   * reference or PyTorch columns); on a CPU adapter the row says why it was skipped.
   */
  gpuOnly?: { models: number[] };
}

/** Active probability of each parent of {@link largeToyTree} (about one parent per sample). */
export const LARGE_TREE_PARENT_PROB = 0.125;
/** Active probability of each child given its parent (the notebook's 0.15). */
export const LARGE_TREE_CHILD_PROB = 0.15;

/**
 * The larger toy's tree: a root (p = 1, not read out) with `parents` read-out parents (p = 0.125
 * each, so about one active parent per sample), each with `children` read-out children (p = 0.15
 * given the parent, the notebook's value; not mutually exclusive). With 8 × 7 that is 64 features,
 * about 2 active per sample.
 *
 * @example
 * ```ts
 * import { largeToyTree } from "./shapes.ts";
 * largeToyTree().nFeatures; // 64
 * ```
 */
export function largeToyTree(
  parents = 8,
  children = 7,
  parentProb = LARGE_TREE_PARENT_PROB,
): TreeFeatureGenerator {
  return new TreeFeatureGenerator({
    activeProb: 1,
    isReadOut: false,
    children: Array.from({ length: parents }, () => ({
      activeProb: parentProb,
      children: Array.from({ length: children }, () => ({ activeProb: LARGE_TREE_CHILD_PROB })),
    })),
  });
}

/**
 * The notebook's shape: d_in 50, d_sae 4, prefixes [1, 4], batch 128, the balanced tree.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { benchSaeConfig, NOTEBOOK_SHAPE } from "./shapes.ts";
 * assert.equal(NOTEBOOK_SHAPE.tree().nFeatures, 4);
 * assert.deepEqual(benchSaeConfig(NOTEBOOK_SHAPE).matryoshkaSteps, [1, 4]);
 * ```
 */
export const NOTEBOOK_SHAPE: Readonly<BenchShape> = Object.freeze({
  id: "notebook",
  title: "notebook shape: d_in 50, d_sae 4, prefixes [1, 4], batch 128, balanced tree (4 features)",
  dIn: 50,
  dSae: 4,
  prefixes: [1, 4],
  batch: 128,
  tree: balancedTree,
  toyModelSeed: 0,
});

/**
 * The larger toy: d_in 256, d_sae 64, prefixes [8, 64], batch 128, 8 parents × 7 children.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { benchSaeConfig, LARGE_TOY_SHAPE } from "./shapes.ts";
 * assert.equal(LARGE_TOY_SHAPE.tree().nFeatures, 64);
 * assert.deepEqual(benchSaeConfig(LARGE_TOY_SHAPE).matryoshkaInnerLossMultipliers, [0.25, 1]);
 * ```
 */
export const LARGE_TOY_SHAPE: Readonly<BenchShape> = Object.freeze({
  id: "large",
  title: `larger toy: d_in 256, d_sae 64, prefixes [8, 64], batch 128, tree of 8 parents ` +
    `(p ${LARGE_TREE_PARENT_PROB}) × 7 children (p ${LARGE_TREE_CHILD_PROB}) = 64 features`,
  dIn: 256,
  dSae: 64,
  prefixes: [8, 64],
  batch: 128,
  tree: () => largeToyTree(),
  toyModelSeed: 0,
});

/** Active probability of each parent of the `wide` shape's tree (about one parent per sample). */
export const WIDE_TREE_PARENT_PROB = 0.25;

/**
 * `wide`: a SAELens-style toy world, 32 features in 768 dimensions (a tree of 4 parents (p 0.25) ×
 * 7 children (p 0.15 given the parent)), d_sae 32, prefixes [8, 32], batch 1024: the input is
 * much wider than the features, so the kernel set encodes and decodes in latent form
 * (`encoderFormulation`, `decoderFormulation` in src/sae/kernel_step.ts).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { WIDE_SHAPE } from "./shapes.ts";
 * assert.equal(WIDE_SHAPE.tree().nFeatures, 32);
 * ```
 */
export const WIDE_SHAPE: Readonly<BenchShape> = Object.freeze({
  id: "wide",
  title: `wide: d_in 768, d_sae 32, prefixes [8, 32], batch 1024, tree of 4 parents ` +
    `(p ${WIDE_TREE_PARENT_PROB}) × 7 children (p ${LARGE_TREE_CHILD_PROB}) = 32 features in ` +
    `768 dimensions`,
  dIn: 768,
  dSae: 32,
  prefixes: [8, 32],
  batch: 1024,
  tree: () => largeToyTree(4, 7, WIDE_TREE_PARENT_PROB),
  toyModelSeed: 0,
});

/** Active probability of each parent of the `synth` shape's tree. */
export const SYNTH_TREE_PARENT_PROB = 0.04;

/**
 * `synth`: 256 features in 128 dimensions (2× superposition), a tree of 32 parents (p 0.04) × 7
 * children (p 0.15 given the parent), d_sae 256, prefixes [16, 64, 256], batch 1024.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SYNTH_SHAPE } from "./shapes.ts";
 * assert.equal(SYNTH_SHAPE.tree().nFeatures, 256);
 * ```
 */
export const SYNTH_SHAPE: Readonly<BenchShape> = Object.freeze({
  id: "synth",
  title: `synth: d_in 128, d_sae 256, prefixes [16, 64, 256], batch 1024, tree of 32 parents ` +
    `(p ${SYNTH_TREE_PARENT_PROB}) × 7 children (p ${LARGE_TREE_CHILD_PROB}) = 256 features in ` +
    `128 dimensions`,
  dIn: 128,
  dSae: 256,
  prefixes: [16, 64, 256],
  batch: 1024,
  tree: () => largeToyTree(32, 7, SYNTH_TREE_PARENT_PROB),
  toyModelSeed: 0,
});

/** Firing probability of the synthbench world's features, Zipfian by rank (SynthSAEBench-16k). */
export const SYNTHBENCH_ZIPF = Object.freeze({ exponent: 0.5, max: 0.4, min: 5e-4 });

/**
 * The firing probability of the feature of rank `i` of `n` (0 fires most): Zipf's `(i + 1)^−a`
 * mapped linearly so that rank 0 fires with `max` and rank n − 1 with `min`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { zipfProbability } from "./shapes.ts";
 * const zipf = { exponent: 0.5, max: 0.4, min: 5e-4 };
 * assert.equal(zipfProbability(0, 100, zipf), 0.4);
 * assert.ok(Math.abs(zipfProbability(99, 100, zipf) - 5e-4) < 1e-12);
 * ```
 */
export function zipfProbability(
  i: number,
  n: number,
  zipf: { exponent: number; max: number; min: number },
): number {
  const raw = (r: number) => (r + 1) ** -zipf.exponent;
  const lo = raw(n - 1);
  return zipf.min + (zipf.max - zipf.min) * (raw(i) - lo) / (1 - lo);
}

/**
 * A SynthSAEBench-16k-shaped world built in code (until a world generator exists): `roots`
 * hierarchies of depth `depth` with `branching` mutually exclusive children per parent, the other
 * features independent, 16,384 features in all. Every feature's firing probability is Zipfian by
 * its rank in pre-order ({@link SYNTHBENCH_ZIPF}); a hierarchy's root fires with its own, and a
 * child given its parent with its probability divided by its parent's (capped at 1), which an
 * exclusive parent uses as the weights of its children.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { synthBenchTree } from "./shapes.ts";
 * const tree = synthBenchTree({ features: 100, roots: 2, branching: 3, depth: 2 });
 * assert.equal(tree.nFeatures, 100); // 2 × (1 + 3) in hierarchies, 92 independent
 * ```
 */
export function synthBenchTree(
  { features = 16_384, roots = 128, branching = 4, depth = 3 } = {},
): TreeFeatureGenerator {
  let rank = 0;
  const prob = () => zipfProbability(rank++, features, SYNTHBENCH_ZIPF);
  const node = (level: number, parentProb: number): TreeSpec => {
    const p = prob();
    const children = level < depth
      ? Array.from({ length: branching }, () => node(level + 1, p))
      : [];
    return {
      activeProb: Math.min(1, p / parentProb),
      ...(children.length > 0 ? { children, mutuallyExclusiveChildren: true } : {}),
    };
  };
  const hierarchies = Array.from({ length: roots }, () => node(1, 1));
  const independent = Array.from({ length: features - rank }, () => ({ activeProb: prob() }));
  return new TreeFeatureGenerator({
    activeProb: 1,
    isReadOut: false,
    children: [...hierarchies, ...independent],
  });
}

/**
 * `synthbench`: SynthSAEBench-16k's scale, 16,384 features in 768 dimensions (random directions,
 * in superposition), d_sae 4,096, batch 1,024, prefixes [128, 512, 2048, 4096], a hierarchy of
 * 128 roots × branching 4 × depth 3, all mutually exclusive ({@link synthBenchTree}). GPU
 * adapters only, at M = 1 and 8.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SYNTHBENCH_SHAPE } from "./shapes.ts";
 * assert.deepEqual(SYNTHBENCH_SHAPE.gpuOnly, { models: [1, 8] });
 * ```
 */
export const SYNTHBENCH_SHAPE: Readonly<BenchShape> = Object.freeze({
  id: "synthbench",
  title: "synthbench: d_in 768, d_sae 4096, prefixes [128, 512, 2048, 4096], batch 1024, " +
    "16,384 features (128 roots × branching 4 × depth 3, mutually exclusive; Zipfian firing " +
    "0.4 → 5e-4, exponent 0.5) in 768 dimensions",
  dIn: 768,
  dSae: 4096,
  prefixes: [128, 512, 2048, 4096],
  batch: 1024,
  tree: () => synthBenchTree(),
  toyModelSeed: 0,
  randomEmbedding: true,
  gpuOnly: { models: [1, 8] },
});

/**
 * SAELens's quoted cost of one SynthSAEBench-16k SAE: 200M samples in 15–20 minutes on an H100;
 * the `synthbench` shape is compared with it.
 */
export const SAELENS_SYNTHBENCH = Object.freeze({ samples: 200e6, minutes: [15, 20] as const });

/**
 * The training steps per second of SAELens's quote for one SAE at `batch` rows per step (at its
 * faster 15 minutes): the rate `synthbench`'s SAE-steps/s are measured against.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { saelensStepsPerSecond } from "./shapes.ts";
 * assert.equal(Math.round(saelensStepsPerSecond(1024)), 217); // 195,313 steps in 900 s
 * ```
 */
export function saelensStepsPerSecond(batch: number): number {
  return Math.ceil(SAELENS_SYNTHBENCH.samples / batch) / (SAELENS_SYNTHBENCH.minutes[0] * 60);
}

/**
 * The configuration every benchmarked SAE trains with: the notebook's shared configuration with
 * the balanced β = 0.25 (`matryoshkaInnerLossMultipliers [0.25, 1]`), at the shape's size.
 */
export function benchSaeConfig(shape: BenchShape): SaeConfig {
  return {
    ...NOTEBOOK_SAE_CONFIG,
    dIn: shape.dIn,
    dSae: shape.dSae,
    matryoshkaSteps: [...shape.prefixes],
    matryoshkaInnerLossMultipliers: shape.prefixes.map((_, i, all) =>
      i === all.length - 1 ? 1 : 0.25
    ),
  };
}
