/**
 * Sweeps side by side: the finished `sweep.json` of two or more sweeps (say an L1 sweep and a
 * BatchTopK one over the same trees and β) drawn together, per tree and part, each sweep's child
 * components against β in its own line style (edges keep their colours, β* of each sweep marked),
 * and a table of each tree's β* and verdict per sweep.
 */
import { linePlotSvg, type LineSeries } from "../plot/line_plot.ts";
import { infinityAxis } from "./figures.ts";
import type { SweepJson, SweepJsonTree } from "./outputs.ts";
import { SweepFolderError } from "./store.ts";

/**
 * One sweep to compare: its `sweep.json` and the label its lines get.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type ComparedSweep, sweepLabel } from "./compare.ts";
 * import { sweepJson } from "./outputs.ts";
 * const settings = {
 *   steps: 5, batchSize: 128, lr: 3e-4, betas: [0], seeds: 1, evalRows: 1000,
 *   betaForm: "uniform" as const, l1Coefficient: 0.03, architecture: "topk" as const, k: 1,
 *   tolerance: 0.02, objective: "max" as const, refineRounds: 0, shard: null,
 * };
 * const json = sweepJson(settings, true, [], []);
 * const sweep: ComparedSweep = { label: sweepLabel(json.settings), json };
 * assert.equal(sweep.label, "TopK k = 1");
 * ```
 */
export interface ComparedSweep {
  /** Legend and table label (e.g. `L1 λ = 0.03`, `BatchTopK k = 1`). */
  label: string;
  /** The sweep's `sweep.json`. */
  json: SweepJson;
}

/** Line styles of the compared sweeps, in order (SVG stroke-dasharray; "" is solid). */
const DASHES = ["", "7 4", "2 3", "10 3 2 3"];

/** TAB10's first colours, one per edge. */
const EDGE_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"];

/**
 * A sweep's label from its settings: `L1 λ = …` for standard SAEs, `TopK k = …` or
 * `BatchTopK k = …`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sweepLabel } from "./compare.ts";
 * const settings = { architecture: "batchtopk" as const, k: 2, l1Coefficient: 0.03 };
 * assert.equal(sweepLabel(settings), "BatchTopK k = 2");
 * assert.equal(sweepLabel({ ...settings, architecture: "standard" }), "L1 λ = 0.03");
 * ```
 */
export function sweepLabel(
  settings: Pick<SweepJson["settings"], "architecture" | "k" | "l1Coefficient">,
): string {
  switch (settings.architecture ?? "standard") {
    case "topk":
      return `TopK k = ${settings.k}`;
    case "batchtopk":
      return `BatchTopK k = ${settings.k}`;
    default:
      return `L1 λ = ${settings.l1Coefficient}`;
  }
}

/**
 * Reads `dir/sweep.json`; refuses a missing or foreign file naming it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readSweepJson } from "./compare.ts";
 * const dir = await Deno.makeTempDir(); // no sweep.json there
 * await assert.rejects(readSweepJson(dir), /Cannot read .*sweep\.json/);
 * await Deno.remove(dir);
 * ```
 */
export async function readSweepJson(dir: string): Promise<SweepJson> {
  const path = `${dir}/sweep.json`;
  let json: SweepJson;
  try {
    json = JSON.parse(await Deno.readTextFile(path));
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new SweepFolderError(`Cannot read ${path}: ${reason}; run deno task sweep there first`);
  }
  if (json?.format !== "matryoshka-gpu sweep" || !Array.isArray(json.trees)) {
    throw new SweepFolderError(`Invalid ${path}: expected a "matryoshka-gpu sweep" document`);
  }
  return json;
}

/**
 * The trees every compared sweep has, with the same edges (by name, in the first's order).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { commonTrees } from "./compare.ts";
 * import { sweepJson, treeJson } from "./outputs.ts";
 * import { childProbsTree } from "./axes.ts";
 * const settings = {
 *   steps: 5, batchSize: 128, lr: 3e-4, betas: [0], seeds: 1, evalRows: 1000,
 *   betaForm: "uniform" as const, l1Coefficient: 0.03, architecture: "standard" as const, k: 1,
 *   tolerance: 0.02, objective: "max" as const, refineRounds: 0, shard: null,
 * };
 * const a = childProbsTree([0.2]);
 * const b = childProbsTree([0.3]);
 * const json = (trees: typeof a[]) =>
 *   sweepJson(settings, true, trees.map((t) => treeJson(t, "none trained")), []);
 * const names = commonTrees([{ label: "A", json: json([a, b]) }, { label: "B", json: json([b]) }]);
 * assert.deepEqual(names, [b.name]);
 * ```
 */
export function commonTrees(sweeps: readonly ComparedSweep[]): string[] {
  const edgesOf = (t: SweepJsonTree) => JSON.stringify(t.edges);
  return sweeps[0]!.json.trees
    .filter((tree) =>
      sweeps.every((s) =>
        s.json.trees.some((t) => t.name === tree.name && edgesOf(t) === edgesOf(tree))
      )
    )
    .map((t) => t.name);
}

const betaOf = (b: number | "inf" | null) => b === "inf" ? Infinity : b;
const showBeta = (b: number | "inf" | null) =>
  b === null ? "–" : b === "inf" ? "∞" : String(Math.round(b * 1e4) / 1e4);

/**
 * The figure of one tree and part: every compared sweep's components along each child against β
 * (colour: the edge; line style: the sweep), each sweep's β* marked.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compareFigureSvg, type ComparedSweep } from "./compare.ts";
 * import { sweepJson, treeJson } from "./outputs.ts";
 * import { childProbsTree } from "./axes.ts";
 * import { findBalance } from "./balance.ts";
 * const tree = childProbsTree([0.2]);
 * const settings = {
 *   steps: 5, batchSize: 128, lr: 3e-4, betas: [0, "inf" as const], seeds: 1, evalRows: 1000,
 *   betaForm: "uniform" as const, l1Coefficient: 0.03, architecture: "standard" as const, k: 1,
 *   tolerance: 0.02, objective: "max" as const, refineRounds: 0, shard: null,
 * };
 * const doc = (e0: number, eInf: number) =>
 *   sweepJson(settings, true, [treeJson(tree, findBalance([
 *     { beta: 0, encoder: [e0] },
 *     { beta: Infinity, encoder: [eInf] },
 *   ]))], []);
 * const sweeps: ComparedSweep[] = [
 *   { label: "L1", json: doc(-0.3, 0.2) },
 *   { label: "BatchTopK k = 1", json: doc(-0.02, 0.18) },
 * ];
 * const svg = compareFigureSvg(sweeps, tree.name, "encoder");
 * assert.ok(svg.includes("BatchTopK k = 1: child 1") && svg.includes('stroke-dasharray="7 4"'));
 * ```
 */
export function compareFigureSvg(
  sweeps: readonly ComparedSweep[],
  treeName: string,
  part: "encoder" | "decoder",
): string {
  const trees = sweeps.map((s) => s.json.trees.find((t) => t.name === treeName)!);
  const betas = trees.flatMap((t) => t.curve.map((p) => betaOf(p.beta)!));
  const axis = infinityAxis(betas);
  const series: LineSeries[] = [];
  trees.forEach((tree, s) => {
    // One parent: "child c"; several: "edge p → c" (feature indices, as in sweep.json).
    const oneParent = new Set(tree.edges.map((e) => e.parent)).size === 1;
    tree.edges.forEach((edge, k) => {
      const points = tree.curve.filter((p) => Number.isFinite(p[part].mean[k] ?? NaN));
      if (points.length === 0) return;
      const p = tree.childProbs[k];
      const what = oneParent ? `child ${edge.child}` : `edge ${edge.parent} → ${edge.child}`;
      series.push({
        name: `${sweeps[s]!.label}: ${what}${p === undefined ? "" : ` (p=${p})`}`,
        x: points.map((q) => axis.position(betaOf(q.beta)!)),
        mean: points.map((q) => q[part].mean[k]!),
        color: EDGE_COLORS[k % EDGE_COLORS.length]!,
        dash: DASHES[s % DASHES.length]!,
      });
    });
  });
  if (series.length === 0) series.push({ name: "no data", x: [0], mean: [0] });
  const markers = trees.flatMap((tree, s) =>
    tree.betaStar === null ? [] : [{
      x: axis.position(betaOf(tree.betaStar)!),
      label: `β* ${sweeps[s]!.label} = ${showBeta(tree.betaStar)}`,
    }]
  );
  return linePlotSvg({
    title: `${treeName}: ${part} component along each child, ${
      sweeps.map((s) => s.label).join(" vs ")
    }`,
    xLabel: "β (inner prefix loss multiplier; ∞ = detached)",
    yLabel: `${part} cos sim with child`,
    series,
    xTicks: axis.ticks,
    markers,
    width: 900,
  });
}

/**
 * The comparison table: per common tree, each sweep's β*, its largest |child component| there
 * and its verdict.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compareTable } from "./compare.ts";
 * assert.match(compareTable([], []), /^tree/);
 * ```
 */
export function compareTable(sweeps: readonly ComparedSweep[], trees: readonly string[]): string {
  const rows = [["tree", "sweep", "β*", "largest |child|", "verdict"]];
  for (const name of trees) {
    for (const s of sweeps) {
      const t = s.json.trees.find((x) => x.name === name)!;
      rows.push([
        name,
        s.label,
        showBeta(t.betaStar),
        t.maxResidual === null ? "–" : t.maxResidual.toFixed(3),
        t.balanceable === null ? "no verdict" : t.balanceable ? "balanceable" : "not balanceable",
      ]);
    }
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((v, c) => v.padEnd(widths[c]!)).join("  ").trimEnd()).join("\n");
}
