/**
 * The per-edge scorecard: hedging and absorption read on every parent–child edge of a tree, not
 * only on latent 0, plus SAELens's remaining synthetic metrics (uniqueness, per-latent precision,
 * recall and F1).
 *
 * Weights first ({@link scorecardPlan}): latents are matched one-to-one to features by the
 * Hungarian algorithm on |decoder cosine| (as the MCC matches); each edge is read on the parent's
 * matched latent (its encoder and decoder cosine with the child: positive = hedging, negative =
 * absorption); each latent's best feature is its largest |decoder cosine|. The plan lists the
 * firing counts the held-out rows must supply as *probes*: `Σ_rows [latent fires] · [feature a
 * on] · [feature b on]` (latent {@link ALWAYS_LATENT}: no latent condition), counted in the same
 * pass as the other metrics (`evaluate_cpu.ts`, `shaders/evaluate.wgsl`). {@link finishScorecard}
 * turns the counts into the absorption gap, precision, recall and F1.
 */
import type { TreeFeatureGenerator } from "../toy/tree.ts";
import { linearSumAssignment } from "../deps.ts";

/**
 * A parent–child edge of a tree's read-out hierarchy.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { treeEdges, type TreeEdge } from "./scorecard.ts";
 * import { notebookTree } from "../toy/notebook_trees.ts";
 * const edges: TreeEdge[] = treeEdges(notebookTree()); // the parent (feature 0), 3 children
 * assert.deepEqual(edges.map((e) => [e.parent, e.child, e.depth]), [[0, 1, 0], [0, 2, 0], [0, 3, 0]]);
 * ```
 */
export interface TreeEdge {
  /** Feature index of the parent (its nearest read-out ancestor). */
  parent: number;
  /** Feature index of the child. */
  child: number;
  /** Depth of the parent among read-out features (0: a read-out feature with none above it). */
  depth: number;
}

/**
 * Every parent–child edge of the read-out hierarchy: each read-out feature with a read-out
 * ancestor is the child of its nearest one. Ordered by child.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { treeEdges } from "./scorecard.ts";
 * import { TreeFeatureGenerator } from "../toy/tree.ts";
 * const tree = new TreeFeatureGenerator({
 *   activeProb: 1,
 *   isReadOut: false,
 *   children: [
 *     { activeProb: 0.3, children: [{ activeProb: 0.5, children: [{ activeProb: 0.5 }] }] },
 *     { activeProb: 0.2 },
 *   ],
 * });
 * assert.deepEqual(treeEdges(tree), [
 *   { parent: 0, child: 1, depth: 0 },
 *   { parent: 1, child: 2, depth: 1 },
 * ]);
 * ```
 */
export function treeEdges(tree: TreeFeatureGenerator): TreeEdge[] {
  const nearestReadOut = (nodeIndex: number): number | null => {
    for (let p = tree.nodes[nodeIndex]!.parent; p !== null; p = tree.nodes[p]!.parent) {
      if (tree.nodes[p]!.isReadOut) return tree.nodes[p]!.index;
    }
    return null;
  };
  const depth = new Array<number>(tree.nFeatures).fill(0);
  const edges: TreeEdge[] = [];
  for (const node of tree.features) {
    const parent = nearestReadOut(node.nodeIndex);
    if (parent === null) continue;
    depth[node.index!] = depth[parent]! + 1;
    edges.push({ parent, child: node.index!, depth: depth[parent]! });
  }
  return edges;
}

/** The probe latent that is always "on": the probe counts rows by features alone. */
export const ALWAYS_LATENT = 0xffffffff;

/**
 * One firing count of the held-out rows: `Σ_rows [latent fires] · [a ≠ 0] · [b ≠ 0]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ALWAYS_LATENT, type Probe } from "./scorecard.ts";
 * const rowsWithFeature2: Probe = { latent: ALWAYS_LATENT, a: 2, b: 2 };
 * assert.equal(rowsWithFeature2.latent, 0xffffffff);
 * ```
 */
export interface Probe {
  /** The latent that must fire, or {@link ALWAYS_LATENT}. */
  latent: number;
  /** A feature that must be on. */
  a: number;
  /** Another (or the same) feature that must be on. */
  b: number;
}

/**
 * What the weights decide before any row is seen: the matching, the edges, each latent's best
 * feature and the probes (sorted by latent, {@link ALWAYS_LATENT} last).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type ScorecardPlan, scorecardPlan } from "./scorecard.ts";
 * import { notebookTree } from "../toy/notebook_trees.ts";
 * const identity = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]];
 * const plan: ScorecardPlan = scorecardPlan(notebookTree(), identity, identity, [1, 4]);
 * assert.deepEqual(plan.latentOf, [0, 1, 2, 3]);
 * assert.deepEqual(plan.bestFeature, [0, 1, 2, 3]);
 * assert.ok(plan.probes.every((p, i) => i === 0 || plan.probes[i - 1]!.latent <= p.latent));
 * ```
 */
export interface ScorecardPlan {
  /** The tree's edges. */
  edges: TreeEdge[];
  /** Matched latent of each feature (−1: unmatched, when there are fewer latents). */
  latentOf: number[];
  /** Best-matching feature of each latent (largest |decoder cosine|; −1 when all are NaN). */
  bestFeature: number[];
  /** Encoder cosine table `[latent][feature]`. */
  encoder: number[][];
  /** Decoder cosine table `[latent][feature]`. */
  decoder: number[][];
  /** Prefix ends of the SAE (the last is dSae). */
  prefixEnds: number[];
  /** The firing counts to take on the held-out rows. */
  probes: Probe[];
}

const finiteAbs = (v: number) => Number.isFinite(v) ? Math.abs(v) : 0;

/** Matched latent of each feature: Hungarian on |cosine| of a `[latent][feature]` table. */
export function matchFeatures(cosSims: readonly (readonly number[])[]): number[] {
  const abs = cosSims.map((row) => row.map(finiteAbs));
  const { columnAssignments } = linearSumAssignment(abs, { maximaze: true });
  return Array.from(columnAssignments, (l) => Number(l));
}

/**
 * The weights' part of the scorecard of one SAE on one tree (see {@link ScorecardPlan}).
 *
 * @param encoder `[latent][feature]` encoder cosines; `decoder` the decoder's.
 * @param prefixEnds the SAE's prefix ends, ascending, the last = number of latents.
 */
export function scorecardPlan(
  tree: TreeFeatureGenerator,
  encoder: number[][],
  decoder: number[][],
  prefixEnds: readonly number[],
): ScorecardPlan {
  const edges = treeEdges(tree);
  const latentOf = matchFeatures(decoder);
  const bestFeature = decoder.map((row) => {
    let best = -1;
    row.forEach((v, f) => {
      if (Number.isFinite(v) && (best < 0 || Math.abs(v) > Math.abs(row[best]!))) best = f;
    });
    return best;
  });
  const seen = new Set<string>();
  const probes: Probe[] = [];
  const add = (latent: number, a: number, b: number) => {
    const key = `${latent}|${Math.min(a, b)}|${Math.max(a, b)}`;
    if (seen.has(key)) return;
    seen.add(key);
    probes.push({ latent, a: Math.min(a, b), b: Math.max(a, b) });
  };
  for (let f = 0; f < tree.nFeatures; f++) add(ALWAYS_LATENT, f, f);
  bestFeature.forEach((f, j) => f >= 0 && add(j, f, f));
  for (const { parent, child } of edges) {
    add(ALWAYS_LATENT, parent, child);
    const latent = latentOf[parent]!;
    if (latent < 0) continue;
    add(latent, parent, parent);
    add(latent, parent, child);
  }
  probes.sort((x, y) => x.latent - y.latent);
  return { edges, latentOf, bestFeature, encoder, decoder, prefixEnds: [...prefixEnds], probes };
}

/** Looks up a probe's count (features in either order). */
function countOf(plan: ScorecardPlan, counts: readonly number[]) {
  const index = new Map(plan.probes.map((p, q) => [`${p.latent}|${p.a}|${p.b}`, q]));
  return (latent: number, a: number, b: number): number => {
    const q = index.get(`${latent}|${Math.min(a, b)}|${Math.max(a, b)}`);
    if (q === undefined) throw new Error(`Internal error: no probe (${latent}, ${a}, ${b})`);
    return counts[q]!;
  };
}

/**
 * The reading of one edge on held-out rows.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { EdgeScore } from "./scorecard.ts";
 * const edge: EdgeScore = {
 *   parent: 0, child: 1, depth: 0, latent: 0, prefix: 0,
 *   encoderCos: -0.3, decoderCos: 0.05, absorptionGap: 0.4,
 * };
 * assert.ok(edge.encoderCos < 0 && edge.absorptionGap > 0); // the parent latent absorbs the child
 * ```
 */
export interface EdgeScore extends TreeEdge {
  /** The parent's matched latent (−1: unmatched; the cosines and gap are then NaN). */
  latent: number;
  /** Index of the Matryoshka prefix the latent first appears in (−1: unmatched). */
  prefix: number;
  /** Cosine of the parent latent's encoder with the child (< 0: absorption, > 0: hedging). */
  encoderCos: number;
  /** Cosine of the parent latent's decoder with the child (> 0: hedging). */
  decoderCos: number;
  /**
   * Absorption gap: P(parent latent fires | parent on, child off) − P(parent latent fires |
   * parent and child on), on held-out rows; NaN when either condition never occurs.
   */
  absorptionGap: number;
}

/**
 * One latent against its best-matching feature.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { LatentScore } from "./scorecard.ts";
 * const score: LatentScore = { latent: 2, feature: 2, precision: 1, recall: 0.5, f1: 2 / 3 };
 * assert.ok(Math.abs(score.f1 - (2 * score.precision * score.recall) / 1.5) < 1e-12);
 * ```
 */
export interface LatentScore {
  /** The latent. */
  latent: number;
  /** Its best-matching feature (largest |decoder cosine|; −1 when none). */
  feature: number;
  /** P(feature on | latent fires); 0 when the latent never fires. */
  precision: number;
  /** P(latent fires | feature on); 0 when the feature is never on. */
  recall: number;
  /** Harmonic mean of precision and recall; 0 when both are 0. */
  f1: number;
}

/**
 * Mean and largest |value| of the edge readings in one group (a tree depth or a prefix).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { edgeSummaries, type EdgeSummary } from "./scorecard.ts";
 * const edge = { parent: 0, depth: 0, latent: 0, prefix: 0, decoderCos: 0, absorptionGap: 0 };
 * const [summary]: EdgeSummary[] = edgeSummaries(
 *   [{ ...edge, child: 1, encoderCos: -0.2 }, { ...edge, child: 2, encoderCos: 0.4 }],
 *   "depth",
 * );
 * assert.deepEqual([summary!.edges, summary!.encoder.maxAbs], [2, 0.4]);
 * assert.ok(Math.abs(summary!.encoder.mean - 0.1) < 1e-12);
 * ```
 */
export interface EdgeSummary {
  /** The depth or the prefix index. */
  group: number;
  /** Edges in the group. */
  edges: number;
  /** Encoder cosines with the children: mean and largest |·|. */
  encoder: { mean: number; maxAbs: number };
  /** Decoder cosines with the children. */
  decoder: { mean: number; maxAbs: number };
  /** Absorption gaps (NaN ones left out; NaN when none is finite). */
  absorptionGap: { mean: number; maxAbs: number };
}

/** Summaries of edge readings grouped by the parent's tree depth or by its latent's prefix. */
export function edgeSummaries(
  edges: readonly EdgeScore[],
  by: "depth" | "prefix",
): EdgeSummary[] {
  const groups = [...new Set(edges.map((e) => e[by]))].filter((g) => g >= 0).sort((a, b) => a - b);
  const stats = (values: number[]) => {
    const v = values.filter(Number.isFinite);
    if (v.length === 0) return { mean: NaN, maxAbs: NaN };
    return {
      mean: v.reduce((a, b) => a + b, 0) / v.length,
      maxAbs: Math.max(...v.map(Math.abs)),
    };
  };
  return groups.map((group) => {
    const members = edges.filter((e) => e[by] === group);
    return {
      group,
      edges: members.length,
      encoder: stats(members.map((e) => e.encoderCos)),
      decoder: stats(members.map((e) => e.decoderCos)),
      absorptionGap: stats(members.map((e) => e.absorptionGap)),
    };
  });
}

/**
 * The scorecard of one SAE on held-out rows (plain data).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { evaluateCpu } from "./evaluate_cpu.ts";
 * import type { Scorecard } from "./scorecard.ts";
 * import { initSaeToMatchModel } from "../sae/init.ts";
 * import { MatryoshkaSAE } from "../sae/sae.ts";
 * import { notebookTree } from "../toy/notebook_trees.ts";
 * import { ToyModel } from "../toy/toy_model.ts";
 * const tree = notebookTree();
 * const model = new ToyModel({ nFeatures: 4, hiddenDim: 8 });
 * const sae = new MatryoshkaSAE({ dIn: 8, dSae: 4, matryoshkaSteps: [1, 4] });
 * initSaeToMatchModel(sae, model); // latent j = feature j: no hedging, no absorption
 * const card: Scorecard = evaluateCpu([{ sae, model, tree }], { rows: 2000 })[0]!.scorecard;
 * assert.equal(card.edges.length, 3);
 * assert.ok(card.edges.every((e) => e.latent === 0 && Math.abs(e.absorptionGap) < 1e-12));
 * assert.equal(card.uniqueness, 1);
 * ```
 */
export interface Scorecard {
  /** Every parent–child edge, by child. */
  edges: EdgeScore[];
  /** Edge summaries per tree depth of the parent. */
  byDepth: EdgeSummary[];
  /** Edge summaries per Matryoshka prefix of the parent's latent. */
  byPrefix: EdgeSummary[];
  /** Each latent against its best-matching feature. */
  latents: LatentScore[];
  /** Mean precision, recall and F1 over latents. */
  meanPrecision: number;
  /** Mean recall over latents. */
  meanRecall: number;
  /** Mean F1 over latents. */
  meanF1: number;
  /**
   * Uniqueness: distinct best-matching features over latents (1: every latent has a feature of
   * its own; duplicates sharing a feature pull it towards 1/dSae).
   */
  uniqueness: number;
}

/** The scorecard from the plan and its probes' counts on the held-out rows. */
export function finishScorecard(
  plan: ScorecardPlan,
  counts: readonly number[],
  fires: readonly number[],
): Scorecard {
  const count = countOf(plan, counts);
  const ratio = (a: number, b: number) => b > 0 ? a / b : NaN;
  const prefixOf = (latent: number) => plan.prefixEnds.findIndex((end) => latent < end);
  const edges = plan.edges.map((edge): EdgeScore => {
    const latent = plan.latentOf[edge.parent] ?? -1;
    if (latent < 0) {
      return {
        ...edge,
        latent,
        prefix: -1,
        encoderCos: NaN,
        decoderCos: NaN,
        absorptionGap: NaN,
      };
    }
    const { parent: p, child: c } = edge;
    const both = count(ALWAYS_LATENT, p, c);
    const firesBoth = count(latent, p, c);
    const withoutChild = ratio(count(latent, p, p) - firesBoth, count(ALWAYS_LATENT, p, p) - both);
    return {
      ...edge,
      latent,
      prefix: prefixOf(latent),
      encoderCos: plan.encoder[latent]![c]!,
      decoderCos: plan.decoder[latent]![c]!,
      absorptionGap: withoutChild - ratio(firesBoth, both),
    };
  });
  const latents = plan.bestFeature.map((feature, latent): LatentScore => {
    if (feature < 0) return { latent, feature, precision: 0, recall: 0, f1: 0 };
    const hits = count(latent, feature, feature);
    const precision = fires[latent]! > 0 ? hits / fires[latent]! : 0;
    const on = count(ALWAYS_LATENT, feature, feature);
    const recall = on > 0 ? hits / on : 0;
    const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
    return { latent, feature, precision, recall, f1 };
  });
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / Math.max(1, v.length);
  const matched = plan.bestFeature.filter((f) => f >= 0);
  return {
    edges,
    byDepth: edgeSummaries(edges, "depth"),
    byPrefix: edgeSummaries(edges, "prefix"),
    latents,
    meanPrecision: mean(latents.map((l) => l.precision)),
    meanRecall: mean(latents.map((l) => l.recall)),
    meanF1: mean(latents.map((l) => l.f1)),
    uniqueness: new Set(matched).size / Math.max(1, plan.bestFeature.length),
  };
}
