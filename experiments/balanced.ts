/**
 * `deno task balanced`: the seed notebook (`balancing_hedging_and_absorption`) end to end.
 *
 * Builds the toy model and both trees, trains the notebook's four SAEs together on the GPU with the
 * published schedule (detached β = ∞, standard β = 0 and balanced β = 0.25 on the balanced tree;
 * β = 0.17 on the unbalanced tree), prints their cosine-similarity tables with a reading of the
 * parent latent, and writes the heatmaps, `results.json` and the SAEs (SAELens layout) to the
 * output folder, replacing it atomically. The folder is checked before training (it must be
 * writable and hold nothing but an earlier output of this command); an SAE that diverged is
 * recorded in the printed summary, `results.json` and its `cfg.json`, and makes the exit status 3.
 */
import {
  type Architecture,
  architectureFlags,
  balancedTree,
  checkOutputDir,
  cosSimHeatmapSvg,
  cosSimTable,
  decoderCosSims,
  DEFAULT_EVAL_ROWS,
  describeAdapter,
  describeLatent0,
  edgeTable,
  encoderCosSims,
  evalRowsFlag,
  evaluate,
  FIGURE_FORMATS,
  type FigureFormat,
  figureFormatsFlag,
  getGpu,
  initSaeToMatchModel,
  MatryoshkaSAE,
  MAX_BATCH_SIZE,
  MAX_EVAL_ROWS,
  MAX_SEED,
  MAX_STEPS,
  metricsTable,
  nonNegativeIntFlag,
  NOTEBOOK_SAE_CONFIG,
  NOTEBOOK_SAES,
  type NotebookSae,
  type OutputPlan,
  parseFlags,
  positiveIntFlag,
  positiveNumberFlag,
  PUBLISHED_STEPS,
  readLatent0,
  reportDivergence,
  runMain,
  SAE_CFG_FILE,
  SAE_WEIGHTS_FILE,
  type SaeMetrics,
  saveFigureFormats,
  saveSae,
  sideBySide,
  ToyModel,
  trainToySaes,
  type TreeFeatureGenerator,
  unbalancedTree,
  writeOutputDir,
} from "../mod.ts";

const USAGE = `Usage: deno task balanced [options]

Trains the notebook's four Matryoshka SAEs together on the GPU and writes tables, heatmaps,
results.json and the SAEs (SAELens layout) to the output folder.

Options:
  --out DIR          output folder, replaced atomically (default out/balanced); it must be absent,
                     empty or an earlier output of this command
  --seed N           seed of the toy model and the batches, 0 to ${MAX_SEED} (default 0)
  --steps N          optimiser steps, 1 to ${MAX_STEPS} (default ${PUBLISHED_STEPS}, the published
                     100M tokens)
  --batch-size N     samples per step, 1 to ${MAX_BATCH_SIZE} (default 128)
  --lr X             Adam learning rate (default 3e-4)
  --arch A           standard (ReLU + L1, the notebook's), topk or batchtopk (default standard):
                     the four SAEs keep their β and prefixes; TopK and BatchTopK have no L1 term
  --k K              latents kept per row: topk an integer from 1 to 4, batchtopk on average
                     over the batch, any number above 0 up to 4 (⌊k·batch⌋ kept; default 1)
  --eval-rows N      held-out rows of the metrics, 1 to ${MAX_EVAL_ROWS} (default ${DEFAULT_EVAL_ROWS})
  --format LIST      figure formats, comma-separated: svg, png, pdf (default svg)
  --quiet            no progress bar
  --help             show this help

Exit status: 0 done; 1 no WebGPU adapter or the output could not be written; 2 bad input
(nothing trained, nothing changed); 3 done, but at least one SAE diverged (see results.json).`;

/** Settings of one run of the experiment. */
export interface BalancedOptions {
  out: string;
  seed: number;
  steps: number;
  batchSize: number;
  lr: number;
  /** `standard` (the notebook's L1 SAEs), `topk` or `batchtopk`. */
  architecture: Architecture;
  /** k of TopK and BatchTopK. */
  k: number;
  /** Held-out rows of the metrics. */
  evalRows: number;
  /** Every figure is written once per format (`--format`). */
  figureFormats: readonly FigureFormat[];
  quiet: boolean;
}

/** One trained SAE in `results.json`. */
export interface BalancedRunResult {
  name: NotebookSae["name"];
  title: string;
  beta: number | null;
  encoderCosSims: number[][];
  decoderCosSims: number[][];
  finalLoss: number;
  /** Optimiser steps completed (fewer than `steps` when the SAE diverged). */
  stepsDone: number;
  /** Where and why training stopped early, or null when every step was trained. */
  diverged: { step: number; reason: string } | null;
  /**
   * Every parent–child edge of the SAE's tree (feature indices from 0), read on the parent's
   * matched latent; the same as `metrics.scorecard.edges`, in the short form.
   */
  edges: {
    parent: number;
    child: number;
    latent: number;
    encoderCos: number;
    decoderCos: number;
    absorptionGap: number;
  }[];
  /** The synthetic-SAE evaluation on held-out rows (src/metrics/evaluate.ts). */
  metrics: SaeMetrics;
  /** BatchTopK: the trained threshold θ (its JumpReLU threshold at inference); null otherwise. */
  threshold: number | null;
}

/** The content of `results.json`. */
export interface BalancedResults {
  adapter: string;
  /** The SAEs' architecture (`--arch`) and, for TopK and BatchTopK, k (null for standard). */
  architecture: Architecture;
  k: number | null;
  seed: number;
  steps: number;
  batchSize: number;
  seconds: number;
  runs: BalancedRunResult[];
}

const round = (v: number) => Math.round(v * 1e6) / 1e6;

/** What the experiment writes into its folder (nothing else is ever written or removed there). */
export function balancedOutputPlan(out: string): OutputPlan {
  return {
    path: out,
    what: "--out",
    files: [
      "results.json",
      ...NOTEBOOK_SAES.flatMap((spec) => FIGURE_FORMATS.map((f) => `${spec.figure}.${f}`)),
      ...NOTEBOOK_SAES.flatMap((spec) => [
        `saes/${spec.name}/${SAE_CFG_FILE}`,
        `saes/${spec.name}/${SAE_WEIGHTS_FILE}`,
      ]),
    ],
    // About 90 kB are written (500 kB with PNG and PDF figures); the probe asks for twice that.
    bytes: 1024 * 1024,
  };
}

/**
 * Runs the experiment: checks the output folder, trains, prints, writes the output folder;
 * returns `results.json`.
 *
 * @throws {OutputError} before any training when the folder cannot be written or holds other files.
 */
export async function runBalanced(options: BalancedOptions): Promise<BalancedResults> {
  const plan = balancedOutputPlan(options.out);
  await checkOutputDir(plan);
  const gpu = await getGpu();
  const adapter = describeAdapter(gpu.summary);
  const log = (line = "") => console.log(line);
  log(`matryoshka-gpu: balancing hedging and absorption`);
  log(`adapter: ${adapter}`);
  log(
    `seed: ${options.seed}  steps: ${options.steps}  batch: ${options.batchSize}  ` +
      `lr: ${options.lr}  SAEs: ${NOTEBOOK_SAES.length} trained together` +
      (options.architecture === "standard" ? "" : `  ${options.architecture} k: ${options.k}`),
  );
  const started = performance.now();
  // The kernels compile before training starts (seconds on a fresh machine): say so as it happens.
  const write = (text: string) => Deno.stdout.writeSync(new TextEncoder().encode(text));
  write("compiling the training kernels… ");
  let compiled = false;

  const toyModel = new ToyModel({ nFeatures: 4, hiddenDim: 50, seed: options.seed });
  const trees: Record<NotebookSae["tree"], TreeFeatureGenerator> = {
    balanced: balancedTree(),
    unbalanced: unbalancedTree(),
  };
  const arch = options.architecture === "standard"
    ? {}
    : { architecture: options.architecture, k: options.k };
  const saes = NOTEBOOK_SAES.map((spec) => {
    const sae = new MatryoshkaSAE({ ...NOTEBOOK_SAE_CONFIG, ...spec.config, ...arch });
    initSaeToMatchModel(sae, toyModel, {
      noiseLevel: 0,
      featureOrdering: [0, 1, 2, 3],
    });
    return sae;
  });
  const trained = await trainToySaes(
    NOTEBOOK_SAES.map((spec, i) => ({
      sae: saes[i]!,
      model: toyModel,
      tree: trees[spec.tree],
      name: spec.name,
    })),
    {
      steps: options.steps,
      batchSize: options.batchSize,
      lr: options.lr,
      seed: options.seed,
      quiet: options.quiet,
      label: "balanced",
      onCompiled: ({ engine, seconds }) => {
        compiled = true;
        log(`${seconds.toFixed(2)} s (${engine} engine)`);
      },
    },
    gpu,
  ).finally(() => compiled || log()); // an error before the kernels ended the line: end it

  const seconds = (performance.now() - started) / 1000;
  const metrics = await evaluate(
    NOTEBOOK_SAES.map((spec, i) => ({ sae: saes[i]!, model: toyModel, tree: trees[spec.tree] })),
    { seed: options.seed, rows: options.evalRows },
    gpu,
  );

  const runs: BalancedRunResult[] = NOTEBOOK_SAES.map((spec, i) => {
    const sae = saes[i]!;
    const result = trained[i]!;
    const encoder = encoderCosSims(sae.params, sae.layout, toyModel.embedding, toyModel.nFeatures);
    const decoder = decoderCosSims(sae.params, sae.layout, toyModel.embedding, toyModel.nFeatures);
    return {
      name: spec.name,
      title: titleOf(spec, options),
      beta: spec.beta,
      encoderCosSims: encoder.map((row) => row.map(round)),
      decoderCosSims: decoder.map((row) => row.map(round)),
      finalLoss: result.finalLosses.total,
      stepsDone: result.stepsDone,
      diverged: result.error ? { step: result.error.step, reason: result.error.reason } : null,
      edges: metrics[i]!.scorecard.edges.map((e) => ({
        parent: e.parent,
        child: e.child,
        latent: e.latent,
        encoderCos: round(e.encoderCos),
        decoderCos: round(e.decoderCos),
        absorptionGap: round(e.absorptionGap),
      })),
      metrics: metrics[i]!,
      threshold: options.architecture === "batchtopk" ? round(sae.topkState.threshold) : null,
    };
  });

  for (const run of runs) {
    log();
    log(run.title);
    log(sideBySide([
      cosSimTable("encoder (cos with true features)", run.encoderCosSims),
      cosSimTable("decoder", run.decoderCosSims),
    ]));
    log(describeLatent0(readLatent0(run.encoderCosSims), "encoder"));
    log(describeLatent0(readLatent0(run.decoderCosSims), "decoder"));
  }
  log();
  log(metricsTable(runs.map((r) => ({ name: r.name, metrics: r.metrics }))));
  log();
  log(edgeTable(runs.map((r) => ({ name: r.name, metrics: r.metrics }))));
  log();
  log(`trained ${runs.length} SAEs × ${options.steps} steps in ${seconds.toFixed(2)} s`);
  const diverged = runs.filter((r) => r.diverged);
  if (diverged.length > 0) {
    log(
      `${diverged.length} of ${runs.length} SAEs diverged: ` +
        diverged.map((r) => `${r.name} at step ${r.diverged!.step}`).join(", ") +
        ` (${diverged[0]!.diverged!.reason})`,
    );
  }

  const results: BalancedResults = {
    adapter,
    architecture: options.architecture,
    k: options.architecture === "standard" ? null : options.k,
    seed: options.seed,
    steps: options.steps,
    batchSize: options.batchSize,
    seconds: round(seconds),
    runs,
  };
  await writeOutputDir(plan, async (dir) => {
    for (const [i, spec] of NOTEBOOK_SAES.entries()) {
      const run = runs[i]!;
      const svg = cosSimHeatmapSvg({
        title: run.title,
        encoder: run.encoderCosSims,
        decoder: run.decoderCosSims,
      });
      await saveFigureFormats(`${dir}/${spec.figure}`, svg, options.figureFormats);
      await saveSae(`${dir}/saes/${spec.name}`, saes[i]!.params, saes[i]!.config, {
        title: run.title,
        seed: options.seed,
        steps: options.steps,
        steps_done: run.stepsDone,
        diverged_at_step: run.diverged?.step ?? null,
        diverged_reason: run.diverged?.reason ?? null,
      }, saes[i]!.topkState);
    }
    await Deno.writeTextFile(`${dir}/results.json`, JSON.stringify(results, null, 2) + "\n");
  });
  log(`wrote ${options.out}/: results.json, ${NOTEBOOK_SAES.length} figures, saes/`);
  return results;
}

/** The figure and table title of a notebook SAE: the notebook's, with the architecture when not L1. */
function titleOf(spec: NotebookSae, options: BalancedOptions): string {
  if (options.architecture === "standard") return spec.title;
  const name = options.architecture === "topk" ? "TopK" : "BatchTopK";
  return `${spec.title}, ${name} k = ${options.k}`;
}

/** Parses the command line of `deno task balanced`. */
export function parseBalancedArgs(args: string[]): BalancedOptions | "help" {
  const { values } = parseFlags(args, {
    out: { type: "string" },
    seed: { type: "string" },
    steps: { type: "string" },
    "batch-size": { type: "string" },
    lr: { type: "string" },
    arch: { type: "string" },
    k: { type: "string" },
    "eval-rows": { type: "string" },
    format: { type: "string" },
    quiet: { type: "boolean" },
    help: { type: "boolean" },
  }, USAGE);
  if (values.help) return "help";
  return {
    out: values.out ?? "out/balanced",
    seed: nonNegativeIntFlag("seed", values.seed, 0, USAGE, MAX_SEED),
    steps: positiveIntFlag("steps", values.steps, PUBLISHED_STEPS, USAGE, MAX_STEPS),
    batchSize: positiveIntFlag("batch-size", values["batch-size"], 128, USAGE, MAX_BATCH_SIZE),
    lr: positiveNumberFlag("lr", values.lr, 3e-4, USAGE),
    ...architectureFlags(values.arch, values.k, NOTEBOOK_SAE_CONFIG.dSae, USAGE),
    evalRows: evalRowsFlag(values["eval-rows"], USAGE),
    figureFormats: figureFormatsFlag(values.format, USAGE),
    quiet: values.quiet ?? false,
  };
}

if (import.meta.main) {
  await runMain(async () => {
    const options = parseBalancedArgs(Deno.args);
    if (options === "help") {
      console.log(USAGE);
      return;
    }
    reportDivergence((await runBalanced(options)).runs, options.out, "; try a smaller --lr");
  });
}
