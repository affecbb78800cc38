/**
 * Runs the whole benchmark: for each shape and each model count M, the GPU path, the CPU
 * reference and PyTorch (loop and batched); then the balanced experiment end to end against
 * PyTorch; then the targets. Cells whose single step would take too long (projected from the
 * previous M) are skipped with the projection as their reason, to keep the run short.
 */
import { describeAdapter, type Gpu } from "../gpu/device.ts";
import { paramLayout } from "../sae/layout.ts";
import { ToyModel } from "../toy/toy_model.ts";
import {
  BALANCED_BACKENDS,
  type BalancedSae,
  timeBalancedOnBackend,
  timeTorchBalanced,
} from "./balanced_bench.ts";
import { measureCpuCell } from "./cpu_column.ts";
import { gpuBytesPerModel, measureGpuCell, type ShapeData } from "./gpu_column.ts";
import { loadAverage, machineInfo } from "./machine.ts";
import type {
  BalancedResult,
  BenchResults,
  BenchRow,
  ShapeResult,
  SweepsResult,
} from "./results.ts";
import {
  type BenchShape,
  NOTEBOOK_SHAPE,
  SAELENS_SYNTHBENCH,
  saelensStepsPerSecond,
} from "./shapes.ts";
import { BENCH_SWEEPS, type EvalTiming, timeEvaluation, timeSweep } from "./end_to_end_bench.ts";
import { evaluateTargets } from "./targets.ts";
import { type Cell, skippedCell } from "./timing.ts";
import { measureTorchCell, type TorchVariant } from "./torch_column.ts";
import { TorchRunner } from "./torch_runner.ts";

/**
 * What to run.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type BenchOptions, runBench } from "./run_bench.ts";
 * import { getGpu } from "../gpu/device.ts";
 * const options: BenchOptions = {
 *   shapes: [], // no tables: only the header, skips and targets
 *   models: [1, 2],
 *   repetitions: 1,
 *   repSeconds: 0.01,
 *   maxStepSeconds: 1,
 *   torch: { skipped: "not in this example" },
 *   balanced: { skipped: "not in this example" },
 *   log: () => {}, // progress lines (default: stderr)
 * };
 * const results = await runBench(await getGpu(), options);
 * assert.deepEqual(results.settings, { models: [1, 2], repetitions: 1, repSeconds: 0.01 });
 * assert.deepEqual(results.balanced, { skipped: "not in this example" });
 * ```
 */
export interface BenchOptions {
  /** The shapes to measure, one table each. */
  shapes: readonly BenchShape[];
  /** Model counts M, ascending. */
  models: readonly number[];
  /** Timed repetitions per cell (the median is reported). */
  repetitions: number;
  /** Seconds per timed repetition. */
  repSeconds: number;
  /** Skip a GPU or batched-PyTorch cell whose one step of M models is projected above this. */
  maxStepSeconds: number;
  /** PyTorch: the interpreter and torch_sae.py, or why it is skipped. */
  torch: { python: string; script: string; threads: number } | { skipped: string };
  /** The balanced experiment, or why it is skipped. */
  balanced:
    | {
      /** Path of experiments/balanced.ts. */
      script: string;
      /** The notebook's SAEs for the PyTorch side. */
      saes: readonly BalancedSae[];
      /** The toy model's embedding of the experiment (seed 0). */
      embedding: Float32Array;
      /** Steps timed per SAE in PyTorch before extrapolating. */
      torchTimedSteps: number;
      /** The experiment's steps (the published 24,415). */
      totalSteps: number;
    }
    | { skipped: string };
  /** Model counts of the evaluation timing (default: none). */
  evaluationModels?: readonly number[];
  /** Path of experiments/sweep.ts: the sweeps end to end are timed (default: not run). */
  sweepScript?: string;
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
}

/** The tree, the toy model's embedding and the shape, built once per shape. */
export function shapeData(shape: BenchShape): ShapeData {
  const tree = shape.tree();
  const model = new ToyModel({
    nFeatures: tree.nFeatures,
    hiddenDim: shape.dIn,
    seed: shape.toyModelSeed,
    ...(shape.randomEmbedding ? { steps: 0 } : {}),
  });
  return { shape, tree, embedding: model.embedding };
}

function describe(cell: Cell): string {
  return cell.status === "ok" ? `${Math.round(cell.rate)} SAE-steps/s` : `n/a (${cell.reason})`;
}

/** Skips a cell when the previous M's cost projects one step of M models above the limit. */
class Projection {
  #secondsPerSaeStep: number | null = null;
  #from = 0;
  constructor(readonly maxStepSeconds: number) {}
  reason(models: number): string | null {
    if (this.#secondsPerSaeStep === null) return null;
    const step = this.#secondsPerSaeStep * models;
    if (step <= this.maxStepSeconds) return null;
    return `skipped: one step of ${models} models projected at ${step.toFixed(1)} s from ` +
      `M = ${this.#from} (limit ${this.maxStepSeconds} s)`;
  }
  record(models: number, cell: Cell): void {
    if (cell.status === "ok") {
      this.#secondsPerSaeStep = 1 / cell.rate;
      this.#from = models;
    }
  }
}

async function measureShape(
  gpu: Gpu,
  shape: BenchShape,
  options: BenchOptions,
  torch: TorchRunner | { skipped: string },
  log: (line: string) => void,
): Promise<ShapeResult> {
  if (shape.gpuOnly) return await measureGpuOnlyShape(gpu, shape, options, log);
  log(`${shape.id}: building the tree and toy model`);
  const data = shapeData(shape);
  const timing = { repSeconds: options.repSeconds, repetitions: options.repetitions };
  const gpuProjection = new Projection(options.maxStepSeconds);
  const batchedProjection = new Projection(options.maxStepSeconds);
  const torchCell = async (models: number, variant: TorchVariant, projection?: Projection) => {
    if ("skipped" in torch) return skippedCell(`PyTorch skipped: ${torch.skipped}`);
    const reason = projection?.reason(models);
    if (reason) return skippedCell(reason);
    const cell = await measureTorchCell(torch, data, models, variant, timing);
    projection?.record(models, cell);
    return cell;
  };
  const rows: BenchRow[] = [];
  for (const models of options.models) {
    const skipGpu = gpuProjection.reason(models);
    const gpuCell = skipGpu
      ? skippedCell(skipGpu)
      : await measureGpuCell(gpu, data, models, timing);
    gpuProjection.record(models, gpuCell);
    log(`${shape.id} M=${models} GPU: ${describe(gpuCell)}`);
    const cpuCell = measureCpuCell(data, models, timing);
    log(`${shape.id} M=${models} CPU reference: ${describe(cpuCell)}`);
    const loop = await torchCell(models, "loop");
    log(`${shape.id} M=${models} PyTorch loop: ${describe(loop)}`);
    const batched = await torchCell(models, "batched", batchedProjection);
    log(`${shape.id} M=${models} PyTorch batched: ${describe(batched)}`);
    rows.push({ models, gpu: gpuCell, cpu: cpuCell, torchLoop: loop, torchBatched: batched });
  }
  return shapeResult(shape, rows, data.tree.nFeatures);
}

/** A shape's table: its description and sizes, and the measured rows. */
function shapeResult(shape: BenchShape, rows: BenchRow[], nFeatures: number): ShapeResult {
  return {
    id: shape.id,
    title: shape.title,
    dIn: shape.dIn,
    dSae: shape.dSae,
    prefixes: [...shape.prefixes],
    batch: shape.batch,
    nFeatures,
    paramsPerModel: paramLayout(shape.dIn, shape.dSae).size,
    gpuBytesPerModel: gpuBytesPerModel(shape.dIn, shape.dSae),
    rows,
  };
}

/**
 * A GPU-only shape ({@link BenchShape.gpuOnly}): skipped on a CPU adapter; on a GPU, trainToySaes
 * at its model counts, each cell's note projecting 200M samples per SAE against SAELens's quote.
 */
async function measureGpuOnlyShape(
  gpu: Gpu,
  shape: BenchShape,
  options: BenchOptions,
  log: (line: string) => void,
): Promise<ShapeResult> {
  const models = shape.gpuOnly!.models;
  const result = (rows: BenchRow[], nFeatures: number) => shapeResult(shape, rows, nFeatures);
  const noColumn = skippedCell(
    `not measured at this scale: compared with SAELens's quoted ${SAELENS_SYNTHBENCH.minutes[0]}–` +
      `${SAELENS_SYNTHBENCH.minutes[1]} min per SAE for 200M samples on an H100`,
  );
  if (gpu.summary.isFallback) {
    const why = skippedCell(
      `skipped: GPU adapters only (this is a CPU adapter, ${gpu.summary.name}; one step ` +
        `of one SAE is about 25G multiply-adds)`,
    );
    log(`${shape.id}: ${why.reason}`);
    return result(
      models.map((m) => ({
        models: m,
        gpu: why,
        cpu: noColumn,
        torchLoop: noColumn,
        torchBatched: noColumn,
      })),
      0,
    );
  }
  log(`${shape.id}: building the tree and random feature directions`);
  const data = shapeData(shape);
  const timing = { repSeconds: options.repSeconds, repetitions: options.repetitions };
  const steps = Math.ceil(SAELENS_SYNTHBENCH.samples / shape.batch);
  const rows: BenchRow[] = [];
  for (const m of models) {
    let cell = await measureGpuCell(gpu, data, m, timing);
    if (cell.status === "ok") {
      const minutes = steps * m / cell.rate / 60;
      const speedup = cell.rate / saelensStepsPerSecond(shape.batch);
      cell = {
        ...cell,
        note: `200M samples (${steps.toLocaleString("en-US")} steps) per SAE: ` +
          `${minutes.toFixed(1)} min for the ${m} together, ${speedup.toFixed(1)}× ` +
          `SAELens's quoted rate for one (${SAELENS_SYNTHBENCH.minutes[0]} min per SAE)`,
      };
    }
    log(`${shape.id} M=${m} GPU: ${describe(cell)}`);
    rows.push({ models: m, gpu: cell, cpu: noColumn, torchLoop: noColumn, torchBatched: noColumn });
  }
  return result(rows, data.tree.nFeatures);
}

async function measureBalanced(
  options: BenchOptions,
  torch: TorchRunner | { skipped: string },
  log: (line: string) => void,
): Promise<BalancedResult> {
  const b = options.balanced;
  if ("skipped" in b) return { skipped: b.skipped };
  const result: BalancedResult = { backends: [] };
  for (const backend of BALANCED_BACKENDS) {
    log(`balanced (${backend.backend}): running deno task balanced end to end, warm and cold`);
    const timed = await timeBalancedOnBackend(b.script, backend, options.repetitions);
    result.backends!.push(timed);
    log(
      `balanced (${backend.backend}): ` + (timed.error ?? `${timed.warm!.seconds.toFixed(2)} s ` +
          `warm, ${timed.cold!.seconds.toFixed(2)} s cold (${timed.warm!.adapter ?? "?"})`),
    );
    if (backend.backend !== "auto") continue;
    if (timed.warm) result.endToEnd = timed.warm;
    else result.endToEndError = timed.error;
  }
  if ("skipped" in torch) {
    result.torchError = `PyTorch skipped: ${torch.skipped}`;
    return result;
  }
  log(`balanced: PyTorch, ${b.torchTimedSteps} steps of each SAE`);
  try {
    result.torch = await timeTorchBalanced(torch, b.saes, b.embedding, {
      timedSteps: b.torchTimedSteps,
      totalSteps: b.totalSteps,
    });
    log(`balanced: PyTorch extrapolated to ${result.torch.seconds.toFixed(1)} s`);
  } catch (error) {
    result.torchError = error instanceof Error ? error.message : String(error);
    log(`balanced: PyTorch failed: ${result.torchError}`);
  }
  return result;
}

/**
 * The sweeps of {@link BENCH_SWEEPS} end to end, and batched PyTorch on 256 notebook SAEs (the
 * notebook table's cell when it has one, else measured here).
 */
async function measureSweeps(
  script: string,
  shapes: readonly ShapeResult[],
  options: BenchOptions,
  torch: TorchRunner | { skipped: string },
  log: (line: string) => void,
): Promise<SweepsResult> {
  const runs: SweepsResult["runs"] = [];
  for (const sweep of BENCH_SWEEPS) {
    log(`sweep: ${sweep.label}, end to end`);
    try {
      const timing = await timeSweep(script, sweep);
      log(
        `sweep: ${timing.seconds.toFixed(1)} s, training ${timing.training.toFixed(1)} s, ` +
          `evaluation ${timing.evaluation.toFixed(1)} s`,
      );
      runs.push(timing);
    } catch (error) {
      runs.push({
        label: sweep.label,
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }
  const models = 256;
  let torchBatched = shapes.find((s) => s.id === NOTEBOOK_SHAPE.id)?.rows.find((r) =>
    r.models === models
  )?.torchBatched;
  if (torchBatched?.status !== "ok" && !("skipped" in torch)) {
    log(`sweep: PyTorch batched, ${models} notebook SAEs`);
    torchBatched = await measureTorchCell(torch, shapeData(NOTEBOOK_SHAPE), models, "batched", {
      repSeconds: options.repSeconds,
      repetitions: options.repetitions,
    });
  }
  return { runs, ...(torchBatched ? { torchBatched } : {}) };
}

/**
 * Runs the benchmark and returns its results (targets included).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runBench } from "./run_bench.ts";
 * import { getGpu } from "../gpu/device.ts";
 * import { notebookTree } from "../toy/notebook_trees.ts";
 * const results = await runBench(await getGpu(), {
 *   shapes: [{
 *     id: "tiny",
 *     title: "tiny: d_in 8, d_sae 4",
 *     dIn: 8,
 *     dSae: 4,
 *     prefixes: [1, 4],
 *     batch: 16,
 *     tree: () => notebookTree(),
 *     toyModelSeed: 0,
 *   }],
 *   models: [1],
 *   repetitions: 1,
 *   repSeconds: 0.01,
 *   maxStepSeconds: 1,
 *   torch: { skipped: "not in this example" },
 *   balanced: { skipped: "not in this example" },
 *   log: () => {},
 * });
 * const [row] = results.shapes[0]!.rows;
 * assert.equal(row!.gpu.status, "ok"); // measured SAE-steps per second
 * assert.equal(row!.torchLoop.status, "na");
 * ```
 */
export async function runBench(gpu: Gpu, options: BenchOptions): Promise<BenchResults> {
  const log = options.log ?? ((line: string) => console.error(line));
  const loadAtStart = loadAverage();
  let torch: TorchRunner | { skipped: string };
  if ("skipped" in options.torch) {
    torch = { skipped: options.torch.skipped };
  } else {
    try {
      const { python, script, threads } = options.torch;
      torch = await TorchRunner.start(python, script, threads);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      torch = {
        skipped: `not available (${message}); install Debian's python3-torch ` +
          `(apt-get install -y python3-torch)`,
      };
      log(`PyTorch ${torch.skipped}`);
    }
  }
  try {
    const shapes: ShapeResult[] = [];
    for (const shape of options.shapes) {
      shapes.push(await measureShape(gpu, shape, options, torch, log));
    }
    const balanced = await measureBalanced(options, torch, log);
    const evaluation: EvalTiming[] = [];
    for (const models of options.evaluationModels ?? []) {
      const timing = await timeEvaluation(gpu, models, { repetitions: options.repetitions });
      log(
        `evaluation: ${models} SAEs in ${timing.seconds.toFixed(3)} s (${
          timing.msPerSae.toFixed(2)
        } ms per SAE)`,
      );
      evaluation.push(timing);
    }
    const sweeps = options.sweepScript
      ? await measureSweeps(options.sweepScript, shapes, options, torch, log)
      : undefined;
    const partial = {
      date: new Date().toISOString(),
      adapter: describeAdapter(gpu.summary),
      adapterIsFallback: gpu.summary.isFallback,
      machine: machineInfo(),
      load: { start: loadAtStart, end: loadAverage() },
      torch: torch instanceof TorchRunner ? torch.versions : torch,
      settings: {
        models: [...options.models],
        repetitions: options.repetitions,
        repSeconds: options.repSeconds,
      },
      shapes,
      balanced,
      ...(evaluation.length > 0 ? { evaluation } : {}),
      ...(sweeps ? { sweeps } : {}),
    };
    return { ...partial, targets: evaluateTargets(partial) };
  } finally {
    if (torch instanceof TorchRunner) await torch.close();
  }
}
