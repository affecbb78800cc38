/**
 * Timing helpers of the benchmark: medians, a cell's result (repetitions of SAE-steps per second,
 * or "n/a" with the reason), and calibrated repetitions of a fixed amount of work.
 */

/**
 * One timed repetition: how many SAE-steps (models × steps) ran in how many seconds.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { calibratedRepetitions, type Repetition } from "./timing.ts";
 * const run = (n: number) => Promise.resolve(n * 0.01); // n steps take 10 ms each
 * const timing = { repSeconds: 0.1, repetitions: 2 };
 * const reps: Repetition[] = await calibratedRepetitions(run, 2, timing); // 2 models per step
 * assert.deepEqual(reps, [{ saeSteps: 20, seconds: 0.1 }, { saeSteps: 20, seconds: 0.1 }]);
 * ```
 */
export interface Repetition {
  /** SAE-steps in this repetition: models × training steps. */
  saeSteps: number;
  /** Wall time of the repetition, seconds. */
  seconds: number;
}

/**
 * A measured cell: its repetitions and their median rate.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type MeasuredCell, measuredCell } from "./timing.ts";
 * const cell: MeasuredCell = measuredCell([
 *   { saeSteps: 1_000, seconds: 0.5 },
 *   { saeSteps: 1_000, seconds: 0.25 },
 *   { saeSteps: 1_000, seconds: 1 },
 * ]);
 * assert.equal(cell.rate, 2_000); // the median of 2,000, 4,000 and 1,000 SAE-steps/s
 * assert.equal(cell.note, undefined);
 * ```
 */
export interface MeasuredCell {
  /** Always `ok`: tells a measured cell from a {@link SkippedCell}. */
  status: "ok";
  /** Median over {@link reps} of SAE-steps per second. */
  rate: number;
  /** The timed repetitions (the calibration runs before them are not included). */
  reps: Repetition[];
  /** A caveat printed under the table (e.g. only some of the models were reached). */
  note?: string;
}

/**
 * A cell that was not measured, and why.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { failedCell, type SkippedCell } from "./timing.ts";
 * const cell: SkippedCell = failedCell(new Error("out of memory\n    at train (train.ts:1:1)"));
 * assert.deepEqual(cell, { status: "na", reason: "out of memory" }); // the first line only
 * ```
 */
export interface SkippedCell {
  /** Always `na`: tells a skipped cell from a {@link MeasuredCell}. */
  status: "na";
  /** Why it was not measured, printed as a footnote (e.g. the error's first line). */
  reason: string;
}

/**
 * One cell of the table.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type Cell, measuredCell, skippedCell } from "./timing.ts";
 * const show = (cell: Cell) => cell.status === "ok" ? `${cell.rate} SAE-steps/s` : "n/a";
 * assert.equal(show(measuredCell([{ saeSteps: 300, seconds: 0.5 }])), "600 SAE-steps/s");
 * assert.equal(show(skippedCell("PyTorch skipped: not installed")), "n/a");
 * ```
 */
export type Cell = MeasuredCell | SkippedCell;

/** The median of `values` (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError("median: no values given");
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** A measured cell from its repetitions (rate = median of saeSteps / seconds). */
export function measuredCell(reps: Repetition[], note?: string): MeasuredCell {
  if (reps.length === 0) throw new RangeError("measuredCell: no repetitions given");
  const rate = median(reps.map((r) => r.saeSteps / r.seconds));
  return { status: "ok", rate, reps, ...(note ? { note } : {}) };
}

/** A skipped cell. */
export function skippedCell(reason: string): SkippedCell {
  return { status: "na", reason };
}

/** The cell's error message as a skipped cell. */
export function failedCell(error: unknown): SkippedCell {
  const message = error instanceof Error ? error.message : String(error);
  return skippedCell(message.split("\n")[0]!);
}

/** Seconds taken by `work`. */
export async function timeIt(work: () => Promise<unknown> | unknown): Promise<number> {
  const start = performance.now();
  await work();
  return (performance.now() - start) / 1000;
}

/**
 * Calibrates `n` so that `run(n)` takes about `repSeconds` (the calibration runs are the warm-up),
 * then times `repetitions` runs of that `n`.
 *
 * @param run does `n` units of work (e.g. `n` training steps of all models) and returns seconds.
 * @param saeStepsPerUnit SAE-steps in one unit (e.g. M models for one step).
 * @param startN the first `n` tried.
 */
export async function calibratedRepetitions(
  run: (n: number) => Promise<number>,
  saeStepsPerUnit: number,
  { repSeconds, repetitions, startN = 1 }: {
    repSeconds: number;
    repetitions: number;
    startN?: number;
  },
): Promise<Repetition[]> {
  let n = startN;
  await run(n); // warm-up: pipeline compilation and first-use costs are not measured
  let seconds = await run(n);
  // Grow n until a run takes a third of the budget (setup costs then no longer dominate).
  while (seconds < repSeconds / 3) {
    n = Math.ceil(n * Math.min(8, repSeconds / Math.max(seconds, 1e-3)));
    seconds = await run(n);
  }
  n = Math.max(1, Math.round(n * repSeconds / seconds));
  const reps: Repetition[] = [];
  for (let r = 0; r < repetitions; r++) {
    reps.push({ saeSteps: n * saeStepsPerUnit, seconds: await run(n) });
  }
  return reps;
}
