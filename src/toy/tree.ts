/**
 * The tree feature generator's structure: a tree of features, each active with its own
 * probability given its parent, optionally with mutually exclusive children, read out or not, with
 * a magnitude distribution. Read-out nodes are numbered in depth-first pre-order; `nFeatures`
 * counts them. Sampling lives in `cpu_sampler.ts` (host) and `shaders/lib/tree_sample.wgsl` (GPU);
 * the published JSON format in `tree_json.ts`.
 */

/**
 * A tree as written by hand: only `activeProb` is required; the rest take the published defaults.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { TreeFeatureGenerator, type TreeSpec } from "./tree.ts";
 * const spec: TreeSpec = {
 *   activeProb: 0.5,
 *   mutuallyExclusiveChildren: true,
 *   children: [{ activeProb: 0.3, id: "cat" }, { activeProb: 0.7, id: "dog", magnitudeStd: 0.1 }],
 * };
 * const tree = new TreeFeatureGenerator(spec);
 * assert.equal(tree.nFeatures, 3); // every node is read out by default
 * assert.equal(tree.features[2]!.id, "dog");
 * ```
 */
export interface TreeSpec {
  /** Probability that the node is active given its parent is active, in [0, 1]. */
  activeProb: number;
  /**
   * Probability that the node is active while its parent is not, in [0, 1] (default 0: a child
   * never fires without its parent). Not for the root or children of a mutually exclusive parent.
   */
  activeProbWithoutParent?: number;
  /** Child nodes, in order (default none). */
  children?: readonly TreeSpec[];
  /** Exactly one child is active whenever this node is (needs ≥ 2 children; default false). */
  mutuallyExclusiveChildren?: boolean;
  /** Whether the node is a feature of the samples (default true). */
  isReadOut?: boolean;
  /** Magnitude of an active read-out node (default 1). */
  magnitudeMean?: number;
  /** Standard deviation of the magnitude, ≥ 0; with std > 0 the value is |N(mean, std)| (default 0). */
  magnitudeStd?: number;
  /** Optional name of the feature. */
  id?: string;
}

/**
 * A node of a built tree: every option resolved, plus its place in the tree.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { TreeNode } from "./tree.ts";
 * import { notebookTree } from "./notebook_trees.ts";
 * const tree = notebookTree();
 * const child: TreeNode = tree.features[1]!; // the parent's first child
 * assert.equal(child.index, 1);
 * assert.equal(child.nodeIndex, 2); // after the root (not read out) and the parent
 * assert.equal(child.magnitudeMean, 1); // the default, resolved
 * assert.deepEqual(tree.ancestry(child).map((n) => n.nodeIndex), [2, 1, 0]);
 * ```
 */
export interface TreeNode {
  /** Probability that the node is active given its parent is active, in [0, 1]. */
  readonly activeProb: number;
  /** Probability that the node is active while its parent is not (0: never without it). */
  readonly activeProbWithoutParent: number;
  /** Child nodes, in order. */
  readonly children: readonly TreeNode[];
  /** Exactly one child is active whenever this node is. */
  readonly mutuallyExclusiveChildren: boolean;
  /** Whether the node is a feature of the samples. */
  readonly isReadOut: boolean;
  /** Magnitude of the node when active (mean of its distribution). */
  readonly magnitudeMean: number;
  /** Standard deviation of the magnitude (0: always `magnitudeMean`). */
  readonly magnitudeStd: number;
  /** Optional name of the feature. */
  readonly id?: string;
  /** Feature index (depth-first pre-order over read-out nodes), or null when not read out. */
  readonly index: number | null;
  /** Position of the node in depth-first pre-order over all nodes (root = 0). */
  readonly nodeIndex: number;
  /** `nodeIndex` of the parent, or null for the root. */
  readonly parent: number | null;
}

/**
 * Thrown for a tree that breaks a rule; `path` is a JSON pointer into the spec.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { InvalidTreeError, TreeFeatureGenerator } from "./tree.ts";
 * assert.throws(
 *   () => new TreeFeatureGenerator({ activeProb: 1, children: [{ activeProb: 1.5 }] }),
 *   (error) => error instanceof InvalidTreeError && error.path === "/children/0/activeProb",
 * );
 * ```
 */
export class InvalidTreeError extends Error {
  /** Error name shown in stack traces and messages. */
  override name = "InvalidTreeError";
  /** JSON pointer of the offending field, e.g. `/children/1/activeProb`. */
  readonly path: string;
  /** What the field may hold. */
  readonly allowed: string;

  /**
   * Builds the error and its message from the place, the problem and what is allowed.
   *
   * @param path JSON pointer of the offending field (`""` for the root).
   * @param problem what is wrong, with the value given.
   * @param allowed what the field may hold.
   */
  constructor(path: string, problem: string, allowed: string) {
    super(`Invalid tree at ${path || "/"}: ${problem}; allowed: ${allowed}`);
    this.path = path;
    this.allowed = allowed;
  }
}

const SPEC_FIELDS = new Set([
  "activeProb",
  "activeProbWithoutParent",
  "children",
  "mutuallyExclusiveChildren",
  "isReadOut",
  "magnitudeMean",
  "magnitudeStd",
  "id",
]);

function show(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}

/**
 * Deepest node (levels below the root) of a tree where some node fires without its parent (the
 * GPU sampler keeps one bit per level of a path).
 */
export const MAX_DEPTH_WITHOUT_PARENT = 31;

function checkSpec(
  spec: TreeSpec,
  path: string,
  place: { depth: number; exclusiveChild: boolean } = { depth: 0, exclusiveChild: false },
): void {
  // (The depth limit of MAX_DEPTH_WITHOUT_PARENT is checked on the built tree.)
  if (typeof spec !== "object" || spec === null || Array.isArray(spec)) {
    throw new InvalidTreeError(path, `got ${show(spec)}`, "an object with at least activeProb");
  }
  for (const key of Object.keys(spec)) {
    if (!SPEC_FIELDS.has(key) && (spec as unknown as Record<string, unknown>)[key] !== undefined) {
      // TreeNode objects carry index, nodeIndex and parent: allowed, ignored.
      if (key === "index" || key === "nodeIndex" || key === "parent") continue;
      throw new InvalidTreeError(`${path}/${key}`, "unknown field", [...SPEC_FIELDS].join(", "));
    }
  }
  const p = spec.activeProb;
  if (typeof p !== "number" || !(p >= 0 && p <= 1)) {
    throw new InvalidTreeError(`${path}/activeProb`, `got ${show(p)}`, "a number from 0 to 1");
  }
  const q = spec.activeProbWithoutParent;
  if (q !== undefined) {
    const where = `${path}/activeProbWithoutParent`;
    if (typeof q !== "number" || !(q >= 0 && q <= 1)) {
      throw new InvalidTreeError(where, `got ${show(q)}`, "a number from 0 to 1");
    }
    if (q > 0 && place.depth === 0) {
      throw new InvalidTreeError(where, `got ${q} on the root`, "0 on the root (it has no parent)");
    }
    if (q > 0 && place.exclusiveChild) {
      throw new InvalidTreeError(
        where,
        `got ${q} under a parent with mutually exclusive children`,
        "0 for a child of a mutually exclusive parent",
      );
    }
  }
  const mean = spec.magnitudeMean;
  if (mean !== undefined && (typeof mean !== "number" || !Number.isFinite(mean))) {
    throw new InvalidTreeError(`${path}/magnitudeMean`, `got ${show(mean)}`, "a finite number");
  }
  const std = spec.magnitudeStd;
  if (std !== undefined && (typeof std !== "number" || !(std >= 0 && std < Infinity))) {
    throw new InvalidTreeError(`${path}/magnitudeStd`, `got ${show(std)}`, "a finite number ≥ 0");
  }
  for (const flag of ["mutuallyExclusiveChildren", "isReadOut"] as const) {
    const value = spec[flag];
    if (value !== undefined && typeof value !== "boolean") {
      throw new InvalidTreeError(`${path}/${flag}`, `got ${show(value)}`, "true or false");
    }
  }
  if (spec.id !== undefined && typeof spec.id !== "string") {
    throw new InvalidTreeError(`${path}/id`, `got ${show(spec.id)}`, "a string");
  }
  const children = spec.children ?? [];
  if (!Array.isArray(children)) {
    throw new InvalidTreeError(`${path}/children`, `got ${show(children)}`, "an array of trees");
  }
  if (spec.mutuallyExclusiveChildren) {
    if (children.length < 2) {
      throw new InvalidTreeError(
        `${path}/children`,
        `mutuallyExclusiveChildren is true but there are ${children.length} children`,
        "at least 2 children under a node with mutually exclusive children",
      );
    }
    if (!children.some((c) => typeof c?.activeProb === "number" && c.activeProb > 0)) {
      throw new InvalidTreeError(
        `${path}/children`,
        "mutuallyExclusiveChildren is true but every child has activeProb 0",
        "at least one child with activeProb > 0 (children are chosen with weight activeProb)",
      );
    }
  }
  const below = { depth: place.depth + 1, exclusiveChild: spec.mutuallyExclusiveChildren ?? false };
  children.forEach((child, i) => checkSpec(child, `${path}/children/${i}`, below));
}

/**
 * A hierarchical feature generator (the published `TreeFeatureGenerator`): an immutable, validated
 * tree with its read-out nodes numbered in depth-first pre-order.
 *
 * @example
 * ```ts
 * import { TreeFeatureGenerator } from "./tree.ts";
 * const tree = new TreeFeatureGenerator({
 *   activeProb: 1,
 *   isReadOut: false,
 *   children: [{ activeProb: 0.25, children: [{ activeProb: 0.15 }, { activeProb: 0.15 }] }],
 * });
 * tree.nFeatures; // 3
 * ```
 */
export class TreeFeatureGenerator {
  /** The root node. */
  readonly root: TreeNode;
  /** Every node in depth-first pre-order (`nodes[n].nodeIndex === n`). */
  readonly nodes: readonly TreeNode[];
  /** The read-out nodes by feature index (`features[f].index === f`). */
  readonly features: readonly TreeNode[];

  /**
   * Builds and validates a tree. A {@link TreeNode} (e.g. another tree's root) is a valid spec.
   *
   * @throws {InvalidTreeError} naming the offending field's path (e.g. `/children/1/activeProb`).
   */
  constructor(spec: TreeSpec) {
    checkSpec(spec, "");
    const nodes: TreeNode[] = [];
    const features: TreeNode[] = [];
    let deepest = { node: 0, depth: 0 };
    const build = (s: TreeSpec, parent: number | null, depth: number): TreeNode => {
      const isReadOut = s.isReadOut ?? true;
      const node = {
        activeProb: s.activeProb,
        activeProbWithoutParent: s.activeProbWithoutParent ?? 0,
        children: [] as TreeNode[],
        mutuallyExclusiveChildren: s.mutuallyExclusiveChildren ?? false,
        isReadOut,
        magnitudeMean: s.magnitudeMean ?? 1,
        magnitudeStd: s.magnitudeStd ?? 0,
        ...(s.id !== undefined ? { id: s.id } : {}),
        index: isReadOut ? features.length : null,
        nodeIndex: nodes.length,
        parent,
      };
      nodes.push(node);
      if (isReadOut) features.push(node);
      if (depth > deepest.depth) deepest = { node: node.nodeIndex, depth };
      for (const child of s.children ?? []) {
        node.children.push(build(child, node.nodeIndex, depth + 1));
      }
      Object.freeze(node.children);
      return Object.freeze(node);
    };
    this.root = build(spec, null, 0);
    this.nodes = Object.freeze(nodes);
    this.features = Object.freeze(features);
    const orphan = nodes.find((n) => n.activeProbWithoutParent > 0);
    if (orphan && deepest.depth > MAX_DEPTH_WITHOUT_PARENT) {
      throw new InvalidTreeError(
        "",
        `node ${deepest.node} lies ${deepest.depth} levels deep in a tree where node ` +
          `${orphan.nodeIndex} fires without its parent`,
        `at most ${MAX_DEPTH_WITHOUT_PARENT} levels in such a tree`,
      );
    }
  }

  /** Number of read-out nodes: the width of a sample. */
  get nFeatures(): number {
    return this.features.length;
  }

  /** The nodes from `node` up to the root (inclusive), nearest first. */
  ancestry(node: TreeNode): TreeNode[] {
    const chain = [node];
    for (let p = node.parent; p !== null; p = this.nodes[p]!.parent) chain.push(this.nodes[p]!);
    return chain;
  }

  /** An indented outline of the tree (`index`, `x` for mutually exclusive children, activeProb). */
  toString(): string {
    const width = String(Math.max(0, this.nFeatures - 1)).length;
    const lines: string[] = [];
    const visit = (node: TreeNode, depth: number) => {
      const index = node.index === null ? " ".repeat(width) : String(node.index).padStart(width);
      const me = node.mutuallyExclusiveChildren ? "x" : " ";
      const id = node.id !== undefined ? ` ${node.id}` : "";
      const q = node.activeProbWithoutParent > 0
        ? ` (${node.activeProbWithoutParent} without)`
        : "";
      lines.push(`${"  ".repeat(depth)}${index} ${me} ${node.activeProb}${q}${id}`);
      for (const child of node.children) visit(child, depth + 1);
    };
    visit(this.root, 0);
    return lines.join("\n");
  }
}
