/**
 * `deno task compare`: two or more finished sweeps side by side (src/sweep/compare.ts): for every
 * tree they share, the child components against β of each sweep in one figure per part, and a
 * table of β* and the verdicts. This file only parses the command line and writes the folder.
 */
import {
  checkOutputDir,
  commonTrees,
  type ComparedSweep,
  compareFigureSvg,
  compareTable,
  FIGURE_FORMATS,
  type FigureFormat,
  figureFormatsFlag,
  parseFlags,
  readSweepJson,
  runMain,
  saveFigureFormats,
  sweepLabel,
  UsageError,
  writeOutputDir,
} from "../mod.ts";

const USAGE = `Usage: deno task compare --sweep DIR --sweep DIR [--sweep DIR …] [options]

Draws finished sweeps (deno task sweep's folders) side by side: for every tree they share, each
sweep's parent-latent components along the children against β, one line style per sweep, with
each sweep's β* marked; prints and writes each tree's β* and verdict per sweep. Typical use: the
same trees and β swept with --arch standard (L1) and --arch batchtopk.

Options:
  --sweep DIR     a finished sweep's folder (holding sweep.json); two to four, in legend order
  --out DIR       output folder, replaced atomically (default out/compare)
  --format LIST   figure formats, comma-separated: svg, png, pdf (default svg)
  --help          show this help

Writes <tree>_encoder and <tree>_decoder figures and comparison.txt.`;

/** What the command line asks for. */
export interface CompareOptions {
  sweeps: string[];
  out: string;
  figureFormats: readonly FigureFormat[];
}

/** Parses the command line of `deno task compare`. */
export function parseCompareArgs(args: string[]): CompareOptions | "help" {
  const { values } = parseFlags(args, {
    sweep: { type: "string", multiple: true },
    out: { type: "string" },
    format: { type: "string" },
    help: { type: "boolean" },
  }, USAGE);
  if (values.help) return "help";
  const sweeps = values.sweep ?? [];
  if (sweeps.length < 2 || sweeps.length > 4) {
    throw new UsageError(
      `Cannot parse --sweep: expected two to four sweep folders, got ${sweeps.length}\n\n${USAGE}`,
    );
  }
  return {
    sweeps,
    out: values.out ?? "out/compare",
    figureFormats: figureFormatsFlag(values.format, USAGE),
  };
}

/** Reads the sweeps, draws and writes the comparison; returns the table. */
export async function runCompare(options: CompareOptions): Promise<string> {
  const compared: ComparedSweep[] = [];
  for (const dir of options.sweeps) {
    const json = await readSweepJson(dir);
    compared.push({ label: sweepLabel(json.settings), json });
  }
  // Two sweeps of the same kind are told apart by their folders.
  for (const s of compared) {
    if (compared.filter((t) => t.label === s.label).length > 1) {
      compared.forEach((t, i) => {
        if (t.label === s.label) t.label = `${t.label} (${options.sweeps[i]})`;
      });
    }
  }
  const trees = commonTrees(compared);
  if (trees.length === 0) {
    throw new UsageError(
      `The sweeps share no tree (same name and edges): ${
        compared.map((s, i) => `${options.sweeps[i]}: ${s.json.trees.map((t) => t.name)}`)
          .join("; ")
      }`,
    );
  }
  const table = compareTable(compared, trees);
  const names = trees.flatMap((t) => [`${t}_encoder`, `${t}_decoder`]);
  const plan = {
    path: options.out,
    what: "--out",
    files: ["comparison.txt", ...names.flatMap((n) => FIGURE_FORMATS.map((f) => `${n}.${f}`))],
  };
  await checkOutputDir(plan);
  await writeOutputDir(plan, async (dir) => {
    for (const tree of trees) {
      for (const part of ["encoder", "decoder"] as const) {
        const svg = compareFigureSvg(compared, tree, part);
        await saveFigureFormats(`${dir}/${tree}_${part}`, svg, options.figureFormats);
      }
    }
    await Deno.writeTextFile(`${dir}/comparison.txt`, table + "\n");
  });
  return table;
}

if (import.meta.main) {
  await runMain(async () => {
    const options = parseCompareArgs(Deno.args);
    if (options === "help") {
      console.log(USAGE);
      return;
    }
    const table = await runCompare(options);
    console.log(table);
    console.log(`wrote ${options.out}/: comparison.txt, figures per tree and part`);
  });
}
