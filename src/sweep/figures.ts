/**
 * The sweep's figures (SVG):
 * - per tree and part (encoder, decoder): each edge's parent-latent component along the child
 *   (latent 0's along each child on the notebook's trees) against β, one line per edge (mean over
 *   seeds) with its min–max band, β* marked; β = ∞ is drawn at a finite
 *   position right of the largest finite β, with the tick label "∞";
 * - when two or more trees come from `--child-probs`: β* and the largest |residual| against the
 *   children's probability. The x axis is the probability of the first child whose probability
 *   differs between those trees, when all have the same number of children and those
 *   probabilities are distinct; otherwise the tree's position in the order given (1, 2, …).
 */
import { linePlotSvg, type LineSeries, type Tick } from "../plot/line_plot.ts";
import { formatTick, niceTicks } from "../plot/svg.ts";
import { edgeName, singleParent, type SweepTree } from "./axes.ts";
import type { Balance } from "./balance.ts";
import { showBeta } from "./verdict.ts";

/** Positions of finite values and of ∞ on a linear axis, with ticks (∞ labelled "∞"). */
export function infinityAxis(values: readonly number[]): {
  position: (value: number) => number;
  ticks: Tick[];
} {
  const finite = values.filter(Number.isFinite);
  const lo = finite.length > 0 ? Math.min(...finite) : 0;
  const hi = finite.length > 0 ? Math.max(...finite) : 0;
  const span = hi - lo;
  const inf = hi + Math.max(span * 0.15, 0.1);
  const { ticks: tickValues, step } = niceTicks(lo, hi === lo ? lo + 1 : hi, 5);
  const ticks: Tick[] = tickValues.filter((v) => v <= hi + 1e-12).map((v) => ({
    value: v,
    label: formatTick(v, step),
  }));
  if (values.includes(Infinity)) ticks.push({ value: inf, label: "∞" });
  return { position: (v) => v === Infinity ? inf : v, ticks };
}

/** The child-component figure of one tree, for the encoder or the decoder. */
export function balanceFigureSvg(
  tree: SweepTree,
  balance: Balance,
  part: "encoder" | "decoder",
): string {
  const axis = infinityAxis(balance.curve.map((p) => p.beta));
  const series: LineSeries[] = tree.edges.map((_, k) => {
    const points = balance.curve.filter((p) => Number.isFinite(p[part].mean[k]!));
    return {
      name: edgeName(tree, k),
      x: points.map((p) => axis.position(p.beta)),
      mean: points.map((p) => p[part].mean[k]!),
      min: points.map((p) => p[part].min[k]!),
      max: points.map((p) => p[part].max[k]!),
    };
  }).filter((s) => s.x.length > 0);
  if (series.length === 0) {
    series.push({ name: "no data", x: [0], mean: [0] });
  }
  return linePlotSvg({
    title: singleParent(tree) && tree.edges[0]!.parent === 0
      ? `${tree.name}: latent 0 ${part} component along each child`
      : `${tree.name}: each parent latent's ${part} component along its children`,
    xLabel: "β (inner prefix loss multiplier; ∞ = detached)",
    yLabel: `${part} cos sim with child`,
    series,
    xTicks: axis.ticks,
    markers: [{ x: axis.position(balance.betaStar), label: `β* = ${showBeta(balance.betaStar)}` }],
  });
}

/** How trees are placed on the x axis of the β*-against-child-probability figures. */
export function childProbAxis(trees: readonly SweepTree[]): { x: number[]; label: string } {
  const n = trees[0]?.childProbs.length ?? 0;
  if (trees.every((t) => t.childProbs.length === n)) {
    for (let k = 0; k < n; k++) {
      const values = trees.map((t) => t.childProbs[k]!);
      if (new Set(values).size === 1) continue;
      if (new Set(values).size === values.length) {
        return { x: values, label: `probability of child ${k + 1}` };
      }
      break;
    }
  }
  return { x: trees.map((_, i) => i + 1), label: "tree (order given)" };
}

/**
 * The β* and residual figures against the children's probability, for the trees that came from
 * `--child-probs` (null when fewer than two have a result).
 */
export function childProbFiguresSvg(
  results: readonly { tree: SweepTree; balance: Balance | string }[],
): { betaStar: string; residual: string } | null {
  const swept = results.filter((r) => r.tree.source === "child-probs");
  const usable = swept.filter((r): r is { tree: SweepTree; balance: Balance } =>
    typeof r.balance !== "string"
  );
  if (usable.length < 2) return null;
  const axis = childProbAxis(usable.map((r) => r.tree));
  const order = usable.map((_, i) => i).sort((a, b) => axis.x[a]! - axis.x[b]!);
  const x = order.map((i) => axis.x[i]!);
  const betas = order.map((i) => usable[i]!.balance.betaStar);
  const yAxis = infinityAxis(betas);
  const tolerance = usable[0]!.balance.tolerance;
  const betaStar = linePlotSvg({
    title: "β* against the children's firing probability",
    xLabel: axis.label,
    yLabel: "β*",
    series: [{ name: "β*", x, mean: betas.map(yAxis.position) }],
    yTicks: yAxis.ticks,
  });
  const residual = linePlotSvg({
    title: "Largest |child component| of latent 0's encoder at β*",
    xLabel: axis.label,
    yLabel: "max |cos sim with child|",
    series: [
      { name: "at β*", x, mean: order.map((i) => usable[i]!.balance.maxResidual) },
      { name: `tolerance ${tolerance}`, x, mean: x.map(() => tolerance), color: "#888" },
    ],
  });
  return { betaStar, residual };
}
