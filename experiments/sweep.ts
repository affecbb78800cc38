/**
 * `deno task sweep`: "is it always possible to balance?" — trains SAEs over trees × β × seeds on
 * the GPU (src/sweep/run_sweep.ts), finds β* per tree and prints a verdict per tree; or merges the
 * folders of several shards (src/sweep/merge.ts). This file only parses the command line.
 */
import { parseArgs } from "node:util";
import {
  architectureFlags,
  BALANCE_OBJECTIVES,
  BETA_FORMS,
  checkChoice,
  childProbsTree,
  DEFAULT_CHUNK,
  DEFAULT_EVAL_ROWS,
  DEFAULT_REFINE,
  DEFAULT_SEEDS,
  DEFAULT_TOLERANCE,
  evalRowsFlag,
  figureFormatsFlag,
  MAX_BATCH_SIZE,
  MAX_EVAL_ROWS,
  MAX_REFINE,
  MAX_SEED,
  MAX_STEPS,
  MAX_SWEEP_FEATURES,
  MAX_SWEEP_SAES,
  type MergeOptions,
  mergeSweeps,
  nonNegativeIntFlag,
  parseBetas,
  parseChildProbs,
  parseShard,
  positiveIntFlag,
  positiveNumberFlag,
  PUBLISHED_STEPS,
  runMain,
  runSweep,
  shardFromEnv,
  SweepAxisError,
  type SweepOptions,
  type SweepTree,
  treeFileTree,
  uniqueTreeNames,
  UsageError,
} from "../mod.ts";

const STEPS_TEXT = PUBLISHED_STEPS.toLocaleString("en-US");

const USAGE = `Usage: deno task sweep [options]
       deno task sweep --merge DIR [DIR…] --out DIR [--tolerance X] [--objective max|mean]
                       [--format LIST]

Trains one Matryoshka SAE per tree × β × seed, all together on the GPU in chunks, finds for each
tree the β* that minimises the largest |encoder cos sim of a parent's latent with its child| over
every parent–child edge (mean over seeds; latent 0 and its children on the notebook's trees),
refines it by bisection and says whether the tree is balanceable, naming the worst edges. Writes
sweep.csv, sweep.json and figures/ to the output folder.

The default run (2 trees × 22 β × ${DEFAULT_SEEDS} seeds = 132 SAEs, then up to 24 refinement
SAEs, each ${STEPS_TEXT} steps: about 3.8 million SAE-steps) takes about 2 minutes on a 2-core CPU
WebGPU adapter (30,000–40,000 SAE-steps/s) and less on a GPU. Every finished chunk is recorded: an
interrupted sweep continues with --resume.

Axes:
  --betas LIST        β values, comma-separated, ≥ 0; inf = the detached setup
                      (default 0,0.05,0.1,…,1,inf)
  --seeds N           seeds 0..N−1; seed s is the toy model's and the batches' seed (default ${DEFAULT_SEEDS})
  --tree FILE.json    a tree file (published JSON format); repeatable. Any read-out feature
                      may be a parent, and many may be; at least one parent–child edge, at most
                      ${MAX_SWEEP_FEATURES} read-out features. Latents start on the features parents
                      first, one Matryoshka prefix per depth level
  --child-probs LIST  the notebook's tree with these children's firing probabilities, e.g.
                      --child-probs 0.15,0.15,0.15 --child-probs 0.02,0.15,0.5; repeatable, one
                      tree each (named probs-0.02-0.15-0.5). Without --tree and --child-probs:
                      the notebook's trees "balanced" and "unbalanced". Order: --tree files,
                      then --child-probs

Training:
  --steps N           optimiser steps per SAE, at most ${MAX_STEPS} (default ${PUBLISHED_STEPS}, the
                      published 100M tokens)
  --batch-size N      samples per step, at most ${MAX_BATCH_SIZE} (default 128)
  --lr X              Adam learning rate (default 3e-4)
  --chunk N           SAEs trained together and recorded together (default ${DEFAULT_CHUNK})
  --beta-form FORM    how β weights the inner prefixes: uniform (each β, the notebook's) or
                      power (inner prefix i of n gets βⁿ⁻ⁱ, the paper's LLM SAEs); the outer
                      prefix 1 (default uniform; the same with two prefixes)
  --l1 X              L1 (sparsity) coefficient of every SAE, ≥ 0 (default 0.03, the notebook's;
                      standard SAEs only)
  --arch A            standard (ReLU + L1, the notebook's), topk or batchtopk (default standard);
                      TopK and BatchTopK SAEs train on the kernel set, more slowly
  --k K               latents kept per row: topk an integer, batchtopk on average over the batch
                      (any number above 0; ⌊k·batch⌋ kept), at most the narrowest tree's SAE width
                      (default 1; topk and batchtopk only)
  --eval-rows N       held-out rows of each SAE's metrics, at most ${MAX_EVAL_ROWS} (default
                      ${DEFAULT_EVAL_ROWS}); they do not change the β* search (encoder cosines)

Balance finder:
  --refine N          bisection rounds around the best β, at most ${MAX_REFINE} (default ${DEFAULT_REFINE}; 0: the
                      grid alone)
  --tolerance X       balanceable when the largest |child component| at β* is below X
                      (default ${DEFAULT_TOLERANCE})
  --objective KIND    what β* minimises over edges: max (the largest |child component|) or
                      mean (their mean); refinement follows it (default max)

Long sweeps:
  --out DIR           output folder (default out/sweep)
  --format LIST       figure formats, comma-separated: svg, png, pdf (default svg)
  --resume            continue the sweep in --out (same settings), skipping recorded SAEs
  --max-chunks N      stop after training N chunks (continue later with --resume)
  --shard i/n         train only every n-th grid SAE, starting at the i-th (no refinement)
  --shard auto        i and n from the job scheduler: a Slurm job array
                      (SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT) or a Kubernetes Indexed Job
                      (JOB_COMPLETION_INDEX, with n from --shard-count)
  --shard-count N     the number of shards for --shard auto (an Indexed Job's completions)
  --merge DIR…        combine shard folders into --out and run the finder on their rows;
                      refinement needs training: then run with --resume on the merged folder

  --quiet             no progress bars
  --help              show this help

At most ${
  MAX_SWEEP_SAES.toLocaleString("en-US")
} grid SAEs (trees × β × seeds) per sweep. A tree whose parent or a child
never fires gets a warning and no verdict. Records are verified (checksum, fields, grid) before
they are used, and one sweep at a time works on a folder. Exit status: 0 done; 1 no WebGPU
adapter; 2 bad input or a folder that cannot be used (nothing trained).`;

/** What the command line asks for. */
export type SweepCommand =
  | { kind: "run"; options: SweepOptions }
  | { kind: "merge"; options: MergeOptions }
  | "help";

const FLAGS = {
  betas: { type: "string" },
  seeds: { type: "string" },
  tree: { type: "string", multiple: true },
  "child-probs": { type: "string", multiple: true },
  steps: { type: "string" },
  "batch-size": { type: "string" },
  lr: { type: "string" },
  chunk: { type: "string" },
  "eval-rows": { type: "string" },
  refine: { type: "string" },
  tolerance: { type: "string" },
  objective: { type: "string" },
  "beta-form": { type: "string" },
  l1: { type: "string" },
  arch: { type: "string" },
  k: { type: "string" },
  out: { type: "string" },
  format: { type: "string" },
  resume: { type: "boolean" },
  "max-chunks": { type: "string" },
  shard: { type: "string" },
  "shard-count": { type: "string" },
  merge: { type: "string", multiple: true },
  quiet: { type: "boolean" },
  help: { type: "boolean" },
} as const;

const TRAINING_FLAGS = [
  "betas",
  "seeds",
  "tree",
  "child-probs",
  "steps",
  "batch-size",
  "lr",
  "chunk",
  "eval-rows",
  "beta-form",
  "l1",
  "arch",
  "k",
  "refine",
  "resume",
  "max-chunks",
  "shard",
  "shard-count",
] as const;

/** `fn()`, with axis errors turned into usage errors (message, then the usage text). */
async function usage<T>(fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    // A bad flag shows the usage; a folder that cannot be used (SweepFolderError) is one line.
    if (error instanceof SweepAxisError) {
      throw new UsageError(`${error.message}\n\n${USAGE}`);
    }
    throw error;
  }
}

/** Parses the command line of `deno task sweep` (reads and validates tree files). */
export function parseSweepArgs(args: string[]): Promise<SweepCommand> {
  return usage(async () => {
    let parsed;
    try {
      parsed = parseArgs({
        args,
        options: FLAGS,
        strict: true,
        allowPositionals: true,
        tokens: true,
      });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      throw new UsageError(`${message}\n\n${USAGE}`);
    }
    const { values, positionals, tokens } = parsed;
    if (values.help) return "help";
    const out = values.out ?? "out/sweep";
    const tolerance = positiveNumberFlag("tolerance", values.tolerance, DEFAULT_TOLERANCE, USAGE);
    const figureFormats = figureFormatsFlag(values.format, USAGE);
    const objective = checkChoice("objective", values.objective ?? "max", BALANCE_OBJECTIVES);
    if (values.merge) {
      const used = TRAINING_FLAGS.filter((flag) => values[flag] !== undefined);
      if (used.length > 0) {
        throw new UsageError(
          `Cannot combine --${used[0]} with --merge: a merge trains nothing and takes its ` +
            `settings from the merged folders\n\n${USAGE}`,
        );
      }
      // The folders in command-line order, whether after one --merge or each after its own.
      const inputs = tokens.flatMap((t) =>
        t.kind === "positional" || (t.kind === "option" && t.name === "merge")
          ? [t.kind === "positional" ? t.value : t.value!]
          : []
      );
      return { kind: "merge", options: { inputs, out, tolerance, objective, figureFormats } };
    }
    if (positionals.length > 0) {
      throw new UsageError(
        `Unexpected argument "${positionals[0]}": only --merge takes several folders\n\n${USAGE}`,
      );
    }
    const trees: SweepTree[] = [];
    for (const file of values.tree ?? []) trees.push(await treeFileTree(file));
    for (const text of values["child-probs"] ?? []) {
      trees.push(childProbsTree(parseChildProbs(text)));
    }
    const options: SweepOptions = {
      out,
      seeds: positiveIntFlag("seeds", values.seeds, DEFAULT_SEEDS, USAGE, MAX_SEED + 1),
      steps: positiveIntFlag("steps", values.steps, PUBLISHED_STEPS, USAGE, MAX_STEPS),
      batchSize: positiveIntFlag("batch-size", values["batch-size"], 128, USAGE, MAX_BATCH_SIZE),
      lr: positiveNumberFlag("lr", values.lr, 3e-4, USAGE),
      chunk: positiveIntFlag("chunk", values.chunk, DEFAULT_CHUNK, USAGE),
      evalRows: evalRowsFlag(values["eval-rows"], USAGE),
      refine: nonNegativeIntFlag("refine", values.refine, DEFAULT_REFINE, USAGE, MAX_REFINE),
      tolerance,
      objective,
      betaForm: checkChoice("beta-form", values["beta-form"] ?? "uniform", BETA_FORMS),
      figureFormats,
      resume: values.resume ?? false,
      quiet: values.quiet ?? false,
    };
    if (values.betas !== undefined) options.betas = parseBetas(values.betas);
    if (values.l1 !== undefined) {
      options.l1Coefficient = values.l1.trim() === "" ? NaN : Number(values.l1);
    }
    if (trees.length > 0) options.trees = uniqueTreeNames(trees);
    // k's upper bound is the narrowest tree's SAE width, checked with the trees (runSweep).
    const arch = architectureFlags(values.arch, values.k, MAX_SWEEP_FEATURES, USAGE);
    if (arch.architecture !== "standard") Object.assign(options, arch);
    const shardCount = values["shard-count"] === undefined
      ? undefined
      : positiveIntFlag("shard-count", values["shard-count"], 1, USAGE);
    if (values.shard?.trim() === "auto") {
      options.shard = shardFromEnv((name) => Deno.env.get(name), shardCount);
    } else {
      if (shardCount !== undefined) {
        throw new SweepAxisError(
          `Invalid --shard-count: expected it only with --shard auto, got --shard ${
            values.shard ?? "(none)"
          }`,
        );
      }
      if (values.shard !== undefined) options.shard = parseShard(values.shard);
    }
    if (values["max-chunks"] !== undefined) {
      options.maxChunks = positiveIntFlag("max-chunks", values["max-chunks"], 1, USAGE);
    }
    return { kind: "run", options };
  });
}

if (import.meta.main) {
  await runMain(async () => {
    const command = await parseSweepArgs(Deno.args);
    if (command === "help") {
      console.log(USAGE);
      return;
    }
    if (command.kind === "merge") await usage(() => mergeSweeps(command.options));
    else await usage(() => runSweep(command.options));
  });
}
