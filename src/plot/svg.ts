/**
 * Small helpers shared by the hand-written SVG figures: XML escaping, number formatting for
 * attributes and tick labels, "nice" axis ticks, text elements and the document wrapper.
 *
 * Nothing here knows about a particular figure; `heatmap.ts` and `line_plot.ts` compose these.
 */

/** The font stack every figure uses (DejaVu Sans first: it has β, ∞ and the minus sign). */
export const FONT_FAMILY = "DejaVu Sans, Helvetica, Arial, sans-serif";

/**
 * Escapes `& < > " '` so that any string can be text content or an attribute value.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { escapeXml } from "./svg.ts";
 * assert.equal(escapeXml(`a<b & "c"`), "a&lt;b &amp; &quot;c&quot;");
 * ```
 */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => {
    switch (c) {
      case "&":
        return "&amp;";
      case "<":
        return "&lt;";
      case ">":
        return "&gt;";
      case '"':
        return "&quot;";
      default:
        return "&#39;";
    }
  });
}

/** A coordinate for an attribute: at most 2 decimals, no trailing zeros, no `-0`. */
export function num(value: number): string {
  const rounded = Math.round(value * 100) / 100;
  return rounded === 0 ? "0" : String(rounded);
}

/**
 * A tick label: the shortest decimal that shows `value` at the precision of `step`, with a true
 * minus sign (U+2212) as matplotlib draws it.
 */
export function formatTick(value: number, step = 0): string {
  let decimals = 0;
  if (step > 0 && Number.isFinite(step)) {
    decimals = Math.max(0, Math.min(10, -Math.floor(Math.log10(step) + 1e-9)));
  }
  let text = value.toFixed(decimals);
  if (decimals > 0) text = text.replace(/\.?0+$/, "");
  if (/^-0(\.0*)?$/.test(text)) text = "0";
  return text.replace(/^-/, "\u2212");
}

/**
 * About `count` evenly spaced round ticks (steps of 1, 2, 2.5 or 5 × 10^k) covering `[min, max]`.
 *
 * @returns the tick values (inside `[min, max]`) and the step between them.
 */
export function niceTicks(min: number, max: number, count = 5): { ticks: number[]; step: number } {
  if (!Number.isFinite(min) || !Number.isFinite(max)) {
    throw new RangeError(`Cannot compute ticks: the range must be finite, got [${min}, ${max}]`);
  }
  if (max < min) [min, max] = [max, min];
  if (max === min) return { ticks: [min], step: 0 };
  const raw = (max - min) / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw * 0.999) ??
    10 * power;
  const ticks: number[] = [];
  const first = Math.ceil(min / step - 1e-9);
  const last = Math.floor(max / step + 1e-9);
  for (let i = first; i <= last; i++) ticks.push(Number((i * step).toPrecision(12)));
  return { ticks, step };
}

/** Options of {@link svgText}. */
export interface TextOptions {
  /** Font size in px (default 12). */
  size?: number;
  /** Horizontal alignment against `x` (default `start`). */
  anchor?: "start" | "middle" | "end";
  /** Vertical alignment of the text against `y`. */
  baseline?: "middle" | "alphabetic" | "hanging";
  /** Font weight (default normal). */
  weight?: "normal" | "bold";
  /** Rotation in degrees about (x, y). */
  rotate?: number;
  /** Text colour (default black). */
  fill?: string;
  /** `class` attribute. */
  className?: string;
}

/** One `<text>` element; `content` is escaped. */
export function svgText(x: number, y: number, content: string, options: TextOptions = {}): string {
  const attrs = [`x="${num(x)}"`, `y="${num(y)}"`];
  if (options.className) attrs.push(`class="${escapeXml(options.className)}"`);
  attrs.push(`font-size="${num(options.size ?? 12)}"`);
  if (options.anchor && options.anchor !== "start") attrs.push(`text-anchor="${options.anchor}"`);
  // Shifts in em rather than dominant-baseline, which renderers support unevenly.
  if (options.baseline === "middle") attrs.push(`dy="0.35em"`);
  if (options.baseline === "hanging") attrs.push(`dy="0.72em"`);
  if (options.weight === "bold") attrs.push(`font-weight="bold"`);
  if (options.fill) attrs.push(`fill="${escapeXml(options.fill)}"`);
  if (options.rotate) attrs.push(`transform="rotate(${num(options.rotate)} ${num(x)} ${num(y)})"`);
  return `<text ${attrs.join(" ")}>${escapeXml(content)}</text>`;
}

/** A complete standalone SVG document (UTF-8, white background) around `body`. */
export function svgDocument(width: number, height: number, body: string[], title?: string): string {
  const head = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${num(width)}" height="${num(height)}" ` +
    `viewBox="0 0 ${num(width)} ${num(height)}" font-family="${FONT_FAMILY}">`,
  ];
  if (title !== undefined) head.push(`<title>${escapeXml(title)}</title>`);
  head.push(`<rect width="100%" height="100%" fill="white"/>`);
  return [...head, ...body, `</svg>`, ""].join("\n");
}

/** Throws a RangeError unless `value` is a positive finite number; `name` names the option. */
export function checkPositive(name: string, value: number): void {
  if (!(Number.isFinite(value) && value > 0)) {
    throw new RangeError(`Invalid ${name}: expected a positive number, got ${value}`);
  }
}
