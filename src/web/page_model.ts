/**
 * What the browser page computes, without the page: the β slider's scale (0 to 1, then ∞), the
 * tree a visitor picked, the SAE a run trains (the sweep's configuration for β, initialised as the
 * notebook does), how often it reports, and the reading of its parameters (cosine tables, the
 * parent latent's verdict). `app.ts` wires these to the DOM; tests run them in Deno.
 */
import { decoderCosSims, encoderCosSims } from "../metrics/cosine.ts";
import { describeLatent0, type Latent0Reading, readLatent0 } from "../metrics/latent0.ts";
import { initSaeToMatchModel } from "../sae/init.ts";
import type { ParamLayout } from "../sae/layout.ts";
import { betaSaeConfig, SWEEP_HIDDEN_DIM } from "../sae/notebook_saes.ts";
import { MatryoshkaSAE } from "../sae/sae.ts";
import { checkSeed } from "../toy/rng.ts";
import { notebookTree } from "../toy/notebook_trees.ts";
import { ToyModel } from "../toy/toy_model.ts";
import type { TreeFeatureGenerator } from "../toy/tree.ts";

/**
 * The slider's last position: β = ∞ (the detached setup); positions 0–100 are β = p / 100.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SLIDER_INFINITY, sliderBeta } from "./page_model.ts";
 * assert.equal(sliderBeta(SLIDER_INFINITY), Infinity);
 * ```
 */
export const SLIDER_INFINITY = 101;

/**
 * The notebook's two trees, by the page's names: their children's probabilities.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PAGE_TREES } from "./page_model.ts";
 * assert.deepEqual(PAGE_TREES.unbalanced, [0.02, 0.15, 0.5]);
 * ```
 */
export const PAGE_TREES = {
  balanced: [0.15, 0.15, 0.15],
  unbalanced: [0.02, 0.15, 0.5],
} as const;

/**
 * The most steps the page trains (200,000 steps is what the paper's absorption runs take).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkPageRun, MAX_PAGE_STEPS } from "./page_model.ts";
 * const run = { childProbs: [0.15, 0.15, 0.15], beta: 0, steps: MAX_PAGE_STEPS + 1, seed: 0 };
 * assert.throws(() => checkPageRun(run), /steps must be an integer from 1 to 200000/);
 * ```
 */
export const MAX_PAGE_STEPS = 200_000;

/**
 * β at a slider position.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sliderBeta } from "./page_model.ts";
 * assert.deepEqual([sliderBeta(0), sliderBeta(25), sliderBeta(101)], [0, 0.25, Infinity]);
 * ```
 */
export function sliderBeta(position: number): number {
  return position >= SLIDER_INFINITY ? Infinity : Math.max(0, Math.round(position)) / 100;
}

/**
 * How the page writes β.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { betaText } from "./page_model.ts";
 * assert.deepEqual([betaText(0.25), betaText(Infinity)], ["β = 0.25", "β = ∞"]);
 * ```
 */
export function betaText(beta: number): string {
  return `β = ${beta === Infinity ? "∞" : String(beta)}`;
}

/**
 * What a visitor asked for: a tree's children's probabilities, β, steps and seed.
 *
 * @example
 * ```ts
 * import { type PageRun, PAGE_TREES } from "./page_model.ts";
 * const run: PageRun = { childProbs: PAGE_TREES.balanced, beta: 0.25, steps: 24_415, seed: 0 };
 * ```
 */
export interface PageRun {
  /** The read-out children's firing probabilities under the parent (p = 0.25), in [0, 1]. */
  childProbs: readonly number[];
  /** The inner prefix's loss multiplier (Infinity: the detached setup). */
  beta: number;
  /** Optimiser steps, 1 to {@link MAX_PAGE_STEPS}. */
  steps: number;
  /** Seed of the toy model and the batches. */
  seed: number;
}

/**
 * Checks the form's values; an error names the field and what is allowed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkPageRun } from "./page_model.ts";
 * const run = { childProbs: [0.15, 1.5, 0.15], beta: 0.25, steps: 100, seed: 0 };
 * assert.throws(() => checkPageRun(run), /child 2's probability must be from 0 to 1, got 1.5/);
 * ```
 */
export function checkPageRun(run: PageRun): PageRun {
  run.childProbs.forEach((p, i) => {
    if (!(Number.isFinite(p) && p >= 0 && p <= 1)) {
      throw new RangeError(`child ${i + 1}'s probability must be from 0 to 1, got ${p}`);
    }
  });
  if (!(Number.isInteger(run.steps) && run.steps >= 1 && run.steps <= MAX_PAGE_STEPS)) {
    throw new RangeError(`steps must be an integer from 1 to ${MAX_PAGE_STEPS}, got ${run.steps}`);
  }
  checkSeed("seed", run.seed);
  return run;
}

/**
 * How often a run reports (and the page redraws): about 100 times per run, at least 50 steps
 * apart.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { progressEveryFor } from "./page_model.ts";
 * assert.deepEqual([progressEveryFor(24_415), progressEveryFor(300)], [245, 50]);
 * ```
 */
export function progressEveryFor(steps: number): number {
  return Math.max(50, Math.ceil(steps / 100));
}

/**
 * The toy model, tree and SAE of one page run, as `deno task balanced` builds them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pageSetup, type PageSetup } from "./page_model.ts";
 * const setup: PageSetup = pageSetup({ childProbs: [0.1, 0.2, 0.3], beta: 0, steps: 1, seed: 0 });
 * assert.equal(setup.sae.config.dSae, setup.tree.nFeatures);
 * ```
 */
export interface PageSetup {
  /** The toy model of the run's seed: 4 features in 50 dimensions. */
  model: ToyModel;
  /** The notebook's tree with the run's children. */
  tree: TreeFeatureGenerator;
  /** The SAE for the run's β, initialised to match the toy model. */
  sae: MatryoshkaSAE;
}

/**
 * Builds runs: for each, the toy model of its seed (4 features in 50 dimensions), the notebook's
 * tree with its children, and the SAE for its β initialised to match the toy model (noise 0).
 * Runs with the same seed share one toy model and runs with the same children one tree, so that
 * training them together draws one batch stream per (tree, seed), as `deno task balanced` does.
 * Seed 0 at β = 0.25 on the balanced tree is `balanced`'s balanced SAE.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pageSetups } from "./page_model.ts";
 * const [a, b] = pageSetups([
 *   { childProbs: [0.15, 0.15, 0.15], beta: 0, steps: 1, seed: 0 },
 *   { childProbs: [0.15, 0.15, 0.15], beta: Infinity, steps: 1, seed: 0 },
 * ]);
 * assert.equal(a!.model, b!.model); // one toy model and one tree for both
 * assert.equal(a!.tree, b!.tree);
 * assert.equal(b!.sae.config.useDeltaLoss, true); // β = ∞: the detached setup
 * ```
 */
export function pageSetups(runs: readonly PageRun[]): PageSetup[] {
  const trees = new Map<string, TreeFeatureGenerator>();
  const models = new Map<string, ToyModel>();
  return runs.map((run) => {
    const probs = run.childProbs.join(",");
    const tree = trees.get(probs) ?? notebookTree([...run.childProbs]);
    trees.set(probs, tree);
    const modelKey = `${tree.nFeatures}/${run.seed}`;
    const model = models.get(modelKey) ??
      new ToyModel({ nFeatures: tree.nFeatures, hiddenDim: SWEEP_HIDDEN_DIM, seed: run.seed });
    models.set(modelKey, model);
    const sae = new MatryoshkaSAE(betaSaeConfig(run.beta, tree.nFeatures));
    initSaeToMatchModel(sae, model, {
      noiseLevel: 0,
      featureOrdering: Array.from({ length: tree.nFeatures }, (_, i) => i),
    });
    return { model, tree, sae };
  });
}

/**
 * Builds one run (see {@link pageSetups}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pageSetup } from "./page_model.ts";
 * const { sae } = pageSetup({ childProbs: [0.15, 0.15, 0.15], beta: Infinity, steps: 1, seed: 0 });
 * assert.equal(sae.config.useDeltaLoss, true);
 * ```
 */
export function pageSetup(run: PageRun): PageSetup {
  return pageSetups([run])[0]!;
}

/**
 * An SAE's reading: its cosine tables and the parent latent's verdict.
 *
 * @example
 * ```ts
 * import { type PageReading, pageSetup, readParams } from "./page_model.ts";
 * const { model, sae } = pageSetup({ childProbs: [0.15, 0.15, 0.15], beta: 0, steps: 1, seed: 0 });
 * const reading: PageReading = readParams(sae.params, sae.layout, model);
 * console.log(reading.verdict);
 * ```
 */
export interface PageReading {
  /** Encoder cosine similarities with the true features, `[latent][feature]`. */
  encoder: number[][];
  /** Decoder cosine similarities, `[latent][feature]`. */
  decoder: number[][];
  /** The parent latent's regime and child components (encoder). */
  latent0: Latent0Reading;
  /** `parent latent: encoder hedges (+0.19; children …)`. */
  verdict: string;
}

/**
 * Reads parameters (a snapshot during training, or the result).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pageSetup, readParams } from "./page_model.ts";
 * const { model, sae } = pageSetup({ childProbs: [0.15, 0.15, 0.15], beta: 0.25, steps: 1, seed: 0 });
 * const reading = readParams(sae.params, sae.layout, model);
 * assert.equal(reading.latent0.regime, "balanced"); // initialised on the true features
 * ```
 */
export function readParams(
  params: Float32Array,
  layout: ParamLayout,
  model: { embedding: Float32Array; nFeatures: number },
): PageReading {
  const encoder = encoderCosSims(params, layout, model.embedding, model.nFeatures);
  const decoder = decoderCosSims(params, layout, model.embedding, model.nFeatures);
  const latent0 = readLatent0(encoder);
  return { encoder, decoder, latent0, verdict: describeLatent0(latent0, "encoder") };
}
