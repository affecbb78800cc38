/**
 * Trains toy SAEs on the GPU as `hedging_paper.toy_models.train_toy_sae` does (Adam β1 0, β2 0.999,
 * eps 1e-8, lr 3e-4, global-norm clip 1.0, constant lr, a fresh batch of 128 per step, 24,415 steps),
 * many SAEs at once.
 *
 * Data flow per step (all on the GPU, many steps per dispatch, nothing read back per step):
 *   sample the batch from the tree (seed, step) → embed → encode → per-prefix decode → loss →
 *   backward → clip → Adam.
 * Models that share a tree, a toy model and a data seed share their batches (common random
 * numbers); each model's parameters and optimiser state are one block of the packed buffers.
 * Losses are read back every `progressEvery` steps without stalling the GPU.
 */
import { getGpu, type Gpu } from "../gpu/device.ts";
import { readF32, readU32 } from "../gpu/buffers.ts";
import type { TreeFeatureGenerator } from "../toy/tree.ts";
import type { MatryoshkaSAE, TopKState } from "./sae.ts";
import { initBDec } from "./init.ts";
import { embedCpu, sampleBatchCpu } from "../toy/cpu_sampler.ts";
import { LOSS_RECORD, type ModelEntry, topkEntry } from "./model_table.ts";
import { topkStateWords } from "../kernels/topk.ts";
import { readField } from "../gpu/records.ts";
import { type OptimizerSettings, PUBLISHED_OPTIMIZER, type Schedule } from "./train_settings.ts";
import type { DataGroup } from "./world.ts";
import { createEngine, type EngineName } from "./engines.ts";
import { ProgressBar } from "./progress.ts";
import { checkSeed } from "../toy/rng.ts";
import { checkInteger, checkNonNegative } from "../check_value.ts";

/** Tokens per step and the token budget of the published schedule. */
export const PUBLISHED_TOKENS = 100_000_000;
export const PUBLISHED_TOKENS_PER_STEP = 4096;
/**
 * Steps of the published schedule: `ceil(100M / 4096)` = 24,415.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PUBLISHED_STEPS } from "./train.ts";
 * assert.equal(PUBLISHED_STEPS, 24_415); // the default of TrainOptions.steps
 * assert.equal(PUBLISHED_STEPS * 4096 >= 100_000_000, true);
 * ```
 */
export const PUBLISHED_STEPS: number = Math.ceil(PUBLISHED_TOKENS / PUBLISHED_TOKENS_PER_STEP);

/**
 * The most optimiser steps one run may take: 2³¹ − 1. Step counters are 32-bit and evaluation
 * draws its held-out rows at steps from 2³¹, so training never reaches them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAX_STEPS, trainToySae } from "./train.ts";
 * import { MatryoshkaSAE } from "./sae.ts";
 * import { ToyModel } from "../toy/toy_model.ts";
 * import { notebookTree } from "../toy/notebook_trees.ts";
 * const sae = new MatryoshkaSAE({ dIn: 8, dSae: 4 });
 * const model = new ToyModel({ nFeatures: 4, hiddenDim: 8 });
 * const tooLong = trainToySae(sae, model, notebookTree(), { steps: MAX_STEPS + 1 });
 * await assert.rejects(tooLong, { name: "RangeError", message: /steps: expected an integer/ });
 * ```
 */
export const MAX_STEPS = 2 ** 31 - 1;

/**
 * The most samples per step: 65,536 (16× the published 4,096 tokens per step). Batches above what
 * the fused kernel fits train on the kernel set; this bound keeps the per-model buffers small.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAX_BATCH_SIZE, trainToySae } from "./train.ts";
 * import { MatryoshkaSAE } from "./sae.ts";
 * import { ToyModel } from "../toy/toy_model.ts";
 * import { notebookTree } from "../toy/notebook_trees.ts";
 * const sae = new MatryoshkaSAE({ dIn: 8, dSae: 4 });
 * const model = new ToyModel({ nFeatures: 4, hiddenDim: 8 });
 * const tooWide = trainToySae(sae, model, notebookTree(), { batchSize: MAX_BATCH_SIZE + 1 });
 * await assert.rejects(tooWide, { name: "RangeError", message: /batchSize: expected an integer/ });
 * ```
 */
export const MAX_BATCH_SIZE = 65_536;

/**
 * Anything with a true-feature embedding `[nFeatures][dIn]` (a {@link ToyModel}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type EmbeddingSource, trainToySae } from "./train.ts";
 * import { MatryoshkaSAE } from "./sae.ts";
 * import { notebookTree } from "../toy/notebook_trees.ts";
 * const embedding = new Float32Array(4 * 8).map((_, i) => i % 9 === 0 ? 1 : 0); // f along axis f
 * const axes: EmbeddingSource = { embedding };
 * const sae = new MatryoshkaSAE({ dIn: 8, dSae: 4 });
 * const options = { steps: 5, quiet: true, engine: "kernels" } as const;
 * assert.equal((await trainToySae(sae, axes, notebookTree(), options)).stepsDone, 5);
 * ```
 */
export interface EmbeddingSource {
  /** `[nFeatures][dIn]`: row f is true feature f's direction. */
  readonly embedding: Float32Array;
}

/**
 * Training options; every default is the published one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type TrainOptions, trainToySae } from "./train.ts";
 * import { MatryoshkaSAE } from "./sae.ts";
 * import { ToyModel } from "../toy/toy_model.ts";
 * import { notebookTree } from "../toy/notebook_trees.ts";
 * const model = new ToyModel({ nFeatures: 4, hiddenDim: 8 });
 * const options: TrainOptions = { steps: 5, batchSize: 64, lr: 1e-3, seed: 9, quiet: true };
 * const sae = new MatryoshkaSAE({ dIn: 8, dSae: 4 });
 * const result = await trainToySae(sae, model, notebookTree(), { ...options, engine: "kernels" });
 * assert.equal(result.stepsDone, 5);
 * ```
 */
export interface TrainOptions {
  /** Optimiser steps (default 24,415). */
  steps?: number;
  /** Samples per step (default 128). */
  batchSize?: number;
  /** Adam learning rate (default 3e-4). */
  lr?: number;
  /** Adam β1 (default 0). */
  beta1?: number;
  /** Adam β2 (default 0.999). */
  beta2?: number;
  /** Adam ε (default 1e-8). */
  eps?: number;
  /** Global gradient-norm clip (default 1; 0 disables). */
  clipNorm?: number;
  /** Linear warm-up steps (default 0). */
  warmupSteps?: number;
  /** Linear decay over the last steps (default 0). */
  decaySteps?: number;
  /** Learning rate at the end of the decay (default lr / 10). */
  lrEnd?: number;
  /** Seed of the batches (default 0). Runs may override it. */
  seed?: number;
  /** `fused`, `kernels` or `auto` (default: `fused` when the shape fits it). */
  engine?: EngineName;
  /** Threads per model in the fused kernel (default: by adapter, see `defaultWorkgroupSize`). */
  workgroupSize?: number;
  /** Fused kernel: accumulate row statistics per thread (default: when they fit). */
  privateStats?: boolean;
  /** Steps per dispatch (default: chosen from the run's size). */
  stepsPerDispatch?: number;
  /** Read losses back and report progress every this many steps (default 500). */
  progressEvery?: number;
  /** No progress bar. */
  quiet?: boolean;
  /** Label of the progress bar. */
  label?: string;
  /** Called with the latest loss records as they are read back. */
  onProgress?: (update: ProgressUpdate) => void;
  /**
   * Also read every model's parameters back at each progress point, into
   * {@link ProgressUpdate.params} (for live figures; default false).
   */
  progressParams?: boolean;
  /**
   * Called once the training path is built, its kernels compiled, with which path and how long
   * that took (drivers cache compiled shaders: later runs of the same shape take less).
   */
  onCompiled?: (compiled: { engine: "fused" | "kernels"; seconds: number }) => void;
}

/**
 * What the trainer reports every `progressEvery` steps.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type ProgressUpdate, trainToySae } from "./train.ts";
 * import { MatryoshkaSAE } from "./sae.ts";
 * import { ToyModel } from "../toy/toy_model.ts";
 * import { notebookTree } from "../toy/notebook_trees.ts";
 * const updates: ProgressUpdate[] = [];
 * const sae = new MatryoshkaSAE({ dIn: 8, dSae: 4 });
 * const model = new ToyModel({ nFeatures: 4, hiddenDim: 8 });
 * const onProgress = (update: ProgressUpdate) => updates.push(update);
 * const options = { steps: 5, progressEvery: 2, quiet: true, onProgress };
 * await trainToySae(sae, model, notebookTree(), { ...options, engine: "kernels" });
 * assert.deepEqual(updates.map((u) => [u.step, u.totalSteps, u.losses.length]), [
 *   [2, 5, 1],
 *   [4, 5, 1],
 *   [5, 5, 1],
 * ]);
 * ```
 */
export interface ProgressUpdate {
  /** Steps done when the losses were read. */
  step: number;
  /** Steps the run will take in all. */
  totalSteps: number;
  /** Latest total loss per model. */
  losses: number[];
  /**
   * Each model's parameters after `step` steps (a copy, in `sae.layout`), when
   * {@link TrainOptions.progressParams} is set.
   */
  params?: Float32Array[];
}

/**
 * One SAE to train: the SAE (initialised), its data, and an optional data seed and name.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type TrainRun, trainToySaes } from "./train.ts";
 * import { MatryoshkaSAE } from "./sae.ts";
 * import { ToyModel } from "../toy/toy_model.ts";
 * import { notebookTree } from "../toy/notebook_trees.ts";
 * const model = new ToyModel({ nFeatures: 4, hiddenDim: 8 });
 * const tree = notebookTree();
 * const runs: TrainRun[] = ["a", "b"].map((name) => ({
 *   sae: new MatryoshkaSAE({ dIn: 8, dSae: 4 }),
 *   model,
 *   tree,
 *   seed: 7,
 *   name,
 * }));
 * const results = await trainToySaes(runs, { steps: 5, quiet: true, engine: "kernels" });
 * assert.deepEqual(results.map((r) => r.name), ["a", "b"]);
 * assert.deepEqual(runs[0]!.sae.params, runs[1]!.sae.params); // same start, same batches
 * ```
 */
export interface TrainRun {
  /** The SAE to train, already initialised; its params are overwritten with the result. */
  sae: MatryoshkaSAE;
  /** The toy model whose embedding turns feature activations into SAE inputs. */
  model: EmbeddingSource;
  /** The feature tree the batches are sampled from. */
  tree: TreeFeatureGenerator;
  /** Data seed (default: `options.seed`). Runs with equal tree, model and seed share batches. */
  seed?: number;
  /** Name in progress output and results (default `#i`, the run's index). */
  name?: string;
}

/**
 * The final loss record of one model (the last step's batch).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type FinalLosses, trainToySae } from "./train.ts";
 * import { MatryoshkaSAE } from "./sae.ts";
 * import { ToyModel } from "../toy/toy_model.ts";
 * import { notebookTree } from "../toy/notebook_trees.ts";
 * const sae = new MatryoshkaSAE({ dIn: 8, dSae: 4, matryoshkaSteps: [1, 4], skipOuterLoss: true });
 * const model = new ToyModel({ nFeatures: 4, hiddenDim: 8 });
 * const options = { steps: 5, quiet: true, engine: "kernels" } as const;
 * const losses: FinalLosses = (await trainToySae(sae, model, notebookTree(), options)).finalLosses;
 * assert.equal(losses.recon.length, 2); // one entry per term of sae.lossPlan()
 * const sum = [...losses.recon, ...losses.l1].reduce((a, b) => a + b, 0);
 * assert.ok(Math.abs(sum - losses.total) <= 1e-5 * losses.total);
 * ```
 */
export interface FinalLosses {
  /** Total loss of the last step, all terms multiplied and summed. */
  total: number;
  /** Global gradient norm of the last step, before clipping. */
  gradNorm: number;
  /** Per loss term (see `sae.lossPlan().terms`), multiplied as in the total. */
  recon: number[];
  /** Per loss term, the sparsity penalty multiplied as in the total. */
  l1: number[];
  /** The TopK family's dead-latent auxiliary loss (0 for standard SAEs), included in the total. */
  aux: number;
}

/**
 * Thrown (or reported per model) when a model's loss or gradient stopped being finite.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { TrainingDivergedError, trainToySae } from "./train.ts";
 * import { MatryoshkaSAE } from "./sae.ts";
 * import { ToyModel } from "../toy/toy_model.ts";
 * import { notebookTree } from "../toy/notebook_trees.ts";
 * const sae = new MatryoshkaSAE({ dIn: 8, dSae: 4 });
 * const model = new ToyModel({ nFeatures: 4, hiddenDim: 8 });
 * const options = { steps: 5, lr: 1e38, quiet: true, engine: "kernels" } as const; // blows up
 * await assert.rejects(
 *   trainToySae(sae, model, notebookTree(), options),
 *   (error) => error instanceof TrainingDivergedError && error.model === "#0" && error.step > 0,
 * );
 * ```
 */
export class TrainingDivergedError extends Error {
  /** Error name shown in stack traces and messages. */
  override name = "TrainingDivergedError";
  /**
   * Records which model diverged and when.
   *
   * @param model the run's name.
   * @param step the step at which the loss or gradient norm stopped being finite.
   */
  constructor(readonly model: string, readonly step: number) {
    super(
      `Model ${model} diverged at step ${step}: its loss or gradient norm is not finite; ` +
        `its training stopped there (the parameters are those before that step)`,
    );
  }

  /** Why training stopped, in words (for result files). */
  readonly reason: string = "loss or gradient norm not finite (NaN or ±∞); the parameters are " +
    "those before that step";
}

/**
 * The outcome of one run; its `sae.params` hold the trained parameters.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type TrainResult, trainToySaes } from "./train.ts";
 * import { MatryoshkaSAE } from "./sae.ts";
 * import { ToyModel } from "../toy/toy_model.ts";
 * import { notebookTree } from "../toy/notebook_trees.ts";
 * const sae = new MatryoshkaSAE({ dIn: 8, dSae: 4 });
 * const run = { sae, model: new ToyModel({ nFeatures: 4, hiddenDim: 8 }), tree: notebookTree() };
 * const options = { steps: 5, quiet: true, engine: "kernels" } as const;
 * const [result]: TrainResult[] = await trainToySaes([run], options);
 * assert.equal(result?.name, "#0");
 * assert.equal(result?.stepsDone, 5);
 * assert.equal(result?.error, undefined); // set only when the model diverged
 * ```
 */
export interface TrainResult {
  /** The run's name (its `TrainRun.name`, or `#i`). */
  name: string;
  /** Optimiser steps completed (fewer than asked when the model diverged). */
  stepsDone: number;
  /** Losses of the last completed step. */
  finalLosses: FinalLosses;
  /** Set when the model diverged; the others still finished. */
  error?: TrainingDivergedError;
}

/** The optimiser settings of the options, each defaulting to the published one. */
function optimizerOf(options: TrainOptions): OptimizerSettings {
  const fields = Object.keys(PUBLISHED_OPTIMIZER) as (keyof OptimizerSettings)[];
  return Object.fromEntries(
    fields.map((k) => [k, checkNonNegative(k, options[k] ?? PUBLISHED_OPTIMIZER[k])]),
  ) as unknown as OptimizerSettings;
}

/**
 * Training samples the `b_dec` initialisation reads at least: 4,096 (the published tokens per
 * step), i.e. the run's first ⌈4096 / batchSize⌉ batches.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { B_DEC_INIT_SAMPLES } from "./train.ts";
 * assert.equal(B_DEC_INIT_SAMPLES, 4096);
 * assert.equal(Math.ceil(B_DEC_INIT_SAMPLES / 128), 32); // batches read at the default batch size
 * ```
 */
export const B_DEC_INIT_SAMPLES: number = PUBLISHED_TOKENS_PER_STEP;

/**
 * `b_dec` of every run whose `bDecInitMethod` is `mean` or `geometric_median`, from its data
 * stream's first batches (at least {@link B_DEC_INIT_SAMPLES} samples, exactly those it trains on), as SAELens's
 * trainer sets it from its activation buffer before the first step. `zeros` leaves `b_dec` as the
 * initialisation set it. Computed once per (data group, method).
 */
function initBDecFromData(
  runs: readonly TrainRun[],
  groups: readonly DataGroup[],
  of: readonly number[],
  dIn: number,
  batch: number,
): void {
  const samples = new Map<number, Float32Array>();
  const done = new Map<string, Float32Array>();
  runs.forEach((run, i) => {
    const method = run.sae.config.bDecInitMethod;
    if (method === "zeros") return;
    const key = `${of[i]}/${method}`;
    const bDec = done.get(key);
    if (bDec) {
      run.sae.bDec.set(bDec);
      return;
    }
    let x = samples.get(of[i]!);
    if (!x) samples.set(of[i]!, x = firstSamples(groups[of[i]!]!, dIn, batch));
    initBDec(run.sae, x, method);
    done.set(key, run.sae.bDec.slice());
  });
}

/** A data stream's first training batches, at least {@link B_DEC_INIT_SAMPLES} rows in all. */
function firstSamples(group: DataGroup, dIn: number, batch: number): Float32Array {
  const { tree, embedding, seed } = group;
  const steps = Math.ceil(B_DEC_INIT_SAMPLES / batch);
  const x = new Float32Array(steps * batch * dIn);
  for (let step = 0; step < steps; step++) {
    const features = sampleBatchCpu(tree, { seed, step, batchSize: batch });
    const shape = { groups: 1, batch, nFeatures: tree.nFeatures, dIn };
    x.set(embedCpu(features, embedding, shape), step * batch * dIn);
  }
  return x;
}

/** Data groups of the runs: one per distinct (tree, toy model, seed). */
function dataGroups(
  runs: readonly TrainRun[],
  seed: number,
): { groups: DataGroup[]; of: number[] } {
  const groups: DataGroup[] = [];
  const keys: [TreeFeatureGenerator, Float32Array, number][] = [];
  const of = runs.map((run) => {
    const s = run.seed ?? seed;
    let i = keys.findIndex(([t, e, k]) => t === run.tree && e === run.model.embedding && k === s);
    if (i < 0) {
      i = keys.push([run.tree, run.model.embedding, s]) - 1;
      groups.push({ tree: run.tree, embedding: run.model.embedding, seed: s });
    }
    return i;
  });
  return { groups, of };
}

/** Every run's TopK state as the kernels hold it: `[M][1 + dSae]` u32 (θ as f32 bits). */
function packTopKStates(runs: readonly TrainRun[], dSae: number): Uint32Array<ArrayBuffer> {
  const words = topkStateWords(dSae);
  const out = new Uint32Array(runs.length * words);
  const floats = new Float32Array(out.buffer);
  runs.forEach((run, m) => {
    floats[m * words] = run.sae.topkState.threshold;
    out.set(run.sae.topkState.stepsSinceFired, m * words + 1);
  });
  return out;
}

/** Model m's TopK state from the kernels' `[M][1 + dSae]` words. */
function unpackTopKState(words: Uint32Array, m: number, dSae: number): TopKState {
  const base = m * topkStateWords(dSae);
  return {
    threshold: new Float32Array(words.buffer, words.byteOffset + base * 4, 1)[0]!,
    stepsSinceFired: words.slice(base + 1, base + 1 + dSae),
  };
}

/**
 * Trains every run together on the GPU and writes the trained parameters into each run's
 * `sae.params`. A model that diverges stops at that step and gets `error`; the others finish.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { trainToySaes } from "./train.ts";
 * import { initSaeToMatchModel } from "./init.ts";
 * import { MatryoshkaSAE } from "./sae.ts";
 * import { ToyModel } from "../toy/toy_model.ts";
 * import { notebookTree } from "../toy/notebook_trees.ts";
 * const model = new ToyModel({ nFeatures: 4, hiddenDim: 8 });
 * const config = { dIn: 8, dSae: 4, matryoshkaSteps: [1, 4] };
 * const runs = [0, 0.25].map((beta) => {
 *   const sae = new MatryoshkaSAE({ ...config, matryoshkaInnerLossMultipliers: [beta, 1] });
 *   initSaeToMatchModel(sae, model);
 *   return { sae, model, tree: notebookTree(), name: `β = ${beta}` };
 * });
 * const results = await trainToySaes(runs, { steps: 5, quiet: true, engine: "kernels" });
 * assert.deepEqual(results.map((r) => [r.name, r.stepsDone]), [["β = 0", 5], ["β = 0.25", 5]]);
 * ```
 */
export async function trainToySaes(
  runs: readonly TrainRun[],
  options: TrainOptions = {},
  gpu?: Gpu,
): Promise<TrainResult[]> {
  if (runs.length === 0) throw new RangeError("trainToySaes: no runs given");
  const steps = checkInteger("steps", options.steps ?? PUBLISHED_STEPS, 1, MAX_STEPS);
  const batch = checkInteger("batchSize", options.batchSize ?? 128, 1, MAX_BATCH_SIZE);
  const optimizer = optimizerOf(options);
  const schedule: Schedule = {
    totalSteps: steps,
    warmupSteps: checkInteger("warmupSteps", options.warmupSteps ?? 0, 0, MAX_STEPS),
    decaySteps: checkInteger("decaySteps", options.decaySteps ?? 0, 0, MAX_STEPS),
    lrEndFactor: optimizer.lr > 0
      ? checkNonNegative("lrEnd", options.lrEnd ?? optimizer.lr / 10) / optimizer.lr
      : 0,
  };
  const seed = checkSeed("training option seed", options.seed ?? 0);
  const progressEvery = checkInteger("progressEvery", options.progressEvery ?? 500, 1);
  const { dIn, dSae } = runs[0]!.sae.config;
  runs.forEach((run, i) => {
    if (run.seed !== undefined) checkSeed(`runs[${i}].seed`, run.seed);
    const c = run.sae.config;
    if (c.dIn !== dIn || c.dSae !== dSae) {
      throw new RangeError(
        `Run ${i}: all SAEs trained together need the same shape; got dIn ${c.dIn}, dSae ` +
          `${c.dSae} beside dIn ${dIn}, dSae ${dSae}`,
      );
    }
    const embedded = run.model.embedding.length / dIn;
    if (embedded !== run.tree.nFeatures) {
      throw new RangeError(
        `Run ${i}: the toy model embeds ${embedded} features but the tree reads out ` +
          `${run.tree.nFeatures}`,
      );
    }
  });
  const names = runs.map((run, i) => run.name ?? `#${i}`);
  const { groups, of } = dataGroups(runs, seed);
  const models: ModelEntry[] = runs.map((run, i) => {
    const topk = topkEntry(run.sae.config);
    return {
      plan: run.sae.lossPlan(),
      applyBDecToInput: run.sae.config.applyBDecToInput,
      normalizeSaeDecoder: run.sae.config.normalizeSaeDecoder,
      optimizer,
      dataGroup: of[i]!,
      ...(topk ? { topk } : {}),
    };
  });
  initBDecFromData(runs, groups, of, dIn, batch);
  gpu ??= await getGpu();
  const building = performance.now();
  const engine = await createEngine(gpu, options.engine ?? "auto", {
    models,
    groups,
    batch,
    dIn,
    dSae,
    schedule,
    ...(options.workgroupSize ? { workgroupSize: options.workgroupSize } : {}),
    ...(options.privateStats !== undefined ? { privateStats: options.privateStats } : {}),
  });
  try {
    options.onCompiled?.({ engine: engine.name, seconds: (performance.now() - building) / 1000 });
    const M = runs.length;
    const packing = engine.packing;
    gpu.device.queue.writeBuffer(engine.params, 0, packing.pack(runs.map((run) => run.sae.params)));
    if (engine.topkState) {
      gpu.device.queue.writeBuffer(engine.topkState, 0, packTopKStates(runs, dSae));
    }

    // Steps per encode: as many as the engine allows (the fused path: as its loop budget allows).
    const perEncode = Math.min(options.stepsPerDispatch ?? 256, engine.maxStepsPerEncode);
    const bar = new ProgressBar({
      total: steps,
      label: options.label ?? `training ${M} SAE${M > 1 ? "s" : ""}`,
      quiet: options.quiet ?? false,
    });
    let pendingRead: Promise<void> | undefined;
    let done = 0;
    while (done < steps) {
      // Every step up to the next report in one submission: a submission costs milliseconds on
      // Mesa's lavapipe (balanced 5.4 → 3.8 s there, 2026-12-04).
      const reportAt = Math.min(done + progressEvery, steps);
      const encoder = gpu.device.createCommandEncoder({ label: "train" });
      while (done < reportAt) {
        const n = Math.min(perEncode, reportAt - done);
        engine.encode(encoder, n);
        done += n;
      }
      gpu.device.queue.submit([encoder.finish()]);
      // Read the losses of this point without waiting for them: the GPU keeps working.
      await pendingRead;
      const at = done;
      // Copies are queued behind this point's steps, so both are read as of step `at`.
      const reads = [readF32(gpu, engine.losses)];
      if (options.progressParams) reads.push(readF32(gpu, engine.params));
      pendingRead = Promise.all(reads).then(([losses, params]) => {
        const totals = Array.from(
          { length: M },
          (_, m) => readField(LOSS_RECORD, losses!, m * LOSS_RECORD.words, "total"),
        );
        bar.update(at, totals);
        const update: ProgressUpdate = { step: at, totalSteps: steps, losses: totals };
        if (params) {
          update.params = runs.map((_, m) => packing.unpack(params, m));
        }
        options.onProgress?.(update);
      });
    }
    await pendingRead;
    const [params, losses, state, topkStates] = await Promise.all([
      readF32(gpu, engine.params),
      readF32(gpu, engine.losses),
      engine.readState(),
      engine.topkState ? readU32(gpu, engine.topkState) : Promise.resolve(null),
    ]);
    bar.finish();
    return runs.map((run, m) => {
      run.sae.params.set(packing.unpack(params, m));
      if (topkStates && run.sae.config.architecture !== "standard") {
        run.sae.topkState = unpackTopKState(topkStates, m, dSae);
      }
      const base = m * LOSS_RECORD.words;
      const loss = (name: "total" | "gradNorm" | "recon" | "l1" | "aux", t = 0) =>
        readField(LOSS_RECORD, losses, base, name, t);
      const nTerms = models[m]!.plan.terms.length;
      const diverged = state.divergedAt[m]!;
      const result: TrainResult = {
        name: names[m]!,
        // A diverged step is not applied: the parameters are those after step `diverged − 1`.
        stepsDone: diverged !== 0 ? diverged - 1 : state.stepsDone[m]!,
        finalLosses: {
          total: loss("total"),
          gradNorm: loss("gradNorm"),
          recon: Array.from({ length: nTerms }, (_, t) => loss("recon", t)),
          l1: Array.from({ length: nTerms }, (_, t) => loss("l1", t)),
          aux: loss("aux"),
        },
      };
      if (diverged !== 0) result.error = new TrainingDivergedError(names[m]!, diverged);
      return result;
    });
  } finally {
    // Resources end with the run, whether it finished or threw.
    engine.destroy();
  }
}

/**
 * Trains one SAE (the notebook's `train_toy_sae(sae, toy_model, feat_generator.sample)`).
 *
 * @throws {TrainingDivergedError} when the loss or gradient stops being finite.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { trainToySae } from "./train.ts";
 * import { initSaeRandom } from "./init.ts";
 * import { MatryoshkaSAE } from "./sae.ts";
 * import { ToyModel } from "../toy/toy_model.ts";
 * import { notebookTree } from "../toy/notebook_trees.ts";
 * const model = new ToyModel({ nFeatures: 4, hiddenDim: 8 });
 * const sae = new MatryoshkaSAE({ dIn: 8, dSae: 4 });
 * initSaeRandom(sae, 1);
 * const before = sae.params.slice();
 * const options = { steps: 5, quiet: true, engine: "kernels" } as const;
 * const result = await trainToySae(sae, model, notebookTree(), options);
 * assert.equal(result.stepsDone, 5);
 * assert.notDeepEqual(sae.params, before); // trained in place
 * ```
 */
export async function trainToySae(
  sae: MatryoshkaSAE,
  model: EmbeddingSource,
  tree: TreeFeatureGenerator,
  options: TrainOptions = {},
): Promise<TrainResult> {
  const [result] = await trainToySaes([{ sae, model, tree }], options);
  if (result!.error) throw result!.error;
  return result!;
}
