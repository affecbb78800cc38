/**
 * The balance finder's answer in words: one verdict line per tree ("balanceable" or "not
 * balanceable", β*, the edge that is furthest from zero) and the encoder's and decoder's child
 * components at β*. On a tree with one parent, edges are its children numbered from 1 (for the
 * notebook's trees child k is true feature k); on a tree with several, `edge p → c` with feature
 * indices (`edgeName` of axes.ts), and the worst edges are listed first.
 */
import { edgeName, singleParent, type SweepTree } from "./axes.ts";
import type { Balance } from "./balance.ts";
import type { TreeBalance } from "./analysis.ts";

/** Children listed by name in a verdict; wider trees show their largest components. */
const MAX_LISTED_CHILDREN = 8;

/** `+0.081` / `−0.081` (true minus sign). */
export function signed(value: number, digits = 3): string {
  if (!Number.isFinite(value)) return String(value);
  const text = Math.abs(value).toFixed(digits);
  return `${value < 0 && Number(text) !== 0 ? "\u2212" : "+"}${text}`;
}

/** β for people: `∞`, or at most 4 significant digits. */
export function showBeta(beta: number): string {
  return beta === Infinity ? "∞" : String(Number(beta.toPrecision(4)));
}

/** Who carries the components: latent 0 on the notebook's trees, else each parent's latent. */
function reader(tree: SweepTree): string {
  return singleParent(tree) && tree.edges[0]!.parent === 0 ? "latent 0" : "parent latents'";
}

/**
 * The verdict line of one tree, e.g.
 * `unbalanced: not balanceable — at β* = 0.19 child 3 (p=0.5) still has +0.081 (tolerance 0.02)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { verdictLine } from "./verdict.ts";
 * import { sweepTree } from "./axes.ts";
 * import { findBalance } from "./balance.ts";
 * import { notebookTree } from "../toy/notebook_trees.ts";
 * const balance = findBalance([{ beta: 0.25, encoder: [0.012, -0.005] }]);
 * assert.equal(
 *   verdictLine(sweepTree("pair", notebookTree([0.1, 0.3])), balance),
 *   "pair: balanceable — at β* = 0.25 every child is within ±0.02 " +
 *     "(largest: child 1 (p=0.1), +0.012)",
 * );
 * ```
 */
export function verdictLine(tree: SweepTree, balance: Balance): string {
  const at = `at β* = ${showBeta(balance.betaStar)}`;
  const worst = edgeName(tree, balance.worstChild);
  const value = signed(balance.residuals[balance.worstChild]!);
  const every = singleParent(tree) ? "every child" : "every edge";
  const name = tree.name;
  if (balance.balanceable) {
    return `${name}: balanceable — ${at} ${every} is within ±${balance.tolerance} ` +
      `(largest: ${worst}, ${value})`;
  }
  return `${name}: not balanceable — ${at} ${worst} still has ${value} ` +
    `(tolerance ${balance.tolerance})`;
}

/**
 * The verdict line plus the encoder's and decoder's child components at β* (the decoder's only
 * when given), and the local minima of the curve when there are several.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describeBalance } from "./verdict.ts";
 * import { childProbsTree } from "./axes.ts";
 * import { findBalance } from "./balance.ts";
 * const balance = findBalance([
 *   { beta: 0, encoder: [-0.3, -0.2], decoder: [0.1, 0.1] },
 *   { beta: Infinity, encoder: [0.1, 0.05], decoder: [0.4, 0.3] },
 * ]);
 * const pair = { ...childProbsTree([0.1, 0.3]), name: "pair" };
 * assert.deepEqual(describeBalance(pair, balance), [
 *   "pair: not balanceable — at β* = ∞ child 1 (p=0.1) still has +0.100 (tolerance 0.02)",
 *   "  latent 0 encoder at β*: child 1 (p=0.1) +0.100, child 2 (p=0.3) +0.050",
 *   "  latent 0 decoder at β*: child 1 (p=0.1) +0.400, child 2 (p=0.3) +0.300",
 * ]);
 * ```
 */
export function describeBalance(tree: SweepTree, balance: Balance): string[] {
  const single = singleParent(tree);
  // Every edge of a small tree; the largest components (by |value|) of a wide one. A tree with
  // several parents lists its worst edges first.
  const list = (values: number[]) => {
    const shown = values.map((v, k) => ({ v, k }));
    if (!single || shown.length > MAX_LISTED_CHILDREN) {
      shown.sort((a, b) => Math.abs(b.v) - Math.abs(a.v) || a.k - b.k);
      shown.length = Math.min(shown.length, MAX_LISTED_CHILDREN);
      if (single) shown.sort((a, b) => a.k - b.k);
    }
    const more = values.length - shown.length;
    const what = single ? "children" : "edges";
    return shown.map(({ v, k }) => `${edgeName(tree, k)} ${signed(v)}`).join(", ") +
      (more > 0 ? `, … (${more} smaller of ${values.length} ${what})` : "");
  };
  const who = reader(tree);
  const lines = [verdictLine(tree, balance)];
  lines.push(
    single
      ? `  ${who} encoder at β*: ${list(balance.residuals)}`
      : `  worst edges at β* (${who} encoder): ${list(balance.residuals)}`,
  );
  if (balance.decoder.some(Number.isFinite)) {
    lines.push(`  ${who} decoder at β*: ${list(balance.decoder)}`);
  }
  const depths = [...new Set(tree.edges.map((e) => e.depth))].sort((a, b) => a - b);
  if (depths.length > 1) {
    const depthText = depths.map((d) => {
      const values = balance.residuals.filter((_, k) => tree.edges[k]!.depth === d);
      const largest = Math.max(...values.map(Math.abs));
      return `depth ${d} (${values.length} edge${values.length === 1 ? "" : "s"}) ` +
        largest.toFixed(3);
    });
    lines.push(`  largest |encoder component| per depth at β*: ${depthText.join(", ")}`);
  }
  if (balance.objective === "mean") {
    const mean = balance.curve.find((p) => p.beta === balance.betaStar)!.objective;
    lines.push(`  objective: mean |child component| over edges, ${mean.toFixed(3)} at β*`);
  }
  if (balance.localMinima.length > 1) {
    const at = (beta: number) => balance.curve.find((p) => p.beta === beta)!.objective;
    lines.push(
      `  the largest |child component| has ${balance.localMinima.length} local minima: ` +
        balance.localMinima.map((b) => `${at(b).toFixed(3)} at β = ${showBeta(b)}`).join(", "),
    );
  }
  return lines;
}

/**
 * The printed answer of a sweep: each tree's verdict lines, or a warning and no verdict when the
 * tree is degenerate (its parent or a child never fires), or why the finder had no result.
 */
export function balanceLines(balances: readonly TreeBalance[]): string[] {
  return balances.flatMap(({ tree, balance, degenerate }) => {
    if (degenerate) return [`warning: ${tree.name}: no verdict: ${balance}`];
    if (typeof balance === "string") return [`${tree.name}: no result: ${balance}`];
    return describeBalance(tree, balance);
  });
}
