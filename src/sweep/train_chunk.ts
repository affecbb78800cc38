/**
 * Trains one chunk of sweep combinations together on the GPU and measures each SAE.
 *
 * Each combination is the notebook's SAE for its tree: `NOTEBOOK_SAE_CONFIG` with one latent per
 * true feature, prefixes `[1, nFeatures]`, initialised to match the toy model (noise 0, feature
 * order unchanged). β is the inner prefix's multiplier, `[β, 1]`; β = 0 is then the standard SAE
 * (a prefix with β = 0 contributes nothing, as `matryoshkaSteps: [4]`), and β = ∞ is the detached
 * setup (`useDeltaLoss` with multipliers 1). Seed s is both the toy model's seed (hidden dimension
 * 50) and the batches' seed, so seed 0 at β = 0.25 is `deno task balanced`'s balanced SAE.
 * Combinations whose trees have different numbers of features (different SAE shapes) are trained
 * in one call per shape.
 */
import type { Gpu } from "../gpu/device.ts";
import { type BetaForm, betaSaeConfig, SWEEP_HIDDEN_DIM } from "../sae/notebook_saes.ts";
import type { Architecture } from "../sae/config.ts";
import { initSaeToMatchModel } from "../sae/init.ts";
import { MatryoshkaSAE } from "../sae/sae.ts";
import { trainToySaes } from "../sae/train.ts";
import { orthogonalizeSeconds, ToyModel } from "../toy/toy_model.ts";
import { ProgressBar } from "../sae/progress.ts";
import type { SweepTree } from "./axes.ts";
import { type Combination, combinationKey } from "./combinations.ts";
import { measureRow, metricColumns, type SweepRow } from "./rows.ts";
import { evaluate } from "../metrics/evaluate.ts";

/** Toy models by (number of features, seed), built once per sweep. */
export class ToyModelCache {
  #models = new Map<string, ToyModel>();
  readonly #log: (line: string) => void;
  readonly #quiet: boolean;

  /**
   * @param options where to say that a long orthogonalisation starts (with its estimated time),
   *   and whether to hide its progress bar.
   */
  constructor(options: { log?: (line: string) => void; quiet?: boolean } = {}) {
    this.#log = options.log ?? (() => {});
    this.#quiet = options.quiet ?? false;
  }

  /** The toy model with `nFeatures` features in 50 dimensions for `seed`. */
  get(nFeatures: number, seed: number): ToyModel {
    const key = `${nFeatures}|${seed}`;
    let model = this.#models.get(key);
    if (!model) {
      const seconds = orthogonalizeSeconds(nFeatures, SWEEP_HIDDEN_DIM);
      let bar: ProgressBar | undefined;
      if (seconds > LONG_SETUP_SECONDS) {
        this.#log(
          `toy model: orthogonalising ${nFeatures} features in ${SWEEP_HIDDEN_DIM} dimensions ` +
            `(seed ${seed}), about ${Math.ceil(seconds)} s on a 2-core CPU`,
        );
        bar = new ProgressBar({ total: 1000, label: "orthogonalising", quiet: this.#quiet });
      }
      model = new ToyModel({
        nFeatures,
        hiddenDim: SWEEP_HIDDEN_DIM,
        seed,
        ...(bar ? { onProgress: (done: number) => bar.update(done, []) } : {}),
      });
      bar?.finish();
      this.#models.set(key, model);
    }
    return model;
  }
}

/** Set-up longer than this (seconds) is announced with its estimate and a progress bar. */
const LONG_SETUP_SECONDS = 3;

/** Training settings of a sweep. */
export interface ChunkTrainOptions {
  /** Optimiser steps. */
  steps: number;
  /** Samples per step. */
  batchSize: number;
  /** Adam learning rate. */
  lr: number;
  /** Held-out rows of each SAE's metrics. */
  evalRows: number;
  /** How β weights the inner prefixes. */
  betaForm: BetaForm;
  /** The L1 coefficient. */
  l1Coefficient: number;
  /** The SAEs' architecture and, for TopK and BatchTopK, k. */
  architecture: Architecture;
  k: number;
  /** No progress bar. */
  quiet: boolean;
  /** Label of the progress bar. */
  label: string;
}

/** What {@link trainChunk} returns. */
export interface ChunkResult {
  /** One row per combination, in the chunk's order. */
  rows: SweepRow[];
  /** Seconds spent in training (kernels' compilation included) and in evaluation. */
  seconds: { training: number; evaluation: number };
}

/** Trains the chunk's SAEs together (one trainer call per SAE shape) and measures each. */
export async function trainChunk(
  chunk: readonly Combination[],
  trees: readonly SweepTree[],
  models: ToyModelCache,
  options: ChunkTrainOptions,
  gpu?: Gpu,
): Promise<ChunkResult> {
  const rows = new Array<SweepRow>(chunk.length);
  const seconds = { training: 0, evaluation: 0 };
  // One trainer call per SAE shape: features and prefix ends (β and seed vary within a call).
  const shapeOf = (c: Combination) => {
    const t = trees[c.tree]!;
    return `${t.tree.nFeatures}:${t.prefixEnds.join(",")}`;
  };
  const shapes = [...new Set(chunk.map(shapeOf))];
  for (const shape of shapes) {
    const members = chunk.map((c, i) => ({ c, i })).filter(({ c }) => shapeOf(c) === shape);
    const nFeatures = trees[members[0]!.c.tree]!.tree.nFeatures;
    const runs = members.map(({ c }) => {
      const t = trees[c.tree]!;
      const model = models.get(nFeatures, c.seed);
      const sae = new MatryoshkaSAE(betaSaeConfig(c.beta, nFeatures, {
        prefixEnds: t.prefixEnds,
        form: options.betaForm,
        l1: options.l1Coefficient,
        architecture: options.architecture,
        k: options.k,
      }));
      initSaeToMatchModel(sae, model, {
        noiseLevel: 0,
        featureOrdering: t.latentFeatures,
      });
      return {
        sae,
        model,
        tree: t.tree,
        seed: c.seed,
        name: combinationKey(t.name, c.beta, c.seed),
      };
    });
    const ends = trees[members[0]!.c.tree]!.prefixEnds;
    const label = shapes.length > 1
      ? `${options.label} (${nFeatures} features, prefixes ${ends.join("/")})`
      : options.label;
    const training = performance.now();
    const results = await trainToySaes(runs, {
      steps: options.steps,
      batchSize: options.batchSize,
      lr: options.lr,
      quiet: options.quiet,
      label,
    }, gpu);
    const evaluating = performance.now();
    seconds.training += (evaluating - training) / 1000;
    // The synthetic-SAE metrics on held-out rows (the same rows for every SAE of a tree).
    const metrics = await evaluate(
      runs.map((r) => ({ sae: r.sae, model: r.model, tree: r.tree })),
      { rows: options.evalRows },
      gpu,
    );
    seconds.evaluation += (performance.now() - evaluating) / 1000;
    members.forEach(({ c, i }, k) => {
      const t = trees[c.tree]!;
      const run = runs[k]!;
      rows[i] = measureRow(
        { tree: t.name, childProbs: t.childProbs, beta: c.beta, seed: c.seed, round: c.round },
        run.sae,
        run.model.embedding,
        nFeatures,
        results[k]!,
        metrics[k]!.scorecard,
      );
      rows[i]!.metrics = metricColumns(metrics[k]!);
    });
  }
  return { rows, seconds };
}
