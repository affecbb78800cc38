/**
 * A sweep's folder on disk, what makes it resumable and mergeable:
 *
 *   manifest.json          the settings that decide the rows (steps, batch size, lr, β grid,
 *                          seeds, each tree's name, children's probabilities and full definition,
 *                          held-out rows of the metrics) and the shard; a resumed or merged
 *                          sweep must match it
 *   chunks/chunk-NNNNN.json one record per finished chunk: its phase, its rows and the SHA-256
 *                          of the rows, written atomically when the chunk finishes (the rows
 *                          are the sweep's truth)
 *   sweep.csv, sweep.json, figures/   outputs, rebuilt from the records
 *   .sweep.lock            held (advisory lock) while a sweep works on the folder
 *
 * A record that is missing is simply not done; deleting one makes `--resume` retrain its SAEs.
 * Records are verified when read: the checksum, every field's type, and each row against the
 * manifest's grid (its tree, child probabilities, β, seed, sizes); a record that fails is refused,
 * naming the file and what to do, never trusted.
 */
import { writeFileAtomic } from "../io/atomic.ts";
import { DEFAULT_EVAL_ROWS } from "../metrics/evaluate_cpu.ts";
import { type Architecture, ARCHITECTURES, NOTEBOOK_SAE_CONFIG } from "../sae/config.ts";
import { BETA_FORMS, type BetaForm } from "../sae/notebook_saes.ts";
import { treeFromJson, type TreeJson, treeToJson } from "../toy/tree_json.ts";
import {
  clip,
  formatShard,
  type Shard,
  type SweepTree,
  sweepTree,
  type TreeSource,
} from "./axes.ts";
import { combinationKey } from "./combinations.ts";
import { rowFromJson, rowToJson, type SweepRow } from "./rows.ts";

/**
 * A sweep folder that cannot be used as asked (holds another sweep, differs, is not a sweep).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SweepFolderError } from "./store.ts";
 * const error = new SweepFolderError("out/sweep holds a sweep with other settings");
 * assert.equal(error.exitCode, 2); // bad input: the command exits with status 2
 * ```
 */
export class SweepFolderError extends Error {
  /** Always `"SweepFolderError"`. */
  override name = "SweepFolderError";
  /** Exit status of a command that stops on this error. */
  readonly exitCode = 2;
}

/** The settings that decide a sweep's rows. */
export interface SweepSettings {
  /** Optimiser steps per SAE. */
  steps: number;
  /** Samples per step. */
  batchSize: number;
  /** Adam learning rate. */
  lr: number;
  /** The β grid, ascending, Infinity for the detached setup. */
  betas: number[];
  /** Seeds 0..seeds−1. */
  seeds: number;
  /** The trees, in order. */
  trees: SweepTree[];
  /** Held-out rows of each SAE's metrics. */
  evalRows: number;
  /** How β weights the inner prefixes (`uniform`: each β; `power`: βⁿ⁻ⁱ). */
  betaForm: BetaForm;
  /** The L1 (sparsity) coefficient of every SAE (standard architecture). */
  l1Coefficient: number;
  /** The SAEs' architecture: `standard` (ReLU + L1), `topk` or `batchtopk`. */
  architecture: Architecture;
  /** k of TopK and BatchTopK (1 for standard, where it is unused). */
  k: number;
}

/** `manifest.json`. */
export interface ManifestJson {
  /** Always `"matryoshka-gpu sweep manifest"`. */
  format: "matryoshka-gpu sweep manifest";
  /** Format version (1). */
  version: 1;
  /** Optimiser steps per SAE. */
  steps: number;
  /** Samples per step. */
  batchSize: number;
  /** Adam learning rate. */
  lr: number;
  /** The β grid, ascending, `"inf"` for the detached setup. */
  betas: (number | "inf")[];
  /** Seeds 0..seeds−1. */
  seeds: number;
  /** Each tree: name, source, children's probabilities and full definition. */
  trees: { name: string; source: TreeSource; childProbs: number[]; tree: TreeJson }[];
  /** Held-out rows of each SAE's metrics (absent in folders written before it was a setting). */
  evalRows: number;
  /** How β weights the inner prefixes (absent in older folders: `uniform`). */
  betaForm: BetaForm;
  /** The L1 coefficient (absent in older folders: the notebook's 3e-2). */
  l1Coefficient: number;
  /** The SAEs' architecture (absent in older folders: `standard`). */
  architecture: Architecture;
  /** k of TopK and BatchTopK (absent in older folders: 1). */
  k: number;
  /** `"i/n"` for one shard's folder, null for a whole sweep. */
  shard: string | null;
  /** The folders merged into this one (absent unless made by a merge). */
  mergedFrom?: string[];
}

/** Name of the manifest file. */
export const MANIFEST_FILE = "manifest.json";
/** Folder of the chunk records. */
export const CHUNKS_DIR = "chunks";

/** The manifest of `settings` run as `shard`. */
export function manifestOf(settings: SweepSettings, shard: Shard | null): ManifestJson {
  return {
    format: "matryoshka-gpu sweep manifest",
    version: 1,
    steps: settings.steps,
    batchSize: settings.batchSize,
    lr: settings.lr,
    betas: settings.betas.map((b) => b === Infinity ? "inf" : b),
    seeds: settings.seeds,
    trees: settings.trees.map((t) => ({
      name: t.name,
      source: t.source,
      childProbs: t.childProbs,
      tree: treeToJson(t.tree),
    })),
    evalRows: settings.evalRows,
    betaForm: settings.betaForm,
    l1Coefficient: settings.l1Coefficient,
    architecture: settings.architecture,
    k: settings.k,
    shard: formatShard(shard),
  };
}

/** The settings a manifest records (trees rebuilt from their definitions). */
export function settingsOf(manifest: ManifestJson, where: string): SweepSettings {
  try {
    return settingsFromManifest(manifest, where);
  } catch (error) {
    if (error instanceof SweepFolderError) throw error;
    throw new SweepFolderError(
      `Invalid sweep manifest ${where}: ${error instanceof Error ? error.message : error}`,
    );
  }
}

function settingsFromManifest(manifest: ManifestJson, where: string): SweepSettings {
  return {
    steps: manifest.steps,
    batchSize: manifest.batchSize,
    lr: manifest.lr,
    betas: manifest.betas.map((b) => b === "inf" ? Infinity : b),
    seeds: manifest.seeds,
    trees: manifest.trees.map((t) =>
      sweepTree(t.name, treeFromJson(t.tree, `${where} (tree ${t.name})`), t.source)
    ),
    evalRows: manifest.evalRows,
    betaForm: manifest.betaForm,
    l1Coefficient: manifest.l1Coefficient,
    architecture: manifest.architecture,
    k: manifest.k,
  };
}

const FLAGS: Record<string, string> = {
  steps: "--steps",
  batchSize: "--batch-size",
  lr: "--lr",
  betas: "--betas",
  seeds: "--seeds",
  trees: "--tree / --child-probs",
  evalRows: "--eval-rows",
  betaForm: "--beta-form",
  l1Coefficient: "--l1",
  architecture: "--arch",
  k: "--k",
  shard: "--shard",
};

/**
 * The first setting in which two manifests differ, as `--flag A vs B`, or null when they agree
 * (`mergedFrom` is ignored; `shard` too unless `withShard`).
 */
export function manifestDifference(
  a: ManifestJson,
  b: ManifestJson,
  withShard = true,
): string | null {
  for (const key of Object.keys(FLAGS) as (keyof typeof FLAGS & keyof ManifestJson)[]) {
    if (key === "shard" && !withShard) continue;
    const va = key === "trees" ? a.trees : a[key];
    const vb = key === "trees" ? b.trees : b[key];
    if (JSON.stringify(va) === JSON.stringify(vb)) continue;
    const show = (m: ManifestJson) =>
      key === "trees"
        ? clip(m.trees.map((t) => `${t.name}(${t.childProbs.join(",")})`).join(" "), 120)
        : clip(JSON.stringify(m[key]), 120);
    if (key === "trees" && show(a) === show(b)) {
      return `${FLAGS[key]}: a tree of the same name differs in its definition`;
    }
    return `${FLAGS[key]}: ${show(a)} vs ${show(b)}`;
  }
  return null;
}

/** Reads `dir/manifest.json`, or null when there is none. */
export async function readManifest(dir: string): Promise<ManifestJson | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(`${dir}/${MANIFEST_FILE}`);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
  let json: ManifestJson;
  try {
    json = JSON.parse(text);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new SweepFolderError(
      `Invalid sweep manifest ${dir}/${MANIFEST_FILE}: not JSON (${reason})`,
    );
  }
  if (json?.format !== "matryoshka-gpu sweep manifest" || json.version !== 1) {
    throw new SweepFolderError(
      `Invalid sweep manifest ${dir}/${MANIFEST_FILE}: expected format ` +
        `"matryoshka-gpu sweep manifest" version 1`,
    );
  }
  // Folders written before --eval-rows was a setting were evaluated on the default rows.
  json.evalRows ??= DEFAULT_EVAL_ROWS;
  // … and before the β form and the L1 coefficient were: the notebook's.
  json.betaForm ??= "uniform";
  json.l1Coefficient ??= NOTEBOOK_SAE_CONFIG.l1Coefficient;
  // … and before the TopK family: standard SAEs.
  json.architecture ??= "standard";
  json.k ??= 1;
  const problem = manifestProblem(json);
  if (problem) {
    throw new SweepFolderError(
      `Invalid sweep manifest ${dir}/${MANIFEST_FILE}: ${problem}; it was changed after the ` +
        "sweep wrote it: restore it, or start the sweep again in another --out",
    );
  }
  return json;
}

/** The first field of a manifest with the wrong type, as words, or null. */
function manifestProblem(json: ManifestJson): string | null {
  const int = (v: unknown) => typeof v === "number" && Number.isSafeInteger(v) && v >= 1;
  const fields: [string, boolean, string][] = [
    ["steps", int(json.steps), "a positive integer"],
    ["batchSize", int(json.batchSize), "a positive integer"],
    ["lr", typeof json.lr === "number" && json.lr > 0, "a number > 0"],
    [
      "betas",
      Array.isArray(json.betas) &&
      json.betas.every((b) => b === "inf" || (typeof b === "number" && b >= 0)),
      'a list of numbers ≥ 0 and "inf"',
    ],
    ["seeds", int(json.seeds), "a positive integer"],
    [
      "trees",
      Array.isArray(json.trees) && json.trees.length > 0 &&
      json.trees.every((t) =>
        typeof t === "object" && t !== null && typeof t.name === "string" &&
        typeof t.source === "string" && Array.isArray(t.childProbs) &&
        typeof t.tree === "object" && t.tree !== null
      ),
      "a list of { name, source, childProbs, tree }",
    ],
    ["evalRows", int(json.evalRows), "a positive integer"],
    ["betaForm", BETA_FORMS.includes(json.betaForm), BETA_FORMS.join(" or ")],
    [
      "l1Coefficient",
      typeof json.l1Coefficient === "number" && json.l1Coefficient >= 0,
      "a number ≥ 0",
    ],
    ["architecture", ARCHITECTURES.includes(json.architecture), ARCHITECTURES.join(", ")],
    ["k", typeof json.k === "number" && json.k > 0, "a number > 0"],
    ["shard", json.shard === null || typeof json.shard === "string", "null or i/n"],
  ];
  const bad = fields.find(([, ok]) => !ok);
  return bad ? `field "${bad[0]}" should be ${bad[2]}` : null;
}

/** Writes the manifest atomically (the folder must exist). */
export async function writeManifest(dir: string, manifest: ManifestJson): Promise<void> {
  await writeFileAtomic(`${dir}/${MANIFEST_FILE}`, JSON.stringify(manifest, null, 2) + "\n");
}

/** One finished chunk. */
export interface ChunkRecord {
  /** Sequence number of the chunk in the folder. */
  chunk: number;
  /** `grid`, `refine 1`, … or `merge`. */
  phase: string;
  /** The chunk's rows. */
  rows: SweepRow[];
}

const RECORD_PATTERN = /^chunk-(\d+)\.json$/;

/** File name of chunk `n`. */
export function recordFile(n: number): string {
  return `chunk-${String(n).padStart(5, "0")}.json`;
}

/** `sha256-<hex>` of the record's rows as written (`JSON.stringify` of their JSON form). */
export async function rowsChecksum(rowsJson: unknown): Promise<string> {
  const bytes = new TextEncoder().encode(JSON.stringify(rowsJson));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return `sha256-${Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** Writes a chunk record atomically (creating `chunks/` if needed), with its rows' checksum. */
export async function writeRecord(dir: string, record: ChunkRecord): Promise<void> {
  await Deno.mkdir(`${dir}/${CHUNKS_DIR}`, { recursive: true });
  const rows = record.rows.map(rowToJson);
  const json = {
    chunk: record.chunk,
    phase: record.phase,
    checksum: await rowsChecksum(rows),
    rows,
  };
  await writeFileAtomic(
    `${dir}/${CHUNKS_DIR}/${recordFile(record.chunk)}`,
    JSON.stringify(json) + "\n",
  );
}

/**
 * Why `row` cannot belong to the sweep of `settings`, or null: its tree is not one of the sweep's,
 * its child probabilities differ from the tree's, its seed or (for a grid row) its β is off the
 * grid, or its sizes do not fit the tree and the steps.
 */
export function rowOffGrid(row: SweepRow, settings: SweepSettings): string | null {
  const tree = settings.trees.find((t) => t.name === row.tree);
  if (!tree) return `tree "${clip(row.tree)}" is not one of this sweep's trees`;
  if (JSON.stringify(row.childProbs) !== JSON.stringify(tree.childProbs)) {
    return `its child probabilities differ from tree ${tree.name}'s`;
  }
  if (row.seed >= settings.seeds) return `seed ${row.seed} is not below --seeds ${settings.seeds}`;
  if (row.round === 0 && !settings.betas.includes(row.beta)) {
    return `β ${row.beta} of a grid row is not on the grid`;
  }
  const nFeatures = tree.tree.nFeatures;
  if (row.encoderCos.length !== nFeatures || row.decoderCos.length !== nFeatures) {
    return `its cosines do not have one value per feature (${nFeatures})`;
  }
  if (row.edgeEncoderCos.length !== tree.edges.length) {
    return `its edge readings do not have one value per edge of the tree (${tree.edges.length})`;
  }
  if (row.stepsDone > settings.steps || (row.divergedAt ?? 0) > settings.steps) {
    return `its steps exceed --steps ${settings.steps}`;
  }
  return null;
}

/**
 * Every chunk record of `dir`, in chunk order (none when the folder has no `chunks/`), verified:
 * checksum, field types, rows on the grid of `settings`, and no row recorded twice.
 *
 * @throws {SweepFolderError} naming the record and what to do.
 */
export async function readRecords(dir: string, settings: SweepSettings): Promise<ChunkRecord[]> {
  const records: ChunkRecord[] = [];
  const seen = new Map<string, string>();
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(`${dir}/${CHUNKS_DIR}`));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
  const files = entries.filter((e) => e.isFile && RECORD_PATTERN.test(e.name)).map((e) => e.name)
    .sort();
  for (const name of files) {
    const path = `${dir}/${CHUNKS_DIR}/${name}`;
    const refuse: (what: string) => never = (what) => {
      throw new SweepFolderError(
        `Invalid sweep record ${path}: ${what}; delete it to retrain its SAEs`,
      );
    };
    let json: { chunk?: unknown; phase?: unknown; checksum?: unknown; rows?: unknown };
    try {
      json = JSON.parse(await Deno.readTextFile(path));
    } catch (error) {
      refuse(`not JSON (${error instanceof Error ? error.message : String(error)})`);
    }
    if (typeof json !== "object" || json === null || !Array.isArray(json.rows)) refuse("no rows");
    if (typeof json.checksum !== "string") {
      refuse("no checksum (written by an older version, or edited)");
    }
    if (json.checksum !== await rowsChecksum(json.rows)) {
      refuse("its rows do not match their checksum (the file was changed after it was written)");
    }
    let rows: SweepRow[];
    try {
      rows = (json.rows as unknown[]).map((r, i) => rowFromJson(r, `${path} row ${i}`));
    } catch (error) {
      throw new SweepFolderError(error instanceof Error ? error.message : String(error));
    }
    for (const [i, row] of rows.entries()) {
      const off = rowOffGrid(row, settings);
      if (off) refuse(`row ${i} is not part of this sweep: ${off}`);
      const key = combinationKey(row.tree, row.beta, row.seed);
      const earlier = seen.get(key);
      if (earlier) refuse(`row ${i} (${key}) is also recorded in ${earlier}`);
      seen.set(key, name);
    }
    records.push({
      chunk: Number(RECORD_PATTERN.exec(name)![1]),
      phase: typeof json.phase === "string" ? json.phase : "grid",
      rows,
    });
  }
  return records;
}

/** Name of the lock file a running sweep holds in its folder. */
export const LOCK_FILE = ".sweep.lock";

/**
 * Takes the folder's advisory lock (creating the folder if needed) so that one sweep at a time
 * works on it; the operating system releases it when the process ends, even on `kill -9`. While
 * held, the lock file names the holder (pid and start time); released, it is empty.
 *
 * @returns the held lock; dispose of it (or end the process) to release.
 * @throws {SweepFolderError} when another process holds it.
 */
export async function lockSweepFolder(dir: string): Promise<Disposable> {
  await Deno.mkdir(dir, { recursive: true });
  const path = `${dir}/${LOCK_FILE}`;
  const file = await Deno.open(path, { read: true, write: true, create: true });
  if (!(await file.tryLock(true))) {
    let holder = "";
    try {
      holder = (await Deno.readTextFile(path)).trim();
    } catch {
      // Unreadable: say nothing about the holder.
    }
    file.close();
    throw new SweepFolderError(
      `Cannot use ${dir}: another sweep is working on it${
        holder ? ` (${clip(holder, 80)})` : ""
      }; ` +
        "wait for it to finish, or choose another --out",
    );
  }
  await file.truncate(0);
  await file.write(
    new TextEncoder().encode(`pid ${Deno.pid}, since ${new Date().toISOString()}\n`),
  );
  return {
    [Symbol.dispose]: () => {
      // Empty at rest, so finished folders are byte-identical however they were run.
      try {
        file.truncateSync(0);
      } finally {
        file.close();
      }
    },
  };
}

/** True when `dir` does not exist or is an empty folder (a sweep's lock file aside). */
export async function isAbsentOrEmpty(dir: string): Promise<boolean> {
  try {
    for await (const entry of Deno.readDir(dir)) if (entry.name !== LOCK_FILE) return false;
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return true;
    throw error;
  }
}
