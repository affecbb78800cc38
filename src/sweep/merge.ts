/**
 * `mergeSweeps`: combines the folders of several shards (or partial runs) of one sweep into a new
 * folder and runs the balance finder on the merged rows.
 *
 * Every input must record the same settings (steps, batch size, lr, β grid, seeds, trees); shards
 * may differ. Rows are combined by key (tree, β, seed): grid rows and whatever refinement rows the
 * inputs hold; when two inputs hold the same key the first input's row is kept. Merging trains
 * nothing: the finder uses the rows present. The merged folder is an unsharded sweep (one record
 * holding every row), so `runSweep` with `resume` on it trains any missing grid SAEs and then the
 * refinement rounds.
 */
import type { FigureFormat } from "../plot/figure_files.ts";
import { checkOutputDir, writeOutputDir } from "../io/output_dir.ts";
import { gridComplete, sortRows, type TreeBalance, writeSweepOutputs } from "./analysis.ts";
import { combinationKey } from "./combinations.ts";
import type { SweepJson } from "./outputs.ts";
import type { SweepRow } from "./rows.ts";
import {
  CHUNKS_DIR,
  isAbsentOrEmpty,
  LOCK_FILE,
  MANIFEST_FILE,
  manifestDifference,
  type ManifestJson,
  readManifest,
  readRecords,
  settingsOf,
  SweepFolderError,
  writeManifest,
  writeRecord,
} from "./store.ts";
import { DEFAULT_TOLERANCE } from "./run_sweep.ts";
import { checkChoice, SweepAxisError } from "./axes.ts";
import { BALANCE_OBJECTIVES, type BalanceObjective } from "./balance.ts";
import { balanceLines } from "./verdict.ts";

/**
 * Settings of {@link mergeSweeps}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type MergeOptions, mergeSweeps } from "./merge.ts";
 * import { checkChoice, SweepAxisError } from "./axes.ts";
import { BALANCE_OBJECTIVES, type BalanceObjective } from "./balance.ts";
 * const options: MergeOptions = { inputs: [], out: "never-written", log: () => {} };
 * await assert.rejects(mergeSweeps(options), SweepAxisError); // at least one input is needed
 * await assert.rejects(mergeSweeps({ ...options, tolerance: 0 }), /Invalid --tolerance/);
 * ```
 */
export interface MergeOptions {
  /** The sweep folders to combine (at least one). */
  inputs: readonly string[];
  /** The merged folder (absent, empty, or an earlier merge's folder, which is replaced). */
  out: string;
  /** Balance tolerance (default 0.02). */
  tolerance?: number;
  /** What the finder minimises over edges (default `max`). */
  objective?: BalanceObjective;
  /** Formats of every figure (default SVG only). */
  figureFormats?: readonly FigureFormat[];
  /** Where progress lines go (default `console.log`). */
  log?: (line: string) => void;
}

/**
 * What {@link mergeSweeps} returns.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type MergeResult, mergeSweeps } from "./merge.ts";
 * const summary = (r: MergeResult) => `${r.rows.length} SAEs, ${r.duplicates} twice, ${r.out}`;
 * const dir = await Deno.makeTempDir();
 * // An empty folder is not a sweep: nothing is merged or written, so there is nothing to sum up.
 * const merged = mergeSweeps({ inputs: [dir], out: `${dir}/merged`, log: () => {} });
 * await assert.rejects(merged.then(summary), /not a sweep folder/);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export interface MergeResult {
  /** The merged folder. */
  out: string;
  /** True when every grid SAE of the settings is present. */
  complete: boolean;
  /** Every merged row, canonical order. */
  rows: SweepRow[];
  /** Rows left out because an earlier input held the same (tree, β, seed). */
  duplicates: number;
  /** The balance finder per tree. */
  balances: TreeBalance[];
  /** The merged `sweep.json`. */
  json: SweepJson;
}

/**
 * Merges sweep folders into `out` and writes its outputs; prints one verdict per tree.
 *
 * @throws {SweepFolderError} when an input is not a sweep folder, when the inputs' settings differ (naming
 *   the flag), or when `out` holds anything but an earlier merge.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mergeSweeps } from "./merge.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.mkdir(`${dir}/notes`); // a folder, but without a sweep's manifest.json
 * await assert.rejects(
 *   mergeSweeps({ inputs: [`${dir}/notes`], out: `${dir}/merged`, log: () => {} }),
 *   /^SweepFolderError: Invalid --merge .*notes: not a sweep folder \(no manifest\.json\)$/,
 * );
 * await assert.rejects(Deno.stat(`${dir}/merged`), Deno.errors.NotFound); // nothing was written
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function mergeSweeps(options: MergeOptions): Promise<MergeResult> {
  const log = options.log ?? ((line: string) => console.log(line));
  const tolerance = options.tolerance ?? DEFAULT_TOLERANCE;
  if (!(Number.isFinite(tolerance) && tolerance > 0)) {
    throw new SweepAxisError(`Invalid --tolerance: expected a number > 0, got ${tolerance}`);
  }
  const objective = checkChoice("objective", options.objective ?? "max", BALANCE_OBJECTIVES);
  if (options.inputs.length === 0) {
    throw new SweepAxisError("Invalid --merge: expected at least one sweep folder, got none");
  }
  const manifests: ManifestJson[] = [];
  for (const dir of options.inputs) {
    const manifest = await readManifest(dir);
    if (!manifest) {
      throw new SweepFolderError(`Invalid --merge ${dir}: not a sweep folder (no manifest.json)`);
    }
    const diff = manifests.length > 0 ? manifestDifference(manifests[0]!, manifest, false) : null;
    if (diff) {
      throw new SweepFolderError(
        `Invalid --merge ${dir}: its settings differ from ${options.inputs[0]}'s, ${diff}`,
      );
    }
    manifests.push(manifest);
  }
  const outManifest = await readManifest(options.out);
  if (!outManifest ? !(await isAbsentOrEmpty(options.out)) : !outManifest.mergedFrom) {
    throw new SweepFolderError(
      `Invalid --out ${options.out}: it holds ${outManifest ? "a sweep" : "other files"}; ` +
        "a merge writes a new folder (or replaces an earlier merge)",
    );
  }

  const settings = settingsOf(manifests[0]!, `${options.inputs[0]}/manifest.json`);
  const rows = new Map<string, SweepRow>();
  let duplicates = 0;
  for (const dir of options.inputs) {
    let added = 0;
    for (const record of await readRecords(dir, settings)) {
      for (const row of record.rows) {
        const key = combinationKey(row.tree, row.beta, row.seed);
        if (rows.has(key)) {
          duplicates++;
          continue;
        }
        rows.set(key, row);
        added++;
      }
    }
    log(`${dir}: ${added} SAEs`);
  }
  if (duplicates > 0) {
    log(`${duplicates} SAEs recorded twice: kept the first folder's rows`);
  }
  const all = sortRows([...rows.values()], settings.trees);
  const complete = gridComplete(settings, all, null);
  const expected = settings.trees.length * settings.betas.length * settings.seeds;
  const gridRows = all.filter((r) => r.round === 0).length;
  if (!complete) {
    log(`incomplete: ${gridRows} of ${expected} grid SAEs present; the finder uses those`);
  }

  let result: { json: SweepJson; balances: TreeBalance[] } | undefined;
  // A merge replaces only an earlier merge's own files; anything else in the folder is refused.
  const plan = {
    path: options.out,
    what: "--out",
    files: [
      MANIFEST_FILE,
      LOCK_FILE,
      "sweep.csv",
      "sweep.json",
      /^chunks\/chunk-\d+\.json$/,
      /^figures\/[A-Za-z0-9._-]+\.(svg|png|pdf)$/,
    ],
    folders: [CHUNKS_DIR, "figures"],
  };
  await checkOutputDir(plan);
  await writeOutputDir(plan, async (tmp) => {
    await writeManifest(tmp, {
      ...manifests[0]!,
      shard: null,
      mergedFrom: [...options.inputs],
    });
    await writeRecord(tmp, { chunk: 0, phase: "merge", rows: all });
    result = await writeSweepOutputs(tmp, settings, all, {
      tolerance,
      objective,
      shard: null,
      complete,
      figureFormats: options.figureFormats,
    });
  });
  log("");
  for (const line of balanceLines(result!.balances)) log(line);
  log(
    `merged ${options.inputs.length} folders into ${options.out}/ (${all.length} SAEs); ` +
      "refinement needs training: run the sweep with --resume on it to refine",
  );
  return { out: options.out, complete, rows: all, duplicates, ...result! };
}
