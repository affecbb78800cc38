/**
 * The CPU-reference column of the benchmark: the float64 plain-TypeScript `referenceTrainStep`
 * looped over the M models, one batch per step shared by all models (as the GPU path shares it),
 * sampled and embedded on the host by `sampleBatchCpu` + `embedCpu`. Each repetition runs for a
 * fixed time and counts the SAE-steps done (it may stop part-way through a step's models).
 */
import { PUBLISHED_OPTIMIZER } from "../sae/train_settings.ts";
import { newAdamState, referenceTrainStep } from "../reference/optimizer_reference.ts";
import type { AdamState } from "../reference/optimizer_reference.ts";
import { initSaeRandom } from "../sae/init.ts";
import { MatryoshkaSAE } from "../sae/sae.ts";
import { embedCpu, sampleBatchCpu } from "../toy/cpu_sampler.ts";
import type { ShapeData } from "./gpu_column.ts";
import { benchSaeConfig } from "./shapes.ts";
import { type Cell, failedCell, measuredCell, type Repetition } from "./timing.ts";

/**
 * SAE-steps per second of the CPU reference on M models. Models are built when first reached, so
 * a large M costs memory only for the models the time budget reaches; the cell's note says so.
 */
export function measureCpuCell(
  data: ShapeData,
  models: number,
  { repSeconds, repetitions }: { repSeconds: number; repetitions: number },
): Cell {
  try {
    const { shape, tree, embedding } = data;
    const config = benchSaeConfig(shape);
    const template = new MatryoshkaSAE(config);
    initSaeRandom(template, 0);
    const built: { params: Float64Array; state: AdamState }[] = [];
    const model = (m: number) =>
      built[m] ??= {
        params: Float64Array.from(template.params),
        state: newAdamState(template.layout.size),
      };
    const shapeOf = { groups: 1, batch: shape.batch, nFeatures: tree.nFeatures, dIn: shape.dIn };
    let step = 0;
    const batch = () => {
      const features = sampleBatchCpu(tree, { seed: 0, step: step++, batchSize: shape.batch });
      return embedCpu(features, embedding, shapeOf);
    };
    // Warm-up: one step of the first model (JIT, allocation).
    referenceTrainStep(
      model(0).params,
      model(0).state,
      config,
      PUBLISHED_OPTIMIZER,
      batch(),
      shape.batch,
    );
    const reps: Repetition[] = [];
    for (let r = 0; r < repetitions; r++) {
      const start = performance.now();
      const elapsed = () => (performance.now() - start) / 1000;
      let saeSteps = 0;
      outer: while (true) {
        const x = batch();
        for (let m = 0; m < models; m++) {
          const { params, state } = model(m);
          referenceTrainStep(params, state, config, PUBLISHED_OPTIMIZER, x, shape.batch);
          saeSteps++;
          if (elapsed() >= repSeconds) break outer;
        }
      }
      reps.push({ saeSteps, seconds: elapsed() });
    }
    const reached = built.filter(Boolean).length;
    const note = reached < models
      ? `CPU reference at M = ${models}: the time budget reached ${reached} of the ${models} ` +
        `models (the rate does not depend on M: one model after another)`
      : undefined;
    return measuredCell(reps, note);
  } catch (error) {
    return failedCell(error);
  }
}
