/** Plain-text tables for the terminal: cosine-similarity tables and the metrics summary. */
import type { SaeMetrics } from "../metrics/evaluate.ts";

/**
 * A `[latent][feature]` table with one-based labels and two decimals.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cosSimTable } from "./tables.ts";
 * assert.deepEqual(cosSimTable("encoder", [[1, -0.001], [0.25, 0.5]]).split("\n"), [
 *   "encoder",
 *   "latent       f1     f2",
 *   "1          1.00   0.00",
 *   "2          0.25   0.50",
 * ]);
 * ```
 */
export function cosSimTable(title: string, table: number[][]): string {
  const cols = table[0]?.length ?? 0;
  const cell = (s: string) => s.padStart(7);
  const head = "latent".padEnd(8) +
    Array.from({ length: cols }, (_, f) => cell(`f${f + 1}`)).join("");
  const rows = table.map((row, l) =>
    String(l + 1).padEnd(8) +
    row.map((v) => cell(v.toFixed(2).replace(/^-0\.00$/, "0.00"))).join("")
  );
  return [title, head, ...rows].join("\n");
}

/**
 * Columns side by side, separated by `gap` spaces.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sideBySide } from "./tables.ts";
 * assert.equal(sideBySide(["a\nbb", "c"], 2), "a   c\nbb");
 * ```
 */
export function sideBySide(blocks: string[], gap = 4): string {
  const lines = blocks.map((b) => b.split("\n"));
  const widths = lines.map((l) => Math.max(...l.map((s) => s.length)));
  const height = Math.max(...lines.map((l) => l.length));
  const out: string[] = [];
  for (let i = 0; i < height; i++) {
    out.push(lines.map((l, k) => (l[i] ?? "").padEnd(widths[k]!)).join(" ".repeat(gap)).trimEnd());
  }
  return out.join("\n");
}

/**
 * One row per SAE: MCC, explained variance (full and per prefix), L0 vs true L0, dead, shrinkage.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { metricsTable } from "./tables.ts";
 * import { evaluateCpu } from "../metrics/evaluate_cpu.ts";
 * import { initSaeToMatchModel } from "../sae/init.ts";
 * import { MatryoshkaSAE } from "../sae/sae.ts";
 * import { notebookTree } from "../toy/notebook_trees.ts";
 * const embedding = Float32Array.from({ length: 16 }, (_, i) => i % 5 === 0 ? 1 : 0); // identity
 * const model = { embedding, nFeatures: 4 };
 * const sae = new MatryoshkaSAE({ dIn: 4, dSae: 4 });
 * initSaeToMatchModel(sae, model);
 * const [metrics] = evaluateCpu([{ sae, model, tree: notebookTree() }], { rows: 100 });
 * const table = metricsTable([{ name: "matched", metrics: metrics! }]);
 * assert.ok(table.startsWith("metrics on 100 held-out rows\nSAE "));
 * assert.match(table, /^matched +1\.000 +1\.000 +1\.0000 /m);
 * ```
 */
export function metricsTable(rows: { name: string; metrics: SaeMetrics }[]): string {
  const head = [
    "SAE",
    "MCC enc",
    "MCC dec",
    "EV",
    "EV prefixes",
    "L0",
    "true L0",
    "dead",
    "shrink",
    "unique",
    "P/R/F1",
  ];
  const body = rows.map(({ name, metrics: m }) => [
    name,
    m.mccEncoder.toFixed(3),
    m.mccDecoder.toFixed(3),
    m.explainedVariance.toFixed(4),
    m.prefixExplainedVariance.map((v) => v.toFixed(3)).join("/"),
    m.l0.toFixed(3),
    m.trueL0.toFixed(3),
    String(m.deadCount),
    m.shrinkage.toFixed(3),
    m.scorecard.uniqueness.toFixed(3),
    [m.scorecard.meanPrecision, m.scorecard.meanRecall, m.scorecard.meanF1]
      .map((v) => v.toFixed(2)).join("/"),
  ]);
  const widths = head.map((h, c) => Math.max(h.length, ...body.map((r) => r[c]!.length)));
  const line = (cells: string[]) =>
    cells.map((v, c) => (c === 0 ? v.padEnd(widths[c]!) : v.padStart(widths[c]!))).join("  ");
  const rowsOut = body.map(line);
  return [`metrics on ${rows[0]?.metrics.rows ?? 0} held-out rows`, line(head), ...rowsOut].join(
    "\n",
  );
}

/**
 * The per-edge scorecard of several SAEs: one line per parent–child edge, read on the parent's
 * matched latent (encoder and decoder cosine with the child, absorption gap).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { evaluateCpu } from "../metrics/evaluate_cpu.ts";
 * import { initSaeToMatchModel } from "../sae/init.ts";
 * import { MatryoshkaSAE } from "../sae/sae.ts";
 * import { notebookTree } from "../toy/notebook_trees.ts";
 * import { ToyModel } from "../toy/toy_model.ts";
 * import { edgeTable } from "./tables.ts";
 * const model = new ToyModel({ nFeatures: 4, hiddenDim: 8 });
 * const sae = new MatryoshkaSAE({ dIn: 8, dSae: 4 });
 * initSaeToMatchModel(sae, model);
 * const [metrics] = evaluateCpu([{ sae, model, tree: notebookTree() }], { rows: 100 });
 * const table = edgeTable([{ name: "matched", metrics: metrics! }]);
 * assert.match(table, /^matched +0 → 1 +0 +\+0\.000 +\+0\.000 +\+0\.000$/m);
 * ```
 */
export function edgeTable(rows: { name: string; metrics: SaeMetrics }[]): string {
  const head = ["SAE", "edge", "latent", "enc cos", "dec cos", "absorb gap"];
  const signed = (v: number) =>
    Number.isFinite(v) ? `${v < 0 ? "−" : "+"}${Math.abs(v).toFixed(3)}` : "—";
  const body = rows.flatMap(({ name, metrics }) =>
    metrics.scorecard.edges.map((e) => [
      name,
      `${e.parent} → ${e.child}`,
      e.latent < 0 ? "—" : String(e.latent),
      signed(e.encoderCos),
      signed(e.decoderCos),
      signed(e.absorptionGap),
    ])
  );
  const widths = head.map((h, c) => Math.max(h.length, ...body.map((r) => r[c]!.length)));
  const line = (cells: string[]) =>
    cells.map((v, c) => (c === 0 ? v.padEnd(widths[c]!) : v.padStart(widths[c]!))).join("  ");
  return [
    "per-edge scorecard (parent → child, read on the parent's matched latent; enc cos < 0: " +
    "absorption, > 0: hedging)",
    line(head),
    ...body.map(line),
  ].join("\n");
}
