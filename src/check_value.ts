/**
 * Range checks of numeric settings, in one wording wherever a setting is checked (library
 * options, CLI flags, seeds): `Invalid FIELD: expected an integer from MIN to MAX, got VALUE`.
 * Callers choose the error class (a `RangeError` by default; the CLI's `UsageError`, the sweep's
 * `SweepAxisError`), so the exit status stays theirs.
 */

/** An error class the checks can throw (constructed with the message). */
export type ErrorClass = new (message: string) => Error;

/**
 * What an integer setting must be, in words: `an integer from MIN to MAX`, or `an integer ≥ MIN`
 * without a maximum.
 */
export function integerRange(min: number, max?: number): string {
  return max === undefined ? `an integer ≥ ${min}` : `an integer from ${min} to ${max}`;
}

/** Whether `value` is a safe integer in `[min, max]` (no maximum when `max` is undefined). */
export function isIntegerIn(value: unknown, min: number, max?: number): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= min &&
    (max === undefined || value <= max);
}

/**
 * `value` if it is an integer from `min` to `max`; otherwise an error naming `field`.
 *
 * @example
 * ```ts
 * import { checkInteger } from "./check_value.ts";
 * checkInteger("steps", 100, 1, 2 ** 31 - 1); // 100
 * ```
 */
export function checkInteger(
  field: string,
  value: number,
  min: number,
  max?: number,
  Err: ErrorClass = RangeError,
): number {
  if (!isIntegerIn(value, min, max)) {
    throw new Err(`Invalid ${field}: expected ${integerRange(min, max)}, got ${value}`);
  }
  return value;
}

/** `value` if it is a finite number ≥ 0; otherwise an error naming `field`. */
export function checkNonNegative(
  field: string,
  value: number,
  Err: ErrorClass = RangeError,
): number {
  if (!Number.isFinite(value) || value < 0) {
    throw new Err(`Invalid ${field}: expected a finite number ≥ 0, got ${value}`);
  }
  return value;
}
