/**
 * The synthetic-SAE evaluation suite: known answers on constructed SAEs (an SAE set to the true
 * features scores MCC 1 and explained variance 1; a latent that never fires is dead; permuting
 * latents keeps the MCC; a decoder scaled by 0.5 has shrinkage 0.5), prefix explained variance and
 * true L0 against references computed from the sampled features, and the GPU evaluation of three
 * different models in one call against the float64 host computation.
 */
import assert from "node:assert/strict";
import { evaluate, type SaeMetrics } from "../src/metrics/evaluate.ts";
import {
  EVAL_ROWS_PER_STEP,
  EVAL_STEP_BASE,
  evalDataSeed,
  evaluateCpu,
  type EvaluateItem,
} from "../src/metrics/evaluate_cpu.ts";
import { MatryoshkaSAE } from "../src/sae/sae.ts";
import { NOTEBOOK_SAE_CONFIG, type SaeConfig } from "../src/sae/config.ts";
import { initSaeRandom, initSaeToMatchModel } from "../src/sae/init.ts";
import { balancedTree, unbalancedTree } from "../src/toy/notebook_trees.ts";
import { sampleBatchCpu } from "../src/toy/cpu_sampler.ts";
import { ToyModel } from "../src/toy/toy_model.ts";
import { Rng } from "../src/toy/rng.ts";
import { TreeFeatureGenerator } from "../src/toy/tree.ts";
import { assertClose, gpuTest } from "./_gpu.ts";
import type { Scorecard } from "../src/metrics/scorecard.ts";

const ROWS = 20_000;
const D_IN = 50;

/**
 * `nFeatures` orthonormal rows in `dIn` dimensions whose dot products are exact in float32: rows
 * 1.. of the 16×16 Sylvester–Hadamard matrix divided by 4 (entries ±0.25), spread over scattered
 * input dimensions.
 */
function hadamardEmbedding(nFeatures: number, dIn = D_IN): Float32Array {
  const e = new Float32Array(nFeatures * dIn);
  for (let f = 0; f < nFeatures; f++) {
    for (let k = 0; k < 16; k++) {
      let bits = (f + 1) & k, parity = 0;
      while (bits) {
        parity ^= bits & 1;
        bits >>= 1;
      }
      e[f * dIn + (3 * k + 1) % dIn] = parity ? -0.25 : 0.25;
    }
  }
  return e;
}

/** An SAE whose encoder and decoder are the true features (init_sae_to_match_model, noise 0). */
function perfectItem(
  tree: TreeFeatureGenerator,
  config: Partial<SaeConfig> = {},
): EvaluateItem {
  const embedding = hadamardEmbedding(tree.nFeatures);
  const sae = new MatryoshkaSAE({ ...NOTEBOOK_SAE_CONFIG, dIn: D_IN, dSae: 4, ...config });
  const model = { embedding, nFeatures: tree.nFeatures };
  initSaeToMatchModel(sae, model);
  return { sae, model, tree };
}

/** The same item with latents reordered: new latent j is old latent `order[j]`. */
function permuted(item: EvaluateItem, order: number[]): EvaluateItem {
  const { sae } = item;
  const { dIn: D, dSae: S } = sae.config;
  const out = new MatryoshkaSAE(sae.config, sae.params.slice());
  order.forEach((old, j) => {
    for (let d = 0; d < D; d++) {
      out.wEnc[d * S + j] = sae.wEnc[d * S + old]!;
      out.wDec[j * D + d] = sae.wDec[old * D + d]!;
    }
    out.bEnc[j] = sae.bEnc[old]!;
  });
  return { ...item, sae: out };
}

/** The held-out features of `rows` rows, `[rows][nFeatures]` (the documented addressing). */
function heldOutFeatures(tree: TreeFeatureGenerator, rows: number, seed = 0): Float32Array {
  const out = new Float32Array(rows * tree.nFeatures);
  for (let first = 0; first < rows; first += EVAL_ROWS_PER_STEP) {
    const batchSize = Math.min(EVAL_ROWS_PER_STEP, rows - first);
    const step = EVAL_STEP_BASE + first / EVAL_ROWS_PER_STEP;
    out.set(
      sampleBatchCpu(tree, { seed: evalDataSeed(seed), step, batchSize }),
      first * tree.nFeatures,
    );
  }
  return out;
}

function close(actual: number, expected: number, atol: number, label: string): void {
  assertClose([actual], [expected], { atol, rtol: 0, label });
}

Deno.test("an SAE set to the true features scores MCC 1, explained variance 1 and L0 = true L0", () => {
  const [m] = evaluateCpu([perfectItem(balancedTree())], { rows: ROWS });
  close(m!.mccEncoder, 1, 1e-6, "mccEncoder");
  close(m!.mccDecoder, 1, 1e-6, "mccDecoder");
  close(m!.explainedVariance, 1, 1e-5, "explainedVariance");
  close(m!.prefixExplainedVariance[1]!, 1, 1e-5, "explained variance of prefix 4");
  assert.equal(m!.l0, m!.trueL0);
  assert.deepEqual(m!.deadLatents, []);
  close(m!.shrinkage, 1, 1e-6, "shrinkage");
  assert.equal(m!.rows, ROWS);
  assert.deepEqual(m!.prefixEnds, [1, 4]);
});

Deno.test("true L0 matches the tree's expected number of active features", () => {
  const [m] = evaluateCpu([perfectItem(balancedTree())], { rows: ROWS });
  // Parent 0.25; each of three children 0.15 given the parent: 0.25·(1 + 3·0.15) = 0.3625.
  // Per-row count has standard deviation ≈ 0.7, so the mean of 20k rows is within ±0.02 (4σ).
  close(m!.trueL0, 0.3625, 0.02, "trueL0");
});

Deno.test("prefix explained variance equals the prefix's share of the feature variance", () => {
  // Orthonormal features: x̂_1 = f_0·e_0, so Σ‖x − x̂_1‖² = Σ_rows Σ_{i≥1} f_i² and
  // Σ‖x − x̄‖² = Σ_i Σ_rows (f_i − f̄_i)².
  const tree = unbalancedTree();
  const [m] = evaluateCpu([perfectItem(tree)], { rows: ROWS });
  const f = heldOutFeatures(tree, ROWS);
  const F = tree.nFeatures;
  const mean = new Float64Array(F);
  for (let r = 0; r < ROWS; r++) for (let i = 0; i < F; i++) mean[i]! += f[r * F + i]! / ROWS;
  let sse = 0, sst = 0;
  for (let r = 0; r < ROWS; r++) {
    for (let i = 0; i < F; i++) {
      const v = f[r * F + i]!;
      if (i >= 1) sse += v * v;
      sst += (v - mean[i]!) ** 2;
    }
  }
  close(m!.prefixExplainedVariance[0]!, 1 - sse / sst, 1e-9, "explained variance of prefix 1");
  assert.ok(m!.prefixExplainedVariance[0]! < 0.9, "prefix 1 must miss the children");
});

Deno.test("a latent that never fires is counted dead", () => {
  const item = perfectItem(balancedTree());
  item.sae.bEnc[2] = -100;
  const [m] = evaluateCpu([item], { rows: ROWS });
  assert.deepEqual(m!.deadLatents, [2]);
  assert.equal(m!.deadCount, 1);
  assert.ok(m!.l0 < m!.trueL0, `l0 ${m!.l0} must drop below trueL0 ${m!.trueL0}`);
});

Deno.test("permuting the latents leaves MCC and explained variance unchanged", () => {
  const tree = balancedTree();
  const item = perfectItem(tree, { matryoshkaSteps: [4] });
  // Noisy directions, so the MCC is below 1 and the matching is not trivial.
  initSaeToMatchModel(item.sae, { ...item.model, nFeatures: item.tree.nFeatures }, {
    noiseLevel: 0.05,
    seed: 3,
  });
  const [a, b] = evaluateCpu([item, permuted(item, [2, 0, 3, 1])], { rows: ROWS });
  assert.ok(a!.mccDecoder < 0.99 && a!.mccDecoder > 0.5, `mccDecoder ${a!.mccDecoder}`);
  close(b!.mccEncoder, a!.mccEncoder, 1e-12, "mccEncoder");
  close(b!.mccDecoder, a!.mccDecoder, 1e-12, "mccDecoder");
  close(b!.explainedVariance, a!.explainedVariance, 1e-9, "explainedVariance");
});

Deno.test("a decoder scaled by 0.5 has shrinkage 0.5", () => {
  const item = perfectItem(balancedTree());
  for (let k = 0; k < item.sae.wDec.length; k++) item.sae.wDec[k]! *= 0.5;
  const [m] = evaluateCpu([item], { rows: ROWS });
  close(m!.shrinkage, 0.5, 1e-6, "shrinkage");
});

Deno.test("held-out rows depend only on the evaluation seed", () => {
  const item = perfectItem(balancedTree());
  const [a] = evaluateCpu([item], { rows: 5000, seed: 7 });
  const [b] = evaluateCpu([item], { rows: 5000, seed: 7 });
  const [c] = evaluateCpu([item], { rows: 5000, seed: 8 });
  assert.deepEqual(a, b);
  assert.notEqual(a!.trueL0, c!.trueL0);
  assert.notEqual(evalDataSeed(7), 7);
  assert.ok(EVAL_STEP_BASE >= 2 ** 31, "held-out steps start above any training step");
});

Deno.test("invalid items and options are refused, naming the field", () => {
  const good = perfectItem(balancedTree());
  const wide = perfectItem(balancedTree(), { dSae: 5, matryoshkaSteps: [1, 5] });
  assert.throws(() => evaluateCpu([good, wide]), /items\[1\]\.sae.*dSae 4.*got dIn 50 and dSae 5/);
  const short = { ...good, model: { embedding: new Float32Array(10) } };
  assert.throws(() => evaluateCpu([short]), /items\[0\]\.model\.embedding.*200.*got 10/);
  assert.throws(() => evaluateCpu([good], { rows: 0 }), /Invalid rows.*got 0/);
  assert.throws(() => evaluateCpu([]), /Invalid items/);
});

/** Three different worlds and SAEs: trees, prefixes, b_dec use and initialisations all differ. */
function threeModels(): EvaluateItem[] {
  const mixed = new TreeFeatureGenerator({
    activeProb: 1,
    isReadOut: false,
    children: [
      {
        activeProb: 0.6,
        mutuallyExclusiveChildren: true,
        children: [{ activeProb: 0.2 }, { activeProb: 0.5, magnitudeMean: 3 }, {
          activeProb: 0.3,
          isReadOut: false,
        }],
      },
      {
        activeProb: 0.4,
        children: [{ activeProb: 0.5, magnitudeMean: 2, magnitudeStd: 0.5 }],
      },
      { activeProb: 0.3, magnitudeMean: 0.5, magnitudeStd: 1 },
    ],
  });
  const worlds: Array<[TreeFeatureGenerator, Partial<SaeConfig>]> = [
    [balancedTree(), { matryoshkaSteps: [1, 4] }],
    [unbalancedTree(), { matryoshkaSteps: [4], applyBDecToInput: false }],
    [mixed, { matryoshkaSteps: [2, 3] }],
  ];
  const rng = new Rng(11);
  return worlds.map(([tree, config], m) => {
    const model = new ToyModel({ nFeatures: tree.nFeatures, hiddenDim: D_IN, seed: m, steps: 200 });
    const sae = new MatryoshkaSAE({ ...NOTEBOOK_SAE_CONFIG, ...config });
    if (m === 1) initSaeRandom(sae, 5);
    else {
      initSaeToMatchModel(sae, model, {
        noiseLevel: 0.1,
        seed: m,
      });
    }
    for (let j = 0; j < sae.bEnc.length; j++) sae.bEnc[j] = 0.2 * (rng.uniform() - 0.5);
    for (let d = 0; d < sae.bDec.length; d++) sae.bDec[d] = 0.1 * (rng.uniform() - 0.5);
    return { sae, model: { embedding: model.embedding }, tree };
  });
}

/**
 * GPU (float32 rows and chunk sums, float64 merge) against host (float64). Tolerances: explained
 * variance 2e-6 + 2e-6·|EV|, shrinkage 2e-6 relative (observed differences ≈ 1e-7); true L0, dead
 * latents, MCC and latent-0 readings exact; L0 within 5 rows.
 */
function assertMetricsClose(gpu: SaeMetrics, cpu: SaeMetrics, label: string): void {
  assert.equal(gpu.rows, cpu.rows);
  assert.equal(gpu.dataSeed, cpu.dataSeed);
  assert.deepEqual(gpu.prefixEnds, cpu.prefixEnds);
  // Weight-only metrics are the same host code: identical.
  assert.equal(gpu.mccEncoder, cpu.mccEncoder);
  assert.equal(gpu.mccDecoder, cpu.mccDecoder);
  assert.deepEqual(gpu.latent0, cpu.latent0);
  const ev = { atol: 2e-6, rtol: 2e-6 };
  assertClose([gpu.explainedVariance], [cpu.explainedVariance], { ...ev, label: `${label} EV` });
  assertClose(gpu.prefixExplainedVariance, cpu.prefixExplainedVariance, {
    ...ev,
    label: `${label} prefix EV`,
  });
  // Same samples bit for bit (or to a few ulps with magnitude noise, never at 0): same counts.
  assert.equal(gpu.trueL0, cpu.trueL0, `${label} trueL0`);
  // A latent's pre-activation within float32 rounding of 0 may fire on one side only: allow 5 rows.
  assertClose([gpu.l0], [cpu.l0], { atol: 5 / cpu.rows, rtol: 0, label: `${label} l0` });
  assert.deepEqual(gpu.deadLatents, cpu.deadLatents, `${label} dead latents`);
  assertClose([gpu.shrinkage], [cpu.shrinkage], {
    atol: 0,
    rtol: 1e-5,
    label: `${label} shrinkage`,
  });
  assertScorecardClose(gpu.scorecard, cpu.scorecard, label);
}

/**
 * Scorecards: the weights' part (matching, cosines) is the same host code, identical; the firing
 * counts may differ by the few rows whose pre-activation is within float32 rounding of 0, so the
 * count ratios (absorption gap, precision, recall, F1) agree within 2e-3.
 */
function assertScorecardClose(gpu: Scorecard, cpu: Scorecard, label: string): void {
  const weightsOnly = (card: Scorecard) =>
    card.edges.map(({ parent, child, depth, latent, prefix, encoderCos, decoderCos }) => ({
      parent,
      child,
      depth,
      latent,
      prefix,
      encoderCos,
      decoderCos,
    }));
  assert.deepEqual(weightsOnly(gpu), weightsOnly(cpu), `${label} edges`);
  assert.equal(gpu.uniqueness, cpu.uniqueness, `${label} uniqueness`);
  const near = { atol: 2e-3, rtol: 0 };
  assertClose(gpu.edges.map((e) => e.absorptionGap), cpu.edges.map((e) => e.absorptionGap), {
    ...near,
    label: `${label} absorption gaps`,
  });
  for (const key of ["precision", "recall", "f1"] as const) {
    assertClose(gpu.latents.map((l) => l[key]), cpu.latents.map((l) => l[key]), {
      ...near,
      label: `${label} ${key}`,
    });
  }
}

gpuTest(
  "GPU evaluation of three different models in one call equals the float64 host computation",
  async (gpu) => {
    const items = threeModels();
    // 6,000-row chunks: four chunks, the last one partial, not aligned to the 4,096-row steps.
    const gpuMetrics = await evaluate(items, { rows: ROWS, seed: 3, batchRows: 6000 }, gpu);
    const cpuMetrics = evaluateCpu(items, { rows: ROWS, seed: 3 });
    assert.equal(gpuMetrics.length, 3);
    gpuMetrics.forEach((g, m) => assertMetricsClose(g, cpuMetrics[m]!, `model ${m}`));
    // The three models really differ (guards against reading one model's sums for all).
    assert.notEqual(gpuMetrics[0]!.trueL0, gpuMetrics[1]!.trueL0);
    assert.deepEqual(gpuMetrics.map((m) => m.prefixEnds.length), [2, 1, 2]);
  },
);

gpuTest("GPU evaluation reproduces the known answers of constructed SAEs", async (gpu) => {
  const tree = balancedTree();
  const perfect = perfectItem(tree);
  const dead = perfectItem(tree);
  dead.sae.bEnc[2] = -100;
  const scaled = perfectItem(tree);
  for (let k = 0; k < scaled.sae.wDec.length; k++) scaled.sae.wDec[k]! *= 0.5;
  const [p, d, s] = await evaluate([perfect, dead, scaled], { rows: ROWS }, gpu);
  close(p!.mccEncoder, 1, 1e-6, "mccEncoder");
  close(p!.mccDecoder, 1, 1e-6, "mccDecoder");
  close(p!.explainedVariance, 1, 1e-5, "explainedVariance");
  assert.equal(p!.l0, p!.trueL0);
  assert.deepEqual(p!.deadLatents, []);
  assert.deepEqual(d!.deadLatents, [2]);
  close(s!.shrinkage, 0.5, 1e-5, "shrinkage");
  // A single item in gives a single result out.
  const single = await evaluate(perfect, { rows: 5000 }, gpu);
  assert.ok(!Array.isArray(single));
  close(single.explainedVariance, 1, 1e-5, "single-item explainedVariance");
});

gpuTest(
  "GPU evaluation of merged activity patterns equals the host computation, in one chunk or split",
  async (gpu) => {
    // Two trees without magnitude noise: their rows are merged into a few weighted patterns.
    const items = threeModels().slice(0, 2);
    const many = Array.from({ length: 12 }, (_, m) => items[m % 2]!);
    const cpuMetrics = evaluateCpu(items, { rows: ROWS, seed: 5 });
    // One chunk (summed on the host) and 4-pattern chunks (summed by reduce_pass).
    for (const batchRows of [undefined, 4]) {
      const gpuMetrics = await evaluate(many, { rows: ROWS, seed: 5, batchRows }, gpu);
      gpuMetrics.forEach((g, m) =>
        assertMetricsClose(g, cpuMetrics[m % 2]!, `model ${m}, batchRows ${batchRows}`)
      );
    }
  },
);

gpuTest(
  "GPU evaluation of a tree with more than 32 features (two mask words) equals the host computation",
  async (gpu) => {
    // 36 features, no magnitude noise: merged patterns whose bits span two 32-bit words.
    const tree = new TreeFeatureGenerator({
      activeProb: 1,
      isReadOut: false,
      children: Array.from({ length: 36 }, (_, f) => ({ activeProb: 0.02 + 0.002 * f })),
    });
    const model = new ToyModel({ nFeatures: 36, hiddenDim: D_IN, seed: 3, steps: 50 });
    const sae = new MatryoshkaSAE({ ...NOTEBOOK_SAE_CONFIG, dSae: 8, matryoshkaSteps: [2, 8] });
    initSaeRandom(sae, 9);
    const item = { sae, model: { embedding: model.embedding }, tree };
    const [g] = await evaluate([item], { rows: ROWS, seed: 2 }, gpu);
    const [c] = evaluateCpu([item], { rows: ROWS, seed: 2 });
    assertMetricsClose(g!, c!, "36 features");
    assert.ok(c!.trueL0 > 1, "rows with several features");
  },
);

gpuTest(
  "TopK and BatchTopK SAEs are evaluated as TopK and JumpReLU(θ), on the GPU as on the host",
  async (gpu) => {
    const tree = balancedTree();
    const model = new ToyModel({ nFeatures: 4, hiddenDim: D_IN, seed: 4, steps: 50 });
    const make = (config: Partial<SaeConfig>, threshold = 0) => {
      const sae = new MatryoshkaSAE({ ...NOTEBOOK_SAE_CONFIG, ...config });
      initSaeRandom(sae, 11);
      for (let j = 0; j < 4; j++) sae.bEnc[j] = 0.2; // most latents fire under ReLU
      sae.topkState = { threshold, stepsSinceFired: new Uint32Array(4) };
      return { sae, model: { embedding: model.embedding }, tree };
    };
    const standard = make({});
    const topk1 = make({ architecture: "topk", k: 1 });
    const topk2 = make({ architecture: "topk", k: 2 });
    const jump = make({ architecture: "batchtopk", k: 1 }, 0.25);
    const items = [standard, topk1, topk2, jump];
    const gpuMetrics = await evaluate(items, { rows: ROWS, seed: 4 }, gpu);
    const cpuMetrics = evaluateCpu(items, { rows: ROWS, seed: 4 });
    gpuMetrics.forEach((g, m) => assertMetricsClose(g, cpuMetrics[m]!, `model ${m}`));
    const [s, t1, t2, j] = cpuMetrics;
    assert.ok(s!.l0 > 2, `ReLU fires most latents (L0 ${s!.l0})`);
    assert.ok(t1!.l0 <= 1 + 1e-12, `TopK k = 1 keeps at most one per row (L0 ${t1!.l0})`);
    assert.ok(t2!.l0 <= 2 + 1e-12 && t2!.l0 > t1!.l0, `TopK k = 2 (L0 ${t2!.l0})`);
    assert.ok(j!.l0 < s!.l0, `θ = 0.25 drops the small activations (L0 ${j!.l0})`);
  },
);
