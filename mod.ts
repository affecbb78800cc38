/**
 * matryoshka-gpu: train toy Matryoshka sparse autoencoders with raw WebGPU and hand-written WGSL,
 * many at once, to study how hedging and absorption pull an SAE's latents away from the true
 * features, and how the per-prefix loss multiplier β balances them.
 *
 * The notebook's balanced-SAE cell, line by line:
 *
 * ```ts ignore
 * import {
 *   initSaeToMatchModel, MatryoshkaSAE, NOTEBOOK_SAE_CONFIG, notebookTree, plotSaeFeatCosSims,
 *   ToyModel, trainToySae,
 * } from "./mod.ts";
 * const toyModel = new ToyModel({ nFeatures: 4, hiddenDim: 50 });
 * const featGenerator = notebookTree([0.15, 0.15, 0.15]);
 * const sae = new MatryoshkaSAE({ ...NOTEBOOK_SAE_CONFIG, matryoshkaInnerLossMultipliers: [0.25, 1] });
 * initSaeToMatchModel(sae, toyModel, { noiseLevel: 0, featureOrdering: [0, 1, 2, 3] });
 * await trainToySae(sae, toyModel, featGenerator);
 * await plotSaeFeatCosSims(sae, toyModel, {
 *   title: "Balanced Matryoshka SAE (β = 0.25)",
 *   savePath: "plots/toy_mat_balanced.svg",
 * });
 * ```
 *
 * @module
 */

// The WebGPU runtime.
export {
  type AdapterSummary,
  describeAdapter,
  getGpu,
  type Gpu,
  GpuUnavailableError,
} from "./src/gpu/device.ts";
export { BufferLimitError } from "./src/gpu/buffers.ts";
export { ShaderCompileError } from "./src/gpu/pipelines.ts";

// The toy world: feature trees, sampling, the toy model.
export {
  InvalidTreeError,
  TreeFeatureGenerator,
  type TreeNode,
  type TreeSpec,
} from "./src/toy/tree.ts";
export {
  parseTreeJson,
  readTreeFile,
  treeFromJson,
  type TreeJson,
  TreeJsonError,
  type TreeJsonIssue,
  treeSchema,
  treeToJson,
  validateTreeJson,
} from "./src/toy/tree_json.ts";
export { flattenTree, type PackedTrees, packTrees } from "./src/toy/tree_flat.ts";
export { checkSeed, MAX_SEED, Rng } from "./src/toy/rng.ts";
export { type BatchAddress, embedCpu, sampleBatchCpu } from "./src/toy/cpu_sampler.ts";
export {
  embedOnGpu,
  type GpuSamplerGroup,
  GpuTreeSampler,
  type GpuTreeSamplerOptions,
} from "./src/toy/gpu_sampler.ts";
export {
  orthogonalize,
  type OrthogonalizeOptions,
  ToyModel,
  type ToyModelOptions,
} from "./src/toy/toy_model.ts";
export { balancedTree, notebookTree, unbalancedTree } from "./src/toy/notebook_trees.ts";

// The SAE, its loss, initialisation and training.
export {
  type BDecInitMethod,
  ConfigError,
  DEFAULT_SAE_CONFIG,
  NOTEBOOK_SAE_CONFIG,
  type ReconstructionLoss,
  resolveSaeConfig,
  type SaeConfig,
  validateSaeConfig,
} from "./src/sae/config.ts";
export { MatryoshkaSAE } from "./src/sae/sae.ts";
export { type ParamLayout, paramLayout, type ParamViews, paramViews } from "./src/sae/layout.ts";
export {
  type LossPlan,
  lossPlan,
  type LossTerm,
  type LossTermKind,
  resolvedSteps,
} from "./src/sae/loss_plan.ts";
export {
  type FeatureDirections,
  initBDec,
  initSaeRandom,
  initSaeToMatchModel,
  type MatchModelOptions,
} from "./src/sae/init.ts";
export {
  type EmbeddingSource,
  type FinalLosses,
  MAX_BATCH_SIZE,
  MAX_STEPS,
  type ProgressUpdate,
  PUBLISHED_STEPS,
  TrainingDivergedError,
  type TrainOptions,
  type TrainResult,
  type TrainRun,
  trainToySae,
  trainToySaes,
} from "./src/sae/train.ts";

// The CPU reference (float64): the oracle of the GPU kernels.
export { referenceLossAndGrad, type ReferenceResult } from "./src/reference/sae_reference.ts";
export {
  type AdamHyper,
  type AdamState,
  DEFAULT_ADAM,
  newAdamState,
  referenceOptimizerStep,
  referenceTrainStep,
} from "./src/reference/optimizer_reference.ts";

// Metrics.
export { decoderCosSims, encoderCosSims } from "./src/metrics/cosine.ts";
export { mcc, type MccResult } from "./src/metrics/matching.ts";
export { describeLatent0, type Latent0Reading, readLatent0 } from "./src/metrics/latent0.ts";
export {
  evaluate,
  type EvaluateItem,
  type EvaluateOptions,
  type SaeMetrics,
} from "./src/metrics/evaluate.ts";
export { evaluateCpu } from "./src/metrics/evaluate_cpu.ts";

// Files and figures.
export { type LoadedSae, loadSae, SaeFileError, saveSae } from "./src/io/sae_files.ts";
export {
  decodeSafetensors,
  encodeSafetensors,
  type F32Tensor,
  type RawTensor,
  SafetensorsError,
  type SafetensorsFile,
} from "./src/io/safetensors.ts";
export { replaceDirAtomic, writeFileAtomic } from "./src/io/atomic.ts";
export { OutputError } from "./src/io/output_dir.ts";
export { type CosSimHeatmapOptions, cosSimHeatmapSvg } from "./src/plot/heatmap.ts";
export {
  type LineMarker,
  type LinePlotOptions,
  linePlotSvg,
  type LineSeries,
  type Tick,
} from "./src/plot/line_plot.ts";
export { plotSaeFeatCosSims, type PlotSaeOptions } from "./src/plot/sae_cos_sims.ts";

// Sweeps and the balance finder.
export {
  DEFAULT_CHUNK,
  DEFAULT_REFINE,
  DEFAULT_SEEDS,
  DEFAULT_TOLERANCE,
  runSweep,
  type SweepOptions,
  type SweepResult,
} from "./src/sweep/run_sweep.ts";
export { type MergeOptions, type MergeResult, mergeSweeps } from "./src/sweep/merge.ts";
export {
  type Balance,
  balanceCurve,
  type BalanceCurvePoint,
  type BalanceSample,
  findBalance,
  refinementBetas,
  type SeedStats,
} from "./src/sweep/balance.ts";
export { describeBalance, verdictLine } from "./src/sweep/verdict.ts";
export {
  childProbsTree,
  DEFAULT_BETAS,
  degenerateReason,
  MAX_SWEEP_FEATURES,
  MAX_SWEEP_SAES,
  notebookSweepTrees,
  parseBetas,
  parseChildProbs,
  parseShard,
  type Shard,
  SweepAxisError,
  type SweepTree,
  sweepTree,
  treeFileTree,
  type TreeSource,
} from "./src/sweep/axes.ts";
export { type SweepRow, type SweepRowJson } from "./src/sweep/rows.ts";
export { type TreeBalance } from "./src/sweep/analysis.ts";
export { type SweepJson, type SweepJsonSettings, type SweepJsonTree } from "./src/sweep/outputs.ts";

// The GPU training paths and the kernel set (for building other training loops).
export { type Engine, type EngineName } from "./src/sae/engines.ts";
export {
  createKernelStep,
  type KernelStep,
  type KernelStepBuffers,
  type KernelStepIntermediates,
  type KernelStepOptions,
} from "./src/sae/kernel_step.ts";
export {
  createFusedStep,
  type FusedBuffers,
  type FusedStep,
  type FusedStepOptions,
  LOOP_ITERATION_BUDGET,
  type Schedule,
} from "./src/sae/fused_step.ts";
export { type ModelEntry, type OptimizerSettings, packModelTable } from "./src/sae/model_table.ts";
export { type DataGroup, packWorld } from "./src/sae/world.ts";
export { encodeOps, type KernelOp, runOps } from "./src/kernels/kernel_op.ts";
export {
  createMatmul,
  type MatmulSpec,
  type MatmulVariant,
  type MatrixOperand,
} from "./src/kernels/matmul.ts";
export { type StepShape } from "./src/kernels/step_dims.ts";
