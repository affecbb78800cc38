/**
 * Wrapper of `shaders/prefix_recon.wgsl`: the per-term activation masks of the stacked partial
 * reconstructions (`[M][T·B]` rows) and the masked sum of the decode's activation gradient.
 */
import type { Gpu } from "../gpu/device.ts";
import { MODEL_INFO_WORDS } from "../sae/model_table.ts";
import prefixReconWgsl from "../../shaders/prefix_recon.wgsl" with { type: "text" };
import type { KernelOp } from "./kernel_op.ts";
import { createStepOp, groupsFor, type StepShape } from "./step_dims.ts";

const FILE = { path: "shaders/prefix_recon.wgsl", code: prefixReconWgsl };

/**
 * `stack[m][t][b][j] = acts[m][b][j]·[lo ≤ j < end_t]` with `lo = 0` (forward: what term t
 * decodes) or `lo = detachBelow_t` (`backward`: what term t sends gradient to); 0 for empty terms.
 */
export function createMaskActs(
  gpu: Gpu,
  spec: {
    shape: StepShape;
    dims?: GPUBuffer;
    models: GPUBuffer;
    acts: GPUBuffer;
    stack: GPUBuffer;
    backward: boolean;
  },
): Promise<KernelOp> {
  const { models: M, batch: B, dSae: S, terms: T } = spec.shape;
  return createStepOp(gpu, {
    file: FILE,
    entryPoint: "mask_acts",
    shape: spec.shape,
    ...(spec.dims ? { dims: spec.dims } : {}),
    bindings: {
      1: ["models", spec.models, M * MODEL_INFO_WORDS],
      2: ["acts", spec.acts, M * B * S],
      3: ["stack", spec.stack, M * T * B * S],
    },
    constants: { BACKWARD: spec.backward ? 1 : 0 },
    workgroups: groupsFor(M * T * B * S),
    label: spec.backward ? "mask_acts backward" : "mask_acts forward",
  });
}

/** `gradActs[m][b][j] += Σ_t [detachBelow_t ≤ j < end_t]·gradStack[m][t][b][j]`. */
export function createMaskSum(
  gpu: Gpu,
  spec: {
    shape: StepShape;
    dims?: GPUBuffer;
    models: GPUBuffer;
    gradStack: GPUBuffer;
    gradActs: GPUBuffer;
  },
): Promise<KernelOp> {
  const { models: M, batch: B, dSae: S, terms: T } = spec.shape;
  return createStepOp(gpu, {
    file: FILE,
    entryPoint: "mask_sum",
    shape: spec.shape,
    ...(spec.dims ? { dims: spec.dims } : {}),
    bindings: {
      1: ["models", spec.models, M * MODEL_INFO_WORDS],
      4: ["gradStack", spec.gradStack, M * T * B * S],
      5: ["gradActs", spec.gradActs, M * B * S],
    },
    workgroups: groupsFor(M * B * S),
  });
}
