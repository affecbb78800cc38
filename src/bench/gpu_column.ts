/**
 * The GPU column of the benchmark: `trainToySaes` training M copies of the shape's β = 0.25 SAE
 * together (one shared data stream), timed end to end per call (setup, all steps, the final read
 * back), with the number of steps calibrated so that a call takes about the repetition budget.
 */
import type { Gpu } from "../gpu/device.ts";
import { initSaeRandom } from "../sae/init.ts";
import { LOSS_WORDS } from "../sae/model_table.ts";
import { paramLayout } from "../sae/layout.ts";
import { MatryoshkaSAE } from "../sae/sae.ts";
import { type TrainRun, trainToySaes } from "../sae/train.ts";
import type { TreeFeatureGenerator } from "../toy/tree.ts";
import { benchSaeConfig, type BenchShape } from "./shapes.ts";
import { calibratedRepetitions, type Cell, failedCell, measuredCell, timeIt } from "./timing.ts";

/** The data one shape's models train on. */
export interface ShapeData {
  shape: BenchShape;
  tree: TreeFeatureGenerator;
  /** The toy model's embedding `[nFeatures][dIn]`. */
  embedding: Float32Array;
}

/**
 * Bytes of the GPU buffers that grow with M, per model: parameters, gradient, Adam's two moments
 * (4 × P floats), the loss record and the training state. The training kernel's scratch comes on
 * top (it depends on the kernel, not on the model count alone), and the fused kernel rounds P up
 * to a multiple of 4 (at most 3 floats more per buffer).
 */
export function gpuBytesPerModel(dIn: number, dSae: number): number {
  return 4 * (4 * paramLayout(dIn, dSae).size + LOSS_WORDS + 2);
}

/** M runs of the shape's β = 0.25 SAE, randomly initialised (SAELens's init), one data stream. */
export function benchRuns(data: ShapeData, models: number): TrainRun[] {
  const config = benchSaeConfig(data.shape);
  const template = new MatryoshkaSAE(config);
  initSaeRandom(template, 0);
  const model = { embedding: data.embedding };
  return Array.from({ length: models }, (_, m) => ({
    sae: new MatryoshkaSAE(config, template.params.slice()),
    model,
    tree: data.tree,
    name: `bench-${m}`,
  }));
}

/**
 * SAE-steps per second of `trainToySaes` on M models: calibration runs (the warm-up, including
 * the pipeline's compilation), then `repetitions` timed calls. A shape the trainer refuses gives
 * an "n/a" cell with its reason.
 */
export async function measureGpuCell(
  gpu: Gpu,
  data: ShapeData,
  models: number,
  timing: { repSeconds: number; repetitions: number },
): Promise<Cell> {
  try {
    const runs = benchRuns(data, models);
    const run = (steps: number) =>
      timeIt(() =>
        trainToySaes(runs, { steps, quiet: true, seed: 0, batchSize: data.shape.batch }, gpu)
      );
    const reps = await calibratedRepetitions(run, models, { ...timing, startN: 4 });
    return measuredCell(reps);
  } catch (error) {
    return failedCell(error);
  }
}
