/**
 * The fused training path: `shaders/train_fused.wgsl` runs K complete training steps (sample,
 * encode, per-term decode and loss, backward, clip, Adam) of every model in three dispatches:
 * `sample` draws each data group's batches for the K steps, `compact` merges identical rows (with
 * their multiplicity) and moves the data step counter on, `train` runs one workgroup per model
 * through the K steps (more dispatches when the models need more than one scratch binding).
 * Nothing is read back per step.
 *
 * Inputs are `x = f E` (tree features times the toy model's embedding), so the kernel works per
 * row in latent space. With `u = Σ_{i<end} a_i W_dec[i]` and `e = u + b_dec − x` for a term:
 *
 *   e·W_dec[i] = Σ_j a_j (W_dec W_decᵀ)_{ji} + (W_dec b_dec)_i − Σ_f f_f (W_dec Eᵀ)_{if}
 *   ‖e‖²       = Σ_i a_i e·W_dec[i] + e·b_dec − e·x            (all from Gram quantities)
 *
 * and the gradients are rebuilt once per step in d_in-space from weighted row statistics, e.g.
 * `∂L/∂W_dec[j] = Σ_i Q_AA[j][i] W_dec[i] + Q_A[j] b_dec − Σ_f Q_AF[j][f] E[f]` with
 * `Q_AA[j][i] = Σ_b a_bj a_bi Σ_{t trains j, i < end_t} c_tb` (`c_tb` = ∂L_t/∂e_tb's scale). A row
 * then costs O((dSae + nFeatures)²) instead of O(dIn · dSae). The same loss and gradients as the
 * CPU reference, up to float32 rounding (tests/fused_step_test.ts).
 */
import type { Gpu } from "../gpu/device.ts";
import { createStorage, readF32, uploadStorage, uploadUniform } from "../gpu/buffers.ts";
import { bindGroup, dispatch, getPipeline, type ShaderFile } from "../gpu/pipelines.ts";
import { paramLayout, type ParamPacking } from "./layout.ts";
import { LR_SCHEDULE_WGSL_FILE, type Schedule } from "./train_settings.ts";
import {
  LOSS_WORDS,
  MAX_TERMS,
  MODEL_TABLE_FILE,
  type ModelEntry,
  packModelTable,
} from "./model_table.ts";
import { GROUP_HEADER, GROUP_WORDS, WORLD_FILE } from "./world.ts";
import { TREE_FLAT_FILE } from "../toy/tree_flat.ts";
import { readField, writeRecord } from "../gpu/records.ts";
import {
  FUSED_RECORDS_FILE,
  FUSED_RUN,
  fusedCounterIndex,
  fusedStateWords,
} from "./fused_records.ts";
import prngSrc from "../../shaders/lib/prng.wgsl" with { type: "text" };
import treeSampleSrc from "../../shaders/lib/tree_sample.wgsl" with { type: "text" };
import fusedSrc from "../../shaders/train_fused.wgsl" with { type: "text" };
import { checkInteger } from "../check_value.ts";
import {
  FUSED_LIMITS,
  FUSED_LOOP_PHASES,
  fusedEmbeddingTableFloats,
  fusedGramCount,
  fusedLayoutFile,
  fusedLoopIterationsPerStep,
  type FusedModuleShape,
  fusedParamPacking,
  fusedScratchFloats,
  fusedStatCount,
} from "./fused_layout.ts";

export {
  FUSED_LOOP_PHASES,
  fusedLoopIterationsByPhase,
  fusedLoopIterationsPerStep,
  type FusedShape,
} from "./fused_layout.ts";

/** The WGSL files of the fused kernel for one shape, in include order. */
export function fusedFiles(shape: FusedModuleShape): readonly ShaderFile[] {
  return [
    { path: "shaders/lib/prng.wgsl", code: prngSrc },
    TREE_FLAT_FILE,
    { path: "shaders/lib/tree_sample.wgsl", code: treeSampleSrc },
    MODEL_TABLE_FILE,
    WORLD_FILE,
    FUSED_RECORDS_FILE,
    fusedLayoutFile(shape),
    LR_SCHEDULE_WGSL_FILE,
    { path: "shaders/train_fused.wgsl", code: fusedSrc },
  ];
}

/** Threads per model the fused kernel supports (`MAX_WG` in the shader). */
export const FUSED_MAX_WORKGROUP: number = FUSED_LIMITS.MAX_WG;
/** Latents per SAE the fused kernel supports (its per-thread arrays). */
export const FUSED_MAX_LATENTS: number = FUSED_LIMITS.MAX_LATENTS;
/** Read-out features per tree the fused kernel supports. */
export const FUSED_MAX_FEATURES: number = FUSED_LIMITS.MAX_FEATURES;
/** Most steps one dispatch runs (bounds the features buffer). */
export const FUSED_MAX_STEPS_PER_DISPATCH = 256;

/**
 * Loop iterations one invocation may execute per dispatch. Mesa's llvmpipe and lavapipe stop every
 * loop of an invocation once 65,535 iterations have run in total (measured: a 100,000-iteration
 * loop runs 65,535 times, and nested loops share the count), silently, so the number of steps per
 * dispatch is bounded by an upper estimate of the iterations per step.
 */
export const LOOP_ITERATION_BUDGET = 60_000;

/** Shapes and contents of a fused run. */
export interface FusedStepOptions {
  /** One entry per SAE trained together (M models). */
  models: readonly ModelEntry[];
  /** Rows per training batch B. */
  batch: number;
  /** Input width: dimension of the activations the SAEs reconstruct. */
  dIn: number;
  /** Latents per SAE. */
  dSae: number;
  /** Packed data groups, trees and embeddings (src/sae/world.ts). */
  world: Uint32Array<ArrayBuffer>;
  /**
   * Number of data groups in `world`, their most read-out features and deepest feature, and
   * whether every read-out magnitude is fixed (then identical batch rows are merged).
   */
  trees: { groups: number; maxFeatures: number; maxDepth: number; fixedMagnitudes: boolean };
  /** Learning-rate schedule shared by all models. */
  schedule: Schedule;
  /** Threads per model (default: {@link defaultWorkgroupSize}). */
  workgroupSize?: number;
  /** Accumulate row statistics per thread (default: when they fit {@link FUSED_MAX_PRIVATE_STATS}). */
  privateStats?: boolean;
  /** Cap on models per dispatch (default: what one scratch binding holds). */
  maxModelsPerDispatch?: number;
  /**
   * Debug: count every thread's loop iterations per phase (`COUNT_LOOPS` in the shader); after a
   * dispatch, {@link readFusedLoopCounts} reads them from `buffers.scratch`. Slower; tests only.
   */
  countLoops?: boolean;
}

/** GPU buffers of a fused run. */
export interface FusedBuffers {
  /** [M][stride] parameters, packed by {@link FusedStep.packing} (W_dec transposed). */
  params: GPUBuffer;
  /** [M][3][stride]: gradient, Adam first moment, Adam second moment (packed the same way). */
  opt: GPUBuffer;
  /** [M][LOSS_WORDS] latest loss records. */
  losses: GPUBuffer;
  /** [M] FUSED_STATE u32 entries (steps done, divergence status), then the data step. */
  state: GPUBuffer;
  /** [chunk][scratch floats] per-model scratch of the latest dispatch (src/sae/fused_layout.ts). */
  scratch: GPUBuffer;
}

/** A compiled fused run: encode `n` training steps of all models into a command encoder. */
export interface FusedStep {
  /** Parameters, optimiser state, losses and step state of all models. */
  buffers: FusedBuffers;
  /** How `buffers.params` (and each of opt's gradient and moments) holds the models' parameters. */
  packing: ParamPacking;
  /** Most models one `train` dispatch covers (bounded by one scratch binding). */
  modelsPerDispatch: number;
  /** Threads per model. */
  workgroupSize: number;
  /** The most steps one dispatch may run (loop budget and features buffer). */
  maxStepsPerDispatch: number;
  /** Records `steps` (1 to maxStepsPerDispatch) training steps of every model in one pass. */
  encodeSteps(encoder: GPUCommandEncoder, steps: number): void;
  /**
   * Runs every pipeline once on no work (zero steps, zero models) and waits: drivers that compile
   * at the first dispatch (Mesa's GL does) compile now, not inside the first training steps.
   * Changes nothing.
   */
  compile(): Promise<void>;
  /** Destroys every buffer the step created (parameters, state, scratch, world, uniforms). */
  destroy(): void;
}

/** Why the fused kernel cannot train this shape, or null when it can. */
export function fusedUnsupportedReason(
  dSae: number,
  maxFeatures: number,
  models: readonly ModelEntry[],
): string | null {
  if (dSae > FUSED_MAX_LATENTS) return `dSae ${dSae} > ${FUSED_MAX_LATENTS}`;
  if (fusedGramCount(dSae, maxFeatures) > FUSED_MAX_GRAM) {
    return `${fusedGramCount(dSae, maxFeatures)} Gram quantities > ${FUSED_MAX_GRAM}`;
  }
  if (maxFeatures > FUSED_MAX_FEATURES) return `${maxFeatures} features > ${FUSED_MAX_FEATURES}`;
  const terms = Math.max(...models.map((m) => m.plan.terms.length));
  if (terms > MAX_TERMS) return `${terms} loss terms > ${MAX_TERMS}`;
  // The batch-wide selection of BatchTopK and the dead-latent state sit outside the per-row
  // latent-space formulation: the kernel set trains the TopK family.
  if (models.some((m) => m.topk)) return "TopK and BatchTopK SAEs train on the kernel set";
  return null;
}

/**
 * Thrown by {@link createFusedStep} when a run's shape is one the fused kernel cannot run (too
 * many features or terms, a batch or tree too large for the loop budget); `engine: "auto"` then
 * trains on the kernel set.
 */
export class FusedShapeError extends RangeError {
  /** Always `"FusedShapeError"`. */
  override name = "FusedShapeError";
}

/** Upper bound of the loop iterations one `sample` invocation runs per dispatch. */
function sampleLoopIterations(maxFeatures: number, maxDepth: number): number {
  return maxFeatures * ((maxDepth + 1) * 12 + 2) + 1;
}

/**
 * Threads per model: on a CPU adapter, where every `workgroupBarrier` switches between the
 * workgroup's SIMD fibers (fewer threads are faster), the smallest power of two from 8 (one SIMD
 * group) whose step fits the loop budget at least 8 times; on a GPU, one thread per batch row (up
 * to 128) with barriers between the phases.
 */
export function defaultWorkgroupSize(
  gpu: Gpu,
  batch: number,
  iterationsPerStep: (workgroupSize: number) => number,
): number {
  if (!gpu.summary.isFallback) return Math.min(128, Math.ceil(Math.min(batch, 128) / 32) * 32);
  for (let wg = 8; wg < FUSED_MAX_WORKGROUP; wg *= 2) {
    if (iterationsPerStep(wg) * 8 <= LOOP_ITERATION_BUDGET) return wg;
  }
  return FUSED_MAX_WORKGROUP;
}

/** Statistics a thread can accumulate in registers (`MAX_STATS` in the shader). */
export const FUSED_MAX_PRIVATE_STATS: number = FUSED_LIMITS.MAX_STATS;

/** Gram quantities a thread copies into registers (`MAX_GRAM` in the shader). */
export const FUSED_MAX_GRAM: number = FUSED_LIMITS.MAX_GRAM;

/** Builds the buffers and pipelines of a fused run (parameters start at zero: upload them). */
export async function createFusedStep(gpu: Gpu, options: FusedStepOptions): Promise<FusedStep> {
  const { models, batch, dIn, dSae, schedule, trees } = options;
  const reason = fusedUnsupportedReason(dSae, trees.maxFeatures, models);
  if (reason) throw new FusedShapeError(`The fused kernel cannot train this run: ${reason}`);
  const M = models.length;
  const layout = paramLayout(dIn, dSae);
  const tMax = Math.max(1, ...models.map((m) => m.plan.terms.length));
  const nFeat = Math.max(1, trees.maxFeatures);
  const privateStats = options.privateStats ??
    fusedStatCount(dSae, nFeat, tMax) <= FUSED_MAX_PRIVATE_STATS;
  if (privateStats && fusedStatCount(dSae, nFeat, tMax) > FUSED_MAX_PRIVATE_STATS) {
    throw new RangeError(
      `privateStats: ${fusedStatCount(dSae, nFeat, tMax)} statistics exceed ` +
        `${FUSED_MAX_PRIVATE_STATS}`,
    );
  }
  // Merging identical rows: each row is compared with the first `search` distinct ones; when every
  // possible row (2^features active sets, magnitudes being fixed) fits that window, a batch has
  // at most that many distinct rows.
  const dedup = trees.fixedMagnitudes;
  const search = Math.max(
    1,
    Math.min(32, Math.floor(LOOP_ITERATION_BUDGET / (batch * (nFeat + 3)))),
  );
  const distinctRows = dedup && 2 ** nFeat <= search ? Math.min(batch, 2 ** nFeat) : batch;
  const iterations = (wg: number) =>
    fusedLoopIterationsPerStep({
      workgroupSize: wg,
      distinctRows,
      privateStats,
      normalizeDecoder: models.some((m) => m.normalizeSaeDecoder),
      batch,
      dIn,
      dSae,
      terms: tMax,
      maxFeatures: nFeat,
      maxDepth: trees.maxDepth,
    });
  const wg = options.workgroupSize ?? defaultWorkgroupSize(gpu, batch, iterations);
  checkInteger("workgroupSize", wg, 1, FUSED_MAX_WORKGROUP);
  if (sampleLoopIterations(nFeat, trees.maxDepth) > LOOP_ITERATION_BUDGET) {
    throw new FusedShapeError(`The fused kernel cannot sample trees this deep (${trees.maxDepth})`);
  }
  const rowsBlock = 1 + batch * (nFeat + 1);
  const maxSteps = Math.min(
    FUSED_MAX_STEPS_PER_DISPATCH,
    Math.floor(LOOP_ITERATION_BUDGET / iterations(wg)),
    Math.floor(gpu.device.limits.maxStorageBufferBindingSize / (trees.groups * rowsBlock * 4)),
  );
  if (maxSteps < 1) {
    throw new FusedShapeError(
      `The fused kernel cannot run one step of this shape with ${wg} threads per model within ` +
        `${LOOP_ITERATION_BUDGET} loop iterations per invocation (needs ${iterations(wg)})`,
    );
  }
  const scratchPerModel = fusedScratchFloats(batch, dSae, nFeat, tMax, privateStats, wg) * 4;
  const fit = Math.floor(gpu.device.limits.maxStorageBufferBindingSize / scratchPerModel);
  const perDispatch = Math.max(1, Math.min(M, fit, options.maxModelsPerDispatch ?? M));

  const packing = fusedParamPacking(layout);
  const stride = packing.stride;
  const buffers: FusedBuffers = {
    params: createStorage(gpu, "params", M * stride * 4),
    opt: createStorage(gpu, "gradient and Adam moments", M * 3 * stride * 4),
    losses: createStorage(gpu, "losses", M * LOSS_WORDS * 4),
    state: createStorage(gpu, "training state", fusedStateWords(M) * 4),
    scratch: createStorage(gpu, "fused scratch", perDispatch * scratchPerModel),
  };
  const modelTable = uploadStorage(gpu, "model table", packModelTable(models));
  const world = uploadStorage(gpu, "data groups, trees and embeddings", options.world);
  const scratch = buffers.scratch;
  const features = createStorage(gpu, "batch rows", maxSteps * trees.groups * rowsBlock * 4);
  const embeddings = uploadStorage(
    gpu,
    "embedding tables",
    embeddingTables(options.world, trees.groups, dIn, nFeat),
  );
  const owned: GPUBuffer[] = [
    ...Object.values(buffers),
    modelTable,
    world,
    features,
    embeddings,
  ];
  const files = fusedFiles({ dSae, nFeatures: nFeat, terms: tMax });
  const constants = {
    WG: wg,
    BATCH: batch,
    D_IN: dIn,
    PRIVATE_STATS: privateStats ? 1 : 0,
    GENERAL_LP: models.some((m) => m.plan.lpNorm !== 1) ? 1 : 0,
    ...(options.countLoops ? { COUNT_LOOPS: 1 } : {}),
  };
  const spec = (entryPoint: string, c: Record<string, number>) => ({
    label: `train_fused.${entryPoint}`,
    files,
    entryPoint,
    constants: c,
  });
  const [trainPipeline, samplePipeline, compactPipeline] = await Promise.all([
    getPipeline(gpu, spec("train", constants)),
    getPipeline(gpu, spec("sample", { BATCH: batch })),
    getPipeline(
      gpu,
      spec("compact", { BATCH: batch, DEDUP: dedup ? 1 : 0, SEARCH: search }),
    ),
  ]);

  // A uniform per (chunk, steps-per-dispatch), made on first use and kept.
  const chunks: { first: number; count: number }[] = [];
  for (let first = 0; first < M; first += perDispatch) {
    chunks.push({ first, count: Math.min(perDispatch, M - first) });
  }
  const groups = new Map<string, GPUBindGroup>();
  const uniformFor = (first: number, count: number, steps: number) => {
    const run = new Uint32Array(FUSED_RUN.words);
    writeRecord(FUSED_RUN, run, 0, {
      firstModel: first,
      numModels: count,
      numSteps: steps,
      totalSteps: schedule.totalSteps,
      warmupSteps: schedule.warmupSteps,
      decaySteps: schedule.decaySteps,
      lrEndFactor: schedule.lrEndFactor,
      numGroups: trees.groups,
      counterIndex: fusedCounterIndex(M),
      threads: wg,
    });
    const uniform = uploadUniform(gpu, `fused run ${first}+${steps}`, run);
    owned.push(uniform);
    return uniform;
  };
  const group = (
    kind: "train" | "sample" | "compact",
    first: number,
    count: number,
    steps: number,
  ) => {
    const key = `${kind}/${first}/${steps}`;
    let g = groups.get(key);
    if (!g) {
      const uniform = uniformFor(first, count, steps);
      // Only the bindings each entry point uses (auto layouts drop the others).
      const bindings: Record<typeof kind, Record<number, GPUBuffer>> = {
        train: {
          0: buffers.params,
          1: buffers.opt,
          2: modelTable,
          4: buffers.losses,
          5: buffers.state,
          6: scratch,
          7: features,
          8: uniform,
          9: embeddings,
        },
        sample: { 3: world, 5: buffers.state, 7: features, 8: uniform },
        compact: { 5: buffers.state, 7: features, 8: uniform },
      };
      const pipeline = {
        train: trainPipeline,
        sample: samplePipeline,
        compact: compactPipeline,
      }[kind];
      g = bindGroup(gpu, pipeline, bindings[kind], `train_fused.${kind}`);
      groups.set(key, g);
    }
    return g;
  };

  return {
    buffers,
    packing,
    modelsPerDispatch: perDispatch,
    workgroupSize: wg,
    maxStepsPerDispatch: maxSteps,
    encodeSteps(encoder, steps) {
      if (steps < 1 || steps > maxSteps) {
        throw new RangeError(
          `encodeSteps: expected 1 to ${maxSteps} steps per dispatch, got ${steps}`,
        );
      }
      const pass = encoder.beginComputePass({ label: `train_fused x${steps}` });
      const sampleThreads = steps * trees.groups * batch;
      dispatch(
        gpu,
        pass,
        samplePipeline,
        group("sample", 0, M, steps),
        Math.ceil(sampleThreads / 64),
      );
      const compactThreads = steps * trees.groups;
      dispatch(
        gpu,
        pass,
        compactPipeline,
        group("compact", 0, M, steps),
        Math.ceil(compactThreads / 8),
      );
      for (const chunk of chunks) {
        dispatch(
          gpu,
          pass,
          trainPipeline,
          group("train", chunk.first, chunk.count, steps),
          chunk.count,
        );
      }
      pass.end();
    },
    async compile() {
      const encoder = gpu.device.createCommandEncoder({ label: "train_fused compile" });
      const pass = encoder.beginComputePass({ label: "train_fused x0" });
      dispatch(gpu, pass, samplePipeline, group("sample", 0, 0, 0), 1);
      dispatch(gpu, pass, compactPipeline, group("compact", 0, 0, 0), 1);
      dispatch(gpu, pass, trainPipeline, group("train", 0, 0, 0), 1);
      pass.end();
      gpu.device.queue.submit([encoder.finish()]);
      await gpu.device.queue.onSubmittedWorkDone();
    },
    destroy() {
      for (const buffer of owned.splice(0)) buffer.destroy();
      groups.clear();
    },
  };
}

/**
 * Each data group's fixed embedding tables for the fused kernel (`embeddings`), one block per
 * group: E Eᵀ `[F][F]` (padded with zeros to a multiple of 4 floats, summed in float64), then E
 * transposed, E[f][d] at `[d][f]` with features padded to a multiple of 4 (`[d_in][F4]`, read as
 * vec4s); F is `maxFeatures`, and features past a group's own are zeros. From the packed world
 * (src/sae/world.ts).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { embeddingTables } from "./fused_step.ts";
 * import { packWorld } from "./world.ts";
 * import { TreeFeatureGenerator } from "../toy/tree.ts";
 *
 * const tree = new TreeFeatureGenerator({ activeProb: 1, isReadOut: false, children: [
 *   { activeProb: 0.5 }, { activeProb: 0.5 },
 * ] });
 * const embedding = new Float32Array([1, 2, 3, 4, 5, 6]); // 2 features × 3 dims
 * const world = packWorld([{ tree, embedding, seed: 0 }], 3);
 * assert.deepEqual(
 *   Array.from(embeddingTables(world, 1, 3, 2)),
 *   [14, 32, 32, 77, 1, 4, 0, 0, 2, 5, 0, 0, 3, 6, 0, 0], // E Eᵀ, then Eᵀ
 * );
 * ```
 */
export function embeddingTables(
  world: Uint32Array,
  groups: number,
  dIn: number,
  maxFeatures: number,
): Float32Array<ArrayBuffer> {
  const F = Math.max(1, maxFeatures);
  const { gram, featuresPadded: F4, block } = fusedEmbeddingTableFloats(dIn, F);
  const floats = new Float32Array(world.buffer, world.byteOffset, world.length);
  const out = new Float32Array(groups * block);
  for (let g = 0; g < groups; g++) {
    const nf = readField(GROUP_HEADER, world, g * GROUP_WORDS, "nFeatures");
    const base = readField(GROUP_HEADER, world, g * GROUP_WORDS, "embeddingBase");
    const rows = Array.from(
      { length: nf },
      (_, f) => floats.subarray(base + f * dIn, base + (f + 1) * dIn),
    );
    rows.forEach((ef, f) => {
      rows.forEach((eh, h) => {
        let dot = 0;
        for (let d = 0; d < dIn; d++) dot += ef[d]! * eh[d]!;
        out[g * block + f * F + h] = dot;
      });
      for (let d = 0; d < dIn; d++) out[g * block + gram + d * F4 + f] = ef[d]!;
    });
  }
  return out;
}

/**
 * The loop iterations each thread of the first model of the latest `countLoops` dispatch ran, per
 * phase: `[thread][FUSED_LOOP_PHASES.length]` (see `COUNT_LOOPS` in shaders/train_fused.wgsl).
 */
export async function readFusedLoopCounts(
  gpu: Gpu,
  step: FusedStep,
): Promise<number[][]> {
  const floats = await readF32(gpu, step.buffers.scratch);
  const n = FUSED_LOOP_PHASES.length;
  return Array.from(
    { length: step.workgroupSize },
    (_, t) => Array.from(floats.subarray(t * n, (t + 1) * n)),
  );
}
