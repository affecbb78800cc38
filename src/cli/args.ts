/**
 * Command-line parsing shared by the experiments: `node:util` `parseArgs` in strict mode, with
 * value checks whose errors name the flag, what is allowed and what was given.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { UsageError } from "./run_main.ts";
import { integerRange, isIntegerIn } from "../check_value.ts";
import { DEFAULT_EVAL_ROWS, MAX_EVAL_ROWS } from "../metrics/evaluate_cpu.ts";
import { type FigureFormat, parseFigureFormat } from "../plot/figure_files.ts";
import { type Architecture, ARCHITECTURES } from "../sae/config.ts";

/**
 * What {@link parseFlags} returns: `parseArgs`'s result for these options, strict, no positionals.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type ParsedFlags, parseFlags } from "./args.ts";
 * const options = { steps: { type: "string" }, quiet: { type: "boolean" } } as const;
 * const flags: ParsedFlags<typeof options> = parseFlags(["--quiet"], options, "usage: …");
 * assert.equal(flags.values.quiet, true);
 * assert.equal(flags.values.steps, undefined);
 * assert.deepEqual(flags.positionals, []);
 * ```
 */
export type ParsedFlags<T extends NonNullable<ParseArgsConfig["options"]>> = ReturnType<
  typeof parseArgs<{ args: string[]; options: T; strict: true; allowPositionals: false }>
>;

/**
 * Parses `args` strictly; an unknown flag or a missing value becomes a {@link UsageError}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseFlags } from "./args.ts";
 * const { values } = parseFlags(["--steps", "10"], { steps: { type: "string" } }, "usage: …");
 * assert.equal(values.steps, "10");
 * ```
 */
export function parseFlags<T extends NonNullable<ParseArgsConfig["options"]>>(
  args: string[],
  options: T,
  usage: string,
): ParsedFlags<T> {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new UsageError(`${message}\n\n${usage}`);
  }
}

function fail(flag: string, expected: string, got: string, usage: string): never {
  throw new UsageError(`Cannot parse --${flag}: expected ${expected}, got "${got}"\n\n${usage}`);
}

/** An integer flag value from `min` to `max` (or `fallback` when absent). */
function intFlag(
  flag: string,
  value: string | undefined,
  fallback: number,
  usage: string,
  min: 0 | 1,
  max: number | undefined,
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !isIntegerIn(n, min, max)) {
    fail(flag, integerRange(min, max), value, usage);
  }
  return n;
}

/**
 * A positive integer flag value, at most `max` when given (or `fallback` when absent).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { positiveIntFlag } from "./args.ts";
 * import { UsageError } from "./run_main.ts";
 * assert.equal(positiveIntFlag("steps", "100", 24_415, "usage: …"), 100);
 * assert.equal(positiveIntFlag("steps", undefined, 24_415, "usage: …"), 24_415);
 * assert.throws(() => positiveIntFlag("steps", "0", 24_415, "usage: …"), UsageError);
 * assert.throws(() => positiveIntFlag("models", "9", 1, "usage: …", 8), UsageError); // max 8
 * ```
 */
export function positiveIntFlag(
  flag: string,
  value: string | undefined,
  fallback: number,
  usage: string,
  max?: number,
): number {
  return intFlag(flag, value, fallback, usage, 1, max);
}

/**
 * A non-negative integer flag value, at most `max` when given (or `fallback` when absent).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nonNegativeIntFlag } from "./args.ts";
 * import { UsageError } from "./run_main.ts";
 * assert.equal(nonNegativeIntFlag("seed", "0", 1, "usage: …"), 0);
 * assert.throws(() => nonNegativeIntFlag("seed", "-1", 1, "usage: …"), UsageError);
 * assert.throws(() => nonNegativeIntFlag("seed", "1.5", 1, "usage: …"), /Cannot parse --seed/);
 * ```
 */
export function nonNegativeIntFlag(
  flag: string,
  value: string | undefined,
  fallback: number,
  usage: string,
  max?: number,
): number {
  return intFlag(flag, value, fallback, usage, 0, max);
}

/**
 * A positive finite number flag value (or `fallback` when absent).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { positiveNumberFlag } from "./args.ts";
 * import { UsageError } from "./run_main.ts";
 * assert.equal(positiveNumberFlag("lr", "4e-4", 3e-4, "usage: …"), 4e-4);
 * assert.equal(positiveNumberFlag("lr", undefined, 3e-4, "usage: …"), 3e-4);
 * assert.throws(() => positiveNumberFlag("lr", "0", 3e-4, "usage: …"), UsageError);
 * ```
 */
export function positiveNumberFlag(
  flag: string,
  value: string | undefined,
  fallback: number,
  usage: string,
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n <= 0) {
    fail(flag, "a positive number", value, usage);
  }
  return n;
}

/**
 * `--eval-rows`: held-out rows of the metrics, 1 to `MAX_EVAL_ROWS` (default `DEFAULT_EVAL_ROWS`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { evalRowsFlag } from "./args.ts";
 * assert.equal(evalRowsFlag(undefined, "usage: …"), 100_000);
 * assert.throws(() => evalRowsFlag("0", "usage: …"), /Cannot parse --eval-rows/);
 * ```
 */
export function evalRowsFlag(value: string | undefined, usage: string): number {
  return positiveIntFlag("eval-rows", value, DEFAULT_EVAL_ROWS, usage, MAX_EVAL_ROWS);
}

/**
 * The `--format` flag of the commands that draw figures: a comma-separated list of figure formats
 * (default `svg`), each figure written once per format, duplicates dropped.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { figureFormatsFlag } from "./args.ts";
 * assert.deepEqual(figureFormatsFlag(undefined, "usage: …"), ["svg"]);
 * assert.deepEqual(figureFormatsFlag("pdf, png,pdf", "usage: …"), ["pdf", "png"]);
 * assert.throws(() => figureFormatsFlag("jpg", "usage: …"), /expected svg, png or pdf/);
 * ```
 */
export function figureFormatsFlag(value: string | undefined, usage: string): FigureFormat[] {
  if (value === undefined) return ["svg"];
  const formats: FigureFormat[] = [];
  for (const part of value.split(",")) {
    const format = parseFigureFormat(part.trim());
    if (format === undefined) {
      fail("format", "svg, png or pdf, comma-separated (e.g. svg,pdf)", value, usage);
    }
    if (!formats.includes(format)) formats.push(format);
  }
  return formats;
}

/**
 * The `--arch` and `--k` flags of the training commands: the architecture (default `standard`)
 * and k (default 1): for `topk` an integer from 1 to `dSae`, for `batchtopk` any number above 0
 * up to `dSae` (⌊k · batch⌋ kept per batch, as SAELens); `--k` with `standard` is refused.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { architectureFlags } from "./args.ts";
 * assert.deepEqual(architectureFlags(undefined, undefined, 4, "usage: …"), {
 *   architecture: "standard",
 *   k: 1,
 * });
 * assert.deepEqual(architectureFlags("batchtopk", "2", 4, "usage: …"), {
 *   architecture: "batchtopk",
 *   k: 2,
 * });
 * assert.throws(() => architectureFlags("jumprelu", undefined, 4, "u"), /expected standard, topk/);
 * assert.throws(() => architectureFlags("topk", "5", 4, "u"), /Cannot parse --k/);
 * assert.equal(architectureFlags("batchtopk", "0.25", 4, "u").k, 0.25);
 * assert.throws(() => architectureFlags("topk", "0.25", 4, "u"), /Cannot parse --k/);
 * ```
 */
export function architectureFlags(
  arch: string | undefined,
  k: string | undefined,
  dSae: number,
  usage: string,
): { architecture: Architecture; k: number } {
  const architecture = (arch ?? "standard") as Architecture;
  if (!ARCHITECTURES.includes(architecture)) {
    fail("arch", ARCHITECTURES.join(", ").replace(/, (?=[^,]*$)/, " or "), arch!, usage);
  }
  if (architecture === "standard" && k !== undefined) {
    fail("k", "no --k with --arch standard (k is for topk and batchtopk)", k, usage);
  }
  if (architecture !== "batchtopk" || k === undefined) {
    return { architecture, k: positiveIntFlag("k", k, 1, usage, dSae) };
  }
  const value = k.trim() === "" ? NaN : Number(k);
  if (!(value > 0 && value <= dSae)) {
    fail("k", `a number above 0, at most ${dSae}, for batchtopk`, k, usage);
  }
  return { architecture, k: value };
}
