/**
 * The synthetic-SAE evaluation suite (the quantities of SAELens's synthetic-data evaluation) in
 * float64 on the host: its definitions (what is measured, on which held-out rows) and its plain
 * computation, the oracle of the GPU version in `evaluate.ts` and its fallback.
 *
 * Held-out rows. Row i (0 ≤ i < rows) of the evaluation of an item is row `i mod
 * EVAL_ROWS_PER_STEP` of step `EVAL_STEP_BASE + ⌊i / EVAL_ROWS_PER_STEP⌋` of the item's tree under
 * the data seed `evalDataSeed(seed)`, embedded by the item's toy model. Training draws steps
 * 0, 1, 2, … (< 2³¹ in any run), so the evaluation's steps (≥ 2³¹) never address a training batch
 * whatever the seeds; the derived seed keeps the streams apart as well. All items of one call share
 * the seed: items with the same tree see the same rows (common random numbers).
 *
 * Row statistics are summed per model into {@link EvalTotals}; {@link finishMetrics} turns them
 * into {@link SaeMetrics}, adding the weight-only metrics (MCC, latent-0 readings). The per-edge
 * scorecard's firing counts are the probes of {@link planOf} (`scorecard.ts`).
 */
import { checkSeed, philox4x32 } from "../toy/rng.ts";
import { sampleBatchCpu } from "../toy/cpu_sampler.ts";
import { checkInteger } from "../check_value.ts";
import type { TreeFeatureGenerator } from "../toy/tree.ts";
import type { MatryoshkaSAE } from "../sae/sae.ts";
import { paramViews } from "../sae/layout.ts";
import { selectTopK } from "../reference/topk_reference.ts";
import { resolvedSteps } from "../sae/loss_plan.ts";
import { decoderCosSims, encoderCosSims } from "./cosine.ts";
import { mcc } from "./matching.ts";
import { type Latent0Reading, readLatent0 } from "./latent0.ts";
import {
  ALWAYS_LATENT,
  finishScorecard,
  type Scorecard,
  type ScorecardPlan,
  scorecardPlan,
} from "./scorecard.ts";

/** First step of the held-out stream (training steps are all below it). */
export const EVAL_STEP_BASE = 0x80000000;
/** Rows drawn per held-out step. */
export const EVAL_ROWS_PER_STEP = 4096;
/**
 * Default number of held-out rows (`--eval-rows` of `balanced` and `sweep`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_EVAL_ROWS, MAX_EVAL_ROWS } from "./evaluate_cpu.ts";
 * assert.ok(DEFAULT_EVAL_ROWS === 100_000 && DEFAULT_EVAL_ROWS < MAX_EVAL_ROWS);
 * ```
 */
export const DEFAULT_EVAL_ROWS = 100_000;
/**
 * Most held-out rows one evaluation may draw.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { evaluateCpu, MAX_EVAL_ROWS } from "./evaluate_cpu.ts";
 * import { MatryoshkaSAE } from "../sae/sae.ts";
 * import { notebookTree } from "../toy/notebook_trees.ts";
 * import { ToyModel } from "../toy/toy_model.ts";
 * const item = {
 *   sae: new MatryoshkaSAE({ dIn: 8, dSae: 4, matryoshkaSteps: [1, 4] }),
 *   model: new ToyModel({ nFeatures: 4, hiddenDim: 8 }),
 *   tree: notebookTree(),
 * };
 * assert.throws(() => evaluateCpu([item], { rows: MAX_EVAL_ROWS + 1 }), /rows/);
 * ```
 */
export const MAX_EVAL_ROWS = 2 ** 31;
/** Key word 1 of the derivation of the held-out data seed: "EVAL". */
const EVAL_SEED_DOMAIN = 0x4556414c;

/**
 * The data seed of the held-out rows for evaluation seed `seed`:
 * `philox4x32((seed, 0, 0, 0), (0x4556414C "EVAL", 0))[0]`.
 */
export function evalDataSeed(seed: number): number {
  return philox4x32([seed >>> 0, 0, 0, 0], [EVAL_SEED_DOMAIN, 0])[0];
}

/**
 * One SAE to evaluate, with the world it was trained on.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type EvaluateItem, evaluateCpu } from "./evaluate_cpu.ts";
 * import { initSaeToMatchModel } from "../sae/init.ts";
 * import { MatryoshkaSAE } from "../sae/sae.ts";
 * import { notebookTree } from "../toy/notebook_trees.ts";
 * import { ToyModel } from "../toy/toy_model.ts";
 * const tree = notebookTree(); // 4 read-out features
 * const model = new ToyModel({ nFeatures: tree.nFeatures, hiddenDim: 8 });
 * const sae = new MatryoshkaSAE({ dIn: 8, dSae: 4 });
 * initSaeToMatchModel(sae, model); // latent j = true feature j
 * const item: EvaluateItem = { sae, model, tree };
 * const [metrics] = evaluateCpu([item], { rows: 1000 });
 * assert.ok(Math.abs(metrics!.mccDecoder - 1) < 1e-6);
 * ```
 */
export interface EvaluateItem {
  /** The SAE (every item of one call has the same dIn and dSae). */
  sae: MatryoshkaSAE;
  /** The toy model: `embedding` is `[tree.nFeatures][dIn]`, row f = true feature f. */
  model: { embedding: Float32Array };
  /** The tree the held-out rows are drawn from. */
  tree: TreeFeatureGenerator;
}

/**
 * Options of `evaluate` and {@link evaluateCpu}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { evalDataSeed, evaluateCpu, type EvaluateOptions } from "./evaluate_cpu.ts";
 * import { MatryoshkaSAE } from "../sae/sae.ts";
 * import { notebookTree } from "../toy/notebook_trees.ts";
 * const embedding = Float32Array.from({ length: 16 }, (_, i) => i % 5 === 0 ? 1 : 0); // identity
 * const sae = new MatryoshkaSAE({ dIn: 4, dSae: 4 }); // all zeros: every latent is dead
 * const options: EvaluateOptions = { rows: 500, seed: 1 };
 * const [metrics] = evaluateCpu([{ sae, model: { embedding }, tree: notebookTree() }], options);
 * assert.equal(metrics!.rows, 500);
 * assert.equal(metrics!.dataSeed, evalDataSeed(1));
 * assert.equal(metrics!.deadCount, 4);
 * ```
 */
export interface EvaluateOptions {
  /** Held-out rows per model (default 100,000). */
  rows?: number;
  /** Evaluation seed (default 0); the rows' data seed is `evalDataSeed(seed)`. */
  seed?: number;
  /**
   * GPU only: distinct rows (merged activity patterns, or noisy rows) per chunk (default: up to
   * 16,384, fewer when memory requires). The CPU twin ignores it.
   */
  batchRows?: number;
}

/**
 * The evaluation of one SAE on held-out rows of its tree (plain data). Each field's comment is its
 * one-line glossary entry.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { evaluateCpu, type SaeMetrics } from "./evaluate_cpu.ts";
 * import { initSaeToMatchModel } from "../sae/init.ts";
 * import { MatryoshkaSAE } from "../sae/sae.ts";
 * import { notebookTree } from "../toy/notebook_trees.ts";
 * import { ToyModel } from "../toy/toy_model.ts";
 * const tree = notebookTree();
 * const model = new ToyModel({ nFeatures: tree.nFeatures, hiddenDim: 8 });
 * const sae = new MatryoshkaSAE({ dIn: 8, dSae: 4, matryoshkaSteps: [1, 4] });
 * initSaeToMatchModel(sae, model);
 * const metrics: SaeMetrics = evaluateCpu([{ sae, model, tree }], { rows: 1000 })[0]!;
 * assert.deepEqual(metrics.prefixEnds, [1, 4]);
 * assert.ok(metrics.explainedVariance > 0.999 && metrics.deadCount === 0);
 * assert.equal(metrics.latent0.decoder.regime, "balanced"); // latent 0 is the pure parent
 * ```
 */
export interface SaeMetrics {
  /** Held-out rows evaluated. */
  rows: number;
  /** Data seed of the held-out rows: `evalDataSeed(seed)`, at steps from 2³¹ (never training's). */
  dataSeed: number;
  /**
   * MCC (encoder): mean cosine similarity between true features and encoder columns `W_enc[:, j]`
   * after an optimal one-to-one (Hungarian) matching; 1 = every feature has a latent of its own.
   */
  mccEncoder: number;
  /** MCC (decoder): the same with the decoder rows `W_dec[j]`. */
  mccDecoder: number;
  /**
   * Explained variance: `1 − Σ‖x − x̂‖² / Σ‖x − x̄‖²` of the full SAE's reconstruction
   * `x̂ = acts·W_dec + b_dec`; 1 = perfect, 0 = no better than the mean of x.
   */
  explainedVariance: number;
  /** Matryoshka prefix ends `p_i` (the configuration's steps, or `[dSae]`). */
  prefixEnds: number[];
  /**
   * Prefix explained variance: the same for each prefix's reconstruction
   * `x̂_i = Σ_{j<p_i} acts_j W_dec[j] + b_dec`, one per prefix end.
   */
  prefixExplainedVariance: number[];
  /** L0: mean number of active latents (`acts > 0`) per row. */
  l0: number;
  /** True L0: mean number of active (non-zero) true features per row, on the same rows. */
  trueL0: number;
  /** Dead latents: indices of latents active on no held-out row. */
  deadLatents: number[];
  /** Number of dead latents. */
  deadCount: number;
  /** Shrinkage: mean `‖x̂‖ / ‖x‖` over rows with `x ≠ 0`; below 1 the SAE shrinks its outputs. */
  shrinkage: number;
  /**
   * Hedging/absorption: latent 0's cosines (encoder, decoder) with the parent (feature 0) and each
   * of its read-out children; positive child parts = hedging, negative = absorption (latent0.ts).
   */
  latent0: { encoder: Latent0Reading; decoder: Latent0Reading };
  /**
   * Per-edge scorecard: every parent–child edge read on the parent's matched latent (encoder and
   * decoder cosine with the child, absorption gap), summaries per depth and prefix, per-latent
   * precision / recall / F1 and uniqueness (`scorecard.ts`).
   */
  scorecard: Scorecard;
}

/** Sums over the held-out rows of one model, from which {@link SaeMetrics} are derived. */
export interface EvalTotals {
  /** Rows summed (N). */
  rows: number;
  /** `Σ‖x − x̂_e‖²` for each evaluated end of {@link evalEnds}. */
  sqErr: number[];
  /** `Σ‖x − x̄‖²` (total sum of squares about the held-out mean). */
  sqDev: number;
  /** `Σ` active latents. */
  l0: number;
  /** `Σ` non-zero true features. */
  trueL0: number;
  /** Rows on which each latent is active, `[dSae]`. */
  fires: number[];
  /** `Σ ‖x̂‖/‖x‖` over rows with `x ≠ 0`. */
  shrink: number;
  /** Rows with `x ≠ 0`. */
  shrinkRows: number;
  /** Each probe's count (`ScorecardPlan.probes` of {@link planOf}), in probe order. */
  probes: number[];
}

/**
 * The latent ends that are decoded: the prefix ends, then `dSae` if the last prefix stops short of
 * it (the full SAE). The full SAE's error is the last entry.
 */
export function evalEnds(sae: MatryoshkaSAE): number[] {
  const ends = resolvedSteps(sae.config);
  return ends[ends.length - 1] === sae.config.dSae ? ends : [...ends, sae.config.dSae];
}

/** The read-out features whose nearest read-out ancestor is feature 0 (the parent's children). */
export function childrenOfFeature0(tree: TreeFeatureGenerator): number[] {
  const parentNode = tree.features[0]?.nodeIndex;
  if (parentNode === undefined) return [];
  return tree.features.filter((node) => {
    for (let p = node.parent; p !== null; p = tree.nodes[p]!.parent) {
      const ancestor = tree.nodes[p]!;
      if (ancestor.isReadOut) return ancestor.nodeIndex === parentNode;
    }
    return false;
  }).map((node) => node.index!);
}

/** Checks the items, options and shapes shared by the CPU and GPU evaluations. */
export function checkEvaluation(
  items: readonly EvaluateItem[],
  options: EvaluateOptions,
): { rows: number; seed: number } {
  if (items.length === 0) throw new RangeError("Invalid items: expected at least one SAE, got 0");
  const { dIn, dSae } = items[0]!.sae.config;
  items.forEach(({ sae, model, tree }, i) => {
    if (sae.config.dIn !== dIn || sae.config.dSae !== dSae) {
      throw new RangeError(
        `Invalid items[${i}].sae: every SAE must have dIn ${dIn} and dSae ${dSae} like items[0], ` +
          `got dIn ${sae.config.dIn} and dSae ${sae.config.dSae}`,
      );
    }
    if (tree.nFeatures < 1) {
      throw new RangeError(
        `Invalid items[${i}].tree: expected at least one read-out feature, got 0`,
      );
    }
    if (model.embedding.length !== tree.nFeatures * dIn) {
      throw new RangeError(
        `Invalid items[${i}].model.embedding: expected [${tree.nFeatures}][${dIn}] = ` +
          `${tree.nFeatures * dIn} floats (tree features × dIn), got ${model.embedding.length}`,
      );
    }
  });
  const rows = checkInteger("rows", options.rows ?? DEFAULT_EVAL_ROWS, 1, MAX_EVAL_ROWS);
  const seed = checkSeed("seed", options.seed ?? 0);
  return { rows, seed };
}

/** NaN cosines (zero-length vectors) count as 0 in the matching. */
function finite(cosSims: number[][]): number[][] {
  return cosSims.map((row) => row.map((v) => Number.isFinite(v) ? v : 0));
}

/** The weights' part of an item's metrics: cosine tables, matching, edges and probes. */
export function planOf(item: EvaluateItem): ScorecardPlan {
  const { sae, model, tree } = item;
  const enc = encoderCosSims(sae.params, sae.layout, model.embedding, tree.nFeatures);
  const dec = decoderCosSims(sae.params, sae.layout, model.embedding, tree.nFeatures);
  return scorecardPlan(tree, enc, dec, evalEnds(sae));
}

/** Derives the metrics of one item from its row sums and its weights' plan ({@link planOf}). */
export function finishMetrics(
  item: EvaluateItem,
  totals: EvalTotals,
  dataSeed: number,
  plan: ScorecardPlan,
): SaeMetrics {
  const { sae, tree } = item;
  const prefixEnds = resolvedSteps(sae.config);
  const ev = (sqErr: number) => 1 - sqErr / totals.sqDev;
  const { encoder: enc, decoder: dec } = plan;
  const children = childrenOfFeature0(tree);
  const deadLatents = totals.fires.flatMap((count, j) => count === 0 ? [j] : []);
  return {
    rows: totals.rows,
    dataSeed,
    mccEncoder: mcc(finite(enc)).mcc,
    mccDecoder: mcc(finite(dec)).mcc,
    explainedVariance: ev(totals.sqErr[totals.sqErr.length - 1]!),
    prefixEnds,
    prefixExplainedVariance: prefixEnds.map((_, i) => ev(totals.sqErr[i]!)),
    l0: totals.l0 / totals.rows,
    trueL0: totals.trueL0 / totals.rows,
    deadLatents,
    deadCount: deadLatents.length,
    shrinkage: totals.shrink / totals.shrinkRows,
    latent0: {
      encoder: readLatent0(enc, { parent: 0, children }),
      decoder: readLatent0(dec, { parent: 0, children }),
    },
    scorecard: finishScorecard(plan, totals.probes, totals.fires),
  };
}

/** The row sums of one item on the held-out rows, in float64 (inputs are the float32 samples). */
export function evalTotalsCpu(
  item: EvaluateItem,
  rows: number,
  dataSeed: number,
  plan: ScorecardPlan,
): EvalTotals {
  const { sae, model, tree } = item;
  const { dIn: D, dSae: S, applyBDecToInput } = sae.config;
  const F = tree.nFeatures;
  const { wEnc, bEnc, wDec, bDec } = paramViews(sae.params, sae.layout);
  const ends = evalEnds(sae);
  const gate = sae.inferenceGate();
  const sqErr = new Array<number>(ends.length).fill(0);
  const fires = new Array<number>(S).fill(0);
  // Welford's running mean and sum of squared deviations, per input dimension.
  const mean = new Float64Array(D);
  const m2 = new Float64Array(D);
  const x = new Float64Array(D);
  const acts = new Float64Array(S);
  const recon = new Float64Array(D);
  const probes = new Array<number>(plan.probes.length).fill(0);
  let l0 = 0, trueL0 = 0, shrink = 0, shrinkRows = 0, n = 0;
  for (let first = 0; first < rows; first += EVAL_ROWS_PER_STEP) {
    const batchSize = Math.min(EVAL_ROWS_PER_STEP, rows - first);
    const step = EVAL_STEP_BASE + first / EVAL_ROWS_PER_STEP;
    const features = sampleBatchCpu(tree, { seed: dataSeed, step, batchSize });
    for (let r = 0; r < batchSize; r++) {
      const f = features.subarray(r * F, (r + 1) * F);
      for (let i = 0; i < F; i++) if (f[i] !== 0) trueL0++;
      let xx = 0;
      n++;
      for (let d = 0; d < D; d++) {
        let acc = 0;
        for (let i = 0; i < F; i++) acc += f[i]! * model.embedding[i * D + d]!;
        x[d] = acc;
        xx += acc * acc;
        const delta = acc - mean[d]!;
        mean[d]! += delta / n;
        m2[d]! += delta * (acc - mean[d]!);
      }
      for (let j = 0; j < S; j++) {
        let pre = bEnc[j]!;
        for (let d = 0; d < D; d++) {
          pre += (x[d]! - (applyBDecToInput ? bDec[d]! : 0)) * wEnc[d * S + j]!;
        }
        acts[j] = pre > gate.threshold ? pre : 0;
      }
      if (gate.k !== null) selectTopK(acts, 1, S, gate.k);
      for (let j = 0; j < S; j++) {
        if (acts[j]! > 0) {
          l0++;
          fires[j]!++;
        }
      }
      plan.probes.forEach(({ latent, a, b }, q) => {
        if ((latent === ALWAYS_LATENT || acts[latent]! > 0) && f[a] !== 0 && f[b] !== 0) {
          probes[q]!++;
        }
      });
      for (let d = 0; d < D; d++) recon[d] = bDec[d]!;
      let start = 0;
      ends.forEach((end, e) => {
        let err = 0;
        for (let d = 0; d < D; d++) {
          let v = recon[d]!;
          for (let j = start; j < end; j++) v += acts[j]! * wDec[j * D + d]!;
          recon[d] = v;
          err += (x[d]! - v) ** 2;
        }
        sqErr[e]! += err;
        start = end;
      });
      if (xx > 0) {
        let rr = 0;
        for (let d = 0; d < D; d++) rr += recon[d]! ** 2;
        shrink += Math.sqrt(rr) / Math.sqrt(xx);
        shrinkRows++;
      }
    }
  }
  const sqDev = m2.reduce((a, b) => a + b, 0);
  return { rows, sqErr, sqDev, l0, trueL0, fires, shrink, shrinkRows, probes };
}

/**
 * {@link SaeMetrics} of each item in float64 on the host (the GPU version's oracle and fallback).
 *
 * @example
 * ```ts ignore
 * const [metrics] = evaluateCpu([{ sae, model, tree }], { rows: 20_000 });
 * console.log(metrics.explainedVariance, metrics.mccDecoder);
 * ```
 */
export function evaluateCpu(
  items: readonly EvaluateItem[],
  options: EvaluateOptions = {},
): SaeMetrics[] {
  const { rows, seed } = checkEvaluation(items, options);
  const dataSeed = evalDataSeed(seed);
  return items.map((item) => {
    const plan = planOf(item);
    return finishMetrics(item, evalTotalsCpu(item, rows, dataSeed, plan), dataSeed, plan);
  });
}
