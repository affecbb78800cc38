/**
 * Wrapper of `shaders/sparsity.wgsl`: the decoder-norm-weighted Lp sparsity penalty of every loss
 * term (per row, summed into the loss record by loss_total), its gradient w.r.t. the activations, and w.r.t. `W_dec`
 * through the decoder row norms.
 */
import type { Gpu } from "../gpu/device.ts";
import { MODEL_INFO_WORDS } from "../sae/model_table.ts";
import sparsityWgsl from "../../shaders/sparsity.wgsl" with { type: "text" };
import type { KernelOp } from "./kernel_op.ts";
import { termRowsWords } from "./recon_loss.ts";
import { createStepOp, groupsFor, stepLayout, type StepShape } from "./step_dims.ts";

const FILE = { path: "shaders/sparsity.wgsl", code: sparsityWgsl };

/** What every sparsity kernel takes. */
export interface SparsityCommon {
  /** Sizes of the step. */
  shape: StepShape;
  /** Shared `StepDims` uniform (optional). */
  dims?: GPUBuffer;
}

/** `norms[m][j] = ‖W_dec[m][j]‖₂` (`norms`: `[M][dSae]`). */
export function createRowNorms(
  gpu: Gpu,
  spec: SparsityCommon & { params: GPUBuffer; norms: GPUBuffer },
): Promise<KernelOp> {
  const { models: M, dSae: S } = spec.shape;
  const P = stepLayout(spec.shape).size;
  return createStepOp(gpu, {
    file: FILE,
    entryPoint: "row_norms",
    shape: spec.shape,
    ...(spec.dims ? { dims: spec.dims } : {}),
    bindings: { 2: ["params", spec.params, M * P], 4: ["norms", spec.norms, M * S] },
    workgroups: groupsFor(M * S),
  });
}

/**
 * Each term's penalty into the loss record's l1 slots (0 for absent terms), `gv = ∂penalty/∂v`
 * (`[M][B][dSae]`, v = w ⊙ acts) and `gradActs = gv ⊙ w` (overwritten).
 */
export function createSparsityForward(
  gpu: Gpu,
  spec: SparsityCommon & {
    models: GPUBuffer;
    acts: GPUBuffer;
    norms: GPUBuffer;
    gv: GPUBuffer;
    gradActs: GPUBuffer;
    /** `[M][2T][B]` per-row term values: this writes the l1 rows `[T, 2T)` (recon_loss.ts). */
    termRows: GPUBuffer;
  },
): Promise<KernelOp> {
  const { models: M, batch: B, dSae: S } = spec.shape;
  return createStepOp(gpu, {
    file: FILE,
    entryPoint: "sparsity_forward",
    shape: spec.shape,
    ...(spec.dims ? { dims: spec.dims } : {}),
    bindings: {
      1: ["models", spec.models, M * MODEL_INFO_WORDS],
      3: ["acts", spec.acts, M * B * S],
      4: ["norms", spec.norms, M * S],
      5: ["gv", spec.gv, M * B * S],
      6: ["gradActs", spec.gradActs, M * B * S],
      7: ["termRows", spec.termRows, termRowsWords(spec.shape)],
    },
    workgroups: groupsFor(M * B),
  });
}

/**
 * `grads W_dec[m][j] += (Σ_b gv_bj·acts_bj)·W_dec[m][j]/‖W_dec[m][j]‖` for models that weight the
 * penalty by decoder norms.
 */
export function createSparsityDecoderGrad(
  gpu: Gpu,
  spec: SparsityCommon & {
    models: GPUBuffer;
    params: GPUBuffer;
    acts: GPUBuffer;
    norms: GPUBuffer;
    gv: GPUBuffer;
    grads: GPUBuffer;
  },
): Promise<KernelOp> {
  const { models: M, batch: B, dSae: S } = spec.shape;
  const P = stepLayout(spec.shape).size;
  return createStepOp(gpu, {
    file: FILE,
    entryPoint: "sparsity_decoder_grad",
    shape: spec.shape,
    ...(spec.dims ? { dims: spec.dims } : {}),
    bindings: {
      1: ["models", spec.models, M * MODEL_INFO_WORDS],
      2: ["params", spec.params, M * P],
      3: ["acts", spec.acts, M * B * S],
      4: ["norms", spec.norms, M * S],
      5: ["gv", spec.gv, M * B * S],
      8: ["grads", spec.grads, M * P],
    },
    workgroups: groupsFor(M * S),
  });
}
