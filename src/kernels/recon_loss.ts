/**
 * Wrapper of `shaders/recon_loss.wgsl`: every term's reconstruction loss (MSE or L2) per row, the
 * gradient w.r.t. each partial reconstruction (in place over the stacked decode), the loss record
 * from the per-row values of both losses ({@link createLossTotal}), and the `b_dec` gradient.
 */
import type { Gpu } from "../gpu/device.ts";
import { createStorage } from "../gpu/buffers.ts";
import { LOSS_WORDS, MODEL_INFO_WORDS } from "../sae/model_table.ts";
import reconLossWgsl from "../../shaders/recon_loss.wgsl" with { type: "text" };
import type { KernelOp } from "./kernel_op.ts";
import {
  BDEC_INPUT_GRAD_FILE,
  createStepOp,
  groupsFor,
  stepLayout,
  type StepShape,
  WORKGROUP_SUM_FILE,
} from "./step_dims.ts";

const FILE = { path: "shaders/recon_loss.wgsl", code: reconLossWgsl };
/** The libraries recon_loss.wgsl includes (loss_total's sum, bdec_grad's encoder term). */
const EXTRA_FILES = [WORKGROUP_SUM_FILE, BDEC_INPUT_GRAD_FILE];

/** 32-bit words of the per-row term values of `shape`: `[M][2T][B]` (recon rows, then l1). */
export function termRowsWords(shape: StepShape): number {
  return shape.models * 2 * shape.terms * shape.batch;
}

/**
 * Reads the stacked decode `rg` (`[M][T·B][dIn]`, without `b_dec`) and overwrites it with
 * `∂loss/∂r_t`; writes each row's reconstruction loss into rows `[0, T)` of `termRows`.
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
    termRows: GPUBuffer;
    /** Terms whose rows the decode's MSE epilogue finished (left alone here). */
    fusedTerms?: readonly number[];
  },
): Promise<KernelOp> {
  const { models: M, batch: B, dIn: D, terms: T } = spec.shape;
  const P = stepLayout(spec.shape).size;
  return createStepOp(gpu, {
    file: FILE,
    extraFiles: EXTRA_FILES,
    entryPoint: "recon_loss",
    constants: { FUSED_TERMS: termMask(spec.fusedTerms) },
    shape: spec.shape,
    ...(spec.dims ? { dims: spec.dims } : {}),
    bindings: {
      1: ["models", spec.models, M * MODEL_INFO_WORDS],
      2: ["x", spec.x, M * B * D],
      3: ["params", spec.params, M * P],
      4: ["rg", spec.rg, M * T * B * D],
      7: ["termRows", spec.termRows, termRowsWords(spec.shape)],
    },
    workgroups: groupsFor(M * T * B),
  });
}

/** The FUSED_TERMS bit mask of a list of term slots. */
function termMask(terms: readonly number[] = []): number {
  return terms.reduce((mask, t) => (mask | (1 << t)) >>> 0, 0);
}

/**
 * The loss record of every model from `termRows` (written by {@link createReconLoss} and
 * sparsity_forward) and, for the terms the decode's MSE epilogue finished, from their partial
 * sums `reconParts` (`[M][T][B][parts]`): recon and l1 slots (each term's multiplier times its
 * mean over rows) and the total.
 */
export async function createLossTotal(
  gpu: Gpu,
  spec: {
    shape: StepShape;
    dims?: GPUBuffer;
    models: GPUBuffer;
    termRows: GPUBuffer;
    losses: GPUBuffer;
    fused?: { terms: readonly number[]; parts: number; reconParts: GPUBuffer };
  },
): Promise<KernelOp> {
  const { models: M, batch: B, terms: T } = spec.shape;
  // Without fused terms the shader's recon_parts is unread: a buffer of the op's own stands in.
  const spare = spec.fused ? null : createStorage(gpu, "loss_total (no fused terms)", 16);
  const parts = spec.fused?.parts ?? 1;
  const op = await createStepOp(gpu, {
    file: FILE,
    extraFiles: EXTRA_FILES,
    entryPoint: "loss_total",
    constants: { FUSED_TERMS: termMask(spec.fused?.terms), RECON_PARTS: parts },
    shape: spec.shape,
    ...(spec.dims ? { dims: spec.dims } : {}),
    bindings: {
      1: ["models", spec.models, M * MODEL_INFO_WORDS],
      5: ["losses", spec.losses, M * LOSS_WORDS],
      7: ["termRows", spec.termRows, termRowsWords(spec.shape)],
      8: ["reconParts", spec.fused?.reconParts ?? spare!, spec.fused ? M * T * B * parts : 4],
    },
    workgroups: M,
  });
  return {
    ...op,
    destroy() {
      op.destroy();
      spare?.destroy();
    },
  };
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
    extraFiles: EXTRA_FILES,
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
