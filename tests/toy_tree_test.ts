/**
 * The tree's structure: defaults, depth-first pre-order feature indices, validation of hand-built
 * trees, the notebook's trees, and the flattened layout read by tree_sample.wgsl.
 */
import assert from "node:assert/strict";
import { InvalidTreeError, TreeFeatureGenerator, type TreeSpec } from "../src/toy/tree.ts";
import {
  exclusiveIntervals,
  flattenTree,
  packTrees,
  TREE_FLAG_ME_CHILD,
  TREE_FLAG_ME_PARENT,
  TREE_FLAG_READ_OUT,
  TREE_NONE,
} from "../src/toy/tree_flat.ts";
import { balancedTree, notebookTree, unbalancedTree } from "../src/toy/notebook_trees.ts";

Deno.test("read-out nodes are numbered in depth-first pre-order and nFeatures counts them", () => {
  const tree = new TreeFeatureGenerator({
    activeProb: 1,
    isReadOut: false,
    id: "root",
    children: [
      { activeProb: 0.5, id: "a", children: [{ activeProb: 0.5, id: "a1" }] },
      {
        activeProb: 0.5,
        isReadOut: false,
        id: "b",
        children: [{ activeProb: 0.5, id: "b1" }, { activeProb: 0.5, id: "b2" }],
      },
      { activeProb: 0.5, id: "c" },
    ],
  });
  assert.equal(tree.nFeatures, 5);
  assert.deepEqual(tree.features.map((n) => n.id), ["a", "a1", "b1", "b2", "c"]);
  assert.deepEqual(tree.nodes.map((n) => n.index), [null, 0, 1, null, 2, 3, 4]);
  assert.deepEqual(tree.nodes.map((n) => n.parent), [null, 0, 1, 0, 3, 3, 0]);
  assert.deepEqual(tree.ancestry(tree.features[3]!).map((n) => n.id), ["b2", "b", "root"]);
});

Deno.test("options default to the published values", () => {
  const node = new TreeFeatureGenerator({ activeProb: 0.3 }).root;
  assert.equal(node.mutuallyExclusiveChildren, false);
  assert.equal(node.isReadOut, true);
  assert.equal(node.magnitudeMean, 1);
  assert.equal(node.magnitudeStd, 0);
  assert.equal(node.id, undefined);
  assert.deepEqual(node.children, []);
});

Deno.test("hand-built trees that break a rule are refused naming the field's path", () => {
  const cases: Array<[TreeSpec, string, RegExp]> = [
    [
      { activeProb: 1, children: [{ activeProb: 0.5 }, { activeProb: 1.5 }] },
      "/children/1/activeProb",
      /0 to 1/,
    ],
    [{ activeProb: -0.1 }, "/activeProb", /0 to 1/],
    [{ activeProb: NaN }, "/activeProb", /0 to 1/],
    [
      { activeProb: 1, mutuallyExclusiveChildren: true, children: [{ activeProb: 1 }] },
      "/children",
      /at least 2/,
    ],
    [
      {
        activeProb: 1,
        mutuallyExclusiveChildren: true,
        children: [{ activeProb: 0 }, { activeProb: 0 }],
      },
      "/children",
      /activeProb > 0/,
    ],
    [
      { activeProb: 1, children: [{ activeProb: 1, magnitudeStd: -1 }] },
      "/children/0/magnitudeStd",
      /≥ 0/,
    ],
    [{ activeProb: 1, magnitudeMean: Infinity }, "/magnitudeMean", /finite/],
    [{ activeProb: 1, isReadOut: "yes" } as unknown as TreeSpec, "/isReadOut", /true or false/],
    [
      { activeProb: 1, weight: 2 } as unknown as TreeSpec,
      "/weight",
      /activeProb, activeProbWithoutParent, children/,
    ],
  ];
  for (const [spec, path, allowed] of cases) {
    assert.throws(() => new TreeFeatureGenerator(spec), (error: unknown) => {
      assert.ok(error instanceof InvalidTreeError, String(error));
      assert.equal(error.path, path);
      assert.match(error.message, allowed);
      assert.ok(error.message.includes(path), error.message);
      return true;
    });
  }
});

Deno.test("the notebook trees have a parent (feature 0) over children 1..3 and a hidden 0.55 child", () => {
  for (
    const [tree, probs] of [
      [notebookTree(), [0.15, 0.15, 0.15]],
      [balancedTree(), [0.15, 0.15, 0.15]],
      [unbalancedTree(), [0.02, 0.15, 0.5]],
    ] as const
  ) {
    assert.equal(tree.nFeatures, 4);
    assert.equal(tree.root.activeProb, 1);
    assert.equal(tree.root.isReadOut, false);
    const parent = tree.root.children[0]!;
    assert.equal(tree.root.children.length, 1);
    assert.equal(parent.index, 0);
    assert.equal(parent.activeProb, 0.25);
    assert.equal(parent.mutuallyExclusiveChildren, false);
    assert.deepEqual(parent.children.map((c) => c.activeProb), [...probs, 0.55]);
    assert.deepEqual(parent.children.map((c) => c.index), [1, 2, 3, null]);
  }
  assert.deepEqual(notebookTree([0.1, 0.2]).features.map((f) => f.activeProb), [0.25, 0.1, 0.2]);
});

Deno.test("exclusive children's choice intervals are cumulative weights / total, ending at 1", () => {
  const tree = new TreeFeatureGenerator({
    activeProb: 1,
    mutuallyExclusiveChildren: true,
    children: [{ activeProb: 0.2 }, { activeProb: 0 }, { activeProb: 0.6 }, { activeProb: 0 }],
  });
  const f = Math.fround;
  assert.deepEqual(exclusiveIntervals(tree.root), [
    [0, f(0.25)],
    [f(0.25), f(0.25)],
    [f(0.25), 1],
    [1, 1],
  ]);
});

Deno.test("flattenTree writes the documented layout and packTrees offsets each tree", () => {
  const tree = new TreeFeatureGenerator({
    activeProb: 1,
    isReadOut: false,
    children: [{
      activeProb: 0.5,
      mutuallyExclusiveChildren: true,
      magnitudeMean: 2,
      magnitudeStd: 0.25,
      children: [{ activeProb: 1 }, { activeProb: 3 / 4, isReadOut: false }, { activeProb: 1 / 4 }],
    }],
  });
  const words = flattenTree(tree);
  const floats = new Float32Array(words.buffer);
  assert.deepEqual([...words.subarray(0, 5)], [5, 3, 1, 2, 4]); // n_nodes, F, feature_node[0..3)
  // Record: parent, flags, activeProb, activeProbWithoutParent, magnitudeMean, magnitudeStd, lo,
  // hi, feature.
  const record = (n: number) => 5 + 9 * n;
  assert.deepEqual([...words.subarray(record(0), record(0) + 2)], [TREE_NONE, 0]);
  assert.equal(words[record(0) + 8], TREE_NONE);
  const r1 = record(1);
  assert.deepEqual([words[r1], words[r1 + 1]], [0, TREE_FLAG_READ_OUT | TREE_FLAG_ME_PARENT]);
  assert.deepEqual([floats[r1 + 2], floats[r1 + 3], floats[r1 + 4], floats[r1 + 5]], [
    0.5,
    0,
    2,
    0.25,
  ]);
  assert.equal(words[r1 + 8], 0);
  const r3 = record(3);
  assert.deepEqual([words[r3], words[r3 + 1]], [1, TREE_FLAG_ME_CHILD]);
  assert.deepEqual([floats[r3 + 6], floats[r3 + 7]], [0.5, 0.875]); // cumulative 2/4 .. 3.5/4
  assert.equal(words[r3 + 8], TREE_NONE);
  assert.deepEqual([floats[record(4) + 6], floats[record(4) + 7], words[record(4) + 8]], [
    0.875,
    1,
    2,
  ]);

  const other = notebookTree();
  const packed = packTrees([tree, other, tree]);
  assert.deepEqual(packed.bases, [0, words.length, 0]);
  assert.deepEqual(packed.data.subarray(0, words.length), words);
  assert.deepEqual(packed.data.subarray(words.length), flattenTree(other));
});

Deno.test("firing without the parent is refused on the root, under exclusive parents, outside [0, 1]", () => {
  const refused = (spec: TreeSpec, path: string) =>
    assert.throws(
      () => new TreeFeatureGenerator(spec),
      (e: unknown) => e instanceof InvalidTreeError && e.path === path,
    );
  refused({ activeProb: 1, activeProbWithoutParent: 0.1 }, "/activeProbWithoutParent");
  refused(
    { activeProb: 1, children: [{ activeProb: 0.5, activeProbWithoutParent: 1.5 }] },
    "/children/0/activeProbWithoutParent",
  );
  refused({
    activeProb: 1,
    mutuallyExclusiveChildren: true,
    children: [{ activeProb: 0.5, activeProbWithoutParent: 0.2 }, { activeProb: 0.5 }],
  }, "/children/0/activeProbWithoutParent");
  const tree = new TreeFeatureGenerator({
    activeProb: 1,
    children: [{ activeProb: 0.2, activeProbWithoutParent: 0.1 }],
  });
  assert.deepEqual(tree.nodes.map((n) => n.activeProbWithoutParent), [0, 0.1]);
  assert.match(tree.toString(), /0\.2 \(0\.1 without\)/);
});
