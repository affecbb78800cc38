/**
 * The sweep's figures and tables from known inputs: ∞ gets a finite position labelled "∞", the
 * β*-against-child-probability figures exist only for swept `--child-probs` trees with the
 * documented x axis, and the csv has one column per definition (extensible by metrics).
 */
import assert from "node:assert/strict";
import { childProbsTree, notebookSweepTrees } from "../src/sweep/axes.ts";
import { findBalance } from "../src/sweep/balance.ts";
import {
  balanceFigureSvg,
  childProbAxis,
  childProbFiguresSvg,
  infinityAxis,
} from "../src/sweep/figures.ts";
import { csvNumber, sweepColumns, sweepCsv } from "../src/sweep/outputs.ts";
import { rowFromJson, rowToJson, type SweepRow } from "../src/sweep/rows.ts";

Deno.test("∞ is placed right of the largest finite β and its tick is labelled ∞", () => {
  const axis = infinityAxis([0, 0.5, 1, Infinity]);
  const inf = axis.position(Infinity);
  assert.ok(inf > 1 && inf < 1.5, `∞ at ${inf}`);
  assert.equal(axis.position(0.5), 0.5);
  const labels = axis.ticks.map((t) => typeof t === "number" ? String(t) : t.label);
  assert.equal(labels.at(-1), "∞");
  assert.ok(labels.includes("0") && labels.includes("1"));
  assert.ok(!infinityAxis([0, 1]).ticks.some((t) => typeof t !== "number" && t.label === "∞"));
});

Deno.test("the child-component figure has one line and band per child and marks β*", () => {
  const [tree] = notebookSweepTrees();
  const samples = [0, 0.25, Infinity].flatMap((beta) =>
    [0, 1].map((s) => ({
      beta,
      encoder: [1, 2, 3].map((k) => (beta === Infinity ? 0.2 : beta - 0.25) + 0.01 * k * s),
      decoder: [0.1, 0.1, 0.1],
    }))
  );
  const svg = balanceFigureSvg(tree!, findBalance(samples), "encoder");
  assert.equal(svg.match(/class="line"/g)?.length, 3);
  assert.equal(svg.match(/class="band"/g)?.length, 3);
  assert.ok(svg.includes(">∞<"));
  assert.ok(svg.includes("β* = 0.25"));
  assert.ok(svg.includes("child 1 (p=0.15)"));
});

Deno.test("β* against child probability: x is the first child probability that differs", () => {
  const trees = ["0.02,0.15,0.5", "0.1,0.15,0.5", "0.15,0.15,0.5"].map((t) =>
    childProbsTree(t.split(",").map(Number))
  );
  assert.deepEqual(childProbAxis(trees), { x: [0.02, 0.1, 0.15], label: "probability of child 1" });
  const second = ["0.15,0.02,0.5", "0.15,0.3,0.5"].map((t) =>
    childProbsTree(t.split(",").map(Number))
  );
  assert.deepEqual(childProbAxis(second).label, "probability of child 2");
  // Repeated values at the first differing child, or different numbers of children: tree index.
  const repeated = ["0.1,0.2", "0.1,0.3", "0.2,0.3"].map((t) =>
    childProbsTree(t.split(",").map(Number))
  );
  assert.deepEqual(childProbAxis(repeated), { x: [1, 2, 3], label: "tree (order given)" });
  const uneven = [childProbsTree([0.1]), childProbsTree([0.1, 0.2])];
  assert.deepEqual(childProbAxis(uneven).label, "tree (order given)");
});

Deno.test("the β* figures are drawn only for two or more --child-probs trees", () => {
  const balance = (betaStar: number) =>
    findBalance([
      { beta: 0, encoder: [betaStar === 0 ? 0 : -0.3] },
      { beta: betaStar, encoder: [0.001] },
      { beta: Infinity, encoder: [0.3] },
    ]);
  const swept = [childProbsTree([0.1, 0.5]), childProbsTree([0.3, 0.5])].map((tree, i) => ({
    tree,
    balance: balance(0.2 + 0.1 * i),
  }));
  const figures = childProbFiguresSvg(swept);
  assert.ok(figures);
  assert.ok(figures.betaStar.includes("probability of child 1"));
  assert.ok(figures.residual.includes("tolerance 0.02"));
  const notebook = notebookSweepTrees().map((tree) => ({ tree, balance: balance(0.25) }));
  assert.equal(childProbFiguresSvg(notebook), null);
  assert.equal(childProbFiguresSvg(swept.slice(0, 1)), null);
});

const row: SweepRow = {
  tree: "balanced",
  childProbs: [0.15, 0.15, 0.15],
  beta: Infinity,
  seed: 1,
  round: 0,
  edgeEncoderCos: [0.1, NaN, 0.12],
  edgeDecoderCos: [0.05, 0.06, 0.07],
  absorptionGap: [0, 0.25, NaN],
  encoderCos: [0.9, 0.1, NaN, 0.12],
  decoderCos: [0.95, 0.05, 0.06, 0.07],
  losses: { total: 0.5, gradNorm: 0.01, recon: [0.1, 0.2], l1: [0.05, 0.15] },
  stepsDone: 100,
  divergedAt: null,
  metrics: {},
};

Deno.test("csv columns: one per definition, β = ∞ as inf, NaN as an empty cell", () => {
  const csv = sweepCsv([row]);
  const [header, line] = csv.trimEnd().split("\n");
  assert.equal(
    header,
    "tree,child_probs,beta,seed,round,edge_enc_cos,edge_dec_cos,absorption_gap,enc_cos_f0,enc_cos_f1,enc_cos_f2,enc_cos_f3," +
      "dec_cos_f0,dec_cos_f1,dec_cos_f2,dec_cos_f3,loss_total,grad_norm,loss_recon_p1," +
      "loss_recon_p2,loss_l1_p1,loss_l1_p2,steps_done,diverged_at",
  );
  assert.equal(
    line,
    "balanced,0.15;0.15;0.15,inf,1,0,0.1;;0.12,0.05;0.06;0.07,0;0.25;,0.9,0.1,,0.12,0.95,0.05,0.06,0.07,0.5,0.01,0.1,0.2,0.05,0.15,100,",
  );
  assert.equal(sweepColumns(4, 2).length, header!.split(",").length);
  assert.equal(csvNumber(1 / 3), "0.33333333");
});

Deno.test("metrics added to rows become csv columns; extra column definitions append", () => {
  const withMetric = { ...row, metrics: { mcc: 0.75, l0: 1.5 } };
  const csv = sweepCsv([withMetric, row]);
  const [header, first, second] = csv.trimEnd().split("\n");
  assert.ok(header!.endsWith(",diverged_at,mcc,l0"));
  assert.ok(first!.endsWith(",100,,0.75,1.5"));
  assert.ok(second!.endsWith(",100,,,"));
  const custom = [...sweepColumns(4, 2), { name: "note", value: () => "a,b" }];
  assert.ok(sweepCsv([row], custom).trimEnd().endsWith(`,"a,b"`));
});

Deno.test('a row survives its JSON form: ∞ as "inf", NaN as null and back', () => {
  const json = rowToJson(row);
  assert.equal(json.beta, "inf");
  assert.equal(json.encoderCos[2], null);
  const back = rowFromJson(JSON.parse(JSON.stringify(json)), "test");
  assert.deepEqual(back, row);
});
