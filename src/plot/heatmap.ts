/**
 * The notebook's figure: cosine similarity of each SAE latent with each true feature, for the
 * encoder and the decoder, as two heatmaps side by side (hand-written SVG).
 *
 * It follows `plot_sae_feat_cos_sims_seaborn` with `one_based_indexing=True`: panels "SAE encoder"
 * and "SAE decoder", axes "True feature" and "SAE Latent", one-based tick labels, colour map RdBu
 * from −1 (red) to +1 (blue), one colour bar "cos sim" with ticks −1, 0, 1, the title on top, and
 * the y axis inverted as the notebook does, so latent 1 is the bottom row. Colours come from
 * d3-scale-chromatic's `interpolateRdBu`, which maps 0 → red and 1 → blue, so a value
 * v ∈ [−1, 1] is drawn as `interpolateRdBu((v + 1) / 2)`. (d3's RdBu is a smooth B-spline through
 * the same 11 ColorBrewer colours matplotlib interpolates linearly; the two differ by a few RGB
 * units between the knots.)
 */
import { interpolateRdBu } from "../deps.ts";
import { checkPositive, num, svgDocument, svgText } from "./svg.ts";

/** Fill colour for a value that is not a number (a zero-length vector's cosine). */
export const MISSING_COLOR = "#bfbfbf";

/**
 * The RdBu colour of a cosine similarity: −1 red, 0 near white, +1 blue; values outside [−1, 1]
 * are clamped, NaN is {@link MISSING_COLOR}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cosSimColor } from "./heatmap.ts";
 * assert.equal(cosSimColor(1), "rgb(5, 48, 97)");
 * ```
 */
export function cosSimColor(value: number): string {
  if (Number.isNaN(value)) return MISSING_COLOR;
  const v = Math.max(-1, Math.min(1, value));
  return (interpolateRdBu as (t: number) => string)((v + 1) / 2);
}

/**
 * Input of {@link cosSimHeatmapSvg}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type CosSimHeatmapOptions, cosSimHeatmapSvg } from "./heatmap.ts";
 * const options: CosSimHeatmapOptions = {
 *   title: "Two latents",
 *   encoder: [[1, 0], [0, 1]],
 *   decoder: [[0.9, 0.1], [0, 1]],
 *   showValues: true,
 *   latentOrder: "top-down",
 * };
 * const svg = cosSimHeatmapSvg(options);
 * assert.equal(svg.match(/class="cell"/g)?.length, 8); // 2 panels × 2 latents × 2 features
 * assert.ok(svg.includes(">0.90</text>")); // showValues writes each value in its cell
 * ```
 */
export interface CosSimHeatmapOptions {
  /** Overall title, e.g. `Balanced Matryoshka SAE (β = 0.25)` (Unicode, escaped here). */
  title: string;
  /** Encoder cosine similarities, `[latent][feature]`. */
  encoder: number[][];
  /**
   * Decoder cosine similarities, `[latent][feature]` (same shape as `encoder`); without it the
   * figure has the one panel of `encoder` (e.g. a bias vector's cosines as one row).
   */
  decoder?: number[][];
  /** Width in px (default 760). */
  width?: number;
  /** Height in px (default 340). */
  height?: number;
  /** Write each value (2 decimals) in its cell (default false). */
  showValues?: boolean;
  /** Panel subtitles (default `["SAE encoder", "SAE decoder"]`, the notebook's). */
  panelTitles?: [string, string];
  /** `"bottom-up"` (default, the notebook's inverted y axis: latent 1 at the bottom) or `"top-down"`. */
  latentOrder?: "bottom-up" | "top-down";
  /** The y axis label (default `SAE Latent`). */
  rowLabel?: string;
  /** Tick labels of the rows, one per row (default one-based latent numbers). */
  rowNames?: string[];
}

function checkMatrix(name: string, m: number[][]): { rows: number; cols: number } {
  if (!Array.isArray(m) || m.length === 0) {
    throw new RangeError(`Invalid ${name}: expected a non-empty [latent][feature] array`);
  }
  const cols = m[0]!.length;
  if (cols === 0) throw new RangeError(`Invalid ${name}: rows must not be empty`);
  m.forEach((row, i) => {
    if (row.length !== cols) {
      throw new RangeError(
        `Invalid ${name}: every row must have ${cols} values, row ${i} has ${row.length}`,
      );
    }
  });
  return { rows: m.length, cols };
}

/** Black or white, whichever reads better on `rgb(r, g, b)` (seaborn's luminance rule). */
function textColorOn(fill: string): string {
  const match = /rgb\((\d+), (\d+), (\d+)\)/.exec(fill);
  if (!match) return "black";
  const lin = (c: number) => {
    const s = c / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  const [r, g, b] = [match[1], match[2], match[3]].map((c) => lin(Number(c)));
  return 0.2126 * r! + 0.7152 * g! + 0.0722 * b! > 0.408 ? "black" : "white";
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return "nan";
  const text = v.toFixed(2);
  return text === "-0.00" ? "0.00" : text.replace(/^-/, "\u2212");
}

/**
 * Renders the encoder and decoder cosine-similarity heatmaps as one SVG document.
 *
 * Each cell is a `<rect class="cell" data-panel data-latent data-feature data-value>` (zero-based
 * indices in the data attributes; the tick labels are one-based).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cosSimHeatmapSvg } from "./heatmap.ts";
 * const svg = cosSimHeatmapSvg({
 *   title: "Standard SAE (β = 0)",
 *   encoder: [[1, 0], [0, -1]],
 *   decoder: [[1, 0], [0, 1]],
 * });
 * assert.ok(svg.includes("β = 0"));
 * ```
 */
export function cosSimHeatmapSvg(options: CosSimHeatmapOptions): string {
  const { title, encoder, decoder, showValues = false } = options;
  const width = options.width ?? 760;
  const height = options.height ?? 340;
  checkPositive("width", width);
  checkPositive("height", height);
  const enc = checkMatrix("encoder", encoder);
  const dec = decoder ? checkMatrix("decoder", decoder) : enc;
  if (enc.rows !== dec.rows || enc.cols !== dec.cols) {
    throw new RangeError(
      `Invalid decoder: expected the encoder's shape [${enc.rows}][${enc.cols}], ` +
        `got [${dec.rows}][${dec.cols}]`,
    );
  }
  const nLatents = enc.rows;
  const nFeatures = enc.cols;
  const [encTitle, decTitle] = options.panelTitles ?? ["SAE encoder", "SAE decoder"];
  const bottomUp = (options.latentOrder ?? "bottom-up") === "bottom-up";

  // Layout: [y label + ticks | panel | gap | panel | colour bar + ticks + label].
  const left = 58;
  const gap = 66;
  const right = 92;
  const top = 64;
  const bottom = 46;
  const panels = decoder ? 2 : 1;
  const panelW = (width - left - (panels - 1) * gap - right) / panels;
  const rowLabel = options.rowLabel ?? "SAE Latent";
  if (options.rowNames && options.rowNames.length !== nLatents) {
    throw new RangeError(
      `Invalid rowNames: expected ${nLatents} names, one per row, got ${options.rowNames.length}`,
    );
  }
  const plotH = height - top - bottom;
  if (panelW < 20 || plotH < 20) {
    throw new RangeError(`Invalid size: ${width}×${height} px leaves no room for the panels`);
  }
  const cellW = panelW / nFeatures;
  const cellH = plotH / nLatents;
  const valueSize = Math.min(11, cellH * 0.4, cellW * 0.24);
  const xStride = Math.max(1, Math.ceil(16 / cellW));
  const yStride = Math.max(1, Math.ceil(14 / cellH));

  const body: string[] = [];
  body.push(svgText(width / 2, 24, title, { size: 15, anchor: "middle", className: "title" }));

  const panel = (name: string, subtitle: string, values: number[][], x0: number) => {
    const out: string[] = [];
    const rowY = (latent: number) => top + (bottomUp ? nLatents - 1 - latent : latent) * cellH;
    out.push(
      svgText(x0 + panelW / 2, top - 10, subtitle, {
        size: 12.5,
        anchor: "middle",
        className: "subtitle",
      }),
    );
    out.push(`<g class="cells" shape-rendering="crispEdges">`);
    values.forEach((row, latent) => {
      row.forEach((v, feature) => {
        const fill = cosSimColor(v);
        out.push(
          `<rect class="cell" data-panel="${name}" data-latent="${latent}" ` +
            `data-feature="${feature}" data-value="${v}" x="${num(x0 + feature * cellW)}" ` +
            `y="${num(rowY(latent))}" width="${num(cellW)}" height="${num(cellH)}" ` +
            `fill="${fill}"/>`,
        );
      });
    });
    out.push(`</g>`);
    if (showValues) {
      values.forEach((row, latent) => {
        row.forEach((v, feature) => {
          out.push(
            svgText(x0 + (feature + 0.5) * cellW, rowY(latent) + cellH / 2, formatValue(v), {
              size: valueSize,
              anchor: "middle",
              baseline: "middle",
              fill: textColorOn(cosSimColor(v)),
              className: "value",
            }),
          );
        });
      });
    }
    // Axes: tick marks and one-based labels at cell centres, then the axis labels.
    const yBottom = top + plotH;
    const ticks: string[] = [];
    for (let f = 0; f < nFeatures; f += xStride) {
      const x = x0 + (f + 0.5) * cellW;
      ticks.push(`M${num(x)} ${num(yBottom)}v4`);
      out.push(svgText(x, yBottom + 16, String(f + 1), { size: 10.5, anchor: "middle" }));
    }
    for (let l = 0; l < nLatents; l += yStride) {
      const y = rowY(l) + cellH / 2;
      ticks.push(`M${num(x0)} ${num(y)}h-4`);
      const name = options.rowNames?.[l] ?? String(l + 1);
      out.push(svgText(x0 - 7, y, name, { size: 10.5, anchor: "end", baseline: "middle" }));
    }
    out.push(`<path class="ticks" d="${ticks.join("")}" stroke="black" stroke-width="0.8"/>`);
    out.push(
      svgText(x0 + panelW / 2, yBottom + 36, "True feature", {
        size: 12,
        anchor: "middle",
        className: "axis-label",
      }),
    );
    out.push(
      svgText(x0 - 34, top + plotH / 2, rowLabel, {
        size: 12,
        anchor: "middle",
        rotate: -90,
        className: "axis-label",
      }),
    );
    return out;
  };

  body.push(...panel("encoder", encTitle, encoder, left));
  if (decoder) body.push(...panel("decoder", decTitle, decoder, left + panelW + gap));

  // Colour bar: 75% of the panel height, centred, +1 (blue) at the top.
  const barX = left + panels * panelW + (panels - 1) * gap + 22;
  const barW = 14;
  const barH = plotH * 0.75;
  const barY = top + (plotH - barH) / 2;
  const stops: string[] = [];
  const nStops = 32;
  for (let i = 0; i <= nStops; i++) {
    const t = i / nStops;
    stops.push(
      `<stop offset="${num(t * 100)}%" stop-color="${cosSimColor(2 * t - 1)}"/>`,
    );
  }
  body.push(
    `<defs><linearGradient id="cos-sim-rdbu" x1="0" y1="1" x2="0" y2="0">`,
    ...stops,
    `</linearGradient></defs>`,
    `<rect class="colorbar" x="${num(barX)}" y="${num(barY)}" width="${barW}" ` +
      `height="${num(barH)}" fill="url(#cos-sim-rdbu)" stroke="black" stroke-width="0.6"/>`,
  );
  const barTicks: string[] = [];
  for (const v of [-1, 0, 1]) {
    const y = barY + barH * (1 - (v + 1) / 2);
    barTicks.push(`M${num(barX + barW)} ${num(y)}h4`);
    body.push(
      svgText(barX + barW + 7, y, v < 0 ? `\u2212${-v}` : String(v), {
        size: 10.5,
        baseline: "middle",
        className: "colorbar-tick",
      }),
    );
  }
  body.push(`<path d="${barTicks.join("")}" stroke="black" stroke-width="0.8"/>`);
  body.push(
    svgText(barX + barW + 40, barY + barH / 2, "cos sim", {
      size: 12,
      anchor: "middle",
      rotate: -90,
      className: "axis-label",
    }),
  );
  return svgDocument(width, height, body, title);
}
