/// <reference lib="dom" />
/**
 * The browser page's program (bundled into `app.js` by `build.ts`): checks for WebGPU, reads the
 * form, trains on the visitor's GPU with the library's trainer, and redraws the encoder and
 * decoder heatmaps, the loss curve, the progress bar and the verdict each time the trainer
 * reports. "Train the notebook's four SAEs" trains them together and shows them side by side.
 * When a run ends, `body[data-state]` is `done` and each SAE's encoder table is in its figure's
 * `data-encoder` attribute (JSON), which the browser test reads.
 */
import { describeAdapter, getGpu, type Gpu } from "../gpu/device.ts";
import { cosSimHeatmapSvg } from "../plot/heatmap.ts";
import { linePlotSvg } from "../plot/line_plot.ts";
import { cosSimTable } from "../report/tables.ts";
import { NOTEBOOK_SAES } from "../sae/notebook_saes.ts";
import { type ProgressUpdate, type TrainRun, trainToySaes } from "../sae/train.ts";
import {
  betaText,
  checkPageRun,
  PAGE_TREES,
  type PageReading,
  type PageRun,
  type PageSetup,
  pageSetup,
  pageSetups,
  progressEveryFor,
  readParams,
  sliderBeta,
} from "./page_model.ts";

const byId = <T extends HTMLElement>(id: string): T => {
  const element = document.getElementById(id);
  if (!element) throw new Error(`the page has no #${id}`);
  return element as T;
};

const form = {
  tree: byId<HTMLSelectElement>("tree"),
  probs: ["p1", "p2", "p3"].map((id) => byId<HTMLInputElement>(id)),
  beta: byId<HTMLInputElement>("beta"),
  betaLabel: byId<HTMLSpanElement>("beta-label"),
  steps: byId<HTMLInputElement>("steps"),
  seed: byId<HTMLInputElement>("seed"),
  train: byId<HTMLButtonElement>("train"),
  trainFour: byId<HTMLButtonElement>("train-four"),
};
const view = {
  progress: byId<HTMLProgressElement>("progress"),
  status: byId<HTMLSpanElement>("status-text"),
  adapter: byId<HTMLParagraphElement>("adapter"),
  single: byId<HTMLElement>("single"),
  heatmap: byId<HTMLDivElement>("heatmap"),
  verdict: byId<HTMLParagraphElement>("verdict"),
  loss: byId<HTMLDivElement>("loss"),
  table: byId<HTMLPreElement>("table"),
  four: byId<HTMLElement>("four"),
  fourGrid: byId<HTMLDivElement>("four-grid"),
};

const setState = (state: "loading" | "ready" | "training" | "done" | "error" | "no-webgpu") =>
  document.body.dataset.state = state;

function syncForm(): void {
  const preset = PAGE_TREES[form.tree.value as keyof typeof PAGE_TREES];
  form.probs.forEach((input, i) => {
    if (preset) input.value = String(preset[i]);
    input.disabled = preset !== undefined;
  });
  form.betaLabel.textContent = betaText(sliderBeta(Number(form.beta.value)));
}

function formRun(): PageRun {
  return checkPageRun({
    childProbs: form.probs.map((input) => Number(input.value)),
    beta: sliderBeta(Number(form.beta.value)),
    steps: Number(form.steps.value),
    seed: Number(form.seed.value),
  });
}

/** One SAE on the page: what it trains and where it is drawn. */
interface Panel {
  name: string;
  title: string;
  setup: PageSetup;
  figure: HTMLElement;
  verdict: HTMLElement;
}

/** Draws a panel's heatmaps and verdict from parameters (a snapshot, or the result). */
function drawSae(panel: Panel, params: Float32Array): PageReading {
  const reading = readParams(params, panel.setup.sae.layout, panel.setup.model);
  panel.figure.innerHTML = cosSimHeatmapSvg({
    title: panel.title,
    encoder: reading.encoder,
    decoder: reading.decoder,
  });
  panel.figure.dataset.encoder = JSON.stringify(reading.encoder);
  panel.verdict.textContent = reading.verdict;
  panel.verdict.dataset.regime = reading.latent0.regime;
  return reading;
}

function drawLoss(steps: number[], losses: number[]): void {
  view.loss.innerHTML = linePlotSvg({
    title: "training loss",
    xLabel: "step",
    yLabel: "loss (batch)",
    series: [{ name: "total loss", x: steps, mean: losses }],
    width: 720,
    height: 300,
  });
}

function progressTo(update: ProgressUpdate, started: number): void {
  view.progress.value = update.step / update.totalSteps;
  const seconds = (performance.now() - started) / 1000;
  view.status.textContent = `step ${update.step.toLocaleString("en-US")} of ` +
    `${update.totalSteps.toLocaleString("en-US")} (${seconds.toFixed(1)} s)`;
}

/** Runs `train` with the buttons disabled, reporting failures on the page. */
async function busy(train: (gpu: Gpu) => Promise<void>): Promise<void> {
  form.train.disabled = form.trainFour.disabled = true;
  setState("training");
  try {
    await train(await gpuOnce());
    setState("done");
  } catch (error) {
    view.status.textContent = `stopped: ${error instanceof Error ? error.message : String(error)}`;
    setState("error");
  } finally {
    form.train.disabled = form.trainFour.disabled = false;
  }
}

/**
 * Trains the panels' SAEs together, redrawing every panel (and calling `onProgress`) each time
 * the trainer reports; ends with the trained parameters drawn.
 */
async function trainPanels(
  gpu: Gpu,
  run: PageRun,
  panels: Panel[],
  onProgress: (update: ProgressUpdate) => void = () => {},
): Promise<PageReading[]> {
  panels.forEach((panel) => drawSae(panel, panel.setup.sae.params));
  const runs: TrainRun[] = panels.map(({ name, setup }) => ({
    sae: setup.sae,
    model: setup.model,
    tree: setup.tree,
    name,
  }));
  const started = performance.now();
  view.status.textContent = "compiling the training kernels…";
  const results = await trainToySaes(runs, {
    steps: run.steps,
    seed: run.seed,
    quiet: true,
    progressEvery: progressEveryFor(run.steps),
    progressParams: true,
    onProgress: (update) => {
      progressTo(update, started);
      panels.forEach((panel, m) => drawSae(panel, update.params![m]!));
      onProgress(update);
    },
  }, gpu);
  const diverged = results.find((r) => r.error);
  if (diverged) throw diverged.error;
  view.status.textContent += ", done";
  return panels.map((panel) => drawSae(panel, panel.setup.sae.params));
}

async function trainOne(gpu: Gpu): Promise<void> {
  const run = formRun();
  view.four.hidden = true;
  view.single.hidden = false;
  view.table.textContent = "";
  const panel: Panel = {
    name: "page",
    title: `Matryoshka SAE (${betaText(run.beta)}), children p = ${run.childProbs.join(", ")}`,
    setup: pageSetup(run),
    figure: view.heatmap,
    verdict: view.verdict,
  };
  const curve = { steps: [] as number[], losses: [] as number[] };
  const [reading] = await trainPanels(gpu, run, [panel], (update) => {
    curve.steps.push(update.step);
    curve.losses.push(update.losses[0]!);
    drawLoss(curve.steps, curve.losses);
  });
  view.table.textContent = cosSimTable("encoder (cos with true features)", reading!.encoder) +
    "\n\n" + cosSimTable("decoder", reading!.decoder);
}

async function trainFour(gpu: Gpu): Promise<void> {
  const run = formRun();
  view.single.hidden = true;
  view.four.hidden = false;
  view.fourGrid.replaceChildren();
  const setups = pageSetups(NOTEBOOK_SAES.map((spec) => ({
    ...run,
    childProbs: PAGE_TREES[spec.tree],
    beta: spec.beta ?? Infinity,
  })));
  const panels = NOTEBOOK_SAES.map((spec, i): Panel => {
    const box = document.createElement("div");
    const figure = document.createElement("div");
    figure.className = "figure";
    figure.dataset.sae = spec.name;
    const verdict = document.createElement("p");
    verdict.className = "verdict";
    box.append(figure, verdict);
    view.fourGrid.append(box);
    return { name: spec.name, title: spec.title, setup: setups[i]!, figure, verdict };
  });
  await trainPanels(gpu, run, panels);
}

let gpuPromise: Promise<Gpu> | undefined;
const gpuOnce = () => gpuPromise ??= getGpu();

async function start(): Promise<void> {
  if (!("gpu" in navigator)) {
    return noWebGpu("navigator.gpu is missing: this browser does not offer WebGPU here.");
  }
  let gpu: Gpu;
  try {
    gpu = await gpuOnce();
  } catch (error) {
    // The library's message goes on to Linux drivers; its first line says what happened.
    return noWebGpu((error instanceof Error ? error.message : String(error)).split("\n")[0]!);
  }
  view.adapter.textContent = `adapter: ${describeAdapter(gpu.summary)}`;
  byId("app").hidden = false;
  form.tree.addEventListener("change", syncForm);
  form.beta.addEventListener("input", syncForm);
  form.train.addEventListener("click", () => busy(trainOne));
  form.trainFour.addEventListener("click", () => busy(trainFour));
  syncForm();
  setState("ready");
}

function noWebGpu(reason: string): void {
  byId("no-webgpu").hidden = false;
  byId("no-webgpu-reason").textContent = reason;
  setState("no-webgpu");
}

start();
