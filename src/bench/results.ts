/** The benchmark's results as plain data (what `out/bench/bench.json` holds). */
import type { BackendBalanced, BalancedTiming, TorchBalancedTiming } from "./balanced_bench.ts";
import type { EvalTiming, SweepTiming } from "./end_to_end_bench.ts";
import type { MachineInfo } from "./machine.ts";
import type { Cell } from "./timing.ts";
import type { TorchVersions } from "./torch_runner.ts";

/**
 * One row of a shape's table: M models trained together, one cell per implementation.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { BenchRow } from "./results.ts";
 * import { measuredCell, skippedCell } from "./timing.ts";
 * const row: BenchRow = {
 *   models: 2,
 *   gpu: measuredCell([{ saeSteps: 2_000, seconds: 0.5 }]),
 *   cpu: measuredCell([{ saeSteps: 200, seconds: 0.5 }]),
 *   torchLoop: skippedCell("PyTorch skipped: not installed"),
 *   torchBatched: skippedCell("PyTorch skipped: not installed"),
 * };
 * assert.equal(row.gpu.status === "ok" ? row.gpu.rate : 0, 4_000); // SAE-steps per second
 * ```
 */
export interface BenchRow {
  /** M: how many models were trained together in this row. */
  models: number;
  /** `trainToySaes` on the WebGPU adapter. */
  gpu: Cell;
  /** `referenceTrainStep` (float64 TypeScript) in a loop over the models. */
  cpu: Cell;
  /** torch_sae.py, one SAE at a time. */
  torchLoop: Cell;
  /** torch_sae.py, all M SAEs as stacked tensors. */
  torchBatched: Cell;
}

/**
 * One shape's table.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ShapeResult } from "./results.ts";
 * import { paramLayout } from "../sae/layout.ts";
 * import { gpuBytesPerModel } from "./gpu_column.ts";
 * const shape: ShapeResult = {
 *   id: "tiny",
 *   title: "tiny: d_in 8, d_sae 4, prefixes [1, 4], batch 16",
 *   dIn: 8,
 *   dSae: 4,
 *   prefixes: [1, 4],
 *   batch: 16,
 *   nFeatures: 4,
 *   paramsPerModel: paramLayout(8, 4).size,
 *   gpuBytesPerModel: gpuBytesPerModel(8, 4),
 *   rows: [], // one BenchRow per model count M
 * };
 * assert.equal(shape.paramsPerModel, 8 * 4 + 4 + 4 * 8 + 8); // W_enc, b_enc, W_dec, b_dec
 * assert.ok(shape.gpuBytesPerModel > 4 * 4 * shape.paramsPerModel); // f32 params, grad, m, v
 * ```
 */
export interface ShapeResult {
  /** The shape's short key (`notebook`, `large`), as in `BenchShape.id`. */
  id: string;
  /** One line describing the shape, the table's heading. */
  title: string;
  /** Input width of the SAEs (the toy model's hidden dimension). */
  dIn: number;
  /** Latents per SAE. */
  dSae: number;
  /** Matryoshka prefix ends. */
  prefixes: number[];
  /** Samples per training step. */
  batch: number;
  /** True features of the shape's tree (its read-out nodes). */
  nFeatures: number;
  /** Parameters per SAE. */
  paramsPerModel: number;
  /** GPU buffer bytes per model that grow with M (without the kernel's scratch). */
  gpuBytesPerModel: number;
  /** One row per model count M, in the order of `BenchResults.settings.models`. */
  rows: BenchRow[];
}

/**
 * The balanced experiment end to end, and PyTorch on the same SAEs.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { BalancedResult } from "./results.ts";
 * const balanced: BalancedResult = {
 *   endToEnd: {
 *     seconds: 2.5,
 *     runs: [2.4, 2.5, 2.7],
 *     trainSeconds: [1.9, 2.0, 2.1],
 *     command: "deno run -A experiments/balanced.ts --quiet --out /tmp/bench_balanced_x/balanced",
 *   },
 *   torchError: "PyTorch skipped: not installed",
 * };
 * assert.equal(balanced.torch, undefined); // no speed-up without PyTorch's time
 * assert.equal(balanced.endToEnd?.seconds, 2.5);
 * ```
 */
export interface BalancedResult {
  /** Set when the part was skipped (`--skip-balanced`). */
  skipped?: string;
  /** The wall time of `deno task balanced` (absent when it was skipped or failed). */
  endToEnd?: BalancedTiming;
  /** `balanced` on each backend, warm and with an empty shader cache. */
  backends?: BackendBalanced[];
  /** Why the end-to-end run failed: its error message. */
  endToEndError?: string;
  /** PyTorch's extrapolated time for the same SAEs (absent when skipped or failed). */
  torch?: TorchBalancedTiming;
  /** Why {@link BalancedResult.torch} is missing: `PyTorch skipped: …` or the error message. */
  torchError?: string;
}

/**
 * One speed target, what was measured and whether it is met.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { TargetResult } from "./results.ts";
 * import { BALANCED_MAX_SECONDS } from "./targets.ts";
 * const e2e = `deno task balanced end to end ≤ ${BALANCED_MAX_SECONDS} s`;
 * const targets: TargetResult[] = [
 *   { target: e2e, measured: "2.50 s", status: "met" },
 *   { target: "notebook: memory O(M · params)", measured: "7,344 B per model", status: "info" },
 * ];
 * const failed = targets.filter((t) => t.status === "NOT met");
 * assert.equal(failed.length, 0);
 * ```
 */
export interface TargetResult {
  /** The target in words, e.g. `deno task balanced end to end ≤ 5 s`. */
  target: string;
  /** What this run measured, formatted for the table (e.g. `2.50 s`), or `not run`. */
  measured: string;
  /**
   * `met` or `NOT met`; `n/a` when it could not be measured; `info` for a figure that is
   * reported, not judged.
   */
  status: "met" | "NOT met" | "n/a" | "info";
  /** A caveat printed with it (e.g. `measured on a hardware adapter`). */
  note?: string;
}

/**
 * Everything one benchmark run measured.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { BenchResults } from "./results.ts";
 * const results: BenchResults = {
 *   date: "2025-01-01T00:00:00.000Z",
 *   adapter: "llvmpipe [fallback]",
 *   adapterIsFallback: true,
 *   machine: { cpu: "unknown", cores: 2, os: "linux x86_64", deno: "2", v8: "1", typescript: "5" },
 *   load: { start: null, end: null },
 *   torch: { skipped: "not installed" },
 *   settings: { models: [1], repetitions: 1, repSeconds: 1 },
 *   shapes: [],
 *   balanced: { skipped: "--skip-balanced" },
 *   targets: [{ target: "balanced ≤ 5 s", measured: "not run", status: "n/a" }],
 * };
 * assert.deepEqual(JSON.parse(JSON.stringify(results)), results); // plain data, as in bench.json
 * ```
 */
export interface BenchResults {
  /** When the run started (ISO 8601). */
  date: string;
  /** The adapter, as `describeAdapter` prints it. */
  adapter: string;
  /** Whether the adapter is a software (CPU) one. */
  adapterIsFallback: boolean;
  /** The machine's CPU model, core count, OS and runtime versions. */
  machine: MachineInfo;
  /** 1-minute load average before and after the run (other work on the machine skews timings). */
  load: { start: number | null; end: number | null };
  /** PyTorch's versions, or why it was skipped. */
  torch: TorchVersions | { skipped: string };
  /** Model counts, repetitions per cell and seconds per repetition. */
  settings: { models: number[]; repetitions: number; repSeconds: number };
  /** One table per shape. */
  shapes: ShapeResult[];
  /** `deno task balanced` against its PyTorch twin, or why it was skipped. */
  balanced: BalancedResult;
  /** `evaluate()` of many SAEs at once (absent when not run). */
  evaluation?: EvalTiming[];
  /** `deno task sweep` end to end (absent when not run). */
  sweeps?: SweepsResult;
  /** The speed targets and whether this run met them. */
  targets: TargetResult[];
}

/**
 * The sweeps end to end, beside batched PyTorch training as many SAEs.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { SweepsResult } from "./results.ts";
 * const sweeps: SweepsResult = { runs: [{ label: "default", error: "no adapter" }] };
 * assert.equal(sweeps.torchBatched, undefined);
 * ```
 */
export interface SweepsResult {
  /** Each sweep's timing, or its error. */
  runs: (SweepTiming | { label: string; error: string })[];
  /** Batched PyTorch training 256 notebook SAEs (SAE-steps per second), when measured. */
  torchBatched?: Cell;
}
