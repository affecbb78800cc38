/**
 * The balanceability map's figures (hand-written SVG): over the two swept world parameters, a
 * heatmap of β* (viridis; β* = ∞, the detached setup, hatched; no result grey) and a heatmap of
 * the largest |child component| of latent 0's encoder at β* (YlOrRd on a log scale, the tolerance
 * marked on the colour bar). On both, the balanceable region (residual below the tolerance) is
 * outlined: a path along every cell edge between a balanceable and a non-balanceable cell
 * ({@link outlineSegments}); the frame closes it along the grid's border. Cells are equal squares
 * in grid order, labelled with their axis values, so uneven value lists stay readable. Nothing here
 * trains or reads files; `balance_map.ts` builds the {@link MapGrid}.
 */
import { interpolateViridis, interpolateYlOrRd } from "../deps.ts";
import { MISSING_COLOR } from "../plot/heatmap.ts";
import { formatTick, niceTicks, num, svgDocument, svgText } from "../plot/svg.ts";

/**
 * What a map figure draws: grids `[j][i]` with row 0 at the bottom (y ascending) and column 0 at
 * the left (x ascending).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { betaStarMapSvg, type MapGrid } from "./map_figure.ts";
 * const grid: MapGrid = {
 *   xLabel: "p(child 1)", yLabel: "p(child 2)", xValues: [0.02, 0.5], yValues: [0.02, 0.5],
 *   betaStar: [[0.2, 0.1], [0.1, Infinity]],
 *   residual: [[0.01, 0.05], [0.05, 0.5]],
 *   balanceable: [[true, false], [false, false]],
 *   tolerance: 0.02,
 *   fixed: "p(child 3) = 0.15",
 * };
 * assert.equal(betaStarMapSvg(grid).match(/class="cell"/g)?.length, 4);
 * ```
 */
export interface MapGrid {
  /** The x axis label, e.g. `p(child 1)`. */
  xLabel: string;
  /** The y axis label. */
  yLabel: string;
  /** The x axis values, one per column. */
  xValues: number[];
  /** The y axis values, one per row. */
  yValues: number[];
  /** β* per cell (Infinity: the detached setup does best; null: no result). */
  betaStar: (number | null)[][];
  /** Largest |child component| at β* per cell (null: no result). */
  residual: (number | null)[][];
  /** Verdict per cell (null: no result). */
  balanceable: (boolean | null)[][];
  /** The verdicts' tolerance. */
  tolerance: number;
  /** The fixed part of the world, for the subtitle. */
  fixed?: string;
}

/**
 * A unit cell edge, in grid coordinates: cell (i, j) spans x from i to i + 1 and y from j to
 * j + 1.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type GridSegment, outlineSegments } from "./map_figure.ts";
 * const [edge]: GridSegment[] = outlineSegments([[true, false]]);
 * assert.deepEqual(edge, { x1: 1, y1: 0, x2: 1, y2: 1 }); // between column 0 and column 1
 * ```
 */
export interface GridSegment {
  /** Start, x. */
  x1: number;
  /** Start, y. */
  y1: number;
  /** End, x. */
  x2: number;
  /** End, y. */
  y2: number;
}

/**
 * The cell edges between balanceable cells (`true`) and the others (`false` or null: no result),
 * `inside[j][i]`: first the vertical edges (x = 1 … nx − 1, row by row from the bottom), then the
 * horizontal ones (y = 1 … ny − 1, left to right). The grid's border is not included.
 *
 * @throws {RangeError} for rows of different lengths.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { outlineSegments } from "./map_figure.ts";
 * // Row 0 (bottom): balanceable, not; row 1: balanceable, balanceable.
 * assert.deepEqual(outlineSegments([[true, false], [true, true]]), [
 *   { x1: 1, y1: 0, x2: 1, y2: 1 },
 *   { x1: 1, y1: 1, x2: 2, y2: 1 },
 * ]);
 * ```
 */
export function outlineSegments(
  inside: readonly (readonly (boolean | null)[])[],
): GridSegment[] {
  const nx = inside[0]?.length ?? 0;
  inside.forEach((row, j) => {
    if (row.length !== nx) {
      throw new RangeError(
        `Invalid grid: every row must have ${nx} cells, row ${j} has ${row.length}`,
      );
    }
  });
  const at = (i: number, j: number) => inside[j]![i] === true;
  const segments: GridSegment[] = [];
  for (let j = 0; j < inside.length; j++) {
    for (let i = 1; i < nx; i++) {
      if (at(i - 1, j) !== at(i, j)) segments.push({ x1: i, y1: j, x2: i, y2: j + 1 });
    }
  }
  for (let j = 1; j < inside.length; j++) {
    for (let i = 0; i < nx; i++) {
      if (at(i, j - 1) !== at(i, j)) segments.push({ x1: i, y1: j, x2: i + 1, y2: j });
    }
  }
  return segments;
}

/** Fill of cells whose β* is ∞: a hatch pattern, defined once per figure. */
const INFINITY_FILL = "url(#map-infinity)";
const INFINITY_PATTERN = `<pattern id="map-infinity" width="6" height="6" ` +
  `patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" ` +
  `fill="#3b3b3b"/><rect width="2.2" height="6" fill="#9a9a9a"/></pattern>`;

/** Black or white, whichever reads better on a `#rrggbb` or `rgb(r, g, b)` fill. */
function textColorOn(fill: string): string {
  let rgb: number[] | null = null;
  const hex = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(fill);
  if (hex) rgb = [hex[1]!, hex[2]!, hex[3]!].map((h) => parseInt(h, 16));
  const fn = /rgb\((\d+), ?(\d+), ?(\d+)\)/.exec(fill);
  if (fn) rgb = [fn[1]!, fn[2]!, fn[3]!].map(Number);
  if (!rgb) return "white";
  const lin = (c: number) => {
    const s = c / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  const [r, g, b] = rgb.map(lin);
  return 0.2126 * r! + 0.7152 * g! + 0.0722 * b! > 0.3 ? "black" : "white";
}

/** Two significant digits, a true minus, `∞`. */
function short(value: number): string {
  if (value === Infinity) return "∞";
  return String(Number(value.toPrecision(2))).replace(/^-/, "\u2212");
}

/** An axis value as a tick label (up to 4 significant digits). */
function axisValue(value: number): string {
  return String(Number(value.toPrecision(4)));
}

/** A colour scale for the bar: fill of a value, the bar's stops (0 = bottom) and its ticks. */
interface ColorScale {
  fill: (value: number) => string;
  stops: string[];
  ticks: { at: number; label: string }[];
  marks: { at: number; label: string }[];
  label: string;
}

/** One map figure: the cells, values, outline, axes, colour bar and legend. */
function mapSvg(
  grid: MapGrid,
  title: string,
  values: (number | null)[][],
  scale: ColorScale,
  legend: { fill: string; label: string }[],
): string {
  const nx = grid.xValues.length;
  const ny = grid.yValues.length;
  if (nx === 0 || ny === 0 || values.length !== ny || values.some((r) => r.length !== nx)) {
    throw new RangeError(
      `Invalid map grid: expected ${ny} rows of ${nx} values, one per axis value`,
    );
  }
  const left = 78;
  const top = grid.fixed ? 66 : 50;
  const plot = 460;
  const cell = Math.min(plot / nx, plot / ny);
  const plotW = cell * nx;
  const plotH = cell * ny;
  const barX = left + plotW + 26;
  const width = barX + 200;
  const height = top + plotH + 62;
  const cellX = (i: number) => left + i * cell;
  const cellY = (j: number) => top + (ny - 1 - j) * cell;

  const body: string[] = [`<defs>${INFINITY_PATTERN}</defs>`];
  body.push(svgText(width / 2, 22, title, { size: 15, anchor: "middle", className: "title" }));
  if (grid.fixed) {
    body.push(
      svgText(width / 2, 42, grid.fixed, { size: 11.5, anchor: "middle", className: "subtitle" }),
    );
  }
  body.push(`<g class="cells" shape-rendering="crispEdges">`);
  const labels: string[] = [];
  const valueSize = Math.min(11, cell * 0.3);
  for (let j = 0; j < ny; j++) {
    for (let i = 0; i < nx; i++) {
      const v = values[j]![i]!;
      const fill = v === null || Number.isNaN(v)
        ? MISSING_COLOR
        : v === Infinity
        ? INFINITY_FILL
        : scale.fill(v);
      body.push(
        `<rect class="cell" data-i="${i}" data-j="${j}" data-value="${v ?? ""}" ` +
          `x="${num(cellX(i))}" y="${num(cellY(j))}" width="${num(cell)}" height="${num(cell)}" ` +
          `fill="${fill}"/>`,
      );
      if (valueSize >= 6) {
        const text = v === null || Number.isNaN(v) ? "–" : short(v);
        const color = v === Infinity ? "white" : v === null ? "black" : textColorOn(fill);
        labels.push(
          svgText(cellX(i) + cell / 2, cellY(j) + cell / 2, text, {
            size: v === Infinity ? valueSize * 1.4 : valueSize,
            anchor: "middle",
            baseline: "middle",
            fill: color,
            className: "value",
          }),
        );
      }
    }
  }
  body.push(`</g>`, ...labels);

  // The balanceable region's outline: white under black, visible on every colour.
  const d = outlineSegments(grid.balanceable).map((s) =>
    `M${num(left + s.x1 * cell)} ${num(top + (ny - s.y1) * cell)}` +
    `L${num(left + s.x2 * cell)} ${num(top + (ny - s.y2) * cell)}`
  ).join("");
  if (d) {
    body.push(
      `<path class="outline-halo" d="${d}" fill="none" stroke="white" stroke-width="5" ` +
        `stroke-linecap="square"/>`,
      `<path class="outline" d="${d}" fill="none" stroke="black" stroke-width="2.4" ` +
        `stroke-linecap="square"/>`,
    );
  }
  body.push(
    `<rect class="frame" x="${num(left)}" y="${num(top)}" width="${num(plotW)}" ` +
      `height="${num(plotH)}" fill="none" stroke="black" stroke-width="1"/>`,
  );

  // Axes: a tick and the value at every cell centre (thinned when cells are small).
  const ticks: string[] = [];
  const xStride = Math.max(1, Math.ceil(34 / cell));
  for (let i = 0; i < nx; i += xStride) {
    const x = cellX(i) + cell / 2;
    ticks.push(`M${num(x)} ${num(top + plotH)}v4`);
    body.push(svgText(x, top + plotH + 16, axisValue(grid.xValues[i]!), {
      size: 10.5,
      anchor: "middle",
    }));
  }
  const yStride = Math.max(1, Math.ceil(14 / cell));
  for (let j = 0; j < ny; j += yStride) {
    const y = cellY(j) + cell / 2;
    ticks.push(`M${num(left)} ${num(y)}h-4`);
    body.push(svgText(left - 7, y, axisValue(grid.yValues[j]!), {
      size: 10.5,
      anchor: "end",
      baseline: "middle",
    }));
  }
  body.push(`<path class="ticks" d="${ticks.join("")}" stroke="black" stroke-width="0.8"/>`);
  body.push(
    svgText(left + plotW / 2, top + plotH + 40, grid.xLabel, {
      size: 12.5,
      anchor: "middle",
      className: "axis-label",
    }),
    svgText(22, top + plotH / 2, grid.yLabel, {
      size: 12.5,
      anchor: "middle",
      rotate: -90,
      className: "axis-label",
    }),
  );

  // Colour bar, then the legend under it.
  const barW = 14;
  const barH = Math.min(plotH * 0.6, 260);
  const barY = top;
  const stops = scale.stops.map((color, k) =>
    `<stop offset="${num(100 * k / (scale.stops.length - 1))}%" stop-color="${color}"/>`
  );
  body.push(
    `<defs><linearGradient id="map-scale" x1="0" y1="1" x2="0" y2="0">${stops.join("")}` +
      `</linearGradient></defs>`,
    `<rect class="colorbar" x="${num(barX)}" y="${num(barY)}" width="${barW}" ` +
      `height="${num(barH)}" fill="url(#map-scale)" stroke="black" stroke-width="0.6"/>`,
  );
  const barTicks: string[] = [];
  for (const t of scale.ticks) {
    const y = barY + barH * (1 - t.at);
    barTicks.push(`M${num(barX + barW)} ${num(y)}h4`);
    body.push(svgText(barX + barW + 7, y, t.label, {
      size: 10.5,
      baseline: "middle",
      className: "colorbar-tick",
    }));
  }
  for (const m of scale.marks) {
    const y = barY + barH * (1 - m.at);
    barTicks.push(`M${num(barX - 3)} ${num(y)}h${barW + 6}`);
    body.push(svgText(barX + barW + 7, y, m.label, {
      size: 10.5,
      baseline: "middle",
      className: "colorbar-mark",
    }));
  }
  body.push(`<path d="${barTicks.join("")}" stroke="black" stroke-width="0.9"/>`);
  body.push(
    svgText(barX + barW + (scale.marks.length > 0 ? 100 : 52), barY + barH / 2, scale.label, {
      size: 12,
      anchor: "middle",
      rotate: -90,
      className: "axis-label",
    }),
  );
  let ly = barY + barH + 30;
  const swatch = (fill: string, label: string, outline = false) => {
    body.push(
      outline
        ? `<path d="M${num(barX)} ${num(ly)}h22" stroke="black" stroke-width="2.4"/>`
        : `<rect x="${num(barX)}" y="${num(ly - 7)}" width="22" height="14" fill="${fill}" ` +
          `stroke="black" stroke-width="0.5"/>`,
      svgText(barX + 28, ly, label, { size: 10.5, baseline: "middle", className: "legend" }),
    );
    ly += 22;
  };
  swatch("", `balanceable: |residual| < ${grid.tolerance}`, true);
  for (const item of legend) swatch(item.fill, item.label);
  return svgDocument(width, height, body, title);
}

/**
 * The β* map: viridis from 0 to the largest finite β* (at least 0.1), ∞ hatched, no result grey,
 * each cell labelled with its β* (two significant digits), the balanceable region outlined.
 *
 * @throws {RangeError} when the grids do not match the axes.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { betaStarMapSvg } from "./map_figure.ts";
 * const svg = betaStarMapSvg({
 *   xLabel: "p(child 1)", yLabel: "p(child 2)", xValues: [0.1, 0.2], yValues: [0.1, 0.2],
 *   betaStar: [[0.25, 0.2], [null, Infinity]], residual: [[0, 0], [null, 0.4]],
 *   balanceable: [[true, true], [null, false]], tolerance: 0.02,
 * });
 * assert.ok(svg.includes('fill="url(#map-infinity)"')); // ∞ is hatched
 * assert.ok(svg.includes(">0.25</text>"));
 * assert.match(svg, /<path class="outline" d="M[^"]+"/);
 * ```
 */
export function betaStarMapSvg(grid: MapGrid): string {
  const finite = grid.betaStar.flat().filter((v): v is number => v !== null && Number.isFinite(v));
  const top = Math.max(0.1, ...finite);
  const { ticks, step } = niceTicks(0, top, 5);
  const stops = Array.from({ length: 17 }, (_, k) => interpolateViridis(k / 16));
  return mapSvg(grid, `β* over ${grid.xLabel} × ${grid.yLabel}`, grid.betaStar, {
    fill: (v) => interpolateViridis(Math.max(0, Math.min(1, v / top))),
    stops,
    ticks: ticks.map((t) => ({ at: t / top, label: formatTick(t, step) })),
    marks: [],
    label: "β* (inner prefix loss multiplier)",
  }, [
    { fill: INFINITY_FILL, label: "β* = ∞ (detached best)" },
    { fill: MISSING_COLOR, label: "no result" },
  ]);
}

/** The residual colour scale's bottom: 10⁻³ (smaller residuals take its colour). */
const RESIDUAL_MIN = 1e-3;

/**
 * Position of a residual on a log scale from {@link RESIDUAL_MIN} (0) to `top` (1), clamped.
 */
function residualAt(value: number, top: number): number {
  const t = (Math.log10(Math.max(value, RESIDUAL_MIN)) - Math.log10(RESIDUAL_MIN)) /
    (Math.log10(top) - Math.log10(RESIDUAL_MIN));
  return Math.max(0, Math.min(1, t));
}

/**
 * The residual map: the largest |child component| of latent 0's encoder at β*, YlOrRd on a log
 * scale from 10⁻³ to the largest residual (at least 10 × the tolerance; the tolerance marked on
 * the bar), each cell labelled (two significant digits), the balanceable region outlined.
 *
 * @throws {RangeError} when the grids do not match the axes.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { residualMapSvg } from "./map_figure.ts";
 * const svg = residualMapSvg({
 *   xLabel: "p(parent)", yLabel: "number of children", xValues: [0.1, 0.25], yValues: [2, 3],
 *   betaStar: [[0.25, 0.2], [0.1, 0.3]], residual: [[0.004, 0.05], [0.01, 0.3]],
 *   balanceable: [[true, false], [true, false]], tolerance: 0.02,
 * });
 * assert.ok(svg.includes(">0.05</text>"));
 * assert.ok(svg.includes(">tolerance 0.02</text>"));
 * ```
 */
export function residualMapSvg(grid: MapGrid): string {
  const stops = Array.from({ length: 17 }, (_, k) => interpolateYlOrRd(k / 16));
  const finite = grid.residual.flat().filter((v): v is number => v !== null && Number.isFinite(v));
  const top = Math.max(10 * grid.tolerance, 2 * RESIDUAL_MIN, ...finite);
  const values = [0.001, 0.01, 0.1, 1, 10].filter((v) => v <= top * 1.0001);
  // The top of the bar is labelled too unless a power of ten sits next to it.
  if (top > 1.5 * values.at(-1)!) values.push(Number(top.toPrecision(2)));
  const ticks = values.map((v) => ({ at: residualAt(v, top), label: String(v) }));
  return mapSvg(grid, "Largest |child component| of latent 0 at β*", grid.residual, {
    fill: (v) => interpolateYlOrRd(residualAt(v, top)),
    stops,
    ticks,
    marks: [{ at: residualAt(grid.tolerance, top), label: `tolerance ${grid.tolerance}` }],
    label: "max |encoder cos sim with a child|",
  }, [{ fill: MISSING_COLOR, label: "no result" }]);
}
