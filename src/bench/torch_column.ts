/**
 * The PyTorch columns of the benchmark: torch_sae.py training M SAEs of the shape's β = 0.25
 * configuration, one SAE at a time (`loop`, as researchers do today: own optimiser, own batches)
 * or all together as stacked tensors (`batched`, one shared batch per step).
 */
import type { ShapeData } from "./gpu_column.ts";
import { benchSaeConfig } from "./shapes.ts";
import { type Cell, failedCell, measuredCell, type Repetition } from "./timing.ts";
import { type TorchRunner, torchSae, torchWorld } from "./torch_runner.ts";

/** How torch_sae.py trains M models. */
export type TorchVariant = "loop" | "batched";

/** SAE-steps per second of torch_sae.py on M models (warm-up steps first, then timed reps). */
export async function measureTorchCell(
  runner: TorchRunner,
  data: ShapeData,
  models: number,
  variant: TorchVariant,
  { repSeconds, repetitions }: { repSeconds: number; repetitions: number },
): Promise<Cell> {
  try {
    const { shape } = data;
    const response = await runner.request<{ reps: Repetition[]; modelsTouched: number }>({
      task: "throughput",
      variant,
      world: torchWorld(data.tree, data.embedding, shape.dIn),
      sae: torchSae(benchSaeConfig(shape)),
      models,
      batch: shape.batch,
      warmupSteps: variant === "loop" ? 20 : 2,
      repetitions,
      repSeconds,
      seed: 0,
    });
    const note = variant === "loop" && response.modelsTouched < models
      ? `PyTorch loop at M = ${models}: the time budget reached ${response.modelsTouched} of the ` +
        `${models} models (the rate does not depend on M: one SAE after another)`
      : undefined;
    return measuredCell(response.reps, note);
  } catch (error) {
    return failedCell(error);
  }
}
