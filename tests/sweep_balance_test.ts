/**
 * The balance finder on synthetic curves with known answers: seeds are averaged before
 * minimising, the global minimum wins over the first sign change when latent 0 jumps between
 * regimes, the tolerance decides "balanceable", refinement bisects around the best point, and the
 * verdict names the child that stays unbalanced.
 */
import assert from "node:assert/strict";
import {
  balanceCurve,
  type BalanceSample,
  findBalance,
  refinementBetas,
} from "../src/sweep/balance.ts";
import { childProbsTree, type SweepTree } from "../src/sweep/axes.ts";
import { describeBalance, verdictLine } from "../src/sweep/verdict.ts";
import { assertClose } from "./_gpu.ts";

/** Samples of `f(β)` (per child) at every β, once per seed offset. */
function sampled(
  betas: number[],
  f: (beta: number) => number[],
  seedOffsets: number[][] = [[0]],
): BalanceSample[] {
  return betas.flatMap((beta) =>
    seedOffsets.map((offsets) => ({
      beta,
      encoder: f(beta).map((v, k) => v + (offsets[k] ?? offsets[0]!)),
      decoder: f(beta).map((v) => v / 2 + 0.1),
    }))
  );
}

/** The notebook's tree with these children's probabilities, under a short name. */
function named(name: string, probs: number[]): SweepTree {
  return { ...childProbsTree(probs), name };
}

Deno.test("equal children: β* is where the common component crosses zero, and it is balanceable", () => {
  // Component −0.3 + 1.2β: zero at β = 0.25; ∞ hedges at +0.2.
  const f = (b: number) => Array(3).fill(b === Infinity ? 0.2 : -0.3 + 1.2 * b);
  const betas = [0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 1, Infinity];
  const balance = findBalance(sampled(betas, f));
  assert.equal(balance.betaStar, 0.25);
  assert.equal(balance.balanceable, true);
  assertClose(balance.residuals, [0, 0, 0], { atol: 1e-12, label: "residuals" });
  assertClose(balance.decoder, [0.1, 0.1, 0.1], { atol: 1e-12, label: "decoder at β*" });
});

Deno.test("seeds are averaged before minimising, not minimised one by one", () => {
  // Two seeds whose curves cross zero at 0.1 and 0.3: each seed alone has a zero on the grid,
  // but their mean −0.2 + β·… is smallest at β = 0.2.
  const samples: BalanceSample[] = [];
  for (const beta of [0, 0.1, 0.2, 0.3, 0.4]) {
    samples.push({ beta, encoder: [beta - 0.1] }, { beta, encoder: [beta - 0.3] });
  }
  const balance = findBalance(samples);
  assert.equal(balance.betaStar, 0.2);
  assertClose(balance.residuals, [0], { atol: 1e-12 });
  const point = balance.curve.find((p) => p.beta === 0.2)!;
  assert.equal(point.seeds, 2);
  assertClose(point.encoder.min, [-0.1], { atol: 1e-12 });
  assertClose(point.encoder.max, [0.1], { atol: 1e-12 });
});

Deno.test("several regimes: the global minimum wins, not the first sign change", () => {
  // Child 1 crosses zero early (β = 0.1) while child 2 is still far off; then latent 0 jumps
  // regime at β = 0.5, where both are small.
  const f = (b: number): number[] => {
    if (b === Infinity) return [0.3, 0.3];
    return b < 0.5 ? [-0.1 + b, -0.4 + 0.2 * b] : [0.02 * (b - 0.6), 0.1 * (b - 0.6)];
  };
  const betas = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, Infinity];
  const balance = findBalance(sampled(betas, f));
  assert.equal(balance.betaStar, 0.6);
  assert.equal(balance.balanceable, true);
  assertClose(balance.residuals, [0, 0], { atol: 1e-12 });
  assert.deepEqual(balance.localMinima, [0.6]);
  // Child 1 alone is balanced at 0.1, where child 2 is still at −0.38.
  const at = balance.curve.find((p) => p.beta === 0.1)!;
  assertClose(at.encoder.mean, [0, -0.38], { atol: 1e-12 });
});

Deno.test("two separate local minima are both reported, the lower one is β*", () => {
  const objective = [0.3, 0.05, 0.2, 0.25, 0.04, 0.1, 0.2];
  const betas = [0, 0.1, 0.2, 0.3, 0.4, 0.5, Infinity];
  const samples = betas.map((beta, i) => ({ beta, encoder: [objective[i]!, -objective[i]! / 2] }));
  const balance = findBalance(samples, { tolerance: 0.02 });
  assert.deepEqual(balance.localMinima, [0.1, 0.4]);
  assert.equal(balance.betaStar, 0.4);
  assert.equal(balance.balanceable, false);
  assert.equal(balance.worstChild, 0);
  assert.ok(
    describeBalance(named("t", [0.1, 0.2]), balance).includes(
      "  the largest |child component| has 2 local minima: 0.050 at β = 0.1, 0.040 at β = 0.4",
    ),
    describeBalance(named("t", [0.1, 0.2]), balance).join("\n"),
  );
});

Deno.test("unequal children: no β cancels every child, the tree is not balanceable", () => {
  // Children cross zero at β = 0.1, 0.2 and 0.3 (slopes 1): the best compromise is β = 0.2,
  // with ±0.1 left on the outer children.
  const f = (b: number) =>
    b === Infinity ? [0.3, 0.3, 0.3] : [b - 0.1, b - 0.2, b - 0.3].map((v) => Math.tanh(v));
  const betas = [0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, Infinity];
  const balance = findBalance(sampled(betas, f), { tolerance: 0.02 });
  assert.equal(balance.betaStar, 0.2);
  assert.equal(balance.balanceable, false);
  assertClose(balance.residuals, [Math.tanh(0.1), 0, Math.tanh(-0.1)], { atol: 1e-12 });
  assert.equal(balance.worstChild, 0); // ties go to the first child
  assert.equal(
    verdictLine(named("unbalanced", [0.02, 0.15, 0.5]), balance),
    "unbalanced: not balanceable — at β* = 0.2 child 1 (p=0.02) still has +0.100 (tolerance 0.02)",
  );
});

Deno.test("the tolerance decides balanceable: below it yes, at or above it no", () => {
  const samples = [{ beta: 0, encoder: [0.5] }, { beta: 0.3, encoder: [-0.019] }];
  assert.equal(findBalance(samples, { tolerance: 0.02 }).balanceable, true);
  assert.equal(findBalance(samples, { tolerance: 0.019 }).balanceable, false);
  assert.equal(findBalance(samples, { tolerance: 0.01 }).balanceable, false);
  assert.match(
    verdictLine(named("t", [0.3]), findBalance(samples)),
    /^t: balanceable — at β\* = 0\.3 every child is within ±0\.02 \(largest: child 1 \(p=0\.3\), −0\.019\)$/,
  );
});

Deno.test("β = ∞ can be β*, and is never bisected", () => {
  const samples = [
    { beta: 0, encoder: [-0.5] },
    { beta: 1, encoder: [-0.2] },
    { beta: Infinity, encoder: [0.01] },
  ];
  const balance = findBalance(samples);
  assert.equal(balance.betaStar, Infinity);
  assert.deepEqual(refinementBetas(samples), []);
  assert.match(verdictLine(named("t", [0.5]), balance), /at β\* = ∞/);
});

Deno.test("refinement proposes the midpoints around the best β, and each round halves the bracket", () => {
  // One child, component β − 0.24 (zero between grid points).
  const f = (b: number) => [b === Infinity ? 0.4 : b - 0.24];
  let betas = [0, 0.1, 0.2, 0.3, 0.4, Infinity];
  // Best 0.2 (0.04 off): bracket [0.1, 0.3] → midpoints at ±0.05.
  assert.deepEqual(refinementBetas(sampled(betas, f)), [0.15, 0.25]);
  betas = [...betas, 0.15, 0.25];
  // Best 0.25 (0.01 off), neighbours 0.2 and 0.3 → ±0.025.
  assert.deepEqual(refinementBetas(sampled(betas, f)), [0.225, 0.275]);
  betas = [...betas, 0.225, 0.275];
  // Still 0.25, neighbours now 0.225 and 0.275 → ±0.0125.
  assert.deepEqual(refinementBetas(sampled(betas, f)), [0.2375, 0.2625]);
  betas = [...betas, 0.2375, 0.2625];
  const balance = findBalance(sampled(betas, f));
  assert.equal(balance.betaStar, 0.2375);
  assertClose(balance.residuals, [-0.0025], { atol: 1e-12 });
});

Deno.test("refinement at the edge of the grid proposes the one inner midpoint", () => {
  const samples = [
    { beta: 0, encoder: [0.01] },
    { beta: 0.5, encoder: [0.2] },
    { beta: Infinity, encoder: [0.3] },
  ];
  assert.deepEqual(refinementBetas(samples), [0.25]);
});

Deno.test("diverged samples (NaN components) are left out of the curve", () => {
  const samples = [
    { beta: 0, encoder: [-0.3] },
    { beta: 0.25, encoder: [NaN] },
    { beta: 0.25, encoder: [0.001] },
    { beta: 0.5, encoder: [NaN] },
  ];
  const curve = balanceCurve(samples);
  assert.deepEqual(curve.map((p) => [p.beta, p.seeds]), [[0, 1], [0.25, 1]]);
  assert.equal(findBalance(samples).betaStar, 0.25);
  assert.throws(() => findBalance([{ beta: 0, encoder: [NaN] }]), /no usable sample/);
});
