/**
 * `deno task map`: "is it always possible to balance?" over a plane of worlds — sweeps two world
 * parameters of the notebook's tree family on a grid (src/sweep/balance_map.ts), trains every
 * cell's SAEs over β × seeds in one sweep, and draws where a β balances hedging and absorption.
 * This file only parses the command line.
 */
import { parseArgs } from "node:util";
import {
  type BalanceMapOptions,
  DEFAULT_REFINE,
  DEFAULT_TOLERANCE,
  figureFormatsFlag,
  MAP_DEFAULTS,
  type MapParameter,
  MAX_BATCH_SIZE,
  MAX_MAP_CELLS,
  MAX_REFINE,
  MAX_SEED,
  MAX_STEPS,
  parseBetas,
  parseMapAxis,
  parseMapFixed,
  PUBLISHED_STEPS,
  runBalanceMap,
  runMain,
  UsageError,
} from "../mod.ts";

const USAGE = `Usage: deno task map --x PARAMETER=VALUES --y PARAMETER=VALUES [options]

Sweeps two world parameters of the notebook's tree (a parent with read-out children and one
p = 0.55 child that is not read out) on a grid: every cell is one tree, all cells' SAEs are trained
over β × seeds in one sweep, and each cell gets β* (the β minimising latent 0's largest |encoder
cos sim with a child|), that residual, and the verdict balanceable (residual < --tolerance).
Writes map.csv, map.json, map_beta_star and map_residual (figures) and the sweep folder sweep/.

The map:
  --x PARAMETER=VALUES  the axis across; VALUES is FROM:TO:N (N evenly spaced values, both ends
                        included, e.g. child-1=0.02:0.5:8) or a list (child-1=0.02,0.05,0.1)
  --y PARAMETER=VALUES  the axis up, same form, another parameter
  --fix PARAMETER=VALUE a fixed value, repeatable (e.g. --fix child-3=0.15)

  PARAMETER is one of
    parent      the parent's firing probability, in (0, 1] (default ${MAP_DEFAULTS.parent})
    children    the number of read-out children, an integer from 1 to 1023 (default ${MAP_DEFAULTS.children})
    child       the probability of every child not named by child-K, in (0, 1] (default ${MAP_DEFAULTS.child})
    child-K     child K's probability (K = 1, 2, …, at most the number of children), in (0, 1]
    l1          the L1 coefficient, ≥ 0 (default ${MAP_DEFAULTS.l1}, the notebook's)
  At most ${MAX_MAP_CELLS.toLocaleString("en-US")} cells.

The sweep of the cells:
  --betas LIST          β values, comma-separated, ≥ 0; inf = the detached setup
                        (default 0,0.05,0.1,…,1,inf)
  --seeds N             seeds 0..N−1 per cell and β (default 1)
  --steps N             optimiser steps per SAE, at most ${MAX_STEPS} (default ${PUBLISHED_STEPS}, the
                        published schedule)
  --batch-size N        samples per step, at most ${MAX_BATCH_SIZE} (default 128)
  --chunk N             SAEs trained together (default 256)
  --refine N            bisection rounds around each cell's best β, at most ${MAX_REFINE} (default ${DEFAULT_REFINE})
  --tolerance X         balanceable when the residual at β* is below X (default ${DEFAULT_TOLERANCE})

Files:
  --out DIR             the map folder (default out/balance_map)
  --format LIST         the map figures' formats, comma-separated: svg, png, pdf (default svg)
  --resume              continue the map in --out (same map and settings; recorded SAEs are kept)
  --quiet               no progress bars
  --help                show this help

Example (the notebook's family, child 3 fixed at 0.15):
  deno task map --x child-1=0.02:0.5:8 --y child-2=0.02:0.5:8 --fix child-3=0.15 \\
    --betas 0,0.05,0.1,0.15,0.2,0.25,0.3,0.4,0.5,0.7,1,inf --seeds 1 --steps 6000 --refine 3

Exit status: 0 done; 1 no WebGPU adapter; 2 bad input or a folder that cannot be used.`;

const FLAGS = {
  x: { type: "string" },
  y: { type: "string" },
  fix: { type: "string", multiple: true },
  betas: { type: "string" },
  seeds: { type: "string" },
  steps: { type: "string" },
  "batch-size": { type: "string" },
  chunk: { type: "string" },
  refine: { type: "string" },
  tolerance: { type: "string" },
  out: { type: "string" },
  format: { type: "string" },
  resume: { type: "boolean" },
  quiet: { type: "boolean" },
  help: { type: "boolean" },
} as const;

/** One line: what was wrong with which flag, and where the rest is. */
function refuse(message: string): never {
  throw new UsageError(`${message} (see deno task map --help)`);
}

function integer(flag: string, text: string | undefined, min: number, max?: number) {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^\s*\d+\s*$/.test(text) || !Number.isSafeInteger(n) || n < min || (max ?? n) < n) {
    const range = max === undefined ? `an integer ≥ ${min}` : `an integer from ${min} to ${max}`;
    refuse(`Invalid --${flag}: expected ${range}, got "${text}"`);
  }
  return n;
}

/** What the command line asks for. */
export type MapCommand = { kind: "run"; options: BalanceMapOptions } | "help";

/** Parses the command line of `deno task map`. */
export function parseMapArgs(args: string[]): MapCommand {
  let values;
  try {
    ({ values } = parseArgs({ args, options: FLAGS, strict: true, allowPositionals: false }));
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const dash = /^Option '--([\w-]+)' argument is ambiguous/.exec(message);
    // parseArgs explains a value that starts with "-" over three lines: one is enough.
    if (dash) refuse(`Invalid --${dash[1]}: its value starts with "-"; write --${dash[1]}=VALUE`);
    refuse(message.split("\n")[0]!);
  }
  if (values.help) return "help";
  if (values.x === undefined || values.y === undefined) {
    refuse(
      `Missing --${values.x === undefined ? "x" : "y"}: a map sweeps two parameters, ` +
        "--x PARAMETER=VALUES and --y PARAMETER=VALUES (PARAMETER: parent, children, child, " +
        "child-K or l1)",
    );
  }
  const fixed: Partial<Record<MapParameter, number>> = {};
  for (const text of values.fix ?? []) {
    const { parameter, value } = parseMapFixed(text);
    if (fixed[parameter] !== undefined) {
      refuse(`Invalid --fix: expected each parameter once, got ${parameter} twice`);
    }
    fixed[parameter] = value;
  }
  let formats;
  try {
    formats = figureFormatsFlag(values.format, "");
  } catch {
    refuse(`Invalid --format: expected svg, png or pdf, comma-separated, got "${values.format}"`);
  }
  const options: BalanceMapOptions = {
    out: values.out ?? "out/balance_map",
    x: parseMapAxis(values.x, "x"),
    y: parseMapAxis(values.y, "y"),
    fixed,
    figureFormats: formats,
    resume: values.resume ?? false,
    quiet: values.quiet ?? false,
  };
  const set = <K extends keyof BalanceMapOptions>(key: K, value: BalanceMapOptions[K]) => {
    if (value !== undefined) options[key] = value;
  };
  set("seeds", integer("seeds", values.seeds, 1, MAX_SEED + 1));
  set("steps", integer("steps", values.steps, 1, MAX_STEPS));
  set("batchSize", integer("batch-size", values["batch-size"], 1, MAX_BATCH_SIZE));
  set("chunk", integer("chunk", values.chunk, 1));
  set("refine", integer("refine", values.refine, 0, MAX_REFINE));
  if (values.betas !== undefined) options.betas = parseBetas(values.betas);
  if (values.tolerance !== undefined) {
    const t = Number(values.tolerance);
    if (values.tolerance.trim() === "" || !Number.isFinite(t) || t <= 0) {
      refuse(`Invalid --tolerance: expected a number > 0, got "${values.tolerance}"`);
    }
    options.tolerance = t;
  }
  return { kind: "run", options };
}

function minutes(seconds: number): string {
  return seconds < 90 ? `${seconds.toFixed(1)} s` : `${(seconds / 60).toFixed(1)} min`;
}

if (import.meta.main) {
  await runMain(async () => {
    const command = parseMapArgs(Deno.args);
    if (command === "help") {
      console.log(USAGE);
      return;
    }
    const result = await runBalanceMap(command.options);
    const trained = result.sweeps.reduce((n, s) => n + s.chunksTrained, 0);
    console.log(
      `run time: ${minutes(result.seconds)} for ${result.cells.length} cells ` +
        `(${trained} chunk${trained === 1 ? "" : "s"} trained)`,
    );
  });
}
