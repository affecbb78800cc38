/**
 * Trees in the published JSON format (the `hedging_paper` tree files: snake_case fields
 * `active_prob` (required), `children`, `mutually_exclusive_children`, `is_read_out`, `id`,
 * `magnitude_mean`, `magnitude_std`; and our extension `active_prob_without_parent`; nothing
 * else), validated against `tree.schema.json` with Ajv
 * before use. Every refusal names the file, the JSON pointer of the offending field inside the tree
 * and what the schema allows there.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from "../deps.ts";
import schema from "./tree.schema.json" with { type: "json" };
import { TreeFeatureGenerator, type TreeNode, type TreeSpec } from "./tree.ts";

/**
 * One node of a tree file, as the published format writes it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { treeFromJson, type TreeJson, treeToJson } from "./tree_json.ts";
 * const json: TreeJson = {
 *   active_prob: 1,
 *   is_read_out: false,
 *   children: [{ active_prob: 0.25, id: "parent", children: [{ active_prob: 0.15 }] }],
 * };
 * assert.equal(treeFromJson(json).nFeatures, 2);
 * assert.deepEqual(treeToJson(treeFromJson(json)), json); // a minimal tree round-trips
 * ```
 */
export interface TreeJson {
  /** Probability that the node is active given its parent is active, in [0, 1]. */
  active_prob: number;
  /** Probability that the node is active while its parent is not (default 0; an extension). */
  active_prob_without_parent?: number;
  /** Child nodes, in order (default none). */
  children?: TreeJson[];
  /** Exactly one child is active whenever this node is (default false). */
  mutually_exclusive_children?: boolean;
  /** Whether the node is a feature of the samples (default true). */
  is_read_out?: boolean;
  /** Optional name of the feature. */
  id?: string;
  /** Magnitude of an active read-out node (default 1). */
  magnitude_mean?: number;
  /** Standard deviation of the magnitude (default 0). */
  magnitude_std?: number;
}

/**
 * One rule a tree file breaks.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { TreeJsonError, type TreeJsonIssue } from "./tree_json.ts";
 * const issue: TreeJsonIssue = { path: "/id", problem: "got 3", allowed: "a string" };
 * const error = new TreeJsonError("tree.json", [issue]);
 * assert.equal(error.message, "Invalid tree in tree.json at /id: got 3; allowed: a string");
 * ```
 */
export interface TreeJsonIssue {
  /** JSON pointer inside the tree, e.g. `/children/1/active_prob` (`/` for the whole document). */
  path: string;
  /** What is wrong, with the value given. */
  problem: string;
  /** What the schema allows there. */
  allowed: string;
}

/**
 * Thrown when a tree file cannot be read, parsed or validated; the message lists every issue.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { treeFromJson, TreeJsonError } from "./tree_json.ts";
 * assert.throws(
 *   () => treeFromJson({ active_prob: 2 }, "mine.json"),
 *   (error) =>
 *     error instanceof TreeJsonError && error.file === "mine.json" &&
 *     error.issues[0]?.path === "/active_prob",
 * );
 * ```
 */
export class TreeJsonError extends Error {
  /** Error name shown in stack traces and messages. */
  override name = "TreeJsonError";
  /** The file (or other source name) that was refused. */
  readonly file: string;
  /** Every issue found, most specific first. */
  readonly issues: readonly TreeJsonIssue[];

  /**
   * Builds the error and its message, one line per issue.
   *
   * @param file the file (or other source name) that was refused.
   * @param issues every issue found, most specific first.
   */
  constructor(file: string, issues: readonly TreeJsonIssue[]) {
    const lines = issues.map((i) => `${i.path}: ${i.problem}; allowed: ${i.allowed}`);
    super(
      issues.length === 1
        ? `Invalid tree in ${file} at ${lines[0]}`
        : `Invalid tree in ${file}:\n  ${lines.join("\n  ")}`,
    );
    this.file = file;
    this.issues = issues;
  }
}

/**
 * The JSON Schema of tree files (draft-07), as shipped in `src/toy/tree.schema.json`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { treeSchema } from "./tree_json.ts";
 * assert.equal(treeSchema.$schema, "http://json-schema.org/draft-07/schema#");
 * assert.deepEqual(treeSchema.required, ["active_prob"]);
 * ```
 */
export const treeSchema: Readonly<Record<string, unknown>> = schema;

/** The compiled schema, built at the first validation (commands that read no tree skip it). */
let compiled: ValidateFunction<TreeJson> | undefined;
function validator(): ValidateFunction<TreeJson> {
  compiled ??= new Ajv({ allErrors: true, strict: true, verbose: true }).compile<TreeJson>(schema);
  return compiled;
}

type Schema = {
  type?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minItems?: number;
  contains?: Schema;
  properties?: Record<string, Schema>;
  required?: string[];
};

function showValue(value: unknown): string {
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (value === undefined) return "nothing";
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** `> x` or `≥ x` for a number schema with a lower bound. */
function lowerBound(s: Schema): string | undefined {
  if (s.exclusiveMinimum !== undefined) return `> ${s.exclusiveMinimum}`;
  if (s.minimum !== undefined) return `≥ ${s.minimum}`;
  return undefined;
}

/** Describes in words what `s` (a subschema of tree.schema.json) accepts. */
function allowedBy(s: Schema | undefined): string {
  if (!s) return "nothing (unknown field)";
  switch (s.type) {
    case "number": {
      if (s.minimum !== undefined && s.maximum !== undefined) {
        return `a number from ${s.minimum} to ${s.maximum}`;
      }
      const bound = lowerBound(s);
      return bound ? `a number ${bound}` : "a number";
    }
    case "boolean":
      return "true or false";
    case "string":
      return "a string";
    case "array": {
      let text = "an array of trees";
      if (s.minItems) text += ` with at least ${s.minItems} items`;
      if (s.contains?.properties) {
        const [name, sub] = Object.entries(s.contains.properties)[0]!;
        text += `, at least one of them with ${name} ${lowerBound(sub) ?? "set"}`;
      }
      return text;
    }
    case "object": {
      const required = s.required ?? [];
      const optional = Object.keys(s.properties ?? {}).filter((k) => !required.includes(k));
      return `a tree: an object with ${required.join(", ")} and optionally ${optional.join(", ")}`;
    }
    default:
      return "a value of the tree format";
  }
}

function issueOf(error: ErrorObject): TreeJsonIssue {
  const parent = error.parentSchema as Schema;
  const conditional = error.schemaPath.includes("/then/")
    ? " (because mutually_exclusive_children is true)"
    : "";
  switch (error.keyword) {
    case "additionalProperties": {
      const name = (error.params as { additionalProperty: string }).additionalProperty;
      return {
        path: `${error.instancePath}/${name}`,
        problem: `unknown field "${name}"`,
        allowed: `only the fields ${Object.keys(parent.properties ?? {}).join(", ")}`,
      };
    }
    case "required": {
      const name = (error.params as { missingProperty: string }).missingProperty;
      return {
        path: `${error.instancePath}/${name}`,
        problem: `required field is missing${conditional}`,
        allowed: allowedBy(parent.properties?.[name]),
      };
    }
    default:
      return {
        path: error.instancePath || "/",
        problem: `${error.message}${conditional}, got ${showValue(error.data)}`,
        allowed: allowedBy(parent),
      };
  }
}

/** The issues Ajv found, without the summary errors of `if` and the per-item noise of `contains`. */
function issuesOf(errors: readonly ErrorObject[]): TreeJsonIssue[] {
  const kept = errors.filter((e) => e.keyword !== "if" && !e.schemaPath.includes("/contains/"));
  return kept.map(issueOf);
}

/**
 * Checks `value` against the tree schema.
 *
 * @returns the issues found; empty when the value is a valid tree.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { validateTreeJson } from "./tree_json.ts";
 * assert.deepEqual(validateTreeJson({ active_prob: 0.5, children: [{ active_prob: 1 }] }), []);
 * const [issue] = validateTreeJson({ active_prob: 1, colour: "red" });
 * assert.equal(issue?.path, "/colour");
 * assert.equal(issue?.problem, 'unknown field "colour"');
 * ```
 */
export function validateTreeJson(value: unknown): TreeJsonIssue[] {
  const validate = validator();
  return validate(value) ? [] : issuesOf(validate.errors ?? []);
}

function specOf(json: TreeJson): TreeSpec {
  return {
    activeProb: json.active_prob,
    ...(json.active_prob_without_parent !== undefined
      ? { activeProbWithoutParent: json.active_prob_without_parent }
      : {}),
    ...(json.children !== undefined ? { children: json.children.map(specOf) } : {}),
    ...(json.mutually_exclusive_children !== undefined
      ? { mutuallyExclusiveChildren: json.mutually_exclusive_children }
      : {}),
    ...(json.is_read_out !== undefined ? { isReadOut: json.is_read_out } : {}),
    ...(json.id !== undefined ? { id: json.id } : {}),
    ...(json.magnitude_mean !== undefined ? { magnitudeMean: json.magnitude_mean } : {}),
    ...(json.magnitude_std !== undefined ? { magnitudeStd: json.magnitude_std } : {}),
  };
}

/**
 * Builds a tree from an already parsed JSON value in the published format.
 *
 * @param source name of the value's origin for error messages (a file path).
 * @throws {TreeJsonError} when the value breaks the schema.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { treeFromJson, TreeJsonError } from "./tree_json.ts";
 * const json = { active_prob: 1, is_read_out: false, children: [{ active_prob: 0.25 }] };
 * const tree = treeFromJson(json, "inline.json");
 * assert.equal(tree.nFeatures, 1);
 * assert.equal(tree.features[0]!.activeProb, 0.25);
 * assert.throws(() => treeFromJson({ activeProb: 1 }), TreeJsonError); // snake_case only
 * ```
 */
export function treeFromJson(value: unknown, source = "<value>"): TreeFeatureGenerator {
  const issues = validateTreeJson(value);
  if (issues.length > 0) throw new TreeJsonError(source, issues);
  return new TreeFeatureGenerator(specOf(value as TreeJson));
}

/**
 * Parses the text of a tree file.
 *
 * @param source name of the text's origin for error messages (a file path).
 * @throws {TreeJsonError} for an empty text, text that is not JSON, or JSON that breaks the schema.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseTreeJson, TreeJsonError } from "./tree_json.ts";
 * const tree = parseTreeJson('{"active_prob": 1, "children": [{"active_prob": 0.5}]}');
 * assert.equal(tree.nFeatures, 2);
 * assert.throws(() => parseTreeJson("{", "broken.json"), TreeJsonError);
 * assert.throws(() => parseTreeJson(""), /the file is empty/);
 * ```
 */
export function parseTreeJson(text: string, source = "<string>"): TreeFeatureGenerator {
  const whole = schema as unknown as Schema;
  if (text.trim() === "") {
    throw new TreeJsonError(source, [
      { path: "/", problem: "the file is empty", allowed: `JSON holding ${allowedBy(whole)}` },
    ]);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new TreeJsonError(source, [
      {
        path: "/",
        problem: `not valid JSON (${reason})`,
        allowed: `JSON holding ${allowedBy(whole)}`,
      },
    ]);
  }
  return treeFromJson(value, source);
}

/**
 * Reads and validates a tree file in the published format.
 *
 * @example
 * ```ts ignore
 * import { readTreeFile } from "./tree_json.ts";
 * const tree = await readTreeFile("tests/fixtures/trees/notebook_balanced.json");
 * ```
 * @throws {TreeJsonError} naming the file and the offending path inside the tree.
 */
export async function readTreeFile(path: string | URL): Promise<TreeFeatureGenerator> {
  const name = path instanceof URL ? path.pathname : path;
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new TreeJsonError(name, [
      { path: "/", problem: `cannot read the file (${reason})`, allowed: "a readable JSON file" },
    ]);
  }
  return parseTreeJson(text, name);
}

/**
 * The published JSON form of a tree, writing only fields that differ from their defaults (so a
 * minimal file round-trips unchanged).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { treeToJson } from "./tree_json.ts";
 * import { notebookTree } from "./notebook_trees.ts";
 * assert.deepEqual(treeToJson(notebookTree([0.5])), {
 *   active_prob: 1,
 *   is_read_out: false,
 *   children: [{
 *     active_prob: 0.25,
 *     children: [{ active_prob: 0.5 }, { active_prob: 0.55, is_read_out: false }],
 *   }],
 * });
 * ```
 */
export function treeToJson(tree: TreeFeatureGenerator | TreeNode): TreeJson {
  const node = tree instanceof TreeFeatureGenerator ? tree.root : tree;
  const json: TreeJson = { active_prob: node.activeProb };
  if (node.activeProbWithoutParent !== 0) {
    json.active_prob_without_parent = node.activeProbWithoutParent;
  }
  if (node.id !== undefined) json.id = node.id;
  if (node.mutuallyExclusiveChildren) json.mutually_exclusive_children = true;
  if (!node.isReadOut) json.is_read_out = false;
  if (node.magnitudeMean !== 1) json.magnitude_mean = node.magnitudeMean;
  if (node.magnitudeStd !== 0) json.magnitude_std = node.magnitudeStd;
  if (node.children.length > 0) json.children = node.children.map((c) => treeToJson(c));
  return json;
}
