/**
 * The fused training path: `shaders/train_fused.wgsl` runs many complete training steps (sample,
 * embed, encode, per-term decode and loss, backward, clip, Adam) of every model in one dispatch,
 * one workgroup per model, for SAEs small enough (dSae ≤ 64) that a batch row's latents fit in a
 * thread's registers. Models are split into chunks whose scratch fits one storage binding.
 */
import type { Gpu } from "../gpu/device.ts";
import { createStorage, uploadStorage, uploadUniform } from "../gpu/buffers.ts";
import { bindGroup, dispatch, getPipeline, type ShaderFile } from "../gpu/pipelines.ts";
import { paramLayout } from "./layout.ts";
import { LOSS_WORDS, MAX_TERMS, type ModelEntry, packModelTable } from "./model_table.ts";
import prngSrc from "../../shaders/lib/prng.wgsl" with { type: "text" };
import treeSampleSrc from "../../shaders/lib/tree_sample.wgsl" with { type: "text" };
import modelTableSrc from "../../shaders/lib/model_table.wgsl" with { type: "text" };
import fusedSrc from "../../shaders/train_fused.wgsl" with { type: "text" };

/** The WGSL files of the fused kernel, in include order. */
export const FUSED_FILES: readonly ShaderFile[] = [
  { path: "shaders/lib/prng.wgsl", code: prngSrc },
  { path: "shaders/lib/tree_sample.wgsl", code: treeSampleSrc },
  { path: "shaders/lib/model_table.wgsl", code: modelTableSrc },
  { path: "shaders/train_fused.wgsl", code: fusedSrc },
];

/** Latents per SAE the fused kernel supports (its per-thread arrays). */
export const FUSED_MAX_LATENTS = 64;

/** The learning-rate schedule shared by all models of a run. */
export interface Schedule {
  totalSteps: number;
  /** Linear warm-up from lr/warmupSteps to lr over the first steps (0: none). */
  warmupSteps: number;
  /** Linear decay to `lrEndFactor`·lr over the last steps (0: none). */
  decaySteps: number;
  lrEndFactor: number;
}

/** Shapes and contents of a fused run. */
export interface FusedStepOptions {
  models: readonly ModelEntry[];
  batch: number;
  dIn: number;
  dSae: number;
  /** Packed data groups, trees and embeddings (src/sae/world.ts). */
  world: Uint32Array<ArrayBuffer>;
  schedule: Schedule;
  /** Threads per workgroup (default: min(batch, 128) rounded up to a multiple of 8). */
  workgroupSize?: number;
  /** Cap on models per dispatch (default: what one scratch binding holds). */
  maxModelsPerDispatch?: number;
}

/** GPU buffers of a fused run. */
export interface FusedBuffers {
  /** [M][P] parameters (src/sae/layout.ts). */
  params: GPUBuffer;
  /** [M][3][P]: gradient, Adam first and second moments. */
  opt: GPUBuffer;
  /** [M][LOSS_WORDS] latest loss records. */
  losses: GPUBuffer;
  /** [M][2] u32: steps done, divergence status (0, or the 1-based step that diverged). */
  state: GPUBuffer;
}

/** A compiled fused run: encode `n` training steps of all models into a command encoder. */
export interface FusedStep {
  buffers: FusedBuffers;
  modelsPerDispatch: number;
  encodeSteps(encoder: GPUCommandEncoder, steps: number): void;
}

/** Why the fused kernel cannot train this shape, or null when it can. */
export function fusedUnsupportedReason(dSae: number, models: readonly ModelEntry[]): string | null {
  if (dSae > FUSED_MAX_LATENTS) return `dSae ${dSae} > ${FUSED_MAX_LATENTS}`;
  const terms = Math.max(...models.map((m) => m.plan.terms.length));
  if (terms > MAX_TERMS) return `${terms} loss terms > ${MAX_TERMS}`;
  return null;
}

/** Floats of per-model scratch (mirrors `scratch_size()` in the shader). */
export function fusedScratchFloats(batch: number, dIn: number, dSae: number, tMax: number): number {
  return (dIn + 3 * dSae + tMax * dIn + 2 * tMax) * batch;
}

/** Builds the buffers and pipeline of a fused run (parameters start at zero: upload them). */
export async function createFusedStep(gpu: Gpu, options: FusedStepOptions): Promise<FusedStep> {
  const { models, batch, dIn, dSae, schedule } = options;
  const reason = fusedUnsupportedReason(dSae, models);
  if (reason) throw new RangeError(`The fused kernel cannot train this run: ${reason}`);
  const M = models.length;
  const layout = paramLayout(dIn, dSae);
  const tMax = Math.max(1, ...models.map((m) => m.plan.terms.length));
  const wg = options.workgroupSize ?? Math.min(128, Math.ceil(Math.min(batch, 128) / 8) * 8);
  const scratchPerModel = fusedScratchFloats(batch, dIn, dSae, tMax) * 4;
  const fit = Math.floor(gpu.device.limits.maxStorageBufferBindingSize / scratchPerModel);
  const perDispatch = Math.max(1, Math.min(M, fit, options.maxModelsPerDispatch ?? M));

  const buffers: FusedBuffers = {
    params: createStorage(gpu, "params", M * layout.size * 4),
    opt: createStorage(gpu, "gradient and Adam moments", M * 3 * layout.size * 4),
    losses: createStorage(gpu, "losses", M * LOSS_WORDS * 4),
    state: createStorage(gpu, "training state", M * 2 * 4),
  };
  const modelTable = uploadStorage(gpu, "model table", packModelTable(models));
  const world = uploadStorage(gpu, "data groups, trees and embeddings", options.world);
  const scratch = createStorage(gpu, "fused scratch", perDispatch * scratchPerModel);
  const pipeline = await getPipeline(gpu, {
    label: "train_fused",
    files: FUSED_FILES,
    entryPoint: "train",
    constants: { WG: wg, BATCH: batch, D_IN: dIn, D_SAE: dSae, T_MAX: tMax },
  });

  // One uniform per (chunk, steps-per-dispatch), made on first use and kept.
  const chunks: { first: number; count: number; groups: Map<number, GPUBindGroup> }[] = [];
  for (let first = 0; first < M; first += perDispatch) {
    chunks.push({ first, count: Math.min(perDispatch, M - first), groups: new Map() });
  }
  const groupFor = (chunk: (typeof chunks)[number], steps: number): GPUBindGroup => {
    let group = chunk.groups.get(steps);
    if (!group) {
      const run = new Uint32Array(8);
      run.set([
        chunk.first,
        chunk.count,
        steps,
        schedule.totalSteps,
        schedule.warmupSteps,
        schedule.decaySteps,
      ]);
      new Float32Array(run.buffer)[6] = schedule.lrEndFactor;
      const uniform = uploadUniform(gpu, `fused run ${chunk.first}+${steps}`, run);
      group = bindGroup(gpu, pipeline, [
        buffers.params,
        buffers.opt,
        modelTable,
        world,
        buffers.losses,
        buffers.state,
        scratch,
        uniform,
      ]);
      chunk.groups.set(steps, group);
    }
    return group;
  };

  return {
    buffers,
    modelsPerDispatch: perDispatch,
    encodeSteps(encoder, steps) {
      const pass = encoder.beginComputePass({ label: `train_fused x${steps}` });
      for (const chunk of chunks) {
        dispatch(gpu, pass, pipeline, groupFor(chunk, steps), chunk.count);
      }
      pass.end();
    },
  };
}
