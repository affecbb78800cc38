/**
 * Figures as PNG and PDF with the SVG's look: every heatmap cell of the notebook figure has its
 * SVG colour at its centre in the PNG; text is drawn (β, ∞ and the minus sign included, with no
 * system font); the PDF is one page of the SVG's size with DejaVu Sans embedded, and rasterised by
 * poppler's `pdftoppm` it matches the PNG pixel for pixel within anti-aliasing; the same figure
 * gives the same bytes; the save path's extension picks the format and others are refused.
 */
import assert from "node:assert/strict";
// deno-lint-ignore no-import-prefix -- a test-only package, pinned where it is used
import { PNG } from "npm:pngjs@7.0.0";
import { Buffer } from "node:buffer";
import { cosSimHeatmapSvg } from "../src/plot/heatmap.ts";
import { figureFormatOf, renderFigure, saveFigure } from "../src/plot/figure_files.ts";
import { PNG_SCALE } from "../src/plot/figure_render.ts";

/** A figure like the notebook's: a 4 × 4 encoder and decoder with values across [−1, 1]. */
const values = [0, 1, 2, 3].map((l) =>
  [0, 1, 2, 3].map((f) => Math.round(100 * Math.sin(3 * l + f)) / 100)
);
const figure = cosSimHeatmapSvg({
  title: "Balanced Matryoshka SAE (β = 0.25)",
  encoder: values,
  decoder: values.map((row) => row.map((v) => -v)),
});

interface Image {
  width: number;
  height: number;
  data: Uint8Array;
}

const decodePng = (bytes: Uint8Array): Image => PNG.sync.read(Buffer.from(bytes));

function pixel(image: Image, x: number, y: number): [number, number, number] {
  const i = 4 * (Math.round(y) * image.width + Math.round(x));
  return [image.data[i]!, image.data[i + 1]!, image.data[i + 2]!];
}

function parseColor(text: string): [number, number, number] {
  const rgb = /rgb\((\d+),\s*(\d+),\s*(\d+)\)/.exec(text);
  if (rgb) return [Number(rgb[1]), Number(rgb[2]), Number(rgb[3])];
  const hex = /^#([0-9a-f]{6})$/i.exec(text);
  assert.ok(hex, `a colour: ${text}`);
  const n = parseInt(hex[1]!, 16);
  return [n >> 16, (n >> 8) & 255, n & 255];
}

/** The cells of the SVG: centre (SVG pixels) and fill. */
function cells(svg: string): { x: number; y: number; fill: [number, number, number] }[] {
  return [...svg.matchAll(/<rect class="cell"[^>]*>/g)].map(([tag]) => {
    const attr = (name: string) => new RegExp(`\\s${name}="([^"]+)"`).exec(tag)![1]!;
    return {
      x: Number(attr("x")) + Number(attr("width")) / 2,
      y: Number(attr("y")) + Number(attr("height")) / 2,
      fill: parseColor(attr("fill")),
    };
  });
}

function assertColor(got: number[], want: number[], what: string, tolerance = 2): void {
  const worst = Math.max(...got.map((g, i) => Math.abs(g - want[i]!)));
  assert.ok(worst <= tolerance, `${what}: got rgb(${got}), expected rgb(${want})`);
}

/** Pixels that are not white. */
const inked = (image: Image) => {
  let n = 0;
  for (let i = 0; i < image.data.length; i += 4) {
    if (image.data[i]! < 250 || image.data[i + 1]! < 250 || image.data[i + 2]! < 250) n++;
  }
  return n;
};

const textSvg = (text: string) =>
  `<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40">` +
  `<text x="10" y="28" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="20">${text}</text></svg>`;

Deno.test("PNG: every cell has its SVG colour, at twice the SVG's size", async () => {
  const png = decodePng(await renderFigure(figure, "png"));
  const width = Number(/<svg[^>]*\swidth="([\d.]+)"/.exec(figure)![1]);
  assert.equal(png.width, width * PNG_SCALE);
  const list = cells(figure);
  assert.equal(list.length, 32);
  for (const [i, cell] of list.entries()) {
    assertColor(pixel(png, cell.x * PNG_SCALE, cell.y * PNG_SCALE), cell.fill, `cell ${i}`);
  }
  assertColor(pixel(png, 1, 1), [255, 255, 255], "background");
});

Deno.test("PNG: text is drawn, β, ∞ and − included, from the bundled DejaVu Sans", async () => {
  const blank = inked(decodePng(await renderFigure(textSvg(""), "png")));
  assert.equal(blank, 0);
  for (const text of ["β", "∞", "\u2212", "SAE"]) {
    const ink = inked(decodePng(await renderFigure(textSvg(text), "png")));
    assert.ok(ink > 40, `"${text}" drew ${ink} pixels`);
  }
});

const pdftoppm = await new Deno.Command("pdftoppm", { args: ["-v"], stderr: "null" }).output()
  .then(() => true, () => false);

Deno.test({
  name: "PDF: one page of the SVG's size, DejaVu Sans embedded, the PNG's look when rasterised",
  ignore: !pdftoppm, // poppler-utils: CI installs it
  fn: async () => {
    const pdf = await renderFigure(figure, "pdf");
    const text = new TextDecoder("latin1").decode(pdf);
    assert.match(text, /^%PDF-1\.\d/);
    assert.equal(text.match(/\/Type \/Page\b/g)?.length, 1);
    const box = /\/MediaBox \[0 0 ([\d.]+) ([\d.]+)\]/.exec(text)!;
    const width = Number(/<svg[^>]*\swidth="([\d.]+)"/.exec(figure)![1]);
    const height = Number(/<svg[^>]*\sheight="([\d.]+)"/.exec(figure)![1]);
    assert.deepEqual([Number(box[1]), Number(box[2])], [width * 0.75, height * 0.75]);
    assert.match(text, /\/BaseFont \/[A-Z]{6}\+DejaVuSans\b/);
    assert.match(text, /\/FontFile2/);

    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeFile(`${dir}/f.pdf`, pdf);
      // 192 dpi: the PDF's 0.75 pt per SVG pixel become PNG_SCALE pixels.
      const r = await new Deno.Command("pdftoppm", {
        args: ["-png", "-r", String(96 * PNG_SCALE), "-singlefile", `${dir}/f.pdf`, `${dir}/f`],
      }).output();
      assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
      const fromPdf = decodePng(await Deno.readFile(`${dir}/f.png`));
      // The text is real text in the embedded font: poppler reads it back, Unicode included.
      const t = await new Deno.Command("pdftotext", { args: [`${dir}/f.pdf`, "-"] }).output();
      const words = new TextDecoder().decode(t.stdout);
      for (
        const label of ["Balanced Matryoshka SAE (β = 0.25)", "SAE encoder", "cos sim", "\u22121"]
      ) {
        assert.ok(words.includes(label), `"${label}" in the PDF's text: ${words}`);
      }
      const png = decodePng(await renderFigure(figure, "png"));
      assert.deepEqual([fromPdf.width, fromPdf.height], [png.width, png.height]);
      for (const [i, cell] of cells(figure).entries()) {
        const at = [cell.x * PNG_SCALE, cell.y * PNG_SCALE] as const;
        assertColor(pixel(fromPdf, ...at), cell.fill, `PDF cell ${i}`);
      }
      // Anti-aliasing differs between the two rasterisers; the drawing does not.
      let diff = 0;
      for (let i = 0; i < png.data.length; i += 4) {
        for (let c = 0; c < 3; c++) diff += Math.abs(png.data[i + c]! - fromPdf.data[i + c]!);
      }
      const mean = diff / (3 * png.width * png.height);
      assert.ok(mean < 3, `mean |PNG − rasterised PDF| = ${mean.toFixed(2)} of 255`);
      assert.ok(Math.abs(inked(fromPdf) - inked(png)) < 0.02 * inked(png), "as much ink");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("the same figure gives the same bytes in every format", async () => {
  for (const format of ["svg", "png", "pdf"] as const) {
    assert.deepEqual(await renderFigure(figure, format), await renderFigure(figure, format));
  }
});

Deno.test("the save path's extension picks the format; others are refused, nothing written", async () => {
  assert.equal(figureFormatOf("a/b.svg"), "svg");
  assert.equal(figureFormatOf("a/b.Png"), "png");
  assert.equal(figureFormatOf("a.b/c.pdf"), "pdf");
  for (const bad of ["fig.jpg", "fig", "figs.pdf/fig", ".pdf"]) {
    assert.throws(() => figureFormatOf(bad), /extension must be \.svg, \.png or \.pdf/, bad);
  }
  const dir = await Deno.makeTempDir();
  try {
    await saveFigure(`${dir}/f.png`, figure);
    await saveFigure(`${dir}/sub/f.pdf`, figure);
    const png = await Deno.readFile(`${dir}/f.png`);
    assert.deepEqual([...png.slice(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
    assert.equal(
      new TextDecoder().decode((await Deno.readFile(`${dir}/sub/f.pdf`)).slice(0, 5)),
      "%PDF-",
    );
    await assert.rejects(saveFigure(`${dir}/f.eps`, figure), /got \.eps/);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["f.png", "sub"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
