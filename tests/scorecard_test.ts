/**
 * The per-edge scorecard on SAEs built by hand, where every reading is known: an SAE set to the
 * true features (no hedging or absorption: gaps 0, precision, recall and F1 1, uniqueness 1), a
 * parent latent whose encoder absorbs one child (gap 1, negative encoder cosine), a duplicated
 * latent (uniqueness 3/4), a two-level tree's summaries per depth and per prefix, and the GPU's
 * `edgeScores` against the float64 evaluation.
 */
import assert from "node:assert/strict";
import { edgeScores } from "../src/metrics/evaluate.ts";
import { evaluateCpu } from "../src/metrics/evaluate_cpu.ts";
import { initSaeToMatchModel } from "../src/sae/init.ts";
import { MatryoshkaSAE } from "../src/sae/sae.ts";
import { notebookTree } from "../src/toy/notebook_trees.ts";
import { TreeFeatureGenerator } from "../src/toy/tree.ts";
import { assertClose, gpuTest } from "./_gpu.ts";

const D_IN = 8;
const ROWS = 20_000;

/** Feature f's direction is the unit vector e_f: every cosine is exact. */
function identityModel(nFeatures: number) {
  const embedding = new Float32Array(nFeatures * D_IN);
  for (let f = 0; f < nFeatures; f++) embedding[f * D_IN + f] = 1;
  return { embedding, nFeatures };
}

/** An SAE whose latent j is feature j, encoder and decoder (prefix ends as given). */
function matchedSae(nFeatures: number, dSae: number, steps?: number[]) {
  const sae = new MatryoshkaSAE({ dIn: D_IN, dSae, ...(steps ? { matryoshkaSteps: steps } : {}) });
  initSaeToMatchModel(sae, identityModel(nFeatures));
  return sae;
}

/** Sets latent j's encoder column `W_enc[:, j]` to `column`. */
function setEncoder(sae: MatryoshkaSAE, j: number, column: number[]) {
  for (let i = 0; i < D_IN; i++) sae.wEnc[i * sae.config.dSae + j] = column[i] ?? 0;
}

Deno.test("an SAE set to the true features: gaps 0, cosines 0, P/R/F1 1, uniqueness 1", () => {
  const tree = notebookTree();
  const sae = matchedSae(4, 4, [1, 4]);
  const [m] = evaluateCpu([{ sae, model: identityModel(4), tree }], { rows: ROWS });
  const card = m!.scorecard;
  assert.deepEqual(card.edges.map((e) => [e.parent, e.child, e.latent, e.prefix]), [
    [0, 1, 0, 0],
    [0, 2, 0, 0],
    [0, 3, 0, 0],
  ]);
  for (const e of card.edges) {
    assert.equal(e.encoderCos, 0);
    assert.equal(e.decoderCos, 0);
    assert.equal(e.absorptionGap, 0);
  }
  assert.deepEqual(card.latents.map((l) => l.feature), [0, 1, 2, 3]);
  assert.ok(card.latents.every((l) => l.precision === 1 && l.recall === 1 && l.f1 === 1));
  assert.equal(card.uniqueness, 1);
  assert.deepEqual([card.meanPrecision, card.meanRecall, card.meanF1], [1, 1, 1]);
});

Deno.test("a parent latent that absorbs child 1: gap 1 there, encoder −2/√5, others 0", () => {
  const tree = notebookTree();
  const sae = matchedSae(4, 4, [1, 4]);
  setEncoder(sae, 0, [1, -2]); // fires on parent-without-child-1 only (1 − 2 < 0 with both on)
  const [m] = evaluateCpu([{ sae, model: identityModel(4), tree }], { rows: ROWS });
  const [first, second] = m!.scorecard.edges;
  assert.equal(first!.absorptionGap, 1);
  assertClose([first!.encoderCos, first!.decoderCos], [-2 / Math.sqrt(5), 0], {
    atol: 1e-6,
    label: "absorbing edge",
  });
  // Child 2 is independent of child 1: the parent latent fires on P(child 1 off) = 0.85 of
  // parent rows whether or not child 2 is on, so its gap is 0 up to sampling noise.
  assert.ok(Math.abs(second!.absorptionGap) < 0.03, `${second!.absorptionGap}`);
  assert.equal(second!.encoderCos, 0);
  // The parent latent's precision is 1 (it fires only with the parent) and its recall 0.85.
  const parent = m!.scorecard.latents[0]!;
  assert.equal(parent.precision, 1);
  assert.ok(Math.abs(parent.recall - 0.85) < 0.02, `${parent.recall}`);
  assertClose([parent.f1], [(2 * parent.recall) / (1 + parent.recall)], { atol: 1e-12 });
});

Deno.test("a duplicated latent lowers uniqueness to 3/4 and is never the matched latent", () => {
  const tree = notebookTree();
  const sae = matchedSae(4, 4);
  const d = sae.config.dIn;
  sae.wDec.copyWithin(3 * d, 2 * d, 3 * d); // latent 3's decoder = latent 2's (feature 2)
  setEncoder(sae, 3, [0, 0, 1]);
  const [m] = evaluateCpu([{ sae, model: identityModel(4), tree }], { rows: ROWS });
  const card = m!.scorecard;
  assert.deepEqual(card.latents.map((l) => l.feature), [0, 1, 2, 2]);
  assert.equal(card.uniqueness, 0.75);
  assert.equal(card.latents[3]!.precision, 1);
  // Feature 3 has no latent of its own: no latent fires with it.
  assert.ok(card.latents.every((l) => l.feature !== 3));
});

/** Root → A (feature 0) → {B (1) → C (2), D (3)}: edges A–B, B–C, A–D at depths 0, 1, 0. */
function twoLevelTree() {
  return new TreeFeatureGenerator({
    activeProb: 1,
    isReadOut: false,
    children: [{
      activeProb: 0.4,
      children: [{ activeProb: 0.5, children: [{ activeProb: 0.5 }] }, { activeProb: 0.3 }],
    }],
  });
}

Deno.test("a two-level tree: edges by child, summaries per depth of the parent and per prefix", () => {
  const tree = twoLevelTree();
  const sae = matchedSae(4, 4, [1, 2, 4]);
  setEncoder(sae, 1, [0, 1, -2]); // B's latent absorbs C
  const [m] = evaluateCpu([{ sae, model: identityModel(4), tree }], { rows: ROWS });
  const card = m!.scorecard;
  assert.deepEqual(card.edges.map((e) => [e.parent, e.child, e.depth, e.latent, e.prefix]), [
    [0, 1, 0, 0, 0],
    [1, 2, 1, 1, 1],
    [0, 3, 0, 0, 0],
  ]);
  assert.equal(card.edges[1]!.absorptionGap, 1);
  assert.deepEqual(card.byDepth.map((s) => [s.group, s.edges]), [[0, 2], [1, 1]]);
  assert.deepEqual(card.byPrefix.map((s) => [s.group, s.edges]), [[0, 2], [1, 1]]);
  assert.equal(card.byDepth[0]!.absorptionGap.maxAbs, 0);
  assert.equal(card.byDepth[1]!.absorptionGap.mean, 1);
  assertClose([card.byDepth[1]!.encoder.mean], [-2 / Math.sqrt(5)], { atol: 1e-6 });
});

gpuTest("edgeScores on the GPU agree with the float64 scorecard", async (gpu) => {
  const tree = twoLevelTree();
  const sae = matchedSae(4, 6, [1, 2, 6]);
  setEncoder(sae, 1, [0, 1, -2]);
  setEncoder(sae, 4, [0.5, 0.5, 0.5, 0.5]); // latents 4 and 5: spare ones, mixed and dead
  const item = { sae, model: identityModel(4), tree };
  const card = await edgeScores(item, { rows: ROWS, seed: 3 }, gpu);
  const cpu = evaluateCpu([item], { rows: ROWS, seed: 3 })[0]!.scorecard;
  assert.deepEqual(
    card.edges.map((e) => [e.latent, e.prefix]),
    cpu.edges.map((e) => [e.latent, e.prefix]),
  );
  const values = (c: typeof card) => [
    ...c.edges.flatMap((e) => [e.encoderCos, e.decoderCos, e.absorptionGap]),
    ...c.latents.flatMap((l) => [l.precision, l.recall, l.f1]),
    c.uniqueness,
  ];
  assertClose(values(card), values(cpu), { atol: 2e-3, label: "GPU scorecard" });
});
