/**
 * The sweep's output tables: `sweep.csv` (one row per SAE, columns from a list of column
 * definitions) and `sweep.json` (the settings, the balance finder's result per tree and every
 * row). Both are deterministic functions of the rows and settings (no timings), so a resumed or
 * merged sweep writes the same bytes as an uninterrupted one.
 *
 * To add a csv column, put the value in `row.metrics[name]` (one column per metric name, in order
 * of first appearance) or append a {@link CsvColumn} to the list given to {@link sweepCsv}.
 */
import { formatBeta, type SweepTree } from "./axes.ts";
import type { Balance, BalanceCurvePoint, BalanceObjective } from "./balance.ts";
import type { BetaForm } from "../sae/notebook_saes.ts";
import type { Architecture } from "../sae/config.ts";
import { type EdgeScore, edgeSummaries, type EdgeSummary } from "../metrics/scorecard.ts";
import { rowToJson, type SweepRow, type SweepRowJson } from "./rows.ts";

/** One csv column: its header and how to read it from a row (null: empty cell). */
export interface CsvColumn {
  /** Header of the column. */
  name: string;
  /** The cell of a row. */
  value: (row: SweepRow) => string | number | null;
}

/** A number for the csv: 8 significant digits, `inf` for ∞, empty for NaN. */
export function csvNumber(value: number): string {
  if (Number.isNaN(value)) return "";
  if (value === Infinity) return "inf";
  if (value === -Infinity) return "-inf";
  return String(Number(value.toPrecision(8)));
}

/**
 * The standard columns: `tree`, `child_probs` (`;`-separated), `beta` (`inf` for the detached
 * setup), `seed`, `round` (0 grid, r refinement round r), `edge_enc_cos`, `edge_dec_cos` and
 * `absorption_gap` (each edge's reading in the tree's edge order, `;`-separated; `sweep.json`
 * lists the edges), `enc_cos_f0..` and `dec_cos_f0..` (latent 0's encoder / decoder cosine with
 * true feature i), `loss_total`, `grad_norm`,
 * `loss_recon_p1..` and `loss_l1_p1..` (per Matryoshka prefix, as multiplied in the total),
 * `steps_done`, `diverged_at`; then one column per metric name.
 */
export function sweepColumns(
  nFeatures: number,
  nPrefixes: number,
  metricNames: readonly string[] = [],
): CsvColumn[] {
  const columns: CsvColumn[] = [
    { name: "tree", value: (r) => r.tree },
    { name: "child_probs", value: (r) => r.childProbs.join(";") },
    { name: "beta", value: (r) => formatBeta(r.beta) },
    { name: "seed", value: (r) => r.seed },
    { name: "round", value: (r) => r.round },
    { name: "edge_enc_cos", value: (r) => r.edgeEncoderCos.map(csvNumber).join(";") },
    { name: "edge_dec_cos", value: (r) => r.edgeDecoderCos.map(csvNumber).join(";") },
    { name: "absorption_gap", value: (r) => r.absorptionGap.map(csvNumber).join(";") },
  ];
  for (let f = 0; f < nFeatures; f++) {
    columns.push({ name: `enc_cos_f${f}`, value: (r) => r.encoderCos[f] ?? null });
  }
  for (let f = 0; f < nFeatures; f++) {
    columns.push({ name: `dec_cos_f${f}`, value: (r) => r.decoderCos[f] ?? null });
  }
  columns.push(
    { name: "loss_total", value: (r) => r.losses.total },
    { name: "grad_norm", value: (r) => r.losses.gradNorm },
  );
  for (let p = 0; p < nPrefixes; p++) {
    columns.push({ name: `loss_recon_p${p + 1}`, value: (r) => r.losses.recon[p] ?? null });
  }
  for (let p = 0; p < nPrefixes; p++) {
    columns.push({ name: `loss_l1_p${p + 1}`, value: (r) => r.losses.l1[p] ?? null });
  }
  columns.push(
    { name: "steps_done", value: (r) => r.stepsDone },
    { name: "diverged_at", value: (r) => r.divergedAt },
  );
  for (const name of metricNames) {
    columns.push({ name, value: (r) => r.metrics[name] ?? null });
  }
  return columns;
}

function csvField(value: string | number | null): string {
  if (value === null) return "";
  const text = typeof value === "number" ? csvNumber(value) : value;
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/**
 * The csv text of `rows` (in the order given) with the standard columns sized for the rows, or
 * with `columns` when given.
 */
export function sweepCsv(rows: readonly SweepRow[], columns?: readonly CsvColumn[]): string {
  const cols = columns ?? sweepColumns(
    Math.max(0, ...rows.map((r) => r.encoderCos.length)),
    Math.max(0, ...rows.map((r) => r.losses.recon.length)),
    [...new Set(rows.flatMap((r) => Object.keys(r.metrics)))],
  );
  const lines = [cols.map((c) => csvField(c.name)).join(",")];
  for (const row of rows) lines.push(cols.map((c) => csvField(c.value(row))).join(","));
  return lines.join("\n") + "\n";
}

/**
 * The settings recorded in `sweep.json`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sweepJson, type SweepJsonSettings } from "./outputs.ts";
 * const settings: SweepJsonSettings = {
 *   steps: 300,
 *   batchSize: 128,
 *   lr: 3e-4,
 *   betas: [0, 0.25, "inf"],
 *   seeds: 2,
 *   evalRows: 100_000,
 *   betaForm: "uniform",
 *   l1Coefficient: 0.03,
 *   architecture: "standard",
 *   k: 1,
 *   tolerance: 0.02,
 *   objective: "max",
 *   refineRounds: 0,
 *   shard: "0/2",
 * };
 * assert.deepEqual(sweepJson(settings, false, [], []).settings.betas, [0, 0.25, "inf"]);
 * ```
 */
export interface SweepJsonSettings {
  /** Optimiser steps per SAE. */
  steps: number;
  /** Samples per step. */
  batchSize: number;
  /** Adam learning rate. */
  lr: number;
  /** The β grid (`"inf"`: the detached setup). */
  betas: (number | "inf")[];
  /** Seeds 0..seeds−1. */
  seeds: number;
  /** Held-out rows of each SAE's metrics. */
  evalRows: number;
  /** How β weights the inner prefixes (`uniform` or `power`). */
  betaForm: BetaForm;
  /** The L1 coefficient of every SAE. */
  l1Coefficient: number;
  /** The SAEs' architecture (`standard`, `topk` or `batchtopk`). */
  architecture: Architecture;
  /** k of TopK and BatchTopK (1, unused, for standard). */
  k: number;
  /** Balanceable below this largest |child component|. */
  tolerance: number;
  /** What the finder minimised over edges (`max` or `mean` |child component|). */
  objective: BalanceObjective;
  /** Refinement rounds present in the rows. */
  refineRounds: number;
  /** `"i/n"` for one shard's folder, null for a whole (or merged) sweep. */
  shard: string | null;
}

/**
 * The balance finder's result for one tree in `sweep.json`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { treeJson, type SweepJsonTree } from "./outputs.ts";
 * import { childProbsTree } from "./axes.ts";
 * import { findBalance } from "./balance.ts";
 * const balance = findBalance([{ beta: 0, encoder: [-0.3] }, { beta: Infinity, encoder: [0.01] }]);
 * const single = childProbsTree([0.2]);
 * const entry: SweepJsonTree = treeJson(single, balance);
 * assert.deepEqual([entry.betaStar, entry.balanceable, entry.localMinima], ["inf", true, ["inf"]]);
 * assert.deepEqual(entry.worstEdges, [{ parent: 0, child: 1, residual: 0.01, decoder: null }]);
 * const failed: SweepJsonTree = treeJson(single, "every SAE diverged");
 * assert.deepEqual([failed.balanceable, failed.error], [null, "every SAE diverged"]);
 * ```
 */
export interface SweepJsonTree {
  /** Name of the tree (`balanced` and `unbalanced` for the defaults). */
  name: string;
  /** Firing probability of each edge's child, in edge order. */
  childProbs: number[];
  /** Every parent–child edge (feature indices from 0; depth of the parent), in edge order. */
  edges: { parent: number; child: number; depth: number }[];
  /** Matryoshka prefix ends of its SAEs (one prefix per depth level). */
  prefixEnds: number[];
  /** Largest |residual| below the tolerance; null when there is no verdict (see `error`). */
  balanceable: boolean | null;
  /** β*, `"inf"` when the detached setup does best, null when no SAE of the tree is usable. */
  betaStar: number | "inf" | null;
  /** Edge k's parent latent's mean encoder cos with its child at β* (edge order). */
  residuals: number[];
  /** Edge k's parent latent's mean decoder cos with its child at β*. */
  decoder: number[];
  /** Largest |residual| (null without a result). */
  maxResidual: number | null;
  /** Index (0-based, edge order) of the edge with the largest |residual|. */
  worstChild: number | null;
  /** The edges furthest from zero at β*, largest |residual| first (at most 5). */
  worstEdges: { parent: number; child: number; residual: number; decoder: number | null }[];
  /**
   * The edges at β* summarised per tree depth of the parent and per Matryoshka prefix the
   * parent's feature's latent starts in (mean and largest |·| of the encoder and decoder
   * components and of the absorption gap, seed means; null where none is finite).
   */
  summaries: { depth: EdgeSummaryJson[]; prefix: EdgeSummaryJson[] };
  /** β values where the objective has a local minimum. */
  localMinima: (number | "inf")[];
  /** The seed-averaged curve (every β present, ascending, `"inf"` last). */
  curve: (Omit<BalanceCurvePoint, "beta"> & { beta: number | "inf" })[];
  /** Why there is no result (every SAE of the tree diverged or none was trained). */
  error?: string;
}

/**
 * The content of `sweep.json`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type SweepJson, sweepJson, sweepJsonText, treeJson } from "./outputs.ts";
 * import { childProbsTree } from "./axes.ts";
 * const run = { steps: 5, batchSize: 128, lr: 3e-4, betas: [0, 1], seeds: 1, evalRows: 1000 };
 * const form = { betaForm: "uniform" as const, l1Coefficient: 0.03, objective: "max" as const };
 * const arch = { architecture: "standard" as const, k: 1 };
 * const doc: SweepJson = sweepJson(
 *   { ...run, ...form, ...arch, tolerance: 0.02, refineRounds: 0, shard: null },
 *   false,
 *   [treeJson(childProbsTree([0.1, 0.3]), "no SAE of the tree was trained")],
 *   [],
 * );
 * assert.deepEqual([doc.format, doc.version, doc.complete], ["matryoshka-gpu sweep", 1, false]);
 * assert.equal(doc.trees[0]!.error, "no SAE of the tree was trained");
 * assert.deepEqual(JSON.parse(sweepJsonText(doc)), doc);
 * ```
 */
export interface SweepJson {
  /** Always `"matryoshka-gpu sweep"`. */
  format: "matryoshka-gpu sweep";
  /** Format version (1). */
  version: 1;
  /** The sweep's settings. */
  settings: SweepJsonSettings;
  /** True when every grid SAE (and refinement round) of the settings is present. */
  complete: boolean;
  /** The balance finder's result per tree. */
  trees: SweepJsonTree[];
  /** Every SAE, canonical order. */
  rows: SweepRowJson[];
}

const jsonBeta = (beta: number): number | "inf" => beta === Infinity ? "inf" : beta;
const nullable = (list: number[]) => list.map((v) => Number.isFinite(v) ? v : null) as number[];

/** Worst edges listed in `sweep.json` per tree. */
const WORST_EDGES = 5;

/** An {@link EdgeSummary} in JSON (NaN as null). */
export type EdgeSummaryJson =
  & Omit<EdgeSummary, "encoder" | "decoder" | "absorptionGap">
  & {
    [K in "encoder" | "decoder" | "absorptionGap"]: { mean: number | null; maxAbs: number | null };
  };

/**
 * The edges of a tree at β* summarised per depth and per prefix. An edge's prefix is the one
 * where its parent's feature's latent starts (the sweep's latents start on the features in
 * `tree.latentFeatures` order, one prefix per depth level); `gaps` are the seed-mean absorption
 * gaps at β* (NaN when unknown).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { edgeSummariesAtBetaStar } from "./outputs.ts";
 * import { childProbsTree } from "./axes.ts";
 * import { findBalance } from "./balance.ts";
 * const tree = childProbsTree([0.2, 0.3]);
 * const balance = findBalance([{ beta: 0.5, encoder: [0.1, -0.3] }]);
 * const { depth, prefix } = edgeSummariesAtBetaStar(tree, balance, [0.2, NaN]);
 * assert.deepEqual(depth.map((d) => [d.group, d.edges, d.encoder.maxAbs]), [[0, 2, 0.3]]);
 * assert.deepEqual(prefix[0]!.absorptionGap, { mean: 0.2, maxAbs: 0.2 });
 * ```
 */
export function edgeSummariesAtBetaStar(
  tree: SweepTree,
  balance: Balance,
  gaps: readonly number[],
): { depth: EdgeSummaryJson[]; prefix: EdgeSummaryJson[] } {
  const prefixOf = (feature: number) => {
    const latent = tree.latentFeatures.indexOf(feature);
    return latent < 0 ? -1 : tree.prefixEnds.findIndex((end) => latent < end);
  };
  const scores: EdgeScore[] = tree.edges.map((edge, k) => ({
    ...edge,
    latent: tree.latentFeatures.indexOf(edge.parent),
    prefix: prefixOf(edge.parent),
    encoderCos: balance.residuals[k] ?? NaN,
    decoderCos: balance.decoder[k] ?? NaN,
    absorptionGap: gaps[k] ?? NaN,
  }));
  const json = (summary: EdgeSummary): EdgeSummaryJson => {
    const side = ({ mean, maxAbs }: { mean: number; maxAbs: number }) => ({
      mean: Number.isFinite(mean) ? mean : null,
      maxAbs: Number.isFinite(maxAbs) ? maxAbs : null,
    });
    return {
      group: summary.group,
      edges: summary.edges,
      encoder: side(summary.encoder),
      decoder: side(summary.decoder),
      absorptionGap: side(summary.absorptionGap),
    };
  };
  return {
    depth: edgeSummaries(scores, "depth").map(json),
    prefix: edgeSummaries(scores, "prefix").map(json),
  };
}

/**
 * The `sweep.json` entry of a tree: its balance, or the reason there is none. `gaps` are the
 * seed-mean absorption gaps of each edge at β* (default unknown).
 */
export function treeJson(
  tree: SweepTree,
  balance: Balance | string,
  gaps: readonly number[] = [],
): SweepJsonTree {
  const { name, childProbs, prefixEnds } = tree;
  const edges = tree.edges.map(({ parent, child, depth }) => ({ parent, child, depth }));
  if (typeof balance === "string") {
    return {
      name,
      childProbs,
      edges,
      prefixEnds,
      balanceable: null,
      betaStar: null,
      residuals: [],
      decoder: [],
      maxResidual: null,
      worstChild: null,
      worstEdges: [],
      summaries: { depth: [], prefix: [] },
      localMinima: [],
      curve: [],
      error: balance,
    };
  }
  const side = (s: { mean: number[]; min: number[]; max: number[] }) => ({
    mean: nullable(s.mean),
    min: nullable(s.min),
    max: nullable(s.max),
  });
  const finiteOrNull = (v: number | undefined) => Number.isFinite(v) ? v! : null;
  return {
    name,
    childProbs,
    edges,
    prefixEnds,
    balanceable: balance.balanceable,
    betaStar: jsonBeta(balance.betaStar),
    residuals: nullable(balance.residuals),
    decoder: nullable(balance.decoder),
    maxResidual: balance.maxResidual,
    worstChild: balance.worstChild,
    worstEdges: balance.worstEdges.slice(0, WORST_EDGES).map((k) => ({
      parent: tree.edges[k]!.parent,
      child: tree.edges[k]!.child,
      residual: balance.residuals[k]!,
      decoder: finiteOrNull(balance.decoder[k]),
    })),
    summaries: edgeSummariesAtBetaStar(tree, balance, gaps),
    localMinima: balance.localMinima.map(jsonBeta),
    curve: balance.curve.map((p) => ({
      beta: jsonBeta(p.beta),
      seeds: p.seeds,
      encoder: side(p.encoder),
      decoder: side(p.decoder),
      objective: p.objective,
    })),
  };
}

/** Assembles `sweep.json`. */
export function sweepJson(
  settings: SweepJsonSettings,
  complete: boolean,
  trees: SweepJsonTree[],
  rows: readonly SweepRow[],
): SweepJson {
  return {
    format: "matryoshka-gpu sweep",
    version: 1,
    settings,
    complete,
    trees,
    rows: rows.map(rowToJson),
  };
}

/** `sweep.json` as text (2-space indentation, trailing newline). */
export function sweepJsonText(doc: SweepJson): string {
  return JSON.stringify(doc, null, 2) + "\n";
}
