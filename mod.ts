/// <reference types="npm:@webgpu/types@0.1.66" />
/**
 * matryoshka-gpu: train toy Matryoshka sparse autoencoders with raw WebGPU and hand-written WGSL,
 * many at once, to study how hedging and absorption pull an SAE's latents away from the true
 * features, and how the per-prefix loss multiplier β balances them.
 *
 * This is the researcher's API, in the order of the data flow: trees and worlds, the toy model,
 * the SAE and its configuration, initialisation, training, evaluation, figures, files, sweeps, and
 * what experiment scripts and benchmarks are built from. The engines, kernels and the float64
 * reference the kernels are tested against are in `kernels.ts`.
 *
 * The notebook's balanced-SAE cell, line by line (a short run here):
 *
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   initSaeToMatchModel, MatryoshkaSAE, NOTEBOOK_SAE_CONFIG, notebookTree, plotSaeFeatCosSims,
 *   ToyModel, trainToySae,
 * } from "./mod.ts";
 * const toyModel = new ToyModel({ nFeatures: 4, hiddenDim: 50 });
 * const featGenerator = notebookTree([0.15, 0.15, 0.15]);
 * const sae = new MatryoshkaSAE({ ...NOTEBOOK_SAE_CONFIG, matryoshkaInnerLossMultipliers: [0.25, 1] });
 * initSaeToMatchModel(sae, toyModel, { noiseLevel: 0, featureOrdering: [0, 1, 2, 3] });
 * await trainToySae(sae, toyModel, featGenerator, { steps: 50, quiet: true }); // published: 24,415
 * const svg = await plotSaeFeatCosSims(sae, toyModel, { title: "Balanced Matryoshka SAE (β = 0.25)" });
 * assert.match(svg, /<svg/);
 * ```
 *
 * @module
 */

// The WebGPU device (pass one to share it; every call makes its own otherwise). Importing
// backend_choice.ts lets getGpu pick llvmpipe through GL on Linux machines without a GPU.
import "./src/gpu/backend_choice.ts";
export {
  type AdapterSummary,
  describeAdapter,
  getGpu,
  type Gpu,
  GpuUnavailableError,
} from "./src/gpu/device.ts";
export { BufferLimitError } from "./src/gpu/buffers.ts";

// Trees of true features and the batches drawn from them.
export {
  InvalidTreeError,
  TreeFeatureGenerator,
  type TreeNode,
  type TreeSpec,
} from "./src/toy/tree.ts";
export { balancedTree, notebookTree, unbalancedTree } from "./src/toy/notebook_trees.ts";
export {
  SINGLE_LATENT_DATA,
  type SingleLatentData,
  singleLatentTree,
} from "./src/toy/single_latent_worlds.ts";
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
export { type BatchAddress, embedCpu, sampleBatchCpu } from "./src/toy/cpu_sampler.ts";
export { checkSeed, MAX_SEED, Rng } from "./src/toy/rng.ts";

// The toy model: the true features' directions in the SAE's input space.
export {
  orthogonalize,
  type OrthogonalizeOptions,
  ToyModel,
  type ToyModelOptions,
} from "./src/toy/toy_model.ts";

// The SAE and its configuration.
export {
  type Architecture,
  ARCHITECTURES,
  type BDecInitMethod,
  ConfigError,
  DEFAULT_SAE_CONFIG,
  NOTEBOOK_SAE_CONFIG,
  type ReconstructionLoss,
  resolveSaeConfig,
  type SaeConfig,
  validateSaeConfig,
} from "./src/sae/config.ts";
export { MatryoshkaSAE, type TopKState } from "./src/sae/sae.ts";
export { type ParamLayout } from "./src/sae/layout.ts";
export { type LossPlan, type LossTerm, type LossTermKind } from "./src/sae/loss_plan.ts";
export {
  BETA_FORMS,
  type BetaForm,
  betaSaeConfig,
  NOTEBOOK_SAES,
  type NotebookSae,
  prefixMultipliers,
  SWEEP_HIDDEN_DIM,
} from "./src/sae/notebook_saes.ts";
export {
  SINGLE_LATENT_BATCH,
  SINGLE_LATENT_SAES,
  SINGLE_LATENT_STEPS,
  type SingleLatentSae,
  singleLatentSaeConfig,
} from "./src/sae/single_latent_saes.ts";

// Initialisation.
export {
  type FeatureDirections,
  initBDec,
  initSaeRandom,
  initSaeToMatchModel,
  type MatchModelOptions,
} from "./src/sae/init.ts";

// Training.
export {
  B_DEC_INIT_SAMPLES,
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
export { type OptimizerSettings, PUBLISHED_OPTIMIZER } from "./src/sae/train_settings.ts";
export { type EngineName } from "./src/sae/engines.ts";

// Evaluation: cosine tables, the parent latent's reading, held-out metrics.
export { biasCosSims, decoderCosSims, encoderCosSims } from "./src/metrics/cosine.ts";
export { mcc, type MccResult } from "./src/metrics/matching.ts";
export { describeLatent0, type Latent0Reading, readLatent0 } from "./src/metrics/latent0.ts";
export {
  ALWAYS_LATENT,
  type EdgeScore,
  edgeSummaries,
  type EdgeSummary,
  type LatentScore,
  matchFeatures,
  type Probe,
  type Scorecard,
  type ScorecardPlan,
  scorecardPlan,
  type TreeEdge,
  treeEdges,
} from "./src/metrics/scorecard.ts";
export {
  edgeScores,
  evaluate,
  type EvaluateItem,
  type EvaluateOptions,
  type SaeMetrics,
} from "./src/metrics/evaluate.ts";
export { DEFAULT_EVAL_ROWS, evaluateCpu, MAX_EVAL_ROWS } from "./src/metrics/evaluate_cpu.ts";
export {
  curveMinimum,
  type LossCurve,
  lossCurve,
  SINGLE_LATENT_LOSS_CURVES,
  singleLatentLoss,
} from "./src/metrics/loss_curves.ts";
export { cosSimTable, edgeTable, metricsTable, sideBySide } from "./src/report/tables.ts";

// Figures.
export { type CosSimHeatmapOptions, cosSimHeatmapSvg } from "./src/plot/heatmap.ts";
export {
  type LineMarker,
  type LinePlotOptions,
  linePlotSvg,
  type LineSeries,
  type Tick,
} from "./src/plot/line_plot.ts";
export { plotSaeFeatCosSims, type PlotSaeOptions } from "./src/plot/sae_cos_sims.ts";
export {
  FIGURE_FORMATS,
  type FigureFormat,
  figureFormatOf,
  parseFigureFormat,
  renderFigure,
  saveFigure,
  saveFigureFormats,
} from "./src/plot/figure_files.ts";

// Files: SAELens checkpoints and output folders that never lose what they replace.
export {
  type LoadedSae,
  loadSae,
  SAE_CFG_FILE,
  SAE_WEIGHTS_FILE,
  SaeFileError,
  saveSae,
} from "./src/io/sae_files.ts";
export { writeFileAtomic } from "./src/io/atomic.ts";
export {
  checkOutputDir,
  OutputError,
  type OutputPlan,
  writeOutputDir,
} from "./src/io/output_dir.ts";

// Sweeps over trees, β and seeds, and the balance finder.
export {
  DEFAULT_CHUNK,
  DEFAULT_REFINE,
  DEFAULT_SEEDS,
  DEFAULT_TOLERANCE,
  MAX_REFINE,
  runSweep,
  type SweepOptions,
  type SweepResult,
} from "./src/sweep/run_sweep.ts";
export { type MergeOptions, type MergeResult, mergeSweeps } from "./src/sweep/merge.ts";
export {
  type Balance,
  BALANCE_OBJECTIVES,
  balanceCurve,
  type BalanceCurvePoint,
  type BalanceObjective,
  type BalanceSample,
  findBalance,
  refinementBetas,
  type SeedStats,
} from "./src/sweep/balance.ts";
export { describeBalance, verdictLine } from "./src/sweep/verdict.ts";
export { type EnvReader, SHARD_ENV, shardFromEnv } from "./src/sweep/shard_env.ts";
export {
  checkChoice,
  childProbsTree,
  DEFAULT_BETAS,
  degenerateReason,
  edgeName,
  MAX_SWEEP_FEATURES,
  MAX_SWEEP_SAES,
  notebookSweepTrees,
  parseBetas,
  parseChildProbs,
  parseShard,
  type Shard,
  singleParent,
  SweepAxisError,
  type SweepTree,
  sweepTree,
  treeFileTree,
  type TreeSource,
  uniqueTreeNames,
} from "./src/sweep/axes.ts";
export { SweepFolderError } from "./src/sweep/store.ts";
export { type SweepRow, type SweepRowJson } from "./src/sweep/rows.ts";
export { type TreeBalance } from "./src/sweep/analysis.ts";
export {
  type EdgeSummaryJson,
  type SweepJson,
  type SweepJsonSettings,
  type SweepJsonTree,
} from "./src/sweep/outputs.ts";
export {
  commonTrees,
  type ComparedSweep,
  compareFigureSvg,
  compareTable,
  readSweepJson,
  sweepLabel,
} from "./src/sweep/compare.ts";

// Balanceability maps: two world parameters swept on a grid, β* and the verdict per cell.
export {
  type BalanceMapJson,
  type BalanceMapOptions,
  type BalanceMapResult,
  type BalanceMapSpec,
  cellTree,
  checkMapSpec,
  fixedText,
  MAP_DEFAULTS,
  type MapAxis,
  MapAxisError,
  type MapCell,
  type MapCellResult,
  mapCells,
  mapCsv,
  mapGrid,
  type MapParameter,
  type MapWorld,
  mapWorld,
  MAX_MAP_CELLS,
  parameterLabel,
  parseMapAxis,
  parseMapFixed,
  parseMapParameter,
  runBalanceMap,
  writeMapFigures,
} from "./src/sweep/balance_map.ts";
export {
  betaStarMapSvg,
  type GridSegment,
  type MapGrid,
  outlineSegments,
  residualMapSvg,
} from "./src/sweep/map_figure.ts";

// The browser page (src/web/): built into a folder of static files.
export { buildWebPage, WEB_FILES, webOutputPlan } from "./src/web/build.ts";
export { serveWebPage } from "./src/web/serve.ts";
export {
  betaText,
  checkPageRun,
  MAX_PAGE_STEPS,
  PAGE_TREES,
  type PageReading,
  type PageRun,
  type PageSetup,
  pageSetup,
  pageSetups,
  progressEveryFor,
  readParams,
  SLIDER_INFINITY,
  sliderBeta,
} from "./src/web/page_model.ts";

// Experiment scripts: one-line errors with exit statuses, strict flags.
export { reportDivergence, runMain, UsageError } from "./src/cli/run_main.ts";
export {
  architectureFlags,
  evalRowsFlag,
  figureFormatsFlag,
  nonNegativeIntFlag,
  type ParsedFlags,
  parseFlags,
  positiveIntFlag,
  positiveNumberFlag,
} from "./src/cli/args.ts";

// Benchmarks (`deno task bench`): our GPU path beside the float64 reference and PyTorch.
export { type BenchOptions, runBench } from "./src/bench/run_bench.ts";
export {
  type BalancedResult,
  type BenchResults,
  type BenchRow,
  type ShapeResult,
  type SweepsResult,
  type TargetResult,
} from "./src/bench/results.ts";
export {
  type BackendBalanced,
  type BalancedSae,
  type BalancedTiming,
  type TorchBalancedTiming,
} from "./src/bench/balanced_bench.ts";
export { type EvalTiming, type SweepTiming } from "./src/bench/end_to_end_bench.ts";
export {
  type Cell,
  type MeasuredCell,
  type Repetition,
  type SkippedCell,
} from "./src/bench/timing.ts";
export { type MachineInfo } from "./src/bench/machine.ts";
export { formatMarkdown, formatText } from "./src/bench/report.ts";
export {
  type BenchShape,
  LARGE_TOY_SHAPE,
  largeToyTree,
  NOTEBOOK_SHAPE,
  SYNTH_SHAPE,
  SYNTHBENCH_SHAPE,
  synthBenchTree,
  WIDE_SHAPE,
  zipfProbability,
} from "./src/bench/shapes.ts";
export { defaultPython, type TorchVersions } from "./src/bench/torch_runner.ts";
