/**
 * `--shard auto`: this process's shard of a sweep from the job scheduler's environment — a Slurm
 * job array (`SLURM_ARRAY_TASK_ID`, `SLURM_ARRAY_TASK_COUNT`, with `SLURM_ARRAY_TASK_MIN` and
 * `SLURM_ARRAY_TASK_STEP` when the array does not start at 0 or steps by more than 1) or a
 * Kubernetes Indexed Job (`JOB_COMPLETION_INDEX`; the count, which Kubernetes does not put in the
 * environment, from `--shard-count`). Plain data in, a {@link Shard} out: the command line passes
 * `Deno.env.get`.
 */
import { checkShard, type Shard, SweepAxisError } from "./axes.ts";

/**
 * Reads one environment variable (undefined when unset).
 *
 * @example
 * ```ts
 * import type { EnvReader } from "./shard_env.ts";
 * const env: EnvReader = (name) => ({ JOB_COMPLETION_INDEX: "3" } as Record<string, string>)[name];
 * console.assert(env("JOB_COMPLETION_INDEX") === "3" && env("HOME") === undefined);
 * ```
 */
export type EnvReader = (name: string) => string | undefined;

/**
 * The environment variables `--shard auto` reads, Slurm's first.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SHARD_ENV } from "./shard_env.ts";
 * assert.equal(SHARD_ENV.kubernetesIndex, "JOB_COMPLETION_INDEX");
 * ```
 */
export const SHARD_ENV: Readonly<{
  slurmId: "SLURM_ARRAY_TASK_ID";
  slurmCount: "SLURM_ARRAY_TASK_COUNT";
  slurmMin: "SLURM_ARRAY_TASK_MIN";
  slurmStep: "SLURM_ARRAY_TASK_STEP";
  kubernetesIndex: "JOB_COMPLETION_INDEX";
}> = Object.freeze({
  slurmId: "SLURM_ARRAY_TASK_ID",
  slurmCount: "SLURM_ARRAY_TASK_COUNT",
  slurmMin: "SLURM_ARRAY_TASK_MIN",
  slurmStep: "SLURM_ARRAY_TASK_STEP",
  kubernetesIndex: "JOB_COMPLETION_INDEX",
});

const USE = `${SHARD_ENV.slurmId} and ${SHARD_ENV.slurmCount} (a Slurm job array) or ` +
  `${SHARD_ENV.kubernetesIndex} with --shard-count (a Kubernetes Indexed Job)`;

function refuse(what: string, expected: string, got: string): never {
  throw new SweepAxisError(`Invalid ${what}: expected ${expected}, got ${got}`);
}

/** A non-negative integer from an environment variable or flag, else a one-line refusal. */
function integer(what: string, text: string | undefined, min: number): number {
  const value = text === undefined || text.trim() === "" ? NaN : Number(text);
  if (!Number.isSafeInteger(value) || value < min) {
    refuse(what, `an integer ≥ ${min}`, text === undefined ? "nothing" : `"${text}"`);
  }
  return value;
}

/**
 * The shard of `--shard auto`. In a Slurm array the shard is the task's position in the array
 * (`(ID − MIN) / STEP`) of `SLURM_ARRAY_TASK_COUNT`; an array with gaps (`--array=0,2,5`) is
 * refused, since its positions do not follow from the environment. In an Indexed Job it is
 * `JOB_COMPLETION_INDEX` of `count` (`--shard-count`, which must then be given; with Slurm it is
 * optional and must agree).
 *
 * @param env reads the environment (e.g. `(name) => Deno.env.get(name)`).
 * @param count `--shard-count`, when given.
 * @throws {SweepAxisError} naming the variable or flag when neither scheduler's variables are set
 *   or a value is not a shard of the array.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { shardFromEnv } from "./shard_env.ts";
 * const slurm = { SLURM_ARRAY_TASK_ID: "5", SLURM_ARRAY_TASK_COUNT: "4", SLURM_ARRAY_TASK_MIN: "2" };
 * assert.deepEqual(shardFromEnv((name) => slurm[name as keyof typeof slurm]), { index: 3, count: 4 });
 * const job = { JOB_COMPLETION_INDEX: "1" };
 * assert.deepEqual(shardFromEnv((name) => job[name as keyof typeof job], 8), { index: 1, count: 8 });
 * assert.throws(() => shardFromEnv(() => undefined), /^SweepAxisError: Invalid --shard auto/);
 * ```
 */
export function shardFromEnv(env: EnvReader, count?: number): Shard {
  if (count !== undefined) integer("--shard-count", String(count), 1);
  const slurmId = env(SHARD_ENV.slurmId);
  if (slurmId !== undefined) {
    const id = integer(SHARD_ENV.slurmId, slurmId, 0);
    const total = integer(SHARD_ENV.slurmCount, env(SHARD_ENV.slurmCount), 1);
    const min = integer(SHARD_ENV.slurmMin, env(SHARD_ENV.slurmMin) ?? "0", 0);
    const step = integer(SHARD_ENV.slurmStep, env(SHARD_ENV.slurmStep) ?? "1", 1);
    const index = (id - min) / step;
    if (!Number.isSafeInteger(index) || index < 0 || index >= total) {
      refuse(
        SHARD_ENV.slurmId,
        `a task of an evenly spaced array (MIN + k·STEP with 0 ≤ k < ${total}, MIN ${min}, ` +
          `STEP ${step}; give --shard i/n for an array with gaps)`,
        `"${slurmId}"`,
      );
    }
    if (count !== undefined && count !== total) {
      refuse("--shard-count", `${SHARD_ENV.slurmCount} (${total}) or nothing`, String(count));
    }
    return checkShard({ index, count: total });
  }
  const jobIndex = env(SHARD_ENV.kubernetesIndex);
  if (jobIndex !== undefined) {
    const index = integer(SHARD_ENV.kubernetesIndex, jobIndex, 0);
    if (count === undefined) {
      refuse(
        "--shard-count",
        `the Indexed Job's completions with ${SHARD_ENV.kubernetesIndex}`,
        "nothing",
      );
    }
    if (index >= count) {
      refuse(SHARD_ENV.kubernetesIndex, `an index below --shard-count (${count})`, `"${jobIndex}"`);
    }
    return checkShard({ index, count });
  }
  return refuse("--shard auto", USE, "neither set");
}
