/**
 * Balanceability maps: "is it always possible to balance?" asked over a plane of worlds. The
 * notebook's tree family has a few world parameters (the parent's firing probability, each child's,
 * the number of children, the L1 coefficient); two of them are swept on a grid, the rest fixed.
 * Every cell of the grid is one sweep tree; one {@link runSweep} trains all of them together, and
 * each cell's β*, largest |child component| at β* and verdict are read back from its balances.
 *
 * A map folder holds `map_spec.json` (what the map is, checked on `resume`), the sweep folder
 * `sweep/` (`sweep-l1-<value>/` per L1 value when L1 is swept), `map.csv`, `map.json` and the two
 * figures `map_beta_star.<format>` and `map_residual.<format>` (drawn by `map_figure.ts`).
 */
import { checkInteger } from "../check_value.ts";
import type { Gpu } from "../gpu/device.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import { checkWritable } from "../io/output_dir.ts";
import { type FigureFormat, saveFigureFormats } from "../plot/figure_files.ts";
import { notebookTree } from "../toy/notebook_trees.ts";
import { PUBLISHED_STEPS } from "../sae/train.ts";
import { clip, DEFAULT_BETAS, MAX_SWEEP_FEATURES, type SweepTree, sweepTree } from "./axes.ts";
import { betaStarMapSvg, type MapGrid, residualMapSvg } from "./map_figure.ts";
import {
  DEFAULT_REFINE,
  DEFAULT_TOLERANCE,
  runSweep,
  type SweepOptions,
  type SweepResult,
} from "./run_sweep.ts";
import { isAbsentOrEmpty } from "./store.ts";

/**
 * A bad map axis, fixed value or map folder; the message names the flag and what is allowed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MapAxisError, parseMapAxis } from "./balance_map.ts";
 * assert.throws(() => parseMapAxis("colour=1,2"), MapAxisError);
 * assert.equal(new MapAxisError("Invalid --x").exitCode, 2);
 * ```
 */
export class MapAxisError extends RangeError {
  /** Always `"MapAxisError"`. */
  override name = "MapAxisError";
  /** Exit status of a command that stops on this error. */
  readonly exitCode = 2;
}

/**
 * A world parameter of the notebook's tree family: `parent` (the parent's firing probability),
 * `children` (how many read-out children), `child` (the probability of every child not named on
 * its own), `child-K` (child K's probability, K from 1) and `l1` (the L1 coefficient).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type MapParameter, parseMapParameter } from "./balance_map.ts";
 * const second: MapParameter = parseMapParameter("child-2", "x");
 * assert.equal(second, "child-2");
 * ```
 */
export type MapParameter = "parent" | "children" | "child" | "l1" | `child-${number}`;

/**
 * The values of the parameters a map does not name: the notebook's world (parent 0.25, three
 * children at 0.15, L1 coefficient 3e-2).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAP_DEFAULTS } from "./balance_map.ts";
 * assert.deepEqual(MAP_DEFAULTS, { parent: 0.25, children: 3, child: 0.15, l1: 0.03 });
 * assert.ok(Object.isFrozen(MAP_DEFAULTS));
 * ```
 */
export const MAP_DEFAULTS: Readonly<
  { parent: number; children: number; child: number; l1: number }
> = Object.freeze({ parent: 0.25, children: 3, child: 0.15, l1: 0.03 });

/**
 * The most cells of one map: 10,000 (each is a tree of the one sweep, trained at every β and seed).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAX_MAP_CELLS, parseMapAxis } from "./balance_map.ts";
 * assert.equal(MAX_MAP_CELLS, 10_000);
 * assert.equal(parseMapAxis("child-1=0.01:0.5:100").values.length, 100); // 100 × 100 fits
 * ```
 */
export const MAX_MAP_CELLS = 10_000;

const PARAMETERS_TEXT = "parent, children, child, child-K (K = 1, 2, …) or l1";

function fail(flag: string, expected: string, got: string): never {
  throw new MapAxisError(`Invalid --${flag}: expected ${expected}, got ${got}`);
}

/**
 * Parses a parameter name (`parent`, `children`, `child`, `child-K`, `l1`; any case).
 *
 * @param flag the flag it came from, named in the error (`x`, `y`, `fix`).
 * @throws {MapAxisError} for any other name.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseMapParameter } from "./balance_map.ts";
 * assert.equal(parseMapParameter(" Child-3 ", "fix"), "child-3");
 * assert.throws(() => parseMapParameter("child-0", "x"), /^MapAxisError: Invalid --x: expected/);
 * ```
 */
export function parseMapParameter(name: string, flag: string): MapParameter {
  const lower = name.trim().toLowerCase();
  if (lower === "parent" || lower === "children" || lower === "child" || lower === "l1") {
    return lower;
  }
  const match = /^child-(\d+)$/.exec(lower);
  const k = match ? Number(match[1]) : NaN;
  if (!match || !Number.isSafeInteger(k) || k < 1 || k > MAX_SWEEP_FEATURES - 1) {
    fail(flag, `a parameter ${PARAMETERS_TEXT}`, `"${clip(name.trim())}"`);
  }
  return `child-${k}`;
}

/** What a value of `parameter` must be, in words, and whether `value` is one. */
function valueRule(parameter: MapParameter): { text: string; ok: (v: number) => boolean } {
  if (parameter === "children") {
    return {
      text: `an integer from 1 to ${MAX_SWEEP_FEATURES - 1}`,
      ok: (v) => Number.isSafeInteger(v) && v >= 1 && v <= MAX_SWEEP_FEATURES - 1,
    };
  }
  if (parameter === "l1") return { text: "a number ≥ 0", ok: (v) => Number.isFinite(v) && v >= 0 };
  // A probability of 0 makes a degenerate world: the sweep gives it no verdict.
  return { text: "a probability in (0, 1]", ok: (v) => Number.isFinite(v) && v > 0 && v <= 1 };
}

function checkValue(flag: string, parameter: MapParameter, value: number, shown: string): number {
  const rule = valueRule(parameter);
  if (!rule.ok(value)) fail(flag, `${parameter} values: ${rule.text}`, shown);
  return value;
}

/** At most 10 significant digits: `0.02:0.5:9` gives 0.08, not 0.08000000000000002. */
function tidy(value: number): number {
  return Number(value.toPrecision(10));
}

/**
 * One swept axis of a map: the parameter and its values, ascending.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type MapAxis, parseMapAxis } from "./balance_map.ts";
 * const axis: MapAxis = parseMapAxis("child-1=0.02:0.5:5");
 * assert.deepEqual(axis, { parameter: "child-1", values: [0.02, 0.14, 0.26, 0.38, 0.5] });
 * ```
 */
export interface MapAxis {
  /** The swept parameter. */
  parameter: MapParameter;
  /** Its values, ascending, at least two, each once. */
  values: number[];
}

/**
 * Parses `--x` / `--y`: `PARAMETER=FROM:TO:N` (N evenly spaced values from FROM to TO, both
 * included) or `PARAMETER=V1,V2,…` (a list; sorted here).
 *
 * @param flag `x` or `y`, named in errors.
 * @throws {MapAxisError} naming the flag: an unknown parameter, values out of range (probabilities
 *   in (0, 1], `children` integers from 1 to 1,023, `l1` ≥ 0), fewer than two values or a repeat.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseMapAxis } from "./balance_map.ts";
 * assert.deepEqual(parseMapAxis("children=1:4:4", "y").values, [1, 2, 3, 4]);
 * assert.deepEqual(parseMapAxis("parent=0.5,0.1,0.25").values, [0.1, 0.25, 0.5]);
 * assert.throws(() => parseMapAxis("child-1=0:0.5:4"), /Invalid --x: expected child-1 values/);
 * assert.throws(() => parseMapAxis("children=1:4:3", "y"), /Invalid --y: expected children/);
 * ```
 */
export function parseMapAxis(text: string, flag = "x"): MapAxis {
  const form = "PARAMETER=FROM:TO:N or PARAMETER=V1,V2,… with PARAMETER " + PARAMETERS_TEXT;
  const eq = text.indexOf("=");
  if (eq < 0) fail(flag, form, `"${clip(text)}"`);
  const parameter = parseMapParameter(text.slice(0, eq), flag);
  const spec = text.slice(eq + 1).trim();
  let values: number[];
  const range = /^([^:,]+):([^:,]+):([^:,]+)$/.exec(spec);
  if (range) {
    const [from, to, n] = [Number(range[1]), Number(range[2]), Number(range[3]!.trim())];
    if (!Number.isFinite(from) || !Number.isFinite(to) || range[1]!.trim() === "") {
      fail(flag, "FROM:TO:N with numbers FROM < TO and an integer N ≥ 2", `"${clip(spec)}"`);
    }
    if (!(from < to) || !Number.isSafeInteger(n) || n < 2 || n > MAX_MAP_CELLS) {
      fail(
        flag,
        `FROM:TO:N with FROM < TO and an integer N from 2 to ${MAX_MAP_CELLS}`,
        `"${clip(spec)}"`,
      );
    }
    values = Array.from({ length: n }, (_, i) => tidy(from + (to - from) * i / (n - 1)));
  } else {
    values = spec.split(",").map((part) => {
      const value = Number(part.trim());
      if (part.trim() === "" || !Number.isFinite(value)) {
        fail(flag, form, `"${clip(part.trim())}" in "${clip(text)}"`);
      }
      return value;
    });
  }
  for (const v of values) checkValue(flag, parameter, v, `${v} in "${clip(text)}"`);
  values.sort((a, b) => a - b);
  if (values.length < 2) {
    fail(flag, "at least two values (a map sweeps two axes)", `"${clip(text)}"`);
  }
  for (let i = 1; i < values.length; i++) {
    if (values[i] === values[i - 1]) fail(flag, "each value once", `${values[i]} twice`);
  }
  return { parameter, values };
}

/**
 * Parses one `--fix PARAMETER=VALUE`.
 *
 * @throws {MapAxisError} naming `--fix`: an unknown parameter or a value out of its range.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseMapFixed } from "./balance_map.ts";
 * assert.deepEqual(parseMapFixed("child-3=0.15"), { parameter: "child-3", value: 0.15 });
 * assert.throws(() => parseMapFixed("parent=2"), /^MapAxisError: Invalid --fix: expected parent/);
 * ```
 */
export function parseMapFixed(text: string): { parameter: MapParameter; value: number } {
  const eq = text.indexOf("=");
  if (eq < 0) {
    fail("fix", `PARAMETER=VALUE with PARAMETER ${PARAMETERS_TEXT}`, `"${clip(text)}"`);
  }
  const parameter = parseMapParameter(text.slice(0, eq), "fix");
  const part = text.slice(eq + 1).trim();
  const value = Number(part);
  if (part === "" || !Number.isFinite(value)) {
    fail("fix", `PARAMETER=VALUE with a number VALUE`, `"${clip(text)}"`);
  }
  return { parameter, value: checkValue("fix", parameter, value, `"${clip(text)}"`) };
}

/**
 * What a map is: two swept axes (x across, y up) and fixed values of other parameters (those not
 * named keep {@link MAP_DEFAULTS}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type BalanceMapSpec, mapCells, parseMapAxis } from "./balance_map.ts";
 * const spec: BalanceMapSpec = {
 *   x: parseMapAxis("child-1=0.02,0.5"),
 *   y: parseMapAxis("child-2=0.02,0.5", "y"),
 *   fixed: { "child-3": 0.15 },
 * };
 * assert.equal(mapCells(spec).length, 4);
 * ```
 */
export interface BalanceMapSpec {
  /** The axis across (columns). */
  x: MapAxis;
  /** The axis up (rows). */
  y: MapAxis;
  /** Fixed parameters, e.g. `{ "child-3": 0.15 }`; not the swept ones. */
  fixed?: Readonly<Partial<Record<MapParameter, number>>>;
}

/**
 * The world of one cell: what its tree and its SAEs are built from.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type MapWorld, mapWorld } from "./balance_map.ts";
 * const world: MapWorld = mapWorld({ children: 2, "child-2": 0.5 });
 * assert.deepEqual(world, { parentProb: 0.25, childProbs: [0.15, 0.5], l1Coefficient: 0.03 });
 * ```
 */
export interface MapWorld {
  /** The parent's (feature 0's) firing probability. */
  parentProb: number;
  /** Each read-out child's firing probability (given that the parent fires), in order. */
  childProbs: number[];
  /** The SAE's L1 coefficient. */
  l1Coefficient: number;
}

/**
 * The world a set of parameter values gives: `children` children, child K at `child-K` when given,
 * else at `child`; parameters not given take {@link MAP_DEFAULTS}.
 *
 * @throws {MapAxisError} for a `child-K` beyond the number of children.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mapWorld } from "./balance_map.ts";
 * assert.deepEqual(mapWorld({}).childProbs, [0.15, 0.15, 0.15]); // the notebook's balanced tree
 * assert.deepEqual(mapWorld({ "child-1": 0.02, "child-3": 0.5 }).childProbs, [0.02, 0.15, 0.5]);
 * assert.throws(() => mapWorld({ children: 2, "child-3": 0.5 }), /child-3 needs at least 3/);
 * ```
 */
export function mapWorld(values: Readonly<Partial<Record<MapParameter, number>>>): MapWorld {
  const n = values.children ?? MAP_DEFAULTS.children;
  const every = values.child ?? MAP_DEFAULTS.child;
  for (const key of Object.keys(values)) {
    const k = /^child-(\d+)$/.exec(key);
    if (k && Number(k[1]) > n) {
      fail(
        "fix",
        `child-K with K ≤ the number of children (${key} needs at least ${k[1]} children)`,
        `${n} children`,
      );
    }
  }
  return {
    parentProb: values.parent ?? MAP_DEFAULTS.parent,
    childProbs: Array.from({ length: n }, (_, k) => values[`child-${k + 1}`] ?? every),
    l1Coefficient: values.l1 ?? MAP_DEFAULTS.l1,
  };
}

/**
 * One cell of a map: its grid position, axis values, world and tree name.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type MapCell, mapCells, parseMapAxis } from "./balance_map.ts";
 * const spec = { x: parseMapAxis("parent=0.1,0.5"), y: parseMapAxis("children=1,2", "y") };
 * const last: MapCell = mapCells(spec).at(-1)!;
 * assert.deepEqual([last.i, last.j, last.x, last.y, last.name], [1, 1, 0.5, 2, "map-x1-y1"]);
 * assert.deepEqual(last.world.childProbs, [0.15, 0.15]);
 * ```
 */
export interface MapCell {
  /** Column (x index, from 0). */
  i: number;
  /** Row (y index, from 0 at the bottom). */
  j: number;
  /** The x axis value. */
  x: number;
  /** The y axis value. */
  y: number;
  /** The cell's sweep tree name, `map-x<i>-y<j>`. */
  name: string;
  /** The cell's world. */
  world: MapWorld;
}

/**
 * Checks a map spec: two different swept parameters, fixed values that are neither swept nor out
 * of range, at most {@link MAX_MAP_CELLS} cells, every `child-K` within the number of children of
 * every cell.
 *
 * @throws {MapAxisError} naming the flag (`--x`, `--y`, `--fix`).
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkMapSpec, parseMapAxis } from "./balance_map.ts";
 * const x = parseMapAxis("child-1=0.1,0.2");
 * assert.throws(() => checkMapSpec({ x, y: { ...x } }), /Invalid --y: expected a parameter other/);
 * const y = parseMapAxis("child-2=0.1,0.2", "y");
 * assert.throws(() => checkMapSpec({ x, y, fixed: { "child-1": 0.3 } }), /Invalid --fix/);
 * assert.doesNotThrow(() => checkMapSpec({ x: parseMapAxis("l1=0.01,0.03"), y }));
 * ```
 */
export function checkMapSpec(spec: BalanceMapSpec): BalanceMapSpec {
  const { x, y } = spec;
  const fixed = { ...spec.fixed };
  for (const [flag, axis] of [["x", x], ["y", y]] as const) {
    const parameter = parseMapParameter(String(axis.parameter), flag);
    if (axis.values.length < 2) fail(flag, "at least two values", `${axis.values.length}`);
    for (const v of axis.values) checkValue(flag, parameter, v, String(v));
  }
  if (x.parameter === y.parameter) {
    fail("y", "a parameter other than --x's", `"${y.parameter}" on both axes`);
  }
  for (const [key, value] of Object.entries(fixed)) {
    const parameter = parseMapParameter(key, "fix");
    if (parameter === x.parameter || parameter === y.parameter) {
      fail("fix", "a parameter that no axis sweeps", `"${key}" (swept by --x or --y)`);
    }
    checkValue("fix", parameter, value as number, `${key}=${value}`);
  }
  const cells = x.values.length * y.values.length;
  if (cells > MAX_MAP_CELLS) {
    fail("y", `at most ${MAX_MAP_CELLS} cells (x values × y values)`, `${cells} cells`);
  }
  // Every child-K must exist in every cell: check the corners of the children axis.
  const fewest = x.parameter === "children"
    ? x.values[0]!
    : y.parameter === "children"
    ? y.values[0]!
    : fixed.children ?? MAP_DEFAULTS.children;
  for (
    const [flag, parameter] of [["x", x.parameter], ["y", y.parameter], ["fix", null]] as const
  ) {
    const keys = parameter === null ? Object.keys(fixed) : [parameter];
    for (const key of keys) {
      const k = /^child-(\d+)$/.exec(key);
      if (k && Number(k[1]) > fewest) {
        fail(
          flag,
          `child-K with K ≤ the number of children in every cell (${key} needs at least ` +
            `${k[1]} children)`,
          `${fewest} children`,
        );
      }
    }
  }
  return { x, y, fixed };
}

/**
 * Every cell of a map, row by row from the bottom (y ascending), x ascending within a row.
 *
 * @throws {MapAxisError} for a spec {@link checkMapSpec} refuses.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mapCells, parseMapAxis } from "./balance_map.ts";
 * const cells = mapCells({
 *   x: parseMapAxis("child-1=0.02,0.5"),
 *   y: parseMapAxis("child-2=0.15,0.5", "y"),
 *   fixed: { "child-3": 0.15 },
 * });
 * assert.deepEqual(cells.map((c) => c.world.childProbs), [
 *   [0.02, 0.15, 0.15], [0.5, 0.15, 0.15], [0.02, 0.5, 0.15], [0.5, 0.5, 0.15],
 * ]);
 * ```
 */
export function mapCells(spec: BalanceMapSpec): MapCell[] {
  const { x, y, fixed } = checkMapSpec(spec);
  const cells: MapCell[] = [];
  y.values.forEach((yv, j) => {
    x.values.forEach((xv, i) => {
      const values = { ...fixed, [x.parameter]: xv, [y.parameter]: yv };
      cells.push({ i, j, x: xv, y: yv, name: `map-x${i}-y${j}`, world: mapWorld(values) });
    });
  });
  return cells;
}

/**
 * The sweep tree of a cell: the notebook's tree with the cell's parent and children.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cellTree, mapCells, parseMapAxis } from "./balance_map.ts";
 * const x = parseMapAxis("parent=0.1,0.5");
 * const [first] = mapCells({ x, y: parseMapAxis("child=0.1,0.2", "y") });
 * const tree = cellTree(first!);
 * assert.deepEqual([tree.name, tree.childProbs], ["map-x0-y0", [0.1, 0.1, 0.1]]);
 * assert.equal(tree.tree.features[0]!.activeProb, 0.1);
 * ```
 */
export function cellTree(cell: MapCell): SweepTree {
  return sweepTree(cell.name, notebookTree(cell.world.childProbs, cell.world.parentProb), "file");
}

/**
 * A cell and what the sweep found there.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { MapCellResult } from "./balance_map.ts";
 * const cell: MapCellResult = {
 *   i: 0, j: 0, x: 0.15, y: 0.15, name: "map-x0-y0", sweep: "sweep",
 *   world: { parentProb: 0.25, childProbs: [0.15, 0.15, 0.15], l1Coefficient: 0.03 },
 *   betaStar: 0.2375, maxResidual: 0.003, balanceable: true, tolerance: 0.02, reason: null,
 * };
 * assert.ok(cell.balanceable);
 * ```
 */
export interface MapCellResult extends MapCell {
  /** The sweep folder it was trained in, relative to the map folder. */
  sweep: string;
  /** β* (Infinity: the detached setup does best), or null without a result. */
  betaStar: number | null;
  /** Largest |child component| of latent 0's encoder at β*, or null. */
  maxResidual: number | null;
  /** `maxResidual < tolerance`, or null without a result. */
  balanceable: boolean | null;
  /** The tolerance of the verdict. */
  tolerance: number;
  /** Why there is no result (e.g. every SAE diverged), or null. */
  reason: string | null;
}

/**
 * Settings of {@link runBalanceMap}: the map, where it goes, and the sweep's settings (defaults
 * as {@link runSweep}'s, but one seed).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type BalanceMapOptions, mapCells, parseMapAxis } from "./balance_map.ts";
 * const options: BalanceMapOptions = {
 *   out: "out/map",
 *   x: parseMapAxis("child-1=0.02:0.5:8"),
 *   y: parseMapAxis("child-2=0.02:0.5:8", "y"),
 *   fixed: { "child-3": 0.15 },
 *   betas: [0, 0.1, 0.2, 0.3, Infinity],
 *   steps: 12_000,
 * };
 * assert.equal(mapCells(options).length, 64);
 * ```
 */
export interface BalanceMapOptions extends
  BalanceMapSpec,
  Pick<
    SweepOptions,
    | "betas"
    | "steps"
    | "batchSize"
    | "lr"
    | "chunk"
    | "refine"
    | "evalRows"
    | "tolerance"
    | "objective"
    | "quiet"
    | "log"
  > {
  /** The map folder. */
  out: string;
  /** Seeds 0..seeds−1 per cell and β (default 1). */
  seeds?: number;
  /** Continue the map in `out` (same map, same sweep settings). */
  resume?: boolean;
  /** Formats of the map's figures (default SVG only; the sweep's own figures are SVG). */
  figureFormats?: readonly FigureFormat[];
}

/**
 * What {@link runBalanceMap} returns.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { BalanceMapResult } from "./balance_map.ts";
 * const share = (r: BalanceMapResult) =>
 *   r.cells.filter((c) => c.balanceable).length / r.cells.length;
 * assert.equal(typeof share, "function");
 * ```
 */
export interface BalanceMapResult {
  /** The map folder. */
  out: string;
  /** The spec, checked. */
  spec: BalanceMapSpec;
  /** Every cell with its result, in {@link mapCells}' order. */
  cells: MapCellResult[];
  /** The sweeps (one per L1 value). */
  sweeps: SweepResult[];
  /** Seconds of the whole call. */
  seconds: number;
}

/** A number for map.csv: 8 significant digits, `inf` for ∞, empty for null or NaN. */
function csvNumber(value: number | null): string {
  if (value === null || Number.isNaN(value)) return "";
  if (value === Infinity) return "inf";
  return String(Number(value.toPrecision(8)));
}

/**
 * `map.csv`: one row per cell: the two axis values (columns named for their parameters), the
 * parent's and children's probabilities (`;`-separated), the L1 coefficient, β* (`inf` for the
 * detached setup), the residual at β*, the verdict (`true`/`false`, empty without a result), the
 * tolerance, the tree, its sweep folder and why there is no result.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mapCsv, type MapCellResult } from "./balance_map.ts";
 * const cell: MapCellResult = {
 *   i: 0, j: 0, x: 0.02, y: 0.5, name: "map-x0-y0", sweep: "sweep",
 *   world: { parentProb: 0.25, childProbs: [0.02, 0.5, 0.15], l1Coefficient: 0.03 },
 *   betaStar: Infinity, maxResidual: 0.5, balanceable: false, tolerance: 0.02, reason: null,
 * };
 * const [header, row] = mapCsv({ x: "child-1", y: "child-2" }, [cell]).trim().split("\n");
 * assert.equal(header!.split(",").slice(0, 3).join(","), "child-1,child-2,parent_prob");
 * assert.equal(row, "0.02,0.5,0.25,0.02;0.5;0.15,0.03,inf,0.5,false,0.02,map-x0-y0,sweep,");
 * ```
 */
export function mapCsv(
  axes: { x: MapParameter; y: MapParameter },
  cells: readonly MapCellResult[],
): string {
  const quote = (text: string) => /[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  const header = [
    axes.x,
    axes.y,
    "parent_prob",
    "child_probs",
    "l1_coefficient",
    "beta_star",
    "max_residual",
    "balanceable",
    "tolerance",
    "tree",
    "sweep",
    "reason",
  ];
  const lines = [header.join(",")];
  for (const c of cells) {
    lines.push([
      csvNumber(c.x),
      csvNumber(c.y),
      csvNumber(c.world.parentProb),
      c.world.childProbs.map(csvNumber).join(";"),
      csvNumber(c.world.l1Coefficient),
      csvNumber(c.betaStar),
      csvNumber(c.maxResidual),
      c.balanceable === null ? "" : String(c.balanceable),
      csvNumber(c.tolerance),
      c.name,
      c.sweep,
      quote(c.reason ?? ""),
    ].join(","));
  }
  return lines.join("\n") + "\n";
}

/**
 * `map.json`: the spec, the sweep settings, every cell (β* `"inf"` for the detached setup) and the
 * run time.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { BalanceMapJson } from "./balance_map.ts";
 * const json: BalanceMapJson = {
 *   x: { parameter: "child-1", values: [0.02, 0.5] },
 *   y: { parameter: "child-2", values: [0.02, 0.5] },
 *   fixed: { "child-3": 0.15 },
 *   sweep: { betas: [0, "inf"], seeds: 1, steps: 100, refine: 0, tolerance: 0.02 },
 *   cells: [],
 *   seconds: 1,
 * };
 * assert.equal(json.sweep.betas[1], "inf");
 * ```
 */
export interface BalanceMapJson {
  /** The x axis. */
  x: MapAxis;
  /** The y axis. */
  y: MapAxis;
  /** The fixed parameters as given. */
  fixed: Partial<Record<MapParameter, number>>;
  /** The sweep settings that decide the results (defaults filled in; `"inf"`: ∞). */
  sweep: {
    betas: (number | "inf")[];
    seeds: number;
    steps: number;
    refine: number;
    tolerance: number;
  };
  /** Every cell. */
  cells: (Omit<MapCellResult, "betaStar"> & { betaStar: number | "inf" | null })[];
  /** Seconds of the run that wrote it (0 when nothing was trained). */
  seconds: number;
}

/**
 * The map's grids for the figures: `[j][i]`, row 0 at the bottom.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type MapCellResult, mapCells, mapGrid, parseMapAxis } from "./balance_map.ts";
 * const spec = { x: parseMapAxis("child-1=0.1,0.2"), y: parseMapAxis("child-2=0.1,0.3", "y") };
 * const cells: MapCellResult[] = mapCells(spec).map((c) => ({
 *   ...c, sweep: "sweep", betaStar: c.i === 1 ? Infinity : 0.25, maxResidual: 0.01,
 *   balanceable: true, tolerance: 0.02, reason: null,
 * }));
 * const grid = mapGrid(spec, cells);
 * assert.deepEqual(grid.betaStar, [[0.25, Infinity], [0.25, Infinity]]);
 * assert.deepEqual([grid.xLabel, grid.yValues], ["p(child 1)", [0.1, 0.3]]);
 * ```
 */
export function mapGrid(spec: BalanceMapSpec, cells: readonly MapCellResult[]): MapGrid {
  const { x, y } = spec;
  const empty = <T>(fill: T) => y.values.map(() => x.values.map(() => fill));
  const grid: MapGrid = {
    xLabel: parameterLabel(x.parameter),
    yLabel: parameterLabel(y.parameter),
    xValues: [...x.values],
    yValues: [...y.values],
    betaStar: empty<number | null>(null),
    residual: empty<number | null>(null),
    balanceable: empty<boolean | null>(null),
    tolerance: cells[0]?.tolerance ?? 0.02,
    fixed: fixedText(spec),
  };
  for (const c of cells) {
    grid.betaStar[c.j]![c.i] = c.betaStar;
    grid.residual[c.j]![c.i] = c.maxResidual;
    grid.balanceable[c.j]![c.i] = c.balanceable;
  }
  return grid;
}

/**
 * A parameter for people: `p(child 1)`, `p(parent)`, `p(every child)`, `children`, `L1
 * coefficient`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parameterLabel } from "./balance_map.ts";
 * assert.equal(parameterLabel("child-2"), "p(child 2)");
 * ```
 */
export function parameterLabel(parameter: MapParameter): string {
  if (parameter === "parent") return "p(parent)";
  if (parameter === "children") return "number of children";
  if (parameter === "child") return "p(every child)";
  if (parameter === "l1") return "L1 coefficient";
  return `p(child ${parameter.slice("child-".length)})`;
}

/**
 * The fixed part of a map's world for people, e.g. `p(parent) = 0.25, number of children = 3,
 * p(child 3) = 0.15, L1 coefficient = 0.03` (the swept parameters left out).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fixedText, parseMapAxis } from "./balance_map.ts";
 * const x = parseMapAxis("child-1=0.1,0.2");
 * const y = parseMapAxis("child-2=0.1,0.2", "y");
 * assert.equal(
 *   fixedText({ x, y, fixed: { "child-3": 0.15 } }),
 *   "p(parent) = 0.25, number of children = 3, p(child 3) = 0.15, L1 coefficient = 0.03",
 * );
 * assert.match(fixedText({ x, y, fixed: { children: 4 } }), /p\(other children\) = 0\.15/);
 * ```
 */
export function fixedText(spec: BalanceMapSpec): string {
  const swept: string[] = [spec.x.parameter, spec.y.parameter];
  const fixed: Partial<Record<MapParameter, number>> = { ...spec.fixed };
  const parts: string[] = [];
  const show = (parameter: MapParameter, value: number | undefined, label?: string) => {
    if (swept.includes(parameter) || value === undefined) return;
    parts.push(`${label ?? parameterLabel(parameter)} = ${value}`);
  };
  show("parent", fixed.parent ?? MAP_DEFAULTS.parent);
  show("children", fixed.children ?? MAP_DEFAULTS.children);
  const named = (swept.concat(Object.keys(fixed))).filter((k) => k.startsWith("child-"));
  const fixedChildren = Object.keys(fixed).filter((k) => k.startsWith("child-"))
    .sort((a, b) => Number(a.slice(6)) - Number(b.slice(6))) as MapParameter[];
  for (const k of fixedChildren) show(k, fixed[k]);
  const n = swept.includes("children") ? Infinity : fixed.children ?? MAP_DEFAULTS.children;
  if (named.length < n) {
    const label = named.length === 0 ? "p(every child)" : "p(other children)";
    show("child", fixed.child ?? MAP_DEFAULTS.child, label);
  }
  show("l1", fixed.l1 ?? MAP_DEFAULTS.l1);
  return parts.join(", ");
}

/** A folder name for an L1 value's sweep. */
function sweepFolder(l1: number, swept: boolean): string {
  return swept ? `sweep-l1-${l1}` : "sweep";
}

/** The map's own record of what it is, compared on `resume`. */
function specJson(spec: BalanceMapSpec): string {
  return JSON.stringify({ x: spec.x, y: spec.y, fixed: spec.fixed ?? {} }, null, 2) + "\n";
}

const SPEC_FILE = "map_spec.json";

/**
 * Runs a balanceability map: builds every cell's tree, trains them all with one {@link runSweep}
 * (one per L1 value when L1 is swept) in `out/sweep/`, reads each cell's β*, residual and verdict,
 * and writes `map.csv`, `map.json` and the figures `map_beta_star` and `map_residual` into `out`.
 *
 * @param gpu the device to train on (default: the sweep's own).
 * @throws {MapAxisError} for a bad spec or a folder that holds something else (before training).
 * @throws {SweepAxisError} for bad sweep settings (from {@link runSweep}, naming the flag).
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MapAxisError, parseMapAxis, runBalanceMap } from "./balance_map.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/notes.txt`, "not a map");
 * const x = parseMapAxis("child-1=0.02,0.5");
 * const y = parseMapAxis("child-2=0.02,0.5", "y");
 * // A folder of other files is refused before anything is trained.
 * await assert.rejects(runBalanceMap({ out: dir, x, y, steps: 5 }), MapAxisError);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function runBalanceMap(
  options: BalanceMapOptions,
  gpu?: Gpu,
): Promise<BalanceMapResult> {
  const begun = performance.now();
  const spec = checkMapSpec(options);
  const cells = mapCells(spec);
  const seeds = checkInteger("--seeds", options.seeds ?? 1, 1, undefined, MapAxisError);
  const log = options.log ?? ((line: string) => console.log(line));
  const out = options.out;
  await checkWritable({ path: out, what: "--out", bytes: 1024 * 1024 });
  const recorded = await Deno.readTextFile(`${out}/${SPEC_FILE}`).catch(() => null);
  if (recorded === null && !(await isAbsentOrEmpty(out))) {
    throw new MapAxisError(
      `Cannot start a map in ${out}: the folder holds other files; nothing was changed; ` +
        "choose another --out",
    );
  }
  if (recorded !== null && !options.resume) {
    throw new MapAxisError(
      `Cannot start a map in ${out}: it already holds one; pass --resume to continue it, or ` +
        "choose another --out",
    );
  }
  if (recorded !== null && recorded !== specJson(spec)) {
    throw new MapAxisError(
      `Cannot resume the map in ${out}: its axes or fixed values differ from this run's ` +
        `(see ${out}/${SPEC_FILE}); use the recorded ones or another --out`,
    );
  }
  await Deno.mkdir(out, { recursive: true });
  if (recorded === null) await writeFileAtomic(`${out}/${SPEC_FILE}`, specJson(spec));

  const l1Swept = spec.x.parameter === "l1" || spec.y.parameter === "l1";
  const groups = new Map<number, MapCell[]>();
  for (const cell of cells) {
    const group = groups.get(cell.world.l1Coefficient) ?? [];
    group.push(cell);
    groups.set(cell.world.l1Coefficient, group);
  }
  log(
    `matryoshka-gpu: balance map → ${out}: ${spec.x.parameter} (${spec.x.values.length}) × ` +
      `${spec.y.parameter} (${spec.y.values.length}) = ${cells.length} cells` +
      (fixedText(spec) ? `; ${fixedText(spec)}` : ""),
  );
  const results: MapCellResult[] = [];
  const sweeps: SweepResult[] = [];
  for (const [l1, group] of groups) {
    const folder = sweepFolder(l1, l1Swept);
    const sweepOptions: SweepOptions = {
      out: `${out}/${folder}`,
      trees: group.map(cellTree),
      seeds,
      l1Coefficient: l1,
      resume: options.resume ?? false,
    };
    for (
      const key of [
        "betas",
        "steps",
        "batchSize",
        "lr",
        "chunk",
        "refine",
        "evalRows",
        "tolerance",
        "objective",
        "quiet",
        "log",
      ] as const
    ) {
      if (options[key] !== undefined) Object.assign(sweepOptions, { [key]: options[key] });
    }
    const sweep = await runSweep(sweepOptions, gpu);
    sweeps.push(sweep);
    for (const cell of group) {
      // The balance of the cell's tree: its parent (feature 0) and children.
      const found = sweep.balances.find((b) => b.tree.name === cell.name);
      const balance = found?.balance ?? "the sweep gave this tree no balance";
      const tolerance = typeof balance === "string" ? options.tolerance ?? 0.02 : balance.tolerance;
      results.push({
        ...cell,
        sweep: folder,
        betaStar: typeof balance === "string" ? null : balance.betaStar,
        maxResidual: typeof balance === "string" ? null : balance.maxResidual,
        balanceable: typeof balance === "string" ? null : balance.balanceable,
        tolerance,
        reason: typeof balance === "string" ? balance : null,
      });
    }
  }
  // Back in mapCells' order (the L1 groups may interleave).
  const order = new Map(cells.map((c, n) => [c.name + c.world.l1Coefficient, n]));
  results.sort((a, b) =>
    order.get(a.name + a.world.l1Coefficient)! - order.get(b.name + b.world.l1Coefficient)!
  );
  const seconds = (performance.now() - begun) / 1000;
  const json: BalanceMapJson = {
    x: spec.x,
    y: spec.y,
    fixed: { ...spec.fixed },
    sweep: {
      betas: [...(options.betas ?? DEFAULT_BETAS)].sort((a, b) => a - b)
        .map((b) => b === Infinity ? "inf" : b),
      seeds,
      steps: options.steps ?? PUBLISHED_STEPS,
      refine: options.refine ?? DEFAULT_REFINE,
      tolerance: options.tolerance ?? DEFAULT_TOLERANCE,
    },
    cells: results.map((c) => ({ ...c, betaStar: c.betaStar === Infinity ? "inf" : c.betaStar })),
    seconds: Number(seconds.toFixed(1)),
  };
  await writeFileAtomic(
    `${out}/map.csv`,
    mapCsv({ x: spec.x.parameter, y: spec.y.parameter }, results),
  );
  await writeFileAtomic(`${out}/map.json`, JSON.stringify(json, null, 2) + "\n");
  await writeMapFigures(`${out}`, spec, results, options.figureFormats ?? ["svg"]);
  const balanceable = results.filter((c) => c.balanceable).length;
  log(
    `map: ${balanceable} of ${results.length} cells balanceable (largest |child component| at ` +
      `β* below ${results[0]?.tolerance}); wrote ${out}/: map.csv, map.json, map_beta_star, ` +
      `map_residual (${(options.figureFormats ?? ["svg"]).join(", ")})`,
  );
  return { out, spec, cells: results, sweeps, seconds };
}

/**
 * Writes the map's two figures, `<dir>/map_beta_star.<format>` and `<dir>/map_residual.<format>`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type MapCellResult, mapCells, parseMapAxis, writeMapFigures } from "./balance_map.ts";
 * const spec = { x: parseMapAxis("child-1=0.1,0.2"), y: parseMapAxis("child-2=0.1,0.2", "y") };
 * const cells: MapCellResult[] = mapCells(spec).map((c) => ({
 *   ...c, sweep: "sweep", betaStar: 0.25, maxResidual: 0.01 * (c.i + c.j + 1),
 *   balanceable: c.i + c.j < 2, tolerance: 0.02, reason: null,
 * }));
 * const dir = await Deno.makeTempDir();
 * await writeMapFigures(dir, spec, cells, ["svg"]);
 * assert.match(await Deno.readTextFile(`${dir}/map_residual.svg`), /class="outline"/);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeMapFigures(
  dir: string,
  spec: BalanceMapSpec,
  cells: readonly MapCellResult[],
  formats: readonly FigureFormat[],
): Promise<void> {
  const grid = mapGrid(spec, cells);
  await saveFigureFormats(`${dir}/map_beta_star`, betaStarMapSvg(grid), formats);
  await saveFigureFormats(`${dir}/map_residual`, residualMapSvg(grid), formats);
}
