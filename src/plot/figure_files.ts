/**
 * Figures as files, in the format their path's extension names, as matplotlib's `savefig` chooses:
 * `.svg` (the figures' own text), `.png` or `.pdf` (rendered by `figure_render.ts`, loaded only
 * when needed). Files are written atomically.
 */
import { writeFileAtomic } from "../io/atomic.ts";

/**
 * The figure formats, in the order `--format` lists them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FIGURE_FORMATS } from "./figure_files.ts";
 * assert.deepEqual(FIGURE_FORMATS, ["svg", "png", "pdf"]);
 * ```
 */
export const FIGURE_FORMATS = ["svg", "png", "pdf"] as const;

/**
 * One of {@link FIGURE_FORMATS}.
 *
 * @example
 * ```ts
 * import type { FigureFormat } from "./figure_files.ts";
 * const paper: FigureFormat = "pdf";
 * ```
 */
export type FigureFormat = typeof FIGURE_FORMATS[number];

/**
 * The format a name stands for (`svg`, `png`, `pdf`, any case), or undefined.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseFigureFormat } from "./figure_files.ts";
 * assert.deepEqual([parseFigureFormat("PNG"), parseFigureFormat("jpg")], ["png", undefined]);
 * ```
 */
export function parseFigureFormat(name: string): FigureFormat | undefined {
  const lower = name.toLowerCase();
  return FIGURE_FORMATS.find((f) => f === lower);
}

/**
 * The format a save path asks for, from its extension (case-insensitive).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { figureFormatOf } from "./figure_files.ts";
 * assert.equal(figureFormatOf("plots/toy_mat_balanced.PDF"), "pdf");
 * assert.throws(() => figureFormatOf("plots/fig.jpg"), /\.svg, \.png or \.pdf/);
 * ```
 *
 * @throws {RangeError} for any other extension, or none.
 */
export function figureFormatOf(path: string): FigureFormat {
  const name = path.slice(Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\")) + 1);
  const dot = name.lastIndexOf(".");
  const extension = dot > 0 ? name.slice(dot + 1).toLowerCase() : "";
  const format = parseFigureFormat(extension);
  if (format === undefined) {
    throw new RangeError(
      `Cannot save the figure "${path}": its extension must be .svg, .png or .pdf, ` +
        `got ${extension ? `.${extension}` : "none"}`,
    );
  }
  return format;
}

/**
 * The bytes of an SVG figure in `format`: UTF-8 for SVG, a PNG at twice the SVG's pixel size, or
 * a vector PDF of the same size.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { renderFigure } from "./figure_files.ts";
 * const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"></svg>`;
 * assert.equal(new TextDecoder().decode(await renderFigure(svg, "svg")), svg);
 * ```
 */
export async function renderFigure(svg: string, format: FigureFormat): Promise<Uint8Array> {
  if (format === "svg") return new TextEncoder().encode(svg);
  const render = await import("./figure_render.ts");
  return format === "png" ? render.svgToPng(svg) : render.svgToPdf(svg);
}

/**
 * Writes an SVG figure to `path` in the format its extension names (creating the folder),
 * atomically.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { saveFigure } from "./figure_files.ts";
 * const dir = await Deno.makeTempDir();
 * const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"></svg>`;
 * await saveFigure(`${dir}/figs/empty.pdf`, svg);
 * const head = (await Deno.readFile(`${dir}/figs/empty.pdf`)).slice(0, 5);
 * assert.equal(new TextDecoder().decode(head), "%PDF-");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function saveFigure(path: string, svg: string): Promise<void> {
  const format = figureFormatOf(path);
  const bytes = await renderFigure(svg, format);
  const slash = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  if (slash > 0) await Deno.mkdir(path.slice(0, slash), { recursive: true });
  await writeFileAtomic(path, bytes);
}

/**
 * Writes one figure as `<base>.<format>` for every format asked (`--format svg,png,pdf`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { saveFigureFormats } from "./figure_files.ts";
 * const dir = await Deno.makeTempDir();
 * const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"></svg>`;
 * await saveFigureFormats(`${dir}/fig`, svg, ["svg", "png"]);
 * assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["fig.png", "fig.svg"]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function saveFigureFormats(
  base: string,
  svg: string,
  formats: readonly FigureFormat[],
): Promise<void> {
  for (const format of formats) await saveFigure(`${base}.${format}`, svg);
}
