/**
 * SVG figures turned into PNG and PDF, with the same look: resvg (its WebAssembly build) rasterises
 * PNG, PDFKit with SVG-to-PDFKit writes vector PDF, both with the DejaVu Sans that the SVG names
 * first (from the `dejavu-fonts-ttf` package, so no system font is needed and every machine draws
 * the same glyphs). Loaded on demand by `figure_files.ts`: nothing here runs for SVG output. Its
 * packages are pinned here, with full `npm:` specifiers as in `../deps.ts`.
 */
// deno-lint-ignore-file no-import-prefix
import { Buffer } from "node:buffer";
import { createRequire } from "node:module";
import { initWasm, Resvg } from "npm:@resvg/resvg-wasm@2.6.2";
import PDFDocument from "npm:pdfkit@0.20.2";
import SVGtoPDF from "npm:svg-to-pdfkit@0.1.8";
// Puts the font package in the module graph so that its files resolve below.
import "npm:dejavu-fonts-ttf@2.37.3/package.json" with { type: "json" };

const require = createRequire(import.meta.url);

/** PNG pixels per SVG pixel: 2 gives 192 dpi for the SVG's 96 px per inch. */
export const PNG_SCALE = 2;

/** The date written into every PDF, so that the same figure gives the same bytes. */
const PDF_DATE = new Date(Date.UTC(2025, 0, 1));

const FONT_FILES = {
  regular: "dejavu-fonts-ttf/ttf/DejaVuSans.ttf",
  bold: "dejavu-fonts-ttf/ttf/DejaVuSans-Bold.ttf",
} as const;

let fonts: Promise<{ regular: Uint8Array; bold: Uint8Array }> | undefined;
let resvgReady: Promise<void> | undefined;

function loadFonts(): Promise<{ regular: Uint8Array; bold: Uint8Array }> {
  fonts ??= (async () => ({
    regular: await Deno.readFile(require.resolve(FONT_FILES.regular)),
    bold: await Deno.readFile(require.resolve(FONT_FILES.bold)),
  }))();
  return fonts;
}

/** The SVG's `width` and `height` attributes (pixels). */
function svgSize(svg: string): { width: number; height: number } {
  const root = /<svg\b[^>]*>/.exec(svg)?.[0] ?? "";
  const width = Number(/\bwidth="([\d.]+)"/.exec(root)?.[1]);
  const height = Number(/\bheight="([\d.]+)"/.exec(root)?.[1]);
  if (!(width > 0 && height > 0)) {
    throw new RangeError("Cannot render the figure: its <svg> has no positive width and height");
  }
  return { width, height };
}

/**
 * Rasterises an SVG figure to PNG at {@link PNG_SCALE}× its pixel size on a white background.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { svgToPng } from "./figure_render.ts";
 * const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><text y="15">β</text></svg>`;
 * const png = await svgToPng(svg);
 * assert.deepEqual([...png.slice(1, 4)], [0x50, 0x4e, 0x47]); // "PNG"
 * ```
 */
export async function svgToPng(svg: string): Promise<Uint8Array> {
  resvgReady ??= (async () => {
    await initWasm(await Deno.readFile(require.resolve("@resvg/resvg-wasm/index_bg.wasm")));
  })();
  await resvgReady;
  const { regular, bold } = await loadFonts();
  const resvg = new Resvg(svg, {
    background: "white",
    fitTo: { mode: "zoom", value: PNG_SCALE },
    font: { fontBuffers: [regular, bold], defaultFontFamily: "DejaVu Sans" },
  });
  return resvg.render().asPng();
}

/**
 * Writes an SVG figure as a one-page vector PDF of the same size (96 px to the inch, so a 760 px
 * figure is 570 pt wide), its text in embedded DejaVu Sans.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { svgToPdf } from "./figure_render.ts";
 * const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><text y="15">β</text></svg>`;
 * const pdf = await svgToPdf(svg);
 * assert.equal(new TextDecoder().decode(pdf.slice(0, 5)), "%PDF-");
 * assert.deepEqual(await svgToPdf(svg), pdf); // the same figure, the same bytes
 * ```
 */
export async function svgToPdf(svg: string): Promise<Uint8Array> {
  const { width, height } = svgSize(svg);
  const { regular, bold } = await loadFonts();
  const points = { width: width * 0.75, height: height * 0.75 };
  const doc = new PDFDocument({
    size: [points.width, points.height],
    margin: 0,
    info: { Creator: "matryoshka-gpu", Producer: "PDFKit", CreationDate: PDF_DATE },
  });
  doc.registerFont("DejaVu Sans", Buffer.from(regular));
  doc.registerFont("DejaVu Sans Bold", Buffer.from(bold));
  const chunks: Uint8Array[] = [];
  doc.on("data", (chunk: Uint8Array) => chunks.push(chunk));
  const ended = new Promise<void>((resolve, reject) => {
    doc.on("end", () => resolve());
    doc.on("error", reject);
  });
  SVGtoPDF(doc, svg, 0, 0, {
    ...points,
    fontCallback: (_family: string, bold: boolean) => bold ? "DejaVu Sans Bold" : "DejaVu Sans",
  });
  doc.end();
  await ended;
  const pdf = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    pdf.set(chunk, offset);
    offset += chunk.length;
  }
  return pdf;
}
