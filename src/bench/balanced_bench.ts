/**
 * The end-to-end part of the benchmark: the wall time of `deno task balanced` at its default
 * settings (run as a subprocess: Deno start-up, toy model, kernel compilation, training, figures
 * and files) on each backend, with Mesa's shader cache warm and empty (a fresh machine), and the
 * same SAEs trained in PyTorch one at a time as the notebook does, timed over a few thousand steps
 * each and extrapolated to the full schedule.
 */
import { initSaeToMatchModel } from "../sae/init.ts";
import { MatryoshkaSAE } from "../sae/sae.ts";
import type { SaeConfig } from "../sae/config.ts";
import type { TreeFeatureGenerator } from "../toy/tree.ts";
import { median } from "./timing.ts";
import { type TorchRunner, torchSae, torchWorld } from "./torch_runner.ts";

/**
 * The end-to-end time of the balanced experiment.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { BalancedTiming } from "./balanced_bench.ts";
 * import { median } from "./timing.ts";
 * const runs = [2.7, 2.4, 2.5];
 * const timing: BalancedTiming = {
 *   seconds: median(runs),
 *   runs,
 *   trainSeconds: [2.1, 1.9, 2.0],
 *   command: "deno run -A experiments/balanced.ts --quiet --out /tmp/bench_balanced_x/balanced",
 * };
 * assert.equal(timing.seconds, 2.5);
 * ```
 */
export interface BalancedTiming {
  /** Median wall time of the subprocess, seconds. */
  seconds: number;
  /** Wall time of each run, seconds. */
  runs: number[];
  /** The training time the experiment printed, per run (when it printed one), seconds. */
  trainSeconds: number[];
  /** The kernels' compilation time the experiment printed, per run, seconds. */
  compileSeconds?: number[];
  /** The adapter line the experiment printed (its backend and why). */
  adapter?: string;
  /** The command line that was timed (`deno run -A <script> --quiet --out <folder>`). */
  command: string;
}

/** Deno's cache folder (`DENO_DIR`), kept when a cold run empties the other caches. */
async function denoDir(): Promise<string> {
  const fromEnv = Deno.env.get("DENO_DIR");
  if (fromEnv) return fromEnv;
  const info = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json"],
    stdout: "piped",
    stderr: "null",
  }).output();
  return JSON.parse(new TextDecoder().decode(info.stdout)).denoDir;
}

/** How to run the experiment: its environment and whether Mesa's shader cache starts empty. */
export interface BalancedRunSettings {
  /** Timed runs (default 3; one when a run takes `repeatBelowSeconds` or more, default 15). */
  repetitions?: number;
  /** Runs this long or longer are not repeated (default 15 s). */
  repeatBelowSeconds?: number;
  /** Extra environment variables (e.g. `DENO_WEBGPU_BACKEND`). */
  env?: Record<string, string>;
  /**
   * Each run with an empty shader cache, as on a fresh machine: `XDG_CACHE_HOME` and
   * `MESA_SHADER_CACHE_DIR` in a new temporary folder (Deno's own cache kept). Otherwise one
   * untimed run first fills the cache.
   */
  cold?: boolean;
}

/**
 * Runs `deno run -A <script> --quiet --out <temporary folder>` and times it; repeats up to
 * `repetitions` times when a run takes under `repeatBelowSeconds` (else one run).
 *
 * @throws {Error} with the tail of its stderr when the experiment fails.
 */
export async function timeBalancedEndToEnd(
  script: string,
  { repetitions = 3, repeatBelowSeconds = 15, env = {}, cold = false }: BalancedRunSettings = {},
): Promise<BalancedTiming> {
  const deno = Deno.execPath();
  const runs: number[] = [];
  const trainSeconds: number[] = [];
  const compileSeconds: number[] = [];
  let adapter: string | undefined;
  const out = await Deno.makeTempDir({ prefix: "bench_balanced_" });
  const args = ["run", "-A", script, "--quiet", "--out", `${out}/balanced`];
  const keptDenoDir = cold ? await denoDir() : "";
  const runOnce = async (r: number) => {
    const cache = `${out}/cache-${r}`;
    const runEnv = cold
      ? {
        ...env,
        XDG_CACHE_HOME: cache,
        MESA_SHADER_CACHE_DIR: `${cache}/mesa`,
        DENO_DIR: keptDenoDir,
      }
      : env;
    return await new Deno.Command(deno, { args, env: runEnv, stdout: "piped", stderr: "piped" })
      .output();
  };
  try {
    if (!cold) await runOnce(-1);
    for (let r = 0; r < repetitions; r++) {
      const start = performance.now();
      const result = await runOnce(r);
      const seconds = (performance.now() - start) / 1000;
      const stdout = new TextDecoder().decode(result.stdout);
      if (!result.success) {
        const stderr = new TextDecoder().decode(result.stderr).trim().split("\n").slice(-3);
        throw new Error(`deno task balanced failed (exit ${result.code}): ${stderr.join(" / ")}`);
      }
      runs.push(seconds);
      const trained = stdout.match(/trained \d+ SAEs × \d+ steps in ([\d.]+) s/);
      if (trained) trainSeconds.push(Number(trained[1]));
      const compiled = stdout.match(/compiling the training kernels… ([\d.]+) s/);
      if (compiled) compileSeconds.push(Number(compiled[1]));
      adapter ??= stdout.match(/^adapter: (.*)$/m)?.[1];
      if (seconds >= repeatBelowSeconds) break;
    }
  } finally {
    await Deno.remove(out, { recursive: true });
  }
  const vars = Object.entries(env).map(([k, v]) => `${k}=${v} `).join("");
  const command = `${vars}${cold ? "(empty shader cache) " : ""}deno ${args.join(" ")}`;
  return {
    seconds: median(runs),
    runs,
    trainSeconds,
    compileSeconds,
    ...(adapter ? { adapter } : {}),
    command,
  };
}

/**
 * The backends the benchmark times `balanced` on: Deno's first adapter (`auto`, see
 * `src/gpu/device.ts`), then each named through `DENO_WEBGPU_BACKEND`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BALANCED_BACKENDS } from "./balanced_bench.ts";
 * assert.deepEqual(BALANCED_BACKENDS.map((b) => b.backend), ["auto", "gl", "vulkan"]);
 * ```
 */
export const BALANCED_BACKENDS: readonly { backend: string; env: Record<string, string> }[] = [
  { backend: "auto", env: {} },
  { backend: "gl", env: { DENO_WEBGPU_BACKEND: "gl" } },
  { backend: "vulkan", env: { DENO_WEBGPU_BACKEND: "vulkan" } },
];

/**
 * `balanced` on one backend, warm and cold.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { BackendBalanced } from "./balanced_bench.ts";
 * const none: BackendBalanced = { backend: "vulkan", error: "No WebGPU adapter" };
 * assert.equal(none.warm, undefined);
 * ```
 */
export interface BackendBalanced {
  /** `auto` (Deno's first adapter), `gl` or `vulkan`. */
  backend: string;
  /** With Mesa's shader cache filled by an untimed run first. */
  warm?: BalancedTiming;
  /** With an empty shader cache (a fresh machine). */
  cold?: BalancedTiming;
  /** Why the backend could not be timed. */
  error?: string;
}

/** Times `balanced` warm (`repetitions` runs) and cold (one run) on `backend`. */
export async function timeBalancedOnBackend(
  script: string,
  backend: { backend: string; env: Record<string, string> },
  repetitions: number,
): Promise<BackendBalanced> {
  try {
    const warm = await timeBalancedEndToEnd(script, { repetitions, env: backend.env });
    const cold = await timeBalancedEndToEnd(script, {
      repetitions: 1,
      env: backend.env,
      cold: true,
    });
    return { backend: backend.backend, warm, cold };
  } catch (error) {
    return {
      backend: backend.backend,
      error: error instanceof Error ? error.message : String(error),
    };
  }
}

/**
 * One SAE of the notebook, ready to train.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { BalancedSae } from "./balanced_bench.ts";
 * import { torchSae } from "./torch_runner.ts";
 * import { NOTEBOOK_SAE_CONFIG } from "../sae/config.ts";
 * import { NOTEBOOK_SAES } from "../sae/notebook_saes.ts";
 * import { balancedTree, unbalancedTree } from "../toy/notebook_trees.ts";
 * const saes: BalancedSae[] = NOTEBOOK_SAES.map((spec) => ({
 *   name: spec.name,
 *   tree: spec.tree === "balanced" ? balancedTree() : unbalancedTree(),
 *   config: { ...NOTEBOOK_SAE_CONFIG, ...spec.config },
 * }));
 * assert.deepEqual(saes.map((s) => torchSae(s.config).dSae), [4, 4, 4, 4]); // as sent to PyTorch
 * ```
 */
export interface BalancedSae {
  /** Its name (`detached`, `standard`, `balanced`, `unbalanceable`), as in PyTorch's timings. */
  name: string;
  /** The tree its batches are sampled from. */
  tree: TreeFeatureGenerator;
  /** The complete configuration (the notebook's shared one with this SAE's overrides). */
  config: SaeConfig;
}

/**
 * PyTorch's time for the notebook's SAEs, one at a time.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { TorchBalancedTiming } from "./balanced_bench.ts";
 * const totalSteps = 24_415;
 * const perSae = [
 *   { name: "standard", steps: 2_000, seconds: 4 },
 *   { name: "balanced", steps: 2_000, seconds: 6 },
 * ].map((p) => ({ ...p, extrapolated: p.seconds / p.steps * totalSteps }));
 * const timing: TorchBalancedTiming = {
 *   seconds: perSae.reduce((s, p) => s + p.extrapolated, 0),
 *   perSae,
 *   totalSteps,
 * };
 * assert.equal(timing.seconds, 10 / 2_000 * 24_415); // 122.075 s for both SAEs
 * ```
 */
export interface TorchBalancedTiming {
  /** Extrapolated seconds for all SAEs at `totalSteps` each. */
  seconds: number;
  /**
   * Each SAE in order: `steps` timed (after 50 warm-up steps) in `seconds`, and the
   * `extrapolated` seconds for `totalSteps` steps.
   */
  perSae: { name: string; steps: number; seconds: number; extrapolated: number }[];
  /** Steps per SAE the times are extrapolated to (the experiment's, the published 24,415). */
  totalSteps: number;
}

/**
 * Times each SAE in torch_sae.py for `timedSteps` steps (after a warm-up), one after another as
 * the notebook trains them, initialised as the experiment does (`initSaeToMatchModel`, no noise),
 * and extrapolates each to `totalSteps`.
 */
export async function timeTorchBalanced(
  runner: TorchRunner,
  saes: readonly BalancedSae[],
  embedding: Float32Array,
  { timedSteps, totalSteps, batch = 128 }: {
    timedSteps: number;
    totalSteps: number;
    batch?: number;
  },
): Promise<TorchBalancedTiming> {
  const perSae: TorchBalancedTiming["perSae"] = [];
  for (const spec of saes) {
    const sae = new MatryoshkaSAE(spec.config);
    initSaeToMatchModel(sae, { embedding, nFeatures: spec.tree.nFeatures }, { noiseLevel: 0 });
    const response = await runner.request<{ seconds: number; steps: number }>({
      task: "steps",
      world: torchWorld(spec.tree, embedding, spec.config.dIn),
      sae: torchSae(spec.config),
      batch,
      steps: timedSteps,
      warmupSteps: 50,
      initParams: Array.from(sae.params),
      seed: 0,
    });
    perSae.push({
      name: spec.name,
      steps: response.steps,
      seconds: response.seconds,
      extrapolated: response.seconds / response.steps * totalSteps,
    });
  }
  return { seconds: perSae.reduce((s, p) => s + p.extrapolated, 0), perSae, totalSteps };
}
