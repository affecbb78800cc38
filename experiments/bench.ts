/**
 * `deno task bench`: speed of our GPU path against the CPU reference and PyTorch (one SAE at a
 * time, and batched), for the notebook's shape and a larger toy at M ∈ {1, 4, 16, 64, 256, 1024}
 * models, plus `deno task balanced` end to end against PyTorch (on each backend, warm and with an
 * empty shader cache), `evaluate()` per SAE, and `deno task sweep` end to end; prints the table
 * with the targets and writes it as JSON, Markdown and text to the output folder.
 */
import {
  balancedTree,
  type BenchOptions,
  type BenchShape,
  defaultPython,
  formatMarkdown,
  formatText,
  getGpu,
  LARGE_TOY_SHAPE,
  NOTEBOOK_SAE_CONFIG,
  NOTEBOOK_SAES,
  NOTEBOOK_SHAPE,
  parseFlags,
  positiveIntFlag,
  positiveNumberFlag,
  PUBLISHED_STEPS,
  runBench,
  runMain,
  SYNTH_SHAPE,
  SYNTHBENCH_SHAPE,
  ToyModel,
  unbalancedTree,
  UsageError,
  WIDE_SHAPE,
  writeFileAtomic,
} from "../mod.ts";

const DEFAULT_MODELS = [1, 4, 8, 16, 64, 256, 1024];
const EVALUATION_MODELS = [4, 256];
const QUICK_MODELS = [1, 8, 16, 256];
const SHAPES: Record<string, BenchShape> = {
  notebook: NOTEBOOK_SHAPE,
  large: LARGE_TOY_SHAPE,
  synth: SYNTH_SHAPE,
  wide: WIDE_SHAPE,
  synthbench: SYNTHBENCH_SHAPE,
};

const USAGE = `Usage: deno task bench [options]

Measures SAE-steps per second of the GPU path, the CPU reference and PyTorch (one SAE at a time,
and batched) at several model counts M, and deno task balanced end to end against PyTorch; prints
the table with the speed targets and writes bench.json, bench.md and bench.txt.

Options:
  --models LIST          model counts, comma-separated (default ${DEFAULT_MODELS.join(",")})
  --shapes LIST          ${Object.keys(SHAPES).join(", ")}, comma-separated (default all)
  --quick                a short run: M ${
  QUICK_MODELS.join(",")
}, 0.3 s repetitions, 300 PyTorch steps
                         per balanced SAE (explicit flags still win)
  --reps N               timed repetitions per cell, median reported (default 3)
  --rep-seconds X        seconds per repetition (default 1)
  --max-step-seconds X   skip GPU / batched-PyTorch cells whose one step is projected above X
                         (default 4)
  --torch-steps N        PyTorch steps timed per balanced SAE before extrapolating (default 2000)
  --skip-balanced        do not run deno task balanced or its PyTorch twin
  --skip-sweeps          do not run the sweeps end to end (the default sweep takes minutes on a
                         CPU adapter; --quick skips them too)
  --skip-torch           no PyTorch columns
  --torch-threads N      torch.set_num_threads (default 2)
  --python PATH          Python with torch (default /usr/bin/python3 when present, else python3)
  --out DIR              output folder (default out/bench)
  --help                 show this help`;

function listFlag(flag: string, value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const items = value.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
  if (items.length === 0) {
    throw new UsageError(`Cannot parse --${flag}: expected a comma-separated list, got "${value}"`);
  }
  return items;
}

/** Parsed command line of `deno task bench`. */
export interface BenchCli {
  options: Omit<BenchOptions, "balanced"> & { skipBalanced: boolean; torchSteps: number };
  out: string;
}

/** Parses the command line; `"help"` for --help. */
export function parseBenchArgs(args: string[]): BenchCli | "help" {
  const { values } = parseFlags(args, {
    models: { type: "string" },
    shapes: { type: "string" },
    quick: { type: "boolean" },
    reps: { type: "string" },
    "rep-seconds": { type: "string" },
    "max-step-seconds": { type: "string" },
    "torch-steps": { type: "string" },
    "skip-balanced": { type: "boolean" },
    "skip-sweeps": { type: "boolean" },
    "skip-torch": { type: "boolean" },
    python: { type: "string" },
    "torch-threads": { type: "string" },
    out: { type: "string" },
    help: { type: "boolean" },
  }, USAGE);
  if (values.help) return "help";
  const quick = values.quick ?? false;
  const models = (listFlag("models", values.models) ?? []).map((m) =>
    positiveIntFlag("models", m, 1, USAGE)
  );
  const shapeNames = listFlag("shapes", values.shapes) ?? Object.keys(SHAPES);
  const shapes = shapeNames.map((name) => {
    const shape = SHAPES[name];
    if (!shape) {
      throw new UsageError(
        `Cannot parse --shapes: expected ${Object.keys(SHAPES).join(", ")}, got "${name}"` +
          `\n\n${USAGE}`,
      );
    }
    return shape;
  });
  const script = new URL("../bench/torch_sae.py", import.meta.url).pathname;
  return {
    options: {
      shapes,
      models: models.length > 0
        ? [...new Set(models)].sort((a, b) => a - b)
        : quick
        ? QUICK_MODELS
        : DEFAULT_MODELS,
      repetitions: positiveIntFlag("reps", values.reps, 3, USAGE),
      repSeconds: positiveNumberFlag("rep-seconds", values["rep-seconds"], quick ? 0.3 : 1, USAGE),
      maxStepSeconds: positiveNumberFlag(
        "max-step-seconds",
        values["max-step-seconds"],
        4,
        USAGE,
      ),
      torch: values["skip-torch"] ? { skipped: "--skip-torch" } : {
        python: values.python ?? defaultPython(),
        script,
        threads: positiveIntFlag("torch-threads", values["torch-threads"], 2, USAGE),
      },
      skipBalanced: values["skip-balanced"] ?? false,
      evaluationModels: EVALUATION_MODELS,
      ...(values["skip-sweeps"] || quick
        ? {}
        : { sweepScript: new URL("./sweep.ts", import.meta.url).pathname }),
      torchSteps: positiveIntFlag("torch-steps", values["torch-steps"], quick ? 300 : 2000, USAGE),
    },
    out: values.out ?? "out/bench",
  };
}

/** The notebook's four SAEs, its toy model's embedding and experiments/balanced.ts. */
function balancedPart(torchSteps: number): BenchOptions["balanced"] {
  const trees = { balanced: balancedTree(), unbalanced: unbalancedTree() };
  return {
    script: new URL("./balanced.ts", import.meta.url).pathname,
    saes: NOTEBOOK_SAES.map((spec) => ({
      name: spec.name,
      tree: trees[spec.tree],
      config: { ...NOTEBOOK_SAE_CONFIG, ...spec.config },
    })),
    embedding: new ToyModel({ nFeatures: 4, hiddenDim: 50, seed: 0 }).embedding,
    torchTimedSteps: torchSteps,
    totalSteps: PUBLISHED_STEPS,
  };
}

if (import.meta.main) {
  await runMain(async () => {
    const cli = parseBenchArgs(Deno.args);
    if (cli === "help") {
      console.log(USAGE);
      return;
    }
    const { skipBalanced, torchSteps, ...options } = cli.options;
    const gpu = await getGpu();
    const results = await runBench(gpu, {
      ...options,
      balanced: skipBalanced ? { skipped: "--skip-balanced" } : balancedPart(torchSteps),
    });
    const text = formatText(results);
    console.log(text);
    await Deno.mkdir(cli.out, { recursive: true });
    await writeFileAtomic(`${cli.out}/bench.json`, JSON.stringify(results, null, 2) + "\n");
    await writeFileAtomic(`${cli.out}/bench.md`, formatMarkdown(results));
    await writeFileAtomic(`${cli.out}/bench.txt`, text);
    console.log(`wrote ${cli.out}/: bench.json, bench.md, bench.txt`);
  });
}
