/**
 * Wraps a command-line entry point so that expected failures print one clear message instead of a
 * stack trace. An expected failure is any error that carries a numeric `exitCode`: no GPU
 * ({@link GpuUnavailableError}, exit 1), bad input ({@link UsageError} and the library's own
 * refusals: sweep settings and folders, output folders, limits; exit 2), an output that could not
 * be written (exit 1). Anything else is a bug and keeps its stack trace.
 */
import { GpuUnavailableError } from "../gpu/device.ts";
// Commands choose llvmpipe through GL on Linux machines without a GPU (see the module).
import "../gpu/backend_choice.ts";

/**
 * A bad command line or bad input: printed without a stack trace by {@link runMain}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { expectedExitCode, UsageError } from "./run_main.ts";
 * const error = new UsageError("Cannot parse --steps: expected a positive integer, got \"x\"");
 * assert.equal(error.exitCode, 2);
 * assert.equal(error.name, "UsageError");
 * assert.equal(expectedExitCode(error), 2); // runMain would print the message and exit with 2
 * ```
 */
export class UsageError extends Error {
  /** Always `"UsageError"`. */
  override name = "UsageError";
  /** Exit status of a command that stops on this error. */
  readonly exitCode = 2;
}

/** The exit status an expected failure asks for, or null for an unexpected error (a bug). */
export function expectedExitCode(error: unknown): number | null {
  if (error instanceof GpuUnavailableError) return 1;
  if (!(error instanceof Error)) return null;
  const code = (error as { exitCode?: unknown }).exitCode;
  return typeof code === "number" && Number.isInteger(code) && code > 0 ? code : null;
}

/**
 * Runs `main`, turning the expected failures into their message on stderr and a non-zero exit.
 * `main` may set `Deno.exitCode` to report an outcome (e.g. a diverged SAE) after a normal end.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runMain } from "./run_main.ts";
 * let ran = false;
 * await runMain(async () => {
 *   ran = true;
 * });
 * assert.ok(ran);
 * // An error without an exit code is a bug: it is rethrown with its stack trace, not exited on.
 * await assert.rejects(runMain(() => Promise.reject(new TypeError("bug"))), TypeError);
 * ```
 */
export async function runMain(main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (error) {
    const code = expectedExitCode(error);
    if (code === null) throw error;
    console.error((error as Error).message);
    Deno.exit(code);
  }
}

/**
 * After an experiment that trained several SAEs: when some diverged, says how many and where they
 * are recorded (`<out>/results.json` and their `cfg.json`, then `hint`) on stderr and sets the
 * exit status 3; otherwise does nothing.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { reportDivergence } from "./run_main.ts";
 * reportDivergence([{ diverged: null }], "out/x"); // nothing diverged: nothing said
 * assert.equal(Deno.exitCode, 0);
 * ```
 */
export function reportDivergence(
  runs: readonly { diverged: unknown }[],
  out: string,
  hint = "",
): void {
  const diverged = runs.filter((r) => r.diverged).length;
  if (diverged === 0) return;
  console.error(
    `error: ${diverged} of ${runs.length} SAEs diverged (recorded in ${out}/results.json and ` +
      `their cfg.json)${hint}`,
  );
  Deno.exitCode = 3;
}
