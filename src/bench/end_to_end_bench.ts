/**
 * The whole-command parts of the benchmark beside training: `evaluate()` on many SAEs (seconds
 * per SAE at the default 100,000 held-out rows), and `deno task sweep` end to end as a subprocess
 * (its printed split into training, evaluation and the rest).
 */
import type { Gpu } from "../gpu/device.ts";
import { evaluate } from "../metrics/evaluate.ts";
import { DEFAULT_EVAL_ROWS } from "../metrics/evaluate_cpu.ts";
import { NOTEBOOK_SAE_CONFIG } from "../sae/config.ts";
import { initSaeToMatchModel } from "../sae/init.ts";
import { MatryoshkaSAE } from "../sae/sae.ts";
import { PUBLISHED_STEPS } from "../sae/train.ts";
import { balancedTree, unbalancedTree } from "../toy/notebook_trees.ts";
import { ToyModel } from "../toy/toy_model.ts";
import { median, timeIt } from "./timing.ts";

/**
 * The evaluation of M SAEs in one call.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { EvalTiming } from "./end_to_end_bench.ts";
 * const t: EvalTiming = { models: 256, rows: 100_000, seconds: 0.16, msPerSae: 0.625 };
 * assert.equal(t.seconds / t.models * 1e3, t.msPerSae);
 * ```
 */
export interface EvalTiming {
  /** SAEs evaluated together. */
  models: number;
  /** Held-out rows per SAE. */
  rows: number;
  /** Median seconds of one call (after a warm-up call that compiles the kernels). */
  seconds: number;
  /** Milliseconds per SAE. */
  msPerSae: number;
}

/**
 * Times `evaluate()` on `models` notebook SAEs (β = 0.25, initialised to match the toy model),
 * alternating the notebook's two trees as the default sweep does.
 */
export async function timeEvaluation(
  gpu: Gpu,
  models: number,
  { rows = DEFAULT_EVAL_ROWS, repetitions = 3 }: { rows?: number; repetitions?: number } = {},
): Promise<EvalTiming> {
  const toy = new ToyModel({ nFeatures: 4, hiddenDim: 50, seed: 0 });
  const trees = [balancedTree(), unbalancedTree()];
  const items = Array.from({ length: models }, (_, m) => {
    const sae = new MatryoshkaSAE({
      ...NOTEBOOK_SAE_CONFIG,
      matryoshkaInnerLossMultipliers: [0.25, 1],
    });
    initSaeToMatchModel(sae, toy, { noiseLevel: 0, featureOrdering: [0, 1, 2, 3] });
    return { sae, model: toy, tree: trees[m % 2]! };
  });
  await evaluate(items, { rows }, gpu);
  const times: number[] = [];
  for (let r = 0; r < repetitions; r++) {
    times.push(await timeIt(() => evaluate(items, { rows }, gpu)));
  }
  const seconds = median(times);
  return { models, rows, seconds, msPerSae: seconds / models * 1e3 };
}

/**
 * One sweep run end to end.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { SweepTiming } from "./end_to_end_bench.ts";
 * const t: SweepTiming = {
 *   label: "default",
 *   args: [],
 *   saes: 156,
 *   saeSteps: 156 * 24_415,
 *   seconds: 100,
 *   runs: [100],
 *   training: 90,
 *   evaluation: 2,
 *   rate: 156 * 24_415 / 100,
 * };
 * assert.ok(t.training / t.seconds > 0.85); // the training share
 * ```
 */
export interface SweepTiming {
  /** What the run is (`default`, `256 β × 1,000 steps`). */
  label: string;
  /** The sweep's flags (besides `--quiet --out`). */
  args: string[];
  /** SAEs trained. */
  saes: number;
  /** SAE-steps trained. */
  saeSteps: number;
  /** Wall time of the subprocess (Deno start-up included), seconds: the median of the runs. */
  seconds: number;
  /** Wall time of each run, seconds. */
  runs: number[];
  /** Seconds in training, as the run nearest the median printed (kernels' compilation included). */
  training: number;
  /** Seconds in evaluation, as the run nearest the median printed. */
  evaluation: number;
  /** SAE-steps per second end to end. */
  rate: number;
}

/** The default sweep and the wide one of the target (one tree, 256 β, 1,000 steps). */
export const BENCH_SWEEPS: readonly { label: string; args: string[]; steps: number }[] = [
  { label: "default (2 trees × 22 β × 3 seeds + refinement)", args: [], steps: PUBLISHED_STEPS },
  {
    label: "256 β × 1,000 steps, one tree, --refine 0",
    args: [
      "--child-probs",
      "0.15,0.15,0.15",
      "--betas",
      Array.from({ length: 256 }, (_, i) => String(i / 256)).join(","),
      "--seeds",
      "1",
      "--steps",
      "1000",
      "--refine",
      "0",
    ],
    steps: 1000,
  },
];

/**
 * Runs `deno run -A <script> <args> --quiet --out <temporary folder>` and reads its printed
 * summary (`N chunks in T s: training …, evaluation …`, `wrote …(N SAEs)`): `repetitions` times
 * (default 3) while a run takes under `repeatBelowSeconds` (default 15), reporting the median
 * time (and the split of the run nearest it).
 *
 * @throws {Error} with the tail of its stderr when the sweep fails or prints no summary.
 */
export async function timeSweep(
  script: string,
  sweep: { label: string; args: string[]; steps: number },
  { repetitions = 3, repeatBelowSeconds = 15 }: {
    repetitions?: number;
    repeatBelowSeconds?: number;
  } = {},
): Promise<SweepTiming> {
  const runs: SweepTiming[] = [];
  while (runs.length < repetitions) {
    const run = await timeSweepOnce(script, sweep);
    runs.push(run);
    if (run.seconds >= repeatBelowSeconds) break;
  }
  const seconds = runs.map((r) => r.seconds);
  const mid = median(seconds);
  // The printed split of the run nearest the median.
  const nearest = runs.reduce((a, b) =>
    Math.abs(b.seconds - mid) < Math.abs(a.seconds - mid) ? b : a
  );
  return { ...nearest, seconds: mid, runs: seconds, rate: nearest.saeSteps / mid };
}

async function timeSweepOnce(
  script: string,
  sweep: { label: string; args: string[]; steps: number },
): Promise<SweepTiming> {
  const out = await Deno.makeTempDir({ prefix: "bench_sweep_" });
  try {
    const args = ["run", "-A", script, ...sweep.args, "--quiet", "--out", `${out}/sweep`];
    const start = performance.now();
    const result = await new Deno.Command(Deno.execPath(), {
      args,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const seconds = (performance.now() - start) / 1000;
    const stdout = new TextDecoder().decode(result.stdout);
    const split = stdout.match(/chunks? in [\d.]+ s: training ([\d.]+) s .*evaluation ([\d.]+) s/);
    const saes = stdout.match(/^wrote .*\((\d+) SAEs\)$/m);
    if (!result.success || !split || !saes) {
      const stderr = new TextDecoder().decode(result.stderr).trim().split("\n").slice(-3);
      throw new Error(`deno task sweep failed (exit ${result.code}): ${stderr.join(" / ")}`);
    }
    const n = Number(saes[1]);
    return {
      label: sweep.label,
      args: sweep.args,
      saes: n,
      saeSteps: n * sweep.steps,
      seconds,
      runs: [seconds],
      training: Number(split[1]),
      evaluation: Number(split[2]),
      rate: n * sweep.steps / seconds,
    };
  } finally {
    await Deno.remove(out, { recursive: true });
  }
}
