/**
 * Tree files in the published format: valid files load unchanged, the notebook's tree file equals
 * notebookTree(), and every kind of invalid file is refused naming the file and the offending path.
 */
import assert from "node:assert/strict";
import {
  parseTreeJson,
  readTreeFile,
  treeFromJson,
  TreeJsonError,
  treeToJson,
  validateTreeJson,
} from "../src/toy/tree_json.ts";
import { notebookTree } from "../src/toy/notebook_trees.ts";

const dir = "tests/fixtures/trees";

Deno.test("the notebook tree file loads unchanged and equals notebookTree()", async () => {
  const file = `${dir}/notebook_balanced.json`;
  const tree = await readTreeFile(file);
  const raw = JSON.parse(await Deno.readTextFile(file));
  assert.deepEqual(treeToJson(tree), raw);
  assert.deepEqual(tree.root, notebookTree().root);
  assert.deepEqual(treeToJson(notebookTree()), raw);
});

Deno.test("every published field is read: ids, exclusivity, read-out flags, magnitudes", async () => {
  const tree = await readTreeFile(`${dir}/exclusive_magnitudes.json`);
  assert.equal(tree.nFeatures, 6);
  assert.deepEqual(tree.features.map((n) => n.id), ["a", "a1", "a2", "b", "b1", "b2"]);
  const a = tree.root.children[0]!;
  assert.equal(a.mutuallyExclusiveChildren, true);
  assert.equal(a.children[2]!.isReadOut, false);
  assert.equal(a.children[1]!.magnitudeMean, 3);
  const b1 = tree.root.children[1]!.children[0]!;
  assert.deepEqual([b1.activeProb, b1.magnitudeMean, b1.magnitudeStd], [0.4, 2, 0.5]);
  assert.deepEqual(
    treeToJson(tree),
    JSON.parse(await Deno.readTextFile(`${dir}/exclusive_magnitudes.json`)),
  );
});

/** Each invalid fixture: the path the message must name, and a phrase of what is allowed. */
const INVALID: Array<[string, string, RegExp]> = [
  ["invalid_prob.json", "/children/1/active_prob", /a number from 0 to 1/],
  ["invalid_exclusive_one_child.json", "/children/0/children", /at least 2 items/],
  ["invalid_exclusive_zero_weights.json", "/children", /at least one of them with active_prob > 0/],
  ["invalid_negative_std.json", "/children/0/magnitude_std", /a number ≥ 0/],
  [
    "invalid_unknown_field.json",
    "/children/0/probability",
    /only the fields active_prob, .*magnitude_std/,
  ],
  ["invalid_wrong_type.json", "/children/1/is_read_out", /true or false/],
  ["invalid_missing_prob.json", "/children/0/active_prob", /a number from 0 to 1/],
  ["invalid_empty.json", "/", /JSON holding a tree/],
  // Not .json: deno fmt would rewrite it into valid JSON (it formats .json files as JSONC).
  ["invalid_not_json.txt", "/", /not valid JSON \(.*position 2.*\); allowed: JSON holding a tree/],
];

for (const [name, path, allowed] of INVALID) {
  Deno.test(`${name} is refused naming the file, ${path} and what is allowed`, async () => {
    const file = `${dir}/${name}`;
    await assert.rejects(readTreeFile(file), (error: unknown) => {
      assert.ok(error instanceof TreeJsonError, String(error));
      assert.equal(error.file, file);
      assert.equal(error.issues[0]!.path, path, error.message);
      assert.ok(error.message.includes(file), error.message);
      assert.ok(error.message.includes(`${path}: `), error.message);
      assert.match(error.message, allowed);
      return true;
    });
  });
}

Deno.test("all issues of a tree are reported, each with its path", () => {
  const issues = validateTreeJson({
    active_prob: "high",
    magnitude_std: -1,
    children: [{ active_prob: 2 }, {}],
  });
  assert.deepEqual(
    issues.map((i) => i.path).sort(),
    ["/active_prob", "/children/0/active_prob", "/children/1/active_prob", "/magnitude_std"],
  );
  assert.ok(issues.find((i) => i.path === "/active_prob")!.problem.includes('"high"'));
});

Deno.test("a value that is not an object is refused at the root", () => {
  for (const value of [[], 3, null, "tree"]) {
    assert.throws(
      () => treeFromJson(value, "inline"),
      /Invalid tree in inline at \/: must be object/,
    );
  }
  assert.throws(() => parseTreeJson("  \n", "blank.json"), /blank\.json at \/: the file is empty/);
});

Deno.test("a missing file is refused naming it", async () => {
  await assert.rejects(
    readTreeFile(`${dir}/no_such_tree.json`),
    /no_such_tree\.json at \/: cannot read/,
  );
});

Deno.test("active_prob_without_parent is read, written back, and refused outside [0, 1]", () => {
  const json = {
    active_prob: 1,
    is_read_out: false,
    children: [{
      active_prob: 0.25,
      children: [{ active_prob: 0.2, active_prob_without_parent: 0.1 }],
    }],
  };
  const tree = treeFromJson(json, "correlated.json");
  assert.deepEqual(tree.features.map((n) => n.activeProbWithoutParent), [0, 0.1]);
  assert.deepEqual(treeToJson(tree), json);
  assert.throws(
    () =>
      treeFromJson({
        active_prob: 1,
        children: [{ active_prob: 0.5, active_prob_without_parent: 2 }],
      }, "bad.json"),
    /\/children\/0\/active_prob_without_parent/,
  );
});
