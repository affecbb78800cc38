/**
 * The speed targets of issue 7, checked against a benchmark's results: the balanced experiment
 * end to end in ≤ 5 s and ≥ 14× faster than PyTorch on the same SAEs; ≥ 100,000 SAE-steps/s at
 * M = 256 on the notebook's shape on the CPU adapter; cost linear in M once the device is full;
 * memory O(M · parameters).
 */
import type { BenchResults, ShapeResult, TargetResult } from "./results.ts";
import type { Cell } from "./timing.ts";

/** The balanced experiment's end-to-end budget, seconds. */
export const BALANCED_MAX_SECONDS = 5;
/** How much faster than PyTorch the balanced experiment must be. */
export const BALANCED_MIN_SPEEDUP = 14;
/** SAE-steps per second required at {@link THROUGHPUT_MODELS} models on the notebook's shape. */
export const THROUGHPUT_MIN_RATE = 100_000;
/** The model count of the throughput target. */
export const THROUGHPUT_MODELS = 256;
/**
 * Linear growth: time per SAE-step at the largest M measured may exceed its minimum over all M
 * by at most this factor.
 */
export const LINEAR_TOLERANCE = 1.25;

const status = (ok: boolean): TargetResult["status"] => ok ? "met" : "NOT met";
const seconds = (s: number) => `${s.toFixed(s < 10 ? 2 : 1)} s`;
const rate = (r: number) => Math.round(r).toLocaleString("en-US");

function rateOf(cell: Cell | undefined): number | null {
  return cell?.status === "ok" ? cell.rate : null;
}

function linearTarget(shape: ShapeResult): TargetResult {
  const target = `${shape.id}: GPU time per SAE-step at the largest M ≤ ${LINEAR_TOLERANCE} × ` +
    `its minimum over M (cost linear in M once the device is full)`;
  const measured = shape.rows
    .map((row) => ({ models: row.models, rate: rateOf(row.gpu) }))
    .filter((r): r is { models: number; rate: number } => r.rate !== null);
  if (measured.length < 2) {
    return { target, measured: "fewer than 2 GPU cells", status: "n/a" };
  }
  const us = measured.map((r) => ({ models: r.models, us: 1e6 / r.rate }));
  const best = us.reduce((a, b) => (b.us < a.us ? b : a));
  const last = us[us.length - 1]!;
  return {
    target,
    measured: `${last.us.toPrecision(3)} µs at M = ${last.models}, min ${
      best.us.toPrecision(3)
    } µs at M = ${best.models}`,
    status: status(last.us <= LINEAR_TOLERANCE * best.us),
  };
}

/** Every target with its measured value and status. */
export function evaluateTargets(results: Omit<BenchResults, "targets">): TargetResult[] {
  const targets: TargetResult[] = [];
  const { endToEnd, torch } = results.balanced;
  const e2eTarget = `deno task balanced end to end ≤ ${BALANCED_MAX_SECONDS} s`;
  const speedTarget = `deno task balanced ≥ ${BALANCED_MIN_SPEEDUP}× faster than PyTorch ` +
    `(the same 4 SAEs, one at a time)`;
  if (endToEnd) {
    targets.push({
      target: e2eTarget,
      measured: seconds(endToEnd.seconds),
      status: status(endToEnd.seconds <= BALANCED_MAX_SECONDS),
    });
  } else {
    targets.push({ target: e2eTarget, measured: "not run", status: "n/a" });
  }
  if (endToEnd && torch) {
    const speedup = torch.seconds / endToEnd.seconds;
    targets.push({
      target: speedTarget,
      measured: `${speedup.toFixed(2)}× (${seconds(torch.seconds)} vs ${
        seconds(endToEnd.seconds)
      })`,
      status: status(speedup >= BALANCED_MIN_SPEEDUP),
    });
  } else {
    targets.push({ target: speedTarget, measured: "not run", status: "n/a" });
  }

  const notebook = results.shapes.find((s) => s.id === "notebook");
  const throughputTarget = `≥ ${rate(THROUGHPUT_MIN_RATE)} SAE-steps/s at M = ` +
    `${THROUGHPUT_MODELS}, notebook shape, CPU adapter`;
  const cell = notebook?.rows.find((r) => r.models === THROUGHPUT_MODELS)?.gpu;
  const measured = rateOf(cell);
  if (measured === null) {
    targets.push({
      target: throughputTarget,
      measured: cell?.status === "na" ? `n/a (${cell.reason})` : "not run",
      status: "n/a",
    });
  } else {
    targets.push({
      target: throughputTarget,
      measured: rate(measured),
      status: status(measured >= THROUGHPUT_MIN_RATE),
      ...(results.adapterIsFallback ? {} : { note: "measured on a hardware adapter" }),
    });
  }

  for (const shape of results.shapes) targets.push(linearTarget(shape));

  for (const shape of results.shapes) {
    targets.push({
      target: `${shape.id}: memory O(M · parameters), no allocation per step`,
      measured: `${shape.gpuBytesPerModel.toLocaleString("en-US")} B per model + scratch`,
      status: "info",
      note: "from the buffer sizes: 4 B × parameters × 4 (parameters, gradient, Adam m, v) + " +
        "the loss record; the kernel's scratch is not counted",
    });
  }
  return targets;
}
