/**
 * Wrapper of `shaders/optimizer.wgsl`: decoder-parallel gradient removal, the global gradient norm
 * with divergence detection, clipped bias-corrected Adam, and the end of a step (unit decoder
 * rows, step counter advance), all per model and driven by the model table.
 */
import type { Gpu } from "../gpu/device.ts";
import { LOSS_WORDS, MODEL_INFO_WORDS } from "../sae/model_table.ts";
import optimizerWgsl from "../../shaders/optimizer.wgsl" with { type: "text" };
import type { KernelOp } from "./kernel_op.ts";
import { createStepOp, groupsFor, stepLayout, type StepShape } from "./step_dims.ts";

const FILE = { path: "shaders/optimizer.wgsl", code: optimizerWgsl };

/** The optimiser's buffers, `[M][P]` floats each unless noted. */
export interface OptimizerBuffers {
  /** Sizes of the step. */
  shape: StepShape;
  /** Shared `StepDims` uniform (optional). */
  dims?: GPUBuffer;
  /** `[M]` ModelInfo (src/sae/model_table.ts). */
  models: GPUBuffer;
  /** Parameters. */
  params: GPUBuffer;
  /** Gradient (clipped in place by the Adam kernel). */
  grads: GPUBuffer;
  /** Adam first moments. */
  adamM: GPUBuffer;
  /** Adam second moments. */
  adamV: GPUBuffer;
  /** `[M][LOSS_WORDS]` loss records. */
  losses: GPUBuffer;
  /** `[M]` u32: 0 training, s > 0 diverged at step s. */
  status: GPUBuffer;
  /** `[1]` u32: steps completed. */
  counter: GPUBuffer;
}

/** {@link OptimizerBuffers} without the Adam moments, for the kernels that do not use them. */
export type OptimizerBuffersNoMoments =
  & Omit<OptimizerBuffers, "adamM" | "adamV">
  & Partial<OptimizerBuffers>;

function sizes(spec: OptimizerBuffersNoMoments) {
  const M = spec.shape.models;
  const P = stepLayout(spec.shape).size;
  return { M, P, S: spec.shape.dSae };
}

function dimsOf(spec: OptimizerBuffersNoMoments): { dims?: GPUBuffer } {
  return spec.dims ? { dims: spec.dims } : {};
}

/** For models with `normalize_decoder`: `g_Wdec[j] −= (g_Wdec[j]·W_dec[j])·W_dec[j]`. */
export function createRemoveParallel(gpu: Gpu, spec: OptimizerBuffersNoMoments): Promise<KernelOp> {
  const { M, P, S } = sizes(spec);
  return createStepOp(gpu, {
    file: FILE,
    entryPoint: "remove_parallel",
    shape: spec.shape,
    ...dimsOf(spec),
    bindings: {
      1: ["models", spec.models, M * MODEL_INFO_WORDS],
      2: ["params", spec.params, M * P],
      3: ["grads", spec.grads, M * P],
      7: ["status", spec.status, M],
    },
    workgroups: groupsFor(M * S),
  });
}

/** The loss record's grad-norm slot, and `status = step` for models whose loss or norm is not finite. */
export function createGradNorm(gpu: Gpu, spec: OptimizerBuffersNoMoments): Promise<KernelOp> {
  const { M, P } = sizes(spec);
  return createStepOp(gpu, {
    file: FILE,
    entryPoint: "grad_norm",
    shape: spec.shape,
    ...dimsOf(spec),
    bindings: {
      3: ["grads", spec.grads, M * P],
      6: ["losses", spec.losses, M * LOSS_WORDS],
      7: ["status", spec.status, M],
      8: ["counter", spec.counter, 1],
    },
    workgroups: M,
  });
}

/** Clip to the model's global norm, then one bias-corrected Adam update (models with status 0). */
export function createAdam(gpu: Gpu, spec: OptimizerBuffers): Promise<KernelOp> {
  const { M, P } = sizes(spec);
  return createStepOp(gpu, {
    file: FILE,
    entryPoint: "adam",
    shape: spec.shape,
    ...dimsOf(spec),
    bindings: {
      1: ["models", spec.models, M * MODEL_INFO_WORDS],
      2: ["params", spec.params, M * P],
      3: ["grads", spec.grads, M * P],
      4: ["adamM", spec.adamM, M * P],
      5: ["adamV", spec.adamV, M * P],
      6: ["losses", spec.losses, M * LOSS_WORDS],
      7: ["status", spec.status, M],
      8: ["counter", spec.counter, 1],
    },
    workgroups: groupsFor(M * P),
  });
}

/** Unit-norm decoder rows for models with `normalize_decoder` (status 0); counter += 1. */
export function createFinishStep(gpu: Gpu, spec: OptimizerBuffersNoMoments): Promise<KernelOp> {
  const { M, P, S } = sizes(spec);
  return createStepOp(gpu, {
    file: FILE,
    entryPoint: "finish_step",
    shape: spec.shape,
    ...dimsOf(spec),
    bindings: {
      1: ["models", spec.models, M * MODEL_INFO_WORDS],
      2: ["params", spec.params, M * P],
      7: ["status", spec.status, M],
      8: ["counter", spec.counter, 1],
    },
    workgroups: groupsFor(M * S),
  });
}
