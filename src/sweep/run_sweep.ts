/**
 * `runSweep`: trains every combination of trees × β × seeds (one SAE each) on the GPU, chunk by
 * chunk, records each finished chunk, refines β* by bisection, runs the balance finder and writes
 * the outputs.
 *
 * Phases: the grid (this shard's combinations not yet recorded, in canonical order, split into
 * chunks of `chunk` SAEs trained together), then `refine` rounds: round r trains, for every tree
 * and seed, the midpoints between the tree's best β so far (rows of earlier rounds, mean over
 * seeds) and its nearest evaluated neighbours; all trees' SAEs of a round are trained together.
 * A shard trains only its grid part: refinement needs every grid row, so it is left to a
 * `--resume` run on the merged folder. With `maxChunks`, the run stops after that many chunks
 * (a later `resume` run continues where it stopped).
 */
import type { FigureFormat } from "../plot/figure_files.ts";
import { checkInteger } from "../check_value.ts";
import { getGpu, type Gpu } from "../gpu/device.ts";
import { checkWritable } from "../io/output_dir.ts";
import { MAX_BATCH_SIZE, MAX_STEPS, PUBLISHED_STEPS } from "../sae/train.ts";
import { MAX_SEED } from "../toy/rng.ts";
import {
  checkBetas,
  checkChoice,
  checkShard,
  checkTrees,
  DEFAULT_BETAS,
  formatShard,
  MAX_SWEEP_SAES,
  notebookSweepTrees,
  type Shard,
  showProbs,
  SweepAxisError,
  type SweepTree,
} from "./axes.ts";
import { BALANCE_OBJECTIVES, type BalanceObjective, refinementBetas } from "./balance.ts";
import { type Architecture, ARCHITECTURES, NOTEBOOK_SAE_CONFIG } from "../sae/config.ts";
import { BETA_FORMS, type BetaForm } from "../sae/notebook_saes.ts";
import {
  chunked,
  type Combination,
  combinationKey,
  gridCombinations,
  shardCombinations,
} from "./combinations.ts";
import {
  gridComplete,
  samplesOf,
  type TreeBalance,
  writeSweepCsv,
  writeSweepOutputs,
} from "./analysis.ts";
import type { SweepJson } from "./outputs.ts";
import type { SweepRow } from "./rows.ts";
import {
  isAbsentOrEmpty,
  lockSweepFolder,
  manifestDifference,
  manifestOf,
  readManifest,
  readRecords,
  SweepFolderError,
  type SweepSettings,
  writeManifest,
  writeRecord,
} from "./store.ts";
import { ToyModelCache, trainChunk } from "./train_chunk.ts";
import { DEFAULT_EVAL_ROWS, MAX_EVAL_ROWS } from "../metrics/evaluate_cpu.ts";
import { balanceLines, showBeta } from "./verdict.ts";

/**
 * Default number of seeds per (tree, β).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_SEEDS, resolveSweepOptions } from "./run_sweep.ts";
 * assert.equal(resolveSweepOptions({ out: "sweep" }).settings.seeds, DEFAULT_SEEDS);
 * ```
 */
export const DEFAULT_SEEDS = 3;
/**
 * Default SAEs per chunk.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_CHUNK, resolveSweepOptions } from "./run_sweep.ts";
 * assert.equal(resolveSweepOptions({ out: "sweep" }).chunk, DEFAULT_CHUNK);
 * ```
 */
export const DEFAULT_CHUNK = 256;
/**
 * Default refinement rounds.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_REFINE, resolveSweepOptions } from "./run_sweep.ts";
 * assert.equal(resolveSweepOptions({ out: "sweep" }).refine, DEFAULT_REFINE);
 * ```
 */
export const DEFAULT_REFINE = 2;
/**
 * The most refinement rounds: each halves the β interval, 20 rounds reach 1/10⁶ of a grid step.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAX_REFINE, resolveSweepOptions } from "./run_sweep.ts";
 * assert.equal(resolveSweepOptions({ out: "sweep", refine: MAX_REFINE }).refine, 20);
 * const tooMany = () => resolveSweepOptions({ out: "sweep", refine: MAX_REFINE + 1 });
 * assert.throws(tooMany, /^SweepAxisError: Invalid --refine: expected an integer from 0 to 20/);
 * ```
 */
export const MAX_REFINE = 20;
/**
 * Default balance tolerance.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_TOLERANCE, resolveSweepOptions } from "./run_sweep.ts";
 * assert.equal(resolveSweepOptions({ out: "sweep" }).tolerance, DEFAULT_TOLERANCE);
 * ```
 */
export const DEFAULT_TOLERANCE = 0.02;

/**
 * Settings of {@link runSweep}; every field but `out` has the CLI's default.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveSweepOptions, type SweepOptions } from "./run_sweep.ts";
 * const options: SweepOptions = { out: "sweep", betas: [Infinity, 0], seeds: 1, steps: 300 };
 * const { settings } = resolveSweepOptions(options); // checked, defaults filled in
 * assert.deepEqual([settings.betas, settings.batchSize], [[0, Infinity], 128]);
 * assert.deepEqual(settings.trees.map((t) => t.name), ["balanced", "unbalanced"]);
 * ```
 */
export interface SweepOptions {
  /** Output folder. */
  out: string;
  /** β grid (Infinity: the detached setup); default 0, 0.05, …, 1, ∞. */
  betas?: readonly number[];
  /** Seeds 0..seeds−1 (default 3). */
  seeds?: number;
  /** Trees (default: the notebook's `balanced` and `unbalanced`). */
  trees?: readonly SweepTree[];
  /** Optimiser steps per SAE (default 24,415, the published schedule). */
  steps?: number;
  /** Samples per step (default 128). */
  batchSize?: number;
  /** Adam learning rate (default 3e-4). */
  lr?: number;
  /** SAEs trained together and recorded together (default 256). */
  chunk?: number;
  /** Refinement rounds after the grid (default 2; 0: the grid alone). */
  refine?: number;
  /** Held-out rows of each SAE's metrics (default 100,000). */
  evalRows?: number;
  /** Balanceable when the largest |child component| at β* is below this (default 0.02). */
  tolerance?: number;
  /** What the finder minimises over edges (default `max`; refinement follows it). */
  objective?: BalanceObjective;
  /** How β weights the inner prefixes (default `uniform`, the notebook's). */
  betaForm?: BetaForm;
  /** The L1 coefficient of every SAE (default 3e-2, the notebook's; standard SAEs only). */
  l1Coefficient?: number;
  /** The SAEs' architecture (default `standard`, the notebook's ReLU + L1). */
  architecture?: Architecture;
  /**
   * k of TopK (an integer) and BatchTopK (any number above 0; default 1), at most the SAEs' width
   * (the trees' features).
   */
  k?: number;
  /** Run only this shard's grid combinations (default: all). */
  shard?: Shard | null;
  /** Continue the sweep recorded in `out` (its settings must match). */
  resume?: boolean;
  /** Stop after training this many chunks (default: no limit). */
  maxChunks?: number;
  /** Formats of every figure (default SVG only). */
  figureFormats?: readonly FigureFormat[];
  /** No progress bars. */
  quiet?: boolean;
  /** Where progress lines go (default `console.log`). */
  log?: (line: string) => void;
}

/**
 * What {@link runSweep} returns.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runSweep, type SweepResult } from "./run_sweep.ts";
 * const summary = (r: SweepResult) => `${r.rows.length} SAEs, complete: ${r.complete}`;
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/notes.txt`, "not a sweep");
 * // A folder of other files is refused before anything is trained: there is no result.
 * const run = runSweep({ out: dir, steps: 5, quiet: true, log: () => {} });
 * await assert.rejects(run.then(summary), /the folder holds other files/);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface SweepResult {
  /** The output folder. */
  out: string;
  /** True when every SAE of the sweep (this shard's grid, and refinement) is recorded. */
  complete: boolean;
  /** Chunks trained by this call. */
  chunksTrained: number;
  /** Every row recorded in `out`. */
  rows: SweepRow[];
  /** The balance finder per tree (empty unless complete). */
  balances: TreeBalance[];
  /** `sweep.json` (null unless complete). */
  json: SweepJson | null;
  /**
   * Seconds of this call: in all, training (kernels' compilation included) and evaluation.
   */
  seconds: { total: number; training: number; evaluation: number };
}

function positiveInt(flag: string, value: number, max?: number): number {
  return checkInteger(`--${flag}`, value, 1, max, SweepAxisError);
}

/** Refuses a grid larger than {@link MAX_SWEEP_SAES} before anything is built. */
function checkGridSize(settings: SweepSettings): void {
  const { trees, betas, seeds } = settings;
  const count = trees.length * betas.length * seeds;
  if (count <= MAX_SWEEP_SAES) return;
  const n = (v: number) => v.toLocaleString("en-US");
  throw new SweepAxisError(
    `Invalid --seeds / --betas / --tree: the grid would hold ${n(count)} SAEs (${trees.length} ` +
      `trees × ${betas.length} β × ${n(seeds)} seeds), at most ${n(MAX_SWEEP_SAES)} in one ` +
      `sweep (about ${
        (count * ROW_BYTES / 1e9).toFixed(1)
      } GB of rows in memory); use fewer seeds or ` +
      "β values, or run several sweeps",
  );
}

function positiveNumber(flag: string, value: number): number {
  if (!(Number.isFinite(value) && value > 0)) {
    throw new SweepAxisError(`Invalid --${flag}: expected a number > 0, got ${value}`);
  }
  return value;
}

function nonNegativeNumber(flag: string, value: number): number {
  if (!(Number.isFinite(value) && value >= 0)) {
    throw new SweepAxisError(`Invalid --${flag}: expected a number ≥ 0, got ${value}`);
  }
  return value;
}

/** The validated settings and run options of a sweep. */
export interface ResolvedSweepOptions {
  /** What decides the rows (recorded in the manifest). */
  settings: SweepSettings;
  /** SAEs per chunk. */
  chunk: number;
  /** Refinement rounds. */
  refine: number;
  /** Balance tolerance. */
  tolerance: number;
  /** What the finder minimises over edges. */
  objective: BalanceObjective;
  /** The shard, or null for the whole sweep. */
  shard: Shard | null;
  /** Chunks to train before stopping (Infinity: all). */
  maxChunks: number;
}

/**
 * Validates the options and fills in the defaults.
 *
 * @throws {SweepAxisError} naming the flag of the first bad setting.
 */
export function resolveSweepOptions(options: SweepOptions): ResolvedSweepOptions {
  const refine = options.refine ?? DEFAULT_REFINE;
  checkInteger("--refine", refine, 0, MAX_REFINE, SweepAxisError);
  const settings: SweepSettings = {
    steps: positiveInt("steps", options.steps ?? PUBLISHED_STEPS, MAX_STEPS),
    batchSize: positiveInt("batch-size", options.batchSize ?? 128, MAX_BATCH_SIZE),
    lr: positiveNumber("lr", options.lr ?? 3e-4),
    betas: checkBetas(options.betas ?? DEFAULT_BETAS),
    seeds: positiveInt("seeds", options.seeds ?? DEFAULT_SEEDS, MAX_SEED + 1),
    trees: checkTrees(options.trees ?? notebookSweepTrees()),
    evalRows: checkInteger(
      "--eval-rows",
      options.evalRows ?? DEFAULT_EVAL_ROWS,
      1,
      MAX_EVAL_ROWS,
      SweepAxisError,
    ),
    betaForm: checkChoice("beta-form", options.betaForm ?? "uniform", BETA_FORMS),
    l1Coefficient: nonNegativeNumber(
      "l1",
      options.l1Coefficient ?? NOTEBOOK_SAE_CONFIG.l1Coefficient,
    ),
    architecture: checkChoice("arch", options.architecture ?? "standard", ARCHITECTURES),
    k: positiveNumber("k", options.k ?? 1),
  };
  checkK(settings);
  checkGridSize(settings);
  return {
    settings,
    chunk: positiveInt("chunk", options.chunk ?? DEFAULT_CHUNK),
    refine,
    tolerance: positiveNumber("tolerance", options.tolerance ?? DEFAULT_TOLERANCE),
    objective: checkChoice("objective", options.objective ?? "max", BALANCE_OBJECTIVES),
    shard: options.shard ? checkShard(options.shard) : null,
    maxChunks: options.maxChunks === undefined
      ? Infinity
      : positiveInt("max-chunks", options.maxChunks),
  };
}

/** k of TopK and BatchTopK must fit every tree's SAE (d_sae = its read-out features). */
function checkK(settings: SweepSettings): void {
  if (settings.architecture === "standard") return;
  if (settings.architecture === "topk" && !Number.isInteger(settings.k)) {
    throw new SweepAxisError(`Invalid --k: expected an integer for topk, got ${settings.k}`);
  }
  const narrowest = Math.min(...settings.trees.map((t) => t.tree.nFeatures));
  if (settings.k > narrowest) {
    throw new SweepAxisError(
      `Invalid --k: expected at most ${narrowest} (the narrowest tree's SAE has ` +
        `${narrowest} latents), got ${settings.k}`,
    );
  }
}

/** Sweeps above this many SAE-steps print an estimate of their time and memory first. */
const LARGE_SWEEP_SAE_STEPS = 1e9;
/** The notebook shape's rate on a 2-core CPU adapter (README's benchmark), for estimates. */
const CPU_SAE_STEPS_PER_S = 40_000;
/** About the bytes one row takes in memory and in its record. */
const ROW_BYTES = 2_000;

/** The settings that differ from the notebook's, for the run's header (empty when none do). */
function nonDefaults(settings: SweepSettings, objective: BalanceObjective): string {
  const parts = [];
  if (settings.betaForm !== "uniform") parts.push(`β form: ${settings.betaForm}`);
  if (settings.l1Coefficient !== NOTEBOOK_SAE_CONFIG.l1Coefficient) {
    parts.push(`L1: ${settings.l1Coefficient}`);
  }
  if (settings.architecture !== "standard") {
    parts.push(`architecture: ${settings.architecture}, k = ${settings.k}`);
  }
  if (objective !== "max") parts.push(`objective: ${objective} |child component|`);
  return parts.map((p) => `  ${p}`).join("");
}

function holdsOtherFiles(out: string): SweepFolderError {
  return new SweepFolderError(
    `Cannot start a sweep in ${out}: the folder holds other files; nothing was changed; ` +
      "choose another --out",
  );
}

function duration(seconds: number): string {
  if (seconds < 90) return `${seconds.toFixed(0)} s`;
  if (seconds < 5400) return `${(seconds / 60).toFixed(0)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

/** Trees named in a sweep's header; a longer list ends with how many more there are. */
const LISTED_TREES = 8;

/**
 * Runs (or resumes) a sweep and writes its folder: `manifest.json`, `chunks/`, `sweep.csv` after
 * every chunk, and when complete `sweep.json` and `figures/`; prints one verdict per tree.
 *
 * @param gpu the device to train on (default: {@link getGpu}'s, requested only when there is
 *   something to train).
 * @throws {SweepAxisError} for bad settings (the message names the flag), before any training.
 * @throws {SweepFolderError} when `out` holds another sweep (without `resume`), or a sweep whose settings
 *   differ (with `resume`).
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runSweep } from "./run_sweep.ts";
 * import { notebookSweepTrees } from "./axes.ts";
 * const dir = await Deno.makeTempDir();
 * const [balanced] = notebookSweepTrees();
 * const tiny = { betas: [0, Infinity], seeds: 1, steps: 5, batchSize: 16, refine: 0 };
 * const silent = { quiet: true, log: () => {} }; // no progress bars, no printed lines
 * const result = await runSweep({ ...tiny, ...silent, out: `${dir}/sweep`, trees: [balanced!] });
 * assert.ok(result.complete);
 * assert.deepEqual(result.rows.map((r) => r.beta), [0, Infinity]);
 * assert.equal(result.json!.trees[0]!.name, "balanced");
 * assert.ok((await Deno.readTextFile(`${dir}/sweep/sweep.csv`)).startsWith("tree,child_probs,"));
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function runSweep(options: SweepOptions, gpu?: Gpu): Promise<SweepResult> {
  const { settings, chunk, refine, tolerance, objective, shard, maxChunks } = resolveSweepOptions(
    options,
  );
  const log = options.log ?? ((line: string) => console.log(line));
  const begun = performance.now();
  const timing = { training: 0, evaluation: 0 };
  const secondsOf = () => ({ total: (performance.now() - begun) / 1000, ...timing });
  const out = options.out;
  const manifest = manifestOf(settings, shard);
  // A location that cannot be written is refused before anything is trained.
  await checkWritable({ path: out, what: "--out", bytes: 1024 * 1024 });
  // A folder of other files is refused before the lock file would be written into it.
  if (!(await readManifest(out)) && !(await isAbsentOrEmpty(out))) throw holdsOtherFiles(out);
  // One sweep at a time on a folder: a second one stops here with a clear message.
  using _lock = await lockSweepFolder(out);
  const existing = await readManifest(out);
  if (existing && !options.resume) {
    throw new SweepFolderError(
      `Cannot start a sweep in ${out}: it already holds one; pass --resume to continue it ` +
        `(or to rewrite its outputs), or choose another --out`,
    );
  }
  if (existing) {
    const diff = manifestDifference(existing, manifest);
    if (diff) {
      throw new SweepFolderError(
        `Cannot resume the sweep in ${out}: its settings differ from this run's, ${diff} ` +
          `(recorded vs asked); use the recorded settings or another --out`,
      );
    }
  } else {
    if (!(await isAbsentOrEmpty(out))) throw holdsOtherFiles(out);
    await writeManifest(out, manifest);
  }

  const records = existing ? await readRecords(out, settings) : [];
  const rows = new Map<string, SweepRow>();
  for (const record of records) {
    for (const row of record.rows) rows.set(combinationKey(row.tree, row.beta, row.seed), row);
  }
  let nextChunk = Math.max(-1, ...records.map((r) => r.chunk)) + 1;
  const { trees } = settings;
  const models = new ToyModelCache({ log, quiet: options.quiet ?? false });
  let chunksTrained = 0;
  let stopped = false;

  const treeList = (list: readonly SweepTree[]) => {
    const named = list.slice(0, LISTED_TREES).map((t) => `${t.name} (${showProbs(t.childProbs)})`);
    const more = list.length - named.length;
    return named.join("; ") + (more > 0 ? `; … and ${more} more (${list.length} trees)` : "");
  };
  log(`matryoshka-gpu: β sweep → ${out}${shard ? ` (shard ${formatShard(shard)})` : ""}`);
  log(
    `trees: ${treeList(trees)}\n` +
      `β: ${settings.betas.map(showBeta).join(", ")}\n` +
      `seeds: ${settings.seeds}  steps: ${settings.steps}  batch: ${settings.batchSize}  ` +
      `lr: ${settings.lr}  chunk: ${chunk}  refine: ${refine}  tolerance: ${tolerance}` +
      nonDefaults(settings, objective),
  );
  if (rows.size > 0) log(`resuming: ${rows.size} SAEs already recorded`);
  const gridSaes = trees.length * settings.betas.length * settings.seeds;
  const saeSteps = gridSaes * settings.steps;
  if (saeSteps > LARGE_SWEEP_SAE_STEPS) {
    log(
      `estimate: ${gridSaes.toLocaleString("en-US")} grid SAEs × ${settings.steps} steps = ` +
        `${saeSteps.toExponential(2)} SAE-steps, about ${
          duration(saeSteps / CPU_SAE_STEPS_PER_S)
        } ` +
        `at ${CPU_SAE_STEPS_PER_S.toLocaleString("en-US")} SAE-steps/s (a 2-core CPU adapter; a ` +
        `GPU is faster), ${(gridSaes * ROW_BYTES / 1e6).toFixed(0)} MB of rows; each chunk is ` +
        "recorded, so --max-chunks and --resume split the work",
    );
  }

  /** Trains the combinations not yet recorded, chunk by chunk; false when stopped early. */
  const trainAll = async (phase: string, combos: Combination[]): Promise<boolean> => {
    const todo = combos.filter((c) =>
      !rows.has(combinationKey(trees[c.tree]!.name, c.beta, c.seed))
    );
    if (todo.length === 0) return true;
    if (chunksTrained === 0) {
      // Outputs of an earlier finish no longer describe the folder.
      await Deno.remove(`${out}/sweep.json`).catch(() => {});
    }
    const chunks = chunked(todo, chunk);
    log(
      `${phase}: ${todo.length} SAEs in ${chunks.length} chunk${chunks.length > 1 ? "s" : ""} ` +
        `(${(todo.length * settings.steps).toLocaleString("en-US")} SAE-steps)`,
    );
    gpu ??= await getGpu();
    let rate = 0;
    for (const [i, combos] of chunks.entries()) {
      if (chunksTrained >= maxChunks) {
        stopped = true;
        return false;
      }
      const started = performance.now();
      const label = `${phase} chunk ${i + 1}/${chunks.length}`;
      const { rows: trained, seconds: spent } = await trainChunk(combos, trees, models, {
        steps: settings.steps,
        batchSize: settings.batchSize,
        lr: settings.lr,
        evalRows: settings.evalRows,
        betaForm: settings.betaForm,
        l1Coefficient: settings.l1Coefficient,
        architecture: settings.architecture,
        k: settings.k,
        quiet: options.quiet ?? false,
        label,
      }, gpu);
      await writeRecord(out, { chunk: nextChunk++, phase, rows: trained });
      for (const row of trained) rows.set(combinationKey(row.tree, row.beta, row.seed), row);
      await writeSweepCsv(out, [...rows.values()], trees);
      chunksTrained++;
      const seconds = (performance.now() - started) / 1000;
      timing.training += spent.training;
      timing.evaluation += spent.evaluation;
      rate = (combos.length * settings.steps) / seconds;
      const left = chunks.slice(i + 1).reduce((n, c) => n + c.length, 0) * settings.steps / rate;
      for (const row of trained) {
        if (row.divergedAt !== null) {
          log(
            `warning: ${row.tree} β = ${showBeta(row.beta)} seed ${row.seed} diverged at step ` +
              `${row.divergedAt}; the balance finder leaves it out`,
          );
        }
      }
      log(
        `${label}: ${combos.length} SAEs in ${seconds.toFixed(1)} s ` +
          `(${Math.round(rate).toLocaleString("en-US")} SAE-steps/s; training ` +
          `${spent.training.toFixed(1)} s, evaluation ${spent.evaluation.toFixed(1)} s)` +
          (i + 1 < chunks.length ? `, about ${duration(left)} left in this phase` : ""),
      );
    }
    return true;
  };

  const grid = shardCombinations(
    gridCombinations(trees.length, settings.betas, settings.seeds),
    shard,
  );
  let done = await trainAll("grid", grid);
  if (done && refine > 0 && shard) {
    log(
      "refinement skipped: a shard holds only part of the grid; merge the shards (--merge), " +
        "then run --resume with the same settings on the merged folder to refine",
    );
  }
  for (let round = 1; done && !shard && round <= refine; round++) {
    const combos: Combination[] = [];
    const current = [...rows.values()];
    trees.forEach((tree, t) => {
      const earlier = current.filter((r) => r.round < round);
      for (const beta of refinementBetas(samplesOf(earlier, tree), objective)) {
        for (let seed = 0; seed < settings.seeds; seed++) {
          combos.push({ tree: t, beta, seed, round });
        }
      }
    });
    done = await trainAll(`refine ${round}`, combos);
  }

  const allRows = [...rows.values()];
  if (stopped || !done) {
    log(
      `stopped after ${chunksTrained} chunk${chunksTrained === 1 ? "" : "s"} ` +
        `(${allRows.length} SAEs recorded); run again with --resume to continue`,
    );
    return {
      out,
      complete: false,
      chunksTrained,
      rows: allRows,
      balances: [],
      json: null,
      seconds: secondsOf(),
    };
  }
  const { json, balances } = await writeSweepOutputs(out, settings, allRows, {
    tolerance,
    objective,
    shard,
    complete: gridComplete(settings, allRows, shard),
    figureFormats: options.figureFormats,
  });
  log("");
  for (const line of balanceLines(balances)) log(line);
  if (shard) log(`(shard ${formatShard(shard)}: the verdicts use this shard's rows only)`);
  log(`wrote ${out}/: sweep.csv, sweep.json, figures/ (${allRows.length} SAEs)`);
  const seconds = secondsOf();
  if (chunksTrained > 0) {
    const share = (s: number) => `${s.toFixed(2)} s (${(100 * s / seconds.total).toFixed(0)}%)`;
    log(
      `${chunksTrained} chunk${chunksTrained === 1 ? "" : "s"} in ${seconds.total.toFixed(1)} s: ` +
        `training ${share(seconds.training)}, evaluation ${share(seconds.evaluation)}, the rest ` +
        `(set-up, records, outputs) ${
          share(seconds.total - seconds.training - seconds.evaluation)
        }`,
    );
  }
  return { out, complete: true, chunksTrained, rows: allRows, balances, json, seconds };
}
