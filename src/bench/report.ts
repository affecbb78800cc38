/**
 * Formats a benchmark's results: the terminal table (plain text) and the same tables as Markdown
 * for README.md, with skipped cells as "n/a [k]" and their reasons listed under each table.
 */
import type { BenchResults, BenchRow, ShapeResult, TargetResult } from "./results.ts";
import type { Cell } from "./timing.ts";

/** Thousands-separated for ≥ 100, three significant digits below. */
export function formatRate(rate: number): string {
  return rate >= 100 ? Math.round(rate).toLocaleString("en-US") : rate.toPrecision(3);
}

/** A speed ratio, e.g. `12.3×`. */
export function formatRatio(ratio: number): string {
  return `${ratio.toFixed(ratio >= 100 ? 0 : ratio >= 10 ? 1 : 2)}×`;
}

const COLUMNS = [
  "M",
  "GPU SAE-steps/s",
  "CPU ref",
  "torch loop",
  "torch batched",
  "GPU/CPU",
  "GPU/torch loop",
  "GPU/torch batched",
  "GPU µs/SAE-step",
];

/** Footnotes of one table: each distinct reason or note once, numbered from 1. */
class Footnotes {
  readonly list: string[] = [];
  mark(text: string): string {
    let i = this.list.indexOf(text);
    if (i < 0) i = this.list.push(text) - 1;
    return `[${i + 1}]`;
  }
}

function cellText(cell: Cell, notes: Footnotes): string {
  if (cell.status === "na") return `n/a ${notes.mark(cell.reason)}`;
  const text = formatRate(cell.rate);
  return cell.note ? `${text} ${notes.mark(cell.note)}` : text;
}

function ratioText(a: Cell, b: Cell): string {
  return a.status === "ok" && b.status === "ok" ? formatRatio(a.rate / b.rate) : "–";
}

function rowCells(row: BenchRow, notes: Footnotes): string[] {
  return [
    String(row.models),
    cellText(row.gpu, notes),
    cellText(row.cpu, notes),
    cellText(row.torchLoop, notes),
    cellText(row.torchBatched, notes),
    ratioText(row.gpu, row.cpu),
    ratioText(row.gpu, row.torchLoop),
    ratioText(row.gpu, row.torchBatched),
    row.gpu.status === "ok" ? formatRate(1e6 / row.gpu.rate) : "–",
  ];
}

function shapeHeading(shape: ShapeResult): string {
  return `${shape.title}; ${shape.paramsPerModel.toLocaleString("en-US")} parameters per SAE`;
}

function textTable(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => cell.padStart(widths[c]!)).join("  ")).join("\n");
}

function mdTable(rows: string[][]): string {
  const [head, ...body] = rows;
  return [
    `| ${head!.join(" | ")} |`,
    `|${head!.map(() => "---:").join("|")}|`,
    ...body.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");
}

function headerLines(results: BenchResults): string[] {
  const m = results.machine;
  const torch = "skipped" in results.torch
    ? `PyTorch: skipped (${results.torch.skipped})`
    : `PyTorch ${results.torch.torch} (Python ${results.torch.python}, ${results.torch.threads} ` +
      `thread${results.torch.threads === 1 ? "" : "s"})`;
  const s = results.settings;
  const load = (v: number | null) => v === null ? "unknown" : v.toFixed(2);
  const busy = (results.load.start ?? 0) > m.cores / 2
    ? [
      `warning: the machine was busy before the run (load ${load(results.load.start)} on ` +
      `${m.cores} cores): multi-threaded timings (llvmpipe, PyTorch with several threads) suffer ` +
      `most; compare with --torch-threads 1 and rerun on an idle machine`,
    ]
    : [];
  return [
    ...busy,
    `adapter: ${results.adapter}`,
    `machine: ${m.cpu}, ${m.cores} cores, ${m.os}; 1-minute load average ` +
    `${load(results.load.start)} before the run, ${load(results.load.end)} after`,
    `versions: Deno ${m.deno} (V8 ${m.v8}, TypeScript ${m.typescript}); ${torch}`,
    `date: ${results.date}; median of ${s.repetitions} repetitions of about ${s.repSeconds} s ` +
    `each after a warm-up; rates in SAE-steps per second (models × optimiser steps per second)`,
  ];
}

const METHOD = [
  "GPU: trainToySaes on M copies of the β = 0.25 SAE, one shared data stream (batches sampled " +
  "on the GPU); each call timed end to end (setup, steps, read-back), steps per call calibrated.",
  "CPU ref: the float64 TypeScript reference (referenceTrainStep) looped over the M models, one " +
  "host-sampled batch per step shared by them.",
  "torch loop: bench/torch_sae.py, one SAE at a time as researchers do (own Adam, " +
  "clip_grad_norm_, own vectorised batch per step). torch batched: all M SAEs as [M, …] tensors " +
  "(batched matmul), one shared batch per step, gradient norm clipped per model.",
];

function balancedLines(results: BenchResults): string[] {
  const b = results.balanced;
  if (b.skipped) return [`deno task balanced: skipped (${b.skipped})`];
  const lines: string[] = [];
  if (b.endToEnd) {
    const e = b.endToEnd;
    const train = e.trainSeconds.length > 0
      ? `; training ${e.trainSeconds.map((s) => `${s.toFixed(2)} s`).join(", ")}`
      : "";
    lines.push(
      `deno task balanced (defaults: 4 SAEs × 24,415 steps, batch 128), end to end: ` +
        `${e.seconds.toFixed(2)} s (median of ${e.runs.length} run${
          e.runs.length > 1 ? "s" : ""
        }: ${e.runs.map((s) => s.toFixed(2)).join(", ")} s${train})`,
    );
  } else {
    lines.push(`deno task balanced: failed (${b.endToEndError})`);
  }
  const compile = (t: { compileSeconds?: number[] }) =>
    t.compileSeconds && t.compileSeconds.length > 0
      ? `, compiling ${t.compileSeconds.map((s) => `${s.toFixed(2)} s`).join(", ")}`
      : "";
  for (const backend of b.backends ?? []) {
    const { warm, cold } = backend;
    lines.push(
      `balanced, backend ${backend.backend}: ` +
        (warm && cold
          ? `warm ${warm.seconds.toFixed(2)} s (runs ${
            warm.runs.map((s) => s.toFixed(2)).join(", ")
          } s${compile(warm)}); empty shader cache ${cold.seconds.toFixed(2)} s${compile(cold)}; ` +
            `adapter ${warm.adapter ?? "?"}`
          : `not run (${backend.error})`),
    );
  }
  if (b.torch) {
    const t = b.torch;
    lines.push(
      `PyTorch, the same 4 SAEs one at a time: ${t.seconds.toFixed(1)} s, extrapolated from ` +
        `${t.perSae[0]?.steps.toLocaleString("en-US")} timed steps per SAE to ` +
        `${t.totalSteps.toLocaleString("en-US")} (${
          t.perSae.map((p) => `${p.name} ${(p.seconds / p.steps * 1e3).toFixed(3)} ms/step`)
            .join(", ")
        })`,
    );
    if (b.endToEnd) {
      lines.push(`speed-up over PyTorch: ${formatRatio(t.seconds / b.endToEnd.seconds)}`);
    }
  } else {
    lines.push(`PyTorch balanced: ${b.torchError ?? "skipped"}`);
  }
  return lines;
}

/** The evaluation and sweep timings, one line each. */
function endToEndLines(results: BenchResults): string[] {
  const lines: string[] = [];
  for (const e of results.evaluation ?? []) {
    lines.push(
      `evaluate() of ${e.models} notebook SAEs (two trees), ${
        e.rows.toLocaleString("en-US")
      } held-out rows each: ${e.seconds.toFixed(3)} s, ${e.msPerSae.toFixed(2)} ms per SAE`,
    );
  }
  for (const run of results.sweeps?.runs ?? []) {
    if ("error" in run) {
      lines.push(`sweep ${run.label}: failed (${run.error})`);
      continue;
    }
    const pct = (s: number) => `${(100 * s / run.seconds).toFixed(0)}%`;
    lines.push(
      `sweep ${run.label}: ${run.saes} SAEs, ${run.saeSteps.toLocaleString("en-US")} SAE-steps ` +
        `in ${run.seconds.toFixed(1)} s end to end (${
          Math.round(run.rate).toLocaleString("en-US")
        } SAE-steps/s): training ${run.training.toFixed(1)} s (${pct(run.training)}), ` +
        `evaluation ${run.evaluation.toFixed(1)} s (${pct(run.evaluation)})` +
        (run.runs.length > 1
          ? `; median of ${run.runs.length} runs (${
            run.runs.map((s) => s.toFixed(2)).join(", ")
          } s)`
          : ""),
    );
  }
  const torch = results.sweeps?.torchBatched;
  if (torch) {
    lines.push(
      `PyTorch batched, 256 notebook SAEs: ` +
        (torch.status === "ok"
          ? `${Math.round(torch.rate).toLocaleString("en-US")} SAE-steps/s`
          : `n/a (${torch.reason})`),
    );
  }
  return lines;
}

function targetRows(targets: TargetResult[]): string[][] {
  return [
    ["target", "measured", "status"],
    ...targets.map((t) => [t.target, t.measured, t.note ? `${t.status} (${t.note})` : t.status]),
  ];
}

function leftTable(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join("  ").trimEnd())
    .join("\n");
}

/**
 * The terminal report: header, one table per shape with its footnotes, balanced, targets.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatText } from "./report.ts";
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
 * const text = formatText(results);
 * assert.ok(text.startsWith("matryoshka-gpu benchmark\nadapter: llvmpipe [fallback]\n"));
 * assert.match(text, /PyTorch: skipped \(not installed\)/);
 * assert.match(text, /^balanced ≤ 5 s +not run +n\/a$/m);
 * ```
 */
export function formatText(results: BenchResults): string {
  const out = ["matryoshka-gpu benchmark", ...headerLines(results), ...METHOD, ""];
  for (const shape of results.shapes) {
    const notes = new Footnotes();
    const rows = [COLUMNS, ...shape.rows.map((row) => rowCells(row, notes))];
    out.push(shapeHeading(shape), textTable(rows));
    notes.list.forEach((n, i) => out.push(`  [${i + 1}] ${n}`));
    out.push("");
  }
  out.push(...balancedLines(results), "");
  const whole = endToEndLines(results);
  if (whole.length > 0) out.push("evaluation and sweeps", ...whole, "");
  out.push("targets", leftTable(targetRows(results.targets)));
  return out.join("\n") + "\n";
}

/**
 * The same report as Markdown (for README.md).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatMarkdown } from "./report.ts";
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
 * const markdown = formatMarkdown(results);
 * assert.ok(markdown.startsWith("## Benchmark\n\n- adapter: llvmpipe [fallback]\n"));
 * assert.match(markdown, /^\| balanced ≤ 5 s \| not run \| n\/a \|$/m);
 * ```
 */
export function formatMarkdown(results: BenchResults): string {
  const out = [
    "## Benchmark",
    "",
    ...headerLines(results).map((l) => `- ${l}`),
    ...METHOD.map((l) => `- ${l}`),
    "",
  ];
  for (const shape of results.shapes) {
    const notes = new Footnotes();
    const rows = [COLUMNS, ...shape.rows.map((row) => rowCells(row, notes))];
    out.push(`### ${shapeHeading(shape)}`, "", mdTable(rows), "");
    if (notes.list.length > 0) {
      notes.list.forEach((n, i) => out.push(`${i + 1}. ${n}`));
      out.push("");
    }
  }
  out.push("### deno task balanced", "", ...balancedLines(results).map((l) => `- ${l}`), "");
  const whole = endToEndLines(results);
  if (whole.length > 0) {
    out.push("### Evaluation and sweeps", "", ...whole.map((l) => `- ${l}`), "");
  }
  const t = targetRows(results.targets);
  out.push(
    "### Targets",
    "",
    [
      `| ${t[0]!.join(" | ")} |`,
      "|---|---|---|",
      ...t.slice(1).map((r) => `| ${r.join(" | ")} |`),
    ].join("\n"),
    "",
  );
  return out.join("\n");
}
