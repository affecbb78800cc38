/**
 * The synthetic-SAE evaluation suite on the GPU (`shaders/evaluate.wgsl`): M SAEs, each with its
 * own tree and toy model, are scored on held-out rows in the same dispatches (the rows and the
 * metrics' definitions are in `evaluate_cpu.ts`, whose float64 computation is this one's oracle).
 *
 * The rows of each world (distinct tree) are weighted pattern slots (`eval_worlds.ts`): a tree
 * without magnitude noise contributes its distinct activity patterns with their multiplicities
 * (counted on the host from `mask_pass`'s bits), a noisy tree its rows, sampled by `sample_pass`.
 * `gram_pass` computes each model's Gram quantities once; per chunk of slots, one submit:
 * `rows_pass` (each slot's weighted statistics in latent space) then `reduce_pass` (per-model sums
 * in a fixed order). Only the sums are read back and added in float64. The total sum of squares
 * is `Σ‖x‖² − N‖x̄‖²` in float64 from the sums of ‖x‖² and of each feature. MCC and the latent-0
 * readings depend on the weights only and are computed on the host.
 */
import { getGpu, type Gpu } from "../gpu/device.ts";
import { createStorage, readF32, readU32, uploadStorage, uploadUniform } from "../gpu/buffers.ts";
import { bindGroup, dispatch, getPipeline, type ShaderFile } from "../gpu/pipelines.ts";
import { packWorld, WORLD_FILE } from "../sae/world.ts";
import { TREE_FLAT_FILE } from "../toy/tree_flat.ts";
import { checkInteger } from "../check_value.ts";
import {
  checkEvaluation,
  EVAL_ROWS_PER_STEP,
  EVAL_STEP_BASE,
  evalDataSeed,
  evalEnds,
  type EvalTotals,
  type EvaluateItem,
  type EvaluateOptions,
  finishMetrics,
  planOf,
  type SaeMetrics,
} from "./evaluate_cpu.ts";
import { ALWAYS_LATENT, type Scorecard } from "./scorecard.ts";
import {
  type EvalWorlds,
  evalWorlds,
  maskWords,
  PatternCounter,
  type PatternSlots,
  patternSlots,
} from "./eval_worlds.ts";
import prngSource from "../../shaders/lib/prng.wgsl" with { type: "text" };
import treeSampleSource from "../../shaders/lib/tree_sample.wgsl" with { type: "text" };
import evaluateSource from "../../shaders/evaluate.wgsl" with { type: "text" };

export type { EvaluateItem, EvaluateOptions, SaeMetrics } from "./evaluate_cpu.ts";

/** The WGSL files of the evaluation kernels, in include order. */
const EVALUATE_SHADER_FILES: readonly ShaderFile[] = [
  { path: "shaders/lib/prng.wgsl", code: prngSource },
  TREE_FLAT_FILE,
  { path: "shaders/lib/tree_sample.wgsl", code: treeSampleSource },
  WORLD_FILE,
  { path: "shaders/evaluate.wgsl", code: evaluateSource },
];

const ROW_WG = 64;
const RED_WG = 256;
/** Default slots per chunk. */
const DEFAULT_BATCH_ROWS = 16_384;
/** Most slots per chunk: chunk sums of counts stay exact in float32. */
const MAX_BATCH_ROWS = 2 ** 24;
/** Held-out rows whose activity bits are read back at once (merged worlds). */
const MASK_ROWS = 2 ** 18;
/** Most bytes of the per-slot scratch when batchRows is not given. */
const ROWS_BUDGET_BYTES = 256 * 2 ** 20;
/**
 * Most statistics (M·K·slots) of a one-chunk evaluation that are read back and summed on the host
 * in float64 instead of by `reduce_pass` (whose wide workgroups cost more than they save there).
 */
const HOST_SUM_FLOATS = 2 ** 20;
/** Most bytes of chunk partials held on the GPU before they are read back and merged. */
const PARTIALS_BUDGET_BYTES = 16 * 2 ** 20;

/** Words of the `EvalRun` uniform. */
const RUN_WORDS = 16;

/** Floats of one model's Gram quantities (block layout in evaluate.wgsl). */
function gramWords(f: number, s: number): number {
  return 2 * f * s + f * f + s * s + 2 * s + f + 1;
}

/** The shape of one evaluation call, as the `EvalRun` uniform carries it. */
interface EvalShape {
  models: number;
  dIn: number;
  dSae: number;
  ends: number;
  features: number;
  worlds: number;
  sampled: number;
  maskWords: number;
  rows: number;
  probes: number;
}

/** The uniform of one submit: `capacity` slots per world, `n` used, from held-out row `first`. */
function runWords(
  shape: EvalShape,
  capacity: number,
  n: number,
  first: number,
  chunk: number,
): Uint32Array<ArrayBuffer> {
  const { models, dIn, dSae, ends, features, worlds, sampled, maskWords, rows, probes } = shape;
  return Uint32Array.from([
    models,
    dIn,
    dSae,
    ends,
    features,
    worlds,
    sampled,
    capacity,
    n,
    first,
    rows,
    chunk,
    EVAL_STEP_BASE,
    EVAL_ROWS_PER_STEP,
    maskWords,
    probes,
  ]);
}

/** Slots per chunk: the option, or the default within the memory budget. */
function chunkSlots(
  gpu: Gpu,
  options: EvaluateOptions,
  slots: number,
  bytesPerSlot: number,
): number {
  if (options.batchRows !== undefined) {
    return Math.min(checkInteger("batchRows", options.batchRows, 1, MAX_BATCH_ROWS), slots);
  }
  const budget = Math.min(ROWS_BUDGET_BYTES, gpu.device.limits.maxStorageBufferBindingSize);
  const fit = Math.floor(budget / bytesPerSlot);
  if (fit < 1) {
    throw new RangeError(
      `Cannot evaluate: one row of every model needs ${bytesPerSlot} bytes of scratch, above ` +
        `the ${budget}-byte budget; evaluate fewer models per call`,
    );
  }
  return Math.min(slots, DEFAULT_BATCH_ROWS, fit);
}

type Pipelines = Record<
  "mask_pass" | "sample_pass" | "gram_pass" | "rows_pass" | "reduce_pass",
  GPUComputePipeline
>;

async function evaluationPipelines(gpu: Gpu): Promise<Pipelines> {
  const names = ["mask_pass", "sample_pass", "gram_pass", "rows_pass", "reduce_pass"] as const;
  const pipes = await Promise.all(names.map((entryPoint) =>
    getPipeline(gpu, {
      label: `evaluate.wgsl:${entryPoint}`,
      files: EVALUATE_SHADER_FILES,
      entryPoint,
      constants: entryPoint === "reduce_pass" ? { RED_WG } : { ROW_WG },
    })
  ));
  return Object.fromEntries(names.map((name, i) => [name, pipes[i]!])) as Pipelines;
}

/**
 * The distinct activity patterns of each merged world `[sampled, worlds)` over the held-out rows,
 * as pattern slots: `mask_pass` writes the bits of up to {@link MASK_ROWS} rows per submit.
 */
async function mergedSlots(
  gpu: Gpu,
  shape: EvalShape,
  trees: EvalWorlds["trees"],
  pipes: Pipelines,
  runBuffer: GPUBuffer,
  worldBuffer: GPUBuffer,
  keep: (b: GPUBuffer) => GPUBuffer,
): Promise<PatternSlots[]> {
  const merged = shape.worlds - shape.sampled;
  if (merged === 0) return [];
  const R = Math.min(shape.rows, MASK_ROWS);
  const W = shape.maskWords;
  const maskBuffer = keep(createStorage(gpu, "evaluate: masks [W][R][MW]", merged * R * W * 4));
  const group = bindGroup(gpu, pipes.mask_pass, { 0: runBuffer, 1: worldBuffer, 10: maskBuffer });
  const counters = Array.from({ length: merged }, () => new PatternCounter(W));
  for (let first = 0; first < shape.rows; first += R) {
    const n = Math.min(R, shape.rows - first);
    gpu.device.queue.writeBuffer(runBuffer, 0, runWords(shape, R, n, first, 0));
    const encoder = gpu.device.createCommandEncoder({ label: "evaluate: masks" });
    const pass = encoder.beginComputePass({ label: "evaluate: masks" });
    dispatch(gpu, pass, pipes.mask_pass, group, Math.ceil((merged * n) / ROW_WG));
    pass.end();
    gpu.device.queue.submit([encoder.finish()]);
    const bits = await readU32(gpu, maskBuffer, 0, merged * R * W);
    counters.forEach((counter, i) => counter.add(bits.subarray(i * R * W), n));
  }
  return counters.map((counter, i) =>
    patternSlots(trees[shape.sampled + i]!, counter.entries(), shape.features)
  );
}

async function evaluateOnGpu(
  items: readonly EvaluateItem[],
  options: EvaluateOptions,
  gpu: Gpu,
): Promise<SaeMetrics[]> {
  const { rows, seed } = checkEvaluation(items, options);
  const dataSeed = evalDataSeed(seed);
  const M = items.length;
  const { dIn: D, dSae: S } = items[0]!.sae.config;
  const ends = items.map((item) => evalEnds(item.sae));
  const E = Math.max(...ends.map((e) => e.length));
  const F = Math.max(...items.map((item) => item.tree.nFeatures));
  const plans = items.map(planOf);
  const Q = Math.max(...plans.map((plan) => plan.probes.length));
  const K = E + S + F + 5 + Q;
  const worlds = evalWorlds(items);
  const W = worlds.trees.length;
  const shape: EvalShape = {
    models: M,
    dIn: D,
    dSae: S,
    ends: E,
    features: F,
    worlds: W,
    sampled: worlds.sampled,
    maskWords: maskWords(F),
    rows,
    probes: Q,
  };

  const treeWords = packWorld(
    worlds.trees.map((tree) => ({
      tree,
      embedding: new Float32Array(tree.nFeatures * D),
      seed: dataSeed,
    })),
    D,
  );
  const size = items[0]!.sae.layout.size;
  const params = new Float32Array(M * size);
  const embeddings = new Float32Array(M * F * D);
  const head = 4; // INFO_HEAD in evaluate.wgsl
  const info = new Uint32Array(M * (head + E));
  const infoFloats = new Float32Array(info.buffer);
  const probes = new Uint32Array(Math.max(1, M * Q) * 3);
  for (let i = 0; i < M * Q; i++) probes[3 * i] = ALWAYS_LATENT;
  plans.forEach((plan, m) => {
    plan.probes.forEach(({ latent, a, b }, q) => probes.set([latent, a, b], (m * Q + q) * 3));
  });
  items.forEach((item, m) => {
    params.set(item.sae.params, m * size);
    embeddings.set(item.model.embedding, m * F * D);
    const gate = item.sae.inferenceGate();
    info[m * (head + E)] = worlds.worldOf[m]!;
    info[m * (head + E) + 1] = item.sae.config.applyBDecToInput ? 1 : 0;
    infoFloats[m * (head + E) + 2] = gate.threshold;
    info[m * (head + E) + 3] = gate.k ?? 0;
    for (let e = 0; e < E; e++) info[m * (head + E) + head + e] = ends[m]![e] ?? S;
  });

  const buffers: GPUBuffer[] = [];
  const keep = (b: GPUBuffer) => (buffers.push(b), b);
  try {
    const pipes = await evaluationPipelines(gpu);
    const runBuffer = keep(uploadUniform(gpu, "evaluate: run", new Uint32Array(RUN_WORDS)));
    const worldBuffer = keep(uploadStorage(gpu, "evaluate: tree_nodes (worlds)", treeWords));
    const merged = await mergedSlots(gpu, shape, worlds.trees, pipes, runBuffer, worldBuffer, keep);
    const slotsOf = (w: number) =>
      w < worlds.sampled ? rows : merged[w - worlds.sampled]!.weights.length;
    const maxSlots = Math.max(...Array.from({ length: W }, (_, w) => slotsOf(w)));
    const C = chunkSlots(gpu, options, maxSlots, M * (K + 2 * S) * 4 + W * (F + 1) * 4);
    const chunks = Math.ceil(maxSlots / C);
    const hostSums = chunks === 1 && M * K * C <= HOST_SUM_FLOATS;
    const chunksPerRead = Math.max(
      1,
      Math.min(chunks, Math.floor(PARTIALS_BUDGET_BYTES / (M * K * 4))),
    );

    const paramBuffer = keep(uploadStorage(gpu, "evaluate: params [M][P]", params));
    const infoBuffer = keep(uploadStorage(gpu, "evaluate: model_info [M][4+E]", info));
    const embeddingBuffer = keep(uploadStorage(gpu, "evaluate: embeddings [M][F][D]", embeddings));
    const probeBuffer = keep(uploadStorage(gpu, "evaluate: probes [M][Q][3]", probes));
    const gramBuffer = keep(createStorage(gpu, "evaluate: gram [M][GW]", M * gramWords(F, S) * 4));
    const patternBuffer = keep(createStorage(gpu, "evaluate: patterns [W][C][F]", W * C * F * 4));
    const weightBuffer = keep(createStorage(gpu, "evaluate: weights [W][C]", W * C * 4));
    const statBuffer = keep(createStorage(gpu, "evaluate: stats [M][K][C]", M * K * C * 4));
    const latentBuffer = keep(
      createStorage(gpu, "evaluate: latents [M][C][2S]", M * C * 2 * S * 4),
    );
    const partialBuffer = keep(
      createStorage(gpu, "evaluate: partials [chunks][M][K]", chunksPerRead * M * K * 4),
    );
    const gramGroup = bindGroup(gpu, pipes.gram_pass, {
      0: runBuffer,
      2: paramBuffer,
      4: embeddingBuffer,
      5: gramBuffer,
    });
    const sampleGroup = bindGroup(gpu, pipes.sample_pass, {
      0: runBuffer,
      1: worldBuffer,
      6: patternBuffer,
    });
    const rowsGroup = bindGroup(gpu, pipes.rows_pass, {
      0: runBuffer,
      2: paramBuffer,
      3: infoBuffer,
      5: gramBuffer,
      6: patternBuffer,
      7: weightBuffer,
      8: statBuffer,
      11: latentBuffer,
      12: probeBuffer,
    });
    const reduceGroup = bindGroup(gpu, pipes.reduce_pass, {
      0: runBuffer,
      8: statBuffer,
      9: partialBuffer,
    });

    const sums = items.map(() => new Float64Array(K));
    const weights = new Float32Array(W * C);
    for (let first = 0; first < chunks; first += chunksPerRead) {
      const count = Math.min(chunksPerRead, chunks - first);
      for (let c = 0; c < count; c++) {
        const start = (first + c) * C;
        const n = Math.min(C, maxSlots - start);
        weights.fill(0);
        for (let w = 0; w < W; w++) {
          if (w < worlds.sampled) {
            weights.fill(1, w * C, w * C + Math.max(0, Math.min(n, rows - start)));
            continue;
          }
          const slots = merged[w - worlds.sampled]!;
          const used = Math.max(0, Math.min(n, slots.weights.length - start));
          if (used === 0) continue;
          weights.set(slots.weights.subarray(start, start + used), w * C);
          const values = slots.values.subarray(start * F, (start + used) * F);
          gpu.device.queue.writeBuffer(patternBuffer, w * C * F * 4, values);
        }
        gpu.device.queue.writeBuffer(weightBuffer, 0, weights);
        gpu.device.queue.writeBuffer(runBuffer, 0, runWords(shape, C, n, start, c));
        const encoder = gpu.device.createCommandEncoder({ label: "evaluate" });
        const pass = encoder.beginComputePass({ label: "evaluate" });
        if (first + c === 0) {
          dispatch(
            gpu,
            pass,
            pipes.gram_pass,
            gramGroup,
            Math.ceil((M * gramWords(F, S)) / ROW_WG),
          );
        }
        if (worlds.sampled > 0) {
          dispatch(
            gpu,
            pass,
            pipes.sample_pass,
            sampleGroup,
            Math.ceil((worlds.sampled * n) / ROW_WG),
          );
        }
        dispatch(gpu, pass, pipes.rows_pass, rowsGroup, Math.ceil((M * n) / ROW_WG));
        if (!hostSums) dispatch(gpu, pass, pipes.reduce_pass, reduceGroup, M * K);
        pass.end();
        gpu.device.queue.submit([encoder.finish()]);
      }
      if (hostSums) {
        const stats = await readF32(gpu, statBuffer, 0, M * K * C);
        const n = maxSlots;
        sums.forEach((s, m) => {
          for (let k = 0; k < K; k++) {
            for (let u = 0; u < n; u++) s[k]! += stats[(m * K + k) * C + u]!;
          }
        });
        continue;
      }
      const partials = await readF32(gpu, partialBuffer, 0, count * M * K);
      for (let c = 0; c < count; c++) {
        sums.forEach((s, m) => {
          const at = (c * M + m) * K;
          for (let k = 0; k < K; k++) s[k]! += partials[at + k]!;
        });
      }
    }

    return items.map((item, m) => {
      const sum = (k: number) => sums[m]![k]!;
      const tree = item.tree;
      // ‖x̄‖² with x̄ = (Σ f / N)·E, in float64.
      let meanSq = 0;
      for (let d = 0; d < D; d++) {
        let x = 0;
        for (let f = 0; f < tree.nFeatures; f++) {
          x += sum(E + S + f) / rows * item.model.embedding[f * D + d]!;
        }
        meanSq += x * x;
      }
      const k = E + S + F;
      const evalTotals: EvalTotals = {
        rows,
        sqErr: ends[m]!.map((_, e) => sum(e)),
        sqDev: sum(k + 2) - rows * meanSq,
        l0: sum(k),
        trueL0: sum(k + 1),
        fires: Array.from({ length: S }, (_, j) => sum(E + j)),
        shrink: sum(k + 3),
        shrinkRows: sum(k + 4),
        probes: plans[m]!.probes.map((_, q) => sum(k + 5 + q)),
      };
      return finishMetrics(item, evalTotals, dataSeed, plans[m]!);
    });
  } finally {
    for (const buffer of buffers) buffer.destroy();
  }
}

/**
 * Scores SAEs on held-out rows of their trees, on the GPU: MCC (encoder and decoder), explained
 * variance (full SAE and each Matryoshka prefix), L0 beside the tree's true L0, dead latents,
 * shrinkage, and the latent-0 hedging/absorption readings (see {@link SaeMetrics}).
 *
 * Several SAEs (same dIn and dSae; each with its own tree, toy model and prefixes) are evaluated in
 * the same dispatches; all see the rows of the same evaluation seed. `evaluateCpu` of
 * `evaluate_cpu.ts` computes the same in float64 without a GPU.
 *
 * @param items one SAE with its toy model and tree, or a list of them.
 * @param options `rows` (default 100,000), `seed` (default 0), `batchRows` (distinct rows per chunk).
 * @param gpu the device (default: `getGpu()`).
 * @returns the metrics of the item, or of each item in order.
 * @throws {RangeError} naming the item or option that is invalid; `GpuUnavailableError` without
 *   a GPU.
 * @example
 * ```ts ignore
 * const metrics = await evaluate({ sae, model, tree }, { rows: 100_000 });
 * console.log(metrics.mccDecoder, metrics.explainedVariance, metrics.l0, metrics.trueL0);
 * ```
 */
export function evaluate(
  items: EvaluateItem,
  options?: EvaluateOptions,
  gpu?: Gpu,
): Promise<SaeMetrics>;
/** {@link evaluate} of several SAEs at once: one result per item, in order. */
export function evaluate(
  items: readonly EvaluateItem[],
  options?: EvaluateOptions,
  gpu?: Gpu,
): Promise<SaeMetrics[]>;
export async function evaluate(
  items: EvaluateItem | readonly EvaluateItem[],
  options: EvaluateOptions = {},
  gpu?: Gpu,
): Promise<SaeMetrics | SaeMetrics[]> {
  const list = Array.isArray(items) ? items : [items as EvaluateItem];
  const metrics = await evaluateOnGpu(list, options, gpu ?? await getGpu());
  return Array.isArray(items) ? metrics : metrics[0]!;
}

/**
 * The per-edge scorecard of one SAE on held-out rows of its tree, on the GPU: every parent–child
 * edge read on the parent's Hungarian-matched latent (encoder and decoder cosine with the child,
 * absorption gap), summaries per tree depth and per Matryoshka prefix, per-latent precision,
 * recall and F1, and uniqueness (`scorecard.ts`). The same as `evaluate(item).scorecard`.
 *
 * @param item the SAE with its toy model and tree.
 * @param options `rows` (default 100,000) and `seed` (default 0) of the held-out rows.
 * @param gpu the device (default: `getGpu()`).
 * @example
 * ```ts ignore
 * const card = await edgeScores({ sae, model, tree });
 * for (const e of card.edges) console.log(e.parent, e.child, e.encoderCos, e.absorptionGap);
 * ```
 */
export async function edgeScores(
  item: EvaluateItem,
  options: EvaluateOptions = {},
  gpu?: Gpu,
): Promise<Scorecard> {
  return (await evaluate(item, options, gpu)).scorecard;
}
