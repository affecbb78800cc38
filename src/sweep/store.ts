/**
 * A sweep's folder on disk, what makes it resumable and mergeable:
 *
 *   manifest.json          the settings that decide the rows (steps, batch size, lr, β grid,
 *                          seeds, each tree's name, children's probabilities and full definition)
 *                          and the shard; a resumed or merged sweep must match it
 *   chunks/chunk-NNNNN.json one record per finished chunk: its phase and its rows, written
 *                          atomically when the chunk finishes (the rows are the sweep's truth)
 *   sweep.csv, sweep.json, figures/   outputs, rebuilt from the records
 *
 * A record that is missing is simply not done; deleting one makes `--resume` retrain its SAEs.
 */
import { writeFileAtomic } from "../io/atomic.ts";
import { treeFromJson, type TreeJson, treeToJson } from "../toy/tree_json.ts";
import { formatShard, type Shard, type SweepTree, sweepTree, type TreeSource } from "./axes.ts";
import { rowFromJson, rowToJson, type SweepRow } from "./rows.ts";

/** A sweep folder that cannot be used as asked (holds another sweep, differs, is not a sweep). */
export class SweepFolderError extends Error {
  /** Always `"SweepFolderError"`. */
  override name = "SweepFolderError";
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
    shard: formatShard(shard),
  };
}

/** The settings a manifest records (trees rebuilt from their definitions). */
export function settingsOf(manifest: ManifestJson, where: string): SweepSettings {
  return {
    steps: manifest.steps,
    batchSize: manifest.batchSize,
    lr: manifest.lr,
    betas: manifest.betas.map((b) => b === "inf" ? Infinity : b),
    seeds: manifest.seeds,
    trees: manifest.trees.map((t) =>
      sweepTree(t.name, treeFromJson(t.tree, `${where} (tree ${t.name})`), t.source)
    ),
  };
}

const FLAGS: Record<string, string> = {
  steps: "--steps",
  batchSize: "--batch-size",
  lr: "--lr",
  betas: "--betas",
  seeds: "--seeds",
  trees: "--tree / --child-probs",
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
        ? m.trees.map((t) => `${t.name}(${t.childProbs.join(",")})`).join(" ")
        : JSON.stringify(m[key]);
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
  return json;
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

/** Writes a chunk record atomically (creating `chunks/` if needed). */
export async function writeRecord(dir: string, record: ChunkRecord): Promise<void> {
  await Deno.mkdir(`${dir}/${CHUNKS_DIR}`, { recursive: true });
  const json = { chunk: record.chunk, phase: record.phase, rows: record.rows.map(rowToJson) };
  await writeFileAtomic(
    `${dir}/${CHUNKS_DIR}/${recordFile(record.chunk)}`,
    JSON.stringify(json) + "\n",
  );
}

/** Every chunk record of `dir`, in chunk order (none when the folder has no `chunks/`). */
export async function readRecords(dir: string): Promise<ChunkRecord[]> {
  const records: ChunkRecord[] = [];
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
    let json: { chunk?: unknown; phase?: unknown; rows?: unknown };
    try {
      json = JSON.parse(await Deno.readTextFile(path));
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new SweepFolderError(
        `Invalid sweep record ${path}: not JSON (${reason}); delete it to retrain its SAEs`,
      );
    }
    if (!Array.isArray(json.rows)) {
      throw new SweepFolderError(
        `Invalid sweep record ${path}: no rows; delete it to retrain its SAEs`,
      );
    }
    records.push({
      chunk: Number(RECORD_PATTERN.exec(name)![1]),
      phase: typeof json.phase === "string" ? json.phase : "grid",
      rows: json.rows.map((r) => rowFromJson(r, path)),
    });
  }
  return records;
}

/** True when `dir` does not exist or is an empty folder. */
export async function isAbsentOrEmpty(dir: string): Promise<boolean> {
  try {
    for await (const _ of Deno.readDir(dir)) return false;
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return true;
    throw error;
  }
}
