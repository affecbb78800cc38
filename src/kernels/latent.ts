/**
 * Wrapper of `shaders/latent.wgsl`: the per-model vectors of the latent-input encoder (x = f·E,
 * so x·W_enc = f·(E·W_enc)): its bias `b_enc − [apply]·b_dec·W_enc` after E·W_enc, and the W_enc
 * gradient's input shift `−[apply]·b_dec ⊗ grads b_enc`.
 */
import type { Gpu } from "../gpu/device.ts";
import { MODEL_INFO_WORDS } from "../sae/model_table.ts";
import latentWgsl from "../../shaders/latent.wgsl" with { type: "text" };
import type { KernelOp } from "./kernel_op.ts";
import { createStepOp, groupsFor, stepLayout, type StepShape } from "./step_dims.ts";

const FILE = { path: "shaders/latent.wgsl", code: latentWgsl };

/** Floats per model of the latent encoder's scratch: E·W_enc `[F][S]`, then its bias `[S]`. */
export function latentEncoderWords(nFeatures: number, dSae: number): number {
  return (nFeatures + 1) * dSae;
}

/** Writes each model's latent-form encoder bias after its E·W_enc in `ew`. */
export function createLatentBias(
  gpu: Gpu,
  spec: {
    shape: StepShape;
    dims?: GPUBuffer;
    models: GPUBuffer;
    params: GPUBuffer;
    ew: GPUBuffer;
    nFeatures: number;
  },
): Promise<KernelOp> {
  const { models: M, dSae: S } = spec.shape;
  const P = stepLayout(spec.shape).size;
  return createStepOp(gpu, {
    file: FILE,
    entryPoint: "latent_bias",
    constants: { N_FEATURES: spec.nFeatures },
    shape: spec.shape,
    ...(spec.dims ? { dims: spec.dims } : {}),
    bindings: {
      1: ["models", spec.models, M * MODEL_INFO_WORDS],
      2: ["params", spec.params, M * P],
      3: ["ew", spec.ew, M * latentEncoderWords(spec.nFeatures, S)],
    },
    workgroups: groupsFor(M * S),
  });
}

/** `grads W_enc −= [apply]·b_dec ⊗ grads b_enc` (needs grads b_enc first). */
export function createLatentWEncFix(
  gpu: Gpu,
  spec: {
    shape: StepShape;
    dims?: GPUBuffer;
    models: GPUBuffer;
    params: GPUBuffer;
    grads: GPUBuffer;
  },
): Promise<KernelOp> {
  const { models: M, dIn: D } = spec.shape;
  const P = stepLayout(spec.shape).size;
  return createStepOp(gpu, {
    file: FILE,
    entryPoint: "latent_wenc_fix",
    shape: spec.shape,
    ...(spec.dims ? { dims: spec.dims } : {}),
    bindings: {
      1: ["models", spec.models, M * MODEL_INFO_WORDS],
      2: ["params", spec.params, M * P],
      4: ["grads", spec.grads, M * P],
    },
    workgroups: groupsFor(M * D),
  });
}
