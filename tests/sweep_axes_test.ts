/**
 * The sweep's axes and command line: values parse as documented, bad axes are refused with a
 * message naming the flag, sharding partitions the combinations and chunking keeps their order.
 */
import assert from "node:assert/strict";
import {
  childProbsTree,
  DEFAULT_BETAS,
  degenerateReason,
  edgeName,
  notebookSweepTrees,
  parseBetas,
  parseChildProbs,
  parseShard,
  SweepAxisError,
  sweepTree,
} from "../src/sweep/axes.ts";
import {
  chunked,
  combinationKey,
  gridCombinations,
  shardCombinations,
} from "../src/sweep/combinations.ts";
import { runSweep } from "../src/sweep/run_sweep.ts";
import { UsageError } from "../src/cli/run_main.ts";
import { TreeFeatureGenerator } from "../src/toy/tree.ts";
import { parseSweepArgs } from "../experiments/sweep.ts";

/** Asserts `fn` is refused with an error whose message starts by naming `flag`. */
async function assertRefused(fn: () => unknown, flag: string, ...parts: string[]): Promise<void> {
  await assert.rejects(
    async () => await fn(),
    (error: unknown) => {
      assert.ok(
        error instanceof SweepAxisError || error instanceof UsageError,
        `expected a SweepAxisError or UsageError, got ${error}`,
      );
      assert.match(error.message.split("\n")[0]!, new RegExp(`--${flag}\\b`), error.message);
      for (const part of parts) {
        assert.ok(error.message.includes(part), `"${error.message}" should mention "${part}"`);
      }
      return true;
    },
  );
}

Deno.test("--betas parses numbers and inf, sorted, inf meaning the detached setup", () => {
  assert.deepEqual(parseBetas("0.5, inf,0,0.25"), [0, 0.25, 0.5, Infinity]);
  assert.deepEqual(parseBetas("∞,Infinity".split(",")[0]!), [Infinity]);
  assert.equal(DEFAULT_BETAS.length, 22);
  assert.equal(DEFAULT_BETAS[1], 0.05);
  assert.equal(DEFAULT_BETAS[20], 1);
  assert.equal(DEFAULT_BETAS[21], Infinity);
});

Deno.test("bad --betas are refused naming the flag: empty, negative, not a number, repeated", async () => {
  await assertRefused(() => parseBetas(""), "betas");
  await assertRefused(() => parseBetas("0,-0.1"), "betas", "-0.1");
  await assertRefused(() => parseBetas("0,abc"), "betas", "abc");
  await assertRefused(() => parseBetas("0,,1"), "betas");
  await assertRefused(() => parseBetas("0.25,0.25"), "betas", "twice");
  await assertRefused(() => parseSweepArgs(["--betas", "0,-1"]), "betas");
});

Deno.test("--child-probs builds the notebook tree with those children; bad ones are refused", async () => {
  const t = childProbsTree(parseChildProbs("0.02,0.15,0.5"));
  assert.equal(t.name, "probs-0.02-0.15-0.5");
  assert.deepEqual(t.childProbs, [0.02, 0.15, 0.5]);
  assert.deepEqual(t.children, [1, 2, 3]);
  assert.equal(t.tree.nFeatures, 4);
  assert.equal(t.tree.features[0]!.activeProb, 0.25);
  await assertRefused(() => parseChildProbs(""), "child-probs");
  await assertRefused(() => parseChildProbs("0.1,1.5"), "child-probs", "1.5");
  await assertRefused(() => parseChildProbs("-0.1"), "child-probs", "-0.1");
  await assertRefused(() => parseSweepArgs(["--child-probs", "0.1,x"]), "child-probs", "x");
});

Deno.test("the default trees are the notebook's, named balanced and unbalanced", () => {
  const [balanced, unbalanced] = notebookSweepTrees();
  assert.equal(balanced!.name, "balanced");
  assert.deepEqual(balanced!.childProbs, [0.15, 0.15, 0.15]);
  assert.equal(unbalanced!.name, "unbalanced");
  assert.deepEqual(unbalanced!.childProbs, [0.02, 0.15, 0.5]);
});

Deno.test("a tree without a parent–child edge is refused naming --tree", async () => {
  const flat = new TreeFeatureGenerator({
    activeProb: 1,
    isReadOut: false,
    children: [{ activeProb: 0.3 }, { activeProb: 0.4 }],
  });
  await assertRefused(() => sweepTree("flat", flat), "tree", "has a read-out ancestor");
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/bad.json`, `{"active_prob": 2}`);
    await assertRefused(() => parseSweepArgs(["--tree", `${dir}/bad.json`]), "tree", "bad.json");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a tree's edges join each read-out feature to its nearest read-out ancestor", () => {
  const tree = new TreeFeatureGenerator({
    activeProb: 1,
    isReadOut: false,
    children: [
      {
        activeProb: 0.5,
        children: [
          { activeProb: 0.2, children: [{ activeProb: 0.3 }] },
          { activeProb: 0.9, isReadOut: false, children: [{ activeProb: 0.4 }] },
        ],
      },
      { activeProb: 0.1 },
    ],
  });
  // Features: 0 (p .5), 1 (.2), 2 (.3, child of 1), 3 (.4, under a hidden node), 4 (.1).
  const t = sweepTree("deep", tree);
  assert.deepEqual(t.edges.map((e) => [e.parent, e.child, e.depth]), [[0, 1, 0], [1, 2, 1], [
    0,
    3,
    0,
  ]]);
  assert.deepEqual(t.children, [1, 2, 3]);
  assert.deepEqual(t.childProbs, [0.2, 0.3, 0.4]);
  // Latents start on the features level by level (0 and 4, then 1 and 3, then 2), one prefix each.
  assert.deepEqual(t.latentFeatures, [0, 4, 1, 3, 2]);
  assert.deepEqual(t.prefixEnds, [2, 4, 5]);
});

Deno.test("feature 0 need not be the parent: a leaf first and two parents after it", () => {
  const tree = new TreeFeatureGenerator({
    activeProb: 1,
    isReadOut: false,
    children: [
      { activeProb: 0.3 },
      { activeProb: 0.2, children: [{ activeProb: 0.5 }, { activeProb: 0.4 }] },
      { activeProb: 0.25, children: [{ activeProb: 0.1 }] },
    ],
  });
  const t = sweepTree("two-parents", tree);
  assert.deepEqual(t.edges.map((e) => [e.parent, e.child]), [[1, 2], [1, 3], [4, 5]]);
  assert.deepEqual([t.latentFeatures, t.prefixEnds], [[0, 1, 4, 2, 3, 5], [3, 6]]);
  assert.equal(degenerateReason(t), null);
  assert.equal(edgeName(t, 2), "edge 4 → 5 (p=0.1)");
});

Deno.test("bad --shard, --seeds, --steps, --chunk, --eval-rows and --tolerance are refused naming the flag", async () => {
  for (const bad of ["2/2", "1", "a/b", "-1/2", "0/0", "1/2/3"]) {
    await assertRefused(() => parseShard(bad), "shard");
  }
  assert.deepEqual(parseShard("1/3"), { index: 1, count: 3 });
  await assertRefused(() => parseSweepArgs(["--shard", "3/2"]), "shard");
  await assertRefused(() => parseSweepArgs(["--seeds", "0"]), "seeds");
  await assertRefused(() => parseSweepArgs(["--steps", "-5"]), "steps");
  await assertRefused(() => parseSweepArgs(["--chunk", "0"]), "chunk");
  await assertRefused(() => parseSweepArgs(["--tolerance", "0"]), "tolerance");
  await assertRefused(() => parseSweepArgs(["--refine", "-1"]), "refine");
  await assertRefused(() => parseSweepArgs(["--eval-rows", "0"]), "eval-rows");
  await assertRefused(() => parseSweepArgs(["--objective", "median"]), "objective", "max or mean");
  await assertRefused(
    () => parseSweepArgs(["--beta-form", "cubic"]),
    "beta-form",
    "uniform or power",
  );
});

Deno.test("the library refuses bad axes before any training, naming the flag", async () => {
  const out = "/nonexistent/never-written";
  await assertRefused(() => runSweep({ out, betas: [] }), "betas", "empty");
  await assertRefused(() => runSweep({ out, betas: [0, -0.5] }), "betas", "-0.5");
  await assertRefused(() => runSweep({ out, betas: [NaN] }), "betas");
  await assertRefused(() => runSweep({ out, seeds: 0 }), "seeds");
  await assertRefused(() => runSweep({ out, trees: [] }), "tree");
  await assertRefused(() => runSweep({ out, shard: { index: 2, count: 2 } }), "shard");
  await assertRefused(() => runSweep({ out, chunk: 1.5 }), "chunk");
  await assertRefused(() => runSweep({ out, refine: -1 }), "refine");
  await assertRefused(() => runSweep({ out, tolerance: -1 }), "tolerance");
  await assertRefused(() => runSweep({ out, evalRows: 2 ** 40 }), "eval-rows");
  await assertRefused(
    () => runSweep({ out, trees: [...notebookSweepTrees(), notebookSweepTrees()[0]!] }),
    "tree",
    "twice",
  );
});

Deno.test("the command line maps to the library options; --merge takes folders and no training flag", async () => {
  const run = await parseSweepArgs([
    "--betas",
    "0,0.25,inf",
    "--seeds",
    "2",
    "--child-probs",
    "0.15,0.15,0.15",
    "--child-probs",
    "0.02,0.15,0.5",
    "--steps",
    "300",
    "--shard",
    "1/2",
    "--refine",
    "0",
    "--eval-rows",
    "20000",
    "--out",
    "x",
  ]);
  assert.ok(run !== "help" && run.kind === "run");
  assert.deepEqual(run.options.betas, [0, 0.25, Infinity]);
  assert.equal(run.options.seeds, 2);
  assert.deepEqual(run.options.trees!.map((t) => t.name), [
    "probs-0.15-0.15-0.15",
    "probs-0.02-0.15-0.5",
  ]);
  assert.equal(run.options.steps, 300);
  assert.deepEqual(run.options.shard, { index: 1, count: 2 });
  assert.equal(run.options.refine, 0);
  assert.equal(run.options.evalRows, 20_000);
  const defaults = await parseSweepArgs([]);
  assert.ok(defaults !== "help" && defaults.kind === "run");
  assert.equal(defaults.options.steps, 24_415);
  assert.equal(defaults.options.out, "out/sweep");
  assert.equal(defaults.options.evalRows, 100_000);

  const merge = await parseSweepArgs(["--merge", "a", "b", "--merge", "c", "--out", "m"]);
  assert.ok(merge !== "help" && merge.kind === "merge");
  assert.deepEqual(merge.options.inputs, ["a", "b", "c"]);
  await assertRefused(() => parseSweepArgs(["--merge", "a", "--steps", "5"]), "steps", "--merge");
  await assert.rejects(() => parseSweepArgs(["stray"]), /Unexpected argument "stray"/);
});

Deno.test("shards partition the grid: every combination in exactly one shard", () => {
  const grid = gridCombinations(2, [Infinity, 0, 0.5], 3);
  assert.equal(grid.length, 18);
  assert.deepEqual(grid.slice(0, 4).map((c) => [c.beta, c.seed]), [[0, 0], [0, 1], [0, 2], [
    0.5,
    0,
  ]]);
  assert.equal(grid[8]!.beta, Infinity);
  for (const count of [1, 2, 3, 5, 7, 20]) {
    const seen = new Map<string, number>();
    for (let index = 0; index < count; index++) {
      for (const c of shardCombinations(grid, { index, count })) {
        const key = combinationKey(`t${c.tree}`, c.beta, c.seed);
        seen.set(key, (seen.get(key) ?? 0) + 1);
      }
    }
    assert.equal(seen.size, grid.length, `count ${count}`);
    assert.ok([...seen.values()].every((n) => n === 1), `count ${count}`);
  }
});

Deno.test("chunks keep the order and hold at most the chunk size", () => {
  const list = Array.from({ length: 11 }, (_, i) => i);
  assert.deepEqual(chunked(list, 4), [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10]]);
  assert.deepEqual(chunked(list, 11), [list]);
  assert.throws(() => chunked(list, 0), /--chunk/);
});

Deno.test("--arch and --k reach the sweep's options; bad ones are refused naming the flag", async () => {
  const run = await parseSweepArgs(["--arch", "batchtopk", "--k", "2"]);
  assert.ok(run !== "help" && run.kind === "run");
  assert.deepEqual([run.options.architecture, run.options.k], ["batchtopk", 2]);
  const standard = await parseSweepArgs([]);
  assert.ok(standard !== "help" && standard.kind === "run");
  assert.equal(standard.options.architecture, undefined); // the notebook's L1 SAEs
  await assertRefused(
    () => parseSweepArgs(["--arch", "gated"]),
    "arch",
    "standard, topk or batchtopk",
  );
  await assertRefused(() => parseSweepArgs(["--k", "2"]), "k", "--arch standard");
  await assertRefused(() => parseSweepArgs(["--arch", "topk", "--k", "0"]), "k");
  // k above the narrowest tree's SAE (the notebook's trees: 4 latents), before any training.
  const out = "/nonexistent/never-written";
  await assertRefused(() => runSweep({ out, architecture: "topk", k: 5 }), "k", "at most 4");
  await assertRefused(() => runSweep({ out, architecture: "topk", k: 1.5 }), "k", "an integer");
  await assertRefused(
    () => runSweep({ out, architecture: "jumprelu" as never }),
    "arch",
  );
});
