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
import { readF32 } from "../gpu/buffers.ts";
import type { TreeFeatureGenerator } from "../toy/tree.ts";
import type { MatryoshkaSAE } from "./sae.ts";
import { LOSS_WORDS, lossL1Slot, lossReconSlot, type ModelEntry } from "./model_table.ts";
import type { Schedule } from "./fused_step.ts";
import type { DataGroup } from "./world.ts";
import { createEngine, type EngineName } from "./engines.ts";
import { ProgressBar } from "./progress.ts";
import { checkSeed } from "../toy/rng.ts";

/** Tokens per step and the token budget of the published schedule. */
export const PUBLISHED_TOKENS = 100_000_000;
export const PUBLISHED_TOKENS_PER_STEP = 4096;
/** Steps of the published schedule: `ceil(100M / 4096)` = 24,415. */
export const PUBLISHED_STEPS: number = Math.ceil(PUBLISHED_TOKENS / PUBLISHED_TOKENS_PER_STEP);

/**
 * The most optimiser steps one run may take: 2³¹ − 1. Step counters are 32-bit and evaluation
 * draws its held-out rows at steps from 2³¹, so training never reaches them.
 */
export const MAX_STEPS = 2 ** 31 - 1;

/**
 * The most samples per step: 65,536 (16× the published 4,096 tokens per step). Batches above what
 * the fused kernel fits train on the kernel set; this bound keeps the per-model buffers small.
 */
export const MAX_BATCH_SIZE = 65_536;

/** Anything with a true-feature embedding `[nFeatures][dIn]` (a {@link ToyModel}). */
export interface EmbeddingSource {
  /** `[nFeatures][dIn]`: row f is true feature f's direction. */
  readonly embedding: Float32Array;
}

/** Training options; every default is the published one. */
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
}

/** What the trainer reports every `progressEvery` steps. */
export interface ProgressUpdate {
  /** Steps done when the losses were read. */
  step: number;
  /** Steps the run will take in all. */
  totalSteps: number;
  /** Latest total loss per model. */
  losses: number[];
}

/** One SAE to train: the SAE (initialised), its data, and an optional data seed and name. */
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

/** The final loss record of one model (the last step's batch). */
export interface FinalLosses {
  /** Total loss of the last step, all terms multiplied and summed. */
  total: number;
  /** Global gradient norm of the last step, before clipping. */
  gradNorm: number;
  /** Per loss term (see `sae.lossPlan().terms`), multiplied as in the total. */
  recon: number[];
  /** Per loss term, the sparsity penalty multiplied as in the total. */
  l1: number[];
}

/** Thrown (or reported per model) when a model's loss or gradient stopped being finite. */
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

/** The outcome of one run; its `sae.params` hold the trained parameters. */
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

function positiveInt(name: string, value: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw new RangeError(
      `Invalid training option: ${name} must be an integer from 1 to ${max}, got ${value}`,
    );
  }
  return value;
}

function nonNegative(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) {
    throw new RangeError(
      `Invalid training option: ${name} must be a finite number ≥ 0, got ${value}`,
    );
  }
  return value;
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

/**
 * Trains every run together on the GPU and writes the trained parameters into each run's
 * `sae.params`. A model that diverges stops at that step and gets `error`; the others finish.
 */
export async function trainToySaes(
  runs: readonly TrainRun[],
  options: TrainOptions = {},
  gpu?: Gpu,
): Promise<TrainResult[]> {
  if (runs.length === 0) throw new RangeError("trainToySaes: no runs given");
  const steps = positiveInt("steps", options.steps ?? PUBLISHED_STEPS, MAX_STEPS);
  const batch = positiveInt("batchSize", options.batchSize ?? 128, MAX_BATCH_SIZE);
  const lr = nonNegative("lr", options.lr ?? 3e-4);
  const beta1 = nonNegative("beta1", options.beta1 ?? 0);
  const beta2 = nonNegative("beta2", options.beta2 ?? 0.999);
  const eps = nonNegative("eps", options.eps ?? 1e-8);
  const clipNorm = nonNegative("clipNorm", options.clipNorm ?? 1);
  const warmupSteps = nonNegative("warmupSteps", options.warmupSteps ?? 0);
  const decaySteps = nonNegative("decaySteps", options.decaySteps ?? 0);
  const lrEnd = nonNegative("lrEnd", options.lrEnd ?? lr / 10);
  const seed = checkSeed("training option seed", options.seed ?? 0);
  const progressEvery = positiveInt("progressEvery", options.progressEvery ?? 500);
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
  const models: ModelEntry[] = runs.map((run, i) => ({
    plan: run.sae.lossPlan(),
    applyBDecToInput: run.sae.config.applyBDecToInput,
    normalizeSaeDecoder: run.sae.config.normalizeSaeDecoder,
    optimizer: { lr, beta1, beta2, eps, clipNorm },
    dataGroup: of[i]!,
  }));
  gpu ??= await getGpu();
  const schedule: Schedule = {
    totalSteps: steps,
    warmupSteps,
    decaySteps,
    lrEndFactor: lr > 0 ? lrEnd / lr : 0,
  };
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
  const M = runs.length;
  const P = runs[0]!.sae.layout.size;
  const packed = new Float32Array(M * P);
  runs.forEach((run, m) => packed.set(run.sae.params, m * P));
  gpu.device.queue.writeBuffer(engine.params, 0, packed);

  // As many steps per submit as the engine allows (the fused path: as its loop budget allows).
  const perDispatch = Math.min(options.stepsPerDispatch ?? 256, engine.maxStepsPerEncode);
  const bar = new ProgressBar({
    total: steps,
    label: options.label ?? `training ${M} SAE${M > 1 ? "s" : ""}`,
    quiet: options.quiet ?? false,
  });
  let pendingRead: Promise<void> | undefined;
  let done = 0;
  let nextReport = Math.min(progressEvery, steps);
  while (done < steps) {
    const n = Math.min(perDispatch, steps - done, nextReport - done);
    const encoder = gpu.device.createCommandEncoder({ label: "train" });
    engine.encode(encoder, n);
    gpu.device.queue.submit([encoder.finish()]);
    done += n;
    if (done === nextReport) {
      nextReport = Math.min(nextReport + progressEvery, steps);
      // Read the losses of this point without waiting for them: the GPU keeps working.
      await pendingRead;
      const at = done;
      pendingRead = readF32(gpu, engine.losses).then((losses) => {
        const totals = Array.from({ length: M }, (_, m) => losses[m * LOSS_WORDS]!);
        bar.update(at, totals);
        options.onProgress?.({ step: at, totalSteps: steps, losses: totals });
      });
    }
  }
  await pendingRead;
  const [params, losses, state] = await Promise.all([
    readF32(gpu, engine.params),
    readF32(gpu, engine.losses),
    engine.readState(),
  ]);
  bar.finish();
  return runs.map((run, m) => {
    run.sae.params.set(params.subarray(m * P, (m + 1) * P));
    const base = m * LOSS_WORDS;
    const nTerms = models[m]!.plan.terms.length;
    const diverged = state.divergedAt[m]!;
    const result: TrainResult = {
      name: names[m]!,
      // A diverged step is not applied: the parameters are those after step `diverged − 1`.
      stepsDone: diverged !== 0 ? diverged - 1 : state.stepsDone[m]!,
      finalLosses: {
        total: losses[base]!,
        gradNorm: losses[base + 1]!,
        recon: Array.from({ length: nTerms }, (_, t) => losses[base + lossReconSlot(t)]!),
        l1: Array.from({ length: nTerms }, (_, t) => losses[base + lossL1Slot(t)]!),
      },
    };
    if (diverged !== 0) result.error = new TrainingDivergedError(names[m]!, diverged);
    return result;
  });
}

/**
 * Trains one SAE (the notebook's `train_toy_sae(sae, toy_model, feat_generator.sample)`).
 *
 * @throws {TrainingDivergedError} when the loss or gradient stops being finite.
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
