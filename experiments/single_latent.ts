/**
 * `deno task single-latent`: the paper's second toy notebook (`single_latent_hedging_plots`) end
 * to end: a parent and a child feature in 50 dimensions under four data settings
 * (src/toy/single_latent_worlds.ts), the nine single- and two-latent SAEs of the notebook
 * (src/sae/single_latent_saes.ts) trained together on the GPU, their cosine tables with `b_dec`'s
 * cosine with each feature and its norm, and the analytic loss curves
 * (src/metrics/loss_curves.ts). Writes the heatmaps, the `b_dec` panels, the loss-curve figures,
 * `results.json` and the SAEs (SAELens layout) to the output folder, replacing it atomically (the
 * same folder rules as `deno task balanced`).
 */
import {
  biasCosSims,
  checkOutputDir,
  cosSimHeatmapSvg,
  cosSimTable,
  curveMinimum,
  decoderCosSims,
  DEFAULT_EVAL_ROWS,
  describeAdapter,
  encoderCosSims,
  evaluate,
  FIGURE_FORMATS,
  type FigureFormat,
  figureFormatsFlag,
  getGpu,
  initSaeToMatchModel,
  linePlotSvg,
  type LossCurve,
  MatryoshkaSAE,
  MAX_SEED,
  MAX_STEPS,
  metricsTable,
  nonNegativeIntFlag,
  type OutputPlan,
  parseFlags,
  positiveIntFlag,
  reportDivergence,
  runMain,
  SAE_CFG_FILE,
  SAE_WEIGHTS_FILE,
  type SaeMetrics,
  saveFigureFormats,
  saveSae,
  sideBySide,
  SINGLE_LATENT_BATCH,
  SINGLE_LATENT_LOSS_CURVES,
  SINGLE_LATENT_SAES,
  type SingleLatentSae,
  singleLatentSaeConfig,
  singleLatentTree,
  ToyModel,
  type TrainRun,
  trainToySaes,
  writeOutputDir,
} from "../mod.ts";

const USAGE = `Usage: deno task single-latent [options]

Trains the nine SAEs of the paper's single-latent notebook together on the GPU (a parent and a
child feature in 50 dimensions: independent, hierarchical, partially co-occurring and
anti-correlated), prints their cosine tables with b_dec's cosine with each feature and its norm,
and the analytic loss curves; writes figures, results.json and the SAEs (SAELens layout).

Options:
  --out DIR      output folder, replaced atomically (default out/single_latent); it must be
                 absent, empty or an earlier output of this command
  --seed N       seed of the toy model, the initial noise and the batches, 0 to ${MAX_SEED}
                 (default 0)
  --steps N      optimiser steps of every SAE, 1 to ${MAX_STEPS} (default: the published
                 schedules, 24,414 steps of ${SINGLE_LATENT_BATCH} samples, 200,000 for absorption)
  --format LIST  figure formats, comma-separated: svg, png, pdf (default svg)
  --quiet        no progress bars
  --help         show this help

Exit status: 0 done; 1 no WebGPU adapter or the output could not be written; 2 bad input
(nothing trained, nothing changed); 3 done, but at least one SAE diverged (see results.json).`;

/** Settings of one run. */
export interface SingleLatentOptions {
  out: string;
  seed: number;
  /** Steps of every SAE, or null for the published schedules. */
  steps: number | null;
  /** Every figure is written once per format (`--format`). */
  figureFormats: readonly FigureFormat[];
  quiet: boolean;
}

/** One trained SAE in `results.json`. */
export interface SingleLatentRunResult {
  name: SingleLatentSae["name"];
  title: string;
  dSae: number;
  l1Coefficient: number;
  noiseLevel: number;
  data: SingleLatentSae["data"];
  steps: number;
  /** `[latent][feature]`. */
  encoderCosSims: number[][];
  /** `[latent][feature]`. */
  decoderCosSims: number[][];
  /** `b_dec`'s cosine with each true feature. */
  bDecCosSims: number[];
  /** ‖b_dec‖. */
  bDecNorm: number;
  finalLoss: number;
  stepsDone: number;
  diverged: { step: number; reason: string } | null;
  metrics: SaeMetrics;
}

/** The content of `results.json`. */
export interface SingleLatentResults {
  adapter: string;
  seed: number;
  /** Steps of every SAE, or null for the published schedules (see each run's `steps`). */
  steps: number | null;
  batchSize: number;
  seconds: number;
  runs: SingleLatentRunResult[];
  lossCurves: LossCurve[];
}

const round = (v: number) => Math.round(v * 1e6) / 1e6;
const CURVE_NAMES = [...new Set(SINGLE_LATENT_LOSS_CURVES.map((c) => c.name))];

/** What the experiment writes into its folder. */
export function singleLatentOutputPlan(out: string): OutputPlan {
  return {
    path: out,
    what: "--out",
    files: [
      "results.json",
      ...[
        ...SINGLE_LATENT_SAES.flatMap((s) => [s.name, `${s.name}_b_dec`]),
        ...CURVE_NAMES.map((name) => `loss_curves_${name}`),
      ].flatMap((figure) => FIGURE_FORMATS.map((f) => `${figure}.${f}`)),
      ...SINGLE_LATENT_SAES.flatMap((s) => [
        `saes/${s.name}/${SAE_CFG_FILE}`,
        `saes/${s.name}/${SAE_WEIGHTS_FILE}`,
      ]),
    ],
    bytes: 4 * 1024 * 1024, // about 1.5 MB with PNG and PDF figures
  };
}

const signed = (v: number) => (v < 0 ? "\u2212" : "+") + Math.abs(v).toFixed(2);

/** The loss curves of one landscape as a figure (one line per λ, its minimum marked). */
function lossCurveSvg(name: string, curves: readonly LossCurve[]): string {
  const [first] = curves;
  const title = `${name === "skew_parent" ? "skew parent" : "skew child"} ` +
    `(P(parent only) = ${first!.parentOnly}, P(parent and child) = ${first!.parentAndChild})`;
  return linePlotSvg({
    title,
    xLabel: "latent direction t (0: parent, 1: child)",
    yLabel: "expected loss",
    series: curves.map((c) => ({ name: `λ = ${c.l1}`, x: c.t, mean: c.loss })),
    // One marker per distinct minimum, naming the λ values that share it.
    markers: [...new Set(curves.map(curveMinimum))].map((x) => ({
      x,
      label: `min (λ = ${curves.filter((c) => curveMinimum(c) === x).map((c) => c.l1).join(", ")})`,
    })),
    xTicks: [0, 0.25, 0.5, 0.75, 1],
    xRange: [0, 1],
  });
}

/**
 * Runs the experiment: checks the output folder, trains, prints, writes the folder; returns
 * `results.json`.
 *
 * @throws {OutputError} before any training when the folder cannot be written or holds other files.
 */
export async function runSingleLatent(options: SingleLatentOptions): Promise<SingleLatentResults> {
  const plan = singleLatentOutputPlan(options.out);
  await checkOutputDir(plan);
  const gpu = await getGpu();
  const adapter = describeAdapter(gpu.summary);
  const log = (line = "") => console.log(line);
  log("matryoshka-gpu: feature hedging in single-latent SAEs");
  log(`adapter: ${adapter}`);
  log(
    `seed: ${options.seed}  steps: ${options.steps ?? "published (24,414; absorption 200,000)"}  ` +
      `batch: ${SINGLE_LATENT_BATCH}  SAEs: ${SINGLE_LATENT_SAES.length}`,
  );
  const started = performance.now();
  const toyModel = new ToyModel({ nFeatures: 2, hiddenDim: 50, seed: options.seed });
  const trees = Object.fromEntries(
    SINGLE_LATENT_SAES.map((s) => [s.data, singleLatentTree(s.data)]),
  );
  const saes = SINGLE_LATENT_SAES.map((spec) => {
    const sae = new MatryoshkaSAE(singleLatentSaeConfig(spec));
    initSaeToMatchModel(sae, toyModel, { noiseLevel: spec.noiseLevel, seed: options.seed });
    return sae;
  });
  const stepsOf = (spec: SingleLatentSae) => options.steps ?? spec.steps;
  // One trainer call per (width, steps): the SAEs of a call share their shape and schedule.
  const calls = new Map<string, number[]>();
  SINGLE_LATENT_SAES.forEach((spec, i) => {
    const key = `${spec.dSae}/${stepsOf(spec)}`;
    calls.set(key, [...(calls.get(key) ?? []), i]);
  });
  const trained = new Array<Awaited<ReturnType<typeof trainToySaes>>[number]>(saes.length);
  for (const members of calls.values()) {
    const spec0 = SINGLE_LATENT_SAES[members[0]!]!;
    const runs: TrainRun[] = members.map((i) => ({
      sae: saes[i]!,
      model: toyModel,
      tree: trees[SINGLE_LATENT_SAES[i]!.data]!,
      name: SINGLE_LATENT_SAES[i]!.name,
    }));
    const results = await trainToySaes(runs, {
      steps: stepsOf(spec0),
      batchSize: SINGLE_LATENT_BATCH,
      seed: options.seed,
      quiet: options.quiet,
      label: `${spec0.dSae} latent${spec0.dSae > 1 ? "s" : ""}, ${stepsOf(spec0)} steps`,
    }, gpu);
    members.forEach((i, k) => trained[i] = results[k]!);
  }
  const seconds = (performance.now() - started) / 1000;
  const metrics = new Array<SaeMetrics>(saes.length);
  for (const width of [1, 2]) {
    const members = SINGLE_LATENT_SAES.flatMap((s, i) => s.dSae === width ? [i] : []);
    const got = await evaluate(
      members.map((i) => ({
        sae: saes[i]!,
        model: toyModel,
        tree: trees[SINGLE_LATENT_SAES[i]!.data]!,
      })),
      { seed: options.seed, rows: DEFAULT_EVAL_ROWS },
      gpu,
    );
    members.forEach((i, k) => metrics[i] = got[k]!);
  }

  const runs: SingleLatentRunResult[] = SINGLE_LATENT_SAES.map((spec, i) => {
    const sae = saes[i]!;
    const result = trained[i]!;
    const enc = encoderCosSims(sae.params, sae.layout, toyModel.embedding, 2);
    const dec = decoderCosSims(sae.params, sae.layout, toyModel.embedding, 2);
    const bDecCos = biasCosSims(sae.params, sae.layout, toyModel.embedding, 2);
    return {
      name: spec.name,
      title: spec.title,
      dSae: spec.dSae,
      l1Coefficient: spec.l1Coefficient,
      noiseLevel: spec.noiseLevel,
      data: spec.data,
      steps: stepsOf(spec),
      encoderCosSims: enc.map((row) => row.map(round)),
      decoderCosSims: dec.map((row) => row.map(round)),
      bDecCosSims: bDecCos.map(round),
      bDecNorm: round(Math.hypot(...sae.bDec)),
      finalLoss: result.finalLosses.total,
      stepsDone: result.stepsDone,
      diverged: result.error ? { step: result.error.step, reason: result.error.reason } : null,
      metrics: metrics[i]!,
    };
  });

  for (const run of runs) {
    log();
    log(
      `${run.title} (${run.name}: ${run.dSae} latent${run.dSae > 1 ? "s" : ""}, λ = ` +
        `${run.l1Coefficient}, noise ${run.noiseLevel}, ${run.data} features)`,
    );
    log(sideBySide([
      cosSimTable("encoder (cos with f1 parent, f2 child)", run.encoderCosSims),
      cosSimTable("decoder", run.decoderCosSims),
    ]));
    log(
      `b_dec: norm ${run.bDecNorm.toFixed(3)}, cos with f1 ${signed(run.bDecCosSims[0]!)}, ` +
        `f2 ${signed(run.bDecCosSims[1]!)}`,
    );
  }
  log();
  log(metricsTable(runs.map((r) => ({ name: r.name, metrics: r.metrics }))));
  log();
  log("loss curves (a unit latent from the parent, t = 0, to the child, t = 1):");
  for (const curve of SINGLE_LATENT_LOSS_CURVES) {
    log(
      `  ${curve.name} (P(parent only) ${curve.parentOnly}, P(both) ${curve.parentAndChild}), ` +
        `λ = ${curve.l1}: minimum at t = ${curveMinimum(curve).toFixed(2)}`,
    );
  }
  log();
  log(`trained ${runs.length} SAEs in ${seconds.toFixed(2)} s`);
  const diverged = runs.filter((r) => r.diverged);
  if (diverged.length > 0) {
    log(
      `${diverged.length} of ${runs.length} SAEs diverged: ` +
        diverged.map((r) => `${r.name} at step ${r.diverged!.step}`).join(", "),
    );
  }

  const results: SingleLatentResults = {
    adapter,
    seed: options.seed,
    steps: options.steps,
    batchSize: SINGLE_LATENT_BATCH,
    seconds: round(seconds),
    runs,
    lossCurves: SINGLE_LATENT_LOSS_CURVES.map((c) => ({
      ...c,
      t: c.t.map(round),
      loss: c.loss.map(round),
    })),
  };
  await writeOutputDir(plan, async (dir) => {
    for (const [i, spec] of SINGLE_LATENT_SAES.entries()) {
      const run = runs[i]!;
      await saveFigureFormats(
        `${dir}/${spec.name}`,
        cosSimHeatmapSvg({
          title: spec.title,
          encoder: run.encoderCosSims,
          decoder: run.decoderCosSims,
          showValues: true,
          height: 120 + 60 * spec.dSae,
        }),
        options.figureFormats,
      );
      await saveFigureFormats(
        `${dir}/${spec.name}_b_dec`,
        cosSimHeatmapSvg({
          title: `${spec.title}: b_dec (norm ${run.bDecNorm.toFixed(3)})`,
          encoder: [run.bDecCosSims],
          showValues: true,
          width: 420,
          height: 180,
          panelTitles: ["SAE decoder bias", ""],
          rowLabel: "",
          rowNames: ["b_dec"],
        }),
        options.figureFormats,
      );
      await saveSae(`${dir}/saes/${spec.name}`, saes[i]!.params, saes[i]!.config, {
        title: spec.title,
        seed: options.seed,
        steps: run.steps,
        steps_done: run.stepsDone,
        diverged_at_step: run.diverged?.step ?? null,
        diverged_reason: run.diverged?.reason ?? null,
      });
    }
    for (const name of CURVE_NAMES) {
      const curves = SINGLE_LATENT_LOSS_CURVES.filter((c) => c.name === name);
      await saveFigureFormats(
        `${dir}/loss_curves_${name}`,
        lossCurveSvg(name, curves),
        options.figureFormats,
      );
    }
    await Deno.writeTextFile(`${dir}/results.json`, JSON.stringify(results, null, 2) + "\n");
  });
  log(
    `wrote ${options.out}/: results.json, ${
      SINGLE_LATENT_SAES.length * 2 + CURVE_NAMES.length
    } figures, saes/`,
  );
  return results;
}

/** Parses the command line of `deno task single-latent`. */
export function parseSingleLatentArgs(args: string[]): SingleLatentOptions | "help" {
  const { values } = parseFlags(args, {
    out: { type: "string" },
    seed: { type: "string" },
    steps: { type: "string" },
    format: { type: "string" },
    quiet: { type: "boolean" },
    help: { type: "boolean" },
  }, USAGE);
  if (values.help) return "help";
  return {
    out: values.out ?? "out/single_latent",
    seed: nonNegativeIntFlag("seed", values.seed, 0, USAGE, MAX_SEED),
    steps: values.steps === undefined
      ? null
      : positiveIntFlag("steps", values.steps, 1, USAGE, MAX_STEPS),
    figureFormats: figureFormatsFlag(values.format, USAGE),
    quiet: values.quiet ?? false,
  };
}

if (import.meta.main) {
  await runMain(async () => {
    const options = parseSingleLatentArgs(Deno.args);
    if (options === "help") {
      console.log(USAGE);
      return;
    }
    reportDivergence((await runSingleLatent(options)).runs, options.out);
  });
}
