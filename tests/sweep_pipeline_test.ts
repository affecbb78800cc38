/**
 * The sweep end to end on a tiny schedule (300 steps): the files it writes, the balance finder's
 * answer to the notebook's question, and per-model results identical to training each SAE alone
 * with the notebook's own configurations (β = 0: `matryoshkaSteps: [4]`; β = ∞: `useDeltaLoss`).
 */
import assert from "node:assert/strict";
import { assertClose, gpuTest } from "./_gpu.ts";
import { runSweep, type SweepResult } from "../src/sweep/run_sweep.ts";
import { ToyModel } from "../src/toy/toy_model.ts";
import { balancedTree, unbalancedTree } from "../src/toy/notebook_trees.ts";
import { MatryoshkaSAE } from "../src/sae/sae.ts";
import { NOTEBOOK_SAE_CONFIG, type SaeConfig } from "../src/sae/config.ts";
import { initSaeToMatchModel } from "../src/sae/init.ts";
import { trainToySaes } from "../src/sae/train.ts";
import { decoderCosSims, encoderCosSims } from "../src/metrics/cosine.ts";
import { parseSweepArgs } from "../experiments/sweep.ts";
import { treeFileTree } from "../src/sweep/axes.ts";
import { betaSaeConfig, SWEEP_HIDDEN_DIM } from "../src/sae/notebook_saes.ts";
import { edgeScores } from "../src/metrics/evaluate.ts";

const STEPS = 300;
const lines: string[] = [];
let sweep: Promise<{ dir: string; result: SweepResult }> | undefined;

/** One sweep shared by the tests: 2 trees × β {0, 0.25, ∞} × 2 seeds, no refinement. */
function tinySweep(): Promise<{ dir: string; result: SweepResult }> {
  sweep ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "sweep_pipeline_" });
    globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
    const result = await runSweep({
      out: `${dir}/out`,
      betas: [0, 0.25, Infinity],
      seeds: 2,
      steps: STEPS,
      refine: 0,
      chunk: 5,
      quiet: true,
      log: (line) => lines.push(line),
    });
    return { dir, result };
  })();
  return sweep;
}

/** Parses the sweep's csv into records keyed by header. */
function parseCsv(text: string): Record<string, string>[] {
  const [header, ...body] = text.trimEnd().split("\n");
  const names = header!.split(",");
  return body.map((line) => Object.fromEntries(line.split(",").map((v, i) => [names[i], v])));
}

gpuTest("a sweep writes one csv row per SAE with latent 0's cosines and losses", async () => {
  const { dir } = await tinySweep();
  const rows = parseCsv(await Deno.readTextFile(`${dir}/out/sweep.csv`));
  assert.equal(rows.length, 2 * 3 * 2);
  const json = JSON.parse(await Deno.readTextFile(`${dir}/out/sweep.json`));
  assert.equal(json.rows.length, rows.length);
  for (const [i, row] of rows.entries()) {
    const j = json.rows[i];
    assert.equal(row.tree, j.tree);
    assert.equal(row.beta, String(j.beta));
    assert.equal(Number(row.seed), j.seed);
    assert.equal(row.child_probs, j.childProbs.join(";"));
    for (let f = 0; f < 4; f++) {
      assertClose([Number(row[`enc_cos_f${f}`])], [j.encoderCos[f]], { rtol: 1e-7, atol: 1e-9 });
      assertClose([Number(row[`dec_cos_f${f}`])], [j.decoderCos[f]], { rtol: 1e-7, atol: 1e-9 });
    }
    assert.ok(Number(row.loss_total) > 0);
    assertClose(
      [Number(row.loss_total)],
      [j.losses.recon.concat(j.losses.l1).reduce((a: number, b: number) => a + b, 0)],
      { rtol: 1e-4, label: `row ${i}: total = Σ prefix losses` },
    );
    assert.equal(Number(row.steps_done), STEPS);
    assert.equal(row.diverged_at, "");
  }
  // β = 0 has no inner-prefix term.
  const standard = rows.find((r) => r.beta === "0")!;
  assert.equal(Number(standard.loss_recon_p1), 0);
  assert.equal(Number(standard.loss_l1_p1), 0);
  assert.deepEqual(
    [...new Set(rows.map((r) => `${r.tree} ${r.beta}`))],
    [
      "balanced 0",
      "balanced 0.25",
      "balanced inf",
      "unbalanced 0",
      "unbalanced 0.25",
      "unbalanced inf",
    ],
  );
});

gpuTest(
  "sweep.json gives β*, the residual per child (mean over seeds) and the verdict per tree",
  async () => {
    const { dir, result } = await tinySweep();
    const json = JSON.parse(await Deno.readTextFile(`${dir}/out/sweep.json`));
    assert.deepEqual(json.trees.map((t: { name: string }) => t.name), ["balanced", "unbalanced"]);
    for (const tree of json.trees) {
      assert.equal(typeof tree.balanceable, "boolean");
      // Independent recomputation from the rows: mean over seeds per β, minimise max |child|.
      const byBeta = new Map<string, number[][]>();
      for (const row of json.rows.filter((r: { tree: string }) => r.tree === tree.name)) {
        const key = String(row.beta);
        byBeta.set(key, [...(byBeta.get(key) ?? []), row.encoderCos.slice(1, 4)]);
      }
      let best: { beta: string; mean: number[]; objective: number } | undefined;
      for (const [beta, lists] of byBeta) {
        const mean = [0, 1, 2].map((k) => lists.reduce((s, l) => s + l[k]!, 0) / lists.length);
        const objective = Math.max(...mean.map(Math.abs));
        if (!best || objective < best.objective) best = { beta, mean, objective };
      }
      assert.equal(String(tree.betaStar), best!.beta);
      assertClose(tree.residuals, best!.mean, { atol: 1e-12, label: `${tree.name} residuals` });
      assert.equal(tree.balanceable, best!.objective < 0.02);
      assert.equal(tree.decoder.length, 3);
    }
    // Even this short schedule shows the notebook's picture: β = 0 absorbs (negative children),
    // β = ∞ hedges (positive), the balanced tree balances at 0.25 and the unbalanced one does not.
    const [balanced, unbalanced] = result.balances;
    assert.ok(typeof balanced!.balance !== "string" && typeof unbalanced!.balance !== "string");
    const curve = balanced!.balance.curve;
    assert.ok(curve[0]!.encoder.mean.every((v) => v < -0.05), "β = 0 absorbs");
    assert.ok(curve.at(-1)!.encoder.mean.every((v) => v > 0.05), "β = ∞ hedges");
    assert.equal(balanced!.balance.betaStar, 0.25);
    assert.equal(balanced!.balance.balanceable, true);
    assert.equal(unbalanced!.balance.balanceable, false);
    assert.ok(
      lines.some((l) => l.startsWith("balanced: balanceable — at β* = 0.25")),
      lines.join("\n"),
    );
    assert.ok(
      lines.some((l) =>
        /^unbalanced: not balanceable — at β\* = \S+ child \d \(p=[\d.]+\) still has/.test(l)
      ),
      lines.join("\n"),
    );
  },
);

gpuTest("the figures show each child's component against β with ∞ and β* marked", async () => {
  const { dir } = await tinySweep();
  const names = [];
  for await (const entry of Deno.readDir(`${dir}/out/figures`)) names.push(entry.name);
  assert.deepEqual(names.sort(), [
    "balanced_decoder.svg",
    "balanced_encoder.svg",
    "unbalanced_decoder.svg",
    "unbalanced_encoder.svg",
  ]);
  const svg = await Deno.readTextFile(`${dir}/out/figures/unbalanced_encoder.svg`);
  assert.ok(svg.includes(">∞<"), "a tick labelled ∞");
  assert.ok(svg.includes("β* ="), "β* marked");
  assert.equal(svg.match(/class="line"/g)?.length, 3, "one line per child");
  assert.equal(svg.match(/class="band"/g)?.length, 3, "one min–max band per child");
  assert.ok(svg.includes("child 3 (p=0.5)"));
});

/** The notebook's own configuration for β (not the sweep's `[β, 1]` form). */
function notebookConfig(beta: number): Partial<SaeConfig> {
  if (beta === 0) return { matryoshkaSteps: [4] };
  if (beta === Infinity) return { useDeltaLoss: true };
  return { matryoshkaInnerLossMultipliers: [beta, 1.0] };
}

gpuTest("a sweep of M SAEs gives each SAE the same result as training it alone", async () => {
  const { result } = await tinySweep();
  const trees = { balanced: balancedTree(), unbalanced: unbalancedTree() };
  for (const row of result.rows) {
    const model = new ToyModel({ nFeatures: 4, hiddenDim: 50, seed: row.seed });
    const sae = new MatryoshkaSAE({ ...NOTEBOOK_SAE_CONFIG, ...notebookConfig(row.beta) });
    initSaeToMatchModel(sae, model, {
      noiseLevel: 0,
      featureOrdering: [0, 1, 2, 3],
    });
    const [alone] = await trainToySaes(
      [{ sae, model, tree: trees[row.tree as keyof typeof trees], seed: row.seed }],
      { steps: STEPS, batchSize: 128, quiet: true },
    );
    const label = `${row.tree} β=${row.beta} seed ${row.seed}`;
    assertClose(
      row.encoderCos,
      encoderCosSims(sae.params, sae.layout, model.embedding, 4)[0]!,
      { atol: 1e-6, rtol: 0, label: `${label} encoder` },
    );
    assertClose(
      row.decoderCos,
      decoderCosSims(sae.params, sae.layout, model.embedding, 4)[0]!,
      { atol: 1e-6, rtol: 0, label: `${label} decoder` },
    );
    assertClose([row.losses.total], [alone!.finalLosses.total], {
      rtol: 1e-5,
      label: `${label} loss`,
    });
  }
});

gpuTest(
  "a --child-probs sweep with a --tree file draws β* against the child probability",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "sweep_probs_" });
    try {
      const command = await parseSweepArgs([
        "--tree",
        "tests/fixtures/trees/notebook_balanced.json",
        "--child-probs",
        "0.02,0.15,0.5",
        "--child-probs",
        "0.1,0.15,0.5",
        "--betas",
        "0,0.25,inf",
        "--seeds",
        "1",
        "--steps",
        "100",
        "--refine",
        "0",
        "--quiet",
        "--out",
        `${dir}/out`,
      ]);
      assert.ok(command !== "help" && command.kind === "run");
      const result = await runSweep({ ...command.options, log: () => {} });
      assert.equal(result.rows.length, 3 * 3);
      const json = JSON.parse(await Deno.readTextFile(`${dir}/out/sweep.json`));
      assert.deepEqual(
        json.trees.map((t: { name: string; childProbs: number[] }) => [t.name, t.childProbs]),
        [
          ["notebook_balanced", [0.15, 0.15, 0.15]],
          ["probs-0.02-0.15-0.5", [0.02, 0.15, 0.5]],
          ["probs-0.1-0.15-0.5", [0.1, 0.15, 0.5]],
        ],
      );
      const figure = await Deno.readTextFile(`${dir}/out/figures/beta_star_vs_child_prob.svg`);
      assert.ok(figure.includes("probability of child 1"));
      await Deno.stat(`${dir}/out/figures/residual_vs_child_prob.svg`);
      await Deno.stat(`${dir}/out/figures/notebook_balanced_encoder.svg`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

gpuTest(
  "a sweep on a multi-parent world with power β reads every edge as training it alone, worst first",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "sweep_multi_parent_" });
    try {
      const world = await treeFileTree("experiments/trees/multi_parent.json");
      // Three depth levels: 3 prefixes; the power form weights them β², β, 1.
      assert.deepEqual(world.prefixEnds, [3, 8, 9]);
      const printed: string[] = [];
      const evalRows = 20_000;
      const result = await runSweep({
        out: `${dir}/out`,
        trees: [world],
        betas: [0.5, Infinity],
        seeds: 1,
        steps: 200,
        refine: 0,
        betaForm: "power",
        l1Coefficient: 0.05,
        evalRows,
        quiet: true,
        log: (line) => printed.push(line),
      });
      const json = JSON.parse(await Deno.readTextFile(`${dir}/out/sweep.json`));
      assert.deepEqual([json.settings.betaForm, json.settings.l1Coefficient], ["power", 0.05]);
      const n = world.tree.nFeatures;
      for (const row of result.rows) {
        const model = new ToyModel({ nFeatures: n, hiddenDim: SWEEP_HIDDEN_DIM, seed: row.seed });
        const config = betaSaeConfig(row.beta, n, {
          prefixEnds: world.prefixEnds,
          form: "power",
          l1: 0.05,
        });
        if (row.beta === 0.5) {
          assert.deepEqual(config.matryoshkaInnerLossMultipliers, [0.25, 0.5, 1]);
        }
        const sae = new MatryoshkaSAE(config);
        initSaeToMatchModel(sae, model, { noiseLevel: 0, featureOrdering: world.latentFeatures });
        const [alone] = await trainToySaes([{ sae, model, tree: world.tree, seed: row.seed }], {
          steps: 200,
          batchSize: 128,
          quiet: true,
        });
        const card = await edgeScores({ sae, model, tree: world.tree }, { rows: evalRows });
        const label = `β=${row.beta}`;
        assert.equal(card.edges.length, 6);
        assertClose(row.edgeEncoderCos, card.edges.map((e) => e.encoderCos), {
          atol: 1e-5,
          label: `${label} edge encoder`,
        });
        assertClose(row.edgeDecoderCos, card.edges.map((e) => e.decoderCos), {
          atol: 1e-5,
          label: `${label} edge decoder`,
        });
        assert.deepEqual(row.absorptionGap, card.edges.map((e) => e.absorptionGap), label);
        assertClose([row.losses.total], [alone!.finalLosses.total], { rtol: 1e-5, label });
      }
      // The finder's answer: the worst edges at β*, largest |residual| first, and summaries.
      const [tree] = json.trees;
      const residual = (k: number) => Math.abs(tree.residuals[k]);
      const order = tree.residuals.map((_: number, k: number) => k).sort((a: number, b: number) =>
        residual(b) - residual(a) || a - b
      );
      assert.deepEqual(
        tree.worstEdges.map((e: { parent: number; child: number }) => [e.parent, e.child]),
        order.slice(0, 5).map((k: number) => [tree.edges[k].parent, tree.edges[k].child]),
      );
      assert.deepEqual(tree.summaries.depth.map((s: { group: number }) => s.group), [0, 1]);
      assert.deepEqual(tree.summaries.depth.map((s: { edges: number }) => s.edges), [5, 1]);
      // The one depth-1 edge is 5 → 6 (car → sports car), edge index 4.
      assert.deepEqual([tree.edges[4].parent, tree.edges[4].child], [5, 6]);
      assert.equal(tree.summaries.depth[1].encoder.maxAbs, residual(4));
      const verdict = printed.join("\n");
      assert.match(verdict, /worst edges at β\* \(parent latents' encoder\): edge \d → \d \(/);
      assert.match(verdict, /edge 5 → 6 \(car → sports car, p=0\.4\)/);
      assert.match(verdict, /largest \|encoder component\| per depth at β\*: depth 0 \(5 edges\)/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
