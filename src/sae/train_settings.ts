/**
 * The trainer's settings, one home each: a model's optimiser settings (Adam with global-norm
 * clipping) and their published defaults, and the learning-rate schedule a run shares. The GPU
 * paths (src/sae/engines.ts), the model table and the float64 reference all take these types.
 */
import type { ShaderFile } from "../gpu/pipelines.ts";
import lrScheduleWgsl from "../../shaders/lib/lr_schedule.wgsl" with { type: "text" };

/**
 * Optimiser settings of one model: Adam (bias-corrected, no weight decay), global-norm clip.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type OptimizerSettings, PUBLISHED_OPTIMIZER } from "./train_settings.ts";
 * import type { TrainOptions } from "./train.ts";
 * const unclipped: OptimizerSettings = { ...PUBLISHED_OPTIMIZER, clipNorm: 0 };
 * const options: TrainOptions = { ...unclipped, steps: 1000 }; // the trainer takes each field
 * assert.equal(options.clipNorm, 0);
 * assert.equal(options.beta1, 0);
 * ```
 */
export interface OptimizerSettings {
  /** Base learning rate; the run's {@link Schedule} scales it during warm-up and decay. */
  lr: number;
  /** Adam decay rate of the first-moment (mean) estimate. */
  beta1: number;
  /** Adam decay rate of the second-moment (uncentred variance) estimate. */
  beta2: number;
  /** Adam's ε, added to the root of the bias-corrected second moment. */
  eps: number;
  /** Clip gradients to this global L2 norm; 0 disables clipping. */
  clipNorm: number;
}

/**
 * The published optimiser (`train_toy_sae`): lr 3e-4, betas (0, 0.999), eps 1e-8, global-norm
 * clip 1.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PUBLISHED_OPTIMIZER } from "./train_settings.ts";
 * const faster = { ...PUBLISHED_OPTIMIZER, lr: 1e-3 };
 * assert.equal(faster.beta2, 0.999);
 * ```
 */
export const PUBLISHED_OPTIMIZER: Readonly<OptimizerSettings> = Object.freeze({
  lr: 3e-4,
  beta1: 0,
  beta2: 0.999,
  eps: 1e-8,
  clipNorm: 1,
});

/** The learning-rate schedule shared by all models of a run (the published one is constant). */
export interface Schedule {
  /** Length of the whole schedule in steps (the decay ends here). */
  totalSteps: number;
  /** Linear warm-up from lr/warmupSteps to lr over the first steps (0: none). */
  warmupSteps: number;
  /** Linear decay to `lrEndFactor`·lr over the last steps (0: none). */
  decaySteps: number;
  /** lr at the end of the decay, as a fraction of each model's lr. */
  lrEndFactor: number;
}

/**
 * The factor the schedule applies to each model's lr at 0-based step `step`: a linear warm-up
 * `(step + 1) / warmupSteps` over the first steps, times a linear decay from 1 to `lrEndFactor`
 * over the last `decaySteps` (`lrEndFactor + (1 − lrEndFactor) · (totalSteps − step) /
 * decaySteps`). The CPU twin of `schedule_lr_factor` ({@link LR_SCHEDULE_WGSL_FILE}), which both
 * training paths use.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { scheduleLrFactor } from "./train_settings.ts";
 * const schedule = { totalSteps: 100, warmupSteps: 10, decaySteps: 20, lrEndFactor: 0.1 };
 * assert.equal(scheduleLrFactor(schedule, 0), 0.1); // first warm-up step
 * assert.equal(scheduleLrFactor(schedule, 50), 1);
 * assert.equal(scheduleLrFactor(schedule, 80), 1); // the decay starts at totalSteps − decaySteps
 * ```
 */
export function scheduleLrFactor(schedule: Schedule, step: number): number {
  let f = 1;
  if (schedule.warmupSteps > 0 && step < schedule.warmupSteps) {
    f = (step + 1) / schedule.warmupSteps;
  }
  if (schedule.decaySteps > 0 && step + schedule.decaySteps >= schedule.totalSteps) {
    const left = (schedule.totalSteps - step) / schedule.decaySteps;
    f *= schedule.lrEndFactor + (1 - schedule.lrEndFactor) * left;
  }
  return f;
}

/** `shaders/lib/lr_schedule.wgsl` (`schedule_lr_factor`), included by both training paths. */
export const LR_SCHEDULE_WGSL_FILE: ShaderFile = {
  path: "shaders/lib/lr_schedule.wgsl",
  code: lrScheduleWgsl,
};
