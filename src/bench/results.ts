/** The benchmark's results as plain data (what `out/bench/bench.json` holds). */
import type { BalancedTiming, TorchBalancedTiming } from "./balanced_bench.ts";
import type { MachineInfo } from "./machine.ts";
import type { Cell } from "./timing.ts";
import type { TorchVersions } from "./torch_runner.ts";

/** One row of a shape's table: M models trained together, one cell per implementation. */
export interface BenchRow {
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

/** One shape's table. */
export interface ShapeResult {
  id: string;
  title: string;
  dIn: number;
  dSae: number;
  prefixes: number[];
  batch: number;
  nFeatures: number;
  /** Parameters per SAE. */
  paramsPerModel: number;
  /** GPU buffer bytes per model that grow with M (without the kernel's scratch). */
  gpuBytesPerModel: number;
  rows: BenchRow[];
}

/** The balanced experiment end to end, and PyTorch on the same SAEs. */
export interface BalancedResult {
  /** Set when the part was skipped (`--skip-balanced`). */
  skipped?: string;
  endToEnd?: BalancedTiming;
  endToEndError?: string;
  torch?: TorchBalancedTiming;
  torchError?: string;
}

/** One speed target, what was measured and whether it is met. */
export interface TargetResult {
  target: string;
  measured: string;
  status: "met" | "NOT met" | "n/a" | "info";
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
  date: string;
  adapter: string;
  adapterIsFallback: boolean;
  machine: MachineInfo;
  /** 1-minute load average before and after the run (other work on the machine skews timings). */
  load: { start: number | null; end: number | null };
  /** PyTorch's versions, or why it was skipped. */
  torch: TorchVersions | { skipped: string };
  settings: { models: number[]; repetitions: number; repSeconds: number };
  shapes: ShapeResult[];
  balanced: BalancedResult;
  targets: TargetResult[];
}
