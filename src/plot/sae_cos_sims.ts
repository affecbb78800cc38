/**
 * The notebook's `plot_sae_feat_cos_sims_seaborn(sae, toy_model, title, save_path)`: the encoder
 * and decoder cosine-similarity heatmaps of an SAE against the toy model's true features, as SVG.
 */
import type { MatryoshkaSAE } from "../sae/sae.ts";
import type { FeatureDirections } from "../sae/init.ts";
import { decoderCosSims, encoderCosSims } from "../metrics/cosine.ts";
import { cosSimHeatmapSvg } from "./heatmap.ts";
import { writeFileAtomic } from "../io/atomic.ts";

/** Options of {@link plotSaeFeatCosSims}. */
export interface PlotSaeOptions {
  /** Figure title, e.g. `Balanced Matryoshka SAE (β = 0.25)`. */
  title: string;
  /** Write the SVG here (atomically; `.svg` is the format whatever the extension). */
  savePath?: string;
  /** Write each value in its cell (default false). */
  showValues?: boolean;
}

/**
 * Draws the SAE's encoder and decoder cosine similarities with the true features (RdBu, −1 to 1,
 * one-based labels) and returns the SVG; writes it to `savePath` when given.
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
  if (options.savePath) {
    const slash = options.savePath.lastIndexOf("/");
    if (slash > 0) await Deno.mkdir(options.savePath.slice(0, slash), { recursive: true });
    await writeFileAtomic(options.savePath, svg);
  }
  return svg;
}
