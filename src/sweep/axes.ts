/**
 * The axes of a β sweep and their validation: β values (`inf` = the detached setup), seeds, trees
 * (the notebook's two, a tree built from children's firing probabilities, or a tree file) and the
 * shard of the combinations a machine runs. Every refusal is a {@link SweepAxisError} whose message
 * names the flag (`--betas`, `--child-probs`, …), what is allowed and what was given.
 *
 * A sweep tree must have at least one parent–child edge: a read-out feature with a read-out
 * ancestor (its nearest one is its parent). Any feature may be a parent and there may be many;
 * the balance question is asked of every edge (src/metrics/scorecard.ts `treeEdges`). Each sweep
 * SAE has one latent per feature, started on the features in depth order (parents first), with one
 * Matryoshka prefix per depth level: for the notebook's trees latent j = feature j and prefixes
 * `[1, n]`, as published.
 */
import { type TreeEdge, treeEdges } from "../metrics/scorecard.ts";
import { notebookTree } from "../toy/notebook_trees.ts";
import type { TreeFeatureGenerator } from "../toy/tree.ts";
import { readTreeFile } from "../toy/tree_json.ts";

/**
 * A bad sweep axis or setting; the message names the flag.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseBetas, SweepAxisError } from "./axes.ts";
 * assert.throws(() => parseBetas("0,-1"), SweepAxisError);
 * assert.throws(() => parseBetas("0,-1"), /^SweepAxisError: Invalid --betas: expected values ≥ 0/);
 * assert.equal(new SweepAxisError("Invalid --seeds").exitCode, 2);
 * ```
 */
export class SweepAxisError extends RangeError {
  /** Always `"SweepAxisError"`. */
  override name = "SweepAxisError";
  /** Exit status of a command that stops on this error. */
  readonly exitCode = 2;
}

function fail(flag: string, expected: string, got: string): never {
  throw new SweepAxisError(`Invalid --${flag}: expected ${expected}, got ${got}`);
}

/**
 * `value` when it is one of `allowed`; else a refusal naming the flag and the choices.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkChoice } from "./axes.ts";
 * assert.equal(checkChoice("objective", "mean", ["max", "mean"]), "mean");
 * assert.throws(
 *   () => checkChoice("objective", "median", ["max", "mean"]),
 *   /^SweepAxisError: Invalid --objective: expected max or mean, got "median"$/,
 * );
 * ```
 */
export function checkChoice<T extends string>(
  flag: string,
  value: string,
  allowed: readonly T[],
): T {
  if (!(allowed as readonly string[]).includes(value)) {
    fail(flag, allowed.join(" or "), `"${clip(String(value))}"`);
  }
  return value as T;
}

/** `text`, cut to `max` characters with `…` (long lists never flood a message or a line). */
export function clip(text: string, max = 60): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/**
 * The most read-out features of one sweep tree: 1,024. Each SAE has one latent per feature, and the
 * toy model's orthogonalisation grows with features² (about 2 minutes at this bound on a CPU).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAX_SWEEP_FEATURES, parseChildProbs, SweepAxisError } from "./axes.ts";
 * // The parent is one of the features, so a tree has at most MAX_SWEEP_FEATURES - 1 children.
 * const probs = (n: number) => Array(n).fill(0.1).join(",");
 * assert.equal(parseChildProbs(probs(MAX_SWEEP_FEATURES - 1)).length, 1023);
 * assert.throws(() => parseChildProbs(probs(MAX_SWEEP_FEATURES)), SweepAxisError);
 * ```
 */
export const MAX_SWEEP_FEATURES = 1024;

/**
 * The most grid SAEs of one sweep (trees × β × seeds): 100,000. Every row is held in memory and
 * recorded (about 2 kB each); larger studies run as several sweeps.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_BETAS, MAX_SWEEP_SAES, SweepAxisError } from "./axes.ts";
 * import { runSweep } from "./run_sweep.ts";
 * assert.equal(MAX_SWEEP_SAES, 100_000);
 * // 2 trees × 22 β × 5,000 seeds = 220,000 SAEs: refused before anything is written or trained.
 * assert.equal(DEFAULT_BETAS.length, 22);
 * await assert.rejects(runSweep({ out: "never-written", seeds: 5_000 }), SweepAxisError);
 * ```
 */
export const MAX_SWEEP_SAES = 100_000;

/** Probabilities for people: all of a short list, the first few and the count of a long one. */
export function showProbs(probs: readonly number[], shown = 6): string {
  if (probs.length <= shown + 2) return probs.join(", ");
  return `${probs.slice(0, shown).join(", ")}, … (${probs.length} children)`;
}

/**
 * The default β grid: 0, 0.05, …, 1 and ∞ (the detached setup).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_BETAS } from "./axes.ts";
 * assert.equal(DEFAULT_BETAS.length, 22);
 * assert.deepEqual(DEFAULT_BETAS.slice(0, 3), [0, 0.05, 0.1]);
 * assert.deepEqual(DEFAULT_BETAS.slice(-2), [1, Infinity]);
 * assert.ok(Object.isFrozen(DEFAULT_BETAS));
 * ```
 */
export const DEFAULT_BETAS: readonly number[] = Object.freeze([
  ...Array.from({ length: 21 }, (_, i) => Math.round(i * 5) / 100),
  Infinity,
]);

/** Formats β for people and files: `inf` for ∞, else the shortest round-tripping decimal. */
export function formatBeta(beta: number): string {
  return beta === Infinity ? "inf" : String(beta);
}

/**
 * Parses `--betas`: comma-separated numbers ≥ 0 and `inf` (also `∞`, `Infinity`), no repeats;
 * returned sorted ascending with ∞ last.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseBetas } from "./axes.ts";
 * assert.deepEqual(parseBetas("inf,0.25, 0"), [0, 0.25, Infinity]);
 * ```
 */
export function parseBetas(text: string): number[] {
  const parts = text.split(",").map((p) => p.trim());
  if (text.trim() === "") fail("betas", "a comma-separated list of β values", `""`);
  const betas = parts.map((part) => {
    if (/^(inf|infinity|∞)$/i.test(part)) return Infinity;
    const value = Number(part);
    if (part === "" || !Number.isFinite(value)) {
      fail(
        "betas",
        "numbers ≥ 0 or inf, separated by commas",
        `"${clip(part)}" in "${clip(text)}"`,
      );
    }
    return value;
  });
  return checkBetas(betas);
}

/** Checks a β list (non-empty, each ≥ 0 or ∞, no repeats) and returns it sorted. */
export function checkBetas(betas: readonly number[]): number[] {
  if (betas.length === 0) fail("betas", "at least one β value", "an empty list");
  for (const beta of betas) {
    if (typeof beta !== "number" || Number.isNaN(beta) || beta < 0) {
      fail("betas", "values ≥ 0 (or inf for the detached setup)", String(beta));
    }
  }
  const sorted = [...betas].sort((a, b) => a - b);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i] === sorted[i - 1]) {
      fail("betas", "each β once", `${formatBeta(sorted[i]!)} twice`);
    }
  }
  return sorted;
}

/**
 * Parses one `--child-probs` value: comma-separated firing probabilities in [0, 1] of the
 * notebook tree's read-out children (each given value builds one tree).
 *
 * @throws {SweepAxisError} for an empty list, a value that is not a number in [0, 1], or more
 *   than `MAX_SWEEP_FEATURES - 1` children.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseChildProbs } from "./axes.ts";
 * assert.deepEqual(parseChildProbs("0.02, 0.15,0.5"), [0.02, 0.15, 0.5]);
 * assert.throws(() => parseChildProbs("0.5,1.5"), /^SweepAxisError: Invalid --child-probs/);
 * ```
 */
export function parseChildProbs(text: string): number[] {
  if (text.trim() === "") {
    fail("child-probs", "comma-separated probabilities in [0, 1], e.g. 0.02,0.15,0.5", `""`);
  }
  return checkChildProbs(
    text.split(",").map((part) => {
      const value = Number(part.trim());
      if (part.trim() === "" || !Number.isFinite(value)) {
        fail(
          "child-probs",
          "numbers in [0, 1] separated by commas",
          `"${clip(part)}" in "${clip(text)}"`,
        );
      }
      return value;
    }),
  );
}

/** Checks a list of children's probabilities (non-empty, each in [0, 1], a tree that fits). */
export function checkChildProbs(probs: readonly number[]): number[] {
  if (probs.length === 0) fail("child-probs", "at least one child probability", "an empty list");
  if (probs.length > MAX_SWEEP_FEATURES - 1) {
    fail(
      "child-probs",
      `at most ${MAX_SWEEP_FEATURES - 1} children (a sweep tree reads out at most ` +
        `${MAX_SWEEP_FEATURES} features)`,
      `${probs.length} children`,
    );
  }
  for (const p of probs) {
    if (typeof p !== "number" || !(p >= 0 && p <= 1)) {
      fail("child-probs", "probabilities in [0, 1]", String(p));
    }
  }
  return [...probs];
}

/**
 * Which part of the combinations a machine runs: those with `index % count === shard.index`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatShard, type Shard } from "./axes.ts";
 * const shard: Shard = { index: 1, count: 3 }; // the second of three machines
 * assert.equal(formatShard(shard), "1/3");
 * ```
 */
export interface Shard {
  /** This shard, from 0. */
  index: number;
  /** Number of shards. */
  count: number;
}

/**
 * Parses `--shard i/n` (0 ≤ i < n).
 *
 * @throws {SweepAxisError} for text that is not `i/n` or an index outside 0 ≤ i < n.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseShard, SweepAxisError } from "./axes.ts";
 * assert.deepEqual(parseShard(" 1 / 4 "), { index: 1, count: 4 });
 * assert.throws(() => parseShard("4/4"), SweepAxisError);
 * ```
 */
export function parseShard(text: string): Shard {
  const match = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  if (!match) fail("shard", "i/n with integers 0 ≤ i < n, e.g. 0/2", `"${text}"`);
  return checkShard({ index: Number(match[1]), count: Number(match[2]) });
}

/** Checks a shard (integers, 0 ≤ index < count). */
export function checkShard(shard: Shard): Shard {
  const { index, count } = shard;
  if (!Number.isSafeInteger(count) || count < 1) {
    fail("shard", "i/n with n ≥ 1", `${index}/${count}`);
  }
  if (!Number.isSafeInteger(index) || index < 0 || index >= count) {
    fail("shard", "i/n with 0 ≤ i < n", `${index}/${count}`);
  }
  return { index, count };
}

/** `"i/n"`, or null for the whole sweep. */
export function formatShard(shard: Shard | null): string | null {
  return shard ? `${shard.index}/${shard.count}` : null;
}

/**
 * A tree of the sweep: its name (used in file names), the tree, its parent and children.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { degenerateReason, type SweepTree } from "./axes.ts";
 * import { notebookTree } from "../toy/notebook_trees.ts";
 * const tree: SweepTree = sweepTree("pair", notebookTree([0.1, 0.3]), "child-probs");
 * assert.deepEqual(tree.edges.map((e) => [e.parent, e.child]), [[0, 1], [0, 2]]);
 * assert.deepEqual([tree.children, tree.childProbs], [[1, 2], [0.1, 0.3]]);
 * assert.deepEqual([tree.latentFeatures, tree.prefixEnds], [[0, 1, 2], [1, 3]]);
 * assert.equal(degenerateReason(tree), null); // the parent and both children fire
 * ```
 */
export interface SweepTree {
  /** Unique name, letters, digits, `.`, `_` and `-` only (it names files). */
  name: string;
  /** The tree the batches are drawn from. */
  tree: TreeFeatureGenerator;
  /** Every parent–child edge of the read-out hierarchy, by child (`treeEdges`). */
  edges: TreeEdge[];
  /** Feature index of each edge's child, in edge order. */
  children: number[];
  /** Firing probability (`activeProb`) of each edge's child, in edge order. */
  childProbs: number[];
  /** The feature latent k starts on: features in depth order (stable), parents first. */
  latentFeatures: number[];
  /** Matryoshka prefix ends: one prefix per depth level, each ending after that level's features. */
  prefixEnds: number[];
  /** Where the tree came from (decides the β*-against-child-probability figure). */
  source: TreeSource;
}

/**
 * Where a sweep tree came from: the notebook's defaults, `--child-probs` or `--tree`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sweepTree, type TreeSource } from "./axes.ts";
 * import { notebookTree } from "../toy/notebook_trees.ts";
 * const source: TreeSource = "child-probs";
 * assert.equal(sweepTree("one-child", notebookTree([0.3]), source).source, "child-probs");
 * // The source also names the flag of a refusal.
 * assert.throws(() => sweepTree("no spaces", notebookTree(), source), /Invalid --child-probs/);
 * ```
 */
export type TreeSource = "notebook" | "child-probs" | "file";

const NAME_PATTERN = /^[A-Za-z0-9._-]+$/;
const MAX_NAME_LENGTH = 100;

/**
 * Why the balance question has no answer on this tree, or null: a parent or a child of an edge
 * never fires (a probability of 0 on its path from the root, or a magnitude that is always 0), so
 * the parent's latent has nothing to hedge or absorb there and a verdict would be vacuous.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { childProbsTree, degenerateReason, notebookSweepTrees } from "./axes.ts";
 * assert.equal(degenerateReason(notebookSweepTrees()[0]!), null);
 * assert.equal(degenerateReason(childProbsTree([0, 0.5])), "child 1 (p=0) never fires");
 * ```
 */
export function degenerateReason(tree: SweepTree): string | null {
  const nodes = tree.tree.features;
  const never = (feature: number) => {
    const node = nodes[feature]!;
    const silent = node.magnitudeMean === 0 && node.magnitudeStd === 0;
    return silent || tree.tree.ancestry(node).some((n) => n.activeProb === 0);
  };
  const parents = [...new Set(tree.edges.map((e) => e.parent))].filter(never);
  if (parents.length > 0) {
    return singleParent(tree)
      ? `the parent (feature ${parents[0]}) never fires`
      : `parent feature ${parents.join(", ")} never fire${parents.length === 1 ? "s" : ""}`;
  }
  const silent = tree.children.flatMap((f, k) => never(f) ? [k] : []);
  if (silent.length === 0) return null;
  const which = silent.slice(0, 3).map((k) => edgeName(tree, k));
  const more = silent.length > 3 ? ` and ${silent.length - 3} more` : "";
  return `${which.join(", ")}${more} never fire${silent.length === 1 ? "s" : ""}`;
}

/**
 * A sweep tree from a built tree.
 *
 * @param source where the tree came from (names the flag in error messages).
 * @throws {SweepAxisError} for a name that cannot name files or a tree without a parent–child edge.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SweepAxisError, sweepTree } from "./axes.ts";
 * import { notebookTree } from "../toy/notebook_trees.ts";
 * const wide = sweepTree("wide", notebookTree([0.1, 0.2, 0.3, 0.4]));
 * assert.deepEqual([wide.edges[0]!.parent, wide.children, wide.source], [0, [1, 2, 3, 4], "file"]);
 * assert.deepEqual(wide.childProbs, [0.1, 0.2, 0.3, 0.4]);
 * assert.throws(() => sweepTree("a/b", notebookTree()), SweepAxisError); // not a file name
 * ```
 */
export function sweepTree(
  name: string,
  tree: TreeFeatureGenerator,
  source: TreeSource = "file",
): SweepTree {
  const flag = source === "child-probs" ? "child-probs" : "tree";
  if (!NAME_PATTERN.test(name) || name.length > MAX_NAME_LENGTH) {
    fail(
      flag,
      `a tree name of letters, digits, '.', '_' and '-', at most ${MAX_NAME_LENGTH} characters`,
      `"${clip(name)}"`,
    );
  }
  if (tree.nFeatures > MAX_SWEEP_FEATURES) {
    fail(
      flag,
      `a tree of at most ${MAX_SWEEP_FEATURES} read-out features`,
      `${name}: ${tree.nFeatures} features`,
    );
  }
  const edges = treeEdges(tree);
  if (edges.length === 0) {
    fail(
      flag,
      "a tree with a parent–child edge (a read-out feature below another read-out feature)",
      `${name}: none of its ${tree.nFeatures} read-out feature(s) has a read-out ancestor`,
    );
  }
  const level = new Array<number>(tree.nFeatures).fill(0);
  for (const e of edges) level[e.child] = e.depth + 1;
  const latentFeatures = level.map((_, f) => f).sort((a, b) => level[a]! - level[b]! || a - b);
  const levels = Math.max(...level) + 1;
  const prefixEnds = Array.from(
    { length: levels },
    (_, d) => level.filter((l) => l <= d).length,
  );
  return {
    name,
    tree,
    edges,
    children: edges.map((e) => e.child),
    childProbs: edges.map((e) => tree.features[e.child]!.activeProb),
    latentFeatures,
    prefixEnds,
    source,
  };
}

/** True when every edge of the tree has the same parent (the notebook's trees). */
export function singleParent(tree: SweepTree): boolean {
  return tree.edges.every((e) => e.parent === tree.edges[0]!.parent);
}

/**
 * An edge for people: `child k (p=…)` (k from 1, edge order) on a tree with one parent, as the
 * notebook reads latent 0; `edge 3 → 7 (p=…)` (feature indices from 0) on a tree with several.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { edgeName, sweepTree } from "./axes.ts";
 * import { notebookTree } from "../toy/notebook_trees.ts";
 * import { TreeFeatureGenerator } from "../toy/tree.ts";
 * assert.equal(edgeName(sweepTree("pair", notebookTree([0.1, 0.3])), 1), "child 2 (p=0.3)");
 * const two = new TreeFeatureGenerator({
 *   activeProb: 1,
 *   isReadOut: false,
 *   children: [0.2, 0.3].map((p) => ({ activeProb: p, children: [{ activeProb: 0.4 }] })),
 * });
 * assert.equal(edgeName(sweepTree("two", two), 1), "edge 2 → 3 (p=0.4)");
 * ```
 */
export function edgeName(tree: SweepTree, k: number): string {
  const edge = tree.edges[k];
  const p = tree.childProbs[k];
  if (edge === undefined) return `edge ${k + 1}`;
  if (singleParent(tree)) return `child ${k + 1} (p=${p})`;
  const parentId = tree.tree.features[edge.parent]?.id;
  const childId = tree.tree.features[edge.child]?.id;
  const ids = parentId !== undefined && childId !== undefined ? `${parentId} → ${childId}, ` : "";
  return `edge ${edge.parent} → ${edge.child} (${ids}p=${p})`;
}

/**
 * The notebook's tree with the given children's probabilities, named `probs-0.02-0.15-0.5` (or,
 * when that is longer than a file name should be, `probs-N-children-<hash>`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { childProbsTree } from "./axes.ts";
 * const tree = childProbsTree([0.02, 0.15, 0.5]);
 * assert.equal(tree.name, "probs-0.02-0.15-0.5");
 * assert.deepEqual([tree.children, tree.source], [[1, 2, 3], "child-probs"]);
 * assert.match(childProbsTree(Array(40).fill(0.125)).name, /^probs-40-children-[0-9a-f]{8}$/);
 * ```
 */
export function childProbsTree(probs: readonly number[]): SweepTree {
  const checked = checkChildProbs(probs);
  let name = `probs-${checked.join("-")}`;
  if (name.length > MAX_NAME_LENGTH) {
    // FNV-1a of the list: the same probabilities, the same name.
    let hash = 0x811c9dc5;
    for (const ch of checked.join(",")) {
      hash = Math.imul(hash ^ ch.charCodeAt(0), 0x01000193) >>> 0;
    }
    name = `probs-${checked.length}-children-${hash.toString(16).padStart(8, "0")}`;
  }
  return sweepTree(name, notebookTree(checked), "child-probs");
}

/**
 * The notebook's two trees: `balanced` (0.15, 0.15, 0.15) and `unbalanced` (0.02, 0.15, 0.5).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { notebookSweepTrees } from "./axes.ts";
 * const [balanced, unbalanced] = notebookSweepTrees();
 * assert.deepEqual([balanced!.name, unbalanced!.name], ["balanced", "unbalanced"]);
 * assert.deepEqual(unbalanced!.childProbs, [0.02, 0.15, 0.5]);
 * assert.equal(unbalanced!.source, "notebook");
 * ```
 */
export function notebookSweepTrees(): SweepTree[] {
  return [
    sweepTree("balanced", notebookTree([0.15, 0.15, 0.15]), "notebook"),
    sweepTree("unbalanced", notebookTree([0.02, 0.15, 0.5]), "notebook"),
  ];
}

/**
 * A tree file (published JSON format, validated), named after the file without `.json`.
 *
 * @throws {SweepAxisError} for a file that cannot be read or is not a valid tree, or a tree
 *   without a parent.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SweepAxisError, treeFileTree } from "./axes.ts";
 * import { notebookTree } from "../toy/notebook_trees.ts";
 * import { treeToJson } from "../toy/tree_json.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/my tree.json`, JSON.stringify(treeToJson(notebookTree([0.3]))));
 * const tree = await treeFileTree(`${dir}/my tree.json`);
 * assert.deepEqual([tree.name, tree.childProbs, tree.source], ["my_tree", [0.3], "file"]);
 * await assert.rejects(treeFileTree(`${dir}/missing.json`), SweepAxisError);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function treeFileTree(path: string): Promise<SweepTree> {
  const base = path.replace(/\\/g, "/").split("/").pop()!.replace(/\.json$/i, "");
  const name = base.replace(/[^A-Za-z0-9._-]/g, "_") || "tree";
  let tree: TreeFeatureGenerator;
  try {
    tree = await readTreeFile(path);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new SweepAxisError(`Invalid --tree ${path}: ${reason}`);
  }
  return sweepTree(name, tree);
}

/** Checks the trees (at least one, unique names) and returns them. */
export function checkTrees(trees: readonly SweepTree[]): SweepTree[] {
  if (trees.length === 0) fail("tree", "at least one tree", "none");
  const seen = new Set<string>();
  for (const t of trees) {
    if (seen.has(t.name)) {
      fail("tree", "trees with distinct names", `"${t.name}" twice (rename one tree file)`);
    }
    seen.add(t.name);
  }
  return [...trees];
}

/**
 * Gives repeated names a `-2`, `-3`, … suffix (tree files with the same base name).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sweepTree, uniqueTreeNames } from "./axes.ts";
 * import { notebookTree } from "../toy/notebook_trees.ts";
 * const trees = [0.1, 0.2, 0.3].map((p) => sweepTree("tree", notebookTree([p])));
 * assert.deepEqual(uniqueTreeNames(trees).map((t) => t.name), ["tree", "tree-2", "tree-3"]);
 * ```
 */
export function uniqueTreeNames(trees: readonly SweepTree[]): SweepTree[] {
  const count = new Map<string, number>();
  return trees.map((t) => {
    const n = (count.get(t.name) ?? 0) + 1;
    count.set(t.name, n);
    return n === 1 ? t : { ...t, name: `${t.name}-${n}` };
  });
}
