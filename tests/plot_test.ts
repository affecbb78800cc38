/**
 * Tests of the SVG figures' structure (no renderer needed): balanced tags, one cell per value,
 * RdBu colours at −1, 0 and 1, escaped Unicode titles, the notebook's labels, and the line plot's
 * lines, bands, markers and ∞ tick.
 */
import assert from "node:assert/strict";
import { interpolateRdBu } from "../src/deps.ts";
import { cosSimColor, cosSimHeatmapSvg } from "../src/plot/heatmap.ts";
import { linePlotSvg } from "../src/plot/line_plot.ts";
import { escapeXml, niceTicks } from "../src/plot/svg.ts";

const rdBu = interpolateRdBu as (t: number) => string;

/** Throws unless every element is closed in order (a minimal well-formedness check). */
function assertBalanced(svg: string): void {
  const body = svg.replace(/^<\?xml[^>]*\?>\s*/, "");
  const stack: string[] = [];
  for (const match of body.matchAll(/<(\/?)([a-zA-Z][\w:-]*)([^>]*?)(\/?)>/g)) {
    const [, closing, name, , selfClosing] = match;
    if (selfClosing) continue;
    if (closing) {
      const open = stack.pop();
      assert.equal(open, name, `</${name}> closes <${open}>`);
    } else {
      stack.push(name!);
    }
  }
  assert.deepEqual(stack, [], "unclosed elements");
  // No raw '&' that is not an entity, and no '<' inside text.
  assert.doesNotMatch(body, /&(?!amp;|lt;|gt;|quot;|#39;)/);
}

/** The cells of a heatmap: panel, latent, feature, value and fill. */
function cells(svg: string) {
  return [...svg.matchAll(/<rect class="cell" ([^>]*)\/>/g)].map(([, attrs]) => {
    const get = (name: string) => new RegExp(`${name}="([^"]*)"`).exec(attrs!)![1]!;
    return {
      panel: get("data-panel"),
      latent: Number(get("data-latent")),
      feature: Number(get("data-feature")),
      value: Number(get("data-value")),
      fill: get("fill"),
      y: Number(get("y")),
    };
  });
}

const encoder = [[-1, 0, 1], [0.5, -0.5, 0.25], [0, 0, 0], [1, 1, -1]];
const decoder = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [-1, 0.3, 0.2]];

Deno.test("heatmap SVG is balanced, has one cell per value and escapes the title", () => {
  const title = `Detached Matryoshka SAE (β = ∞) <a & "b">`;
  const svg = cosSimHeatmapSvg({ title, encoder, decoder, showValues: true });
  assertBalanced(svg);
  const all = cells(svg);
  assert.equal(all.length, 2 * 4 * 3);
  assert.equal(all.filter((c) => c.panel === "encoder").length, 12);
  for (const c of all) {
    const source = c.panel === "encoder" ? encoder : decoder;
    assert.equal(c.value, source[c.latent]![c.feature]);
  }
  assert.ok(svg.includes(escapeXml(title)));
  assert.ok(svg.includes("β = ∞"));
  assert.ok(!svg.includes("<a &"));
  // Values are written when asked: 12 + 12 value labels.
  assert.equal([...svg.matchAll(/class="value"/g)].length, 24);
});

Deno.test("heatmap colours are RdBu with −1 red, 0 the midpoint and +1 blue", () => {
  const svg = cosSimHeatmapSvg({ title: "t", encoder, decoder });
  const all = cells(svg);
  const fillOf = (v: number) => all.filter((c) => c.value === v).map((c) => c.fill);
  assert.ok(fillOf(-1).length > 0 && fillOf(-1).every((f) => f === rdBu(0)));
  assert.ok(fillOf(0).every((f) => f === rdBu(0.5)));
  assert.ok(fillOf(1).every((f) => f === rdBu(1)));
  assert.equal(cosSimColor(-1), "rgb(103, 0, 31)"); // dark red
  assert.equal(cosSimColor(1), "rgb(5, 48, 97)"); // dark blue
  assert.equal(cosSimColor(0.5), rdBu(0.75));
  assert.equal(cosSimColor(7), rdBu(1)); // clamped
  // The colour bar's gradient runs from −1 (offset 0%, the bottom) to +1 (100%).
  assert.ok(svg.includes(`<stop offset="0%" stop-color="${rdBu(0)}"/>`));
  assert.ok(svg.includes(`<stop offset="100%" stop-color="${rdBu(1)}"/>`));
});

Deno.test("heatmap has the notebook's labels, one-based ticks and latent 1 at the bottom", () => {
  const svg = cosSimHeatmapSvg({ title: "t", encoder, decoder });
  for (const label of ["SAE encoder", "SAE decoder", "True feature", "SAE Latent", "cos sim"]) {
    assert.ok(svg.includes(`>${label}</text>`), label);
  }
  const tickLabels = [...svg.matchAll(/font-size="10.5"[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
  // Per panel: features 1..3 and latents 1..4; then the colour bar's −1, 0, 1.
  assert.deepEqual(tickLabels, [
    ..."1231234",
    ..."1231234",
    "\u22121",
    "0",
    "1",
  ]);
  const enc = cells(svg).filter((c) => c.panel === "encoder" && c.feature === 0);
  const yOf = (latent: number) => enc.find((c) => c.latent === latent)!.y;
  assert.ok(yOf(0) > yOf(3), "latent 1 is drawn below latent 4");
  const topDown = cells(cosSimHeatmapSvg({ title: "t", encoder, decoder, latentOrder: "top-down" }))
    .filter((c) => c.panel === "encoder" && c.feature === 0);
  assert.ok(topDown[0]!.y < topDown[3]!.y);
});

Deno.test("heatmap refuses a decoder of a different shape", () => {
  assert.throws(
    () => cosSimHeatmapSvg({ title: "t", encoder, decoder: decoder.slice(1) }),
    /decoder: expected the encoder's shape \[4\]\[3\], got \[3\]\[3\]/,
  );
});

Deno.test("heatmap without a decoder has one panel, with the row label and names given", () => {
  const svg = cosSimHeatmapSvg({
    title: "b_dec",
    encoder: [[0.01, 0.99]],
    width: 420,
    height: 180,
    rowLabel: "",
    rowNames: ["b_dec"],
  });
  assert.equal([...svg.matchAll(/data-panel="encoder"/g)].length, 2);
  assert.ok(!svg.includes('data-panel="decoder"') && !svg.includes("SAE Latent"));
  assert.match(svg, />b_dec</);
  assert.throws(
    () => cosSimHeatmapSvg({ title: "x", encoder: [[1], [0]], rowNames: ["one"] }),
    /Invalid rowNames: expected 2 names/,
  );
});

Deno.test("line plot draws one line per series, bands, markers, legend and an ∞ tick", () => {
  const x = [0, 0.25, 0.5, 1.5];
  const svg = linePlotSvg({
    title: "Sweep <β>",
    xLabel: "β",
    yLabel: "cos sim",
    series: [
      {
        name: "child 1",
        x,
        mean: [-0.3, 0, 0.1, 0.2],
        min: [-0.4, -0.1, 0, 0.1],
        max: [-0.2, 0.1, NaN, 0.3],
      },
      { name: "child 2 & 3", x, mean: [-0.2, 0.05, 0.1, 0.25] },
    ],
    markers: [{ x: 0.25, label: "β*" }],
    xTicks: [0, 0.25, 0.5, { value: 1.5, label: "∞" }],
    yRange: [-0.5, 0.5],
  });
  assertBalanced(svg);
  assert.equal([...svg.matchAll(/<polyline class="line"/g)].length, 2);
  // The NaN in max splits the band of series 0 into two polygons.
  assert.equal([...svg.matchAll(/<polygon class="band" data-series="0"/g)].length, 2);
  assert.equal([...svg.matchAll(/<line class="marker"/g)].length, 1);
  assert.equal([...svg.matchAll(/<line class="legend"/g)].length, 2);
  assert.ok(svg.includes(">∞</text>"));
  assert.ok(svg.includes(">β*</text>"));
  assert.ok(svg.includes("Sweep &lt;β&gt;"));
  assert.ok(svg.includes("child 2 &amp; 3"));
  // Y ticks over [−0.5, 0.5] in round steps, with true minus signs.
  assert.ok(svg.includes(">\u22120.4</text>") && svg.includes(">0.4</text>"));
});

Deno.test("line plot refuses infinite x, telling the caller to map it", () => {
  assert.throws(
    () =>
      linePlotSvg({
        title: "t",
        xLabel: "x",
        yLabel: "y",
        series: [{ name: "s", x: [0, Infinity], mean: [1, 2] }],
      }),
    /series 0 \("s"\): x\[1\] is Infinity; map infinite x/,
  );
});

Deno.test("niceTicks gives round steps covering the range", () => {
  assert.deepEqual(niceTicks(0, 1, 5), { ticks: [0, 0.2, 0.4, 0.6, 0.8, 1], step: 0.2 });
  assert.deepEqual(niceTicks(-1, 1, 4).ticks, [-1, -0.5, 0, 0.5, 1]);
  assert.deepEqual(niceTicks(0, 10, 4).ticks, [0, 2.5, 5, 7.5, 10]);
});

Deno.test("line plot dashes a series on request and stacks the labels of several markers", () => {
  const svg = linePlotSvg({
    title: "two sweeps",
    xLabel: "β",
    yLabel: "cos sim",
    series: [
      { name: "L1", x: [0, 1], mean: [-0.3, 0.2] },
      { name: "BatchTopK", x: [0, 1], mean: [0, 0.1], dash: "7 4" },
    ],
    markers: [{ x: 0.2, label: "β* L1" }, { x: 0.21, label: "β* BatchTopK" }],
  });
  assertBalanced(svg);
  // The dashed series: its line and its legend entry; the solid one has no dasharray.
  assert.equal([...svg.matchAll(/stroke-dasharray="7 4"/g)].length, 2);
  assert.ok(!/data-series="0"[^>]*stroke-dasharray/.test(svg));
  const labelY = (label: string) =>
    Number(svg.match(new RegExp(`<text x="[\\d.]+" y="([\\d.]+)"[^>]*>${label}</text>`))![1]);
  assert.equal(labelY("β\\* BatchTopK") - labelY("β\\* L1"), 14);
});

Deno.test("a marker label near the right edge is written to the left of its line", () => {
  const svg = linePlotSvg({
    title: "t",
    xLabel: "β",
    yLabel: "y",
    series: [{ name: "s", x: [0, 1], mean: [0, 1] }],
    markers: [{ x: 0.1, label: "β* left" }, { x: 1, label: "β* at the right edge" }],
  });
  assert.match(svg, /<text [^>]*font-size="11" fill="#444">β\* left<\/text>/);
  assert.match(svg, /<text [^>]*text-anchor="end" fill="#444">β\* at the right edge<\/text>/);
});
