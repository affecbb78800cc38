/**
 * The `StepDims` uniform shared by the model-aware kernels (sparsity, prefix_recon, recon_loss,
 * optimizer): sizes of one training step and the parameter layout of one model, declared once in
 * `shaders/lib/step_dims.wgsl`; keep its field order in sync with {@link stepDimsWords}.
 * Also the common builder of those kernels' ops ({@link createStepOp}).
 */
import type { Gpu } from "../gpu/device.ts";
import { uploadUniform } from "../gpu/buffers.ts";
import { bindGroup, getPipeline, type ShaderFile } from "../gpu/pipelines.ts";
import { MAX_TERMS } from "../sae/model_table.ts";
import { type ParamLayout, paramLayout } from "../sae/layout.ts";
import modelTableWgsl from "../../shaders/lib/model_table.wgsl" with { type: "text" };
import stepDimsWgsl from "../../shaders/lib/step_dims.wgsl" with { type: "text" };
import { type KernelOp, kernelOp, requirePositive, requireWords, WORKGROUP } from "./kernel_op.ts";

/** `shaders/lib/model_table.wgsl`, included before every model-aware kernel. */
export const MODEL_TABLE_FILE: ShaderFile = {
  path: "shaders/lib/model_table.wgsl",
  code: modelTableWgsl,
};

/** `shaders/lib/step_dims.wgsl`, included before every model-aware kernel. */
export const STEP_DIMS_FILE: ShaderFile = {
  path: "shaders/lib/step_dims.wgsl",
  code: stepDimsWgsl,
};

/** Sizes shared by the M models of one training step. */
export interface StepShape {
  /** Number of models M. */
  models: number;
  /** Rows per batch B. */
  batch: number;
  /** Input width D: dimension of the activations the SAEs reconstruct. */
  dIn: number;
  /** Latents per SAE S. */
  dSae: number;
  /** Stacked loss terms T per model (at least the largest `num_terms`; at most MAX_TERMS). */
  terms: number;
}

/** Validates `shape`, throwing a RangeError naming the field. */
export function validateStepShape(shape: StepShape): void {
  requirePositive("models", shape.models);
  requirePositive("batch", shape.batch);
  requirePositive("dIn", shape.dIn);
  requirePositive("dSae", shape.dSae);
  requirePositive("terms", shape.terms);
  if (shape.terms > MAX_TERMS) {
    throw new RangeError(
      `terms: at most ${MAX_TERMS} loss terms are supported, got ${shape.terms}`,
    );
  }
}

/** The parameter layout of one model of `shape`. */
export function stepLayout(shape: StepShape): ParamLayout {
  return paramLayout(shape.dIn, shape.dSae);
}

/**
 * `StepDims` words: models, batch, d_in, d_sae, terms, param_size, w_enc, b_enc, w_dec, b_dec.
 */
export function stepDimsWords(shape: StepShape): Uint32Array<ArrayBuffer> {
  validateStepShape(shape);
  const layout = stepLayout(shape);
  return new Uint32Array([
    shape.models,
    shape.batch,
    shape.dIn,
    shape.dSae,
    shape.terms,
    layout.size,
    layout.wEnc,
    layout.bEnc,
    layout.wDec,
    layout.bDec,
  ]);
}

/** A `StepDims` uniform buffer for `shape`. */
export function createStepDims(gpu: Gpu, shape: StepShape, label = "step dims"): GPUBuffer {
  return uploadUniform(gpu, label, stepDimsWords(shape));
}

/** One binding of a model-aware kernel: its name (for errors), buffer and required 32-bit words. */
export type StepBinding = readonly [name: string, buffer: GPUBuffer, words: number];

/** What a model-aware kernel op is built from. */
export interface StepOpSpec {
  file: ShaderFile;
  entryPoint: string;
  shape: StepShape;
  /** A shared `StepDims` uniform for `shape`; one is created when absent. */
  dims?: GPUBuffer;
  /** Buffers by binding number (binding 0 is the `StepDims` uniform). */
  bindings: Record<number, StepBinding>;
  workgroups: number;
  constants?: Record<string, number>;
  label?: string;
}

/**
 * Builds a {@link KernelOp} of a kernel that includes `shaders/lib/model_table.wgsl` and reads a
 * `StepDims` uniform at binding 0, checking every buffer's size first.
 */
export async function createStepOp(gpu: Gpu, spec: StepOpSpec): Promise<KernelOp> {
  validateStepShape(spec.shape);
  for (const [name, buffer, words] of Object.values(spec.bindings)) {
    requireWords(name, buffer, words);
  }
  const label = spec.label ?? spec.entryPoint;
  const constants = { WG: WORKGROUP, ...spec.constants };
  const flags = Object.entries(spec.constants ?? {}).map(([k, v]) => `${k}=${v}`).join(" ");
  const pipeline = await getPipeline(gpu, {
    label: flags ? `${spec.entryPoint} ${flags}` : spec.entryPoint,
    files: [MODEL_TABLE_FILE, STEP_DIMS_FILE, spec.file],
    entryPoint: spec.entryPoint,
    constants,
  });
  const dims = spec.dims ?? createStepDims(gpu, spec.shape, `${label} dims`);
  const entries: Record<number, GPUBuffer> = { 0: dims };
  for (const [binding, [, buffer]] of Object.entries(spec.bindings)) {
    entries[Number(binding)] = buffer;
  }
  const group = bindGroup(gpu, pipeline, entries, label);
  return kernelOp(gpu, label, pipeline, group, spec.workgroups, spec.dims ? [] : [dims]);
}

/** Workgroups for one invocation per item of `count` items. */
export function groupsFor(count: number): number {
  return Math.max(1, Math.ceil(count / WORKGROUP));
}
