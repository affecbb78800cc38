/**
 * The two ways the trainer can run training steps on the GPU, behind one small interface:
 *
 * - `fused` (src/sae/fused_step.ts): one workgroup per model runs many whole steps per dispatch
 *   in latent space; for SAEs whose Gram quantities fit (the notebook's scale). `auto` picks it
 *   whenever it fits: measured faster wherever both run (d_in 256, d_sae 8, 8 features, batch
 *   128, M = 16: 1,850 against 1,070 SAE-steps/s; d_in 768, batch 512: 500 against 114).
 * - `kernels` (src/sae/kernel_step.ts): the kernel set, about 20 dispatches per step, for any
 *   shape; the data groups' batches come from the GPU tree sampler (src/toy/gpu_sampler.ts) and
 *   are copied to each model's input slot: the rows' feature values when the latent encoder or
 *   decoder pays (`kernelFormulations`), their embedding x = f·E unless both do.
 *
 * Both keep losses and state on the GPU and encode many steps per submit.
 */
import type { Gpu } from "../gpu/device.ts";
import { readU32 } from "../gpu/buffers.ts";
import { GpuTreeSampler } from "../toy/gpu_sampler.ts";
import type { TreeFeatureGenerator } from "../toy/tree.ts";
import { decodeFusedState } from "./fused_records.ts";
import { createFusedStep, FusedShapeError, fusedUnsupportedReason } from "./fused_step.ts";
import { createKernelStep, kernelFormulations } from "./kernel_step.ts";
import { paramLayout, type ParamPacking, paramPacking } from "./layout.ts";
import type { ModelEntry } from "./model_table.ts";
import type { Schedule } from "./train_settings.ts";
import { type DataGroup, packWorld } from "./world.ts";

/**
 * Which training path to use: `auto` picks `fused` when the shape fits it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { EngineName } from "./engines.ts";
 * import { trainToySae } from "./train.ts";
 * import { MatryoshkaSAE } from "./sae.ts";
 * import { ToyModel } from "../toy/toy_model.ts";
 * import { notebookTree } from "../toy/notebook_trees.ts";
 * const engine: EngineName = "kernels"; // the kernel set: any shape
 * const sae = new MatryoshkaSAE({ dIn: 8, dSae: 4 });
 * const model = new ToyModel({ nFeatures: 4, hiddenDim: 8 });
 * const result = await trainToySae(sae, model, notebookTree(), { steps: 5, quiet: true, engine });
 * assert.equal(result.stepsDone, 5);
 * ```
 */
export type EngineName = "auto" | "fused" | "kernels";

/** A running training path. */
export interface Engine {
  /** Which training path this is (`auto` already resolved). */
  name: "fused" | "kernels";
  /** `[M][stride]` parameters, held as `packing` says. */
  params: GPUBuffer;
  /** How `params` holds each model's parameters (stride, W_dec's orientation). */
  packing: ParamPacking;
  /** `[M][LOSS_WORDS]` latest loss records. */
  losses: GPUBuffer;
  /** `[M][1 + dSae]` TopK-family state (src/kernels/topk.ts), when a model has one. */
  topkState?: GPUBuffer;
  /** The most steps one `encode` call may record. */
  maxStepsPerEncode: number;
  /** Records `steps` training steps of every model. */
  encode(encoder: GPUCommandEncoder, steps: number): void;
  /** Steps each model completed and, per model, the 1-based step it diverged at (0: none). */
  readState(): Promise<{ stepsDone: number[]; divergedAt: number[] }>;
  /** Frees every GPU buffer of the engine (its step, sampler and uniforms); call it once. */
  destroy(): void;
}

/** What both paths need to know about a run. */
export interface EngineOptions {
  /** One entry per SAE trained together (loss plan, optimiser, data group). */
  models: readonly ModelEntry[];
  /** The data streams the models train on (tree, embedding, seed). */
  groups: readonly DataGroup[];
  /** Samples per step. */
  batch: number;
  /** Input width of every SAE. */
  dIn: number;
  /** Latents per SAE. */
  dSae: number;
  /** The learning-rate schedule shared by all models. */
  schedule: Schedule;
  /** Fused path: threads per model (default: by adapter). */
  workgroupSize?: number;
  /** Fused path: accumulate row statistics per thread (default: when they fit). */
  privateStats?: boolean;
}

/** Depth of the deepest read-out feature (the root has depth 0). */
function treeDepth(tree: TreeFeatureGenerator): number {
  return Math.max(0, ...tree.features.map((f) => tree.ancestry(f).length - 1));
}

/** Why `fused` cannot run these options, or null. */
export function fusedReason(options: EngineOptions): string | null {
  const maxFeatures = Math.max(...options.groups.map((g) => g.tree.nFeatures));
  return fusedUnsupportedReason(options.dSae, maxFeatures, options.models);
}

/**
 * Builds the engine `name` (resolving `auto`). A WebGPU validation error while building (a bind
 * group that does not match its pipeline, say) throws here: left alone, it would make every
 * later command buffer invalid and training would silently do nothing.
 */
export async function createEngine(
  gpu: Gpu,
  name: EngineName,
  options: EngineOptions,
): Promise<Engine> {
  gpu.device.pushErrorScope("validation");
  let engine: Engine | undefined;
  try {
    engine = await buildEngine(gpu, name, options);
  } finally {
    const error = await gpu.device.popErrorScope();
    if (error) {
      engine?.destroy();
      // deno-lint-ignore no-unsafe-finally -- the validation error is the one to report
      throw new Error(`building the ${name} training engine failed validation: ${error.message}`);
    }
  }
  return engine;
}

async function buildEngine(
  gpu: Gpu,
  name: EngineName,
  options: EngineOptions,
): Promise<Engine> {
  const reason = fusedReason(options);
  if (name === "fused" && reason) {
    throw new RangeError(
      `engine "fused" cannot train this run: ${reason}; use "kernels" or "auto"`,
    );
  }
  if (name === "kernels" || (name === "auto" && reason)) return await kernelEngine(gpu, options);
  if (name === "fused") return await fusedEngine(gpu, options);
  try {
    return await fusedEngine(gpu, options);
  } catch (error) {
    // A batch or tree beyond the fused kernel's loop budget: the kernel set trains it.
    if (error instanceof FusedShapeError) return await kernelEngine(gpu, options);
    throw error;
  }
}

async function fusedEngine(gpu: Gpu, options: EngineOptions): Promise<Engine> {
  const { models, groups, batch, dIn, dSae, schedule } = options;
  const M = models.length;
  const fused = await createFusedStep(gpu, {
    models,
    batch,
    dIn,
    dSae,
    world: packWorld(groups, dIn),
    trees: {
      groups: groups.length,
      maxFeatures: Math.max(...groups.map((g) => g.tree.nFeatures)),
      maxDepth: Math.max(...groups.map((g) => treeDepth(g.tree))),
      fixedMagnitudes: groups.every((g) => g.tree.features.every((f) => f.magnitudeStd === 0)),
    },
    schedule,
    ...(options.workgroupSize ? { workgroupSize: options.workgroupSize } : {}),
    ...(options.privateStats !== undefined ? { privateStats: options.privateStats } : {}),
  });
  try {
    await fused.compile();
  } catch (error) {
    fused.destroy();
    throw error;
  }
  return {
    name: "fused",
    params: fused.buffers.params,
    packing: fused.packing,
    losses: fused.buffers.losses,
    maxStepsPerEncode: fused.maxStepsPerDispatch,
    encode: (encoder, steps) => fused.encodeSteps(encoder, steps),
    async readState() {
      return decodeFusedState(await readU32(gpu, fused.buffers.state), M);
    },
    destroy: () => fused.destroy(),
  };
}

async function kernelEngine(gpu: Gpu, options: EngineOptions): Promise<Engine> {
  const { models, groups, batch, dIn, dSae, schedule } = options;
  const M = models.length;
  // The toy's structure: when a latent formulation pays (kernelFormulations), each model's input
  // slot gets its rows' feature values and the step its group's embedding.
  const nFeatures = Math.max(...groups.map((g) => g.tree.nFeatures));
  const forms = kernelFormulations({ models, batch, dIn, dSae, nFeatures });
  const latent = forms.encoder === "latent" || forms.decoder === "latent";
  // One embedding when every model trains on the same data group, else one per model.
  const shared = models.every((model) => model.dataGroup === models[0]!.dataGroup);
  const embedding = latent ? new Float32Array((shared ? 1 : M) * nFeatures * dIn) : null;
  models.forEach((model, m) => {
    if (!shared || m === 0) {
      embedding?.set(groups[model.dataGroup]!.embedding, m * nFeatures * dIn);
    }
  });
  const step = await createKernelStep(gpu, {
    models,
    batch,
    dIn,
    dSae,
    schedule,
    // The step takes the formulations decided here rather than deciding again.
    ...(embedding ? { latent: { nFeatures, embedding } } : {}),
    encoder: forms.encoder,
    decoder: forms.decoder,
  });
  let sampler: GpuTreeSampler;
  try {
    // x = f·E only where a formulation reads it.
    const x = step.buffers.x !== undefined;
    sampler = await GpuTreeSampler.create(gpu, {
      groups: groups.map((g) => ({
        tree: g.tree,
        seed: g.seed,
        ...(x ? { embedding: g.embedding } : {}),
      })),
      batchSize: batch,
      ...(x ? { dIn } : {}),
      label: "kernel-path sampler",
    });
  } catch (error) {
    step.destroy();
    throw error;
  }
  const rowBytes = batch * dIn * 4;
  const featureBytes = batch * nFeatures * 4;
  return {
    name: "kernels",
    params: step.buffers.params,
    packing: paramPacking(paramLayout(dIn, dSae)),
    losses: step.buffers.losses,
    ...(step.buffers.topkState ? { topkState: step.buffers.topkState } : {}),
    maxStepsPerEncode: 64,
    encode(encoder, steps) {
      for (let s = 0; s < steps; s++) {
        sampler.encode(encoder);
        // Each model's input slot gets its data group's batch (shared batches are copied).
        models.forEach((model, m) => {
          if (step.buffers.x) {
            encoder.copyBufferToBuffer(
              sampler.x!,
              model.dataGroup * rowBytes,
              step.buffers.x,
              m * rowBytes,
              rowBytes,
            );
          }
          if (step.buffers.features) {
            encoder.copyBufferToBuffer(
              sampler.features,
              model.dataGroup * featureBytes,
              step.buffers.features,
              m * featureBytes,
              featureBytes,
            );
          }
        });
        step.encodeStep(encoder);
      }
    },
    async readState() {
      const [status, counter] = await Promise.all([
        readU32(gpu, step.buffers.status),
        readU32(gpu, step.buffers.counter),
      ]);
      return {
        stepsDone: Array.from({ length: M }, (_, m) => status[m] ? status[m]! - 1 : counter[0]!),
        divergedAt: Array.from(status),
      };
    },
    destroy() {
      step.destroy();
      sampler.destroy();
    },
  };
}
