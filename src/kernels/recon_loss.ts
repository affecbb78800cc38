/**
 * Wrapper of `shaders/recon_loss.wgsl`: every term's reconstruction loss (MSE or L2) into the loss
 * record with the total, the gradient w.r.t. each partial reconstruction (in place over the
 * stacked decode), and the `b_dec` gradient.
 */
import type { Gpu } from "../gpu/device.ts";
import { LOSS_WORDS, MODEL_INFO_WORDS } from "../sae/model_table.ts";
import reconLossWgsl from "../../shaders/recon_loss.wgsl" with { type: "text" };
import type { KernelOp } from "./kernel_op.ts";
import { createStepOp, groupsFor, stepLayout, type StepShape } from "./step_dims.ts";

const FILE = { path: "shaders/recon_loss.wgsl", code: reconLossWgsl };

/**
 * Reads the stacked decode `rg` (`[M][T·B][dIn]`, without `b_dec`) and overwrites it with
 * `∂loss/∂r_t`; writes the recon slots and the total (which adds the l1 slots already there).
 */
export function createReconLoss(
  gpu: Gpu,
  spec: {
    shape: StepShape;
    dims?: GPUBuffer;
    models: GPUBuffer;
    x: GPUBuffer;
    params: GPUBuffer;
    rg: GPUBuffer;
    losses: GPUBuffer;
  },
): Promise<KernelOp> {
  const { models: M, batch: B, dIn: D, terms: T } = spec.shape;
  const P = stepLayout(spec.shape).size;
  return createStepOp(gpu, {
    file: FILE,
    entryPoint: "recon_loss",
    shape: spec.shape,
    ...(spec.dims ? { dims: spec.dims } : {}),
    bindings: {
      1: ["models", spec.models, M * MODEL_INFO_WORDS],
      2: ["x", spec.x, M * B * D],
      3: ["params", spec.params, M * P],
      4: ["rg", spec.rg, M * T * B * D],
      5: ["losses", spec.losses, M * LOSS_WORDS],
    },
    workgroups: M,
  });
}

/**
 * `grads b_dec = Σ_rows rg − [applyBDecToInput]·W_enc·(grads b_enc)`: needs the `b_enc` gradient
 * already in `grads`.
 */
export function createBDecGrad(
  gpu: Gpu,
  spec: {
    shape: StepShape;
    dims?: GPUBuffer;
    models: GPUBuffer;
    params: GPUBuffer;
    rg: GPUBuffer;
    grads: GPUBuffer;
  },
): Promise<KernelOp> {
  const { models: M, batch: B, dIn: D, terms: T } = spec.shape;
  const P = stepLayout(spec.shape).size;
  return createStepOp(gpu, {
    file: FILE,
    entryPoint: "bdec_grad",
    shape: spec.shape,
    ...(spec.dims ? { dims: spec.dims } : {}),
    bindings: {
      1: ["models", spec.models, M * MODEL_INFO_WORDS],
      3: ["params", spec.params, M * P],
      4: ["rg", spec.rg, M * T * B * D],
      6: ["grads", spec.grads, M * P],
    },
    workgroups: groupsFor(M * D),
  });
}
