/**
 * A line plot as hand-written SVG: one line per series (the mean over seeds), an optional shaded
 * min–max band, vertical dashed marker lines (e.g. β*), a legend to the right and axes with ticks.
 *
 * Infinite x values (β = ∞) cannot be placed on a linear axis: the caller maps them to a finite
 * position and names that tick, e.g. `x: [0, 0.25, 0.5, 1.5]` with
 * `xTicks: [0, 0.25, 0.5, { value: 1.5, label: "∞" }]`. Non-finite x or mean values are refused
 * with the series and index named; a NaN in `min`/`max` leaves a gap in the band.
 */
import { schemeCategory10 } from "../deps.ts";
import {
  checkPositive,
  escapeXml,
  formatTick,
  niceTicks,
  num,
  svgDocument,
  svgText,
} from "./svg.ts";

/**
 * One line: `mean[i]` at `x[i]`, with an optional band from `min[i]` to `max[i]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { linePlotSvg, type LineSeries } from "./line_plot.ts";
 * const series: LineSeries = {
 *   name: "child 1",
 *   x: [0, 0.5, 1],
 *   mean: [-0.3, 0, 0.2],
 *   min: [-0.4, -0.1, 0.1],
 *   max: [-0.2, 0.1, 0.3],
 * };
 * const svg = linePlotSvg({ title: "Encoder", xLabel: "β", yLabel: "cos sim", series: [series] });
 * assert.equal(svg.match(/class="band"/g)?.length, 1); // one min–max band
 * ```
 */
export interface LineSeries {
  /** Legend entry. */
  name: string;
  /** X positions (finite; map ∞ to a finite position). */
  x: number[];
  /** The line's y values, one per x. */
  mean: number[];
  /** Lower edge of the band, one per x (NaN leaves a gap). */
  min?: number[];
  /** Upper edge of the band, one per x (NaN leaves a gap). */
  max?: number[];
  /** CSS colour (default: matplotlib's tab10 cycle). */
  color?: string;
  /** SVG `stroke-dasharray` of the line, e.g. `"7 4"` (default: solid). */
  dash?: string;
}

/**
 * A labelled vertical dashed line at `x`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type LineMarker, linePlotSvg } from "./line_plot.ts";
 * const marker: LineMarker = { x: 0.25, label: "β*" };
 * const svg = linePlotSvg({
 *   title: "MCC",
 *   xLabel: "β",
 *   yLabel: "MCC",
 *   series: [{ name: "decoder", x: [0, 0.5], mean: [0.9, 1] }],
 *   markers: [marker],
 * });
 * assert.ok(svg.includes(`class="marker-label" font-size="11" fill="#444">β*</text>`));
 * ```
 */
export interface LineMarker {
  /** Where the line is drawn. */
  x: number;
  /** Text at the top of the line, e.g. `β*`. */
  label: string;
}

/**
 * A tick: a value (labelled with its number) or a value with its own label (e.g. "∞").
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { linePlotSvg, type Tick } from "./line_plot.ts";
 * const xTicks: Tick[] = [0, 0.5, { value: 1.5, label: "∞" }]; // β = ∞ drawn at x = 1.5
 * const svg = linePlotSvg({
 *   title: "MCC",
 *   xLabel: "β",
 *   yLabel: "MCC",
 *   series: [{ name: "decoder", x: [0, 0.5, 1.5], mean: [0.8, 0.9, 1] }],
 *   xTicks,
 * });
 * assert.ok(svg.includes(">∞</text>") && svg.includes(">0.5</text>"));
 * ```
 */
export type Tick = number | { value: number; label: string };

/**
 * Input of {@link linePlotSvg}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { linePlotSvg, type LinePlotOptions } from "./line_plot.ts";
 * const options: LinePlotOptions = {
 *   title: "MCC by β",
 *   xLabel: "β",
 *   yLabel: "MCC",
 *   series: [{ name: "decoder", x: [0, 1], mean: [0.8, 0.9] }],
 *   yRange: [0, 1],
 *   width: 600,
 * };
 * assert.ok(linePlotSvg(options).includes(`width="600" height="420"`));
 * ```
 */
export interface LinePlotOptions {
  /** Title above the plot. */
  title: string;
  /** X axis label. */
  xLabel: string;
  /** Y axis label. */
  yLabel: string;
  /** The lines (at least one). */
  series: LineSeries[];
  /** Vertical dashed marker lines. */
  markers?: LineMarker[];
  /** X ticks (default: round numbers over the data range). */
  xTicks?: Tick[];
  /** Y ticks (default: round numbers over the y range). */
  yTicks?: Tick[];
  /** Y axis range (default: the data's range plus 5% each side). */
  yRange?: [number, number];
  /** X axis range (default: the data, markers and ticks, plus 3% each side). */
  xRange?: [number, number];
  /** Width in px (default 720). */
  width?: number;
  /** Height in px (default 420). */
  height?: number;
}

const TAB10 = schemeCategory10 as readonly string[];

function checkSeries(s: LineSeries, k: number): void {
  const where = `series ${k} ("${s.name}")`;
  if (s.x.length === 0) throw new RangeError(`Invalid ${where}: x must not be empty`);
  if (s.mean.length !== s.x.length) {
    throw new RangeError(
      `Invalid ${where}: mean has ${s.mean.length} values, expected ${s.x.length} (one per x)`,
    );
  }
  for (const key of ["min", "max"] as const) {
    const band = s[key];
    if (band && band.length !== s.x.length) {
      throw new RangeError(
        `Invalid ${where}: ${key} has ${band.length} values, expected ${s.x.length} (one per x)`,
      );
    }
  }
  s.x.forEach((v, i) => {
    if (!Number.isFinite(v)) {
      throw new RangeError(
        `Invalid ${where}: x[${i}] is ${v}; map infinite x to a finite position and label it ` +
          `with xTicks`,
      );
    }
    if (!Number.isFinite(s.mean[i]!)) {
      throw new RangeError(`Invalid ${where}: mean[${i}] is ${s.mean[i]}, expected a number`);
    }
  });
}

function checkRange(name: string, range: [number, number]): void {
  if (!(Number.isFinite(range[0]) && Number.isFinite(range[1]) && range[0] < range[1])) {
    throw new RangeError(`Invalid ${name}: expected [min, max] with min < max, got [${range}]`);
  }
}

function extent(values: number[], padFraction: number, fallbackPad: number): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (Number.isFinite(v)) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
  }
  if (lo === Infinity) return [0, 1];
  const pad = hi > lo ? (hi - lo) * padFraction : fallbackPad || Math.abs(lo) * 0.1 || 1;
  return [lo - pad, hi + pad];
}

function resolveTicks(ticks: Tick[] | undefined, range: [number, number], count: number) {
  if (ticks) {
    return ticks.map((t) => typeof t === "number" ? { value: t, label: formatTick(t, 0.001) } : t)
      .map((t) => ({ value: t.value, label: t.label.replace(/^-/, "\u2212") }));
  }
  const { ticks: values, step } = niceTicks(range[0], range[1], count);
  return values.map((value) => ({ value, label: formatTick(value, step) }));
}

/**
 * Renders a line plot with optional min–max bands, marker lines and a legend as one SVG document.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { linePlotSvg } from "./line_plot.ts";
 * const svg = linePlotSvg({
 *   title: "Parent encoder cos sim with child 1",
 *   xLabel: "β",
 *   yLabel: "cos sim",
 *   series: [{ name: "child 1", x: [0, 0.25, 1.5], mean: [-0.3, 0, 0.2] }],
 *   xTicks: [0, 0.25, { value: 1.5, label: "∞" }],
 *   markers: [{ x: 0.25, label: "β*" }],
 * });
 * assert.ok(svg.includes("∞"));
 * ```
 */
export function linePlotSvg(options: LinePlotOptions): string {
  const { title, xLabel, yLabel, series, markers = [] } = options;
  const width = options.width ?? 720;
  const height = options.height ?? 420;
  checkPositive("width", width);
  checkPositive("height", height);
  if (series.length === 0) throw new RangeError("Invalid series: expected at least one series");
  series.forEach(checkSeries);
  markers.forEach((m, i) => {
    if (!Number.isFinite(m.x)) {
      throw new RangeError(`Invalid markers[${i}] ("${m.label}"): x is ${m.x}, expected a number`);
    }
  });
  if (options.yRange) checkRange("yRange", options.yRange);
  if (options.xRange) checkRange("xRange", options.xRange);

  const tickValue = (t: Tick) => typeof t === "number" ? t : t.value;
  const xRange = options.xRange ?? extent(
    [
      ...series.flatMap((s) => s.x),
      ...markers.map((m) => m.x),
      ...(options.xTicks ?? []).map(tickValue),
    ],
    0.03,
    0.5,
  );
  const yRange = options.yRange ?? extent(
    series.flatMap((s) => [...s.mean, ...(s.min ?? []), ...(s.max ?? [])]),
    0.05,
    0.5,
  );

  // Layout: legend on the right, sized by its longest name.
  const legendChars = Math.max(...series.map((s) => s.name.length));
  const legendW = Math.min(240, 34 + 7 * legendChars);
  const left = 70;
  const right = legendW + 24;
  const top = 48;
  const bottom = 56;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  if (plotW < 40 || plotH < 40) {
    throw new RangeError(`Invalid size: ${width}×${height} px leaves no room for the plot`);
  }
  const sx = (x: number) => left + (x - xRange[0]) / (xRange[1] - xRange[0]) * plotW;
  const sy = (y: number) => top + (1 - (y - yRange[0]) / (yRange[1] - yRange[0])) * plotH;

  const body: string[] = [];
  body.push(svgText(width / 2, 26, title, { size: 15, anchor: "middle", className: "title" }));
  body.push(
    `<defs><clipPath id="plot-area"><rect x="${num(left)}" y="${num(top)}" ` +
      `width="${num(plotW)}" height="${num(plotH)}"/></clipPath></defs>`,
  );

  // Grid and ticks.
  const xTicks = resolveTicks(options.xTicks, xRange, Math.max(2, Math.round(plotW / 90)))
    .filter((t) => t.value >= xRange[0] - 1e-12 && t.value <= xRange[1] + 1e-12);
  const yTicks = resolveTicks(options.yTicks, yRange, Math.max(2, Math.round(plotH / 60)))
    .filter((t) => t.value >= yRange[0] - 1e-12 && t.value <= yRange[1] + 1e-12);
  const grid: string[] = [];
  const tickMarks: string[] = [];
  for (const t of xTicks) {
    const x = sx(t.value);
    grid.push(`M${num(x)} ${num(top)}V${num(top + plotH)}`);
    tickMarks.push(`M${num(x)} ${num(top + plotH)}v5`);
    body.push(svgText(x, top + plotH + 19, t.label, { size: 11, anchor: "middle" }));
  }
  for (const t of yTicks) {
    const y = sy(t.value);
    grid.push(`M${num(left)} ${num(y)}H${num(left + plotW)}`);
    tickMarks.push(`M${num(left)} ${num(y)}h-5`);
    body.push(svgText(left - 8, y, t.label, { size: 11, anchor: "end", baseline: "middle" }));
  }
  body.push(`<path class="grid" d="${grid.join("")}" stroke="#e5e5e5" stroke-width="1"/>`);

  // Bands, then lines, clipped to the plot area.
  const data: string[] = [`<g clip-path="url(#plot-area)">`];
  series.forEach((s, k) => {
    const color = s.color ?? TAB10[k % TAB10.length]!;
    if (s.min && s.max) {
      // One polygon per run of indices where both bounds are numbers.
      let run: number[] = [];
      const flush = () => {
        if (run.length > 0) {
          const upper = run.map((i) => `${num(sx(s.x[i]!))},${num(sy(s.max![i]!))}`);
          const lower = run.slice().reverse().map((i) =>
            `${num(sx(s.x[i]!))},${num(sy(s.min![i]!))}`
          );
          data.push(
            `<polygon class="band" data-series="${k}" points="${[...upper, ...lower].join(" ")}" ` +
              `fill="${escapeXml(color)}" fill-opacity="0.2" stroke="none"/>`,
          );
        }
        run = [];
      };
      s.x.forEach((_, i) => {
        if (Number.isFinite(s.min![i]!) && Number.isFinite(s.max![i]!)) run.push(i);
        else flush();
      });
      flush();
    }
  });
  series.forEach((s, k) => {
    const color = s.color ?? TAB10[k % TAB10.length]!;
    const points = s.x.map((x, i) => `${num(sx(x))},${num(sy(s.mean[i]!))}`);
    data.push(
      `<polyline class="line" data-series="${k}" points="${points.join(" ")}" fill="none" ` +
        `stroke="${escapeXml(color)}" stroke-width="2" stroke-linejoin="round"${dashOf(s)}/>`,
    );
    for (const p of points) {
      const [px, py] = p.split(",");
      data.push(`<circle cx="${px}" cy="${py}" r="2.8" fill="${escapeXml(color)}"/>`);
    }
  });
  data.push(`</g>`);
  body.push(...data);

  // Markers: dashed vertical lines labelled at the top of the plot, each further label one line
  // lower (markers near each other would otherwise write over each other); a label that would
  // run past the plot's right edge is written to the left of its line.
  markers.forEach((m, i) => {
    const x = sx(m.x);
    const fitsRight = x + 4 + 6.2 * m.label.length <= left + plotW;
    body.push(
      `<line class="marker" x1="${num(x)}" y1="${num(top)}" x2="${num(x)}" ` +
        `y2="${num(top + plotH)}" stroke="#444" stroke-width="1.2" stroke-dasharray="5 4"/>`,
      svgText(fitsRight ? x + 4 : x - 4, top + 13 + 14 * i, m.label, {
        size: 11,
        fill: "#444",
        className: "marker-label",
        ...(fitsRight ? {} : { anchor: "end" as const }),
      }),
    );
  });

  // Axes frame, tick marks and labels.
  body.push(
    `<rect x="${num(left)}" y="${num(top)}" width="${num(plotW)}" height="${num(plotH)}" ` +
      `fill="none" stroke="black" stroke-width="1"/>`,
    `<path class="ticks" d="${tickMarks.join("")}" stroke="black" stroke-width="1"/>`,
    svgText(left + plotW / 2, height - 14, xLabel, {
      size: 12.5,
      anchor: "middle",
      className: "axis-label",
    }),
    svgText(18, top + plotH / 2, yLabel, {
      size: 12.5,
      anchor: "middle",
      rotate: -90,
      className: "axis-label",
    }),
  );

  // Legend.
  const legendX = left + plotW + 16;
  series.forEach((s, k) => {
    const color = s.color ?? TAB10[k % TAB10.length]!;
    const y = top + 10 + k * 20;
    body.push(
      `<line class="legend" x1="${num(legendX)}" y1="${num(y)}" x2="${num(legendX + 22)}" ` +
        `y2="${num(y)}" stroke="${escapeXml(color)}" stroke-width="2"${dashOf(s)}/>`,
      svgText(legendX + 28, y, s.name, { size: 11, baseline: "middle" }),
    );
  });
  return svgDocument(width, height, body, title);
}

/** The stroke-dasharray attribute of a dashed series (empty for a solid one). */
function dashOf(s: LineSeries): string {
  return s.dash ? ` stroke-dasharray="${escapeXml(s.dash)}"` : "";
}
