/**
 * The notebook's `plot_sae_feat_cos_sims_seaborn(sae, toy_model, title, save_path)`: the encoder
 * and decoder cosine-similarity heatmaps of an SAE against the toy model's true features, as SVG.
 */
import type { MatryoshkaSAE } from "../sae/sae.ts";
import type { FeatureDirections } from "../sae/init.ts";
import { decoderCosSims, encoderCosSims } from "../metrics/cosine.ts";
import { cosSimHeatmapSvg } from "./heatmap.ts";
import { saveFigure } from "./figure_files.ts";

/**
 * Options of {@link plotSaeFeatCosSims}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { plotSaeFeatCosSims, type PlotSaeOptions } from "./sae_cos_sims.ts";
 * import { MatryoshkaSAE } from "../sae/sae.ts";
 * const model = { embedding: Float32Array.from([1, 0, 0, 1]), nFeatures: 2 }; // 2 features in 2-d
 * const dir = await Deno.makeTempDir();
 * const options: PlotSaeOptions = { title: "Zero SAE", savePath: `${dir}/figs/sae.svg` };
 * const svg = await plotSaeFeatCosSims(new MatryoshkaSAE({ dIn: 2, dSae: 2 }), model, options);
 * assert.equal(await Deno.readTextFile(`${dir}/figs/sae.svg`), svg); // the folder is created
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface PlotSaeOptions {
  /** Figure title, e.g. `Balanced Matryoshka SAE (β = 0.25)`. */
  title: string;
  /**
   * Write the figure here (atomically), in the format the extension names as matplotlib does:
   * `.svg`, `.png` or `.pdf`.
   */
  savePath?: string;
  /** Write each value in its cell (default false). */
  showValues?: boolean;
}

/**
 * Draws the SAE's encoder and decoder cosine similarities with the true features (RdBu, −1 to 1,
 * one-based labels) and returns the SVG; writes it to `savePath` when given.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { plotSaeFeatCosSims } from "./sae_cos_sims.ts";
 * import { initSaeToMatchModel } from "../sae/init.ts";
 * import { MatryoshkaSAE } from "../sae/sae.ts";
 * const model = { embedding: Float32Array.from([1, 0, 0, 1]), nFeatures: 2 }; // 2 features in 2-d
 * const sae = new MatryoshkaSAE({ dIn: 2, dSae: 2 });
 * initSaeToMatchModel(sae, model, { featureOrdering: [1, 0] }); // latent 0 = feature 1
 * const svg = await plotSaeFeatCosSims(sae, model, { title: "Swapped SAE" });
 * assert.ok(svg.includes(`data-panel="decoder" data-latent="0" data-feature="1" data-value="1"`));
 * ```
 */
export async function plotSaeFeatCosSims(
  sae: MatryoshkaSAE,
  model: FeatureDirections,
  options: PlotSaeOptions,
): Promise<string> {
  const encoder = encoderCosSims(sae.params, sae.layout, model.embedding, model.nFeatures);
  const decoder = decoderCosSims(sae.params, sae.layout, model.embedding, model.nFeatures);
  const svg = cosSimHeatmapSvg({
    title: options.title,
    encoder,
    decoder,
    showValues: options.showValues ?? false,
  });
  if (options.savePath) await saveFigure(options.savePath, svg);
  return svg;
}
