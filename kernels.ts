/// <reference types="npm:@webgpu/types@0.1.66" />
/**
 * matryoshka-gpu's second entry point: the engine and kernel plumbing under `mod.ts`, for building
 * other training loops, testing kernels or reading GPU records, and the float64 CPU reference every
 * kernel is tested against. Researchers train, evaluate and sweep with `mod.ts`; nothing here is
 * needed for that.
 *
 * - the two training paths (`fused`: whole steps per dispatch in latent space; `kernels`: the
 *   kernel set, one dispatch per operation) and what they read: the model table, the packed world;
 * - the kernel set's building blocks (matmul, ops, step shapes);
 * - the GPU samplers and the tree's flat layout;
 * - the parameter layout, the loss plan, raw safetensors and atomic folder replacement;
 * - the float64 reference of the loss, its gradient and the optimiser step.
 *
 * ```ts
 * import assert from "node:assert/strict";
 * import { lossPlan, paramLayout, referenceLossAndGrad } from "./kernels.ts";
 * import { resolveSaeConfig } from "./mod.ts";
 * const config = resolveSaeConfig({ dIn: 2, dSae: 2, matryoshkaSteps: [1, 2] });
 * const layout = paramLayout(2, 2);
 * const params = new Float64Array(layout.size).fill(0.5);
 * const { loss, grad } = referenceLossAndGrad(params, layout, lossPlan(config), true, [1, 0], 1);
 * assert.ok(Number.isFinite(loss));
 * assert.equal(grad.length, layout.size);
 * ```
 *
 * @module
 */

// The training paths behind `trainToySaes`.
export { createEngine, type Engine, type EngineOptions } from "./src/sae/engines.ts";
export {
  createFusedStep,
  type FusedBuffers,
  type FusedStep,
  type FusedStepOptions,
  LOOP_ITERATION_BUDGET,
} from "./src/sae/fused_step.ts";
export {
  createKernelStep,
  encoderFormulation,
  kernelLoopIterations,
  type KernelStep,
  type KernelStepBuffers,
  type KernelStepIntermediates,
  type KernelStepOptions,
  sharedTermRanges,
  type TermRange,
} from "./src/sae/kernel_step.ts";
export { type Schedule, scheduleLrFactor } from "./src/sae/train_settings.ts";
export {
  type ModelEntry,
  packModelTable,
  type TopKEntry,
  topkEntry,
} from "./src/sae/model_table.ts";
export {
  createTopK,
  type TopKAuxBuffers,
  type TopKModel,
  type TopKOps,
  topkStateWords,
} from "./src/kernels/topk.ts";
export { type DataGroup, packWorld } from "./src/sae/world.ts";

// The kernel set's building blocks.
export { encodeOps, type KernelOp, LOOP_LIMIT, runOps } from "./src/kernels/kernel_op.ts";
export {
  type BlockedTiles,
  blockedTiles,
  createMatmul,
  type MatmulSpec,
  type MatmulVariant,
  type MatrixOperand,
  residualBlocks,
} from "./src/kernels/matmul.ts";
export { type StepShape } from "./src/kernels/step_dims.ts";
export { ShaderCompileError } from "./src/gpu/pipelines.ts";

// Sampling on the GPU, and the tree layout the kernels read.
export {
  embedOnGpu,
  type GpuSamplerGroup,
  GpuTreeSampler,
  type GpuTreeSamplerOptions,
} from "./src/toy/gpu_sampler.ts";
export { flattenTree, type PackedTrees, packTrees } from "./src/toy/tree_flat.ts";

// Parameter blocks and loss plans.
export {
  paramLayout,
  type ParamPacking,
  paramPacking,
  type ParamViews,
  paramViews,
} from "./src/sae/layout.ts";
export { lossPlan, resolvedSteps } from "./src/sae/loss_plan.ts";

// Raw files.
export {
  decodeSafetensors,
  encodeSafetensors,
  type F32Tensor,
  type RawTensor,
  SafetensorsError,
  type SafetensorsFile,
} from "./src/io/safetensors.ts";
export { replaceDirAtomic } from "./src/io/atomic.ts";

// The float64 CPU reference: the oracle of the GPU kernels.
export { referenceLossAndGrad, type ReferenceResult } from "./src/reference/sae_reference.ts";
export {
  advanceDeadCounters,
  applySelection,
  auxActivations,
  nextThreshold,
  selectBatchTopK,
  selectTopK,
  type TopKAux,
  type TopKSelection,
} from "./src/reference/topk_reference.ts";
export {
  type AdamState,
  newAdamState,
  referenceOptimizerStep,
  referenceTrainStep,
} from "./src/reference/optimizer_reference.ts";
