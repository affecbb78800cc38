/**
 * From a sweep's rows to its answer: the balance finder per tree (on every usable row present,
 * grid and refinement alike) and the output files (`sweep.csv`, `sweep.json`, `figures/`), written
 * atomically. Shared by a finished run and by a merge.
 */
import { type FigureFormat, saveFigureFormats } from "../plot/figure_files.ts";
import { replaceDirAtomic, writeFileAtomic } from "../io/atomic.ts";
import { degenerateReason, formatShard, type Shard, type SweepTree } from "./axes.ts";
import { type Balance, type BalanceObjective, type BalanceSample, findBalance } from "./balance.ts";
import { combinationKey, compareCombinations } from "./combinations.ts";
import { balanceFigureSvg, childProbFiguresSvg } from "./figures.ts";
import {
  sweepCsv,
  type SweepJson,
  sweepJson,
  sweepJsonText,
  type SweepJsonTree,
  treeJson,
} from "./outputs.ts";
import type { SweepRow } from "./rows.ts";
import type { SweepSettings } from "./store.ts";

/**
 * The finder's samples of one tree: its rows that did not diverge, as child components (each
 * edge's parent latent's cosine with the child, in edge order).
 */
export function samplesOf(rows: readonly SweepRow[], tree: SweepTree): BalanceSample[] {
  return rows.filter((r) => r.tree === tree.name && r.divergedAt === null).map((r) => ({
    beta: r.beta,
    encoder: tree.edges.map((_, k) => r.edgeEncoderCos[k] ?? NaN),
    decoder: tree.edges.map((_, k) => r.edgeDecoderCos[k] ?? NaN),
  }));
}

/**
 * Each edge's absorption gap at β, the mean over the tree's usable rows at that β (NaN where no
 * row has a finite gap, as at a β no SAE was trained at).
 */
export function gapsAt(rows: readonly SweepRow[], tree: SweepTree, beta: number): number[] {
  const at = rows.filter((r) => r.tree === tree.name && r.divergedAt === null && r.beta === beta);
  return tree.edges.map((_, k) => {
    const v = at.map((r) => r.absorptionGap[k] ?? NaN).filter(Number.isFinite);
    return v.length === 0 ? NaN : v.reduce((a, b) => a + b, 0) / v.length;
  });
}

/**
 * The balance of each tree, or why there is none.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { TreeBalance } from "./analysis.ts";
 * import { notebookSweepTrees } from "./axes.ts";
 * import { findBalance } from "./balance.ts";
 * import { balanceLines } from "./verdict.ts";
 * const [balanced, unbalanced] = notebookSweepTrees();
 * const balances: TreeBalance[] = [
 *   { tree: balanced!, balance: findBalance([{ beta: 0.25, encoder: [0.01, 0, -0.01] }]) },
 *   { tree: unbalanced!, balance: "every SAE of the tree diverged" },
 * ];
 * const lines = balanceLines(balances);
 * assert.match(lines[0]!, /^balanced: balanceable — at β\* = 0\.25/);
 * assert.equal(lines.at(-1), "unbalanced: no result: every SAE of the tree diverged");
 * ```
 */
export interface TreeBalance {
  /** The tree. */
  tree: SweepTree;
  /** Its balance, or why there is none. */
  balance: Balance | string;
  /** True when the tree is degenerate (parent or a child never fires): no verdict is given. */
  degenerate?: boolean;
}

/** Runs the balance finder on every tree of the sweep. */
export function analyseSweep(
  trees: readonly SweepTree[],
  rows: readonly SweepRow[],
  tolerance: number,
  objective: BalanceObjective = "max",
): TreeBalance[] {
  return trees.map((tree) => {
    const degenerate = degenerateReason(tree);
    if (degenerate) {
      return {
        tree,
        degenerate: true,
        balance: `degenerate world: ${degenerate}, so its latent has nothing to hedge or absorb`,
      };
    }
    try {
      return { tree, balance: findBalance(samplesOf(rows, tree), { tolerance, objective }) };
    } catch (error) {
      return { tree, balance: error instanceof Error ? error.message : String(error) };
    }
  });
}

/** Rows in canonical order (tree as listed in the settings, β ascending with ∞ last, seed). */
export function sortRows(rows: readonly SweepRow[], trees: readonly SweepTree[]): SweepRow[] {
  const index = new Map(trees.map((t, i) => [t.name, i]));
  const keyed = rows.map((row) => ({ row, tree: index.get(row.tree) ?? trees.length }));
  keyed.sort((a, b) =>
    compareCombinations(
      { tree: a.tree, beta: a.row.beta, seed: a.row.seed },
      { tree: b.tree, beta: b.row.beta, seed: b.row.seed },
    )
  );
  return keyed.map((k) => k.row);
}

/** Writes `sweep.csv` (the rows so far, canonical order) atomically. */
export async function writeSweepCsv(
  dir: string,
  rows: readonly SweepRow[],
  trees: readonly SweepTree[],
): Promise<void> {
  await writeFileAtomic(`${dir}/sweep.csv`, sweepCsv(sortRows(rows, trees)));
}

/** True when every grid combination of the settings (and of the shard) has a row. */
export function gridComplete(
  settings: SweepSettings,
  rows: readonly SweepRow[],
  shard: Shard | null,
): boolean {
  const have = new Set(rows.map((r) => combinationKey(r.tree, r.beta, r.seed)));
  let i = 0;
  for (const tree of settings.trees) {
    for (const beta of settings.betas) {
      for (let seed = 0; seed < settings.seeds; seed++, i++) {
        if (shard && i % shard.count !== shard.index) continue;
        if (!have.has(combinationKey(tree.name, beta, seed))) return false;
      }
    }
  }
  return true;
}

/**
 * Analyses the rows and writes every output: `sweep.csv`, `sweep.json` and `figures/` (replaced
 * atomically).
 */
export async function writeSweepOutputs(
  dir: string,
  settings: SweepSettings,
  rows: readonly SweepRow[],
  options: {
    tolerance: number;
    /** What the finder minimises over edges (default `max`). */
    objective?: BalanceObjective;
    shard: Shard | null;
    complete: boolean;
    /** Formats of every figure (default SVG only). */
    figureFormats?: readonly FigureFormat[];
  },
): Promise<{ json: SweepJson; balances: TreeBalance[] }> {
  const formats = options.figureFormats ?? ["svg"];
  const sorted = sortRows(rows, settings.trees);
  const objective = options.objective ?? "max";
  const balances = analyseSweep(settings.trees, sorted, options.tolerance, objective);
  const trees: SweepJsonTree[] = balances.map(({ tree, balance }) =>
    treeJson(
      tree,
      balance,
      typeof balance === "string" ? [] : gapsAt(sorted, tree, balance.betaStar),
    )
  );
  const json = sweepJson(
    {
      steps: settings.steps,
      batchSize: settings.batchSize,
      lr: settings.lr,
      betas: settings.betas.map((b) => b === Infinity ? "inf" : b),
      seeds: settings.seeds,
      evalRows: settings.evalRows,
      betaForm: settings.betaForm,
      l1Coefficient: settings.l1Coefficient,
      architecture: settings.architecture,
      k: settings.k,
      tolerance: options.tolerance,
      objective,
      refineRounds: Math.max(0, ...sorted.map((r) => r.round)),
      shard: formatShard(options.shard),
    },
    options.complete,
    trees,
    sorted,
  );
  await writeFileAtomic(`${dir}/sweep.csv`, sweepCsv(sorted));
  await writeFileAtomic(`${dir}/sweep.json`, sweepJsonText(json));
  await replaceDirAtomic(`${dir}/figures`, async (tmp) => {
    for (const { tree, balance } of balances) {
      if (typeof balance === "string") continue;
      for (const part of ["encoder", "decoder"] as const) {
        const svg = balanceFigureSvg(tree, balance, part);
        await saveFigureFormats(`${tmp}/${tree.name}_${part}`, svg, formats);
      }
    }
    const swept = childProbFiguresSvg(balances);
    if (swept) {
      await saveFigureFormats(`${tmp}/beta_star_vs_child_prob`, swept.betaStar, formats);
      await saveFigureFormats(`${tmp}/residual_vs_child_prob`, swept.residual, formats);
    }
  });
  return { json, balances };
}
