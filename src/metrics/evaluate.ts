/**
 * The synthetic-SAE evaluation suite on the GPU (`shaders/evaluate.wgsl`): M SAEs, each with its
 * own tree and toy model, are scored on held-out rows sampled in-kernel (the rows and the metrics'
 * definitions are in `evaluate_cpu.ts`, whose float64 computation is this one's oracle).
 *
 * Per chunk of rows, one submit: `rows_pass` (sample, embed, encode, decode every prefix, per-row
 * statistics) then `reduce_pass` (per-model, per-statistic sum and centred sum of squares over the
 * chunk, in a fixed order). Only those pairs are read back, and merged across chunks in float64:
 * sums added, the x columns' centred sums combined by Chan et al.'s parallel variance formula, so
 * the total sum of squares does not suffer the cancellation of `Σ‖x‖² − N‖x̄‖²`. MCC and the
 * latent-0 readings depend on the weights only and are computed on the host.
 */
import { getGpu, type Gpu } from "../gpu/device.ts";
import { createStorage, readF32, uploadStorage, uploadUniform } from "../gpu/buffers.ts";
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
  type SaeMetrics,
} from "./evaluate_cpu.ts";
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
/** Default rows per chunk. */
const DEFAULT_BATCH_ROWS = 16_384;
/** Most rows per chunk: chunk counts stay exact in float32 sums. */
const MAX_BATCH_ROWS = 2 ** 24;
/** Most bytes of the per-row scratch buffer when batchRows is not given. */
const ROWS_BUDGET_BYTES = 256 * 2 ** 20;
/** Most bytes of chunk partials held on the GPU before they are read back and merged. */
const PARTIALS_BUDGET_BYTES = 16 * 2 ** 20;

/** Words of the `EvalRun` uniform. */
const RUN_WORDS = 12;

/** Running float64 totals of one model, merged chunk by chunk. */
class Totals {
  rows = 0;
  /** Sum of every statistic column, `[K]`. */
  readonly sums: Float64Array;
  /** Running mean and centred sum of squares of the x columns, `[D]`. */
  readonly xMean: Float64Array;
  readonly xM2: Float64Array;

  constructor(k: number, d: number, readonly xCol: number) {
    this.sums = new Float64Array(k);
    this.xMean = new Float64Array(d);
    this.xM2 = new Float64Array(d);
  }

  /** Adds one chunk of `n` rows: `pairs[k] = (Σ, Σ (v − chunk mean)²)` per column. */
  merge(n: number, pairs: Float32Array): void {
    const total = this.rows + n;
    for (let k = 0; k < this.sums.length; k++) this.sums[k]! += pairs[2 * k]!;
    for (let d = 0; d < this.xMean.length; d++) {
      const k = this.xCol + d;
      const chunkMean = pairs[2 * k]! / n;
      const delta = chunkMean - this.xMean[d]!;
      this.xM2[d]! += pairs[2 * k + 1]! + delta * delta * this.rows * n / total;
      this.xMean[d]! += delta * n / total;
    }
    this.rows = total;
  }
}

/** Rows per chunk: the option, or the default within the memory budget. */
function chunkRows(gpu: Gpu, options: EvaluateOptions, rows: number, bytesPerRow: number): number {
  if (options.batchRows !== undefined) {
    return Math.min(checkInteger("batchRows", options.batchRows, 1, MAX_BATCH_ROWS), rows);
  }
  const budget = Math.min(ROWS_BUDGET_BYTES, gpu.device.limits.maxStorageBufferBindingSize);
  const fit = Math.floor(budget / bytesPerRow);
  if (fit < 1) {
    throw new RangeError(
      `Cannot evaluate: one row of every model needs ${bytesPerRow} bytes of scratch, above ` +
        `the ${budget}-byte budget; evaluate fewer models per call`,
    );
  }
  return Math.min(rows, DEFAULT_BATCH_ROWS, fit);
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
  const K = E + D + S + 4;
  const cols = K + S + D + F;
  const C = chunkRows(gpu, options, rows, M * cols * 4);
  const chunks = Math.ceil(rows / C);
  const chunksPerRead = Math.max(
    1,
    Math.min(chunks, Math.floor(PARTIALS_BUDGET_BYTES / (M * K * 8))),
  );

  const world = packWorld(
    items.map((item) => ({ tree: item.tree, embedding: item.model.embedding, seed: dataSeed })),
    D,
  );
  const size = items[0]!.sae.layout.size;
  const params = new Float32Array(M * size);
  items.forEach((item, m) => params.set(item.sae.params, m * size));
  const info = new Uint32Array(M * (1 + E));
  items.forEach((item, m) => {
    info[m * (1 + E)] = item.sae.config.applyBDecToInput ? 1 : 0;
    for (let e = 0; e < E; e++) info[m * (1 + E) + 1 + e] = ends[m]![e] ?? S;
  });

  const buffers: GPUBuffer[] = [];
  const keep = (b: GPUBuffer) => (buffers.push(b), b);
  try {
    const runBuffer = keep(uploadUniform(gpu, "evaluate: run", new Uint32Array(RUN_WORDS)));
    const worldBuffer = keep(uploadStorage(gpu, "evaluate: tree_nodes (world)", world));
    const paramBuffer = keep(uploadStorage(gpu, "evaluate: params [M][P]", params));
    const infoBuffer = keep(uploadStorage(gpu, "evaluate: model_info [M][1+E]", info));
    const rowBuffer = keep(createStorage(gpu, "evaluate: rows [M][COLS][C]", M * cols * C * 4));
    const partialBuffer = keep(
      createStorage(gpu, "evaluate: partials [chunks][M][K][2]", chunksPerRead * M * K * 8),
    );
    const [rowsPipe, reducePipe] = await Promise.all([
      getPipeline(gpu, {
        label: "evaluate.wgsl:rows_pass",
        files: EVALUATE_SHADER_FILES,
        entryPoint: "rows_pass",
        constants: { ROW_WG },
      }),
      getPipeline(gpu, {
        label: "evaluate.wgsl:reduce_pass",
        files: EVALUATE_SHADER_FILES,
        entryPoint: "reduce_pass",
        constants: { RED_WG },
      }),
    ]);
    const rowsGroup = bindGroup(gpu, rowsPipe, {
      0: runBuffer,
      1: worldBuffer,
      2: paramBuffer,
      3: infoBuffer,
      4: rowBuffer,
    });
    const reduceGroup = bindGroup(gpu, reducePipe, {
      0: runBuffer,
      4: rowBuffer,
      5: partialBuffer,
    });

    const totals = items.map(() => new Totals(K, D, E));
    for (let first = 0; first < chunks; first += chunksPerRead) {
      const count = Math.min(chunksPerRead, chunks - first);
      const sizes: number[] = [];
      for (let c = 0; c < count; c++) {
        const start = (first + c) * C;
        const n = Math.min(C, rows - start);
        sizes.push(n);
        const run = [M, D, S, E, F, C, n, start, c, EVAL_STEP_BASE, EVAL_ROWS_PER_STEP, 0];
        gpu.device.queue.writeBuffer(runBuffer, 0, new Uint32Array(run));
        const encoder = gpu.device.createCommandEncoder({ label: "evaluate" });
        const pass = encoder.beginComputePass({ label: "evaluate" });
        dispatch(gpu, pass, rowsPipe, rowsGroup, Math.ceil((M * n) / ROW_WG));
        dispatch(gpu, pass, reducePipe, reduceGroup, M * K);
        pass.end();
        gpu.device.queue.submit([encoder.finish()]);
      }
      const partials = await readF32(gpu, partialBuffer, 0, count * M * K * 2);
      sizes.forEach((n, c) => {
        totals.forEach((t, m) => {
          const at = (c * M + m) * K * 2;
          t.merge(n, partials.subarray(at, at + K * 2));
        });
      });
    }

    return items.map((item, m) => {
      const t = totals[m]!;
      const sum = (k: number) => t.sums[k]!;
      const evalTotals: EvalTotals = {
        rows: t.rows,
        sqErr: ends[m]!.map((_, e) => sum(e)),
        sqDev: t.xM2.reduce((a, b) => a + b, 0),
        l0: sum(E + D + S),
        trueL0: sum(E + D + S + 1),
        fires: Array.from({ length: S }, (_, j) => sum(E + D + j)),
        shrink: sum(E + D + S + 2),
        shrinkRows: sum(E + D + S + 3),
      };
      return finishMetrics(item, evalTotals, dataSeed);
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
 * @param options `rows` (default 100,000), `seed` (default 0), `batchRows` (rows per chunk).
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
